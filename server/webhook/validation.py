"""Field checks every webhook reference shares, worded like kube-apiserver 1.32.

Admission webhook configurations and CRD conversion webhooks validate their
`clientConfig` and their review versions with the same functions in kube
(`k8s.io/apiserver/pkg/util/webhook/validation.go` and the review-version
checks), so both callers get them from here.
"""
from __future__ import annotations

import re
from typing import Any, Mapping
from urllib.parse import urlsplit

from kapi.api.errors import Cause, field_value_invalid, go_quote, required
from kapi.api.validation import dns1123_subdomain_errors, regex_error

ACCEPTED_REVIEW_VERSIONS = ("v1", "v1beta1")
_URL_FORM = "; desired format: https://host[/path]"
_DNS1035_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_RE = re.compile(_DNS1035_FMT)
_DNS1035_ERR = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                "alphabetic character, and end with an alphanumeric character")


def invalid(path: str, value: Any, detail: str) -> Cause:
    """kube's `field.Invalid`, string lists shown as Go's `%#v` (`[]string{"a", "b"}`)."""
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        shown = "[]string{" + ", ".join(go_quote(v) for v in value) + "}"
        return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)
    return field_value_invalid(path, value, detail)


def url_causes(path: str, url: str) -> list[Cause]:
    """`ValidateWebhookURL` with https forced."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
    except ValueError as exc:
        return [required(path, f"url must be a valid URL: {exc}{_URL_FORM}")]
    causes: list[Cause] = []
    if parts.scheme != "https":
        causes.append(invalid(path, parts.scheme, "'https' is the only allowed URL scheme" + _URL_FORM))
    if not host:
        causes.append(invalid(path, host, "host must be provided" + _URL_FORM))
    if "@" in parts.netloc:
        causes.append(invalid(path, parts.netloc.rpartition("@")[0], "user information is not permitted in the URL"))
    if parts.fragment:
        causes.append(invalid(path, parts.fragment, "fragments are not permitted in the URL"))
    if parts.query:
        causes.append(invalid(path, parts.query, "query parameters are not permitted in the URL"))
    return causes


def service_causes(path: str, service: Mapping[str, Any]) -> list[Cause]:
    """`ValidateWebhookService`: name, namespace, port and a path of DNS-subdomain segments."""
    causes: list[Cause] = []
    if not service.get("name"):
        causes.append(required(f"{path}.name", "service name is required"))
    if not service.get("namespace"):
        causes.append(required(f"{path}.namespace", "service namespace is required"))
    port = service.get("port", 443)
    if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
        causes.append(invalid(f"{path}.port", port, "port is not valid: must be between 1 and 65535, inclusive"))
    url_path = service.get("path")
    if not isinstance(url_path, str) or url_path in ("", "/"):
        return causes
    if url_path == "//":
        return causes + [invalid(f"{path}.path", url_path, "segment[0] may not be empty")]
    if not url_path.startswith("/"):
        causes.append(invalid(f"{path}.path", url_path, "must start with a '/'"))
    steps = url_path[1:]
    if steps.endswith("/"):
        steps = steps[:-1]
    for i, step in enumerate(steps.split("/")):
        if not step:
            causes.append(invalid(f"{path}.path", url_path, f"segment[{i}] may not be empty"))
            continue
        causes += [invalid(f"{path}.path", url_path, f"segment[{i}]: {m}") for m in dns1123_subdomain_errors(step)]
    return causes


def client_config_causes(path: str, config: Any) -> list[Cause]:
    """Exactly one of `url` and `service`, each checked (kube's webhook clientConfig rules)."""
    config = config if isinstance(config, Mapping) else {}
    url, service = config.get("url"), config.get("service")
    if (url is None) == (service is None):
        return [required(path, "exactly one of url or service is required")]
    if url is not None:
        return url_causes(f"{path}.url", url if isinstance(url, str) else "")
    return service_causes(f"{path}.service", service if isinstance(service, Mapping) else {})


def review_versions_causes(path: str, versions: Any, *, say_which: bool = True) -> list[Cause]:
    """kube's admission/conversion review version checks: at least one, unique, DNS-1035, one it speaks.

    An empty list is `Required value: must specify one of v1, v1beta1` for admission webhooks and
    a bare `Required value` for conversion webhooks (`say_which=False`), as kube words them.
    """
    versions = versions if isinstance(versions, list) else []
    accepted = ", ".join(ACCEPTED_REVIEW_VERSIONS)
    if not versions:
        return [required(path, f"must specify one of {accepted}" if say_which else "")]
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, version in enumerate(versions):
        version = str(version)
        if version in seen:
            causes.append(invalid(f"{path}[{i}]", version, "duplicate version"))
            continue
        seen.add(version)
        if len(version) > 63:
            causes.append(invalid(f"{path}[{i}]", version, "must be no more than 63 characters"))
        if not _DNS1035_RE.fullmatch(version):
            causes.append(invalid(f"{path}[{i}]", version,
                                  regex_error(_DNS1035_ERR, _DNS1035_FMT, "my-name", "abc-123")))
    if not seen & set(ACCEPTED_REVIEW_VERSIONS):
        causes.append(invalid(path, [str(v) for v in versions], f"must include at least one of {accepted}"))
    return causes


def review_version(versions: Any) -> str:
    """The first version of `versions` kapi speaks (kube asks in the webhook's preferred one)."""
    for version in versions if isinstance(versions, list) else []:
        if version in ACCEPTED_REVIEW_VERSIONS:
            return str(version)
    return ""
