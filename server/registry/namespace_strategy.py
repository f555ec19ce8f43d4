"""Namespaces: DNS-1123 label names, phase Active, and the `kubernetes` finalizer that the namespace
controller removes (through `namespaces/finalize`) once the namespace is empty."""
from __future__ import annotations

from server.registry.builtin_strategy import BuiltinStrategy, as_dict
from server.registry.strategy import Object


class NamespaceStrategy(BuiltinStrategy):
    """Namespaces: DNS-1123 label names, phase Active, the `kubernetes` finalizer, free PUTs."""

    name_rule = "label"
    allow_unconditional_update = True

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Active"}
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            spec = obj["spec"] = {}
        spec.setdefault("finalizers", ["kubernetes"])

    def pending_finalizers(self, obj: Object) -> list[str]:
        """A namespace also waits for `spec.finalizers` (`kubernetes`: its contents are being deleted)."""
        spec = as_dict(obj.get("spec"))
        return super().pending_finalizers(obj) + list(spec.get("finalizers") or [])

    def mark_deleted(self, obj: Object) -> None:
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}
