"""`/kapi/faults`: a test asks this cluster for faults, lists them and takes them back.

    GET    /kapi/faults              {"faults": [...]} in force
    POST   /kapi/faults              a fault spec (`kapi.api.faults`) → 201 with its id;
                                     or an action, done at once:
                                     {"type": "ExpireWatches", "resource": "configmaps"} ends open watches with
                                     410 Expired; {"type": "Compact"} drops the history, so a watch or a
                                     list continuation from an older resourceVersion gets 410
    DELETE /kapi/faults              every fault taken back (what the test fixture does at the end)
    GET    /kapi/faults/<id>, DELETE /kapi/faults/<id>

Under `/clusters/<name>/` it concerns that cluster only. As any non-resource path it is authorized (verbs
get, create, delete on the URL), so only an administrator may inject faults.
"""
from __future__ import annotations

import asyncio
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import Handler, request_info, request_user

FAULTS_PATH = "/kapi/faults"


def is_faults_path(path: str) -> bool:
    return path == FAULTS_PATH or path.startswith(FAULTS_PATH + "/")


def _json(answer: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(answer), status_code=status, media_type=neg.JSON)


async def handle_faults(request: Request, ctx: ApiContext) -> Response:
    fault_id = request.scope["path"][len(FAULTS_PATH):].strip("/")
    method = request.method
    if fault_id:
        found = next((f for f in ctx.faults.describe() if f["id"] == fault_id), None)
        if found is None:
            raise errors.NotFound(f'fault "{fault_id}" not found')
        if method == "GET":
            return _json(found)
        if method == "DELETE":
            ctx.faults.remove(fault_id)
            return _json(found)
        raise errors.method_not_allowed()
    if method == "GET":
        return _json({"faults": ctx.faults.describe()})
    if method == "DELETE":
        ctx.faults.clear()
        return _json({"faults": []})
    if method != "POST":
        raise errors.method_not_allowed()
    try:
        spec = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise errors.BadRequest('the body must be a JSON fault such as {"type": "Fail", "code": 500}') from None
    kind = spec.get("type") if isinstance(spec, dict) else None
    if kind == "ExpireWatches":
        return _json({"type": kind, "ended": _expire_watches(ctx, spec)})
    if kind == "Compact":
        if ctx.storage is None:
            raise errors.ServiceUnavailable("this server has no storage to compact")
        return _json({"type": kind, "revision": await ctx.storage.compact()})
    return _json(ctx.faults.add(spec).to_dict(), 201)


def _expire_watches(ctx: ApiContext, spec: dict[str, Any]) -> int:
    """End the open watch streams (of `spec["resource"]`, "plural" or "plural.group", else all) with 410."""
    wanted = spec.get("resource", "")
    if not isinstance(wanted, str) or set(spec) - {"type", "resource"}:
        raise errors.BadRequest('ExpireWatches takes only "resource" ("plural" or "plural.group")')
    plural, _, group = wanted.partition(".")
    ended = 0
    for stream in list(ctx.watches):
        if not wanted or stream.resource == (group, plural):
            stream.expire()
            ended += 1
    return ended


def with_faults(handler: Handler, ctx: ApiContext) -> Handler:
    """Meet the faults in force: wait out a Delay, then answer a Fail's or Conflict's Status; with the storage
    paused, resource requests get 503 as if etcd were away. `/kapi/` paths are never faulted (a test must
    be able to take its faults back)."""
    async def run(request: Request) -> Response:
        faults = ctx.faults
        if not faults or request.scope["path"].startswith("/kapi/"):
            return await handler(request)
        info = request_info(request)
        if faults.paused and info.is_resource_request:
            raise errors.ServiceUnavailable("storage is unavailable: etcdserver: request timed out "
                                            "(kapi fault: PauseStorage)", retry_after=1)
        met = faults.for_request(info.verb, info.group, info.resource, request_user(request).name)
        for fault in met:
            if fault.delay:
                await asyncio.sleep(fault.delay)
        failing = next((f for f in met if f.type != "Delay"), None)
        if failing is not None:
            raise failing.error(info.group, info.resource, info.name)
        return await handler(request)
    return run
