"""Does a request body name what its URL names? (apiVersion, kind, namespace, name: 400 otherwise, as kube's
decoder and handlers answer)."""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.api.errors import go_quote
from kapi.registry.decoding import undecodable
from kapi.scheme.definitions import ResourceDef

Object = dict[str, Any]


def check_identity(d: ResourceDef, obj: Object, version: str, namespace: str, name: str = "") -> None:
    """Fill in what the body leaves out from the URL; refuse what contradicts it."""
    if not isinstance(obj, dict):
        raise errors.BadRequest("the body of the request must be a JSON or YAML object")
    expected_api = d.api_version(version)
    api_version = obj.setdefault("apiVersion", expected_api)
    kind = obj.setdefault("kind", d.kind)
    if not d.builtin and (api_version, kind) != (expected_api, d.kind):  # the custom resource handler's words
        what, data, expected = ("API version", api_version, expected_api) if api_version != expected_api else (
            "kind", kind, d.kind)
        raise errors.BadRequest(f"the {what} in the data ({data}) does not match the expected {what} ({expected})")
    if api_version != expected_api:
        raise undecodable(d, str(kind), version, f'no kind {go_quote(str(kind))} is registered for version '
                          f'{go_quote(str(api_version))} in scheme "pkg/runtime/scheme.go:111"')
    if kind != d.kind:
        raise undecodable(d, str(kind), version, f"converting ({version}.{kind}) to ({d.group.split('.')[0] or 'core'}"
                          f".{d.kind}): unknown conversion")
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    if not isinstance(meta, dict):
        raise undecodable(d, d.kind, version, "metadata must be an object")
    if d.namespaced:
        body_ns = meta.get("namespace")
        if body_ns in (None, ""):
            meta["namespace"] = namespace
        elif body_ns != namespace:
            raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
    if name and meta.get("name") not in (None, "", name):
        raise errors.BadRequest(f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})")
    if name:
        meta["name"] = name
