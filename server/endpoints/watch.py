"""Serve a watch as a chunked stream of newline-delimited `{"type", "object"}` events.

Objects are encoded in the version the client asked for, or as one-row
Tables when it asked for a Table (what `kubectl get -w` does). A stream ends
after `timeoutSeconds` or the server's --request-timeout, whichever is
shorter, or at once when the server shuts down; when the client goes away
Starlette cancels the body and the storage watcher is released.
"""
from __future__ import annotations

import math
from typing import AsyncIterator

import orjson
from starlette.responses import Response, StreamingResponse

from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ApiContext
from kapi.registry.listing import ListOptions
from kapi.registry.store import Store
from kapi.registry.table import to_table


async def serve_watch(store: Store, version: str, namespace: str, opts: ListOptions, output: neg.Output,
                      include_object: str, ctx: ApiContext) -> Response:
    stream = store.watch(namespace, version, opts)
    await stream.open()
    ctx.watches.add(stream)
    lifetime = min(opts.timeout_seconds if opts.timeout_seconds is not None else math.inf, ctx.request_timeout)
    if ctx.closing:
        lifetime = 0.0
    vdef = store.definition.version(version)
    as_table = output.format == "table" and vdef is not None
    sent = None if ctx.metrics is None else ctx.metrics.watch_event_counter(  # apiserver_watch_events_total
        store.definition.group, version, store.definition.kind)

    def encode(kind: str, obj: dict) -> bytes:  # type: ignore[type-arg]
        if as_table and kind in ("ADDED", "MODIFIED", "DELETED"):
            obj = to_table(vdef, [obj], include_object=include_object, table_version=output.version)  # type: ignore[arg-type]
        return orjson.dumps({"type": kind, "object": obj}) + b"\n"

    async def body() -> AsyncIterator[bytes]:
        try:
            async for kind, obj in stream.events(lifetime):
                if ctx.faults.paused:  # the storage is "away": nothing reaches the client until it is back
                    await ctx.faults.resumed()
                if sent is not None:
                    sent.inc()
                yield encode(kind, obj)
        finally:
            ctx.watches.discard(stream)  # ended: no longer counted among the open watches (ExpireWatches)
            stream.close()

    return StreamingResponse(body(), media_type="application/json")
