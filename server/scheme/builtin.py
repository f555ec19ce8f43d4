"""Built-in types served by every kapi: core `v1` namespaces."""
from __future__ import annotations

from server.scheme.definitions import PrinterColumn, ResourceDef, VersionDef

_NAMESPACE_SCHEMA = {
    "type": "object",
    "description": "Namespace provides a scope for Names. Use of multiple namespaces is optional.",
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "description": "Spec defines the behavior of the Namespace.",
            "properties": {
                "finalizers": {
                    "type": "array",
                    "description": "Finalizers is an opaque list of values that must be empty to permanently remove object from storage.",
                    "items": {"type": "string"},
                    "x-kubernetes-list-type": "atomic",
                }
            },
        },
        "status": {
            "type": "object",
            "description": "Status describes the current status of a Namespace.",
            "properties": {
                "phase": {"type": "string", "description": "Phase is the current lifecycle phase of the namespace."},
                "conditions": {
                    "type": "array",
                    "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    "x-kubernetes-list-type": "map",
                    "x-kubernetes-list-map-keys": ["type"],
                },
            },
        },
    },
}

NAMESPACES = ResourceDef(
    group="",
    kind="Namespace",
    plural="namespaces",
    singular="namespace",
    namespaced=False,
    short_names=("ns",),
    builtin=True,
    extra_selectable_fields=("status.phase",),
    versions=(
        VersionDef(
            name="v1",
            storage=True,
            schema=_NAMESPACE_SCHEMA,
            printer_columns=(PrinterColumn(name="Status", type="string", json_path=".status.phase"),),
            status_subresource=True,
        ),
    ),
)

INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


_EVENT_SCHEMA = {
    "type": "object",
    "description": "Event is a report of an event somewhere in the cluster.",
    "x-kubernetes-preserve-unknown-fields": True,
    "properties": {
        "apiVersion": {"type": "string"},
        "kind": {"type": "string"},
        "metadata": {"type": "object"},
        "involvedObject": {
            "type": "object",
            "description": "The object that this event is about.",
            "x-kubernetes-preserve-unknown-fields": True,
        },
        "reason": {"type": "string", "description": "A short, machine understandable string for the transition."},
        "message": {"type": "string", "description": "A human-readable description of the status of this operation."},
        "type": {"type": "string", "description": "Type of this event (Normal, Warning)."},
        "count": {"type": "integer", "description": "The number of times this event has occurred."},
    },
}

# Core v1 events: operators (kopf) post them and `kubectl describe` lists them.
EVENTS = ResourceDef(
    group="",
    kind="Event",
    plural="events",
    singular="event",
    namespaced=True,
    short_names=("ev",),
    builtin=True,
    extra_selectable_fields=tuple(f"involvedObject.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath",
    )) + ("reason", "reportingComponent", "source", "type"),
    versions=(
        VersionDef(
            name="v1",
            storage=True,
            schema=_EVENT_SCHEMA,
            printer_columns=(
                PrinterColumn(name="Type", type="string", json_path=".type"),
                PrinterColumn(name="Reason", type="string", json_path=".reason"),
                PrinterColumn(name="Object", type="string", json_path=".involvedObject.name"),
                PrinterColumn(name="Message", type="string", json_path=".message"),
            ),
        ),
    ),
)
