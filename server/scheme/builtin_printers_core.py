"""Table columns of the core (v1) kinds other than pods and controllers, and of events.k8s.io events.

kube's `printService`, `printNode`, `printEvent`, `printPersistentVolume`… as data plus cell functions
(see `builtin_printers` for the whole catalogue).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kapi.scheme.builtin_printers_common import (
    AGE, DEFAULT_COLUMNS, WIDE_NAME, Obj, col, dct, doc, format_labels, lst, meta, num, quantity, since, text,
)
from kapi.scheme.definitions import PrinterColumn


def _spec(obj: Obj) -> Obj:
    return dct(obj.get("spec"))


def _status(obj: Obj) -> Obj:
    return dct(obj.get("status"))


# --- services and endpoints ---


def _service_type(obj: Obj) -> str:
    return text(_spec(obj).get("type")) or "ClusterIP"  # kube's default


def _cluster_ip(obj: Obj, now: datetime) -> str:
    spec = _spec(obj)
    ips = [ip for ip in lst(spec.get("clusterIPs")) if isinstance(ip, str)]
    found = ips[0] if ips else text(spec.get("clusterIP"))
    return found or "<none>"


def load_balancer_addresses(status: Obj) -> str:
    """kube's `loadBalancerStatusStringer` (never clipped: the server prints wide)."""
    found = set()
    for item in lst(dct(status.get("loadBalancer")).get("ingress")):
        item = dct(item)
        address = text(item.get("ip")) or text(item.get("hostname"))
        if address:
            found.add(address)
    return ",".join(sorted(found))


def _external_ip(obj: Obj, now: datetime) -> str:
    spec = _spec(obj)
    external = [ip for ip in lst(spec.get("externalIPs")) if isinstance(ip, str)]
    kind = _service_type(obj)
    if kind in ("ClusterIP", "NodePort"):
        return ",".join(external) if external else "<none>"
    if kind == "LoadBalancer":
        balancers = load_balancer_addresses(_status(obj))
        if external:
            return ",".join((balancers.split(",") if balancers else []) + external)
        return balancers or "<pending>"
    if kind == "ExternalName":
        return text(spec.get("externalName"))
    return "<unknown>"


def _ports(obj: Obj, now: datetime) -> str:
    pieces = []
    for port in lst(_spec(obj).get("ports")):
        port = dct(port)
        protocol = text(port.get("protocol")) or "TCP"  # kube's default
        node_port = num(port.get("nodePort"))
        middle = f":{node_port}" if node_port > 0 else ""
        pieces.append(f"{num(port.get('port'))}{middle}/{protocol}")
    return ",".join(pieces) or "<none>"


SERVICE_COLUMNS = (
    col("Type", "string", ".spec.type", lambda o, n: _service_type(o), doc("core.v1.ServiceSpec", "type")),
    col("Cluster-IP", "string", ".spec.clusterIPs", _cluster_ip, doc("core.v1.ServiceSpec", "clusterIP")),
    col("External-IP", "string", ".spec.externalIPs", _external_ip, doc("core.v1.ServiceSpec", "externalIPs")),
    col("Port(s)", "string", ".spec.ports", _ports, doc("core.v1.ServiceSpec", "ports")),
    AGE,
    col("Selector", "string", ".spec.selector", lambda o, n: format_labels(_spec(o).get("selector")),
        doc("core.v1.ServiceSpec", "selector"), priority=1),
)


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _endpoints(obj: Obj, now: datetime) -> str:
    """kube's `formatEndpoints`: up to three `ip:port`, then ` + N more...`."""
    subsets = [dct(s) for s in lst(obj.get("subsets"))]
    if not subsets:
        return "<none>"
    shown: list[str] = []
    count, more = 0, False
    for subset in subsets:
        addresses = [text(dct(a).get("ip")) for a in lst(subset.get("addresses"))]
        ports = [dct(p) for p in lst(subset.get("ports"))]
        for port in ports or [None]:
            count += len(addresses)
            for ip in addresses:
                if len(shown) == 3:
                    more = True
                    break
                shown.append(ip if port is None else _host_port(ip, num(port.get("port"))))
    joined = ",".join(shown)
    return f"{joined} + {count - 3} more..." if more else joined


ENDPOINTS_COLUMNS = (
    col("Endpoints", "string", ".subsets", _endpoints, doc("core.v1.Endpoints", "subsets")),
    AGE,
)

# --- nodes ---


def _node_status(obj: Obj, now: datetime) -> str:
    ready = None
    for cond in lst(_status(obj).get("conditions")):
        if dct(cond).get("type") == "Ready":
            ready = dct(cond)
    words = ["Unknown" if ready is None else "Ready" if ready.get("status") == "True" else "NotReady"]
    if _spec(obj).get("unschedulable") is True:
        words.append("SchedulingDisabled")
    return ",".join(words)


def _node_roles(obj: Obj, now: datetime) -> str:
    roles = set()
    for key, value in dct(meta(obj).get("labels")).items():
        if key.startswith("node-role.kubernetes.io/") and key[len("node-role.kubernetes.io/"):]:
            roles.add(key[len("node-role.kubernetes.io/"):])
        elif key == "kubernetes.io/role" and value:
            roles.add(text(value))
    return ",".join(sorted(roles)) or "<none>"


def _node_address(kind: str) -> Any:
    def cell(obj: Obj, now: datetime) -> str:
        for address in lst(_status(obj).get("addresses")):
            if dct(address).get("type") == kind:
                return text(dct(address).get("address"))
        return "<none>"
    return cell


def _node_info(field: str, missing: str) -> Any:
    return lambda o, n: text(dct(_status(o).get("nodeInfo")).get(field)) or missing


NODE_COLUMNS = (
    col("Status", "string", ".status.conditions", _node_status, "The status of the node"),
    col("Roles", "string", ".metadata.labels", _node_roles, "The roles of the node"),
    AGE,
    col("Version", "string", ".status.nodeInfo.kubeletVersion", _node_info("kubeletVersion", ""),
        doc("core.v1.NodeSystemInfo", "kubeletVersion")),
    col("Internal-IP", "string", ".status.addresses", _node_address("InternalIP"),
        doc("core.v1.NodeStatus", "addresses"), priority=1),
    col("External-IP", "string", ".status.addresses", _node_address("ExternalIP"),
        doc("core.v1.NodeStatus", "addresses"), priority=1),
    col("OS-Image", "string", ".status.nodeInfo.osImage", _node_info("osImage", "<unknown>"),
        doc("core.v1.NodeSystemInfo", "osImage"), priority=1),
    col("Kernel-Version", "string", ".status.nodeInfo.kernelVersion", _node_info("kernelVersion", "<unknown>"),
        doc("core.v1.NodeSystemInfo", "kernelVersion"), priority=1),
    col("Container-Runtime", "string", ".status.nodeInfo.containerRuntimeVersion",
        _node_info("containerRuntimeVersion", "<unknown>"), doc("core.v1.NodeSystemInfo", "containerRuntimeVersion"),
        priority=1),
)

# --- storage: volumes and claims ---

_ACCESS_MODES = (("ReadWriteOnce", "RWO"), ("ReadOnlyMany", "ROX"), ("ReadWriteMany", "RWX"),
                 ("ReadWriteOncePod", "RWOP"))
_BETA_CLASS = "volume.beta.kubernetes.io/storage-class"


def access_modes(modes: Any) -> str:
    """kube's `GetAccessModesAsString`: abbreviations in a fixed order, once each."""
    present = set(m for m in lst(modes) if isinstance(m, str))
    return ",".join(short for mode, short in _ACCESS_MODES if mode in present)


def _phase(default: str) -> Any:
    """`status.phase` (kube defaults it), `Terminating` while the object is being deleted."""
    def cell(obj: Obj, now: datetime) -> str:
        if meta(obj).get("deletionTimestamp"):
            return "Terminating"
        return text(_status(obj).get("phase")) or default
    return cell


def _storage_class(obj: Obj, now: datetime) -> str:
    annotations = dct(meta(obj).get("annotations"))
    if _BETA_CLASS in annotations:
        return text(annotations[_BETA_CLASS])
    return text(_spec(obj).get("storageClassName"))


def _unset_or(field: str, default: str = "<unset>") -> Any:
    return lambda o, n: text(_spec(o).get(field)) if _spec(o).get(field) is not None else default


def _claim(obj: Obj, now: datetime) -> str:
    ref = _spec(obj).get("claimRef")
    return f"{text(dct(ref).get('namespace'))}/{text(dct(ref).get('name'))}" if isinstance(ref, dict) else ""


_PV_SPEC, _PVC_SPEC = "core.v1.PersistentVolumeSpec", "core.v1.PersistentVolumeClaimSpec"
PERSISTENT_VOLUME_COLUMNS = (
    col("Capacity", "string", ".spec.capacity.storage",
        lambda o, n: quantity(dct(_spec(o).get("capacity")).get("storage")), doc(_PV_SPEC, "capacity")),
    col("Access Modes", "string", ".spec.accessModes", lambda o, n: access_modes(_spec(o).get("accessModes")),
        doc(_PV_SPEC, "accessModes")),
    col("Reclaim Policy", "string", ".spec.persistentVolumeReclaimPolicy",
        lambda o, n: text(_spec(o).get("persistentVolumeReclaimPolicy")) or "Retain",
        doc(_PV_SPEC, "persistentVolumeReclaimPolicy")),
    col("Status", "string", ".status.phase", _phase("Pending"), doc("core.v1.PersistentVolumeStatus", "phase")),
    col("Claim", "string", ".spec.claimRef", _claim, doc(_PV_SPEC, "claimRef")),
    col("StorageClass", "string", ".spec.storageClassName", _storage_class, "StorageClass of the pv"),
    col("VolumeAttributesClass", "string", ".spec.volumeAttributesClassName",
        _unset_or("volumeAttributesClassName"), "VolumeAttributesClass of the pv"),
    col("Reason", "string", ".status.reason", lambda o, n: text(_status(o).get("reason")),
        doc("core.v1.PersistentVolumeStatus", "reason")),
    AGE,
    col("VolumeMode", "string", ".spec.volumeMode", _unset_or("volumeMode", "Filesystem"),
        doc(_PV_SPEC, "volumeMode"), priority=1),
)


def _bound(obj: Obj) -> bool:
    return bool(text(_spec(obj).get("volumeName")))


PERSISTENT_VOLUME_CLAIM_COLUMNS = (
    col("Status", "string", ".status.phase", _phase("Pending"), doc("core.v1.PersistentVolumeClaimStatus", "phase")),
    col("Volume", "string", ".spec.volumeName", lambda o, n: text(_spec(o).get("volumeName")),
        doc(_PVC_SPEC, "volumeName")),
    col("Capacity", "string", ".status.capacity.storage",
        lambda o, n: quantity(dct(_status(o).get("capacity")).get("storage")) if _bound(o) else "",
        doc("core.v1.PersistentVolumeClaimStatus", "capacity")),
    col("Access Modes", "string", ".status.accessModes",
        lambda o, n: access_modes(_status(o).get("accessModes")) if _bound(o) else "",
        doc("core.v1.PersistentVolumeClaimStatus", "accessModes")),
    col("StorageClass", "string", ".spec.storageClassName", _storage_class, "StorageClass of the pvc"),
    col("VolumeAttributesClass", "string", ".spec.volumeAttributesClassName",
        _unset_or("volumeAttributesClassName"), "VolumeAttributesClass of the pvc"),
    AGE,
    col("VolumeMode", "string", ".spec.volumeMode", _unset_or("volumeMode", "Filesystem"),
        doc(_PVC_SPEC, "volumeMode"), priority=1),
)

# --- configuration and quota ---


def _quota(limits: bool) -> Any:
    """kube's `printResourceQuota`: `name: used/hard` per resource, `limits.*` in the Limit column."""
    def cell(obj: Obj, now: datetime) -> str:
        hard, used = dct(_status(obj).get("hard")), dct(_status(obj).get("used"))
        shown = []
        for name in sorted(hard):
            pieces = name.split(".")
            if (len(pieces) > 1 and pieces[0] == "limits") == limits:
                shown.append(f"{name}: {quantity(used.get(name))}/{quantity(hard[name])}")
        return ", ".join(shown)
    return cell


def _length(*fields: str) -> Any:
    def cell(obj: Obj, now: datetime) -> int:
        return sum(len(value) for f in fields if isinstance(value := obj.get(f), (dict, list)))
    return cell


RESOURCE_QUOTA_COLUMNS = (
    col("Request", "string", ".status.hard", _quota(False),
        "Request represents a minimum amount of cpu/memory that a container may consume."),
    col("Limit", "string", ".status.hard", _quota(True),
        "Limits control the maximum amount of cpu/memory that a container may use independent of contention on "
        "the node."),
    AGE,
)
SERVICE_ACCOUNT_COLUMNS = (
    col("Secrets", "string", ".secrets", _length("secrets"), doc("core.v1.ServiceAccount", "secrets")),
    AGE,
)
CONFIG_MAP_COLUMNS = (
    col("Data", "string", ".data", _length("data", "binaryData"), doc("core.v1.ConfigMap", "data")),
    AGE,
)
SECRET_COLUMNS = (
    col("Type", "string", ".type", lambda o, n: text(o.get("type")), doc("core.v1.Secret", "type")),
    col("Data", "string", ".data", _length("data"), doc("core.v1.Secret", "data")),
    AGE,
)
NAMESPACE_COLUMNS = (
    col("Status", "string", ".status.phase", lambda o, n: text(_status(o).get("phase")) or "Active",
        "The status of the namespace"),
    AGE,
)

# --- events (core/v1 and events.k8s.io/v1 print alike: kube converts both to one internal Event) ---

_CORE_EVENT = {"object": "involvedObject", "message": "message", "first": "firstTimestamp",
               "last": "lastTimestamp", "count": "count", "source": "source", "controller": "reportingComponent"}
_EVENTS_V1 = {"object": "regarding", "message": "note", "first": "deprecatedFirstTimestamp",
              "last": "deprecatedLastTimestamp", "count": "deprecatedCount", "source": "deprecatedSource",
              "controller": "reportingController"}


def _first_seen(obj: Obj, now: datetime, names: dict[str, str]) -> str:
    first = obj.get(names["first"])
    return since(first if first else obj.get("eventTime"), now)


def _last_seen(obj: Obj, now: datetime, names: dict[str, str]) -> str:
    series = obj.get("series")
    if isinstance(series, dict):
        return since(series.get("lastObservedTime"), now)
    last = obj.get(names["last"])
    return since(last, now) if last else _first_seen(obj, now, names)


def _count(obj: Obj, names: dict[str, str]) -> int:
    series = obj.get("series")
    if isinstance(series, dict):
        return num(series.get("count"))
    return num(obj.get(names["count"])) or 1  # singleton events carry no count


def _target(obj: Obj, names: dict[str, str]) -> str:
    ref = dct(obj.get(names["object"]))
    kind, name = text(ref.get("kind")).lower(), text(ref.get("name"))
    return f"{kind}/{name}" if name else kind


def _source(obj: Obj, names: dict[str, str]) -> str:
    source = dct(obj.get(names["source"]))
    component = text(source.get("component")) or text(obj.get(names["controller"]))
    instance = text(source.get("host")) or text(obj.get("reportingInstance"))
    return f"{component}, {instance}" if instance else component


def event_columns(names: dict[str, str]) -> tuple[PrinterColumn, ...]:
    """kube's event table: Name comes last and only with `-o wide`, so the list is complete."""
    ref = names["object"]
    return (
        col("Last Seen", "string", f".{names['last']}", lambda o, n: _last_seen(o, n, names),
            doc("core.v1.Event", "lastTimestamp")),
        col("Type", "string", ".type", lambda o, n: text(o.get("type")), doc("core.v1.Event", "type")),
        col("Reason", "string", ".reason", lambda o, n: text(o.get("reason")), doc("core.v1.Event", "reason")),
        col("Object", "string", f".{ref}", lambda o, n: _target(o, names), doc("core.v1.Event", "involvedObject")),
        col("Subobject", "string", f".{ref}.fieldPath", lambda o, n: text(dct(o.get(ref)).get("fieldPath")),
            doc("core.v1.ObjectReference", "fieldPath"), priority=1),
        col("Source", "string", f".{names['source']}", lambda o, n: _source(o, names),
            doc("core.v1.Event", "source"), priority=1),
        col("Message", "string", f".{names['message']}", lambda o, n: text(o.get(names["message"])).strip(),
            doc("core.v1.Event", "message")),
        col("First Seen", "string", f".{names['first']}", lambda o, n: _first_seen(o, n, names),
            doc("core.v1.Event", "firstTimestamp"), priority=1),
        col("Count", "string", f".{names['count']}", lambda o, n: _count(o, names), doc("core.v1.Event", "count"),
            priority=1),
        WIDE_NAME,
    )


CORE_PRINTER_COLUMNS: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    ("", "services"): SERVICE_COLUMNS,
    ("", "endpoints"): ENDPOINTS_COLUMNS,
    ("", "nodes"): NODE_COLUMNS,
    ("", "persistentvolumes"): PERSISTENT_VOLUME_COLUMNS,
    ("", "persistentvolumeclaims"): PERSISTENT_VOLUME_CLAIM_COLUMNS,
    ("", "resourcequotas"): RESOURCE_QUOTA_COLUMNS,
    ("", "limitranges"): DEFAULT_COLUMNS,
    ("", "serviceaccounts"): SERVICE_ACCOUNT_COLUMNS,
    ("", "configmaps"): CONFIG_MAP_COLUMNS,
    ("", "secrets"): SECRET_COLUMNS,
    ("", "namespaces"): NAMESPACE_COLUMNS,
    ("", "events"): event_columns(_CORE_EVENT),
    ("events.k8s.io", "events"): event_columns(_EVENTS_V1),
}
