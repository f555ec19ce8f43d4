"""The auditor: events worked out from what the request's scope holds, stages omitted as the policy says,
written in small batches, in order, flushed at close, and one bad event never stopping the rest."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson
import pytest

from kapi.api.requestinfo import parse_request_info
from kapi.api.user import UserInfo
from kapi.audit import event
from kapi.audit.auditor import ENCODE_DELAY, Auditor
from kapi.audit.backends import WRITE_DELAY, LogBackend
from kapi.audit.policy import PolicyEvaluator, RequestAuditConfig, parse_policy
from kapi.auth.interfaces import Decision
from kapi.endpoints import filters

POLICY = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]})
METADATA = RequestAuditConfig("Metadata")
ALICE = UserInfo("alice", groups=("system:authenticated",))


def make(tmp_path: Path) -> tuple[Auditor, Path]:
    path = tmp_path / "audit.log"
    return Auditor(PolicyEvaluator(POLICY), [LogBackend(str(path))]), path


def scope(audit_id: str, path: str = "/api/v1/namespaces/a/pods", user: UserInfo = ALICE) -> dict[str, Any]:
    """A request's scope as the filters leave it."""
    return {"path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": [],
            "client": ("127.0.0.1", 1), event.AUDIT_ID_KEY: audit_id, event.RECEIVED_KEY: time.time_ns(),
            event.INFO_KEY: parse_request_info("GET", path), event.USER_KEY: user}


def logged(path: Path) -> list[tuple[str, str]]:
    return [(e["auditID"], e["stage"]) for e in map(orjson.loads, path.read_bytes().splitlines())]


def test_the_scope_keys_are_the_filters_keys() -> None:
    assert (event.INFO_KEY, event.USER_KEY) == (filters.INFO_KEY, filters.USER_KEY)


async def test_events_are_encoded_a_little_later_in_order(tmp_path: Path) -> None:
    auditor, path = make(tmp_path)
    await auditor.start()
    first, second = scope("a"), scope("b")
    auditor.note("RequestReceived", METADATA, first, ALICE)
    auditor.note("RequestReceived", METADATA, second, ALICE)
    auditor.note("ResponseComplete", METADATA, first, ALICE, (200, b"{}", [], None))
    assert auditor.pending and logged(path) == []  # nothing worked out on the request's path
    await asyncio.sleep(0)
    assert auditor.pending  # the next turn of the loop does not encode yet: notes gather for ENCODE_DELAY
    await asyncio.sleep(ENCODE_DELAY * 2)
    assert not auditor.pending  # encoded together
    assert logged(path) == []  # the log writes a little later, in bigger pieces
    await asyncio.sleep(WRITE_DELAY * 2)
    assert logged(path) == [("a", "RequestReceived"), ("b", "RequestReceived"), ("a", "ResponseComplete")]
    auditor.note("ResponseComplete", METADATA, second, ALICE, (404, None, [], None))
    await auditor.close()  # what waits is written at close
    assert logged(path)[-1] == ("b", "ResponseComplete")


def test_what_the_scope_says_by_the_end(tmp_path: Path) -> None:
    auditor, path = make(tmp_path)
    request = scope("x")
    auditor.note("RequestReceived", METADATA, request, ALICE)  # no event loop here: written at once
    request[event.USER_KEY] = UserInfo("bob")  # impersonation, then the authorizer's answer
    request[event.DECISION_KEY] = Decision(False, "RBAC: no")
    auditor.note("ResponseComplete", METADATA, request, ALICE, (403, None, [], {"reason": "Forbidden"}))
    received, complete = map(orjson.loads, path.read_bytes().splitlines())
    assert "impersonatedUser" not in received and "annotations" not in received
    assert received["user"]["username"] == complete["user"]["username"] == "alice"
    assert complete["impersonatedUser"] == {"username": "bob"}
    assert complete["annotations"] == {"authorization.k8s.io/decision": "forbid",
                                       "authorization.k8s.io/reason": "RBAC: no"}
    assert complete["responseStatus"] == {"metadata": {}, "reason": "Forbidden", "code": 403}


def test_omitted_stages(tmp_path: Path) -> None:
    auditor, path = make(tmp_path)
    quiet = RequestAuditConfig("Metadata", frozenset({"RequestReceived"}))
    request = scope("q")
    auditor.note("RequestReceived", quiet, request, ALICE)
    auditor.note("ResponseComplete", quiet, request, ALICE, (200, None, [], None))
    assert logged(path) == [("q", "ResponseComplete")]


def test_an_event_that_cannot_be_encoded_is_reported_and_skipped(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    auditor, path = make(tmp_path)
    auditor.note("ResponseComplete", METADATA, scope("x"), ALICE, (500, None, [], {"message": object()}))
    auditor.note("ResponseComplete", METADATA, scope("y"), ALICE, (200, None, [], None))
    assert logged(path) == [("y", "ResponseComplete")]
    assert "Error in audit plugin 'encoder' affecting 1 audit events" in caplog.text
