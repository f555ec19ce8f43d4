"""Structural-schema pruning: drop the fields a schema does not declare.

kube-apiserver prunes unknown fields of custom resources on every write;
`fieldValidation=Strict` turns what would be pruned into an error and `Warn`
into a warning, so this module reports the paths it removed.
"""
from __future__ import annotations

from typing import Any

_ROOT_KEPT = ("apiVersion", "kind", "metadata")
# ObjectMeta's fields: the decoder drops any other key of an object's metadata.
OBJECT_META_FIELDS = frozenset({
    "name", "generateName", "namespace", "selfLink", "uid", "resourceVersion", "generation", "creationTimestamp",
    "deletionTimestamp", "deletionGracePeriodSeconds", "labels", "annotations", "ownerReferences", "finalizers",
    "managedFields"})


def prune(obj: dict[str, Any], schema: dict[str, Any] | None) -> list[str]:
    """Remove undeclared fields from `obj` in place; return their paths (`spec.foo`, `spec.items[0].x`),
    sorted as kube reports them."""
    if not schema:
        return []
    removed: list[str] = []
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        for key in [k for k in meta if k not in OBJECT_META_FIELDS]:
            removed.append(f"metadata.{key}")
            del meta[key]
    _prune_object(obj, schema, "", removed, root=True)
    return sorted(removed)


def _join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def _prune_value(value: Any, schema: dict[str, Any], path: str, removed: list[str]) -> None:
    if isinstance(value, dict):
        _prune_object(value, schema, path, removed, root=False)
    elif isinstance(value, list):
        items = schema.get("items")
        if isinstance(items, dict):
            for i, item in enumerate(value):
                _prune_value(item, items, f"{path}[{i}]", removed)


def _prune_object(obj: dict[str, Any], schema: dict[str, Any], path: str, removed: list[str], root: bool) -> None:
    props = schema.get("properties")
    additional = schema.get("additionalProperties")
    preserve = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    kept = _ROOT_KEPT if (root or embedded) else ()
    if isinstance(props, dict) and props or not preserve:
        for key in list(obj):
            child = obj[key]
            if isinstance(props, dict) and key in props:
                sub = props[key]
                if isinstance(sub, dict) and not (key == "metadata" and (root or embedded)):
                    _prune_value(child, sub, _join(path, key), removed)
            elif isinstance(additional, dict):
                _prune_value(child, additional, _join(path, key), removed)
            elif additional is not None or preserve or key in kept:  # `false` is left to validation, as kube does
                continue
            elif props is None and additional is None and not schema.get("type"):
                continue  # a schema that says nothing about this level prunes nothing
            else:
                removed.append(_join(path, key))
                del obj[key]
