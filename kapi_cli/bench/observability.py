"""What observability costs a GET: the same load on three fresh kapis alike but for request counting
(`--no-metrics` against kapi as shipped) and a Metadata-level audit log written to a file.

Why three servers measured in alternating rounds: the difference sought is a few percent, less
than the drift of a shared 2-core machine over a minute, so each variant gets the same conditions
(in an order that rotates from round to round); the cost is the median over rounds of each variant
against --no-metrics in the same round. The server's CPU per GET is reported beside the throughput
because, with the client on the same cores, CPU per request shows the cost even where the rate hides it.
"""
from __future__ import annotations

import statistics
from pathlib import Path
from typing import Callable, TypeVar

from kapi_cli.bench import plans as p
from kapi_cli.bench.client import Result
from kapi_cli.bench.servers import KapiServer
from kapi_cli.bench.suites import Bench, create_namespaces, fill

POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
ROUNDS = 5
Variant = tuple[str, str, list[str]]
T = TypeVar("T")
PLAIN, METRICS, AUDITED = "get_c16_no_metrics", "get_c16_metrics", "get_c16_metrics_audit"


def variants(root: Path) -> list[Variant]:
    policy = root / "audit-policy.yaml"
    policy.write_text(POLICY)
    audit = ["--audit-policy-file", str(policy), "--audit-log-path", str(root / "audit.log")]
    return [(PLAIN, "get, 16 clients (--no-metrics)", ["--no-metrics"]),
            (METRICS, "get, 16 clients (metrics, as shipped)", []),
            (AUDITED, "get, 16 clients (metrics + audit at Metadata)", audit)]


def rotated(items: list[T], start: int) -> list[T]:
    """`items` from `start` on, then the rest: no variant is always measured last in a round (a machine that
    drifts within a round would charge it alone)."""
    start %= len(items)
    return items[start:] + items[:start]


def cpu_us_per_op(result: Result) -> float | None:
    if result.server_cpu is None or not result.ops:
        return None
    return result.server_cpu * result.seconds / result.ops * 1e6


def observability_cost(make: Callable[[str, list[str]], KapiServer], bench_on: Callable[[KapiServer], Bench],
                       root: Path) -> str:
    """Measure the three variants (rows in the report's extra section); the note comparing them."""
    runs: list[tuple[Variant, KapiServer, Bench]] = []
    try:
        for variant in variants(root):
            server = make(f"obs-{variant[0]}", variant[2])
            bench = bench_on(server)
            runs.append((variant, server, bench))
            create_namespaces(bench, [""])
            fill(bench, bench.ops_path, 0, bench.sizes.n, "s")
        rounds: list[dict[str, Result]] = []
        for round_index in range(ROUNDS):
            measured = {}
            for (key, name, _args), _server, bench in rotated(runs, round_index):
                n = bench.sizes.n
                measured[key] = bench.load(None, name, 16, 4 * n, p.get_plan(bench.ops_path, "s", n))
            rounds.append(measured)
        for (key, _name, _args), _server, bench in runs:
            bench.report.add(key, max((r[key] for r in rounds), key=lambda result: result.rate), "extra")
    finally:
        for _variant, server, _bench in runs:
            server.stop()
    return cost_note(rounds)


def cost_note(rounds: list[dict[str, Result]]) -> str:
    """Each variant against --no-metrics measured in the same round (the machine drifts between rounds), the
    median over the rounds."""
    def cost(key: str) -> str:
        slower = statistics.median(1 - r[key].rate / r[PLAIN].rate for r in rounds)
        text = f"{slower:+.1%} of GET throughput"
        extra = [mine - base for r in rounds
                 if (base := cpu_us_per_op(r[PLAIN])) is not None and (mine := cpu_us_per_op(r[key])) is not None]
        if extra:
            text += f", {statistics.median(extra):+.1f} µs server CPU per GET"
        return text
    return (f"observability (GET, 16 clients, median of {len(rounds)} rounds, each against --no-metrics in the "
            f"same round): metrics cost {cost(METRICS)}; metrics + audit at Metadata cost {cost(AUDITED)}")
