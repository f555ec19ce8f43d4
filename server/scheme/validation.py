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

from server.api.errors import (
    Cause,
    field_duplicate,
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
from server.api.validation import (
    max_len_error,
    regex_error,
    validate_object_meta,
)
from server.scheme.formats import FORMATS

Schema = dict[str, Any]
_ROOT_META = ("apiVersion", "kind", "metadata")
_JSON_INT_MAX = float(2**53 - 1)
_EPSILON = 1e-9


def validate(obj: dict[str, Any], schema: Schema | None) -> list[Cause]:
    """Every field error of `obj` against a CRD version's `openAPIV3Schema`, in kube's order."""
    if not schema or not isinstance(obj, dict):
        return []
    out: list[Cause] = []
    _check(obj, _root_schema(schema), "", out)
    _embedded(obj, schema, "", out)
    _list_types(obj, schema, "", out)
    return out


def prune_non_nullable_nulls(obj: Any, schema: Schema | None) -> None:
    """Drop `null` values of declared, non-nullable fields without a default, in place.

    kube-apiserver does this while decoding a custom resource (its
    `PruneNonNullableNullsWithoutDefaults`), so `{"msg": null}` on a string
    field is dropped, not rejected. Array items are left alone.
    """
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


def _root_schema(schema: Schema) -> Schema:
    """apiVersion, kind and metadata at the root: type checks (and metadata.name/generateName) only."""
    props = schema.get("properties")
    if not isinstance(props, dict) or not any(k in props for k in _ROOT_META):
        return schema
    kept = dict(props)
    for key in _ROOT_META:
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


def _kind(value: Any) -> str:
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
    types, kind = _types(schema), _kind(value)
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
    return (_kind(value), value)


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


# -- pass 2: embedded resources --------------------------------------------------------------

_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_DNS1035_LABEL_ERR = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                      "start with an alphabetic character, and end with an alphanumeric character")
_GO_TYPES = {"string": "string", "integer": "int64", "number": "float64", "boolean": "bool",
             "array": "[]interface {}"}


def _embedded(value: Any, schema: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        if schema.get("x-kubernetes-embedded-resource"):
            _check_embedded(value, path, out)
        props = _dict(schema.get("properties"))
        for key in sorted(value):
            if key in props:
                _embedded(value[key], props[key], _child(path, key), out)
            else:
                _embedded(value[key], schema.get("additionalProperties"), f"{path}[{key}]", out)
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _embedded(item, schema.get("items"), f"{path}[{i}]", out)


def _dns1035_label_errors(value: str) -> list[str]:
    errs = [max_len_error(63)] if len(value.encode()) > 63 else []
    if not re.fullmatch(_DNS1035_LABEL_FMT, value):
        errs.append(regex_error(_DNS1035_LABEL_ERR, _DNS1035_LABEL_FMT, "my-name", "abc-123"))
    return errs


def _check_embedded(obj: dict[str, Any], path: str, out: list[Cause]) -> None:
    api_path, kind_path, meta_path = (_child(path, k) for k in _ROOT_META)
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
    elif errs := _dns1035_label_errors(kind.lower()):
        out.append(field_value_invalid(kind_path, kind, "may have mixed case, but should otherwise match: "
                                       + ",".join(errs)))
    if "metadata" in obj:
        out.extend(_embedded_meta(obj["metadata"], meta_path))


def _embedded_meta(meta: Any, path: str) -> list[Cause]:
    """Loosely kube's `ValidateObjectMeta` with path-segment names (`.`, `..`, `/`, `%` refused)."""
    if not isinstance(meta, dict):
        return [field_value_invalid(path, meta, "invalid metadata: expected object, got "
                                    + _GO_TYPES.get(_kind(meta), "<nil>"))]
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
    return (_kind(value), value)


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


def _list_types(value: Any, schema: Any, path: str, out: list[Cause]) -> None:
    if not isinstance(schema, dict):
        return
    if isinstance(value, dict):
        additional, props = schema.get("additionalProperties"), schema.get("properties")
        if isinstance(additional, dict):
            for key in sorted(value):
                _list_types(value[key], additional, f"{path}[{key}]", out)
        if isinstance(props, dict):
            for key in sorted(k for k in value if k in props):
                _list_types(value[key], props[key], _child(path, key), out)
    elif isinstance(value, list):
        list_type = schema.get("x-kubernetes-list-type")
        if list_type == "set":
            out.extend(field_duplicate(f"{path}[{i}]", value[i]) for i in _non_unique(value))
        elif list_type == "map":
            out.extend(_list_map_errors(value, schema, path))
        for i, item in enumerate(value):
            _list_types(item, schema.get("items"), f"{path}[{i}]", out)


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
