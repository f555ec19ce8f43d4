"""How server-side apply reads an OpenAPI schema: which maps and lists are granular, and how list items are named.

After kube-openapi's reading of OpenAPI extensions into structured-merge-diff's
types (`pkg/schemaconv`):

- a map is granular (each key its own field) unless `x-kubernetes-map-type:
  atomic`; keys not in `properties` take `additionalProperties`' schema; an
  object with neither, or with `x-kubernetes-preserve-unknown-fields`, has
  *deduced* children: maps granular, lists atomic;
- a list is atomic unless `x-kubernetes-list-type` is `set` (items keyed by
  value) or `map` (items keyed by `x-kubernetes-list-map-keys`, a key's schema
  default standing in for a missing key), or, without a list type, its patch
  strategy is `merge` (keyed by the patch merge key, or a set without one).

`ABSENT` is a field that is not there, distinct from JSON null.
"""
from __future__ import annotations

from typing import Any

import orjson

from kapi.api.fieldpath import PathElement, key_element, value_element

Schema = Any
ABSENT: Any = type("Absent", (), {"__repr__": lambda self: "ABSENT"})()
DEDUCED: dict[str, Any] = {"x-kubernetes-preserve-unknown-fields": True}
UNDECLARED: Any = None  # a map's element type when unknown keys are not allowed


class StructureError(ValueError):
    """A value that does not fit the schema's structure: the message names the path, as kube's does."""


# -- reading the schema ------------------------------------------------------------


def _is_open(schema: Schema) -> bool:
    """No structure to speak of: children deduced from the value."""
    if not isinstance(schema, dict) or schema.get("x-kubernetes-preserve-unknown-fields") is True:
        return "properties" not in schema if isinstance(schema, dict) else True
    return False


def map_shape(schema: Schema) -> tuple[bool, dict[str, Schema], Schema]:
    """(atomic, declared fields, element schema for other keys or `UNDECLARED`)."""
    if not isinstance(schema, dict):
        return False, {}, DEDUCED
    atomic = schema.get("x-kubernetes-map-type") == "atomic"
    props = schema.get("properties")
    fields: dict[str, Schema] = props if isinstance(props, dict) else {}
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        element = extra
    elif extra is True or schema.get("x-kubernetes-preserve-unknown-fields") is True or (not fields and extra is None):
        element = DEDUCED
    else:
        element = UNDECLARED
    return atomic, fields, element


def list_shape(schema: Schema) -> tuple[bool, tuple[str, ...], Schema]:
    """(atomic, map keys — empty for a set, item schema)."""
    if not isinstance(schema, dict) or _is_open(schema) and "items" not in schema:
        return True, (), DEDUCED
    items = schema.get("items") if isinstance(schema.get("items"), dict) else DEDUCED
    list_type = schema.get("x-kubernetes-list-type")
    if list_type == "set":
        return False, (), items
    if list_type == "map":
        keys = schema.get("x-kubernetes-list-map-keys")
        return False, tuple(str(k) for k in keys) if isinstance(keys, list) else (), items
    if list_type is None and str(schema.get("x-kubernetes-patch-strategy", "")) in ("merge", "merge,retainKeys"):
        key = schema.get("x-kubernetes-patch-merge-key")
        return False, (key,) if isinstance(key, str) and key else (), items
    return True, (), items


def child_schema(schema: Schema, pe: PathElement) -> Schema:
    """The schema of the child `pe` selects (DEDUCED when the schema says nothing)."""
    if pe[0] == "f":
        _, fields, element = map_shape(schema)
        return fields.get(pe[1], element if element is not UNDECLARED else DEDUCED)
    return list_shape(schema)[2]


def item_element(item: Any, keys: tuple[str, ...], items: Schema) -> PathElement:
    """The path element of an associative list's item; `StructureError` when it has none."""
    if keys:
        if not isinstance(item, dict):
            raise StructureError("associative list with keys may not have non-map elements")
        props = items.get("properties", {}) if isinstance(items, dict) else {}
        found: dict[str, Any] = {}
        for key in keys:
            if key in item:
                found[key] = item[key]
            elif isinstance(props.get(key), dict) and props[key].get("default") is not None:
                found[key] = props[key]["default"]
        if not found:
            raise StructureError(f"associative list with keys has an element that omits all key fields "
                                 f"{_go_list(keys)} (and doesn't have default values for any key fields)")
        return key_element(found)
    if isinstance(item, dict):
        raise StructureError("associative list without keys has an element that's a map type")
    if isinstance(item, list):
        raise StructureError("not supported: associative list with lists as elements")
    if item is None:
        raise StructureError("associative list without keys has an element that's an explicit null")
    return value_element(item)


def _go_list(keys: tuple[str, ...]) -> str:
    return "[" + " ".join(f'"{k}"' for k in keys) + "]"


def equal(a: Any, b: Any) -> bool:
    """JSON equality that tells `true` from `1`."""
    if type(a) is type(b) and not isinstance(a, (dict, list)):
        return bool(a == b)
    if isinstance(a, (dict, list)) and isinstance(b, (dict, list)):
        return orjson.dumps(a, option=orjson.OPT_SORT_KEYS) == orjson.dumps(b, option=orjson.OPT_SORT_KEYS)
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool) \
            and not isinstance(b, bool):
        return bool(a == b)
    return False


def zero_value(schema: Schema) -> dict[str, Any]:
    """What a Go zero value of the kind serializes to, read from the schema's hints: nested structs
    (`default: {}`) present, required fields at their zero; what kube compares a created object against."""
    out: dict[str, Any] = {}
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return out
    required = schema.get("required") if isinstance(schema.get("required"), list) else []
    for name, sub in props.items():
        if not isinstance(sub, dict):
            continue
        if sub.get("default") == {} and isinstance(sub.get("properties"), dict):
            out[name] = zero_value(sub)
        elif name in required:
            out[name] = {"string": "", "integer": 0, "boolean": False, "number": 0}.get(sub.get("type", ""), None)
    return out
