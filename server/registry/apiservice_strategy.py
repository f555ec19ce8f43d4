"""APIServices: kube-aggregator's field validation, with its wording (`tests/data/aggregation`).

The name is `<version>.<group>`; a local APIService (no service) may carry no
TLS settings; priorities are positive and bounded; a service reference names
a namespace, a name and a port; a CA bundle and skipping verification do not
go together.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from kapi.api.errors import Cause, field_value_invalid, required
from kapi.api.validation import dns1035_label_errors, dns1123_subdomain_errors
from kapi.registry.strategy import Object, Strategy

MAX_GROUP_PRIORITY = 20000
MAX_VERSION_PRIORITY = 1000


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def spec_causes(name: str, spec: Object) -> list[Cause]:
    """kube's ValidateAPIService, without the object metadata checks the generic strategy makes."""
    causes: list[Cause] = []
    group, version = str(spec.get("group") or ""), str(spec.get("version") or "")
    wanted = f"{version}.{group}"
    if name != wanted:
        causes.append(field_value_invalid("metadata.name", name, f'must be `spec.version+"."+spec.group`: "{wanted}"'))
    if not group and version != "v1":
        causes.append(required("spec.group", "only v1 may have an empty group and it better be legacy kube"))
    elif group:
        errs = dns1123_subdomain_errors(group)
        if errs:
            causes.append(field_value_invalid("spec.group", group, "; ".join(errs)))
    errs = dns1035_label_errors(version)
    if errs:
        causes.append(field_value_invalid("spec.version", version, "; ".join(errs)))
    group_priority, version_priority = _int(spec.get("groupPriorityMinimum")), _int(spec.get("versionPriority"))
    if not 0 < group_priority <= MAX_GROUP_PRIORITY:
        causes.append(field_value_invalid("spec.groupPriorityMinimum", group_priority,
                                          f"must be positive and less than {MAX_GROUP_PRIORITY}"))
    if not 0 < version_priority <= MAX_VERSION_PRIORITY:
        causes.append(field_value_invalid("spec.versionPriority", version_priority,
                                          f"must be positive and less than {MAX_VERSION_PRIORITY}"))
    service = spec.get("service")
    skip, ca = bool(spec.get("insecureSkipTLSVerify")), spec.get("caBundle") or ""
    if not isinstance(service, dict):
        if ca:
            causes.append(field_value_invalid("spec.caBundle", ca, "local APIServices may not have a caBundle"))
        if skip:
            causes.append(field_value_invalid("spec.insecureSkipTLSVerify", skip,
                                              "local APIServices may not have insecureSkipTLSVerify"))
        return causes
    if not service.get("namespace"):
        causes.append(required("spec.service.namespace"))
    if not service.get("name"):
        causes.append(required("spec.service.name"))
    port = service.get("port")
    if port is not None and not 1 <= _int(port) <= 65535:
        causes.append(field_value_invalid("spec.service.port", port,
                                          "port is not valid: must be between 1 and 65535, inclusive"))
    if skip and ca:
        causes.append(field_value_invalid("spec.insecureSkipTLSVerify", skip, "may not be true if caBundle is present"))
    return causes


class APIServiceStrategy(Strategy):
    """Cluster-scoped; the spec checked as kube-aggregator checks it (status is the aggregator's, but a
    local APIService is created available, as kube's strategy creates it). kube checks the name only as a
    path segment, then against `<version>.<group>`."""

    name_rule = "path"

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        if isinstance(spec, dict) and not isinstance(spec.get("service"), dict):
            now = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            obj["status"] = {"conditions": [{"type": "Available", "status": "True", "lastTransitionTime": now,
                                             "reason": "Local", "message": "Local APIServices are always available"}]}
        else:
            obj["status"] = {}

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        if any(c.field == "metadata.name" for c in causes):
            return causes  # kube stops at a name that is not a path segment
        spec = obj.get("spec") if isinstance(obj.get("spec"), dict) else {}
        name = str((obj.get("metadata") or {}).get("name") or "")
        return causes + spec_causes(name, spec)
