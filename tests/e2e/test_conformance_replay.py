"""The conformance corpus replayed against kapi: every exchange must give kube-apiserver's recorded answer.

tests/conformance/scenarios holds the requests, tests/conformance/recorded kube-apiserver's normalised answers
(`python scripts/conformance.py record ...` against a real one), tests/conformance/accepted.yaml the only
differences kapi keeps on purpose, each with its reason. One fresh kapi per backend runs the whole corpus; a
difference that no entry accepts fails with its field path and both values, and so does an entry that accepts
nothing any more (it would hide a future regression).
"""
from __future__ import annotations

import contextlib
import importlib.util
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import httpx
import pytest

from kapi_cli.etcd_local import LocalEtcd
from kapi.testing import start_server

CORPUS_FILE = Path(__file__).resolve().parent.parent / "conformance" / "corpus.py"


def _load_corpus() -> ModuleType:
    spec = importlib.util.spec_from_file_location("kapi_conformance_corpus", CORPUS_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


C = sys.modules.get("kapi_conformance_corpus") or _load_corpus()
FILES = C.load_scenarios()
SCENARIOS = {s["name"]: s for group in FILES.values() for s in group}
RECORDED = C.load_recorded()
ACCEPTED = C.load_accepted()


def test_every_scenario_is_recorded() -> None:
    """A scenario without a recording (or a stale one) means the recorder must run again."""
    assert sorted(SCENARIOS) == sorted(RECORDED), "re-run scripts/conformance.py record against a kube-apiserver"
    for name, scenario in SCENARIOS.items():
        assert len(RECORDED[name]) == len(scenario["steps"]), f"{name}: the recording is stale"


def test_corpus_is_large_enough() -> None:
    assert sum(len(s["steps"]) for s in SCENARIOS.values()) >= 300


def test_every_accepted_difference_has_a_reason() -> None:
    for entry in ACCEPTED:
        assert len(entry.reason.split()) >= 4, f"{entry}: say why kapi differs"


def test_a_racy_exchange_counts_the_same_whether_or_not_the_race_was_won() -> None:
    """The README's figure must not move with how far kapi's controllers got before the next request."""
    scenarios = {"s": {"name": "s", "steps": [{}, {}]}}
    recorded = {"s": [{"code": 200}, {"code": 200}]}
    accepted = [C.Accepted(scenario="s", step="1", path="*", reason="the controller may finish first", racy=True)]
    figures = []
    for second in ({"code": 200}, {"code": 404}):
        outcomes, used = C.judge(scenarios, recorded, {"s": [{"code": 200}, second]}, accepted)
        assert not C.stale_entries(accepted, used)
        figures.append({k: v for k, v in C.summary(outcomes).items() if k != "exchanges_by_difference_class"})
    assert figures[0] == figures[1] == {"exchanges": 2, "identical": 1, "accepted": 1, "differing": 0}


@pytest.fixture(scope="module", params=["memory", "etcd"])
def results(request: pytest.FixtureRequest) -> Iterator[dict[str, list[dict[str, Any]]]]:
    """Every scenario's answers from one fresh kapi on the backend."""
    config: dict[str, Any] = {"backend": request.param}
    with contextlib.ExitStack() as stack:
        if request.param == "etcd":
            # its own etcd, as the recording's was: fresh and never compacted (a watch from resourceVersion 1
            # replays the history), which the session's shared etcd cannot promise
            etcd = LocalEtcd.create(request.getfixturevalue("tmp_path_factory").mktemp("etcd-conformance")).start()
            stack.callback(etcd.stop)
            config.update(etcd_servers=(etcd.endpoints,), etcd_prefix=f"/kapi-conformance-{uuid.uuid4().hex[:8]}")
        with start_server(**config) as server, httpx.Client(base_url=server.url, timeout=30) as client:
            answers = C.run_corpus(client, FILES)
    yield {name: steps for group in answers.values() for name, steps in group.items()}


def test_replay_matches_kube(results: dict[str, list[dict[str, Any]]]) -> None:
    outcomes, used = C.judge(SCENARIOS, RECORDED, results, ACCEPTED)
    failures = [f"{o.scenario}[{o.step}] {d.render()}" for o in outcomes for d in o.unaccepted]
    assert not failures, f"{len(failures)} differences from kube-apiserver:\n" + "\n".join(failures[:80])
    stale = C.stale_entries(ACCEPTED, used)
    assert not stale, "accepted differences that cover nothing any more (remove them):\n" + "\n".join(map(str, stale))
