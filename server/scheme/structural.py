"""Is a CRD schema structural? kube's `ValidateStructural`, worded the same way.

A schema must say what type every node is, may not hide types inside
allOf/anyOf/oneOf/not, and limits what the root's metadata may declare;
`is_structural` lists every reason one is not.
"""
from __future__ import annotations

import re
from typing import Any

from server.api.errors import go_quote

Schema = dict[str, Any]


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
