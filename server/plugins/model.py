"""Typed resource models: the pydantic base class and the OpenAPI schema made from a model.

A plugin describes each version of a resource as a pydantic model; the
server serves, validates and prunes with the structural OpenAPI v3 schema
generated here, so the model is the one source of truth for its shape.
"""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Object = dict[str, Any]


class KubeObject(BaseModel):
    """Base of every typed version: apiVersion, kind and metadata, kept as kube sends them.

    metadata stays a plain dict (the server owns its fields); unknown fields
    are already pruned by the schema before a model ever sees an object.
    """

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    api_version: str | None = Field(default=None, alias="apiVersion")
    kind: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    def to_object(self) -> Object:
        """The JSON form kube serves: aliases, and no nulls for fields that were never set."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_DROP = frozenset({"title", "$defs", "examples"})


def schema_from_model(model: type[BaseModel]) -> Object:
    """The structural schema of `model`: references inlined, optional fields not nullable.

    kube's structural schemas have no `$ref`, no `anyOf` with null and a type
    everywhere; `Any` fields keep whatever they are given.
    """
    raw = model.model_json_schema(by_alias=True)
    schema = _structural(raw, raw.get("$defs", {}))
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string", "description": "APIVersion defines the versioned schema of this "
                           "representation of an object."}
    props["kind"] = {"type": "string", "description": "Kind is a string value representing the REST resource "
                     "this object represents."}
    props["metadata"] = {"type": "object"}
    return schema


def _structural(node: Any, defs: dict[str, Any]) -> Object:
    """One schema node made structural; `properties`, `items` and `additionalProperties` recurse."""
    if not isinstance(node, dict):
        return {"x-kubernetes-preserve-unknown-fields": True}
    if "$ref" in node:
        target = _structural(defs[node["$ref"].rsplit("/", 1)[1]], defs)
        return {**target, **_annotations(node)}
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        real = [s for s in any_of if not (isinstance(s, dict) and s.get("type") == "null")]
        if len(real) == 1:  # `X | None`: optional, not nullable (nulls are pruned, as kube does)
            merged = {**_structural(real[0], defs), **_annotations(node)}
            if merged.get("default", 0) is None:
                merged.pop("default")
            return merged
    out: Object = {}
    for key, value in node.items():
        if key in _DROP or key == "$ref":
            continue
        if key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            if value is True:
                out["x-kubernetes-preserve-unknown-fields"] = True
            elif isinstance(value, dict):
                out[key] = _structural(value, defs)
        elif key in ("anyOf", "oneOf", "allOf"):
            out[key] = [_structural(v, defs) for v in value]
        elif key == "const":
            out["enum"] = [value]
        elif key == "default" and value is None:
            continue  # `= None` means "absent" here, not a null default
        else:
            out[key] = value
    if not any(k in out for k in ("type", "anyOf", "oneOf", "allOf", "x-kubernetes-preserve-unknown-fields")):
        out["x-kubernetes-preserve-unknown-fields"] = True
    return out


def _annotations(node: Object) -> Object:
    """What a `$ref` or `anyOf` wrapper adds besides the schema it wraps (description, default)."""
    return {k: v for k, v in node.items() if k in ("description", "default")}
