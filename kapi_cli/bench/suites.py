"""The measurements made against one running kapi, each a small function of a `Bench`.

Why a `Bench` object: every load is measured the same way (client CPU from
the loader, server and etcd CPU from /proc around it) and lands in the same
report under a stable key, so the functions here only say what to send.
Objects go to dedicated namespaces: `bench` for the rate runs, and one per
list size (`bench-1k`, `bench-10k`), so each list lists exactly its count.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import orjson

from kapi_cli.bench import client as c
from kapi_cli.bench import plans as p
from kapi_cli.bench.client import Plan, Result, Target, fetch_once, run
from kapi_cli.bench.plans import foos
from kapi_cli.bench.figures import BackendReport
from kapi_cli.bench.procs import Loader
from kapi_cli.bench.servers import CpuMeter
from kapi_cli.bench.sizes import Sizes, human


@dataclass
class Bench:
    """One kapi under test, how to load it, and where the figures go."""

    target: Target
    loader: Loader
    report: BackendReport
    sizes: Sizes
    pid: int | None = None
    etcd_pid: int | None = None
    suffix: str = ""  # appended to namespace names when the server is not a fresh one

    def namespace(self, role: str) -> str:
        return f"bench{role}{self.suffix}"

    @property
    def ops_path(self) -> str:
        return foos(self.namespace(""))

    def list_path(self, count: int) -> str:
        return foos(self.namespace(f"-{human(count)}"))

    def load(self, key: str | None, name: str, concurrency: int, total: int, plan: Plan,
             target: Target | None = None, section: str = "kapi", pid: int | None = None) -> Result:
        """Run one load, measuring the server's (and etcd's) CPU around it; record it under `key`."""
        result = self.measured(lambda: self.loader.load(name, target or self.target, concurrency, total, plan), pid)
        if key is not None:
            self.report.add(key, result, section)
        return result

    def measured(self, body: Callable[[], Result], pid: int | None = None) -> Result:
        """Run `body`, reading the CPU of kapi (or of `pid`, another server) and of etcd (kapi's only) around it."""
        etcd_pid = None if pid else self.etcd_pid
        with CpuMeter(pid or self.pid).measure() as server, CpuMeter(etcd_pid).measure() as etcd:
            result = body()
        result.server_cpu, result.etcd_cpu = server.share, etcd.share
        return result


def create_namespaces(bench: Bench, roles: list[str]) -> None:
    """The namespaces, and the bench's own Foo CRD the loads use."""
    from kapi_cli.bench import schema

    for role in roles:
        status, body = run(fetch_once(bench.target, "POST", "/api/v1/namespaces",
                                      p.namespace_body(bench.namespace(role))))
        if status not in (201, 409):
            raise RuntimeError(f"creating namespace {bench.namespace(role)} answered {status}: {body[:200]!r}")
    schema.install_foo_crd(bench.target, bench.namespace(""))


def fill(bench: Bench, path: str, start: int, stop: int, prefix: str = "o") -> Result:
    """Create objects `prefix<start>` … `prefix<stop - 1>` at concurrency 16 (set-up, not a figure)."""
    return bench.load(None, f"fill {path}", 16, stop - start, p.create_plan(path, prefix, start))


def creates(bench: Bench) -> None:
    """Sequential, 16 and 64 concurrent clients: objects s<i>, c<i>, d<i> in the `bench` namespace."""
    n, path = bench.sizes.n, bench.ops_path
    bench.load("create_seq", "create, sequential", 1, n, p.create_plan(path, "s"))
    bench.load("create_c16", "create, 16 clients", 16, n, p.create_plan(path, "c"))
    bench.load("create_c64", "create, 64 clients", 64, n, p.create_plan(path, "d"))


def gets(bench: Bench) -> None:
    n = bench.sizes.n
    bench.load("get_c16", "get, 16 clients", 16, 4 * n, p.get_plan(bench.ops_path, "s", n))


def tls_gets(bench: Bench, https: Target, https_cert: Target) -> None:
    """What TLS costs a GET: the same load on HTTPS, and on HTTPS with a client certificate."""
    n = bench.sizes.n
    plan = p.get_plan(bench.ops_path, "s", n)
    bench.load("get_c16_https", "get, 16 clients (HTTPS)", 16, 4 * n, plan, https, "extra")
    bench.load("get_c16_https_cert", "get, 16 clients (HTTPS + client cert)", 16, 4 * n, plan, https_cert, "extra")


def fill_lists(bench: Bench) -> None:
    for count in (bench.sizes.list_small, bench.sizes.list_large):
        fill(bench, bench.list_path(count), 0, count)


def lists(bench: Bench) -> None:
    """p50 of listing every object of the small and the large namespace."""
    sizes = bench.sizes
    for key, count in (("list_small", sizes.list_small), ("list_large", sizes.list_large)):
        repeats = sizes.list_repeats if count < 10_000 else max(5, sizes.list_repeats // 2)
        bench.load(key, f"list {count} objects", 1, repeats, p.same_plan("GET", bench.list_path(count)))


def paged_list(bench: Bench) -> None:
    """Whole traversals of the large namespace with limit=page: p50 per page, median traversal time."""
    sizes = bench.sizes
    path = bench.list_path(sizes.list_large)
    result = bench.measured(lambda: run(_traverse(bench.target, path, sizes.page, sizes.traversals)))
    result.name = f"list {sizes.list_large} objects, pages of {sizes.page} (per page)"
    bench.report.add("list_paged", result)


async def _traverse(target: Target, path: str, page: int, traversals: int) -> Result:
    conn = await c.Conn.open(target)
    latencies, whole, errors = [], [], 0
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        for _ in range(traversals):
            start, token = time.perf_counter(), ""
            while True:
                t = time.perf_counter()
                status, body = await conn.fetch("GET", f"{path}?limit={page}" + (f"&continue={token}" if token else ""))
                latencies.append(time.perf_counter() - t)
                errors += status >= 400
                token = c.continue_token(body) if status == 200 else ""
                if not token:
                    break
            whole.append(time.perf_counter() - start)
    finally:
        conn.close()
    seconds = time.perf_counter() - t0
    result = Result("paged list", len(latencies), seconds, latencies, (time.process_time() - cpu0) / seconds, errors)
    result.extra = {"traversal_ms": sorted(whole)[len(whole) // 2] * 1000, "pages": len(latencies) / traversals}
    return result


def patch_and_update(bench: Bench) -> None:
    """Merge patches of c<i>, then PUTs of d<i> carrying the resourceVersion read just before."""
    n, path = bench.sizes.n, bench.ops_path
    bench.load("patch_c16", "merge patch, 16 clients", 16, n,
               p.patch_plan(path, "c", b'{"spec":{"msg":"patched"}}'))
    bench.load("apply_c16", "server-side apply, 16 clients", 16, n, p.apply_plan(path, "c", "applied"))
    bench.report.notes.append(f"managedFields of a Foo after create, merge patch and apply: "
                              f"{_managed_fields_bytes(bench.target, f'{path}/c0')} bytes of JSON")
    names, bodies = _read_for_update(bench.target, path, "d", n)
    bench.load("update_c16", "update (PUT with resourceVersion), 16 clients", 16, len(names),
               p.put_plan(path, names, bodies))


def _managed_fields_bytes(target: Target, path: str) -> int:
    status, body = run(fetch_once(target, "GET", path))
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    return len(orjson.dumps(orjson.loads(body)["metadata"].get("managedFields", [])))


def _read_for_update(target: Target, path: str, prefix: str, n: int) -> tuple[tuple[str, ...], tuple[bytes, ...]]:
    """The objects prefix0…prefix<n-1> as listed now, each with a changed spec and its resourceVersion."""
    status, body = run(fetch_once(target, "GET", path))
    if status != 200:
        raise RuntimeError(f"GET {path} answered {status}")
    wanted = {f"{prefix}{i}" for i in range(n)}
    items = [item for item in orjson.loads(body)["items"] if item["metadata"]["name"] in wanted]
    for item in items:
        item["spec"]["msg"] = "updated"
    return tuple(i["metadata"]["name"] for i in items), tuple(orjson.dumps(i) for i in items)


def watch(bench: Bench) -> None:
    from kapi_cli.bench.watch import fan_out, one_watcher

    sizes, path = bench.sizes, bench.ops_path
    bench.report.add("watch_latency", bench.measured(lambda: run(one_watcher(bench.target, path, sizes.watch_n))))
    bench.report.add("watch_fanout", bench.measured(
        lambda: run(fan_out(bench.target, path, sizes.watch_n, sizes.watchers))))


def schema_cost(bench: Bench) -> None:
    from kapi_cli.bench import schema

    schema.install_crds(bench.target, bench.namespace(""))
    for key, (plural, kind, name) in schema.KINDS.items():
        plan = p.custom_create_plan(schema.collection(plural, bench.namespace("")), schema.body_maker(kind), "o")
        bench.load(key, name, 16, bench.sizes.n, plan, section="extra")


def hub_conversion(bench: Bench) -> None:
    """Creates and gets of the typed Foo in v1: every request converts through the Python v2 hub."""
    n, path = bench.sizes.n, p.foos(bench.namespace(""), p.HUB_GROUP)
    bench.load("create_hub_c16", "create, 16 clients (typed Foo v1 via v2 hub)", 16, n,
               p.create_plan(path, "h"), section="extra")
    bench.load("get_hub_c16", "get, 16 clients (typed Foo v1 via v2 hub)", 16, 4 * n,
               p.get_plan(path, "h", n), section="extra")


def builtin_kinds(bench: Bench) -> None:
    """Creates and gets of Pods and Deployments: kube's defaults and checks in code on every write."""
    from kapi_cli.bench import builtin_kinds as kinds

    n, ns = bench.sizes.n, bench.namespace("")
    for key, path, make in (("pod", kinds.pods(ns), kinds.pod_body),
                            ("deployment", kinds.deployments(ns), kinds.deployment_body)):
        bench.load(f"create_{key}_c16", f"create, 16 clients ({key})", 16, n,
                   p.custom_create_plan(path, make, key[0]), section="extra")
        bench.load(f"get_{key}_c16", f"get, 16 clients ({key})", 16, 4 * n, p.get_plan(path, key[0], n),
                   section="extra")


def authorization(bench: Bench) -> None:
    """GETs as an RBAC-bound user with 1,000 bindings stored, and as a system:masters token user."""
    from dataclasses import replace

    from kapi_cli.bench import rbac

    rbac.install(bench.target, bench.namespace(""))
    n, plan = bench.sizes.n, p.get_plan(bench.ops_path, "s", bench.sizes.n)
    bench.load("get_masters_token_c16", "get, 16 clients (system:masters token)", 16, 4 * n, plan,
               replace(bench.target, token=rbac.ADMIN_TOKEN), "extra")
    bench.load("get_rbac_c16", f"get, 16 clients (RBAC user, {rbac.BINDINGS:,} bindings)", 16, 4 * n, plan,
               replace(bench.target, token=rbac.VIEWER_TOKEN), "extra")


def delete_collection(bench: Bench) -> None:
    """kube's namespace clean-up path: one DELETE of a whole collection, timed from request to answer."""
    count, path = bench.sizes.delete_n, foos(bench.namespace("-del"))
    fill(bench, path, 0, count, "x")

    async def once() -> Result:
        conn = await c.Conn.open(bench.target, bench.target.ssl_context())
        cpu0, t0 = time.process_time(), time.perf_counter()
        try:
            status, body = await conn.fetch("DELETE", path)
        finally:
            conn.close()
        seconds = time.perf_counter() - t0
        if status != 200 or body.count(b'"name":"x') != count:
            raise RuntimeError(f"DELETE {path} answered {status}, not the {count} objects: {body[:200]!r}")
        return Result(f"delete-collection of {count} objects", count, seconds, [seconds], time.process_time() - cpu0)

    bench.report.add("delete_collection", bench.measured(lambda: run(once())))


def foo_bytes(bench: Bench) -> bytes:
    """What kapi answers to a GET of one Foo: the bare ceiling serves exactly these bytes."""
    status, body = run(fetch_once(bench.target, "GET", f"{bench.ops_path}/s0"))
    if status != 200:
        raise RuntimeError(f"GET {bench.ops_path}/s0 answered {status}")
    return body
