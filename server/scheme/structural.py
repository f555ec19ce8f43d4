"""Is a CRD schema structural? kube's `ValidateStructural`, worded the same way.

A schema must say what type every node is, may not hide types inside
allOf/anyOf/oneOf/not, and limits what the root's metadata may declare;
`is_structural` lists every reason one is not.
"""
from __future__ import annotations

import re
from typing import Any

from kapi.api.errors import Cause, go_quote

Schema = dict[str, Any]
Err = tuple[str, str]  # (field path, message as kube words it without the path)


def _child(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
    """Why `schema` is not a structural schema (kube's `ValidateStructural`, a subset), as sorted
    `path: message` lines; [] if it is."""
    return sorted(f"{f}: {m}" if f else m for f, m in _structural_errs(schema, path))


def structural_causes(schema: Schema | None, path: str = "") -> list[Cause]:
    """`is_structural` as field errors: the full path in `field`, kube's reason, the message alone."""
    return [_cause(f, m) for f, m in _structural_errs(schema, path)]


def schema_causes(schema: Schema | None, path: str = "") -> list[Cause]:
    """Every reason kube refuses `schema` as a CRD's openAPIV3Schema (rules aside): the static OpenAPI
    checks of `ValidateCustomResourceDefinitionOpenAPISchema` (a subset), then `ValidateStructural`."""
    if not isinstance(schema, dict):
        return []
    errs: list[Err] = []
    _openapi(schema, path, errs)
    return [_cause(f, m) for f, m in errs] + structural_causes(schema, path)


_REASONS = (("Required value", "FieldValueRequired"), ("Forbidden", "FieldValueForbidden"),
            ("Unsupported value", "FieldValueNotSupported"), ("Invalid value", "FieldValueInvalid"))


def _cause(field: str, message: str) -> Cause:
    reason = next((r for prefix, r in _REASONS if message.startswith(prefix)), "FieldValueInvalid")
    return Cause(reason, message, field)


def _structural_errs(schema: Schema | None, path: str) -> list[Err]:
    if not isinstance(schema, dict):
        return []
    errs: list[Err] = []
    _structural(schema, "root", path, errs)
    _completeness(schema, schema, path, path, errs)
    return sorted(errs)


def _key(path: str, key: str) -> str:
    return f"{path}[{key}]"


def _required(path: str, detail: str) -> Err:
    return path, f"Required value: {detail}"


def _openapi(s: Schema, path: str, errs: list[Err]) -> None:
    """The checks of kube's `ValidateCustomResourceDefinitionOpenAPISchema` that kapi makes, in its order."""
    props = _dict(s.get("properties"))
    if s.get("uniqueItems") is True:
        errs.append((_child(path, "uniqueItems"), "Forbidden: uniqueItems cannot be set to true since the runtime "
                     "complexity becomes quadratic"))
    if "additionalProperties" in s and s["additionalProperties"] is not None:
        extra = s["additionalProperties"]
        if props and (extra is False or isinstance(extra, dict)):
            errs.append((_child(path, "additionalProperties"),
                         "Forbidden: additionalProperties and properties are mutual exclusive"))
        if isinstance(extra, dict):
            _openapi(extra, _child(path, "additionalProperties"), errs)
    for name in sorted(props):
        if isinstance(props[name], dict):
            _openapi(props[name], _key(_child(path, "properties"), name), errs)
    if isinstance(s.get("not"), dict):
        _openapi(s["not"], _child(path, "not"), errs)
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(_list(s.get(junctor))):
            if isinstance(sub, dict):
                _openapi(sub, f"{_child(path, junctor)}[{i}]", errs)
    items = s.get("items")
    if isinstance(items, dict):
        _openapi(items, _child(path, "items"), errs)
    if s.get("x-kubernetes-preserve-unknown-fields") is False:
        errs.append((_child(path, "x-kubernetes-preserve-unknown-fields"), "Invalid value: false: must be true or "
                     "undefined"))
    kind = s.get("type") or ""
    map_type, list_type = s.get("x-kubernetes-map-type"), s.get("x-kubernetes-list-type")
    for ext, value, want in (("x-kubernetes-map-type", map_type, "object"), ("x-kubernetes-list-type", list_type,
                                                                            "array")):
        if value is not None and kind != want:
            detail = f"must be {want} if {ext} is specified"
            errs.append(_required(_child(path, "type"), detail) if not kind
                        else (_child(path, "type"), f"Invalid value: {go_quote(str(kind))}: {detail}"))
        if ext == "x-kubernetes-map-type" and value is not None and value not in ("atomic", "granular"):
            errs.append((_child(path, ext), _unsupported(value, ("atomic", "granular"))))
    if list_type is not None and list_type not in ("atomic", "set", "map"):
        errs.append((_child(path, "x-kubernetes-list-type"), _unsupported(list_type, ("atomic", "set", "map"))))
    keys = _list(s.get("x-kubernetes-list-map-keys"))
    if keys:
        detail = "must be map if x-kubernetes-list-map-keys is non-empty"
        if list_type is None:
            errs.append(_required(_child(path, "x-kubernetes-list-type"), detail))
        elif list_type != "map":
            errs.append((_child(path, "x-kubernetes-list-type"),
                         f"Invalid value: {go_quote(str(list_type))}: {detail}"))
    if list_type == "map":
        if not keys:
            errs.append(_required(_child(path, "x-kubernetes-list-map-keys"),
                                  "must not be empty if x-kubernetes-list-type is map"))
        if items is None:
            errs.append(_required(_child(path, "items"), "must have a schema if x-kubernetes-list-type is map"))
        elif isinstance(items, dict) and items.get("type") != "object":
            shown = go_quote(str(items.get("type") or ""))
            errs.append((_child(_child(path, "items"), "type"),
                         f"Invalid value: {shown}: must be object if parent array's x-kubernetes-list-type is map"))


def _unsupported(value: Any, supported: tuple[str, ...]) -> str:
    shown = go_quote(value) if isinstance(value, str) else str(value)
    return f"Unsupported value: {shown}: supported values: " + ", ".join(go_quote(v) for v in supported)


def _structural(s: Schema, level: str, path: str, errs: list[Err]) -> None:
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
            errs.append((_child(path, "additionalProperties"), "Forbidden: must not be used at the root"))
        if isinstance(s["additionalProperties"], dict):
            _structural(s["additionalProperties"], "field", _child(path, "additionalProperties"), errs)
    for flag, on in (("x-kubernetes-preserve-unknown-fields", preserve), ("x-kubernetes-embedded-resource", embedded)):
        if int_or_string and on:
            errs.append((_child(path, flag),
                         "Invalid value: true: must be false if x-kubernetes-int-or-string is true"))
    any_of = s.get("anyOf")
    all_of = _list(s.get("allOf"))
    skip_any = any_of == _INT_OR_STRING
    skip_first_all = bool(all_of) and isinstance(all_of[0], dict) and all_of[0].get("anyOf") == _INT_OR_STRING
    _value_validation(s, skip_any, skip_first_all, path, errs)
    if embedded and kind != "object":
        detail = "must be object if x-kubernetes-embedded-resource is true"
        errs.append(_required(_child(path, "type"), detail) if not kind
                    else (_child(path, "type"), f"Invalid value: {go_quote(kind)}: {detail}"))
    elif not kind and not int_or_string and not preserve:
        where = {"root": "at the root", "item": "for specified array items", "field": "for specified object fields"}
        errs.append(_required(_child(path, "type"), f"must not be empty {where[level]}"))
    if embedded and "additionalProperties" in s:
        errs.append((_child(path, "additionalProperties"), "Forbidden: must not be used if "
                     "x-kubernetes-embedded-resource is set"))
    if level == "root" and kind and kind != "object":
        errs.append((_child(path, "type"), f"Invalid value: {go_quote(kind)}: must be object at the root"))
    check_meta = level == "root" or embedded
    for name in ("kind", "apiVersion"):
        sub = props.get(name)
        if check_meta and isinstance(sub, dict) and sub.get("type") != "string":
            errs.append((_child(_key(_child(path, "properties"), name), "type"),
                         f"Invalid value: {go_quote(str(sub.get('type') or ''))}: must be string"))
    meta = props.get("metadata")
    if isinstance(meta, dict):
        meta_path = _key(_child(path, "properties"), "metadata")
        if check_meta and meta.get("type") != "object":
            errs.append((_child(meta_path, "type"),
                         f"Invalid value: {go_quote(str(meta.get('type') or ''))}: must be object"))
        names = _dict(meta.get("properties"))
        allowed = {"type", "default"} | ({"properties"} if set(names) <= {"name", "generateName"} else set())
        extra = {k for k, v in meta.items() if v not in (None, False, "", [], {})} - allowed
        if level == "root" and extra:
            errs.append((meta_path, "Forbidden: must not specify anything other than name and generateName, "
                         "but metadata is implicitly specified"))
    if embedded and not preserve and not props:
        errs.append(_required(_child(path, "properties"), "must not be empty if x-kubernetes-embedded-resource "
                              "is true without x-kubernetes-preserve-unknown-fields"))


def _value_validation(s: Schema, skip_any: bool, skip_first_all: bool, path: str, errs: list[Err]) -> None:
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
            errs.append((_child(path, "pattern"), f"Invalid value: {go_quote(pattern)}: must be a valid regular "
                         f"expression, but isn't: {exc}"))


def _nested(s: Any, skip_any: bool, path: str, errs: list[Err]) -> None:
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
            errs.append((_child(path, key), f"Forbidden: {detail}"))
    if "metadata" in props:
        errs.append((_key(_child(path, "properties"), "metadata"), "Forbidden: must not be specified in a "
                     "nested context"))


def _completeness(v: Any, s: Any, s_path: str, v_path: str, errs: list[Err]) -> None:
    """Fields and items named under the root's allOf/anyOf/oneOf/not must exist structurally (as kube checks)."""
    if not isinstance(v, dict):
        return
    for junctor in _JUNCTORS:
        for i, sub in enumerate(_list(v.get(junctor))):
            _nested_completeness(sub, s, s_path, f"{_child(v_path, junctor)}[{i}]", errs)
    if isinstance(v.get("not"), dict):
        _nested_completeness(v["not"], s, s_path, _child(v_path, "not"), errs)


def _nested_completeness(v: Any, s: Any, s_path: str, v_path: str, errs: list[Err]) -> None:
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
