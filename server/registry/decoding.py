"""Errors kube raises while decoding a body into a compiled kind: 400 BadRequest, not 422 Invalid.

A built-in kind is a Go struct, so a body whose kind, apiVersion or field types do not fit fails in the
decoder with Go's wording; a custom resource is unstructured and meets the same mistakes in validation.
"""
from __future__ import annotations

import re
from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.scheme.catalogue import KUBE_APISERVER_GROUPS
from kapi.scheme.definitions import ResourceDef

_TYPE_CAUSE = re.compile(r'^Invalid value: "(?P<actual>\w+)": .* must be of type (?P<expected>[\w-]+)')
_GO_JSON_TYPES = {"integer": "number", "number": "number", "boolean": "bool"}
_GO_TYPES = {"integer": "int64", "number": "float64", "boolean": "bool", "array": "[]interface {}",
             "object": "map[string]interface {}", "int32": "int32", "int64": "int64"}


def undecodable(d: ResourceDef, body_kind: str, version: str, detail: str) -> errors.BadRequest:
    """`<Kind> in version "v1" cannot be handled as a <Kind>: <detail>`."""
    return errors.BadRequest(f'{body_kind or d.kind} in version "{version}" cannot be handled as a {d.kind}: {detail}')


def go_json_type(value: Any) -> str:
    """encoding/json's name for a JSON value's type in its unmarshal errors."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {dict: "object", list: "array", str: "string"}.get(type(value), "null")


def type_mismatch(d: ResourceDef, version: str, schema: dict[str, Any] | None, causes: list[Cause]) -> None:
    """Raise encoding/json's `cannot unmarshal` for the first wrongly typed field of one of kube's kinds."""
    if not (d.builtin and d.group in KUBE_APISERVER_GROUPS):  # kapi's typed Python groups keep schema errors
        return
    for cause in causes:
        found = _TYPE_CAUSE.match(cause.message) if cause.reason == "FieldValueTypeInvalid" else None
        if found:
            actual, expected = found["actual"], found["expected"]
            raise undecodable(d, d.kind, version, (
                f"json: cannot unmarshal {_GO_JSON_TYPES.get(actual, actual)} into Go struct field "
                f"{d.kind}.{_struct_path(schema, cause.field)} of type {_GO_TYPES.get(expected, expected)}"))


def _struct_path(schema: dict[str, Any] | None, path: str) -> str:
    """The field path as Go names it: map keys and list indexes are not struct fields."""
    kept: list[str] = []
    for part in path.split("."):
        part = re.sub(r"\[\d+\]$", "", part)
        props = (schema or {}).get("properties") or {}
        if part in props:
            kept.append(part)
            schema = props[part]
            if isinstance(schema, dict) and isinstance(schema.get("items"), dict):
                schema = schema["items"]
        else:  # a map's key: Go reports the map field itself
            additional = (schema or {}).get("additionalProperties")
            schema = additional if isinstance(additional, dict) else None
    return ".".join(kept)
