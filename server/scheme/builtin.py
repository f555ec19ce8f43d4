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
