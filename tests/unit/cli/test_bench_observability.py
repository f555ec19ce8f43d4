"""The observability figure of `scripts/bench.py`: rounds in a rotating order, each variant against the
same round's --no-metrics, the median over rounds."""
from __future__ import annotations

from kapi_cli.bench.client import Result
from kapi_cli.bench.observability import AUDITED, METRICS, PLAIN, cost_note, rotated


def test_every_variant_leads_a_round_in_turn() -> None:
    assert [rotated(["a", "b", "c"], i) for i in range(4)] == [
        ["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"], ["a", "b", "c"]]


def _result(rate: float, cpu_us: float) -> Result:
    """`rate` GETs a second for one second, the server busy `cpu_us` per GET."""
    return Result("get", ops=int(rate), seconds=1.0, latencies=[], client_cpu=0.0, server_cpu=rate * cpu_us / 1e6)


def test_the_cost_is_the_median_of_same_round_ratios() -> None:
    rounds = [{PLAIN: _result(1000, 300), METRICS: _result(980, 306), AUDITED: _result(920, 326)},
              {PLAIN: _result(500, 600), METRICS: _result(490, 612), AUDITED: _result(460, 652)},  # a slow round
              {PLAIN: _result(1000, 300), METRICS: _result(500, 600), AUDITED: _result(900, 333)}]  # an outlier
    note = cost_note(rounds)
    assert "median of 3 rounds" in note
    assert "metrics cost +2.0% of GET throughput, +12.0 µs server CPU per GET" in note
    assert "metrics + audit at Metadata cost +8.0% of GET throughput, +33.0 µs server CPU per GET" in note
