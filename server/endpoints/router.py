"""Route a request, by its parsed RequestInfo, to a resource verb or a non-resource document."""
from __future__ import annotations

from typing import Any, Protocol, Sequence

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.auth.interfaces import Authenticator, Authorizer
from kapi.endpoints import faults, health, nonresource, reviews, simulation
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import Handler, build_handler_chain, request_info, request_user
from kapi.endpoints.metrics import METRICS_PATH, handle_metrics
from kapi.endpoints.proxy import proxy
from kapi.endpoints.resources import handle_resource

# What kube's mux answers for a path no handler claims (an API group it does not serve, an unknown path):
# plain text, not a Status.
PAGE_NOT_FOUND = b"404 page not found\n"


def page_not_found() -> Response:
    return Response(PAGE_NOT_FOUND, status_code=404, media_type="text/plain; charset=utf-8",
                    headers={"X-Content-Type-Options": "nosniff"})

class Mount(Protocol):
    """An ASGI app serving the paths it `handles` (plugin routers), behind the same filters."""

    def handles(self, path: str) -> bool: ...

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None: ...


class _MountedResponse(Response):
    """Hands the request to a mounted app once the filters have let it through."""

    def __init__(self, app: Mount) -> None:
        super().__init__()
        self._app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self._app(scope, receive, send)


def _unrouted_custom_path(ctx: ApiContext, info: RequestInfo) -> bool:
    """A custom resource's path in the wrong scope, which kube's CRD handler leaves to the mux's 404."""
    found = ctx.scheme.lookup(info.group, info.version, info.resource) if info.resource else None
    if found is None or found[0].builtin:
        return False
    namespaced = found[0].namespaced
    return bool(info.namespace and not namespaced or namespaced and not info.namespace and info.name)


def make_api_handler(ctx: ApiContext, authenticator: Authenticator, authorizer: Authorizer,
                     mounts: Sequence[Mount] = ()) -> Handler:
    """The endpoint behind every Kubernetes path, wrapped in the filter chain."""

    async def route(request: Request) -> Response:
        info = request_info(request)
        path = request.scope["path"]
        for mount in mounts:
            if mount.handles(path):
                return _MountedResponse(mount)
        if info.version and info.api_prefix == "apis" and ctx.aggregated:
            backend = ctx.aggregated.get(info.group, info.version)
            if backend is not None:  # another server's group-version (an APIService with a service)
                return await proxy(request, backend, ctx.aggregated, request_user(request))
        if info.api_prefix == "apis" and info.version and (ctx.scheme.group(info.group) is None
                                                         or _unrouted_custom_path(ctx, info)):
            return page_not_found()
        if info.is_resource_request:
            if reviews.review_for(info) is not None:
                return await reviews.handle_review(request, info, ctx, authorizer, authenticator)
            return await handle_resource(request, info, ctx)
        if info.api_prefix:
            return nonresource.handle_discovery(request, info, ctx)
        if path == "/version" or path == "/version/":
            return nonresource.handle_version(request, ctx)
        if health.is_health_path(path):
            return await health.handle_health(request, ctx)
        if path == health.STORAGE_STATUS_PATH:
            return await health.handle_storage_status(ctx)
        if path == simulation.CLOCK_PATH:
            return await simulation.handle_clock(request, ctx)
        if faults.is_faults_path(path):
            return await faults.handle_faults(request, ctx)
        if path.startswith("/openapi/"):
            return nonresource.handle_openapi(request, ctx)
        if path in nonresource.OPENID_PATHS:
            return nonresource.handle_openid(request, ctx)
        if path == METRICS_PATH and ctx.serves_metrics and ctx.metrics is not None:
            return await handle_metrics(ctx.metrics)
        raise errors.no_such_resource()

    return build_handler_chain(route, ctx, authenticator, authorizer)
