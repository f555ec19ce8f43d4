"""The rich tables a run prints: a summary, one rate table per backend, and the scaling curve.

Every rate row shows the client's CPU share next to the server's, so a
figure limited by the load client (client near 100% of a core while the
server is not) reads as such, and every kapi row that has a ceiling shows
its ratio to it.
"""
from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from kapi_cli.bench.figures import CEILING_LABELS
from kapi_cli.bench.sizes import human

NO = "–"


def _ms(value: float | None) -> str:
    return NO if value is None else f"{value:.2f}"


def _pct(value: float | None) -> str:
    return NO if value is None else f"{value:.0%}"


def _note(row: dict[str, Any]) -> str:
    parts = [f"{r['ratio']:.0%} of {CEILING_LABELS.get(r['ceiling'], r['ceiling'])}" for r in row["of_ceiling"]]
    if "traversal_ms" in row:
        parts.append(f"whole traversal {row['traversal_ms']:.0f} ms ({row['pages']:.0f} pages)")
    return "; ".join(parts)


def summary_table(report: dict[str, Any]) -> Table:
    table = Table(title="kapi: start-up and memory")
    for col in ("backend", "start-up (median of 5)", "RSS empty", "bytes/object (1 KiB objects)"):
        table.add_column(col, justify="left" if col == "backend" else "right")
    for backend, data in report["backends"].items():
        startup = data["startup"]
        memory = data["memory"]
        per_object = NO if memory is None else ", ".join(
            f"{p['bytes_per_object']:.0f} at {human(p['objects'])}" for p in memory["points"])
        table.add_row(backend, NO if startup is None else f"{startup['median_s'] * 1000:.0f} ms",
                      NO if memory is None else f"{memory['rss_empty_bytes'] / 2**20:.0f} MiB", per_object)
    return table


def rate_table(backend: str, data: dict[str, Any]) -> Table:
    results: dict[str, dict[str, Any]] = data["results"]
    etcd = any(r["etcd_cpu"] is not None for r in results.values())
    table = Table(title=f"kapi on {backend}")
    columns = ["measure", "ops/s", "p50 ms", "p99 ms", "client CPU", "server CPU"] + (["etcd CPU"] if etcd else [])
    for col in [*columns, "errors", "of ceiling / note"]:
        table.add_column(col, justify="left" if col in ("measure", "of ceiling / note") else "right")
    for section, style in (("kapi", None), ("extra", None), ("ceiling", "dim")):
        rows = [r for r in results.values() if r["section"] == section]
        if not rows:
            continue
        table.add_section()
        for r in rows:
            cells = [r["name"], f"{r['ops_per_s']:.0f}", _ms(r["p50_ms"]), _ms(r["p99_ms"]),
                     _pct(r["client_cpu"]), _pct(r["server_cpu"])] + ([_pct(r["etcd_cpu"])] if etcd else [])
            table.add_row(*cells, str(r["errors"]), _note(r), style=style)
    return table


def scale_table(backend: str, scale: dict[str, Any]) -> Table:
    table = Table(title=f"kapi on {backend}: scaling",
                  caption="list p50 should grow linearly or better (its × at most the objects' ×); "
                          "the create rate should stay flat (× near 1)")
    for col in ("objects", "× objects", "list p50 ms", "× list", "list", "create c16 ops/s", "× create", "create"):
        table.add_column(col, justify="right")
    previous: dict[str, Any] | None = None
    growth = iter(scale["growth"])
    for point in scale["points"]:
        g = next(growth) if previous is not None else None
        table.add_row(
            str(point["objects"]), NO if g is None else f"{g['objects_ratio']:.1f}",
            _ms(point["list_p50_ms"]), NO if g is None else f"{g['list_ratio']:.2f}",
            "" if g is None else ("linear or better" if g["list_ratio"] <= g["objects_ratio"] * 1.1 else "WORSE than linear"),
            f"{point['create_c16_ops_per_s']:.0f}", NO if g is None else f"{g['create_ratio']:.2f}",
            "" if g is None else ("flat" if g["create_ratio"] >= 0.8 else "FALLS"))
        previous = point
    return table


def rollout_table(backend: str, rollouts: list[dict[str, Any]]) -> Table:
    table = Table(title=f"kapi on {backend}: simulated Deployment rollouts (--simulate, create → all pods Ready)")
    for col in ("replicas", "nodes", "seconds", "pods/s", "server CPU s", "RSS after"):
        table.add_column(col, justify="right")
    for r in rollouts:
        table.add_row(str(r["replicas"]), str(r["nodes"]), f"{r['seconds']:.2f}", f"{r['pods_per_s']:.0f}",
                      f"{r['server_cpu_s']:.2f}", NO if r["rss_bytes"] is None else f"{r['rss_bytes'] / 2**20:.0f} MiB")
    return table


def clusters_table(backend: str, data: dict[str, Any]) -> Table:
    table = Table(title=f"kapi on {backend}: {data['clusters']} logical clusters, each created, given a CRD and "
                        f"{data['objects_each']} objects, listed, deleted (one client, in order)")
    for col in ("total s", "create p50 ms", "CRD served p50 ms", "objects + reads p50 ms", "delete p50 ms",
                "server CPU s", "RSS with all alive"):
        table.add_column(col, justify="right")
    rss = data["rss_all_alive_bytes"]
    table.add_row(f"{data['total_s']:.2f}", _ms(data["create"]["p50_ms"]), _ms(data["crd_until_served"]["p50_ms"]),
                  _ms(data["objects_and_reads"]["p50_ms"]), _ms(data["delete"]["p50_ms"]),
                  NO if data["server_cpu_s"] is None else f"{data['server_cpu_s']:.2f}",
                  NO if rss is None else f"{rss / 2**20:.0f} MiB")
    return table


def print_report(report: dict[str, Any], console: Console) -> None:
    client = report["client"]
    machine = report["machine"]
    console.print(f"client: {client['kind']} on {client['loop']}, {client['procs']} process(es); "
                  f"machine: {machine['cpus']} CPUs, load average {machine['loadavg_start'][0]:.2f} "
                  f"before, {machine['loadavg_end'][0]:.2f} after")
    console.print(summary_table(report))
    for backend, data in report["backends"].items():
        console.print(rate_table(backend, data))
        if data["scale"]:
            console.print(scale_table(backend, data["scale"]))
        if data.get("rollouts"):
            console.print(rollout_table(backend, data["rollouts"]))
        if data.get("clusters"):
            console.print(clusters_table(backend, data["clusters"]))
        for note in data["notes"]:
            console.print(f"note ({backend}): {note}")
