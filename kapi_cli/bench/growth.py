"""Figures that need a server of their own: memory per object, and the scaling curve.

Why a fresh server for each: RSS after the rate runs would count every
request's garbage (freed memory Python keeps) as memory per object, and a
list or create measured on a server already full of other namespaces'
objects would not be a point on a clean curve. So the memory server does
nothing but create objects between RSS readings, and the scaling server
does nothing but create and list.
"""
from __future__ import annotations

from kapi_cli.bench import plans as p
from kapi_cli.bench.figures import Memory, MemoryPoint, ScalePoint
from kapi_cli.bench.servers import rss_bytes
from kapi_cli.bench.sizes import human
from kapi_cli.bench.suites import Bench, create_namespaces, fill


def memory(bench: Bench) -> None:
    """RSS with no objects, then after creating up to each of `sizes.memory` Foos (about 1 KiB each)."""
    if bench.pid is None:
        return
    create_namespaces(bench, ["-mem"])  # one request first, so its warm-up is not counted per object
    empty = rss_bytes(bench.pid)
    if empty is None:
        bench.report.notes.append("memory: no /proc here, RSS not measured")
        return
    figures = Memory(empty)
    path, count = p.foos(bench.namespace("-mem")), 0
    for point in bench.sizes.memory:
        fill(bench, path, count, point)
        count = point
        figures.points.append(MemoryPoint(point, rss_bytes(bench.pid) or 0))
    bench.report.memory = figures


def scale(bench: Bench) -> None:
    """At each point: create up to it (the last `scale_batch` creates timed), then time listing them all."""
    sizes = bench.sizes
    create_namespaces(bench, ["-scale"])
    path, count = p.foos(bench.namespace("-scale")), 0
    for point in sizes.scale:
        batch = min(sizes.scale_batch, point - count)
        if point - batch > count:
            fill(bench, path, count, point - batch)
        created = fill(bench, path, point - batch, point)
        created.name = f"create, 16 clients, the last {batch} before {human(point)}"
        count = point
        repeats = sizes.list_repeats if point < 100_000 else 5
        listed = bench.load(None, f"list {point} objects", 1, repeats, p.same_plan("GET", path))
        bench.report.scale.append(ScalePoint(point, listed, created))
