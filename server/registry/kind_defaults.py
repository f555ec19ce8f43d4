"""kube's decode-time defaults (`SetDefaults_<Kind>`) for built-in kinds that need nothing else of a strategy.

They run where kube's defaulting does, at decode, so the writer owns the defaulted fields in managedFields.
Kinds with richer rules (Pods, workloads, Services, volumes) default in their strategies.
"""
from __future__ import annotations

from typing import Any, Callable

Object = dict[str, Any]


def _dicts(value: Any) -> list[Object]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _tcp_ports(ports: Any) -> None:
    for port in _dicts(ports):
        port.setdefault("protocol", "TCP")


def _storage_class(obj: Object) -> None:
    obj.setdefault("reclaimPolicy", "Delete")
    obj.setdefault("volumeBindingMode", "Immediate")


def _csi_driver(obj: Object) -> None:
    spec = obj.get("spec")
    if isinstance(spec, dict):
        for key, value in (("attachRequired", True), ("podInfoOnMount", False), ("storageCapacity", False),
                           ("fsGroupPolicy", "ReadWriteOnceWithFSType"), ("requiresRepublish", False),
                           ("seLinuxMount", False)):
            spec.setdefault(key, value)
        spec.setdefault("volumeLifecycleModes", ["Persistent"])


def _network_policy(obj: Object) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return
    for rule in _dicts(spec.get("ingress")) + _dicts(spec.get("egress")):
        _tcp_ports(rule.get("ports"))
    if "policyTypes" not in spec:
        spec["policyTypes"] = ["Ingress"] + (["Egress"] if spec.get("egress") else [])


def _endpoints(obj: Object) -> None:
    for subset in _dicts(obj.get("subsets")):
        _tcp_ports(subset.get("ports"))


def _endpoint_slice(obj: Object) -> None:
    for port in _dicts(obj.get("ports")):
        port.setdefault("name", "")
        port.setdefault("protocol", "TCP")


def _limit_range(obj: Object) -> None:
    """A container limit's `default` doubles as its `defaultRequest`, and `max` as `default`."""
    spec = obj.get("spec")
    for item in _dicts(spec.get("limits") if isinstance(spec, dict) else None):
        if item.get("type") != "Container":
            continue
        if isinstance(item.get("max"), dict):
            item.setdefault("default", dict(item["max"]))
        if isinstance(item.get("default"), dict):
            requests = item.setdefault("defaultRequest", {})
            if isinstance(requests, dict):
                for name, quantity in item["default"].items():
                    requests.setdefault(name, quantity)


def _hpa_v2(obj: Object) -> None:
    spec = obj.get("spec")
    if not isinstance(spec, dict) or not str(obj.get("apiVersion", "")).endswith("/v2"):
        return
    spec.setdefault("minReplicas", 1)
    if not spec.get("metrics"):
        spec["metrics"] = [{"type": "Resource", "resource": {"name": "cpu", "target": {
            "type": "Utilization", "averageUtilization": 80}}}]


def _priority_class(obj: Object) -> None:
    obj.setdefault("preemptionPolicy", "PreemptLowerPriority")


KIND_DEFAULTS: dict[tuple[str, str], Callable[[Object], None]] = {
    ("storage.k8s.io", "storageclasses"): _storage_class,
    ("storage.k8s.io", "csidrivers"): _csi_driver,
    ("networking.k8s.io", "networkpolicies"): _network_policy,
    ("", "endpoints"): _endpoints,
    ("discovery.k8s.io", "endpointslices"): _endpoint_slice,
    ("", "limitranges"): _limit_range,
    ("autoscaling", "horizontalpodautoscalers"): _hpa_v2,
    ("scheduling.k8s.io", "priorityclasses"): _priority_class,
}


def default_kind(group: str, plural: str, obj: Object) -> None:
    """Apply the kind's defaults, if it has any here."""
    apply = KIND_DEFAULTS.get((group, plural))
    if apply is not None:
        apply(obj)
