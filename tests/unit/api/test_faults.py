"""Fault specs (`parse_fault`), how `Faults` matches and consumes them, the paused storage, and the Status a
fault answers with."""
from __future__ import annotations

import asyncio
from typing import Any

import pytest

from kapi.api import errors
from kapi.api.faults import WRITE_VERBS, Fault, Faults, parse_fault

# ----- parse_fault: the documented specs -----------------------------------------------------------------------


def test_the_documented_specs_parse() -> None:
    fail = parse_fault({"type": "Fail", "verbs": ["create"], "resource": "configmaps", "code": 500, "count": 2},
                       "f1")
    assert (fail.id, fail.type, fail.verbs, fail.resource, fail.code, fail.count) == (
        "f1", "Fail", frozenset({"create"}), "configmaps", 500, 2)
    delay = parse_fault({"type": "Delay", "resource": "pods", "user": "bob", "delaySeconds": 0.5}, "f2")
    assert (delay.type, delay.resource, delay.user, delay.delay, delay.count) == ("Delay", "pods", "bob", 0.5, None)
    conflict = parse_fault({"type": "Conflict", "resource": "deployments.apps", "count": 3}, "f3")
    assert conflict.resource == "deployments.apps" and conflict.count == 3
    assert conflict.verbs == WRITE_VERBS  # no verbs: every write
    hook = parse_fault({"type": "WebhookTimeout", "webhook": "check.example.com"}, "f4")
    assert (hook.type, hook.webhook) == ("WebhookTimeout", "check.example.com")
    pause = parse_fault({"type": "PauseStorage"}, "f5")
    assert pause.type == "PauseStorage" and pause.count is None


def test_an_integer_delay_is_accepted_as_seconds() -> None:
    assert parse_fault({"type": "Delay", "delaySeconds": 2}, "f").delay == 2.0


def test_to_dict_gives_back_the_spec_with_its_id() -> None:
    fault = parse_fault({"type": "Fail", "verbs": ["update", "create"], "resource": "configmaps", "code": 503,
                         "count": 1, "message": "boom"}, "fault-7")
    assert fault.to_dict() == {"id": "fault-7", "type": "Fail", "verbs": ["create", "update"],
                               "resource": "configmaps", "code": 503, "message": "boom", "count": 1}
    assert parse_fault({"type": "PauseStorage"}, "fault-8").to_dict() == {"id": "fault-8", "type": "PauseStorage"}


@pytest.mark.parametrize("spec, words", [
    ("Fail", "JSON object"),
    ([{"type": "Fail", "code": 500}], "JSON object"),
    ({}, "fault type"),
    ({"type": "Explode"}, "'Explode'"),
    ({"type": "fail", "code": 500}, "fault type"),
    ({"type": "Fail", "code": 500, "colour": "red"}, "colour"),
    ({"type": "Fail"}, "code"),
    ({"type": "Fail", "code": 200}, "code"),
    ({"type": "Fail", "code": 399}, "code"),
    ({"type": "Fail", "code": 600}, "code"),
    ({"type": "Fail", "code": "500"}, "'code'"),
    ({"type": "Fail", "code": 500.0}, "'code'"),
    ({"type": "Delay"}, "delaySeconds"),
    ({"type": "Delay", "delaySeconds": 0}, "delaySeconds"),
    ({"type": "Delay", "delaySeconds": -1}, "delaySeconds"),
    ({"type": "Delay", "delaySeconds": 301}, "delaySeconds"),
    ({"type": "Delay", "delaySeconds": "1"}, "delaySeconds"),
    ({"type": "Fail", "code": 500, "count": 0}, "count"),
    ({"type": "Fail", "code": 500, "count": -3}, "count"),
    ({"type": "Fail", "code": 500, "count": 1.5}, "count"),
    ({"type": "Fail", "code": 500, "verbs": "create"}, "verbs"),
    ({"type": "Fail", "code": 500, "verbs": [1]}, "verbs"),
    ({"type": "Fail", "code": 500, "verbs": [""]}, "verbs"),
    ({"type": "Conflict", "verbs": ["get"]}, "writes only"),
    ({"type": "Conflict", "verbs": ["update", "list"]}, "writes only"),
    ({"type": "Conflict", "verbs": ["watch"]}, "writes only"),
    # booleans are never numbers, even where True would otherwise pass as 1
    ({"type": "Delay", "delaySeconds": True}, "delaySeconds"),
    ({"type": "Fail", "code": 500, "count": True}, "count"),
    ({"type": "Fail", "code": True}, "code"),
    ({"type": "Fail", "code": 500, "resource": 5}, "resource"),
    ({"type": "WebhookTimeout", "webhook": ["a"]}, "webhook"),
])
def test_bad_specs_are_400_naming_the_problem(spec: Any, words: str) -> None:
    with pytest.raises(errors.BadRequest) as caught:
        parse_fault(spec, "f")
    assert caught.value.code == 400
    assert words in caught.value.message, caught.value.message


def test_actions_are_not_faults_to_keep() -> None:
    for action in ("ExpireWatches", "Compact"):
        with pytest.raises(errors.BadRequest):
            parse_fault({"type": action}, "f")


# ----- matching requests ---------------------------------------------------------------------------------------


def ids(met: list[Fault]) -> list[str]:
    return [f.id for f in met]


def test_a_fault_matches_by_verb() -> None:
    faults = Faults()
    fault = faults.add({"type": "Fail", "code": 500, "verbs": ["list", "get"]})
    assert ids(faults.for_request("list", "", "configmaps", "alice")) == [fault.id]
    assert ids(faults.for_request("get", "apps", "deployments", "bob")) == [fault.id]
    assert faults.for_request("create", "", "configmaps", "alice") == []
    assert faults.for_request("watch", "", "configmaps", "alice") == []


def test_a_fault_without_verbs_or_resource_matches_every_request() -> None:
    faults = Faults()
    fault = faults.add({"type": "Fail", "code": 500})
    for verb, group, resource in (("get", "", "pods"), ("delete", "apps", "deployments"), ("list", "", "")):
        assert ids(faults.for_request(verb, group, resource, "x")) == [fault.id]


def test_a_core_resource_matches_by_plural_only_in_the_core_group() -> None:
    faults = Faults()
    fault = faults.add({"type": "Fail", "code": 500, "resource": "configmaps"})
    assert ids(faults.for_request("get", "", "configmaps", "u")) == [fault.id]
    assert faults.for_request("get", "", "secrets", "u") == []
    assert faults.for_request("get", "example.com", "configmaps", "u") == []


def test_a_grouped_resource_matches_by_plural_and_group() -> None:
    faults = Faults()
    apps = faults.add({"type": "Fail", "code": 500, "resource": "deployments.apps"})
    foos = faults.add({"type": "Fail", "code": 500, "resource": "foos.hello.zeng.dev"})
    assert ids(faults.for_request("get", "apps", "deployments", "u")) == [apps.id]
    assert faults.for_request("get", "", "deployments", "u") == []
    assert faults.for_request("get", "extensions", "deployments", "u") == []
    assert ids(faults.for_request("get", "hello.zeng.dev", "foos", "u")) == [foos.id]
    assert faults.for_request("get", "hello.zeng.dev", "bars", "u") == []


def test_a_fault_matches_by_user() -> None:
    faults = Faults()
    fault = faults.add({"type": "Delay", "delaySeconds": 0.1, "user": "bob"})
    assert ids(faults.for_request("get", "", "pods", "bob")) == [fault.id]
    assert faults.for_request("get", "", "pods", "alice") == []
    assert faults.for_request("get", "", "pods", "") == []


def test_every_matching_fault_is_met_and_other_kinds_are_not() -> None:
    faults = Faults()
    delay = faults.add({"type": "Delay", "delaySeconds": 0.1})
    fail = faults.add({"type": "Fail", "code": 503, "resource": "pods"})
    faults.add({"type": "WebhookTimeout"})
    faults.add({"type": "PauseStorage"})
    assert ids(faults.for_request("get", "", "pods", "u")) == [delay.id, fail.id]
    assert ids(faults.for_request("get", "", "secrets", "u")) == [delay.id]


def test_a_conflict_fault_meets_writes_only() -> None:
    faults = Faults()
    fault = faults.add({"type": "Conflict", "resource": "configmaps"})
    for verb in sorted(WRITE_VERBS):
        assert ids(faults.for_request(verb, "", "configmaps", "u")) == [fault.id]
    for verb in ("get", "list", "watch"):
        assert faults.for_request(verb, "", "configmaps", "u") == []


def test_a_counted_fault_is_met_that_many_times_then_gone() -> None:
    faults = Faults()
    fault = faults.add({"type": "Fail", "code": 500, "count": 2, "resource": "configmaps"})
    assert faults.for_request("get", "", "secrets", "u") == []  # no match: nothing counted
    assert ids(faults.for_request("get", "", "configmaps", "u")) == [fault.id]
    assert faults.describe() == [{"id": fault.id, "type": "Fail", "resource": "configmaps", "code": 500, "count": 1}]
    assert ids(faults.for_request("list", "", "configmaps", "u")) == [fault.id]
    assert faults.describe() == [] and not faults
    assert faults.for_request("get", "", "configmaps", "u") == []


def test_a_fault_without_count_stays() -> None:
    faults = Faults()
    fault = faults.add({"type": "Fail", "code": 500})
    for _ in range(5):
        assert ids(faults.for_request("get", "", "pods", "u")) == [fault.id]
    assert bool(faults)


def test_ids_are_unique_and_remove_takes_one_back() -> None:
    faults = Faults()
    first = faults.add({"type": "Fail", "code": 500})
    second = faults.add({"type": "Fail", "code": 501})
    assert first.id != second.id
    assert faults.remove(first.id) is True
    assert faults.remove(first.id) is False
    assert [f["id"] for f in faults.describe()] == [second.id]
    faults.clear()
    assert faults.describe() == [] and not faults


def test_a_bad_spec_adds_nothing() -> None:
    faults = Faults()
    with pytest.raises(errors.BadRequest):
        faults.add({"type": "Fail"})
    assert not faults and faults.describe() == []


# ----- webhooks ------------------------------------------------------------------------------------------------


def test_webhook_timeout_by_name() -> None:
    faults = Faults()
    faults.add({"type": "WebhookTimeout", "webhook": "check.example.com"})
    assert faults.webhook_times_out("check.example.com") is True
    assert faults.webhook_times_out("other.example.com") is False
    assert faults.for_request("create", "", "pods", "u") == []  # not a request fault


def test_webhook_timeout_for_every_webhook() -> None:
    faults = Faults()
    faults.add({"type": "WebhookTimeout"})
    assert faults.webhook_times_out("a.example.com") and faults.webhook_times_out("b.example.com")


def test_webhook_timeout_count_is_consumed() -> None:
    faults = Faults()
    faults.add({"type": "WebhookTimeout", "webhook": "w.example.com", "count": 1})
    assert faults.webhook_times_out("other.example.com") is False  # not counted
    assert faults.webhook_times_out("w.example.com") is True
    assert faults.webhook_times_out("w.example.com") is False
    assert not faults


def test_no_webhook_times_out_without_such_a_fault() -> None:
    faults = Faults()
    faults.add({"type": "Fail", "code": 500})
    assert faults.webhook_times_out("w.example.com") is False


# ----- a paused storage ----------------------------------------------------------------------------------------


async def test_resumed_returns_at_once_when_not_paused() -> None:
    faults = Faults()
    assert not faults.paused
    await asyncio.wait_for(faults.resumed(), 1)


async def test_a_waiter_resumes_when_the_pause_is_removed() -> None:
    faults = Faults()
    pause = faults.add({"type": "PauseStorage"})
    other = faults.add({"type": "Fail", "code": 500})
    assert faults.paused
    waiter = asyncio.create_task(faults.resumed())
    await asyncio.sleep(0.05)
    assert not waiter.done()
    faults.remove(other.id)  # still paused
    await asyncio.sleep(0.05)
    assert not waiter.done()
    faults.remove(pause.id)
    await asyncio.wait_for(waiter, 1)
    assert not faults.paused


async def test_every_waiter_resumes_when_the_faults_are_cleared() -> None:
    faults = Faults()
    faults.add({"type": "PauseStorage"})
    waiters = [asyncio.create_task(faults.resumed()) for _ in range(3)]
    await asyncio.sleep(0.05)
    assert not any(w.done() for w in waiters)
    faults.clear()
    await asyncio.wait_for(asyncio.gather(*waiters), 1)


async def test_two_pauses_need_both_removed() -> None:
    faults = Faults()
    first = faults.add({"type": "PauseStorage"})
    second = faults.add({"type": "PauseStorage"})
    waiter = asyncio.create_task(faults.resumed())
    await asyncio.sleep(0.02)
    faults.remove(first.id)
    await asyncio.sleep(0.05)
    assert not waiter.done() and faults.paused
    faults.remove(second.id)
    await asyncio.wait_for(waiter, 1)


async def test_pausing_again_makes_a_new_waiter_wait() -> None:
    faults = Faults()
    pause = faults.add({"type": "PauseStorage"})
    first = asyncio.create_task(faults.resumed())
    await asyncio.sleep(0.02)
    faults.remove(pause.id)
    await asyncio.wait_for(first, 1)
    faults.add({"type": "PauseStorage"})
    second = asyncio.create_task(faults.resumed())
    await asyncio.sleep(0.05)
    assert not second.done()
    faults.clear()
    await asyncio.wait_for(second, 1)


# ----- the Status a fault answers with -------------------------------------------------------------------------


def test_a_conflict_answers_as_kube_does() -> None:
    fault = parse_fault({"type": "Conflict"}, "f")
    error = fault.error("", "configmaps", "cm1")
    assert isinstance(error, errors.Conflict)
    assert (error.code, error.reason) == (409, "Conflict")
    assert error.message == ('Operation cannot be fulfilled on configmaps "cm1": the object has been modified; '
                             "please apply your changes to the latest version and try again")
    status = error.to_status()
    assert status["details"] == {"name": "cm1", "kind": "configmaps"}
    grouped = fault.error("apps", "deployments", "web")
    assert grouped.message.startswith('Operation cannot be fulfilled on deployments.apps "web": ')


def test_a_conflict_with_a_message_uses_it() -> None:
    error = parse_fault({"type": "Conflict", "message": "try later"}, "f").error("", "secrets", "s")
    assert error.message == 'Operation cannot be fulfilled on secrets "s": try later'


@pytest.mark.parametrize("code, reason, retry_after", [
    (400, "BadRequest", None), (403, "Forbidden", None), (404, "NotFound", None), (409, "Conflict", None),
    (422, "Invalid", None), (429, "TooManyRequests", 1), (500, "InternalError", None),
    (503, "ServiceUnavailable", 1), (504, "Timeout", 1), (418, "Unknown", None), (599, "Unknown", None),
])
def test_a_fail_answers_its_code(code: int, reason: str, retry_after: int | None) -> None:
    error = parse_fault({"type": "Fail", "code": code}, "fault-3").error("", "configmaps", "x")
    assert (error.code, error.reason, error.retry_after) == (code, reason, retry_after)
    status = error.to_status()
    assert (status["code"], status["reason"]) == (code, reason)
    assert "fault-3" in status["message"]
    if retry_after is not None:
        assert status["details"]["retryAfterSeconds"] == retry_after


def test_a_fail_503_says_when_to_retry() -> None:
    error = parse_fault({"type": "Fail", "code": 503, "message": "etcd is away"}, "f").error("", "pods", "p")
    assert error.retry_after == 1 and error.message == "etcd is away"
    assert error.to_status()["details"] == {"retryAfterSeconds": 1}
