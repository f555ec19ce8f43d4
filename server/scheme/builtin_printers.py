"""kube-apiserver's Table columns for the built-in kinds, keyed by (group, plural).

`kubectl get` prints the server's Table verbatim, so these reproduce the columns of
k8s.io/kubernetes `pkg/printers/internalversion/printers.go` (1.32): names, types and
descriptions of the column definitions, and cells computed the way kube's printers compute
them (`kapi.registry.table` calls each column's `compute(obj, now)`). The server prints
wide: `-o wide` columns (priority 1) always carry cells, kubectl hides them.

Two shapes of column list:

- the usual one leaves out Name (the table puts it first) and carries its own `Age` (kube's is
  a `string` column, and not always the last one: services put SELECTOR after it);
- a list that holds its own `Name` column (format `name`) is the kind's whole list: kube puts
  Name elsewhere (events: last, wide only), prints it differently (a default storage class is
  `standard (default)`) or has no Age (pod templates; roles, cluster roles and limit ranges,
  which kube serves through its default table convertor: NAME and CREATED AT). The table must
  then add neither Name nor Age: see `complete`.

Pods and workloads live in `builtin_printers_pods` and `builtin_printers_workloads`, the other
core kinds and events in `builtin_printers_core`, shared helpers in `builtin_printers_common`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kapi.api.humanize import human_duration_ns
from kapi.scheme.builtin_printers_common import (
    AGE, DEFAULT_COLUMNS, NAME_DOC, Obj, col, dct, doc, format_selector, lst, meta, more_string, num, quantity,
    text,
)
from kapi.scheme.builtin_printers_core import CORE_PRINTER_COLUMNS, load_balancer_addresses
from kapi.scheme.builtin_printers_workloads import WORKLOAD_PRINTER_COLUMNS
from kapi.scheme.definitions import PrinterColumn

__all__ = ["PRINTER_COLUMNS", "complete"]


def complete(columns: tuple[PrinterColumn, ...]) -> bool:
    """The list is the kind's whole column list: it carries its own Name (format `name`)."""
    return any(c.name == "Name" and c.format == "name" for c in columns)


def _spec(obj: Obj) -> Obj:
    return dct(obj.get("spec"))


def _status(obj: Obj) -> Obj:
    return dct(obj.get("status"))


def _field(*path: str, default: Any = "") -> Any:
    """A cell that is the text at a field path (`default` when unset)."""
    def cell(obj: Obj, now: datetime) -> Any:
        node: Any = obj
        for part in path:
            node = dct(node).get(part)
        return node if isinstance(node, str) else default
    return cell


def _flag(*path: str, default: bool = False) -> Any:
    """A Go bool cell from a `*bool` field, kube's default when unset."""
    def cell(obj: Obj, now: datetime) -> bool:
        node: Any = obj
        for part in path:
            node = dct(node).get(part)
        return node if isinstance(node, bool) else default
    return cell


# --- networking.k8s.io ---


def _hosts(obj: Obj, now: datetime) -> str:
    """kube's `formatHosts`: up to three hosts, `*` when no rule names one."""
    rules = [dct(r) for r in lst(_spec(obj).get("rules"))]
    hosts: list[str] = []
    more = False
    for rule in rules:
        if len(hosts) == 3:
            more = True
        if not more and text(rule.get("host")):
            hosts.append(rule["host"])
    if not hosts:
        return "*"
    joined = ",".join(hosts)
    return f"{joined} + {len(rules) - 3} more..." if more else joined


def _parameters(obj: Obj, now: datetime) -> str:
    params = _spec(obj).get("parameters")
    if not isinstance(params, dict):
        return "<none>"
    shown = text(params.get("kind"))
    if params.get("apiGroup") is not None:
        shown += "." + text(params.get("apiGroup"))
    return f"{shown}/{text(params.get('name'))}"


INGRESS_COLUMNS = (
    col("Class", "string", ".spec.ingressClassName", _field("spec", "ingressClassName", default="<none>"),
        "The name of the IngressClass resource that should be used for additional configuration"),
    col("Hosts", "string", ".spec.rules", _hosts,
        "Hosts that incoming requests are matched against before the ingress rule"),
    col("Address", "string", ".status.loadBalancer.ingress", lambda o, n: load_balancer_addresses(_status(o)),
        "Address is a list containing ingress points for the load-balancer"),
    col("Ports", "string", ".spec.tls", lambda o, n: "80, 443" if lst(_spec(o).get("tls")) else "80",
        "Ports of TLS configurations that open"),
    AGE,
)
INGRESS_CLASS_COLUMNS = (
    col("Controller", "string", ".spec.controller", _field("spec", "controller"),
        "Controller that is responsible for handling this class"),
    col("Parameters", "string", ".spec.parameters", _parameters,
        "A reference to a resource with additional parameters"),
    AGE,
)
NETWORK_POLICY_COLUMNS = (
    col("Pod-Selector", "string", ".spec.podSelector", lambda o, n: format_selector(_spec(o).get("podSelector") or {}),
        doc("networking.v1.NetworkPolicySpec", "podSelector")),
    AGE,
)

# --- rbac.authorization.k8s.io ---


def _subjects(kind: str) -> Any:
    """kube's `rbac.SubjectsStrings`: users, groups, or `namespace/name` service accounts, `, `-joined."""
    def cell(obj: Obj, now: datetime) -> str:
        found = []
        for subject in lst(obj.get("subjects")):
            subject = dct(subject)
            if subject.get("kind") != kind:
                continue
            name = text(subject.get("name"))
            found.append(f"{text(subject.get('namespace'))}/{name}" if kind == "ServiceAccount" else name)
        return ", ".join(found)
    return cell


def _binding_columns(kind: str) -> tuple[PrinterColumn, ...]:
    label = kind[0].lower() + kind[1:]
    return (
        col("Role", "string", ".roleRef",
            lambda o, n: f"{text(dct(o.get('roleRef')).get('kind'))}/{text(dct(o.get('roleRef')).get('name'))}",
            doc(f"rbac.v1.{kind}", "roleRef")),
        AGE,
        col("Users", "string", ".subjects", _subjects("User"), f"Users in the {label}", priority=1),
        col("Groups", "string", ".subjects", _subjects("Group"), f"Groups in the {label}", priority=1),
        col("ServiceAccounts", "string", ".subjects", _subjects("ServiceAccount"), f"ServiceAccounts in the {label}",
            priority=1),
    )


# --- storage.k8s.io ---

_DEFAULT_CLASS = ("storageclass.kubernetes.io/is-default-class", "storageclass.beta.kubernetes.io/is-default-class")


def _class_name(obj: Obj, now: datetime) -> str:
    annotations = dct(meta(obj).get("annotations"))
    name = text(meta(obj).get("name"))
    return f"{name} (default)" if any(annotations.get(a) == "true" for a in _DEFAULT_CLASS) else name


STORAGE_CLASS_COLUMNS = (
    col("Name", "string", ".metadata.name", _class_name, NAME_DOC, format_="name"),
    col("Provisioner", "string", ".provisioner", _field("provisioner"), doc("storage.v1.StorageClass", "provisioner")),
    col("ReclaimPolicy", "string", ".reclaimPolicy", _field("reclaimPolicy", default="Delete"),
        doc("storage.v1.StorageClass", "reclaimPolicy")),
    col("VolumeBindingMode", "string", ".volumeBindingMode", _field("volumeBindingMode", default="Immediate"),
        doc("storage.v1.StorageClass", "volumeBindingMode")),
    col("AllowVolumeExpansion", "string", ".allowVolumeExpansion", _flag("allowVolumeExpansion"),
        doc("storage.v1.StorageClass", "allowVolumeExpansion")),
    AGE,
)


def _token_requests(obj: Obj, now: datetime) -> str:
    requests = _spec(obj).get("tokenRequests")
    if requests is None:
        return "<unset>"
    return ",".join(text(dct(r).get("audience")) for r in lst(requests))


_CSI = "storage.v1.CSIDriverSpec"
CSI_DRIVER_COLUMNS = (
    col("AttachRequired", "boolean", ".spec.attachRequired", _flag("spec", "attachRequired", default=True),
        doc(_CSI, "attachRequired")),
    col("PodInfoOnMount", "boolean", ".spec.podInfoOnMount", _flag("spec", "podInfoOnMount"),
        doc(_CSI, "podInfoOnMount")),
    col("StorageCapacity", "boolean", ".spec.storageCapacity", _flag("spec", "storageCapacity"),
        doc(_CSI, "storageCapacity")),
    col("TokenRequests", "string", ".spec.tokenRequests", _token_requests, doc(_CSI, "tokenRequests")),
    col("RequiresRepublish", "boolean", ".spec.requiresRepublish", _flag("spec", "requiresRepublish"),
        doc(_CSI, "requiresRepublish")),
    col("Modes", "string", ".spec.volumeLifecycleModes",
        lambda o, n: ",".join(text(m) for m in lst(_spec(o).get("volumeLifecycleModes"))) or "<none>",
        doc(_CSI, "volumeLifecycleModes")),
    AGE,
)
CSI_NODE_COLUMNS = (
    col("Drivers", "integer", ".spec.drivers", lambda o, n: len(lst(_spec(o).get("drivers"))),
        "Drivers indicates the number of CSI drivers registered on the node"),
    AGE,
)
CSI_STORAGE_CAPACITY_COLUMNS = (
    DEFAULT_COLUMNS[0],
    col("StorageClassName", "string", ".storageClassName", _field("storageClassName"),
        doc("storage.v1.CSIStorageCapacity", "storageClassName")),
    col("Capacity", "string", ".capacity", lambda o, n: quantity(o["capacity"]) if o.get("capacity") else "<unset>",
        doc("storage.v1.CSIStorageCapacity", "capacity")),
)
VOLUME_ATTACHMENT_COLUMNS = (
    col("Attacher", "string", ".spec.attacher", _field("spec", "attacher"),
        doc("storage.v1.VolumeAttachmentSpec", "attacher"), format_="name"),
    col("PV", "string", ".spec.source.persistentVolumeName", _field("spec", "source", "persistentVolumeName"),
        doc("storage.v1.VolumeAttachmentSource", "persistentVolumeName")),
    col("Node", "string", ".spec.nodeName", _field("spec", "nodeName"),
        doc("storage.v1.VolumeAttachmentSpec", "nodeName")),
    col("Attached", "boolean", ".status.attached", _flag("status", "attached"),
        doc("storage.v1.VolumeAttachmentStatus", "attached")),
    AGE,
)

# --- discovery.k8s.io ---


def _slice_ports(obj: Obj, now: datetime) -> str:
    ports = [dct(p) for p in lst(obj.get("ports"))]
    shown = []
    for port in ports[:3]:
        if port.get("port") is not None:
            shown.append(str(num(port["port"])))
        elif port.get("name") is not None:
            shown.append(text(port["name"]))
        else:
            shown.append("*")
    return more_string(shown, len(ports), 3)


def _slice_endpoints(obj: Obj, now: datetime) -> str:
    addresses = [text(a) for e in lst(obj.get("endpoints")) for a in lst(dct(e).get("addresses"))]
    return more_string(addresses[:3], len(addresses), 3)


ENDPOINT_SLICE_COLUMNS = (
    col("AddressType", "string", ".addressType", _field("addressType"),
        doc("discovery.v1.EndpointSlice", "addressType")),
    col("Ports", "string", ".ports", _slice_ports, doc("discovery.v1.EndpointSlice", "ports")),
    col("Endpoints", "string", ".endpoints", _slice_endpoints, doc("discovery.v1.EndpointSlice", "endpoints")),
    AGE,
)

# --- scheduling, node, certificates, coordination ---

PRIORITY_CLASS_COLUMNS = (
    col("Value", "integer", ".value", lambda o, n: num(o.get("value")), doc("scheduling.v1.PriorityClass", "value")),
    col("Global-Default", "boolean", ".globalDefault", _flag("globalDefault"),
        doc("scheduling.v1.PriorityClass", "globalDefault")),
    AGE,
    # Not a wide column in kube's definitions: `kubectl get priorityclasses` shows it.
    col("PreemptionPolicy", "string", ".preemptionPolicy", _field("preemptionPolicy", default="PreemptLowerPriority"),
        doc("scheduling.v1.PriorityClass", "preemptionPolicy")),
)
# kube describes Handler with ObjectMeta's (absent) `handler` doc: an empty description.
RUNTIME_CLASS_COLUMNS = (col("Handler", "string", ".handler", _field("handler")), AGE)


def _csr_condition(obj: Obj, now: datetime) -> str:
    """kube's `extractCSRStatus`: Denied, Approved or Pending, then `,Failed` and `,Issued`."""
    kinds = {dct(c).get("type") for c in lst(_status(obj).get("conditions"))}
    shown = "Denied" if "Denied" in kinds else "Approved" if "Approved" in kinds else "Pending"
    if "Failed" in kinds:
        shown += ",Failed"
    if _status(obj).get("certificate"):
        shown += ",Issued"
    return shown


def _requested_duration(obj: Obj, now: datetime) -> str:
    seconds = _spec(obj).get("expirationSeconds")
    if seconds is None:
        return "<none>"
    return human_duration_ns(num(seconds) * 1_000_000_000)


_CSR_SPEC = "certificates.v1.CertificateSigningRequestSpec"
CSR_COLUMNS = (
    AGE,
    col("SignerName", "string", ".spec.signerName", _field("spec", "signerName", default="<none>"),
        doc(_CSR_SPEC, "signerName")),
    col("Requestor", "string", ".spec.username", _field("spec", "username"), doc(_CSR_SPEC, "request")),
    col("RequestedDuration", "string", ".spec.expirationSeconds", _requested_duration,
        doc(_CSR_SPEC, "expirationSeconds")),
    col("Condition", "string", ".status.conditions", _csr_condition,
        doc("certificates.v1.CertificateSigningRequestStatus", "conditions")),
)
LEASE_COLUMNS = (
    col("Holder", "string", ".spec.holderIdentity", _field("spec", "holderIdentity"),
        doc("coordination.v1.LeaseSpec", "holderIdentity")),
    AGE,
)

# --- flowcontrol.apiserver.k8s.io (kube's v1 defaults: precedence 1000, 30 shares, 64 queues of 8 and 50) ---


def _missing_level(obj: Obj, now: datetime) -> str:
    for cond in lst(_status(obj).get("conditions")):
        if dct(cond).get("type") == "Dangling":
            return text(dct(cond).get("status"))
    return "?"


def _limited(field: str, default: int, queuing: bool = False) -> Any:
    def cell(obj: Obj, now: datetime) -> Any:
        limited = _spec(obj).get("limited")
        if not isinstance(limited, dict):
            return "<none>"
        source = dct(limited.get("limitResponse")).get("queuing") if queuing else limited
        if not isinstance(source, dict):
            return "<none>"
        value = source.get(field)
        return num(value) if value is not None and (value or not queuing) else default
    return cell


_FS_SPEC = "flowcontrol.v1.FlowSchemaSpec"
_QUEUING = "flowcontrol.v1.QueuingConfiguration"
FLOW_SCHEMA_COLUMNS = (
    col("PriorityLevel", "string", ".spec.priorityLevelConfiguration.name",
        _field("spec", "priorityLevelConfiguration", "name"),
        doc("flowcontrol.v1.PriorityLevelConfigurationReference", "name")),
    col("MatchingPrecedence", "string", ".spec.matchingPrecedence",
        lambda o, n: num(_spec(o).get("matchingPrecedence")) or 1000, doc(_FS_SPEC, "matchingPrecedence")),
    col("DistinguisherMethod", "string", ".spec.distinguisherMethod.type",
        lambda o, n: text(dct(_spec(o)["distinguisherMethod"]).get("type"))
        if _spec(o).get("distinguisherMethod") is not None else "<none>", doc(_FS_SPEC, "distinguisherMethod")),
    AGE,
    col("MissingPL", "string", ".status.conditions", _missing_level,
        "references a broken or non-existent PriorityLevelConfiguration"),
)
PRIORITY_LEVEL_COLUMNS = (
    col("Type", "string", ".spec.type", _field("spec", "type"),
        doc("flowcontrol.v1.PriorityLevelConfigurationSpec", "type")),
    col("NominalConcurrencyShares", "string", ".spec.limited.nominalConcurrencyShares",
        _limited("nominalConcurrencyShares", 30),
        doc("flowcontrol.v1.LimitedPriorityLevelConfiguration", "nominalConcurrencyShares")),
    col("Queues", "string", ".spec.limited.limitResponse.queuing.queues", _limited("queues", 64, True),
        doc(_QUEUING, "queues")),
    col("HandSize", "string", ".spec.limited.limitResponse.queuing.handSize", _limited("handSize", 8, True),
        doc(_QUEUING, "handSize")),
    col("QueueLengthLimit", "string", ".spec.limited.limitResponse.queuing.queueLengthLimit",
        _limited("queueLengthLimit", 50, True), doc(_QUEUING, "queueLengthLimit")),
    AGE,
)

# --- admissionregistration.k8s.io ---

WEBHOOK_CONFIGURATION_COLUMNS = (
    col("Webhooks", "integer", ".webhooks", lambda o, n: len(lst(o.get("webhooks"))),
        "Webhooks indicates the number of webhooks registered in this configuration"),
    AGE,
)


def _param_kind(obj: Obj, now: datetime) -> str:
    kind = _spec(obj).get("paramKind")
    return f"{text(dct(kind).get('apiVersion'))}/{text(dct(kind).get('kind'))}" if kind is not None else "<unset>"


VALIDATING_POLICY_COLUMNS = (
    col("Validations", "integer", ".spec.validations", lambda o, n: len(lst(_spec(o).get("validations"))),
        "Validations indicates the number of validation rules defined in this configuration"),
    col("ParamKind", "string", ".spec.paramKind", _param_kind,
        "ParamKind specifies the kind of resources used to parameterize this policy"),
    AGE,
)

PRINTER_COLUMNS: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    **CORE_PRINTER_COLUMNS,
    **WORKLOAD_PRINTER_COLUMNS,
    ("networking.k8s.io", "ingresses"): INGRESS_COLUMNS,
    ("networking.k8s.io", "ingressclasses"): INGRESS_CLASS_COLUMNS,
    ("networking.k8s.io", "networkpolicies"): NETWORK_POLICY_COLUMNS,
    ("rbac.authorization.k8s.io", "roles"): DEFAULT_COLUMNS,
    ("rbac.authorization.k8s.io", "clusterroles"): DEFAULT_COLUMNS,
    ("rbac.authorization.k8s.io", "rolebindings"): _binding_columns("RoleBinding"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"): _binding_columns("ClusterRoleBinding"),
    ("storage.k8s.io", "storageclasses"): STORAGE_CLASS_COLUMNS,
    ("storage.k8s.io", "csidrivers"): CSI_DRIVER_COLUMNS,
    ("storage.k8s.io", "csinodes"): CSI_NODE_COLUMNS,
    ("storage.k8s.io", "csistoragecapacities"): CSI_STORAGE_CAPACITY_COLUMNS,
    ("storage.k8s.io", "volumeattachments"): VOLUME_ATTACHMENT_COLUMNS,
    ("discovery.k8s.io", "endpointslices"): ENDPOINT_SLICE_COLUMNS,
    ("scheduling.k8s.io", "priorityclasses"): PRIORITY_CLASS_COLUMNS,
    ("node.k8s.io", "runtimeclasses"): RUNTIME_CLASS_COLUMNS,
    ("certificates.k8s.io", "certificatesigningrequests"): CSR_COLUMNS,
    ("coordination.k8s.io", "leases"): LEASE_COLUMNS,
    ("flowcontrol.apiserver.k8s.io", "flowschemas"): FLOW_SCHEMA_COLUMNS,
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"): PRIORITY_LEVEL_COLUMNS,
    ("admissionregistration.k8s.io", "mutatingwebhookconfigurations"): WEBHOOK_CONFIGURATION_COLUMNS,
    ("admissionregistration.k8s.io", "validatingwebhookconfigurations"): WEBHOOK_CONFIGURATION_COLUMNS,
    ("admissionregistration.k8s.io", "validatingadmissionpolicies"): VALIDATING_POLICY_COLUMNS,
}
