"""The logical-clusters row: 100 isolated clusters in one fresh kapi, each created, given a CRD and 10
objects, used by a client (a list and a get), and deleted; the total time and the server's RSS with all
100 alive. envtest would start 100 control planes (a few seconds each) for the same isolation.

One keep-alive connection does everything in order, as a test suite would; the
figures are the whole run and the p50/p99 of each step.
"""
from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from kapi_cli.bench.client import Conn, Target, run
from kapi_cli.bench.servers import KapiServer, cpu_seconds, rss_bytes

CLUSTERS = 100
OBJECTS = 10
GROUP, PLURAL = "bench.kapi.dev", "widgets"
CRD = json.dumps({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"{PLURAL}.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"kind": "Widget", "listKind": "WidgetList", "plural": PLURAL, "singular": "widget"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "size": {"type": "integer"}}}}}}}]}}).encode()


def _widget(i: int) -> bytes:
    return json.dumps({"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": f"w{i}"},
                       "spec": {"size": i}}).encode()


async def _expect(conn: Conn, method: str, path: str, body: bytes = b"", want: int = 200) -> bytes:
    status, answer = await conn.fetch(method, path, body)
    if status != want:
        raise RuntimeError(f"{method} {path} answered {status} (wanted {want}): {answer[:300]!r}")
    return answer


async def _use(conn: Conn, name: str) -> dict[str, float]:
    """One cluster's life up to its deletion; the milliseconds of each step."""
    base = f"/clusters/{name}"
    widgets = f"{base}/apis/{GROUP}/v1/namespaces/default/{PLURAL}"
    steps: dict[str, float] = {}
    t = time.perf_counter()
    await _expect(conn, "POST", "/kapi/clusters", json.dumps({"name": name}).encode(), 201)
    steps["create"], t = (time.perf_counter() - t) * 1000, time.perf_counter()
    await _expect(conn, "POST", f"{base}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", CRD, 201)
    while (await conn.fetch("GET", f"{base}/apis/{GROUP}/v1"))[0] != 200:  # until the CRD is served
        await asyncio.sleep(0.001)
    steps["crd"], t = (time.perf_counter() - t) * 1000, time.perf_counter()
    for i in range(OBJECTS):
        await _expect(conn, "POST", widgets, _widget(i), 201)
    listed = json.loads(await _expect(conn, "GET", widgets))
    if len(listed["items"]) != OBJECTS:
        raise RuntimeError(f"cluster {name} lists {len(listed['items'])} widgets, not {OBJECTS}")
    await _expect(conn, "GET", f"{widgets}/w0")
    steps["objects"] = (time.perf_counter() - t) * 1000
    return steps


async def _run(target: Target, pid: int | None, count: int) -> dict[str, Any]:
    conn = await Conn.open(target)
    try:
        names = [f"bench-{i}" for i in range(count)]
        rss_before, cpu_before = rss_bytes(pid) if pid else None, cpu_seconds(pid) if pid else None
        started = time.perf_counter()
        per_cluster = [await _use(conn, name) for name in names]
        rss_all = rss_bytes(pid) if pid else None
        deletes = []
        for name in names:
            t = time.perf_counter()
            await _expect(conn, "DELETE", f"/kapi/clusters/{name}")
            deletes.append((time.perf_counter() - t) * 1000)
        total = time.perf_counter() - started
    finally:
        conn.close()
    cpu_after = cpu_seconds(pid) if pid else None

    def p50_p99(values: list[float]) -> dict[str, float]:
        ordered = sorted(values)
        return {"p50_ms": statistics.median(ordered), "p99_ms": ordered[min(len(ordered) - 1, int(len(ordered) * .99))]}

    return {
        "clusters": count, "objects_each": OBJECTS, "total_s": total,
        "server_cpu_s": None if cpu_before is None or cpu_after is None else cpu_after - cpu_before,
        "rss_before_bytes": rss_before, "rss_all_alive_bytes": rss_all,
        "create": p50_p99([s["create"] for s in per_cluster]), "crd_until_served": p50_p99([s["crd"] for s in per_cluster]),
        "objects_and_reads": p50_p99([s["objects"] for s in per_cluster]), "delete": p50_p99(deletes),
    }


def many_clusters(server: KapiServer, target: Target, count: int = CLUSTERS) -> dict[str, Any]:
    """Start `server` (fresh) and run the clusters row through `target` (its admin user)."""
    server.start()
    return run(_run(target, server.pid, count))
