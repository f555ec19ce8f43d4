"""`/metrics` and the filter that measures every request, as kube-apiserver's instrumentation does.

`with_metrics` sits in the chain right after request info, so every request
is counted with the code its client gets, the 401s, 403s and 429s of the
filters after it included (kube's route instrumentation counts only routed
requests and throttling; kapi also counts refusals, which is what an
operator looking at `code="403"` wants to see). Long-running requests
(watches; log, exec, attach, portforward and proxy subresources) are
counted in `apiserver_longrunning_requests` while they run and recorded
when their stream ends, the others in `apiserver_current_inflight_requests`
(readOnly for get, list and watch, mutating for the rest).

Label values stay bounded whatever clients send: a refused request (4xx/5xx)
for a resource this cluster does not serve is recorded with empty group,
version and resource, and a non-resource path is recorded as itself only
when it is one the server serves (`/metrics`, `/healthz`, discovery), a
dynamic one under its collection (`/kapi/clusters/{name}`), otherwise as "".

`/metrics` (root cluster only: the numbers are the server's) is authorized
as any non-resource URL: `get` on `/metrics`, which kube's bootstrap
`system:monitoring` role grants.
"""
from __future__ import annotations

import functools
import time
import weakref
from typing import Any, AsyncIterable, AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kapi.api import errors
from kapi.api.metrics import (
    CONNECT_SUBRESOURCES,
    CONTENT_TYPE,
    MUTATING,
    READ_ONLY,
    RequestKey,
    ServerMetrics,
    clean_dry_run,
    metric_scope,
    metric_verb,
)
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import INFO_KEY, Handler
from kapi.storage.interfaces import StorageUnavailableError

METRICS_PATH = "/metrics"
_READ_ONLY_VERBS = frozenset({"get", "list", "watch"})
# Non-resource paths recorded as themselves whatever the answer; the dynamic ones under their collection.
_FIXED_PATHS = frozenset({"/", "/api", "/api/v1", "/apis", "/version", METRICS_PATH, "/healthz", "/livez",
                          "/readyz", "/openapi/v2", "/openapi/v3", "/.well-known/openid-configuration",
                          "/openid/v1/jwks", "/kapi/storage", "/kapi/simulation/clock", "/kapi/faults",
                          "/kapi/clusters", "/kapi/snapshots"})
_DYNAMIC_PATHS = ("/kapi/clusters/", "/kapi/snapshots/", "/kapi/faults/")
# Paths whose served variants are bounded by what the server serves (groups, health checks): kept when answered.
_SERVED_PREFIXES = ("/apis/", "/openapi/v3/", "/healthz/", "/livez/", "/readyz/")


def _content_type(scope: Any) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"content-type":
            return str(value.decode("latin-1"))
    return ""


def path_label(path: str, code: int) -> str:
    """The `subresource` label of a non-resource request (kube: the path), bounded."""
    if path in _FIXED_PATHS:
        return path
    for prefix in _DYNAMIC_PATHS:
        if path.startswith(prefix):
            return prefix + "{name}"
    if code < 400 and path.startswith(_SERVED_PREFIXES) and path.count("/") <= 5:
        return path
    return ""


def resource_key(ctx: ApiContext, key: RequestKey, code: int) -> RequestKey:
    """`key` for a resource request; a refused one for a resource (or subresource) this cluster does not serve
    loses its group/version/resource (subresource), so made-up paths cannot grow the label sets."""
    if code < 400:
        return key
    verb, dry_run, group, version, resource, subresource, scope = key
    found = ctx.scheme.lookup(group, version, resource)
    if found is None:
        if ctx.aggregated and ctx.aggregated.get(group, version) is not None:
            return key  # another server's group-version: its answer, its resources
        return verb, dry_run, "", "", "", "", scope
    definition = found[0]
    if subresource and not (
            (subresource == "status" and definition.has_status)
            or (subresource == "scale" and any(v.scale is not None for v in definition.versions))
            or definition.action(subresource) is not None or definition.connector(subresource) is not None
            or subresource in definition.part_subresources
            or (group, resource, subresource) in ctx.actions):
        return verb, dry_run, group, version, resource, "", scope
    return key


def with_metrics(handler: Handler, ctx: ApiContext) -> Handler:
    """Count and time every request into `ctx.metrics` (the handler as it is when the cluster has none).

    Written for the common case's speed (a plain answer): the counters are
    bound once here, and that path makes no call but the label helpers.
    """
    metrics = ctx.metrics
    if metrics is None:
        return handler
    current, peak = metrics.inflight.current, metrics.inflight.peak
    observe = metrics.observe_request
    clock = time.perf_counter

    async def run(request: Request) -> Response:
        scope = request.scope
        info: RequestInfo = scope[INFO_KEY]
        start = clock()
        is_resource = info.is_resource_request
        label_scope = metric_scope(is_resource, info.namespace, info.name, info.verb)
        connect = is_resource and info.subresource in CONNECT_SUBRESOURCES
        method = scope["method"]
        verb = metric_verb(method, label_scope, info.verb == "watch", connect,
                           _content_type(scope) if method == "PATCH" else "")
        dry_run = clean_dry_run(request.query_params.getlist("dryRun")) if b"dryRun" in scope["query_string"] \
            else ""
        key: RequestKey = (verb, dry_run, info.group, info.version, info.resource, info.subresource, label_scope)
        gauge: Any = None
        kind = READ_ONLY
        if connect or info.verb == "watch":  # long-running: not in flight, counted among the long-running
            gauge = metrics.longrunning_gauge(verb, info.group, info.version, info.resource, info.subresource,
                                              label_scope)
            gauge.inc()
        else:
            if info.verb not in _READ_ONLY_VERBS:
                kind = MUTATING
            count = current[kind] = current[kind] + 1
            if count > peak[kind]:
                peak[kind] = count
        try:
            response = await handler(request)
        except errors.StatusError as exc:
            _finish(ctx, metrics, info, key, gauge, kind, start, exc.code)
            raise
        except StorageUnavailableError:
            _finish(ctx, metrics, info, key, gauge, kind, start, 503)
            raise
        except Exception:
            _finish(ctx, metrics, info, key, gauge, kind, start, 500)
            raise
        except BaseException:  # cancelled: the client is gone, nothing was answered
            _release(metrics, gauge, kind)
            raise
        if isinstance(response, StreamingResponse):  # a watch, a log, a proxied answer: done when its stream ends
            done = _Once(functools.partial(_finish, ctx, metrics, info, key, gauge, kind, start),
                         response.status_code)
            response.body_iterator = _recorded_stream(response.body_iterator, done)
            weakref.finalize(response, done)  # a stream never started (its client left first) still ends here
            return response
        if type(response).__call__ is not Response.__call__:  # a mounted app: its status is known once it answers
            return _RecordedApp(response, functools.partial(_finish, ctx, metrics, info, key, gauge, kind, start))
        code = response.status_code
        if gauge is None:
            current[kind] -= 1
        else:
            gauge.dec()
        if code >= 400 or not is_resource:
            key = _bounded(ctx, info, key, code)
        observe(key, code, clock() - start)
        return response

    return run


def _release(metrics: ServerMetrics, gauge: Any, kind: str) -> None:
    if gauge is not None:
        gauge.dec()
    else:
        metrics.inflight_ended(kind)


def _bounded(ctx: ApiContext, info: RequestInfo, key: RequestKey, code: int) -> RequestKey:
    if not info.is_resource_request:
        return (*key[:5], path_label(info.path, code), "")  # type: ignore[return-value]
    return resource_key(ctx, key, code)


def _finish(ctx: ApiContext, metrics: ServerMetrics, info: RequestInfo, key: RequestKey, gauge: Any, kind: str,
            start: float, code: int) -> None:
    """The request answered `code`: no longer running, counted and timed under bounded labels."""
    _release(metrics, gauge, kind)
    if code >= 400 or not info.is_resource_request:
        key = _bounded(ctx, info, key, code)
    metrics.observe_request(key, code, time.perf_counter() - start)


class _Once:
    """Calls `finish(code)` the first time it is called, never again."""

    __slots__ = ("_finish", "_code")

    def __init__(self, finish: Callable[[int], None], code: int) -> None:
        self._finish: Callable[[int], None] | None = finish
        self._code = code

    def __call__(self) -> None:
        finish, self._finish = self._finish, None
        if finish is not None:
            finish(self._code)


async def _recorded_stream(body: AsyncIterable[Any], done: _Once) -> AsyncIterator[Any]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        done()


class _RecordedApp(Response):
    """Runs an ASGI response (a mounted app) and records the request with the status it answered."""

    def __init__(self, inner: Response, finish: Callable[[int], None]) -> None:
        super().__init__()
        self._inner, self._finish = inner, finish

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status = 500

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 500))
            await send(message)

        try:
            await self._inner(scope, receive, recording_send)
        finally:
            self._finish(status)


async def handle_metrics(metrics: ServerMetrics) -> Response:
    """Every metric of this server in Prometheus' text format, stored-object counts read just now."""
    await metrics.refresh_object_counts()
    return Response(metrics.exposition(), media_type=CONTENT_TYPE)
