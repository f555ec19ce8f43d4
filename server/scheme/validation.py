"""Structural-schema validation of custom resources, worded like kube-apiserver.

kube-apiserver checks a custom resource in three passes, and `validate` runs the
same three in the same order (k8s.io/apiextensions-apiserver
`registry/customresource/strategy.go`):

1. the OpenAPI v3 schema, through kube-openapi's `validate.SchemaValidator`,
   whose results `apiserver/validation.kubeOpenAPIResultToFieldErrors` turns
   into field errors (`spec.size: Unsupported value: "huge": ...`). Paths are
   kube-openapi's: `spec.toppings[0].name`, map values `spec.labels.key`;
2. embedded resources (`x-kubernetes-embedded-resource`): apiVersion and kind
   required, metadata checked loosely (`schema/objectmeta/validation.go`);
3. `x-kubernetes-list-type` `set` and `map` uniqueness
   (`schema/listtype/validation.go`), paths like `spec.labels[key]`.

Per node, pass 1 follows kube-openapi's validator order (type, allOf/anyOf/
oneOf/not, string, format, number, array, enum, object); children go in sorted
key order, so the result is deterministic (Go's map order is not).

Faithful oddities kept on purpose: `format: int32` is not range-checked, an
integral float passes `type: integer`, the int-or-string type is named
`integer,string`, anyOf/oneOf/allOf/not failures carry the field `<nil>`.
"""
from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import Any, TypeGuard

from kapi.api.errors import (
    Cause,
    field_not_supported,
    field_required,
    field_too_long,
    field_too_many,
    field_type_invalid,
    field_value_invalid,
    go_float,
    go_json,
    go_quote,
)
from kapi.scheme.formats import FORMATS
from kapi.scheme.validation_passes import ROOT_META, validate_embedded, validate_list_types, value_kind

Schema = dict[str, Any]
_JSON_INT_MAX = float(2**53 - 1)
_EPSILON = 1e-9


def validate(obj: dict[str, Any], schema: Schema | None, list_types: bool = True) -> list[Cause]:
    """Every field error of `obj` against a CRD version's `openAPIV3Schema`, in kube's order.

    `list_types=False` leaves out pass 3: built-in kinds check their keyed lists in code, in kube's words.
    """
    if not schema or not isinstance(obj, dict):
        return []
    out: list[Cause] = []
    _check(obj, _root_schema(schema), "", out)
    validate_embedded(obj, schema, "", out)
    if list_types:
        validate_list_types(obj, schema, "", out)
    return out


def prune_non_nullable_nulls(obj: Any, schema: Schema | None) -> None:
    """Drop `null` values of declared, non-nullable fields without a default, in place.

    kube-apiserver does this while decoding a custom resource (its
    `PruneNonNullableNullsWithoutDefaults`), so `{"msg": null}` on a string
    field is dropped, not rejected. Array items are left alone.
    """
    if not isinstance(schema, dict):
        return  # nothing is declared below: nothing to drop (and metadata.managedFields is not walked)
    if isinstance(obj, dict):
        for key in list(obj):
            sub = _field_schema(schema, key)
            if obj[key] is None and sub is not None and not sub.get("nullable") and sub.get("default") is None:
                del obj[key]
            else:
                prune_non_nullable_nulls(obj[key], sub)
    elif isinstance(obj, list):
        items = schema.get("items") if isinstance(schema, dict) else None
        for item in obj:
            prune_non_nullable_nulls(item, items if isinstance(items, dict) else None)


def _field_schema(schema: Schema | None, key: str) -> Schema | None:
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and isinstance(props.get(key), dict):
        return props[key]
    additional = schema.get("additionalProperties")
    return additional if isinstance(additional, dict) else None


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def validate_value(value: Any, schema: Schema) -> list[Cause]:
    """The field errors of one value (a schema's `default`) against `schema`, paths relative to it."""
    out: list[Cause] = []
    _check(value, schema, "", out)
    return out


def _root_schema(schema: Schema) -> Schema:
    """apiVersion, kind and metadata at the root: type checks (and metadata.name/generateName) only."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not any(k in props for k in ROOT_META):
        return schema
    kept = dict(props)
    for key in ROOT_META:
        sub = props.get(key)
        if isinstance(sub, dict):
            kept[key] = {k: v for k, v in sub.items() if k in ("type", "nullable")}
    meta = props.get("metadata")
    if isinstance(meta, dict) and isinstance(meta.get("properties"), dict):
        names = {k: v for k, v in meta["properties"].items() if k in ("name", "generateName")}
        kept["metadata"] = dict(kept["metadata"], properties=names)
    return dict(schema, properties=kept)


# -- pass 1: kube-openapi ------------------------------------------------------------------

def _types(schema: Schema) -> list[str]:
    if schema.get("x-kubernetes-int-or-string"):
        return ["integer", "string"]
    kind = schema.get("type")
    return [kind] if isinstance(kind, str) and kind else []


def _num(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_json_integer(value: float) -> bool:
    """go-openapi's `IsFloat64AJSONInteger`: integral within ±2^53, up to a relative 1e-9."""
    if not math.isfinite(value) or abs(value) > _JSON_INT_MAX:
        return False
    trunc = float(math.trunc(value))
    if value == trunc:
        return True
    if trunc == 0:
        return False
    return abs(value - trunc) / (abs(value) + abs(trunc)) < _EPSILON


def _type_error(path: str, expected: str, actual: str) -> Cause:
    return field_type_invalid(path, actual, f"{path} in body must be of type {expected}: {go_quote(actual)}")


def _effective_format(schema: Schema, types: list[str]) -> str:
    """The format kube keeps (`StripUnsupportedFormatsPostProcess`): others are ignored."""
    fmt = schema.get("format")
    if not isinstance(fmt, str) or not fmt:
        return ""
    single = types[0] if len(types) == 1 else ""
    if single in ("", "string"):
        return fmt if fmt.replace("-", "") in FORMATS else ""
    if single == "integer":
        return fmt if fmt in ("int32", "int64") else ""
    if single == "number":
        return fmt if fmt in ("float", "double") else ""
    return ""


def _check(value: Any, schema: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(schema, dict):
        return
    types, kind = _types(schema), value_kind(value)
    fmt = _effective_format(schema, types)
    if value is None:
        if types and not schema.get("nullable"):
            out.append(_type_error(path, ",".join(types), "null"))
        _check_enum(value, schema, path, out)
        return
    if types or fmt:
        _check_type(value, kind, types, fmt, path, out)
    if "anyOf" in schema or "oneOf" in schema or "allOf" in schema or "not" in schema:
        _check_junctors(value, schema, path, out)
    if kind == "string":
        _check_string(value, schema, path, out)
        check = FORMATS.get(fmt.replace("-", ""))
        if check is not None and not check(value):
            out.append(field_type_invalid(path, value, f"{path} in body must be of type {fmt}: {go_quote(value)}"))
    elif kind in ("integer", "number"):
        _check_number(value, schema, path, out)
    elif kind == "array":
        _check_array(value, schema, path, out)
    _check_enum(value, schema, path, out)
    if kind == "object":
        _check_object(value, schema, path, out)


def _check_type(value: Any, kind: str, types: list[str], fmt: str, path: str, out: list[Cause]) -> None:
    """kube-openapi's `typeValidator`, quirks included (its value is the JSON type found)."""
    go_format = {"integer": "int64", "number": "float64"}.get(kind, "")
    matches = (kind in types or (kind == "number" and "integer" in types and _is_json_integer(value))
               or (kind == "integer" and "number" in types))
    if kind not in ("string", "array") and fmt and not (matches or go_format == fmt):
        out.append(_type_error(path, fmt, go_format))
    elif fmt and "number" not in types and "integer" not in types and kind in ("string", "array"):
        return
    elif not matches:
        out.append(_type_error(path, ",".join(types), kind))


def _composite(message: str) -> Cause:
    """A junctor failure: not a `Validation` error in kube-openapi, so kube reports it at `<nil>`."""
    return field_value_invalid("<nil>", "", message)


def _sub_errors(value: Any, schemas: list[Any], path: str) -> list[list[Cause]]:
    results = []
    for sub in schemas:
        errs: list[Cause] = []
        _check(value, sub, path, errs)
        results.append(errs)
    return results


def _closest(results: list[list[Cause]]) -> list[Cause]:
    """The alternative with the fewest errors (kube-openapi picks by its match count; close enough)."""
    best = results[0]
    for errs in results[1:]:
        if len(errs) < len(best):
            best = errs
    return best


def _check_junctors(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    """allOf/anyOf/oneOf/not; a failing anyOf/oneOf also reports its closest alternative."""
    name = go_quote(path)
    any_of = _sub_errors(value, _list(schema.get("anyOf")), path)
    if any_of and all(any_of):
        out.append(_composite(f"{name} must validate at least one schema (anyOf)"))
        out.extend(_closest(any_of))
    one_of = _sub_errors(value, _list(schema.get("oneOf")), path)
    valid = sum(1 for errs in one_of if not errs)
    if one_of and valid != 1:
        found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
        out.append(_composite(f"{name} must validate one and only one schema (oneOf). {found}"))
        if valid == 0:
            out.extend(_closest(one_of))
    all_of = _sub_errors(value, _list(schema.get("allOf")), path)
    for errs in all_of:
        out.extend(errs)
    valid = sum(1 for errs in all_of if not errs)
    if all_of and valid != len(all_of):
        out.append(_composite(f"{name} must validate all the schemas (allOf){'. None validated' if not valid else ''}"))
    if isinstance(schema.get("not"), dict) and not _sub_errors(value, [schema["not"]], path)[0]:
        out.append(_composite(f"{name} must not validate the schema (not)"))


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _int(value: Any) -> int | None:
    return int(value) if _num(value) else None


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str] | None:
    """Go's `$` is end of text (Python's also matches before a final newline); `\\d`, `\\w`, `\\s` are ASCII."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + r"\Z"
    try:
        return re.compile(pattern, re.ASCII)
    except re.error:  # valid for Go (\p{L}, ...) but not for Python: do not reject values for it
        return None


def _check_string(value: str, schema: Schema, path: str, out: list[Cause]) -> None:
    """maxLength, minLength, pattern: the first failure only, lengths in characters."""
    longest, shortest, pattern = _int(schema.get("maxLength")), _int(schema.get("minLength")), schema.get("pattern")
    if longest is not None and len(value) > longest:
        out.append(field_too_long(path, longest))
    elif shortest is not None and len(value) < shortest:
        out.append(field_value_invalid(path, value, f"{path} in body should be at least {shortest} chars long"))
    elif isinstance(pattern, str) and pattern:
        rx = _regex(pattern)
        if rx is not None and not rx.search(value):
            out.append(field_value_invalid(path, value, f"{path} in body should match '{pattern}'"))


def _check_number(value: int | float, schema: Schema, path: str, out: list[Cause]) -> None:
    """multipleOf, minimum, maximum; integers compare with the bounds truncated, as Go's int64() does."""
    is_int = isinstance(value, int)

    def bound(limit: int | float) -> str:
        return str(int(limit)) if is_int else go_float(float(limit))

    factor = schema.get("multipleOf")
    if _num(factor):
        if factor < 0:
            out.append(field_value_invalid(path, factor, f"factor MultipleOf declared for {path} must be positive: "
                                                         f"{bound(factor)}"))
        elif is_int and int(factor) >= 1:
            if value % int(factor):
                out.append(field_value_invalid(path, value, f"{path} in body should be a multiple of {int(factor)}"))
        elif factor > 0:
            ratio = (1 / factor) * value if factor < 1 else value / factor
            if not _is_json_integer(float(ratio)):
                out.append(field_value_invalid(path, value, f"{path} in body should be a multiple of "
                                                            f"{go_float(float(factor))}"))
    for key, exclusive_key, below in (("minimum", "exclusiveMinimum", True), ("maximum", "exclusiveMaximum", False)):
        limit = schema.get(key)
        if not _num(limit):
            continue
        exclusive = schema.get(exclusive_key) is True
        edge = int(limit) if is_int else float(limit)
        if below:
            fails = value <= edge if exclusive else value < edge
        else:
            fails = value >= edge if exclusive else value > edge
        if fails:
            word = "greater" if below else "less"
            relation = f"{word} than" if exclusive else f"{word} than or equal to"
            out.append(field_value_invalid(path, value, f"{path} in body should be {relation} {bound(limit)}"))


def _deep_key(value: Any) -> Any:
    """A hashable form for Go's reflect.DeepEqual: 1 and 1.0 differ, so do true and 1."""
    if isinstance(value, dict):
        return ("o", tuple(sorted((k, _deep_key(v)) for k, v in value.items())))
    if isinstance(value, list):
        return ("l", tuple(_deep_key(v) for v in value))
    return (value_kind(value), value)


def _check_array(value: list[Any], schema: Schema, path: str, out: list[Cause]) -> None:
    items = schema.get("items")
    if isinstance(items, dict):
        for i, item in enumerate(value):
            _check(item, items, f"{path}[{i}]", out)
    fewest, most = _int(schema.get("minItems")), _int(schema.get("maxItems"))
    if fewest is not None and len(value) < fewest:
        out.append(field_value_invalid(path, len(value), f"{path} in body should have at least {fewest} items"))
    if most is not None and len(value) > most:
        out.append(field_too_many(path, len(value), most))
    if schema.get("uniqueItems") is True and len({_deep_key(v) for v in value}) < len(value):
        out.append(field_value_invalid(path, "", f"{path} in body shouldn't contain duplicates"))


def _enum_equal(value: Any, allowed: Any) -> bool:
    if _num(value) and _num(allowed):
        return bool(value == allowed)
    return bool(_deep_key(value) == _deep_key(allowed))


def _check_enum(value: Any, schema: Schema, path: str, out: list[Cause]) -> None:
    allowed = schema.get("enum")
    if not isinstance(allowed, list) or not allowed or any(_enum_equal(value, a) for a in allowed):
        return
    out.append(field_not_supported(path, value, [a if isinstance(a, str) else go_json(a) for a in allowed]))


def _check_object(value: dict[str, Any], schema: Schema, path: str, out: list[Cause]) -> None:
    count, fewest, most = len(value), _int(schema.get("minProperties")), _int(schema.get("maxProperties"))
    if fewest is not None and count < fewest:
        out.append(field_value_invalid(path, count, f"{path} in body should have at least {fewest} properties"))
        return
    if most is not None and count > most:
        out.append(field_too_many(path, count, most))
        return
    props = _dict(schema.get("properties"))
    additional = schema.get("additionalProperties")
    for key in sorted(k for k in value if k not in props):
        if additional is False:
            out.append(field_value_invalid(path, key, f"{path}.{key} in body is a forbidden property"))
        elif isinstance(additional, dict):
            _check(value[key], additional, _child(path, key), out)
    for key in sorted(k for k in props if k in value):
        _check(value[key], props[key], _child(path, key), out)
    for key in _list(schema.get("required")):
        if isinstance(key, str) and key not in value:
            out.append(field_required(_child(path, key)))
