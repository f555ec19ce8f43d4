"""What a run measured, per backend, and its JSON form.

Every rate row has a stable key (`create_c16`, `ceiling_bare_get_c16`, …) so
the JSON can be compared across runs and checked by tests; the row's `name`
is for people. A kapi row whose ceiling was measured in the same run carries
its ratio to it (`RATIOS`): that ratio, not the raw rate, is what moves only
when kapi itself gets faster or slower.
"""
from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from kapi_cli.bench.client import Result

#: kapi row -> the ceiling rows it is a ratio of (those measured in this run).
RATIOS: dict[str, tuple[str, ...]] = {
    "get_c16": ("ceiling_bare_get_c16", "ceiling_etcd_get_c16"),
    "create_c16": ("ceiling_bare_post_c16", "ceiling_etcd_put_c16"),
    "create_seq": ("ceiling_etcd_put_seq",),
}

#: ceiling key -> its short name in a ratio ("52% of bare POST c16").
CEILING_LABELS = {
    "ceiling_bare_get_c16": "bare GET c16",
    "ceiling_bare_post_c16": "bare POST c16",
    "ceiling_etcd_put_seq": "raw etcd put seq",
    "ceiling_etcd_put_c16": "raw etcd put c16",
    "ceiling_etcd_get_c16": "raw etcd get c16",
}


@dataclass
class Row:
    key: str
    result: Result
    section: str


@dataclass
class MemoryPoint:
    objects: int
    rss_bytes: int


@dataclass
class Memory:
    """RSS of a fresh server that did nothing but create objects: empty, then at each count."""

    rss_empty_bytes: int
    points: list[MemoryPoint] = field(default_factory=list)

    def per_object(self, point: MemoryPoint) -> float:
        return (point.rss_bytes - self.rss_empty_bytes) / point.objects


@dataclass
class ScalePoint:
    """At `objects` objects in one namespace: p50 of listing them all, and the last create batch."""

    objects: int
    list_result: Result
    create_result: Result

    @property
    def list_p50_ms(self) -> float:
        return self.list_result.pct(0.5) or 0.0


@dataclass
class BackendReport:
    """Everything measured for one backend (or one `--server`)."""

    backend: str
    rows: dict[str, Row] = field(default_factory=dict)
    startup_s: list[float] = field(default_factory=list)
    memory: Memory | None = None
    scale: list[ScalePoint] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rollouts: list[dict[str, Any]] = field(default_factory=list)  # simulated Deployment rollouts (simulation.py)
    clusters: dict[str, Any] | None = None  # 100 logical clusters' lives (clusters.py)

    def add(self, key: str, result: Result, section: str = "kapi") -> Result:
        self.rows[key] = Row(key, result, section)
        return result

    def ratios(self, key: str) -> list[tuple[str, float]]:
        """(ceiling key, this row's rate / the ceiling's rate) for every ceiling measured."""
        mine = self.rows[key].result.rate
        return [(c, mine / self.rows[c].result.rate) for c in RATIOS.get(key, ())
                if c in self.rows and self.rows[c].result.rate > 0]

    def to_json(self) -> dict[str, Any]:
        return {
            "startup": {"median_s": statistics.median(self.startup_s), "samples_s": self.startup_s}
            if self.startup_s else None,
            "results": {key: self._row_json(row) for key, row in self.rows.items()},
            "memory": self._memory_json(),
            "scale": self._scale_json(),
            "rollouts": self.rollouts,
            "clusters": self.clusters,
            "notes": self.notes,
        }

    def _row_json(self, row: Row) -> dict[str, Any]:
        r = row.result
        return {"name": r.name, "section": row.section, "ops": r.ops, "seconds": r.seconds,
                "ops_per_s": r.rate, "p50_ms": r.pct(0.5), "p99_ms": r.pct(0.99),
                "client_cpu": r.client_cpu, "server_cpu": r.server_cpu, "etcd_cpu": r.etcd_cpu,
                "errors": r.errors, **r.extra,
                "of_ceiling": [{"ceiling": c, "ratio": ratio} for c, ratio in self.ratios(row.key)]}

    def _memory_json(self) -> dict[str, Any] | None:
        if self.memory is None:
            return None
        return {"rss_empty_bytes": self.memory.rss_empty_bytes,
                "points": [{"objects": p.objects, "rss_bytes": p.rss_bytes,
                            "bytes_per_object": self.memory.per_object(p)} for p in self.memory.points]}

    def _scale_json(self) -> dict[str, Any] | None:
        if not self.scale:
            return None
        points = [{"objects": p.objects, "list_p50_ms": p.list_p50_ms, "list_errors": p.list_result.errors,
                   "list_client_cpu": p.list_result.client_cpu, "list_server_cpu": p.list_result.server_cpu,
                   "create_c16_ops_per_s": p.create_result.rate, "create_batch": p.create_result.ops,
                   "create_errors": p.create_result.errors} for p in self.scale]
        return {"points": points, "growth": growth(self.scale)}


def growth(points: list[ScalePoint]) -> list[dict[str, float]]:
    """The ratio of each scale point to the one before: objects, list latency, create rate."""
    out = []
    for before, after in zip(points, points[1:]):
        out.append({"from": before.objects, "to": after.objects, "objects_ratio": after.objects / before.objects,
                    "list_ratio": after.list_p50_ms / before.list_p50_ms if before.list_p50_ms else 0.0,
                    "create_ratio": after.create_result.rate / before.create_result.rate
                    if before.create_result.rate else 0.0})
    return out
