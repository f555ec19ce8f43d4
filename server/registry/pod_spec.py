"""A PodSpec's defaults and checks, as kube-apiserver applies them to pods and to every pod template.

Defaults are kube's `SetDefaults_PodSpec`/`SetDefaults_Container` (the ones
clients read back: restartPolicy, dnsPolicy, terminationGracePeriodSeconds,
schedulerName, securityContext, imagePullPolicy by tag, termination message
path and policy, resources); checks are the ones users hit first (containers
present, names unique DNS labels, images set, restartPolicy supported).
"""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.registry.builtin_strategy import as_list, unique_label_names

Object = dict[str, Any]
RESTART_POLICIES = ["Always", "OnFailure", "Never"]
_CONTAINER_LISTS = ("initContainers", "containers", "ephemeralContainers")


def image_pull_policy(image: str) -> str:
    """`Always` for `:latest` or an untagged image (no digest), else `IfNotPresent` (kube's rule)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    if "@" in image:
        return "IfNotPresent"
    if ":" not in last or last.rsplit(":", 1)[1] == "latest":
        return "Always"
    return "IfNotPresent"


def default_container(container: Object) -> None:
    image = container.get("image")
    if isinstance(image, str) and image and "imagePullPolicy" not in container:
        container["imagePullPolicy"] = image_pull_policy(image)
    container.setdefault("terminationMessagePath", "/dev/termination-log")
    container.setdefault("terminationMessagePolicy", "File")
    container.setdefault("resources", {})
    for port in as_list(container.get("ports")):
        if isinstance(port, dict):
            port.setdefault("protocol", "TCP")
    for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
        _default_probe(container.get(probe))


def _default_probe(probe: Any) -> None:
    if not isinstance(probe, dict):
        return
    for key, value in (("timeoutSeconds", 1), ("periodSeconds", 10), ("successThreshold", 1),
                       ("failureThreshold", 3)):
        probe.setdefault(key, value)
    http = probe.get("httpGet")
    if isinstance(http, dict):
        http.setdefault("path", "/")
        http.setdefault("scheme", "HTTP")


def default_pod_spec(spec: Any) -> None:
    """kube's PodSpec defaults, in place."""
    if not isinstance(spec, dict):
        return
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("securityContext", {})
    spec.setdefault("schedulerName", "default-scheduler")
    for key in _CONTAINER_LISTS:
        for container in as_list(spec.get(key)):
            if isinstance(container, dict):
                default_container(container)
    for volume in as_list(spec.get("volumes")):
        if not isinstance(volume, dict):
            continue
        for source in ("secret", "configMap"):
            if isinstance(volume.get(source), dict):
                volume[source].setdefault("defaultMode", 420)
        if isinstance(volume.get("emptyDir"), dict) is False and len(volume) == 1 and "name" in volume:
            volume["emptyDir"] = {}  # a volume with no source is an emptyDir, as kube defaults it


def validate_pod_spec(spec: Any, path: str, restart_policies: list[str] | None = None) -> list[Cause]:
    """The checks on a PodSpec every user meets first, with kube's paths and wording."""
    if not isinstance(spec, dict):
        return []
    causes: list[Cause] = []
    containers = spec.get("containers")
    if not containers:
        causes.append(errors.field_required(f"{path}.containers"))
    all_names: list[Object] = []
    for key in _CONTAINER_LISTS:
        items = [c for c in as_list(spec.get(key)) if isinstance(c, dict)]
        for i, container in enumerate(items):
            if not container.get("name"):
                causes.append(errors.field_required(f"{path}.{key}[{i}].name"))
            if not container.get("image") and key != "ephemeralContainers":
                causes.append(errors.field_required(f"{path}.{key}[{i}].image"))
        all_names += items
    causes += _unique_across(spec, path)
    allowed = restart_policies or RESTART_POLICIES
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in allowed:
        causes.append(errors.field_not_supported(f"{path}.restartPolicy", policy, allowed))
    dns = spec.get("dnsPolicy")
    dns_policies = ["ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"]
    if dns is not None and dns not in dns_policies:
        causes.append(errors.field_not_supported(f"{path}.dnsPolicy", dns, dns_policies))
    return causes


def _unique_across(spec: Object, path: str) -> list[Cause]:
    """Container names are DNS labels, unique across init, regular and ephemeral containers."""
    causes: list[Cause] = []
    seen: set[str] = set()
    for key in _CONTAINER_LISTS:
        items = as_list(spec.get(key))
        causes += [c for c in unique_label_names(items, f"{path}.{key}") if c.reason != "FieldValueDuplicate"]
        for i, container in enumerate(items):
            name = container.get("name") if isinstance(container, dict) else None
            if isinstance(name, str) and name:
                if name in seen:
                    causes.append(errors.Cause("FieldValueDuplicate", f'Duplicate value: "{name}"',
                                               f"{path}.{key}[{i}].name"))
                seen.add(name)
    return causes


def default_template(template: Any) -> None:
    if isinstance(template, dict):
        default_pod_spec(template.get("spec"))
