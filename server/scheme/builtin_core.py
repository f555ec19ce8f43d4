"""Built-in types a controller touches: configmaps, secrets, serviceaccounts, events, leases.

Served like kube-apiserver serves them (issue 7). `--core-resources=false`
leaves all of them out; namespaces, CRDs and the auth reviews stay.

Printer columns are JSONPath cells, so counts kube computes in Go (DATA of
configmaps and secrets, SECRETS of serviceaccounts) are not shown.
"""
from __future__ import annotations

from typing import Any

from server.scheme.builtin import EVENTS
from server.scheme.definitions import PrinterColumn, ResourceDef, VersionDef

Schema = dict[str, Any]

_TYPE_META: Schema = {
    "apiVersion": {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    },
    "kind": {"type": "string", "description": "Kind is a string value representing the REST resource this object represents."},
    "metadata": {"type": "object", "description": "Standard object's metadata."},
}


def _string_map(description: str) -> Schema:
    return {"type": "object", "description": description, "additionalProperties": {"type": "string"}}


def _object(description: str, properties: Schema, **extra: Any) -> Schema:
    return {"type": "object", "description": description, "properties": {**_TYPE_META, **properties}, **extra}


_OBJECT_REFERENCE: Schema = {
    "type": "object",
    "description": "ObjectReference contains enough information to let you inspect or modify the referred object.",
    "x-kubernetes-map-type": "atomic",
    "properties": {
        f: {"type": "string"} for f in ("apiVersion", "fieldPath", "kind", "name", "namespace", "resourceVersion", "uid")
    },
}

_IMMUTABLE_DESCRIPTION = (
    "Immutable, if set to true, ensures that data stored in the {kind} cannot be updated (only object metadata "
    "can be modified). If not set to true, the field can be modified at any time. Defaulted to nil."
)

_CONFIG_MAP_SCHEMA = _object(
    "ConfigMap holds configuration data for pods to consume.",
    {
        "data": _string_map(
            "Data contains the configuration data. Each key must consist of alphanumeric characters, '-', '_' "
            "or '.'. Values with non-UTF-8 byte sequences must use the BinaryData field. The keys stored in Data "
            "must not overlap with the keys in the BinaryData field, this is enforced during validation process."),
        "binaryData": _string_map(
            "BinaryData contains the binary data. Each key must consist of alphanumeric characters, '-', '_' or "
            "'.'. BinaryData can contain byte sequences that are not in the UTF-8 range. The keys stored in "
            "BinaryData must not overlap with the ones in the Data field, this is enforced during validation "
            "process."),
        "immutable": {"type": "boolean", "description": _IMMUTABLE_DESCRIPTION.format(kind="ConfigMap")},
    },
)

CONFIG_MAPS = ResourceDef(
    group="",
    kind="ConfigMap",
    plural="configmaps",
    singular="configmap",
    namespaced=True,
    short_names=("cm",),
    builtin=True,
    versions=(VersionDef(name="v1", storage=True, schema=_CONFIG_MAP_SCHEMA, printer_columns=(
        PrinterColumn(name="Data", type="integer", json_path=".data", count_of=("data", "binaryData")),)),),
)

_SECRET_SCHEMA = _object(
    "Secret holds secret data of a certain type. The total bytes of the values in the Data field must be less "
    "than MaxSecretSize bytes.",
    {
        "data": _string_map(
            "Data contains the secret data. Each key must consist of alphanumeric characters, '-', '_' or '.'. "
            "The serialized form of the secret data is a base64 encoded string, representing the arbitrary "
            "(possibly non-string) data value here. Described in https://tools.ietf.org/html/rfc4648#section-4"),
        "stringData": _string_map(
            "stringData allows specifying non-binary secret data in string form. It is provided as a write-only "
            "input field for convenience. All keys and values are merged into the data field on write, "
            "overwriting any existing values. The stringData field is never output when reading from the API."),
        "type": {
            "type": "string",
            "description": "Used to facilitate programmatic handling of secret data. More info: "
                           "https://kubernetes.io/docs/concepts/configuration/secret/#secret-types",
        },
        "immutable": {"type": "boolean", "description": _IMMUTABLE_DESCRIPTION.format(kind="Secret")},
    },
)

SECRETS = ResourceDef(
    group="",
    kind="Secret",
    plural="secrets",
    singular="secret",
    namespaced=True,
    builtin=True,
    extra_selectable_fields=("type",),
    versions=(
        VersionDef(
            name="v1",
            storage=True,
            schema=_SECRET_SCHEMA,
            printer_columns=(PrinterColumn(name="Type", type="string", json_path=".type"),
                             PrinterColumn(name="Data", type="integer", json_path=".data", count_of=("data",))),
        ),
    ),
)

_SERVICE_ACCOUNT_SCHEMA = _object(
    "ServiceAccount binds together: * a name, understood by users, and perhaps by peripheral systems, for an "
    "identity * a principal that can be authenticated and authorized * a set of secrets",
    {
        "automountServiceAccountToken": {
            "type": "boolean",
            "description": "AutomountServiceAccountToken indicates whether pods running as this service account "
                           "should have an API token automatically mounted.",
        },
        "imagePullSecrets": {
            "type": "array",
            "description": "ImagePullSecrets is a list of references to secrets in the same namespace to use for "
                           "pulling any images in pods that reference this ServiceAccount.",
            "x-kubernetes-list-type": "atomic",
            "items": {
                "type": "object",
                "description": "LocalObjectReference contains enough information to let you locate the referenced "
                               "object inside the same namespace.",
                "x-kubernetes-map-type": "atomic",
                "properties": {"name": {"type": "string", "description": "Name of the referent."}},
            },
        },
        "secrets": {
            "type": "array",
            "description": "Secrets is a list of the secrets in the same namespace that pods running using this "
                           "ServiceAccount are allowed to use.",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
            "x-kubernetes-patch-merge-key": "name",
            "x-kubernetes-patch-strategy": "merge",
            "items": _OBJECT_REFERENCE,
        },
    },
)

SERVICE_ACCOUNTS = ResourceDef(
    group="",
    kind="ServiceAccount",
    plural="serviceaccounts",
    singular="serviceaccount",
    namespaced=True,
    short_names=("sa",),
    builtin=True,
    versions=(VersionDef(name="v1", storage=True, schema=_SERVICE_ACCOUNT_SCHEMA, printer_columns=(
        PrinterColumn(name="Secrets", type="integer", json_path=".secrets", count_of=("secrets",)),)),),
)

_EVENT_V1_SCHEMA = _object(
    "Event is a report of an event somewhere in the cluster. It generally denotes some state change in the system.",
    {
        "eventTime": {"type": "string", "description": "eventTime is the time when this Event was first observed."},
        "action": {"type": "string", "description": "action is what action was taken/failed regarding to the regarding object."},
        "reason": {"type": "string", "description": "reason is why the action was taken. It is human-readable."},
        "note": {"type": "string", "description": "note is a human-readable description of the status of this operation."},
        "type": {"type": "string", "description": "type is the type of this event (Normal, Warning)."},
        "regarding": dict(_OBJECT_REFERENCE, description="regarding contains the object this Event is about."),
        "related": dict(_OBJECT_REFERENCE, description="related is the optional secondary object for more complex actions."),
        "reportingController": {"type": "string", "description": "reportingController is the name of the controller that emitted this Event."},
        "reportingInstance": {"type": "string", "description": "reportingInstance is the ID of the controller instance."},
        "series": {
            "type": "object",
            "description": "series is data about the Event series this event represents.",
            "properties": {"count": {"type": "integer"}, "lastObservedTime": {"type": "string"}},
        },
        "deprecatedCount": {"type": "integer", "description": "deprecatedCount is the deprecated field assuring backward compatibility with core.v1 Event type."},
    },
    **{"x-kubernetes-preserve-unknown-fields": True},
)

# events.k8s.io/v1 events: the newer Event API (client-go's events recorder). Stored apart from core v1 events.
EVENTS_V1 = ResourceDef(
    group="events.k8s.io",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    short_names=("ev",),
    builtin=True,
    extra_selectable_fields=tuple(f"regarding.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath",
    )) + ("reason", "reportingController", "type"),
    versions=(
        VersionDef(
            name="v1",
            storage=True,
            schema=_EVENT_V1_SCHEMA,
            printer_columns=(
                PrinterColumn(name="Type", type="string", json_path=".type"),
                PrinterColumn(name="Reason", type="string", json_path=".reason"),
                PrinterColumn(name="Object", type="string", json_path=".regarding.name"),
                PrinterColumn(name="Message", type="string", json_path=".note"),
            ),
        ),
    ),
)

_LEASE_SCHEMA = _object(
    "Lease defines a lease concept.",
    {
        "spec": {
            "type": "object",
            "description": "spec contains the specification of the Lease.",
            "properties": {
                "holderIdentity": {"type": "string", "description": "holderIdentity contains the identity of the holder of a current lease."},
                "leaseDurationSeconds": {
                    "type": "integer", "format": "int32",
                    "description": "leaseDurationSeconds is a duration that candidates for a lease need to wait to "
                                   "force acquire it. This is measured against the time of last observed renewTime.",
                },
                "acquireTime": {"type": "string", "description": "acquireTime is a time when the current lease was acquired (MicroTime)."},
                "renewTime": {"type": "string", "description": "renewTime is a time when the current holder of a lease has last updated the lease (MicroTime)."},
                "leaseTransitions": {
                    "type": "integer", "format": "int32",
                    "description": "leaseTransitions is the number of transitions of a lease between holders.",
                },
                "strategy": {"type": "string", "description": "Strategy indicates the strategy for picking the leader for coordinated leader election."},
                "preferredHolder": {"type": "string", "description": "PreferredHolder signals to a lease holder that the lease has a more optimal holder."},
            },
        },
    },
)

LEASES = ResourceDef(
    group="coordination.k8s.io",
    kind="Lease",
    plural="leases",
    singular="lease",
    namespaced=True,
    builtin=True,
    versions=(
        VersionDef(
            name="v1",
            storage=True,
            schema=_LEASE_SCHEMA,
            printer_columns=(PrinterColumn(name="Holder", type="string", json_path=".spec.holderIdentity"),),
        ),
    ),
)

# Everything `--core-resources=false` leaves out.
CORE_RESOURCES: tuple[ResourceDef, ...] = (CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS, EVENTS, EVENTS_V1, LEASES)
