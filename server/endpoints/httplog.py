"""Request logging as kube-apiserver's httplog, by klog verbosity (`kapi start -v N`).

kube-apiserver writes no line per request by default: its `WithLogging`
filter logs each request only from `-v=3`, as one structured "HTTP" line
(verb as its metrics report it, URI, latency, user agent, audit ID, source
address, response code). kapi does the same, and at `-v=2` writes that line
for the requests slower than a second (kube reports those through its
request traces), leaving out watches and connections, which are long by
design.

The filter costs nothing below `-v=2`: the chain is built without it. At
`-v=2` it reads the clock twice per request; streamed responses (watches,
proxied and mounted apps) are logged when their stream ends, as kube logs
them when the handler returns.
"""
from __future__ import annotations

import logging
import time
from typing import Any, AsyncIterable, AsyncIterator, Mapping

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kapi.api.klog import KV_ATTR, V_ATTR, go_duration
from kapi.api.metrics import CONNECT_SUBRESOURCES as METRIC_CONNECT, metric_scope, metric_verb
from kapi.api.requestinfo import RequestInfo
from kapi.audit.event import AUDIT_ID_KEY
from kapi.endpoints.filters import INFO_KEY, Handler

log = logging.getLogger("kapi.httplog")
SLOW_SECONDS = 1.0  # at -v=2, requests slower than this are logged
SLOW_V, EVERY_V = 2, 3
LONG_RUNNING_SUBRESOURCES = frozenset({"exec", "attach", "portforward", "proxy"})
MAX_AUDIT_ID = 64  # kube's GetAuditIDTruncated


def reported_verb(method: str, info: RequestInfo | None, content_type: str = "") -> str:
    """The verb as kube's httplog and metrics report it (`kapi.api.metrics.metric_verb`)."""
    if info is None:
        return method.upper()
    scope = metric_scope(info.is_resource_request, info.namespace, info.name, info.verb)
    connect = info.is_resource_request and info.subresource in METRIC_CONNECT
    return metric_verb(method, scope, info.verb == "watch", connect, content_type)


def _header(scope: Mapping[str, Any], name: bytes) -> str:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return str(value.decode("latin-1"))
    return ""


def request_uri(scope: Mapping[str, Any]) -> str:
    """The request's URI as the client sent it (Go's RequestURI): path as received, with its query."""
    raw = scope.get("raw_path")
    path = raw.decode("latin-1") if raw else scope.get("path", "")
    uri = scope.get("root_path", "") + path
    query = scope.get("query_string", b"")
    return f"{uri}?{query.decode('latin-1')}" if query else uri


def http_fields(scope: Mapping[str, Any], status: int, latency: float) -> dict[str, Any]:
    """The key/values of kube's "HTTP" line, in its order (the audit ID as the audit-init filter gave it)."""
    info = scope.get(INFO_KEY)
    client = scope.get("client")
    return {
        "verb": reported_verb(scope.get("method", "GET"), info, _header(scope, b"content-type")),
        "URI": request_uri(scope),
        "latency": go_duration(latency),
        "userAgent": _header(scope, b"user-agent"),
        "audit-ID": str(scope.get(AUDIT_ID_KEY, ""))[:MAX_AUDIT_ID],
        "srcIP": f"{client[0]}:{client[1]}" if client else "",
        "resp": status,
    }


def long_running(scope: Mapping[str, Any]) -> bool:
    """Watches and connections: long by design, never "slow"."""
    info = scope.get(INFO_KEY)
    return info is not None and (info.verb == "watch" or info.subresource in LONG_RUNNING_SUBRESOURCES)


def log_request(scope: Mapping[str, Any], status: int, latency: float) -> None:
    v = SLOW_V if latency > SLOW_SECONDS else EVERY_V
    log.info("HTTP", extra={V_ATTR: v, KV_ATTR: http_fields(scope, status, latency)})


def with_http_logging(handler: Handler, verbosity: int) -> Handler:
    """Log requests as kube's httplog: none below `verbosity` 2 (the handler is returned as it is), slow
    ones at 2, every one from 3."""
    if verbosity < SLOW_V:
        return handler
    every = verbosity >= EVERY_V

    async def run(request: Request) -> Response:
        start = time.monotonic()
        response: Response = await handler(request)
        scope = request.scope
        if every and isinstance(response, StreamingResponse):
            response.body_iterator = _logged_stream(response.body_iterator, scope, response.status_code, start)
            return response
        if every and type(response).__call__ is not Response.__call__:
            return _LoggedApp(response, start)  # a mounted app: its status is known once it answers
        latency = time.monotonic() - start
        if every or (latency > SLOW_SECONDS and not long_running(scope)):
            log_request(scope, response.status_code, latency)
        return response
    return run


async def _logged_stream(body: AsyncIterable[Any], scope: Mapping[str, Any], status: int,
                         start: float) -> AsyncIterator[Any]:
    try:
        async for chunk in body:
            yield chunk
    finally:
        log_request(scope, status, time.monotonic() - start)


class _LoggedApp(Response):
    """Runs an ASGI response (a mounted app) and logs the request once it has answered."""

    def __init__(self, inner: Response, start: float) -> None:
        super().__init__()
        self._inner, self._start = inner, start

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        status = 0

        async def recording_send(message: Any) -> None:
            nonlocal status
            if message.get("type") == "http.response.start":
                status = int(message.get("status", 0))
            await send(message)

        try:
            await self._inner(scope, receive, recording_send)
        finally:
            log_request(scope, status, time.monotonic() - self._start)
