"""The `meta/v1` schemas every OpenAPI document refers to (ObjectMeta, ListMeta, Status, ...).

They carry descriptions because `kubectl explain <resource>.metadata` prints
them. Built by `meta_schemas(ref)` so one source serves OpenAPI v3
(`#/components/schemas/...`) and v2 (`#/definitions/...`).
"""
from __future__ import annotations

from typing import Any, Callable

Ref = Callable[[str], dict[str, Any]]

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"
STATUS = f"{META}.Status"
DELETE_OPTIONS = f"{META}.DeleteOptions"
PATCH = f"{META}.Patch"
API_RESOURCE_LIST = f"{META}.APIResourceList"

_CONVENTIONS = "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md"

API_VERSION_DESCRIPTION = (
    "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
    "recognized schemas to the latest internal value, and may reject unrecognized values. "
    f"More info: {_CONVENTIONS}#resources"
)
KIND_DESCRIPTION = (
    "Kind is a string value representing the REST resource this object represents. Servers may infer this "
    "from the endpoint the client submits requests to. Cannot be updated. In CamelCase. "
    f"More info: {_CONVENTIONS}#types-kinds"
)
OBJECT_META_DESCRIPTION = f"Standard object's metadata. More info: {_CONVENTIONS}#metadata"
LIST_META_DESCRIPTION = f"Standard list metadata. More info: {_CONVENTIONS}#metadata"

_DRY_RUN = (
    "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun "
    "directive will result in an error response and no further processing of the request. Valid values are: "
    "- All: all dry run stages will be processed"
)
_GRACE = (
    "The duration in seconds before the object should be deleted. Value must be non-negative integer. The "
    "value zero indicates delete immediately. If this value is nil, the default grace period for the "
    "specified type will be used. Defaults to a per object value if not specified. zero means delete immediately."
)
_ORPHAN = (
    "Deprecated: please use the PropagationPolicy, this field will be deprecated in 1.7. Should the dependent "
    'objects be orphaned. If true/false, the "orphan" finalizer will be added to/removed from the object\'s '
    "finalizers list. Either this field or PropagationPolicy may be set, but not both."
)
_PROPAGATION = (
    "Whether and how garbage collection will be performed. Either this field or OrphanDependents may be set, "
    "but not both. The default policy is decided by the existing finalizer set in the metadata.finalizers and "
    "the resource-specific default policy. Acceptable values are: 'Orphan' - orphan the dependents; "
    "'Background' - allow the garbage collector to delete the dependents in the background; 'Foreground' - a "
    "cascading policy that deletes all dependents in the foreground."
)
_SELF_LINK = "Deprecated: selfLink is a legacy read-only field that is no longer populated by the system."
DESCRIPTIONS = {"dryRun": _DRY_RUN, "gracePeriodSeconds": _GRACE, "orphanDependents": _ORPHAN, "propagationPolicy": _PROPAGATION}


def _s(description: str, type_: str = "string", **extra: Any) -> dict[str, Any]:
    return {"description": description, "type": type_, **extra}


def _strings(description: str) -> dict[str, Any]:
    return {"description": description, "type": "array", "items": {"type": "string", "default": ""}}


def _string_map(description: str) -> dict[str, Any]:
    return {"description": description, "type": "object", "additionalProperties": {"type": "string", "default": ""}}


def _with(ref: Ref, name: str, description: str) -> dict[str, Any]:
    return {**ref(name), "description": description}


def _type_meta() -> dict[str, Any]:
    return {"apiVersion": _s(API_VERSION_DESCRIPTION), "kind": _s(KIND_DESCRIPTION)}


def _gvk(kind: str) -> list[dict[str, str]]:
    return [{"group": "", "version": "v1", "kind": kind}]


def _object_meta(ref: Ref) -> dict[str, Any]:
    props = {
        "annotations": _string_map(
            "Annotations is an unstructured key value map stored with a resource that may be set by external "
            "tools to store and retrieve arbitrary metadata. They are not queryable and should be preserved "
            "when modifying objects. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/annotations"
        ),
        "creationTimestamp": _with(
            ref, f"{META}.Time",
            "CreationTimestamp is a timestamp representing the server time when this object was created. It is "
            "not guaranteed to be set in happens-before order across separate operations. Clients may not set "
            "this value. It is represented in RFC3339 form and is in UTC.\n\nPopulated by the system. "
            f"Read-only. Null for lists. More info: {_CONVENTIONS}#metadata",
        ),
        "deletionGracePeriodSeconds": _s(
            "Number of seconds allowed for this object to gracefully terminate before it will be removed from "
            "the system. Only set when deletionTimestamp is also set. May only be shortened. Read-only.",
            "integer", format="int64",
        ),
        "deletionTimestamp": _with(
            ref, f"{META}.Time",
            "DeletionTimestamp is RFC 3339 date and time at which this resource will be deleted. This field is "
            "set by the server when a graceful deletion is requested by the user, and is not directly settable "
            "by a client. As long as the finalizers list contains items, deletion is blocked.\n\nPopulated by "
            f"the system when a graceful deletion is requested. Read-only. More info: {_CONVENTIONS}#metadata",
        ),
        "finalizers": {
            **_strings(
                "Must be empty before the object is deleted from the registry. Each entry is an identifier for "
                "the responsible component that will remove the entry from the list. If the deletionTimestamp "
                "of the object is non-nil, entries in this list can only be removed. Finalizers may be "
                "processed and removed in any order."
            ),
            "x-kubernetes-list-type": "set",
            "x-kubernetes-patch-strategy": "merge",
        },
        "generateName": _s(
            "GenerateName is an optional prefix, used by the server, to generate a unique name ONLY IF the "
            "Name field has not been provided. If this field is used, the name returned to the client will be "
            "different than the name passed. This value will also be combined with a unique suffix. The "
            "provided value has the same validation rules as the Name field, and may be truncated by the "
            "length of the suffix required to make the value unique on the server.\n\nApplied only if Name is "
            f"not specified. More info: {_CONVENTIONS}#idempotency"
        ),
        "generation": _s("A sequence number representing a specific generation of the desired state. "
                         "Populated by the system. Read-only.", "integer", format="int64"),
        "labels": _string_map(
            "Map of string keys and values that can be used to organize and categorize (scope and select) "
            "objects. May match selectors of replication controllers and services. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/labels"
        ),
        "managedFields": {
            "description": "ManagedFields maps workflow-id and version to the set of fields that are managed by "
            "that workflow. This is mostly for internal housekeeping, and users typically shouldn't need to set "
            "or understand this field.",
            "type": "array",
            "items": {**ref(f"{META}.ManagedFieldsEntry"), "default": {}},
            "x-kubernetes-list-type": "atomic",
        },
        "name": _s(
            "Name must be unique within a namespace. Is required when creating resources, although some "
            "resources may allow a client to request the generation of an appropriate name automatically. Name "
            "is primarily intended for creation idempotence and configuration definition. Cannot be updated. "
            "More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names"
        ),
        "namespace": _s(
            "Namespace defines the space within which each name must be unique. An empty namespace is "
            'equivalent to the "default" namespace, but "default" is the canonical representation. Not all '
            "objects are required to be scoped to a namespace - the value of this field for those objects "
            "will be empty.\n\nMust be a DNS_LABEL. Cannot be updated. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces"
        ),
        "ownerReferences": {
            "description": "List of objects depended by this object. If ALL objects in the list have been "
            "deleted, this object will be garbage collected. If this object is managed by a controller, then "
            "an entry in this list will point to this controller, with the controller field set to true. There "
            "cannot be more than one managing controller.",
            "type": "array",
            "items": {**ref(f"{META}.OwnerReference"), "default": {}},
            "x-kubernetes-list-map-keys": ["uid"],
            "x-kubernetes-list-type": "map",
            "x-kubernetes-patch-merge-key": "uid",
            "x-kubernetes-patch-strategy": "merge",
        },
        "resourceVersion": _s(
            "An opaque value that represents the internal version of this object that can be used by clients "
            "to determine when objects have changed. May be used for optimistic concurrency, change detection, "
            "and the watch operation on a resource or set of resources. Clients must treat these values as "
            "opaque and passed unmodified back to the server. They may only be valid for a particular resource "
            "or set of resources.\n\nPopulated by the system. Read-only. Value must be treated as opaque by "
            f"clients and . More info: {_CONVENTIONS}#concurrency-control-and-consistency"
        ),
        "selfLink": _s(_SELF_LINK),
        "uid": _s(
            "UID is the unique in time and space value for this object. It is typically generated by the "
            "server on successful creation of a resource and is not allowed to change on PUT operations.\n\n"
            "Populated by the system. Read-only. More info: "
            "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids"
        ),
    }
    return {
        "description": "ObjectMeta is metadata that all persisted resources must have, which includes all "
        "objects users must create.",
        "type": "object",
        "properties": props,
    }


def _list_meta() -> dict[str, Any]:
    return {
        "description": "ListMeta describes metadata that synthetic resources must have, including lists and "
        "various status objects. A resource may have only one of {ObjectMeta, ListMeta}.",
        "type": "object",
        "properties": {
            "continue": _s(
                "continue may be set if the user set a limit on the number of items returned, and indicates "
                "that the server has more data available. The value is opaque and may be used to issue another "
                "request to the endpoint that served this list to retrieve the next set of available objects."
            ),
            "remainingItemCount": _s(
                "remainingItemCount is the number of subsequent items in the list which are not included in "
                "this list response. Clients should not rely on the remainingItemCount to be set or to be exact.",
                "integer", format="int64",
            ),
            "resourceVersion": _s(
                "String that identifies the server's internal version of this object that can be used by "
                "clients to determine when objects have changed. Value must be treated as opaque by clients "
                "and passed unmodified back to the server. Populated by the system. Read-only. More info: "
                f"{_CONVENTIONS}#concurrency-control-and-consistency"
            ),
            "selfLink": _s(_SELF_LINK),
        },
    }


def _managed_fields_entry(ref: Ref) -> dict[str, Any]:
    return {
        "description": "ManagedFieldsEntry is a workflow-id, a FieldSet and the group version of the resource "
        "that the fieldset applies to.",
        "type": "object",
        "properties": {
            "apiVersion": _s(
                'APIVersion defines the version of this resource that this field set applies to. The format is '
                '"group/version" just like the top-level APIVersion field.'
            ),
            "fieldsType": _s(
                "FieldsType is the discriminator for the different fields format and version. There is "
                'currently only one possible value: "FieldsV1"'
            ),
            "fieldsV1": _with(ref, f"{META}.FieldsV1", 'FieldsV1 holds the first JSON version format as described in the "FieldsV1" type.'),
            "manager": _s("Manager is an identifier of the workflow managing these fields."),
            "operation": _s(
                "Operation is the type of operation which lead to this ManagedFieldsEntry being created. The "
                "only valid values for this field are 'Apply' and 'Update'."
            ),
            "subresource": _s(
                "Subresource is the name of the subresource used to update that object, or empty string if the "
                "object was updated through the main resource."
            ),
            "time": _with(ref, f"{META}.Time", "Time is the timestamp of when the ManagedFields entry was added."),
        },
    }


def _owner_reference() -> dict[str, Any]:
    return {
        "description": "OwnerReference contains enough information to let you identify an owning object. An "
        "owning object must be in the same namespace as the dependent, or be cluster-scoped, so there is no "
        "namespace field.",
        "type": "object",
        "required": ["apiVersion", "kind", "name", "uid"],
        "properties": {
            "apiVersion": _s("API version of the referent.", default=""),
            "blockOwnerDeletion": _s(
                'If true, AND if the owner has the "foregroundDeletion" finalizer, then the owner cannot be '
                "deleted from the key-value store until this reference is removed.", "boolean",
            ),
            "controller": _s("If true, this reference points to the managing controller.", "boolean"),
            "kind": _s(f"Kind of the referent. More info: {_CONVENTIONS}#types-kinds", default=""),
            "name": _s("Name of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names", default=""),
            "uid": _s("UID of the referent. More info: https://kubernetes.io/docs/concepts/overview/working-with-objects/names#uids", default=""),
        },
        "x-kubernetes-map-type": "atomic",
    }


def _status(ref: Ref) -> dict[str, Any]:
    return {
        "description": "Status is a return value for calls that don't return other objects.",
        "type": "object",
        "properties": {
            **_type_meta(),
            "code": _s("Suggested HTTP return code for this status, 0 if not set.", "integer", format="int32"),
            "details": _with(
                ref, f"{META}.StatusDetails",
                "Extended data associated with the reason.  Each reason may define its own extended details. "
                "This field is optional and the data returned is not guaranteed to conform to any schema except "
                "that defined by the reason type.",
            ),
            "message": _s("A human-readable description of the status of this operation."),
            "metadata": _with(ref, LIST_META, LIST_META_DESCRIPTION),
            "reason": _s(
                'A machine-readable description of why this operation is in the "Failure" status. If this value '
                "is empty there is no information available. A Reason clarifies an HTTP status code but does "
                "not override it."
            ),
            "status": _s(f'Status of the operation. One of: "Success" or "Failure". More info: {_CONVENTIONS}#spec-and-status'),
        },
        "x-kubernetes-group-version-kind": _gvk("Status"),
    }


def _status_details(ref: Ref) -> dict[str, Any]:
    return {
        "description": "StatusDetails is a set of additional properties that MAY be set by the server to "
        "provide additional information about a response.",
        "type": "object",
        "properties": {
            "causes": {
                "description": "The Causes array includes more details associated with the StatusReason "
                "failure. Not all StatusReasons may provide detailed causes.",
                "type": "array",
                "items": {**ref(f"{META}.StatusCause"), "default": {}},
                "x-kubernetes-list-type": "atomic",
            },
            "group": _s("The group attribute of the resource associated with the status StatusReason."),
            "kind": _s("The kind attribute of the resource associated with the status StatusReason."),
            "name": _s("The name attribute of the resource associated with the status StatusReason (when there is a single name which can be described)."),
            "retryAfterSeconds": _s("If specified, the time in seconds before the operation should be retried.",
                                    "integer", format="int32"),
            "uid": _s("UID of the resource. (when there is a single resource which can be described)."),
        },
    }


def _status_cause() -> dict[str, Any]:
    return {
        "description": "StatusCause provides more information about an api.Status failure, including cases "
        "when multiple errors are encountered.",
        "type": "object",
        "properties": {
            "field": _s(
                "The field of the resource that has caused this error, as named by its JSON serialization. May "
                "include dot and postfix notation for nested attributes. Arrays are zero-indexed."
            ),
            "message": _s("A human-readable description of the cause of the error.  This field may be presented as-is to a reader."),
            "reason": _s("A machine-readable description of the cause of the error. If this value is empty there is no information available."),
        },
    }


def _delete_options(ref: Ref) -> dict[str, Any]:
    return {
        "description": "DeleteOptions may be provided when deleting an API object.",
        "type": "object",
        "properties": {
            **_type_meta(),
            "dryRun": {**_strings(_DRY_RUN), "x-kubernetes-list-type": "atomic"},
            "gracePeriodSeconds": _s(_GRACE, "integer", format="int64"),
            "orphanDependents": _s(_ORPHAN, "boolean"),
            "preconditions": _with(
                ref, f"{META}.Preconditions",
                "Must be fulfilled before a deletion is carried out. If not possible, a 409 Conflict status will be returned.",
            ),
            "propagationPolicy": _s(_PROPAGATION),
        },
        "x-kubernetes-group-version-kind": _gvk("DeleteOptions"),
    }


def _api_resource() -> dict[str, Any]:
    return {
        "description": "APIResource specifies the name of a resource and whether it is namespaced.",
        "type": "object",
        "required": ["name", "singularName", "namespaced", "kind", "verbs"],
        "properties": {
            "categories": _strings("categories is a list of the grouped resources this resource belongs to (e.g. 'all')"),
            "group": _s("group is the preferred group of the resource.  Empty implies the group of the containing resource list."),
            "kind": _s("kind is the kind for the resource (e.g. 'Foo' is the kind for a resource 'foo')", default=""),
            "name": _s("name is the plural name of the resource.", default=""),
            "namespaced": _s("namespaced indicates if a resource is namespaced or not.", "boolean", default=False),
            "shortNames": _strings("shortNames is a list of suggested short names of the resource."),
            "singularName": _s("singularName is the singular name of the resource.", default=""),
            "storageVersionHash": _s("The hash value of the storage version, the version this resource is converted to when written to the data store. Value must be treated as opaque by clients."),
            "verbs": _strings("verbs is a list of supported kube verbs (this includes get, list, watch, create, update, patch, delete, deletecollection, and proxy)"),
            "version": _s("version is the preferred version of the resource.  Empty implies the version of the containing resource list."),
        },
    }


def _api_resource_list(ref: Ref) -> dict[str, Any]:
    return {
        "description": "APIResourceList is a list of APIResource, it is used to expose the name of the resources "
        "supported in a specific group and version, and if the resource is namespaced.",
        "type": "object",
        "required": ["groupVersion", "resources"],
        "properties": {
            **_type_meta(),
            "groupVersion": _s("groupVersion is the group and version this APIResourceList is for.", default=""),
            "resources": {
                "description": "resources contains the name of the resources and if they are namespaced.",
                "type": "array",
                "items": {**ref(f"{META}.APIResource"), "default": {}},
                "x-kubernetes-list-type": "atomic",
            },
        },
        "x-kubernetes-group-version-kind": _gvk("APIResourceList"),
    }


def meta_schemas(ref: Ref) -> dict[str, dict[str, Any]]:
    """Every meta/v1 schema a resource document refers to, by kube's definition name."""
    return {
        f"{META}.APIResource": _api_resource(),
        API_RESOURCE_LIST: _api_resource_list(ref),
        DELETE_OPTIONS: _delete_options(ref),
        f"{META}.FieldsV1": {
            "description": "FieldsV1 stores a set of fields in a data structure like a Trie, in JSON format.",
            "type": "object",
        },
        LIST_META: _list_meta(),
        f"{META}.ManagedFieldsEntry": _managed_fields_entry(ref),
        OBJECT_META: _object_meta(ref),
        f"{META}.OwnerReference": _owner_reference(),
        PATCH: {
            "description": "Patch is provided to give a concrete name and type to the Kubernetes PATCH request body.",
            "type": "object",
        },
        f"{META}.Preconditions": {
            "description": "Preconditions must be fulfilled before an operation (update, delete, etc.) is carried out.",
            "type": "object",
            "properties": {"resourceVersion": _s("Specifies the target ResourceVersion"), "uid": _s("Specifies the target UID.")},
        },
        STATUS: _status(ref),
        f"{META}.StatusCause": _status_cause(),
        f"{META}.StatusDetails": _status_details(ref),
        f"{META}.Time": {
            "description": "Time is a wrapper around time.Time which supports correct marshaling to YAML and JSON.",
            "type": "string",
            "format": "date-time",
        },
    }
