"""The filter chain every API request passes through, built in one visible function.

Order, outermost first (as kube-apiserver's DefaultBuildHandlerChain):
Status errors -> request info -> (authentication, authorization: a later
issue slots them in here) -> timeout -> router.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

import orjson
from starlette.requests import Request
from starlette.responses import Response

from server.api import errors
from server.api.duration import parse_duration
from server.api.requestinfo import RequestInfo, parse_request_info
from server.endpoints.context import ApiContext

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("kapi.server")
INFO_KEY = "kapi.request_info"


def status_response(exc: errors.StatusError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return Response(orjson.dumps(exc.to_status()), status_code=exc.code, media_type="application/json",
                    headers=headers)


def request_info(request: Request) -> RequestInfo:
    return request.scope[INFO_KEY]  # type: ignore[no-any-return]


def with_status_errors(handler: Handler) -> Handler:
    """Translate every error into a Status once; a bug becomes a bare 500, never a traceback."""
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.StatusError as exc:
            return status_response(exc)
        except Exception:  # noqa: BLE001 - the one place that must catch everything
            log.exception("internal error serving %s %s", request.method, request.url.path)
            return status_response(errors.InternalError("an error on the server has prevented the request from succeeding"))
    return run


def with_request_info(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        watch = request.query_params.get("watch", "").lower() in ("true", "1")
        request.scope[INFO_KEY] = parse_request_info(request.method, request.url.path, watch)
        return await handler(request)
    return run


def with_timeout(handler: Handler, default_seconds: float) -> Handler:
    """Bound every short request by `?timeout=` or the server's --request-timeout, whichever is shorter."""
    async def run(request: Request) -> Response:
        if request_info(request).verb == "watch":
            return await handler(request)
        seconds = default_seconds
        raw = request.query_params.get("timeout")
        if raw:
            try:
                seconds = min(seconds, max(parse_duration(raw), 0.001))
            except ValueError:
                raise errors.BadRequest(f'invalid value for timeout: "{raw}"') from None
        try:
            return await asyncio.wait_for(handler(request), timeout=seconds)
        except asyncio.TimeoutError:
            raise errors.Timeout("Timeout: request did not complete within the allotted timeout",
                                 retry_after=1) from None
    return run


def build_handler_chain(router: Handler, ctx: ApiContext) -> Handler:
    handler = with_timeout(router, ctx.request_timeout)
    handler = with_request_info(handler)
    return with_status_errors(handler)
