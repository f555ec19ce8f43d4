"""`scripts/bench.py --quick` runs and reports every figure (issue 9's benchmark, at small sizes).

No timing is asserted anywhere: on a shared CI machine a rate means
nothing. What is checked is that the benchmark starts its servers, measures
everything it promises, reports each figure as a positive number with no
failed request, and prints its tables when not asked for JSON.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "scripts" / "bench.py"

#: result key -> the figures that row must have as positive numbers.
RATES = ("ops_per_s", "p50_ms", "p99_ms", "client_cpu")
KAPI_ROWS: dict[str, tuple[str, ...]] = {
    "create_seq": RATES, "create_c16": RATES, "create_c64": RATES,
    "get_c16": RATES,
    "list_small": RATES, "list_large": RATES,
    "list_paged": (*RATES, "traversal_ms"),
    "patch_c16": RATES, "update_c16": RATES,
    "watch_latency": RATES,
    "watch_fanout": ("ops_per_s", "client_cpu"),
    "get_c16_https": RATES, "get_c16_https_cert": RATES,
    "create_loose_c16": RATES, "create_typed_c16": RATES,
    "ceiling_bare_get_c16": RATES, "ceiling_bare_post_c16": RATES,
}
ETCD_ROWS: dict[str, tuple[str, ...]] = {
    "ceiling_etcd_put_seq": RATES, "ceiling_etcd_put_c16": RATES,
    "ceiling_etcd_get_c16": RATES, "ceiling_etcd_range": RATES,
}
#: kapi row -> the ceilings it must be given as a ratio of.
RATIOS = {"get_c16": {"ceiling_bare_get_c16"}, "create_c16": {"ceiling_bare_post_c16"}}
ETCD_RATIOS = {"get_c16": {"ceiling_bare_get_c16", "ceiling_etcd_get_c16"},
               "create_c16": {"ceiling_bare_post_c16", "ceiling_etcd_put_c16"},
               "create_seq": {"ceiling_etcd_put_seq"}}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([sys.executable, str(BENCH), "--quick", *args], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0


def check_backend(name: str, data: dict[str, Any], rows: dict[str, tuple[str, ...]],
                  ratios: dict[str, set[str]], scale: bool) -> None:
    assert positive(data["startup"]["median_s"]), name
    assert len(data["startup"]["samples_s"]) == 5, name
    results = data["results"]
    for key, figures in rows.items():
        assert key in results, f"{name}: no {key}"
        for figure in figures:
            assert positive(results[key][figure]), f"{name}: {key}.{figure} = {results[key][figure]!r}"
        assert results[key]["errors"] == 0, f"{name}: {key} had failed requests"
    for key, ceilings in ratios.items():
        given = {r["ceiling"]: r["ratio"] for r in results[key]["of_ceiling"]}
        assert set(given) == ceilings, f"{name}: {key} ratios {given}"
        assert all(positive(ratio) for ratio in given.values()), f"{name}: {key} ratios {given}"
    memory = data["memory"]
    assert positive(memory["rss_empty_bytes"]), name
    assert [p["objects"] for p in memory["points"]] == [1000, 5000], name
    assert all(positive(p["rss_bytes"]) and positive(p["bytes_per_object"]) for p in memory["points"]), memory
    if scale:
        points = data["scale"]["points"]
        assert [p["objects"] for p in points] == [100, 1000], name
        for p in points:
            assert positive(p["list_p50_ms"]) and positive(p["create_c16_ops_per_s"]), p
            assert p["list_errors"] == 0 and p["create_errors"] == 0, p
        (growth,) = data["scale"]["growth"]
        assert all(positive(growth[k]) for k in ("objects_ratio", "list_ratio", "create_ratio")), growth


def test_quick_json_reports_every_figure_on_memory_and_file() -> None:
    report = json.loads(run_bench("--scale", "--json").stdout)
    assert report["client"]["procs"] == 1 and "not httpx" in report["client"]["kind"]
    assert set(report["backends"]) == {"memory", "file"}
    for name, data in report["backends"].items():
        check_backend(name, data, KAPI_ROWS, RATIOS, scale=True)


def test_quick_table_on_etcd_with_its_raw_ceilings(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    result = run_bench("--backend", "etcd", "--json-out", str(out))
    for text in ("kapi: start-up and memory", "kapi on etcd", "create, 16 clients", "of bare GET c16",
                 "of raw etcd put c16", "raw etcd get, 16 clients", "bare uvicorn + Starlette POST"):
        assert text in result.stdout, f"{text!r} not in the table:\n{result.stdout}"
    report = json.loads(out.read_text())
    check_backend("etcd", report["backends"]["etcd"], {**KAPI_ROWS, **ETCD_ROWS}, ETCD_RATIOS, scale=False)
