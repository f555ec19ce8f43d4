"""Watches over WebSocket, as kube-apiserver serves them to clients that prefer it (fabric8, older client-go).

A `GET ...?watch=true` that asks to upgrade goes through the same filter chain and handler as a plain one;
the events the handler would stream are sent one per text message instead (kube frames JSON as text), and
the stream ends when the client closes the socket. A request the handler refuses (401, 403, 404, a bad
option) is refused before the upgrade with the same Status, when the server can send an HTTP answer to a
WebSocket request, and otherwise closes the socket with the policy-violation code.
"""
from __future__ import annotations

import asyncio
import contextlib
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

Handler = Callable[[Request], Awaitable[Response]]
_POLICY_VIOLATION = 1008


async def serve_websocket(scope: dict[str, Any], receive: Any, send: Any, handler: Handler) -> None:
    """Answer one WebSocket request by the HTTP handler's verdict."""
    connect = await receive()
    if connect.get("type") != "websocket.connect":
        return
    response = await handler(Request(_as_http(scope), _no_body))
    if response.status_code != 200:
        await _refuse(scope, send, response)
        return
    protocols = scope.get("subprotocols") or []
    await send({"type": "websocket.accept", "subprotocol": protocols[0] if protocols else None})
    if isinstance(response, StreamingResponse):
        await _relay(response, receive, send)
    else:
        await send({"type": "websocket.send", "text": bytes(response.body).decode()})
    with contextlib.suppress(Exception):  # the client may already be gone
        await send({"type": "websocket.close", "code": 1000})


def _as_http(scope: dict[str, Any]) -> dict[str, Any]:
    """The request as the HTTP handler chain reads it: a GET with no body."""
    return {**scope, "type": "http", "method": "GET", "http_version": scope.get("http_version", "1.1")}


async def _no_body() -> dict[str, Any]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def _relay(response: StreamingResponse, receive: Any, send: Any) -> None:
    """Send each newline-delimited event as a text message until the stream ends or the client leaves."""

    async def events() -> None:
        pending = b""
        async for chunk in response.body_iterator:
            pending += chunk if isinstance(chunk, bytes) else str(chunk).encode()
            *lines, pending = pending.split(b"\n")
            for line in lines:
                if line:
                    await send({"type": "websocket.send", "text": line.decode()})

    async def client_gone() -> None:
        while (await receive()).get("type") != "websocket.disconnect":
            pass  # kube ignores what a watching client sends

    tasks = [asyncio.ensure_future(events()), asyncio.ensure_future(client_gone())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


async def _refuse(scope: dict[str, Any], send: Any, response: Response) -> None:
    if "websocket.http.response" in (scope.get("extensions") or {}):
        headers = [(k, v) for k, v in response.raw_headers if k.lower() != b"content-length"]
        body = bytes(response.body) if not isinstance(response, StreamingResponse) else b""
        await send({"type": "websocket.http.response.start", "status": response.status_code,
                    "headers": headers + [(b"content-length", str(len(body)).encode())]})
        await send({"type": "websocket.http.response.body", "body": body})
        return
    await send({"type": "websocket.close", "code": _POLICY_VIOLATION})
