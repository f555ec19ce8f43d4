"""The load client: a minimal keep-alive HTTP/1.1 client on asyncio streams, and what one load measured.

Why not httpx: it tops out near 600 requests/s on this machine, far below
what kapi serves, so every figure would be the client's. This client writes
one request and reads one `Content-Length` response per round trip on a
kept-alive connection, which costs a few tens of microseconds of client CPU.
It runs on uvloop when uvloop is installed (kapi itself depends on it), for
the same reason. Its CPU share is measured around every load, so a figure
where the client, not the server, is the limit shows as such.

What to send is a *plan* (`kapi_cli.bench.plans`): a picklable function of
the request index, so a share of a load can run in another process
(`kapi_cli.bench.procs`).
"""
from __future__ import annotations

import asyncio
import os
import re
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Iterable, TypeVar
from urllib.parse import quote

T = TypeVar("T")

JSON = "application/json"

#: (method, path, body, content type) of one request.
Request = tuple[str, str, bytes, str]
#: Request i of a load (see `kapi_cli.bench.plans`).
Plan = Callable[[int], Request]


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop: uvloop when available (a cheaper client), asyncio otherwise."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvicorn[standard] brings it
        return asyncio.run(coro)
    return uvloop.run(coro)


def loop_name() -> str:
    try:
        import uvloop  # noqa: F401
    except ImportError:  # pragma: no cover
        return "asyncio"
    return "uvloop"


# -- the connection --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Where the load goes: host, port, and the TLS files for HTTPS (paths, so it pickles)."""

    host: str
    port: int
    cafile: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    token: str | None = None  # sent as `Authorization: Bearer` when set

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.cafile is None:
            return None
        context = ssl.create_default_context(cafile=self.cafile)
        if self.certfile and self.keyfile:
            context.load_cert_chain(self.certfile, self.keyfile)
        return context


class Conn:
    """One keep-alive HTTP/1.1 connection that sends a request and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str | None = None) -> None:
        self.reader, self.writer = reader, writer
        self._auth = f"Authorization: Bearer {token}\r\n" if token else ""

    @classmethod
    async def open(cls, target: Target, tls: ssl.SSLContext | None = None) -> "Conn":
        return cls(*await asyncio.open_connection(target.host, target.port, ssl=tls), target.token)

    def _send(self, method: str, path: str, body: bytes, ctype: str) -> None:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n{self._auth}"
        if body:
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)

    async def _read(self) -> tuple[int, bytes]:
        status_line = await self.reader.readline()
        if not status_line:
            raise ConnectionError("the server closed the connection")
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        return int(status_line.split()[1]), await self.reader.readexactly(length)

    async def request(self, method: str, path: str, body: bytes = b"", ctype: str = JSON) -> int:
        """One round trip; the status code (the body is read and dropped)."""
        self._send(method, path, body, ctype)
        return (await self._read())[0]

    async def fetch(self, method: str, path: str, body: bytes = b"", ctype: str = JSON) -> tuple[int, bytes]:
        """One round trip; the status code and the body."""
        self._send(method, path, body, ctype)
        return await self._read()

    def close(self) -> None:
        self.writer.close()


async def fetch_once(target: Target, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
    """A single request on its own connection (set-up steps, not measured)."""
    conn = await Conn.open(target, target.ssl_context())
    try:
        return await conn.fetch(method, path, body)
    finally:
        conn.close()


_CONTINUE = re.compile(rb'"continue"\s*:\s*"([^"]*)"')


def continue_token(body: bytes) -> str:
    """The list's `metadata.continue`, looked for before `items` so no object's field is mistaken for it."""
    head = body[: body.find(b'"items"')] if b'"items"' in body else body
    found = _CONTINUE.search(head)
    return quote(found.group(1).decode(), safe="") if found else ""


# -- one load ---------------------------------------------------------------------------------------

@dataclass
class Result:
    """What one load measured: count, wall time, per-request latencies, CPU shares, errors."""

    name: str
    ops: int
    seconds: float
    latencies: list[float]
    client_cpu: float
    errors: int = 0
    server_cpu: float | None = None
    etcd_cpu: float | None = None
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.seconds if self.seconds > 0 else 0.0

    def pct(self, p: float) -> float | None:
        """The p-quantile latency in milliseconds (None when the load has no per-request latencies)."""
        if not self.latencies:
            return None
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p * len(s)))] * 1000


@dataclass
class Share:
    """One client process's part of a load: raw latencies and its own clock and CPU readings."""

    latencies: list[float]
    started: float
    finished: float
    cpu_seconds: float
    errors: int


async def run_share(target: Target, connections: int, indices: Iterable[int], plan: Plan,
                    ready: Callable[[], Awaitable[None]] | None = None) -> Share:
    """Run `indices` through `plan` on `connections` kept-alive connections, as fast as they answer.

    The connections are opened before the clock starts; `ready` (the multi-process
    start barrier) is awaited after that and before it.
    """
    tls = target.ssl_context()
    conns = [await Conn.open(target, tls) for _ in range(connections)]
    if ready is not None:
        await ready()
    latencies: list[float] = []
    counter = iter(indices)
    errors = 0
    clock = time.perf_counter

    async def worker(conn: Conn) -> None:
        nonlocal errors
        for i in counter:
            method, path, body, ctype = plan(i)
            t = clock()
            status = await conn.request(method, path, body, ctype)
            latencies.append(clock() - t)
            errors += status >= 400

    cpu0, t0 = time.process_time(), clock()
    try:
        await asyncio.gather(*(worker(c) for c in conns))
    finally:
        for c in conns:
            c.close()
    return Share(latencies, t0, clock(), time.process_time() - cpu0, errors)


def merge_shares(name: str, total: int, shares: list[Share]) -> Result:
    """One Result from the shares of several processes: wall time from the first start to the last end."""
    seconds = max(s.finished for s in shares) - min(s.started for s in shares)
    latencies = [x for s in shares for x in s.latencies]
    cpu = sum(s.cpu_seconds for s in shares)
    return Result(name, total, seconds, latencies, cpu / seconds if seconds > 0 else 0.0,
                  sum(s.errors for s in shares))


async def run_load(name: str, target: Target, concurrency: int, total: int, plan: Plan) -> Result:
    """The whole load in this process."""
    share = await run_share(target, concurrency, range(total), plan)
    return merge_shares(name, total, [share])


def cpu_count() -> int:
    return os.cpu_count() or 1
