"""Generic handlers for the resource verbs: get, list, create, update, patch, delete, deletecollection.

Nothing here knows a particular resource: the store and its definition,
found from the request path, drive everything.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.patch import json_merge_patch, json_patch, strategic_merge_patch
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints import negotiation as neg
from kapi.endpoints.connect import handle_connect
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import request_user
from kapi.endpoints.params import QueryOptions, check_dry_run, parse_list_options, parse_query
from kapi.endpoints.watch import serve_watch
from kapi.registry.decoding import go_json_type, undecodable
from kapi.registry.field_manager import manager_from
from kapi.registry.json_reads import type_prefix
from kapi.registry.store import Store, WriteOptions
from kapi.registry.scale import replicas_of, to_scale, with_replicas
from kapi.registry.table import to_table
from kapi.scheme.definitions import ResourceDef, VersionDef
from kapi.scheme.registry import version_priority
from kapi.storage.interfaces import Preconditions

_ITEM_METHODS = {"GET", "PUT", "PATCH", "DELETE", "HEAD"}
_COLLECTION_METHODS = {"GET", "POST", "DELETE", "HEAD"}
_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete"}


async def read_body(request: Request, limit: int) -> bytes:
    """The whole body, refusing anything over `limit` bytes with 413 before reading it all."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise errors.RequestEntityTooLarge(f"Request entity too large: limit is {limit}")
        chunks.append(chunk)
    return b"".join(chunks)


def respond(request: Request, obj: Any, status: int = 200, warnings: list[str] | None = None,
            output: neg.Output | None = None) -> Response:
    output = output or neg.negotiate(request.headers.get("accept"), allow_table=False)
    body, content_type = neg.encode(obj, output)
    headers = {}
    if warnings:
        headers["Warning"] = ", ".join('299 - "' + w.replace('"', '\\"') + '"' for w in warnings)
    return Response(body, status_code=status, media_type=content_type, headers=headers)


def _resolve(ctx: ApiContext, info: RequestInfo) -> tuple[Store, str]:
    found = ctx.scheme.lookup(info.group, info.version, info.resource)
    store = ctx.store(info.group, info.resource) if found else None
    if store is None or info.extra_parts:
        raise errors.no_such_resource()
    definition, version = found  # type: ignore[misc]
    if info.subresource and info.subresource not in _served_subresources(definition, version):
        raise errors.no_such_resource()
    if definition.namespaced and not info.namespace and info.name:
        raise errors.no_such_resource()
    if not definition.namespaced and info.namespace and not (info.group == "" and info.resource == "namespaces"):
        raise errors.no_such_resource()
    return store, version.name


def _served_subresources(definition: ResourceDef, version: VersionDef) -> set[str]:
    served = {"status"} if version.status_subresource else set()
    if version.scale is not None:
        served.add("scale")
    served.update(c.name for c in definition.connect)
    served.update(a.name for a in definition.actions)
    served.update(definition.part_subresources)
    return served


def _write_options(q: QueryOptions, request: Request) -> WriteOptions:
    check_dry_run(q.dry_run_values, request.method)
    manager = manager_from(q.field_manager, request.headers.get("user-agent", ""))
    return WriteOptions(dry_run=q.dry_run, field_validation=q.field_validation, user=request_user(request),
                        manager=manager)


def _namespace(store: Store, info: RequestInfo) -> str:
    return info.namespace if store.definition.namespaced else ""


async def handle_resource(request: Request, info: RequestInfo, ctx: ApiContext) -> Response:
    """Dispatch one resource request to its verb."""
    store, version = _resolve(ctx, info)
    connector = store.definition.connector(info.subresource) if info.subresource else None
    if connector is not None:
        return await handle_connect(request, store, info, version, _namespace(store, info), connector)
    action = store.definition.action(info.subresource) if info.subresource else None
    if action is not None:
        handler = ctx.actions.get((info.group, info.resource, info.subresource))
        if handler is None:
            raise errors.no_such_resource()
        if _METHOD_VERBS.get(request.method) not in action.verbs:
            raise errors.method_not_allowed()
        return await handler(request, ctx, store, info, version, _namespace(store, info))
    method = request.method
    allowed = _ITEM_METHODS if info.name else _COLLECTION_METHODS
    if method not in allowed or (info.subresource and method not in ("GET", "PUT", "PATCH")):
        raise errors.method_not_allowed()
    if store.definition.namespaced and not info.namespace and method != "GET":
        raise errors.method_not_allowed()
    if not info.subresource and info.verb not in store.definition.served_verbs:
        raise errors.method_not_allowed()
    q = parse_query(request.query_params, request.method)
    ns = _namespace(store, info)
    response = await _dispatch(request, ctx, store, info, version, ns, q)
    vdef = store.definition.version(version)
    if vdef is not None and vdef.deprecated:
        response.headers.append("Warning", '299 - "' + _deprecation(store, vdef).replace('"', '\\"') + '"')
    return response


def _deprecation(store: Store, vdef: VersionDef) -> str:
    """kube's default wording names the newest served, non-deprecated, newer version to use instead."""
    d = store.definition
    if vdef.deprecation_warning:
        return vdef.deprecation_warning
    message = f"{d.api_version(vdef.name)} {d.kind} is deprecated"
    newer = sorted((v.name for v in d.served_versions
                    if not v.deprecated and version_priority(v.name) < version_priority(vdef.name)),
                   key=version_priority)
    return message + (f"; use {d.api_version(newer[0])} {d.kind}" if newer else "")


async def _dispatch(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                    q: QueryOptions) -> Response:
    method = request.method
    if info.subresource == "scale":
        return await _scale(request, ctx, store, info, version, ns, q)
    if info.verb == "watch":
        return await _watch(request, ctx, store, info, version, ns, q)
    if method in ("GET", "HEAD"):
        return await _read(request, store, info, version, ns, q)
    if method == "POST":
        return await _create(request, ctx, store, version, ns, q)
    if method == "PUT":
        return await _update(request, ctx, store, info, version, ns, q)
    if method == "PATCH":
        return await _patch(request, ctx, store, info, version, ns, q)
    return await _delete(request, ctx, store, info, version, ns, q)


async def _read(request: Request, store: Store, info: RequestInfo, version: str, ns: str,
                q: QueryOptions) -> Response:
    output = neg.negotiate(request.headers.get("accept"), streams=not info.name)
    vdef = store.definition.version(version)
    if info.name:
        if output.format == "json":
            return Response(await store.get_json(ns, info.name, version), media_type=neg.JSON)
        obj = await store.get(ns, info.name, version)
        if output.format == "table" and vdef is not None:
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return respond(request, to_table(vdef, [obj], list_metadata=meta, include_object=q.include_object,
                                             table_version=output.version), output=neg.Output("json"))
        if output.format == "partial":
            obj = {"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{output.version}",
                   "metadata": obj.get("metadata", {})}
            output = neg.Output("json")
        return respond(request, obj, output=output)
    opts = parse_list_options(request.query_params, store.definition, watch=False,
                              limit=q.limit, continue_token=q.continue_token)
    if output.format == "json":
        stored = await store.list_json(ns, version, opts)
        if stored is not None:
            return Response(_list_bytes(store, version, *stored), media_type=neg.JSON)
    listed = await store.list(ns, version, opts)
    if output.format == "table" and vdef is not None:
        return respond(request, to_table(vdef, listed["items"], list_metadata=listed["metadata"],
                                         include_object=q.include_object, table_version=output.version),
                       output=neg.Output("json"))
    if output.format == "partial":
        listed = {"kind": "PartialObjectMetadataList", "apiVersion": f"meta.k8s.io/{output.version}",
                  "metadata": listed["metadata"],
                  "items": [{"kind": "PartialObjectMetadata", "apiVersion": f"meta.k8s.io/{output.version}",
                             "metadata": o.get("metadata", {})} for o in listed["items"]]}
        output = neg.Output("json")
    elif store.definition.builtin:
        listed = {**listed, "items": [without_type_meta(o) for o in listed["items"]]}
    else:  # an unstructured list always sets its continue token, empty on the last page
        listed = {**listed, "metadata": {"continue": "", **listed["metadata"]}}
    return respond(request, listed, output=output)


def without_type_meta(obj: dict[str, Any]) -> dict[str, Any]:
    """A compiled kind's list item: kube decodes typed items with an empty TypeMeta, where a custom
    resource's unstructured items keep their apiVersion and kind."""
    return {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}


def _list_bytes(store: Store, version: str, items: list[bytes], list_meta: dict[str, Any]) -> bytes:
    """The list `_read` makes of objects, made of the items' JSON (`Store.list_json`): the same bytes."""
    d = store.definition
    if d.builtin:  # without_type_meta: every item starts with its type prefix, cut to "{"
        cut = len(type_prefix(d, version))
        items = [b"{" + item[cut:] for item in items]
    else:
        list_meta = {"continue": "", **list_meta}
    return b'{"apiVersion":%s,"kind":%s,"metadata":%s,"items":[%s]}' % (
        orjson.dumps(d.api_version(version)), orjson.dumps(d.list_kind_name), orjson.dumps(list_meta),
        b",".join(items))


async def _watch(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                 q: QueryOptions) -> Response:
    """A watch on a collection, or on one object (`/watch/.../<name>` or `fieldSelector=metadata.name=`)."""
    if info.subresource:
        raise errors.method_not_allowed()
    params = dict(request.query_params)
    if info.name:
        pinned = f"metadata.name={info.name}"
        params["fieldSelector"] = f"{params['fieldSelector']},{pinned}" if params.get("fieldSelector") else pinned
    opts = parse_list_options(params, store.definition, watch=True)
    output = neg.negotiate(request.headers.get("accept"), streams=True)
    return await serve_watch(store, version, ns, opts, output, q.include_object, ctx)


async def _scale(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                 q: QueryOptions) -> Response:
    """GET, PUT and PATCH of `autoscaling/v1 Scale`, written through to specReplicasPath."""
    spec = store.definition.version(version).scale  # type: ignore[union-attr]
    assert spec is not None
    current = await store.get(ns, info.name, version)
    if request.method == "GET":
        return respond(request, to_scale(current, spec))
    body = await _body(request, ctx)
    if request.method == "PATCH":
        apply = _patch_function(request.headers.get("content-type"), body, None)
        wanted = apply(to_scale(current, spec))
    else:
        wanted = body
    replicas = replicas_of(wanted, info.name)
    rv = ((wanted.get("metadata") or {}) if isinstance(wanted, dict) else {}).get("resourceVersion")

    def set_replicas(obj: dict[str, Any]) -> dict[str, Any]:
        if rv:
            obj["metadata"]["resourceVersion"] = rv  # a stale Scale conflicts like a stale object
        return with_replicas(obj, replicas, spec)

    opts = _write_options(q, request)
    opts.manager_subresource = "scale"
    updated = await store.patch(ns, info.name, version, "", set_replicas, opts)
    return respond(request, to_scale(updated, spec), warnings=opts.warnings)


async def _body(request: Request, ctx: ApiContext) -> Any:
    return neg.decode_body(request.headers.get("content-type"), await read_body(request, ctx.max_body_bytes))


async def _object_body(request: Request, ctx: ApiContext, store: Store, version: str,
                       q: QueryOptions) -> dict[str, Any]:
    """A create's or update's body: one object of the store's kind (no repeated keys, when strict)."""
    raw = await read_body(request, ctx.max_body_bytes)
    d = store.definition
    obj = neg.decode_body(request.headers.get("content-type"), raw, d.kind)
    if not isinstance(obj, dict):
        raise errors.BadRequest("the body of the request must be a JSON or YAML object")
    if q.field_validation == "Strict":
        repeated = neg.duplicate_fields(request.headers.get("content-type"), raw)
        if repeated:
            raise undecodable(d, d.kind, version, "strict decoding error: "
                              + ", ".join(f'duplicate field "{k}"' for k in repeated))
    return obj


async def _create(request: Request, ctx: ApiContext, store: Store, version: str, ns: str,
                  q: QueryOptions) -> Response:
    obj = await _object_body(request, ctx, store, version, q)
    opts = _write_options(q, request)
    created = await store.create(ns, obj, version, opts)
    return respond(request, created, status=201, warnings=opts.warnings)


async def _update(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                  q: QueryOptions) -> Response:
    obj = await _object_body(request, ctx, store, version, q)
    opts = _write_options(q, request)
    updated = await store.update(ns, info.name, obj, version, info.subresource, opts)
    return respond(request, updated, warnings=opts.warnings)


async def _patch(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                 q: QueryOptions) -> Response:
    kind = _patch_type(request.headers.get("content-type"), q)
    body = await _body(request, ctx)
    opts = _write_options(q, request)
    if kind == neg.APPLY_PATCH:
        if not isinstance(body, dict):
            raise errors.BadRequest("error decoding patch: json: cannot unmarshal array into Go value of type "
                                    "map[string]interface {}")
        applied, created = await store.apply(ns, info.name, version, info.subresource, body, opts, bool(q.force))
        return respond(request, applied, status=201 if created else 200, warnings=opts.warnings)
    vdef = store.definition.version(version)
    apply = _patch_function(request.headers.get("content-type"), body, vdef.schema if vdef else None)
    opts.patched = True
    patched = await store.patch(ns, info.name, version, info.subresource, apply, opts)
    return respond(request, patched, warnings=opts.warnings)


def _patch_type(content_type: str | None, q: QueryOptions | None = None) -> str:
    """The patch kind named by Content-Type (415 for anything else), with kube's PatchOptions checks."""
    kind = neg.parse_media_type(content_type or "").type
    if kind not in neg.PATCH_TYPES:
        raise errors.UnsupportedMediaType("415: Unsupported Media Type", details=errors.QualifiedKind())
    if q is not None:
        if kind != neg.APPLY_PATCH and q.force is not None:
            raise errors.invalid("meta.k8s.io", "PatchOptions", "", [errors.field_forbidden(
                "force", "may not be specified for non-apply patch")])
        if kind == neg.APPLY_PATCH and not q.field_manager:
            raise errors.invalid("meta.k8s.io", "PatchOptions", "", [errors.required(
                "fieldManager", "is required for apply patch")])
    return kind


def _patch_function(content_type: str | None, body: Any, schema: dict[str, Any] | None) -> Any:
    """The old-to-new function a patch body stands for (all patch kinds share the update path)."""
    kind = _patch_type(content_type)
    if kind == neg.APPLY_PATCH:  # an apply configuration of a Scale: its fields replace the current ones
        return lambda current: json_merge_patch(current, body)
    if kind == neg.JSON_PATCH:
        if not isinstance(body, list):
            raise errors.BadRequest(f"error decoding patch: json: cannot unmarshal {go_json_type(body)} into Go "
                                    "value of type []handlers.jsonPatchOp")
        return lambda current: json_patch(current, body)
    if not isinstance(body, dict):
        raise errors.BadRequest(f"{'merge' if kind == neg.MERGE_PATCH else 'strategic merge'} patch "
                                "must be a JSON object")
    if kind == neg.MERGE_PATCH:
        return lambda current: json_merge_patch(current, body)
    return lambda current: strategic_merge_patch(current, body, schema)


@dataclass(frozen=True)
class DeleteRequest:
    """What a delete asks beyond the path: DeleteOptions from the body, else from the query (as kube reads them)."""

    preconditions: Preconditions | None = None
    dry_run: bool = False
    propagation: str = ""
    grace_period: int | None = None


def grace_period_from(value: Any, in_query: bool) -> int | None:
    """DeleteOptions.gracePeriodSeconds: an integer (negative is kept: the registry treats it as 1s)."""
    if value is None or value == "":
        return None
    if in_query:
        try:
            return int(str(value))
        except ValueError:
            raise errors.BadRequest(f'invalid value for gracePeriodSeconds: "{value}": must be an integer') from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise errors.BadRequest("gracePeriodSeconds: must be an integer, not " + type(value).__name__)
    return value


def _propagation(policy: Any) -> str:
    """A propagationPolicy, checked before the object is looked at (kube validates DeleteOptions first)."""
    if policy in (None, ""):
        return ""
    if policy not in ("Foreground", "Background", "Orphan"):
        raise errors.invalid("meta.k8s.io", "DeleteOptions", "", [errors.field_not_supported(
            "propagationPolicy", policy, ["Foreground", "Background", "Orphan", "nil"])])
    return str(policy)


def delete_request(raw: Any, query: Any) -> DeleteRequest:
    """Preconditions, dryRun, propagation and grace from a DeleteOptions body (kind optional, as kubectl sends
    it); a request without a body gives them as query parameters."""
    if raw is None:
        return DeleteRequest(propagation=_propagation(query.get("propagationPolicy")),
                             grace_period=grace_period_from(query.get("gracePeriodSeconds"), True))
    if not isinstance(raw, dict):
        raise errors.BadRequest("the body of a delete request must be a DeleteOptions object")
    if raw.get("kind") not in (None, "DeleteOptions"):
        raise errors.BadRequest(f'the body of a delete request must be DeleteOptions, not {raw.get("kind")}')
    policy = _propagation(raw.get("propagationPolicy")) or None
    dry_run = raw.get("dryRun") or []
    if not isinstance(dry_run, list) or not all(isinstance(v, str) for v in dry_run):
        raise errors.BadRequest(f"dryRun: must be a list of strings, not {dry_run!r}")
    check_dry_run(dry_run, "DELETE")
    if raw.get("orphanDependents") is True and policy is None:
        policy = "Orphan"  # the deprecated spelling of the same wish
    policy = _propagation(query.get("propagationPolicy")) or policy or ""
    grace = grace_period_from(raw.get("gracePeriodSeconds"), False)
    if grace is None:
        grace = grace_period_from(query.get("gracePeriodSeconds"), True)
    pre = raw.get("preconditions")
    if pre is None:
        return DeleteRequest(None, bool(dry_run), policy, grace)
    if not isinstance(pre, dict):
        raise errors.BadRequest("preconditions must be an object")
    return DeleteRequest(Preconditions(uid=pre.get("uid"), resource_version=pre.get("resourceVersion")),
                         bool(dry_run), policy, grace)


def _deleted_status(store: Store, deleted: dict[str, Any]) -> dict[str, Any]:
    """What kube answers for a delete that removed the object, for most kinds: a Success Status naming it."""
    d, meta = store.definition, deleted.get("metadata") or {}
    details = {"name": meta.get("name", ""), **({"group": d.group} if d.group else {}), "kind": d.plural,
               "uid": meta.get("uid", "")}
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


async def _delete(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str, ns: str,
                  q: QueryOptions) -> Response:
    raw = await read_body(request, ctx.max_body_bytes)
    asked = delete_request(neg.decode_body(request.headers.get("content-type"), raw) if raw.strip() else None,
                           request.query_params)
    opts = _write_options(q, request)
    opts.dry_run = opts.dry_run or asked.dry_run
    if info.name:
        deleted = await store.delete(ns, info.name, version, asked.preconditions, opts, asked.propagation,
                                     grace_period=asked.grace_period)
        still_there = bool((deleted.get("metadata") or {}).get("deletionTimestamp"))
        if store.definition.returns_deleted_object or still_there:
            return respond(request, deleted)
        return respond(request, _deleted_status(store, deleted))
    list_opts = parse_list_options(request.query_params, store.definition, watch=False)
    deleted = await store.delete_collection(ns, version, opts, list_opts, grace_period=asked.grace_period)
    if store.definition.builtin:
        deleted = {**deleted, "items": [without_type_meta(o) for o in deleted["items"]]}
    return respond(request, deleted)
