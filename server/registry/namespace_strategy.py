"""Namespaces: DNS-1123 label names, phase Active, and the `kubernetes` finalizer that the namespace
controller removes (through `namespaces/finalize`) once the namespace is empty."""
from __future__ import annotations

from kapi.registry.builtin_strategy import BuiltinStrategy, as_dict
from kapi.registry.strategy import Object

NAME_LABEL = "kubernetes.io/metadata.name"


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

    def normalize(self, obj: Object) -> None:
        """kube's defaulting (at decode, so the writer owns it) keeps `kubernetes.io/metadata.name` equal to
        the name on every write, so a namespaceSelector can pick namespaces by name."""
        super().normalize(obj)
        meta = obj.get("metadata")
        if isinstance(meta, dict) and isinstance(meta.get("name"), str):
            labels = meta.get("labels")
            meta["labels"] = {**(labels if isinstance(labels, dict) else {}), NAME_LABEL: meta["name"]}

    def pending_finalizers(self, obj: Object) -> list[str]:
        """A namespace also waits for `spec.finalizers` (`kubernetes`: its contents are being deleted)."""
        spec = as_dict(obj.get("spec"))
        return super().pending_finalizers(obj) + list(spec.get("finalizers") or [])

    def mark_deleted(self, obj: Object) -> None:
        """kube's namespace registry marks only deletionTimestamp (no grace period) and the phase."""
        obj["metadata"].pop("deletionGracePeriodSeconds", None)
        obj["status"] = {**(obj.get("status") or {}), "phase": "Terminating"}

