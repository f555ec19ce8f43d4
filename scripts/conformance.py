#!/usr/bin/env python3
"""The conformance figure: kapi's answers to the corpus of tests/conformance, compared with kube-apiserver's.

    python scripts/conformance.py                      # replay against a fresh in-process kapi (memory)
    python scripts/conformance.py --backend etcd --etcd-servers http://127.0.0.1:2379
    python scripts/conformance.py --show               # also every difference, accepted ones marked
    python scripts/conformance.py record --server https://127.0.0.1:6443 --token T [--only NAME]

`record` runs the scenarios against a real, fresh kube-apiserver (see the README's "Conformance" section for
how one is built and started on loopback) and writes tests/conformance/recorded/<file>.json. The report prints
exchanges, identical, differing only in accepted ways (tests/conformance/accepted.yaml) and differing, with the
differences counted by class; --json prints the same as JSON.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent  # kapi itself is imported as installed (README's set-up)


def load_corpus() -> ModuleType:
    """tests/conformance/corpus.py by file path: tests/ is not a package."""
    spec = importlib.util.spec_from_file_location("kapi_conformance_corpus", ROOT / "tests" / "conformance" / "corpus.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def record(args: argparse.Namespace, corpus: ModuleType) -> int:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    files = corpus.load_scenarios()
    only = set(args.only) or None
    with httpx.Client(base_url=args.server, verify=False, headers=headers, timeout=30) as client:
        version = client.get("/version").json()
        results = corpus.run_corpus(client, files, only)
    corpus.RECORDED.mkdir(exist_ok=True)
    for stem, answers in results.items():
        if not answers:
            continue
        path = corpus.RECORDED / f"{stem}.json"
        previous = json.loads(path.read_text()) if path.exists() and only else {}
        merged = {**previous, "_recorded_from": version.get("gitVersion"),
                  "_recorded_version": f"{version.get('major')}.{version.get('minor')}", **answers}
        order = ["_recorded_from", "_recorded_version"] + [s["name"] for s in files[stem]]
        path.write_text(json.dumps({k: merged[k] for k in order if k in merged}, indent=1, ensure_ascii=False) + "\n")
        print(f"{path.relative_to(ROOT)}: {len(answers)} scenarios", file=sys.stderr)
    return 0


def replay(corpus: ModuleType, backend: str = "memory", etcd_servers: str | None = None
           ) -> tuple[dict[str, Any], list[Any], list[Any]]:
    """(summary, outcomes, stale accepted entries) of the corpus against a fresh in-process kapi."""
    from kapi.testing import start_server

    files = corpus.load_scenarios()
    recorded = corpus.load_recorded()
    scenarios = {s["name"]: s for group in files.values() for s in group if s["name"] in recorded}
    config: dict[str, Any] = {"backend": backend}
    if backend == "etcd":
        config.update(etcd_servers=tuple(etcd_servers.split(",")) if etcd_servers else ("http://127.0.0.1:2379",),
                      etcd_prefix=f"/kapi-conformance-{uuid.uuid4().hex[:8]}")
    with start_server(**config) as server, httpx.Client(base_url=server.url, timeout=30) as client:
        results = corpus.run_corpus(client, {k: [s for s in v if s["name"] in scenarios] for k, v in files.items()})
    flat = {name: answers for group in results.values() for name, answers in group.items()}
    accepted = corpus.load_accepted()
    outcomes, used = corpus.judge(scenarios, recorded, flat, accepted)
    return corpus.summary(outcomes), outcomes, corpus.stale_entries(accepted, used)


def report(args: argparse.Namespace, corpus: ModuleType) -> int:
    figure, outcomes, stale = replay(corpus, args.backend, args.etcd_servers)
    if args.json:
        print(json.dumps(figure, indent=1))
    else:
        print(f"recorded from kube-apiserver {', '.join(sorted(corpus.recorded_from()))}; kapi on {args.backend}")
        print(f"exchanges {figure['exchanges']}: identical {figure['identical']}, "
              f"accepted differences {figure['accepted']}, differing {figure['differing']}")
        for cls, count in figure["exchanges_by_difference_class"].items():
            print(f"  exchanges with a difference of class {cls!r}: {count}")
    for outcome in outcomes:
        shown = outcome.differences if args.show else outcome.unaccepted
        for diff in shown:
            mark = "" if diff in outcome.unaccepted else " (accepted)"
            print(f"{outcome.scenario}[{outcome.step}] {diff.render()}{mark}", file=sys.stderr)
    for entry in stale:
        print(f"stale accepted entry (covers nothing): {entry}", file=sys.stderr)
    return 1 if figure["differing"] or stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", nargs="?", default="report", choices=["report", "record"])
    parser.add_argument("--backend", default="memory", choices=["memory", "file", "etcd"])
    parser.add_argument("--etcd-servers", help="for --backend etcd (default http://127.0.0.1:2379)")
    parser.add_argument("--show", action="store_true", help="print accepted differences too")
    parser.add_argument("--json", action="store_true", help="print the figure as JSON")
    parser.add_argument("--server", help="record: the kube-apiserver's base URL")
    parser.add_argument("--token", help="record: its bearer token")
    parser.add_argument("--only", action="append", default=[], help="record: just this scenario (repeatable)")
    args = parser.parse_args(argv)
    corpus = load_corpus()
    if args.command == "record":
        if not args.server:
            parser.error("record needs --server (and --token)")
        return record(args, corpus)
    return report(args, corpus)


if __name__ == "__main__":
    sys.exit(main())
