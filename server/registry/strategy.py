"""Per-resource behaviour on top of the generic Store (kube's RESTCreateStrategy & co).

A new resource costs a definition and, at most, a small strategy subclass.
"""
from __future__ import annotations

import copy
from typing import Any

from kapi.api.errors import Cause
from kapi.api.meta import without
from kapi.api.validation import validate_object_meta
from kapi.scheme.definitions import ResourceDef

Object = dict[str, Any]


class Strategy:
    """Defaults for custom resources: subdomain names, status kept apart when it is a subresource."""

    name_rule = "subdomain"
    allow_unconditional_update = False
    # kube's RESTGracefulDeleteStrategy: only kinds whose deletion waits for someone (a kubelet) have one.
    graceful_deletion = False

    def __init__(self, definition: ResourceDef) -> None:
        self.definition = definition

    @property
    def namespaced(self) -> bool:
        return self.definition.namespaced

    def normalize(self, obj: Object) -> None:
        """What kube does while decoding a request body, so before admission sees it (a Secret's stringData)."""

    def prepare_for_create(self, obj: Object) -> None:
        """Drop what a create may not set: status, when status is a subresource."""
        if self.definition.has_status:
            obj.pop("status", None)

    def prepare_for_update(self, new: Object, old: Object, subresource: str) -> None:
        """Keep the half of the object the request may not touch.

        A main-resource update keeps the stored status; a status update keeps
        everything but status (metadata changes through /status are ignored).
        A part subresource (pods/ephemeralcontainers) changes only its part, which
        a main-resource update keeps.
        """
        parts = {name: PART_PATHS[name] for name in self.definition.part_subresources if name in PART_PATHS}
        if subresource in parts:
            wanted = field_at(new, parts[subresource])
            new.clear()
            new.update(copy.deepcopy(old))
            _put(new, parts[subresource], wanted)
            return
        for path in parts.values():
            if path[0] != "status":
                _put(new, path, field_at(old, path))
        if not self.definition.has_status:
            return
        if subresource == "status":
            status = new.get("status")
            new.clear()
            new.update({k: v for k, v in old.items() if k != "status"})
            if status is not None:
                new["status"] = status
        elif "status" in old:
            new["status"] = old["status"]
        else:
            new.pop("status", None)

    def default(self, obj: Object) -> None:
        """Defaulting in code, after the schema's defaults (typed Python resources set it)."""

    def complete(self, obj: Object) -> None:
        """Fields admission adds on create and main-resource updates, after field ownership is recorded."""

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        """Field errors for `obj`; empty means valid."""
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            return [Cause("FieldValueRequired", "Required value", "metadata")]
        return validate_object_meta(meta, namespaced=self.namespaced, name_rule=self.name_rule)

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        """Checks that need a well-formed object: run only when metadata and schema checks pass."""
        return []

    def pending_finalizers(self, obj: Object) -> list[str]:
        """What still holds `obj` back from removal once it is being deleted."""
        return list((obj.get("metadata") or {}).get("finalizers") or [])

    def mark_deleted(self, obj: Object) -> None:
        """Called once when a graceful deletion starts (namespaces go Terminating)."""

    def graceful_delete_period(self, obj: Object, requested: int | None) -> int | None:
        """kube's CheckGracefulDelete: the seconds a first delete of `obj` waits (`requested` is
        DeleteOptions.gracePeriodSeconds, already made non-negative), or None when the kind goes at once.

        Only kinds with `graceful_deletion` are asked; the rest ignore gracePeriodSeconds as kube does.
        """
        return None

    def spec_changed(self, new: Object, old: Object) -> bool:
        """Whether generation should move: anything but metadata (and status, when separate) changed."""
        ignored = ("metadata", "status") if self.definition.has_status else ("metadata",)
        return without(new, *ignored) != without(old, *ignored)


# Where each part subresource writes (kube's REST for each).
PART_PATHS: dict[str, tuple[str, ...]] = {
    "ephemeralcontainers": ("spec", "ephemeralContainers"),
    "finalize": ("spec", "finalizers"),
    "approval": ("status", "conditions"),
}


def field_at(obj: Any, path: tuple[str, ...]) -> Any:
    """The value at `path` (dict keys), or None."""
    node: Any = obj
    for part in path:
        node = node.get(part) if isinstance(node, dict) else None
    return node


def _put(obj: Object, path: tuple[str, ...], value: Any) -> None:
    node = obj
    for part in path[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    if value is None:
        node.pop(path[-1], None)
    else:
        node[path[-1]] = value
