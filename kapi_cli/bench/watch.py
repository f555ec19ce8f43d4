"""Watch figures: create-to-event latency with one watcher, and fan-out to many watchers.

Why these two: an informer-driven controller waits on the first (how soon a
write reaches it), and a server with many controllers pays the second (every
event encoded and written to every stream). Both run in this process on one
event loop: the writer is sequential, and the readers only parse chunk sizes.
"""
from __future__ import annotations

import asyncio
import time

import orjson

from kapi_cli.bench.client import Conn, Result, Target, fetch_once
from kapi_cli.bench.plans import foo_body


class WatchConn:
    """A watch stream read chunk by chunk (kapi writes one event per chunk)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, target: Target, path: str) -> "WatchConn":
        reader, writer = await asyncio.open_connection(target.host, target.port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n".encode())
        status = await reader.readline()
        if not status.startswith(b"HTTP/1.1 200"):
            raise RuntimeError(f"watch {path} answered {status!r}")
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    async def event(self) -> bytes:
        size = int((await self.reader.readline()).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    def close(self) -> None:
        self.writer.close()


async def current_revision(target: Target, path: str) -> str:
    """The collection's resourceVersion now, so a watch starts after everything already there."""
    status, body = await fetch_once(target, "GET", f"{path}?limit=1")
    if status != 200:
        raise RuntimeError(f"GET {path}?limit=1 answered {status}")
    return str(orjson.loads(body)["metadata"]["resourceVersion"])


async def one_watcher(target: Target, path: str, n: int) -> Result:
    """n sequential creates, each timed until its ADDED event arrives on the one open watch."""
    rv = await current_revision(target, path)
    watch = await WatchConn.open(target, f"{path}?watch=true&resourceVersion={rv}")
    writer = await Conn.open(target)
    latencies, errors = [], 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        errors += await writer.request("POST", path, foo_body(f"w{i}")) >= 400
        await watch.event()
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - t0
    watch.close()
    writer.close()
    return Result("watch: create → event (1 watcher)", n, seconds, latencies,
                  (time.process_time() - cpu0) / seconds, errors)


async def fan_out(target: Target, path: str, n: int, watchers: int) -> Result:
    """n sequential creates while `watchers` streams read every event: events delivered per second."""
    rv = await current_revision(target, path)
    streams = [await WatchConn.open(target, f"{path}?watch=true&resourceVersion={rv}") for _ in range(watchers)]
    writer = await Conn.open(target)
    errors = 0

    async def drain(stream: WatchConn) -> None:
        for _ in range(n):
            await stream.event()

    cpu0, t0 = time.process_time(), time.perf_counter()
    readers = [asyncio.create_task(drain(s)) for s in streams]
    for i in range(n):
        errors += await writer.request("POST", path, foo_body(f"f{i}")) >= 400
    await asyncio.gather(*readers)
    seconds = time.perf_counter() - t0
    for s in streams:
        s.close()
    writer.close()
    return Result(f"watch: events delivered to {watchers} watchers", n * watchers, seconds, [],
                  (time.process_time() - cpu0) / seconds, errors)
