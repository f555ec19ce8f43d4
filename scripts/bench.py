#!/usr/bin/env python3
"""Measure a real `kapi start` process: start-up, create/get/list rates, and what TLS costs.

The load client is a minimal keep-alive HTTP/1.1 client on asyncio streams
(httpx tops out near 600 req/s here, far below the server), run in this
process; its CPU share is reported next to each figure so a client-bound
figure is visible as such.

    python scripts/bench.py                 # memory and file backends
    python scripts/bench.py --backend memory --json
    python scripts/bench.py --backend etcd  # starts its own etcd; adds raw etcd put/get/range
                                            # rates through kapi's own etcd client, and ratios
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

FOOS = "/apis/hello.zeng.dev/v1/namespaces/default/foos"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    backend: str
    root: Path
    extra_args: list[str] = field(default_factory=list)
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> float:
        """Start the process; return seconds until /readyz answered 200."""
        cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--backend", self.backend,
               "--file-rootpath", str(self.root), "--insecure-port", str(self.http_port),
               "--secure-port", str(self.https_port), "--authn-allow-localhost=true",
               "--name", f"bench-{os.getpid()}-{self.http_port}", "--log-level", "warning", *self.extra_args]
        env = {**os.environ, "KAPI_HOME": str(self.root / "home")}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError("kapi exited during start-up")
            try:
                with socket.create_connection(("127.0.0.1", self.http_port), timeout=0.2) as s:
                    s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if s.recv(64).startswith(b"HTTP/1.1 200"):
                        return time.perf_counter() - t0
            except OSError:
                pass
            time.sleep(0.005)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=15)

    def rss_bytes(self) -> int:
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0


class Conn:
    """One keep-alive HTTP/1.1 connection that sends a request and reads one response."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, tls: ssl.SSLContext | None) -> "Conn":
        return cls(*await asyncio.open_connection("127.0.0.1", port, ssl=tls))

    async def request(self, method: str, path: str, body: bytes = b"", ctype: str = "application/json") -> int:
        head = f"{method} {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n"
        if body:
            head += f"Content-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        self.writer.write(head.encode() + b"\r\n" + body)
        status_line = await self.reader.readline()
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return int(status_line.split()[1])

    def close(self) -> None:
        self.writer.close()


class WatchConn:
    """A watch stream read chunk by chunk (each chunk carries one event line)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int, path: str) -> "WatchConn":
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(f"GET {path} HTTP/1.1\r\nHost: bench\r\nAccept: application/json\r\n\r\n".encode())
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        return cls(reader, writer)

    async def event(self) -> bytes:
        size = int((await self.reader.readline()).strip(), 16)
        data = await self.reader.readexactly(size + 2)
        return data[:-2]

    def close(self) -> None:
        self.writer.close()


async def current_revision(port: int) -> str:
    conn = await Conn.open(port, None)
    conn.writer.write(f"GET {FOOS}?limit=1 HTTP/1.1\r\nHost: bench\r\n\r\n".encode())
    await conn.reader.readline()
    length = 0
    while (line := await conn.reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    body = json.loads(await conn.reader.readexactly(length))
    conn.close()
    return str(body["metadata"]["resourceVersion"])


async def bench_watch(port: int, n: int, watchers: int) -> list["Result"]:
    """Create-to-event latency with one watcher, then events/s delivered to `watchers` watchers."""
    rv = await current_revision(port)
    watch = await WatchConn.open(port, f"{FOOS}?watch=true&resourceVersion={rv}")
    writer = await Conn.open(port, None)
    latencies = []
    cpu0, t0 = time.process_time(), time.perf_counter()
    for i in range(n):
        t = time.perf_counter()
        await writer.request("POST", FOOS, foo_body(f"w{i}"))
        await watch.event()
        latencies.append(time.perf_counter() - t)
    one = Result("watch: create → event (1 watcher)", n, time.perf_counter() - t0, latencies,
                 (time.process_time() - cpu0) / (time.perf_counter() - t0))
    watch.close()
    rv = await current_revision(port)
    streams = [await WatchConn.open(port, f"{FOOS}?watch=true&resourceVersion={rv}") for _ in range(watchers)]
    got = [0] * watchers

    async def drain(k: int) -> None:
        while got[k] < n:
            await streams[k].event()
            got[k] += 1

    cpu0, t0 = time.process_time(), time.perf_counter()
    readers = [asyncio.create_task(drain(k)) for k in range(watchers)]
    for i in range(n):
        await writer.request("POST", FOOS, foo_body(f"f{i}"))
    await asyncio.gather(*readers)
    seconds = time.perf_counter() - t0
    fan = Result(f"watch: events delivered to {watchers} watchers", n * watchers, seconds, [seconds / n] * n,
                 (time.process_time() - cpu0) / seconds)
    for w in streams:
        w.close()
    writer.close()
    return [one, fan]


@dataclass
class Result:
    name: str
    ops: int
    seconds: float
    latencies: list[float]
    client_cpu: float
    errors: int = 0

    @property
    def rate(self) -> float:
        return self.ops / self.seconds

    def pct(self, p: float) -> float:
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p * len(s)))] * 1000


async def run_load(name: str, port: int, concurrency: int, total: int, make_request, tls=None) -> Result:
    conns = [await Conn.open(port, tls) for _ in range(concurrency)]
    latencies: list[float] = []
    counter = iter(range(total))
    errors = 0

    async def worker(conn: Conn) -> None:
        nonlocal errors
        for i in counter:
            method, path, body, *ctype = make_request(i)
            t = time.perf_counter()
            status = await conn.request(method, path, body, *ctype)
            latencies.append(time.perf_counter() - t)
            errors += status >= 400

    cpu0, t0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker(c) for c in conns))
    seconds = time.perf_counter() - t0
    cpu = (time.process_time() - cpu0) / seconds
    for c in conns:
        c.close()
    return Result(name, total, seconds, latencies, cpu, errors)


def foo_body(name: str) -> bytes:
    return json.dumps({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                       "metadata": {"name": name}, "spec": {"msg": "x" * 900}}).encode()


async def bench_backend(server: Server, n: int, tls_ctx: ssl.SSLContext, cert_ctx: ssl.SSLContext) -> list[Result]:
    port = server.http_port
    out = [
        await run_load("create, sequential", port, 1, n, lambda i: ("POST", FOOS, foo_body(f"s{i}"))),
        await run_load("create, 16 clients", port, 16, n, lambda i: ("POST", FOOS, foo_body(f"c{i}"))),
        await run_load("get, 16 clients (HTTP)", port, 16, 4 * n, lambda i: ("GET", f"{FOOS}/s{i % n}", b"")),
        await run_load("get, 16 clients (HTTPS)", server.https_port, 16, 4 * n,
                       lambda i: ("GET", f"{FOOS}/s{i % n}", b""), tls_ctx),
        await run_load("get, 16 clients (HTTPS + client cert)", server.https_port, 16, 4 * n,
                       lambda i: ("GET", f"{FOOS}/s{i % n}", b""), cert_ctx),
        await run_load(f"list {2 * n} objects", port, 1, 20, lambda i: ("GET", FOOS, b"")),
        await run_load("merge patch, 16 clients", port, 16, n, lambda i: (
            "PATCH", f"{FOOS}/c{i}", b'{"spec":{"msg":"patched"}}', "application/merge-patch+json")),
    ]
    out += await bench_watch(port, min(n, 500), 50)
    out += await bench_schema_cost(port, n)
    return out


def bench_crd(name: str, schema: dict) -> bytes:
    return json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{name}s.bench.kapi.dev"},
        "spec": {"group": "bench.kapi.dev", "scope": "Namespaced",
                 "names": {"kind": name.capitalize(), "plural": f"{name}s", "singular": name},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]},
    }).encode()


WIDE_SPEC = {f"f{i}": {"type": "string", "maxLength": 64, "pattern": "^[a-z0-9]*$"} if i % 3 == 0 else
             {"type": "integer", "minimum": 0, "maximum": 1000} if i % 3 == 1 else
             {"type": "array", "items": {"type": "string"}, "maxItems": 5} for i in range(30)}


def wide_body(kind: str, name: str) -> bytes:
    spec = {f"f{i}": "abc" if i % 3 == 0 else 7 if i % 3 == 1 else ["a", "b"] for i in range(30)}
    return json.dumps({"apiVersion": "bench.kapi.dev/v1", "kind": kind, "metadata": {"name": name},
                       "spec": spec}).encode()


async def bench_schema_cost(port: int, n: int) -> list["Result"]:
    """Creates/s of the same ~30-field object against a 30-field schema and against no schema."""
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    conn = await Conn.open(port, None)
    await conn.request("POST", crds, bench_crd("typed", {"type": "object", "properties": {
        "spec": {"type": "object", "properties": WIDE_SPEC}}}))
    await conn.request("POST", crds, bench_crd("loose", {"type": "object", "x-kubernetes-preserve-unknown-fields": True}))
    conn.close()
    await asyncio.sleep(0.5)  # the CRD controller installs both APIs
    out = []
    for plural, kind in (("looses", "Loose"), ("typeds", "Typed")):
        path = f"/apis/bench.kapi.dev/v1/namespaces/default/{plural}"
        out.append(await run_load(f"create {kind.lower()} (schema: {'none' if kind == 'Loose' else '30 fields'})",
                                  port, 16, n, lambda i, p=path, k=kind: ("POST", p, wide_body(k, f"o{i}"))))
    return out


async def bench_raw_etcd(endpoints: str, n: int) -> list["Result"]:
    """The ceiling for the etcd backend: kapi's own etcd client doing plain puts, gets and a range."""
    from server.storage.etcd_client import EtcdClient, parse_endpoints

    client = EtcdClient(parse_endpoints([endpoints]))
    value = foo_body("raw")
    prefix = b"/bench-raw/"

    async def load(name: str, concurrency: int, total: int, op) -> Result:
        latencies: list[float] = []
        counter = iter(range(total))

        async def worker() -> None:
            for i in counter:
                t = time.perf_counter()
                await op(i)
                latencies.append(time.perf_counter() - t)

        cpu0, t0 = time.process_time(), time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - t0
        return Result(name, total, seconds, latencies, (time.process_time() - cpu0) / seconds)

    try:
        return [
            await load("raw etcd put, sequential", 1, n, lambda i: client.put(prefix + b"s%d" % i, value)),
            await load("raw etcd put, 16 clients", 16, n, lambda i: client.put(prefix + b"c%d" % i, value)),
            await load("raw etcd get, 16 clients", 16, 4 * n, lambda i: client.range(prefix + b"s%d" % (i % n))),
            await load(f"raw etcd range {2 * n} keys", 1, 20, lambda i: client.range(prefix, b"/bench-raw0")),
        ]
    finally:
        await client.close()


def etcd_ceilings(n: int) -> dict[str, str]:
    """kapi figure -> the raw etcd figure it is a ratio of."""
    return {
        "create, sequential": "raw etcd put, sequential",
        "create, 16 clients": "raw etcd put, 16 clients",
        "get, 16 clients (HTTP)": "raw etcd get, 16 clients",
        f"list {2 * n} objects": f"raw etcd range {2 * n} keys",
    }


def tls_contexts(root: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    plain = ssl.create_default_context(cafile=str(root / "cert" / "ca.crt"))
    with_cert = ssl.create_default_context(cafile=str(root / "cert" / "ca.crt"))
    with_cert.load_cert_chain(str(root / "cert" / "client.crt"), str(root / "cert" / "client.key"))
    return plain, with_cert


def objects_created(n: int) -> int:
    """Objects `bench_backend` leaves in the server: two create runs, the watch runs, the schema runs."""
    return 2 * n + 2 * min(n, 500) + 2 * n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backend", action="append", choices=["memory", "file", "etcd"])
    parser.add_argument("-n", type=int, default=2000, help="objects per create run")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args()
    backends = args.backend or ["memory", "file"]
    report: dict[str, dict[str, object]] = {}
    console = Console(stderr=True)
    for backend in backends:
        root = Path(tempfile.mkdtemp(prefix=f"kapi-bench-{backend}-"))
        etcd = None
        try:
            extra: list[str] = []
            raw: list[Result] = []
            if backend == "etcd":
                from kapi_cli.etcd_local import LocalEtcd

                etcd = LocalEtcd.create(root / "etcd").start()
                extra = ["--etcd-servers", etcd.endpoints]
                console.print("[bold]etcd[/bold]: raw client ceiling…")
                raw = asyncio.run(bench_raw_etcd(etcd.endpoints, args.n))
            startups = []
            for i in range(5):
                s = Server(backend, root / f"start{i}", extra + ["--etcd-prefix", f"/start{i}"] * bool(etcd))
                startups.append(s.start())
                s.stop()
            server = Server(backend, root / "main", extra)
            server.start()
            empty_rss = server.rss_bytes()
            tls_ctx, cert_ctx = tls_contexts(server.root)
            console.print(f"[bold]{backend}[/bold]: measuring…")
            results = asyncio.run(bench_backend(server, args.n, tls_ctx, cert_ctx)) + raw
            full_rss = server.rss_bytes()
            server.stop()
        finally:
            if etcd is not None:
                etcd.stop()
            shutil.rmtree(root, ignore_errors=True)
        by_name = {r.name: r for r in results}
        ceilings = etcd_ceilings(args.n) if raw else {}
        report[backend] = {
            "startup_median_s": statistics.median(startups),
            "rss_empty_bytes": empty_rss,
            "rss_bytes_per_object": (full_rss - empty_rss) / objects_created(args.n),
            "results": [{"name": r.name, "ops_per_s": r.rate, "p50_ms": r.pct(0.5), "p99_ms": r.pct(0.99),
                         "client_cpu": r.client_cpu, "errors": r.errors,
                         "ceiling": ceilings.get(r.name),
                         "ratio": r.rate / by_name[ceilings[r.name]].rate if r.name in ceilings else None}
                        for r in results],
        }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    out = Console()
    for backend, data in report.items():
        table = Table(title=f"kapi on {backend}: start-up {data['startup_median_s'] * 1000:.0f} ms (median of 5), "
                            f"RSS {data['rss_empty_bytes'] / 2**20:.0f} MiB empty, "
                            f"{data['rss_bytes_per_object']:.0f} B/object")
        for col in ("measure", "ops/s", "p50 ms", "p99 ms", "client CPU", "errors", "of ceiling"):
            table.add_column(col, justify="right" if col != "measure" else "left")
        for r in data["results"]:  # type: ignore[union-attr]
            ratio = f"{r['ratio']:.0%} of {r['ceiling']}" if r["ratio"] is not None else ""
            table.add_row(r["name"], f"{r['ops_per_s']:.0f}", f"{r['p50_ms']:.2f}", f"{r['p99_ms']:.2f}",
                          f"{r['client_cpu']:.0%}", str(r["errors"]), ratio)
        out.print(table)


if __name__ == "__main__":
    main()
