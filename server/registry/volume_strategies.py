"""PersistentVolumeClaims and PersistentVolumes: kube's defaults, initial phase and immutable claim spec."""
from __future__ import annotations

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.api.meta import now_rfc3339
from kapi.registry.builtin_strategy import BuiltinStrategy, as_dict
from kapi.registry.strategy import Object

_CLAIM_SPEC_IMMUTABLE = ("spec is immutable after creation except resources.requests and "
                         "volumeAttributesClassName for bound claims")


class PersistentVolumeClaimStrategy(BuiltinStrategy):
    """A claim starts Pending; its spec may change only in resources.requests (and the attributes class)."""

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("volumeMode", "Filesystem")

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending"}

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        if not spec.get("accessModes"):
            causes.append(errors.field_required("spec.accessModes", "at least 1 access mode is required"))
        if old is not None:
            def fixed(s: Object) -> Object:
                return {k: v for k, v in s.items() if k not in ("resources", "volumeAttributesClassName")}
            if fixed(spec) != fixed(as_dict(old.get("spec"))):
                causes.append(errors.field_forbidden("spec", _CLAIM_SPEC_IMMUTABLE))
        return causes


class PersistentVolumeStrategy(BuiltinStrategy):
    """A volume starts Pending, with kube's reclaim policy and volume mode defaults."""

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if isinstance(spec, dict):
            spec.setdefault("persistentVolumeReclaimPolicy", "Retain")
            spec.setdefault("volumeMode", "Filesystem")
            host_path = spec.get("hostPath")
            if isinstance(host_path, dict):
                host_path.setdefault("type", "")

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"phase": "Pending", "lastPhaseTransitionTime": now_rfc3339()}
