"""Structural-schema defaulting of custom resources, as kube-apiserver does it.

kube applies `default` values while decoding a custom resource, right after
pruning (k8s.io/apiextensions-apiserver `pkg/apiserver/schema/defaulting`
`algorithm.go`): on create and update before validation, and on every read
from storage with the storage version's schema, so objects stored before a
default was added gain it when read (the stored bytes are not rewritten).

The order is kube's: prune unknown fields, then `prune_non_nullable_nulls`
(`kapi.scheme.validation`, kube's `PruneNonNullableNullsWithoutDefaults`),
which drops a `null` of a non-nullable field only when the field has no
default, then `apply_defaults`, which turns such a remaining `null` into the
default. A `null` on a nullable field is a value and stays.

Rules, as `Default` has them:

- a property with a non-null `default` that is absent (or a non-nullable
  `null`) gets a deep copy of the default, never overwriting a value;
- map values (`additionalProperties`) and array items that are non-nullable
  `null`s get their schema's default (if it has one);
- defaulting then recurses into every value, so defaults nested inside a
  defaulted object apply too.
"""
from __future__ import annotations

from typing import Any

Schema = dict[str, Any]

_CACHE_LIMIT = 1024
_has_defaults_cache: dict[int, tuple[Schema, bool]] = {}


def apply_defaults(obj: Any, schema: Schema | None) -> None:
    """Fill in `default` values of `schema` in `obj`, in place (kube's `structuraldefaulting.Default`)."""
    if isinstance(schema, dict) and has_defaults(schema):
        _default(obj, schema)


def has_defaults(schema: Schema | None) -> bool:
    """Whether any node of `schema` declares a default (cached per schema object: reads stay cheap)."""
    if not isinstance(schema, dict):
        return False
    hit = _has_defaults_cache.get(id(schema))
    if hit is not None and hit[0] is schema:
        return hit[1]
    found = _declares_default(schema)
    if len(_has_defaults_cache) >= _CACHE_LIMIT:
        _has_defaults_cache.clear()
    _has_defaults_cache[id(schema)] = (schema, found)
    return found


def _declares_default(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if schema.get("default") is not None:
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and any(_declares_default(p) for p in props.values()):
        return True
    return _declares_default(schema.get("additionalProperties")) or _declares_default(schema.get("items"))


def _has_default(schema: Any) -> bool:
    return isinstance(schema, dict) and schema.get("default") is not None


def _non_nullable_null(value: Any, schema: Any) -> bool:
    return value is None and isinstance(schema, dict) and not schema.get("nullable")


def _default(value: Any, schema: Any) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        props = schema.get("properties")
        props = props if isinstance(props, dict) else {}
        for key, prop in props.items():
            if _has_default(prop) and (key not in value or _non_nullable_null(value[key], prop)):
                value[key] = copy_json(prop["default"])
        additional = schema.get("additionalProperties")
        for key in value:
            if key in props:
                _default(value[key], props[key])
            elif isinstance(additional, dict):
                if _non_nullable_null(value[key], additional) and _has_default(additional):
                    value[key] = copy_json(additional["default"])
                _default(value[key], additional)
    elif isinstance(value, list):
        items = schema.get("items")
        if not isinstance(items, dict):
            return
        for i, item in enumerate(value):
            if _non_nullable_null(item, items) and _has_default(items):
                value[i] = copy_json(items["default"])
            _default(value[i], items)


def copy_json(value: Any) -> Any:
    """A deep copy of a JSON value (no two objects ever share a default's dicts or lists)."""
    if isinstance(value, dict):
        return {k: copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [copy_json(v) for v in value]
    return value
