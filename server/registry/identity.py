"""Does a request body name what its URL names? (apiVersion, kind, namespace, name: 422 otherwise)."""
from __future__ import annotations

from typing import Any

from server.api import errors
from server.api.errors import Cause
from server.scheme.definitions import ResourceDef

Object = dict[str, Any]


def check_identity(d: ResourceDef, obj: Object, version: str, namespace: str, name: str = "") -> None:
    """Fill in what the body leaves out from the URL; refuse what contradicts it, every field at once."""
    if not isinstance(obj, dict):
        raise errors.BadRequest("the body of the request must be a JSON or YAML object")
    causes: list[Cause] = []
    expected_api = d.api_version(version)
    api_version = obj.setdefault("apiVersion", expected_api)
    kind = obj.setdefault("kind", d.kind)
    if api_version != expected_api:
        causes.append(errors.field_invalid("apiVersion", api_version, f"must be {expected_api}"))
    if kind != d.kind:
        causes.append(errors.field_invalid("kind", kind, f"must be {d.kind}"))
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        causes.append(errors.field_invalid("metadata", meta, "must be an object"))
    else:
        if d.namespaced:
            body_ns = meta.get("namespace")
            if body_ns in (None, ""):
                meta["namespace"] = namespace
            elif body_ns != namespace:
                causes.append(errors.field_invalid(
                    "metadata.namespace", body_ns,
                    "the namespace of the provided object does not match the namespace sent on the request",
                ))
        if name and meta.get("name") not in (None, "", name):
            causes.append(errors.field_invalid(
                "metadata.name", meta.get("name"),
                "the name of the object does not match the name on the URL",
            ))
        elif name:
            meta["name"] = name
    if causes:
        body_name = str(meta.get("name") or "") if isinstance(meta, dict) else ""
        raise errors.invalid(d.group, d.kind, name or body_name, causes)
