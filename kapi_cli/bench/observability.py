"""What observability costs a GET: the same load on three fresh kapis alike but for request counting
(`--no-metrics` against kapi as shipped) and a Metadata-level audit log written to a file.

Why three servers measured in alternating rounds: the difference sought is a few percent, less
than the drift of a shared 2-core machine over a minute, so each variant gets the same conditions
and its best round counts. The server's CPU per GET is reported beside the throughput because,
with the client on the same cores, CPU per request shows the cost even where the rate hides it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from kapi_cli.bench import plans as p
from kapi_cli.bench.client import Result
from kapi_cli.bench.servers import KapiServer
from kapi_cli.bench.suites import Bench, create_namespaces, fill

POLICY = "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n"
ROUNDS = 2
Variant = tuple[str, str, list[str]]


def variants(root: Path) -> list[Variant]:
    policy = root / "audit-policy.yaml"
    policy.write_text(POLICY)
    audit = ["--audit-policy-file", str(policy), "--audit-log-path", str(root / "audit.log")]
    return [("get_c16_no_metrics", "get, 16 clients (--no-metrics)", ["--no-metrics"]),
            ("get_c16_metrics", "get, 16 clients (metrics, as shipped)", []),
            ("get_c16_metrics_audit", "get, 16 clients (metrics + audit at Metadata)", audit)]


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
        best: dict[str, Result] = {}
        for _ in range(ROUNDS):
            for (key, name, _args), _server, bench in runs:
                n = bench.sizes.n
                result = bench.load(None, name, 16, 4 * n, p.get_plan(bench.ops_path, "s", n))
                if key not in best or result.rate > best[key].rate:
                    best[key] = result
        for (key, _name, _args), _server, bench in runs:
            bench.report.add(key, best[key], "extra")
    finally:
        for _variant, server, _bench in runs:
            server.stop()
    return cost_note(best["get_c16_no_metrics"], best["get_c16_metrics"], best["get_c16_metrics_audit"])


def cost_note(plain: Result, metrics: Result, audited: Result) -> str:
    def cost(of: Result) -> str:
        text = f"{1 - of.rate / plain.rate:+.1%} of GET throughput"
        base, mine = cpu_us_per_op(plain), cpu_us_per_op(of)
        if base and mine:
            text += f", {mine - base:+.0f} µs server CPU per GET ({mine / base - 1:+.1%})"
        return text
    return (f"observability (GET, 16 clients, best of {ROUNDS} rounds against --no-metrics): "
            f"metrics cost {cost(metrics)}; metrics + audit at Metadata cost {cost(audited)}")
