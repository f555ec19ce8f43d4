#!/usr/bin/env python3
"""Record kube-apiserver's answers to the server-side apply cases (tests/data/ssa/cases.yaml).

    python scripts/record_ssa_cases.py --server https://127.0.0.1:6443 --token T --insecure

The reference server needs the Widget CRD of tests/data/ssa/widgets-crd.yaml installed. Each case runs in a
fresh namespace `ssa-<case name>`, deleted afterwards. The answers, normalised by tests/e2e/ssa_cases.py (the
same runner the replay test uses against kapi), go to tests/data/ssa/recorded.json with the server's
gitVersion under `_recorded_from`.

A bare kube-apiserver runs no namespace controller, so a deleted namespace would stay Terminating forever:
this script empties the namespace of the kinds the cases use and finalizes it itself, as that controller would.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent


def load_runner() -> ModuleType:
    """tests/e2e/ssa_cases.py by file path: tests/ is not a package."""
    spec = importlib.util.spec_from_file_location("ssa_cases", ROOT / "tests" / "e2e" / "ssa_cases.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def purge_namespace(client: httpx.Client, runner: ModuleType, namespace: str, timeout: float = 30.0) -> None:
    """Delete `namespace` and everything the cases may have put in it, and wait until it is gone."""
    if client.get(f"/api/v1/namespaces/{namespace}").status_code == 404:
        return
    for collection in runner.COLLECTIONS.values():
        response = client.delete(collection.format(ns=namespace))
        if response.status_code not in (200, 404):
            raise RuntimeError(f"emptying {namespace} failed ({response.status_code}): {response.text}")
    client.delete(f"/api/v1/namespaces/{namespace}")
    client.put(f"/api/v1/namespaces/{namespace}/finalize",
               json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace},
                     "spec": {"finalizers": []}})
    deadline = time.monotonic() + timeout
    while client.get(f"/api/v1/namespaces/{namespace}").status_code != 404:
        if time.monotonic() > deadline:
            raise RuntimeError(f"namespace {namespace} was not deleted within {timeout}s")
        time.sleep(0.1)


def record(client: httpx.Client, runner: ModuleType, only: list[str], keep: bool) -> dict[str, Any]:
    """Run the (selected) cases one by one in fresh namespaces; returns {name: results} in file order."""
    version = client.get("/version").json()
    recorded: dict[str, Any] = {"_recorded_from": version.get("gitVersion"),
                                "_recorded_version": f"{version.get('major')}.{version.get('minor')}"}
    for case in runner.load_cases():
        if only and case["name"] not in only:
            continue
        namespace = runner.namespace_for(case)
        purge_namespace(client, runner, namespace)
        try:
            recorded[case["name"]] = runner.run_case(client, case, namespace)
        finally:
            if not keep:
                purge_namespace(client, runner, namespace)
        print(f"{case['name']}: {' '.join(str(r['code']) for r in recorded[case['name']])}", file=sys.stderr)
    return recorded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--server", required=True, help="base URL of the kube-apiserver")
    parser.add_argument("--token", help="bearer token")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's certificate")
    parser.add_argument("--only", action="append", default=[],
                        help="record just this case (repeatable); the other recorded cases are kept")
    parser.add_argument("--output", type=Path, help="where to write (default tests/data/ssa/recorded.json)")
    parser.add_argument("--keep", action="store_true", help="leave the ssa-* namespaces in place")
    args = parser.parse_args(argv)
    runner = load_runner()
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else {}
    with httpx.Client(base_url=args.server, verify=not args.insecure, headers=headers, timeout=30) as client:
        recorded = record(client, runner, args.only, args.keep)
    output = args.output or runner.RECORDED_FILE
    if args.only and output.exists():
        # A partial run updates the selected cases and keeps the others, in the order of cases.yaml.
        previous = json.loads(output.read_text())
        merged = {**previous, **recorded}
        order = [k for k in merged if k.startswith("_")] + [c["name"] for c in runner.load_cases()]
        recorded = {k: merged[k] for k in order if k in merged}
    output.write_text(json.dumps(recorded, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {sum(not k.startswith('_') for k in recorded)} cases to {output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
