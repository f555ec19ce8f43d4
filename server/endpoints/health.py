"""`/healthz`, `/livez`, `/readyz` as kube-apiserver answers them, and kapi's storage status.

Each endpoint is a list of named checks. `ping` always passes; `etcd`
(named as in kube-apiserver, whatever the backend) passes while the storage
can serve. `/livez` leaves storage out, so a server whose etcd is away is
not-ready but alive, and comes back by itself. `?verbose` lists the checks
(`[+]etcd ok`), `/readyz/<check>` runs one, and a failure answers 500 with
kube's "[-]etcd failed: reason withheld".

`/kapi/storage` (authenticated) is the backend's own report for
`kapi status`: for etcd its endpoints, each member's health, the leader,
the revision and the database size.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from kapi.api import errors
from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ApiContext

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
STORAGE_STATUS_PATH = "/kapi/storage"
Check = Callable[[ApiContext], Awaitable[bool]]


async def _ping(_ctx: ApiContext) -> bool:
    return True


async def _storage(ctx: ApiContext) -> bool:
    return bool((await ctx.storage_health()).get("ok"))


_CHECKS: dict[str, dict[str, Check]] = {
    "/healthz": {"ping": _ping, "etcd": _storage},
    "/livez": {"ping": _ping},
    "/readyz": {"ping": _ping, "etcd": _storage},
}


def is_health_path(path: str) -> bool:
    return path in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS))


async def handle_health(request: Request, ctx: ApiContext) -> Response:
    path = request.scope["path"].rstrip("/")
    endpoint = next(p for p in HEALTH_PATHS if path == p or path.startswith(p + "/"))
    checks = _CHECKS[endpoint]
    name = path[len(endpoint) + 1:]
    if name:
        if name not in checks:
            raise errors.no_such_resource()
        checks = {name: checks[name]}
    results = {check: await run(ctx) for check, run in checks.items()}
    healthy = all(results.values())
    label = endpoint.strip("/")
    if name:
        body = "ok" if healthy else f"internal server error: {name} failed"
    elif "verbose" in request.query_params or not healthy:
        lines = [f"[+]{c} ok" if ok else f"[-]{c} failed: reason withheld" for c, ok in results.items()]
        lines.append(f"{label} check passed" if healthy else f"{label} check failed")
        body = "\n".join(lines)
    else:
        body = "ok"
    return PlainTextResponse(body, status_code=200 if healthy else 500)


async def handle_storage_status(ctx: ApiContext) -> Response:
    report: dict[str, Any] = await ctx.storage_health()
    return Response(orjson.dumps(report), media_type=neg.JSON)
