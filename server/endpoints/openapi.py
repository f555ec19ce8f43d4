"""OpenAPI documents built from the scheme: `/openapi/v3`, `/openapi/v3/<gv>`, `/openapi/v2`.

Pure builders returning plain dicts, shaped like kube-apiserver's. kubectl
depends on details here: `apply`/`create` look for a PATCH operation with
`x-kubernetes-group-version-kind` and a `fieldValidation` query parameter
(else they fall back to v2 or fail), `explain` finds the kind's schema by its
`x-kubernetes-group-version-kind` list, and client-side apply sends strategic
merge patch only when the PATCH operation lists that content type (built-in
types only, as in kube). Operations and schemas come from `openapi_common`,
shared by both OpenAPI versions.
"""
from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kapi.endpoints import openapi_common as common
from kapi.endpoints.discovery import KUBE_VERSION
from kapi.scheme.registry import Scheme

V3_PREFIX = "#/components/schemas/"
V2_PREFIX = "#/definitions/"
_BEARER = {"type": "apiKey", "name": "authorization", "in": "header", "description": "Bearer Token authentication"}
_INFO = {"title": "Kubernetes", "version": KUBE_VERSION}

# Swagger 2.0 has no such keywords; kube drops them when it derives v2 from a CRD schema.
_V3_ONLY = ("allOf", "oneOf", "anyOf", "not", "nullable", "writeOnly", "deprecated", "discriminator")


def document_bytes(doc: dict[str, Any]) -> bytes:
    """The canonical serialisation (sorted keys, like Go's encoding/json) that is served and hashed."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)


def document_hash(doc: dict[str, Any]) -> str:
    """kube's OpenAPI v3 hash: uppercase hex SHA-512 of the document's JSON."""
    return hashlib.sha512(document_bytes(doc)).hexdigest().upper()


def v3_path_key(group: str, version: str) -> str:
    """The index key (and URL tail under `/openapi/v3/`) of a group-version: `api/v1`, `apis/<g>/<v>`."""
    return f"apis/{group}/{version}" if group else f"api/{version}"


# --- OpenAPI v3 ----------------------------------------------------------------

def _v3_param(p: common.Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.location, "description": p.description}
    if p.required:
        out["required"] = True
    out["schema"] = {"type": p.type, "uniqueItems": True}
    return out


def _v3_content(types: tuple[str, ...], schema: str) -> dict[str, Any]:
    return {t: {"schema": {"$ref": V3_PREFIX + schema}} for t in types}


def _extensions(op: common.Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"x-kubernetes-action": op.action}
    if op.gvk is not None:
        out["x-kubernetes-group-version-kind"] = dict(op.gvk)
    return out


def _v3_operation(op: common.Operation) -> dict[str, Any]:
    out: dict[str, Any] = {"description": op.description, "operationId": op.operation_id}
    if op.params:
        out["parameters"] = [_v3_param(p) for p in op.params]
    if op.body is not None:
        out["requestBody"] = {"content": _v3_content(op.consumes, op.body), "required": op.body_required}
    out["responses"] = {
        r.code: {"description": r.description, **({"content": _v3_content(op.produces, r.schema)} if r.schema else {})}
        for r in op.responses
    }
    out["tags"] = list(op.tags)
    out.update(_extensions(op))
    return out


def openapi_v3_group_version(scheme: Scheme, group: str, version: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (`/openapi/v3/apis/<g>/<v>`), or None if not served."""
    paths = common.group_version_paths(scheme, group, version)
    if paths is None:
        return None
    return {
        "openapi": "3.0.0",
        "info": dict(_INFO),
        "paths": {item.path: {op.method: _v3_operation(op) for op in item.operations} for item in paths},
        "components": {
            "schemas": common.group_version_schemas(scheme, group, version, common.V3),
            "securitySchemes": {"BearerToken": dict(_BEARER)},
        },
        "security": [{"BearerToken": []}],
    }


def openapi_v3_documents(scheme: Scheme) -> dict[str, dict[str, Any]]:
    """Every served group-version's v3 document by its index key (`api/v1`, `apis/<g>/<v>`)."""
    out: dict[str, dict[str, Any]] = {}
    for group, version in common.served_group_versions(scheme):
        doc = openapi_v3_group_version(scheme, group, version)
        if doc is not None:
            out[v3_path_key(group, version)] = doc
    return out


def openapi_v3_index(scheme: Scheme) -> dict[str, Any]:
    """`GET /openapi/v3`: each group-version's URL, carrying its document's hash."""
    return {
        "paths": {
            key: {"serverRelativeURL": f"/openapi/v3/{key}?hash={document_hash(doc)}"}
            for key, doc in openapi_v3_documents(scheme).items()
        }
    }


# --- OpenAPI v2 (Swagger 2.0) ------------------------------------------------

def to_v2_schema(schema: Any) -> Any:
    """A CRD's v3 schema as kube serves it in v2: v3-only keywords dropped, refs to `#/definitions/`.

    Nullable nodes lose their type, items and properties; nodes that preserve
    unknown fields lose items and properties (kubectl would reject unknown
    fields under them otherwise).
    """
    if isinstance(schema, list):
        return [to_v2_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _V3_ONLY:
            continue
        if key == "$ref" and isinstance(value, str) and value.startswith(V3_PREFIX):
            out[key] = V2_PREFIX + value[len(V3_PREFIX):]
        elif key == "properties" and isinstance(value, dict):
            out[key] = {name: to_v2_schema(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, (dict, list)):
            out[key] = to_v2_schema(value)
        else:
            out[key] = value
    if schema.get("nullable") is True:
        for key in ("type", "items", "properties"):
            out.pop(key, None)
    if schema.get("x-kubernetes-preserve-unknown-fields") is True:
        out.pop("items", None)
        out.pop("properties", None)
    if schema.get("x-kubernetes-int-or-string") is True:
        out.pop("type", None)
    return out


V2 = common.Dialect(V2_PREFIX, to_v2_schema)


def _v2_param(p: common.Param) -> dict[str, Any]:
    out: dict[str, Any] = {"name": p.name, "in": p.location, "description": p.description, "type": p.type}
    if p.required:
        out["required"] = True
    out["uniqueItems"] = True
    return out


def _v2_operation(op: common.Operation) -> dict[str, Any]:
    params = [_v2_param(p) for p in op.params]
    if op.body is not None:
        params.append({"name": "body", "in": "body", "required": op.body_required, "schema": {"$ref": V2_PREFIX + op.body}})
    out: dict[str, Any] = {
        "description": op.description,
        "operationId": op.operation_id,
        "consumes": list(op.consumes) if op.body is not None else ["*/*"],
        "produces": list(op.produces),
        "schemes": ["https"],
    }
    if params:
        out["parameters"] = params
    out["responses"] = {
        r.code: {"description": r.description, **({"schema": {"$ref": V2_PREFIX + r.schema}} if r.schema else {})}
        for r in op.responses
    }
    out["tags"] = list(op.tags)
    out.update(_extensions(op))
    return out


def openapi_v2(scheme: Scheme) -> dict[str, Any]:
    """`GET /openapi/v2`: one Swagger 2.0 document for every served group-version."""
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for group, version in common.served_group_versions(scheme):
        for item in common.group_version_paths(scheme, group, version) or []:
            paths[item.path] = {op.method: _v2_operation(op) for op in item.operations}
        definitions.update(common.group_version_schemas(scheme, group, version, V2))
    return {
        "swagger": "2.0",
        "info": dict(_INFO),
        "paths": paths,
        "definitions": dict(sorted(definitions.items())),
        "securityDefinitions": {"BearerToken": dict(_BEARER)},
        "security": [{"BearerToken": []}],
    }
