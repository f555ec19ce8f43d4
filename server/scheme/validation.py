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

import ipaddress
import math
import re
from functools import lru_cache
from typing import Any, Callable, TypeGuard

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
    dns1123_label_errors,
    dns1123_subdomain_errors,
    max_len_error,
    regex_error,
    validate_object_meta,
)

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
        return fmt if fmt.replace("-", "") in _FORMATS else ""
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
        check = _FORMATS.get(fmt.replace("-", ""))
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
    if "apiVersion" not in obj or api_version == "":
        out.append(field_required(api_path))
    elif not isinstance(api_version, str):
        out.append(field_value_invalid(api_path, api_version, "must be a string"))
    elif api_version.count("/") > 1:
        out.append(field_value_invalid(api_path, api_version, f"unexpected GroupVersion string: {api_version}"))
    if "kind" not in obj or kind == "":
        out.append(field_required(kind_path))
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


# -- formats kube checks on strings (k8s.io/kube-openapi `strfmt`), keyed without dashes ---------

_LD = r"[^\W_]"  # Go's [a-zA-Z0-9\p{S}\p{L}], less the symbols
_HOSTNAME = re.compile(rf"({_LD}((-?{_LD}{{0,62}})?)|({_LD}(((?:{_LD}|-){{0,61}}{_LD})?)(\.)){{1,}}"
                       rf"({_LD})(-?{_LD}){{1,62}})")
_UUID = {
    "uuid": r"[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}",
    "uuid3": r"[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}",
    "uuid4": r"[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}",
    "uuid5": r"[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}",
}
_OCTET = r"\s*(0|[1-9]\d?|1\d\d?|2[0-4]\d|25[0-5])\s*"
_RGB = re.compile(rf"rgb\({_OCTET},{_OCTET},{_OCTET}\)")
_BASE64 = re.compile(r"(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=|[A-Za-z0-9+/]{4})")
_MAC = re.compile(r"[0-9A-Fa-f]{2}([:-])[0-9A-Fa-f]{2}(?:\1[0-9A-Fa-f]{2}){4}(?:(?:\1[0-9A-Fa-f]{2}){2}"
                  r"|(?:\1[0-9A-Fa-f]{2}){14})?|[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}\.[0-9A-Fa-f]{4}"
                  r"(?:\.[0-9A-Fa-f]{4}|(?:\.[0-9A-Fa-f]{4}){7})?")
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_ADDR = rf'(?:{_ATOM}(?:\.{_ATOM})*|"[^"\\]*")@(?:{_ATOM}(?:\.{_ATOM})*|\[[^\]]*\])'
_EMAIL = re.compile(rf'\s*(?:{_ADDR}|[^<>]*<{_ADDR}>)\s*')
_CREDIT_CARD = re.compile(r"4[0-9]{12}(?:[0-9]{3})?|5[1-5][0-9]{14}|(222[1-9]|22[3-9][0-9]|2[3-6][0-9]{2}|27[01][0-9]"
                          r"|2720)[0-9]{12}|6(?:011|5[0-9][0-9])[0-9]{12}|3[47][0-9]{13}|3(?:0[0-5]|[68][0-9])"
                          r"[0-9]{11}|(?:2131|1800|35\d{3})\d{11}|6[27][0-9]{14}")
_GO_DURATION = re.compile(r"[-+]?(?:0|(?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+)")
_SCALA_DURATION = re.compile(r"\s*(?:\d+\s*[A-Za-zµ]+\s*)+")
_DURATION_UNITS = (("ns", "nano"), ("us", "µs", "micro"), ("ms", "milli"), ("s", "sec"), ("m", "min"),
                   ("h", "hr", "hour"), ("d", "day"), ("w", "wk", "week"))
_QUANTITY = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?")
_TIME = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.[0-9]+)?(z|([+-][0-9]{2}:[0-9]{2}))")


def _is_date(value: str) -> bool:
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return False
    year, month, day = (int(p) for p in value.split("-"))
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    return 1 <= month <= 12 and 1 <= day <= days[month - 1]


def _is_date_time(value: str) -> bool:
    parts = value.lower().split("t")
    if len(value) < 4 or len(parts) < 2 or not _is_date(parts[0]):
        return False
    match = _TIME.fullmatch(parts[1])
    if match is None:
        return False
    return match.group(1) <= "23" and match.group(2) <= "59" and match.group(3) <= "59"


def _is_duration(value: str) -> bool:
    if _GO_DURATION.fullmatch(value):
        return True
    if not _SCALA_DURATION.fullmatch(value):
        return False
    for match in re.finditer(r"(\d+)\s*([A-Za-zµ]+)", value):
        unit = match.group(2).lower()
        if any(unit == v or unit.startswith(variants[-1]) for variants in _DURATION_UNITS for v in variants):
            return True
    return False


def _go_ip(value: str) -> bool:
    """Go's `net.ParseIP`: dotted quads without leading zeros, or IPv6 without a zone."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return "%" not in value


def _is_cidr(value: str) -> bool:
    addr, slash, bits = value.partition("/")
    if not slash or not bits.isdigit() or not bits.isascii() or not _go_ip(addr):
        return False
    return int(bits) <= (32 if ":" not in addr else 128)


def _is_request_uri(value: str) -> bool:
    """Go's `url.ParseRequestURI`, roughly: an absolute URI or an absolute path."""
    if not value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return False
    return bool(re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value)) or value.startswith("/")


def _is_hostname(value: str) -> bool:
    return bool(_HOSTNAME.fullmatch(value)) and len(value.encode()) <= 255 and \
        all(len(p.encode()) <= 63 for p in value.split("."))


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _is_isbn(value: str, size: int) -> bool:
    clean = re.sub(r"[\s-]+", "", value)
    if size == 10 and re.fullmatch(r"[0-9]{9}X|[0-9]{10}", clean):
        total = sum((i + 1) * int(c) for i, c in enumerate(clean[:9]))
        return (total + (100 if clean[9] == "X" else 10 * int(clean[9]))) % 11 == 0
    if size == 13 and re.fullmatch(r"[0-9]{13}", clean):
        total = sum((1, 3)[i % 2] * int(c) for i, c in enumerate(clean[:12]))
        return int(clean[12]) == (10 - total % 10) % 10
    return False


def _is_credit_card(value: str) -> bool:
    digits = re.sub(r"[^0-9]+", "", value)
    return bool(_CREDIT_CARD.fullmatch(digits)) and _luhn(digits)


_FORMATS: dict[str, Callable[[str], bool]] = {
    "bsonobjectid": lambda v: bool(re.fullmatch(r"[0-9a-fA-F]{24}", v)),
    "uri": _is_request_uri,
    "email": lambda v: bool(_EMAIL.fullmatch(v)),
    "hostname": _is_hostname,
    "ipv4": lambda v: _go_ip(v) and "." in v,
    "ipv6": lambda v: _go_ip(v) and ":" in v,
    "cidr": _is_cidr,
    "mac": lambda v: bool(_MAC.fullmatch(v)),
    **{name: (lambda rx: lambda v: bool(re.fullmatch(rx, v, re.IGNORECASE)))(rx) for name, rx in _UUID.items()},
    "isbn": lambda v: _is_isbn(v, 10) or _is_isbn(v, 13),
    "isbn10": lambda v: _is_isbn(v, 10),
    "isbn13": lambda v: _is_isbn(v, 13),
    "creditcard": _is_credit_card,
    "ssn": lambda v: len(v) == 11 and bool(re.fullmatch(r"\d{3}[- ]?\d{2}[- ]?\d{4}", v)),
    "hexcolor": lambda v: bool(re.fullmatch(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})", v)),
    "rgbcolor": lambda v: bool(_RGB.fullmatch(v)),
    "byte": lambda v: bool(_BASE64.fullmatch(v)),
    "password": lambda v: True,
    "date": _is_date,
    "duration": _is_duration,
    "datetime": _is_date_time,
    "quantity": lambda v: bool(_QUANTITY.fullmatch(v)),
    "k8sshortname": lambda v: not dns1123_label_errors(v),
    "k8slongname": lambda v: not dns1123_subdomain_errors(v),
}


# -- is the schema structural? ---------------------------------------------------------------

_NESTED_FORBIDDEN = (
    ("type", "must be empty to be structural"), ("additionalProperties", "must be undefined to be structural"),
    ("default", "must be undefined to be structural"), ("title", "must be empty to be structural"),
    ("description", "must be empty to be structural"), ("nullable", "must be false to be structural"),
    ("externalDocs", "must be undefined to be structural"),
    ("x-kubernetes-preserve-unknown-fields", "must be false to be structural"),
    ("x-kubernetes-embedded-resource", "must be false to be structural"),
    ("x-kubernetes-int-or-string", "must be false to be structural"),
    ("x-kubernetes-list-map-keys", "must be empty to be structural"),
    ("x-kubernetes-list-type", "must be undefined to be structural"),
    ("x-kubernetes-map-type", "must be undefined to be structural"),
    ("x-kubernetes-validations", "must be empty to be structural"),
)
_JUNCTORS = ("allOf", "anyOf", "oneOf")
_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def is_structural(schema: Schema | None, path: str = "") -> list[str]:
    """Why `schema` is not a structural schema (kube's `ValidateStructural`, a subset), sorted; [] if it is."""
    if not isinstance(schema, dict):
        return []
    errs: list[str] = []
    _structural(schema, "root", path, errs)
    _completeness(schema, schema, path, path, errs)
    return sorted(errs)


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _required(path: str, detail: str) -> str:
    return f"{path}: Required value: {detail}"


def _structural(s: Schema, level: str, path: str, errs: list[str]) -> None:
    kind = s.get("type") or ""
    embedded, preserve, int_or_string = (bool(s.get(k)) for k in (
        "x-kubernetes-embedded-resource", "x-kubernetes-preserve-unknown-fields", "x-kubernetes-int-or-string"))
    props = _dict(s.get("properties"))
    if kind == "array" and not isinstance(s.get("items"), dict):
        errs.append(_required(_child(path, "items"), "must be specified"))
    if isinstance(s.get("items"), dict):
        _structural(s["items"], "item", _child(path, "items"), errs)
    for name, sub in props.items():
        if isinstance(sub, dict):
            _structural(sub, "field", _key(_child(path, "properties"), name), errs)
    if "additionalProperties" in s:
        if level == "root":
            errs.append(f"{_child(path, 'additionalProperties')}: Forbidden: must not be used at the root")
        if isinstance(s["additionalProperties"], dict):
            _structural(s["additionalProperties"], "field", _child(path, "additionalProperties"), errs)
    for flag, on in (("x-kubernetes-preserve-unknown-fields", preserve), ("x-kubernetes-embedded-resource", embedded)):
        if int_or_string and on:
            errs.append(f"{_child(path, flag)}: Invalid value: true: must be false if "
                        "x-kubernetes-int-or-string is true")
    any_of = s.get("anyOf")
    all_of = _list(s.get("allOf"))
    skip_any = any_of == _INT_OR_STRING
    skip_first_all = bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING
    _value_validation(s, skip_any, skip_first_all, path, errs)
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        errs.append(_required(_child(path, "type"), detail) if not kind
                    else f"{_child(path, 'type')}: Invalid value: {go_quote(kind)}: {detail}")
    elif not kind and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items", "field": "for specified object fields"}
        errs.append(_required(_child(path, "type"), f"must not be empty {where[level]}"))
    if embedded and "additionalProperties" in s:
        errs.append(f"{_child(path, 'additionalProperties')}: Forbidden: must not be used if "
                    "x-kubernetes-embedded-resource is set")
    if level == "root" and kind and kind != "object":
        errs.append(f"{_child(path, 'type')}: Invalid value: {go_quote(kind)}: must be object at the root")
    check_meta = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        sub = props.get(name)
        if check_meta and isinstance(sub, dict) and sub.get("type") != "string":
            errs.append(f"{_child(_key(_child(path, 'properties'), name), 'type')}: Invalid value: "
                        f"{go_quote(str(sub.get('type') or ''))}: must be string")
    meta = props.get("metadata")
    if isinstance(meta, dict):
        meta_path = _key(_child(path, "properties"), "metadata")
        if check_meta and meta.get("type") != "object":
            errs.append(f"{_child(meta_path, 'type')}: Invalid value: {go_quote(str(meta.get('type') or ''))}: "
                        "must be object")
        names = _dict(meta.get("properties"))
        allowed = {"type", "default"} | ({"properties"} if set(names) <= {"name", "generateName"} else set())
        extra = {k for k, v in meta.items() if v not in (None, False, "", [], {})} - allowed
        if level == "root" and extra:
            errs.append(f"{meta_path}: Forbidden: must not specify anything other than name and generateName, "
                        "but metadata is implicitly specified")
    if embedded and not preserve and not props:
        errs.append(_required(_child(path, "properties"), "must not be empty if x-kubernetes-embedded-resource "
                              "is true without x-kubernetes-preserve-unknown-fields"))


def _value_validation(s: Schema, skip_any: bool, skip_first_all: bool, path: str, errs: list[str]) -> None:
    if not skip_any:
        for i, sub in enumerate(_list(s.get("anyOf"))):
            _nested(sub, False, f"{_child(path, 'anyOf')}[{i}]", errs)
    for i, sub in enumerate(_list(s.get("allOf"))):
        _nested(sub, skip_first_all and i == 0, f"{_child(path, 'allOf')}[{i}]", errs)
    for i, sub in enumerate(_list(s.get("oneOf"))):
        _nested(sub, False, f"{_child(path, 'oneOf')}[{i}]", errs)
    if isinstance(s.get("not"), dict):
        _nested(s["not"], False, _child(path, "not"), errs)
    pattern = s.get("pattern")
    if isinstance(pattern, str) and pattern:
        try:
            re.compile(pattern)
        except re.error as exc:
            errs.append(f"{_child(path, 'pattern')}: Invalid value: {go_quote(pattern)}: must be a valid regular "
                        f"expression, but isn't: {exc}")


def _nested(s: Any, skip_any: bool, path: str, errs: list[str]) -> None:
    if not isinstance(s, dict):
        return
    _value_validation(s, skip_any, False, path, errs)
    _nested(s.get("items"), False, _child(path, "items"), errs)
    props = _dict(s.get("properties"))
    for name, sub in props.items():
        _nested(sub, False, _key(_child(path, "properties"), name), errs)
    for key, detail in _NESTED_FORBIDDEN:
        value = s.get(key)
        if value is not None if key == "default" else value not in (None, False, "", [], {}):
            errs.append(f"{_child(path, key)}: Forbidden: {detail}")
    if "metadata" in props:
        errs.append(f"{_key(_child(path, 'properties'), 'metadata')}: Forbidden: must not be specified in a "
                    "nested context")


def _completeness(v: Any, s: Any, s_path: str, v_path: str, errs: list[str]) -> None:
    """Fields and items named under the root's allOf/anyOf/oneOf/not must exist structurally (as kube checks)."""
    if not isinstance(v, dict):
        return
    for junctor in _JUNCTORS:
        for i, sub in enumerate(_list(v.get(junctor))):
            _nested_completeness(sub, s, s_path, f"{_child(v_path, junctor)}[{i}]", errs)
    if isinstance(v.get("not"), dict):
        _nested_completeness(v["not"], s, s_path, _child(v_path, "not"), errs)


def _nested_completeness(v: Any, s: Any, s_path: str, v_path: str, errs: list[str]) -> None:
    if not isinstance(v, dict):
        return
    if not isinstance(s, dict):
        errs.append(_required(s_path, f"because it is defined in {v_path}"))
        return
    _completeness(v, s, s_path, v_path, errs)
    if "items" in v:
        _nested_completeness(v["items"], s.get("items"), _child(s_path, "items"), _child(v_path, "items"), errs)
    s_props = _dict(s.get("properties"))
    for name, sub in _dict(v.get("properties")).items():
        sp, vp = _key(_child(s_path, "properties"), name), _key(_child(v_path, "properties"), name)
        if name not in s_props:
            errs.append(_required(sp, f"because it is defined in {vp}"))
        else:
            _nested_completeness(sub, s_props[name], sp, vp, errs)
