"""Passes 2 and 3 of custom-resource validation: embedded resources and `x-kubernetes-list-type` uniqueness.

Split from `validation` (pass 1, the OpenAPI schema); `validation.validate` runs all three in kube's order.
"""
from __future__ import annotations

from typing import Any

from kapi.api.errors import (
    Cause,
    field_duplicate,
    field_required,
    field_value_invalid,
    go_json,
)
from kapi.api.validation import (
    dns1035_label_errors,
    validate_object_meta,
)


Schema = dict[str, Any]


ROOT_META = ("apiVersion", "kind", "metadata")


def value_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object" if isinstance(value, dict) else "null"


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# -- pass 2: embedded resources --------------------------------------------------------------

_GO_TYPES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool",
             "array": "[]interface {}"}


def validate_embedded(value: Any, schema: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            _check_embedded(value, path, out)
        props = _dict(schema.get("properties"))
        for key in sorted(value):
            if key in props:
                validate_embedded(value[key], props[key], _child(path, key), out)
            else:
                validate_embedded(value[key], schema.get("additionalProperties"), f"{path}[{key}]", out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            validate_embedded(item, schema.get("items"), f"{path}[{i}]", out)


def _check_embedded(obj: dict[str, Any], path: str, out: list[Cause]) -> None:
    api_path, kind_path, meta_path = (_child(path, k) for k in ROOT_META)
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if "apiVersion" not in obj:
        out.append(field_required(api_path))
    elif api_version == "":
        out.append(field_value_invalid(api_path, "", "must not be empty"))
    elif not isinstance(api_version, str):
        out.append(field_value_invalid(api_path, api_version, "must be a string"))
    elif api_version.count("/") > 1:
        out.append(field_value_invalid(api_path, api_version, f"unexpected GroupVersion string: {api_version}"))
    if "kind" not in obj:
        out.append(field_required(kind_path))
    elif kind == "":
        out.append(field_value_invalid(kind_path, "", "must not be empty"))
    elif not isinstance(kind, str):
        out.append(field_value_invalid(kind_path, kind, "must be a string"))
    elif errs := dns1035_label_errors(kind.lower()):
        out.append(field_value_invalid(kind_path, kind, "may have mixed case, but should otherwise match: "
                                       + ",".join(errs)))
    if "metadata" in obj:
        out.extend(_embedded_meta(obj["metadata"], meta_path))


def _embedded_meta(meta: Any, path: str) -> list[Cause]:
    """Loosely kube's `ValidateObjectMeta` with path-segment names (`.`, `..`, `/`, `%` refused)."""
    if not isinstance(meta, dict):
        return [field_value_invalid(path, meta, "invalid metadata: expected object, got "
                                    + _GO_TYPES.get(value_kind(meta), "<nil>"))]
    causes: list[Cause] = []
    for key in ("generateName", "name"):
        name = meta.get(key)
        if isinstance(name, str) and name:
            if key == "name" and name in (".", ".."):
                causes.append(field_value_invalid(f"{path}.{key}", name, f"may not be '{name}'"))
            for bad in ("/", "%"):
                if bad in name:
                    causes.append(field_value_invalid(f"{path}.{key}", name, f"may not contain '{bad}'"))
    namespace = meta.get("namespace")
    rest = {k: v for k, v in meta.items() if k != "generateName"} | {"name": "fakename"}
    for cause in validate_object_meta(rest, namespaced=isinstance(namespace, str) and bool(namespace)):
        causes.append(Cause(cause.reason, cause.message, path + cause.field.removeprefix("metadata")))
    return causes


# -- pass 3: x-kubernetes-list-type ----------------------------------------------------------

_UNSPECIFIED = object()


def _set_key(value: Any) -> Any:
    """Scalars compare like Go map keys (1 is not 1.0), compounds by their JSON (where they are)."""
    if value is _UNSPECIFIED:
        return ("unspecified",)
    if isinstance(value, (dict, list)):
        return ("json", go_json(value))
    return (value_kind(value), value)


def _non_unique(values: list[Any]) -> list[int]:
    """Indexes of each value's second appearance (kube reports a duplicate once)."""
    seen: dict[Any, int] = {}
    repeated = []
    for i, value in enumerate(values):
        key = _set_key(value)
        seen[key] = seen.get(key, 0) + 1
        if seen[key] == 2:
            repeated.append(i)
    return repeated


def validate_list_types(value: Any, schema: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        additional, props = schema.get("additionalProperties"), schema.get("properties")
        if isinstance(additional, dict):
            for key in sorted(value):
                validate_list_types(value[key], additional, f"{path}[{key}]", out)
        if isinstance(props, dict):
            for key in sorted(k for k in value if k in props):
                validate_list_types(value[key], props[key], _child(path, key), out)
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set":
            out.extend(field_duplicate(f"{path}[{i}]", value[i]) for i in _non_unique(value))
        elif list_type == "map":
            out.extend(_list_map_errors(value, schema, path))
        for i, item in enumerate(value):
            validate_list_types(item, schema.get("items"), f"{path}[{i}]", out)


def _list_map_errors(value: list[Any], schema: Schema, path: str) -> list[Cause]:
    for i, item in enumerate(value):
        if item is not None and not isinstance(item, dict):
            return [field_value_invalid(f"{path}[{i}]", item, "must be an object for an array of list-type map")]
    keys = [k for k in _list(schema.get("x-kubernetes-list-map-keys")) if isinstance(k, str)]
    items = _dict(schema.get("items"))
    required, props = _list(items.get("required")), _dict(items.get("properties"))
    # kube refuses a CRD whose map keys are neither required nor defaulted; if one slipped through, say so here.
    loose = [k for k in keys if k not in required and _dict(props.get(k)).get("default") is None]
    errs = [field_required(f"{path}[{i}].{k}") for i, item in enumerate(value) for k in loose
            if isinstance(item, dict) and k not in item]
    if len(value) <= 1:
        return errs
    if len(keys) == 1:
        key = keys[0]
        found = [item[key] if isinstance(item, dict) and key in item else _UNSPECIFIED for item in value]
        errs += [field_duplicate(f"{path}[{i}]", {} if found[i] is _UNSPECIFIED else {key: found[i]})
                 for i in _non_unique(found)]
        return errs
    tuples = [{k: item[k] for k in keys if k in item} if isinstance(item, dict) else {} for item in value]
    errs += [field_duplicate(f"{path}[{i}]", tuples[i]) for i in _non_unique(tuples)]
    return errs
