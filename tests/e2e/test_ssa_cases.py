"""Server-side apply, managedFields and dry-run, compared step by step with answers recorded from kube-apiserver.

The cases live in tests/data/ssa/cases.yaml (each cites the structured-merge-diff or kubernetes test, or the
kubernetes.io section, it comes from); scripts/record_ssa_cases.py ran them against a real kube-apiserver and
stored its normalised answers in tests/data/ssa/recorded.json. Here the same runner (tests/e2e/ssa_cases.py)
drives one in-process kapi with the Widget CRD installed, and every step must give kube's answer.

ACCEPTED lists the only cases where kapi deliberately answers differently, with the reason; nothing else is
skipped. Re-record after adding a case: python scripts/record_ssa_cases.py --server URL --token T --insecure
"""
from __future__ import annotations

import sys
from typing import Any, Iterator

import httpx
import pytest

from kapi.testing import RunningServer, start_server

R = sys.modules["kapi_e2e_ssa_cases"]  # loaded by conftest.py
CASES = {case["name"]: case for case in R.load_cases()}
RECORDED = R.load_recorded()

_UNKNOWN_FIELD = ("kube-apiserver answers an apply naming a field the schema does not declare with a 500 "
                  "(\"failed to create typed patch object ...: field not declared in schema\"), whatever "
                  "fieldValidation says; the client is at fault, so kapi answers 400 with the same message")
# case name -> why kapi differs; for these, a step kube answered 500 must be a 400 with kube's message.
ACCEPTED: dict[str, str] = {
    "apply-unknown-field": _UNKNOWN_FIELD,
    "widget-apply-unknown-field": _UNKNOWN_FIELD,
}


@pytest.fixture(scope="module")
def ssa_server() -> Iterator[RunningServer]:
    """One kapi (memory backend) for the module; every case works in a namespace of its own."""
    with start_server(resources=[R.CRD_FILE]) as server:
        yield server


@pytest.fixture(scope="module")
def client(ssa_server: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=ssa_server.url, timeout=10) as c:
        yield c


def test_cases_and_recording_agree() -> None:
    """A case without a recording (or a recording of a removed case) means the recorder must be run again."""
    assert sorted(CASES) == sorted(RECORDED), "re-run scripts/record_ssa_cases.py against a kube-apiserver"
    assert set(ACCEPTED) <= set(CASES)
    for name, case in CASES.items():
        assert len(RECORDED[name]) == len(case["steps"]), f"{name}: recording is stale"


def _accepted_view(results: list[dict[str, Any]], recorded: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """For an ACCEPTED case: where kube said 500, keep only code and message; kube's 500 becomes the 400 wanted."""
    view = []
    for result, kube in zip(results, recorded):
        if kube["code"] == 500:
            body = result["body"] if isinstance(result["body"], dict) else {}
            view.append({"code": result["code"], "message": body.get("message")})
        else:
            view.append(result)
    return view


@pytest.mark.parametrize("name", list(CASES))
def test_ssa_case(client: httpx.Client, name: str) -> None:
    case = CASES[name]
    want = RECORDED.get(name)
    assert want is not None, f"{name} is not recorded: run scripts/record_ssa_cases.py"
    got = R.run_case(client, case, R.namespace_for(case))
    if name in ACCEPTED:
        got = _accepted_view(got, want)
        want = [{"code": 400, "message": w["body"]["message"]} if w["code"] == 500 else w for w in want]
    assert got == want, R.diff_steps(case, got, want)
