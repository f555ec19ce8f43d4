"""APIService validation and create-time status, against the real kube-apiserver's answers.

Every `create_*` APIService case of `tests/data/aggregation/reference.json` (see its README): the 422
answers' causes (reason, message, field, in order) come out of `spec_causes` and out of the whole strategy
(which adds the generic metadata checks), the 201 answers have none, and a Store on memory storage answers
the same Status body and creates the same spec and status as kube did.
"""
from __future__ import annotations

import copy
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from kapi.api import errors
from kapi.registry.apiservice_strategy import APIServiceStrategy, spec_causes
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin_apiregistration import API_SERVICES
from kapi.storage.memory import MemoryStorage

Object = dict[str, Any]

REFERENCE: dict[str, Object] = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "aggregation" / "reference.json").read_text())

# `create_*` cases that POST APIServices (the others create the Service and EndpointSlice of the scenario).
CREATES = {name: case for name, case in REFERENCE.items()
           if name.startswith("create_") and case["path"] == "/apis/apiregistration.k8s.io/v1/apiservices"}
INVALID = sorted(name for name, case in CREATES.items() if case["status"] == 422)
VALID = sorted(name for name, case in CREATES.items() if case["status"] == 201)

LOCAL_CONDITION = {"type": "Available", "status": "True", "reason": "Local",
                   "message": "Local APIServices are always available"}


def recorded_causes(name: str) -> list[dict[str, str]]:
    case = CREATES[name]
    if case["status"] != 422:
        return []
    return list(case["response"]["details"]["causes"])


def body(name: str) -> Object:
    return copy.deepcopy(CREATES[name]["body"])


def strategy() -> APIServiceStrategy:
    chosen = strategy_for(API_SERVICES)
    assert isinstance(chosen, APIServiceStrategy)
    return chosen


def test_the_reference_has_the_cases_this_file_is_about() -> None:
    assert len(INVALID) == 21 and len(VALID) == 8
    assert {"create_local_v1.nothere.example.com", "create_wardle_apiservice",
            "create_version_uppercase", "create_invalid_all_priorities_0_and_name"} <= set(CREATES)


@pytest.mark.parametrize("case", INVALID)
def test_spec_causes_are_kubes_causes(case: str) -> None:
    obj = body(case)
    causes = spec_causes(obj["metadata"]["name"], obj["spec"])
    assert [c.to_dict() for c in causes] == recorded_causes(case)


@pytest.mark.parametrize("case", VALID)
def test_accepted_specs_have_no_causes(case: str) -> None:
    obj = body(case)
    assert spec_causes(obj["metadata"]["name"], obj["spec"]) == []


@pytest.mark.parametrize("case", INVALID + VALID)
def test_the_strategy_adds_no_cause_kube_does_not_give(case: str) -> None:
    """Metadata included: kube checks an APIService name as a path segment (then against version.group),
    not as a DNS subdomain, so `V1.wardle.example.com`, `v1alpha1.` and `.wardle.example.com` get no
    metadata.name error of their own."""
    causes = strategy().validate(body(case), creating=True)
    assert [c.to_dict() for c in causes] == recorded_causes(case)


@pytest.mark.parametrize("case", INVALID)
async def test_a_store_refuses_with_kubes_status(case: str) -> None:
    apiservices = Store(strategy(), MemoryStorage(), None, StoreOptions())
    with pytest.raises(errors.Invalid) as info:
        await apiservices.create("", body(case), "v1", WriteOptions())
    assert info.value.to_status() == CREATES[case]["response"]


def _without_times(status: Object) -> Object:
    out = copy.deepcopy(status)
    for condition in out.get("conditions") or ():
        condition.pop("lastTransitionTime", None)
    return out


@pytest.mark.parametrize("case", VALID)
async def test_a_store_creates_what_kube_created(case: str) -> None:
    """Same spec (the service port defaulted to 443 when left out) and same status: local ones are created
    available, remote ones with `status: {}` (the availability controller sets their condition later)."""
    apiservices = Store(strategy(), MemoryStorage(), None, StoreOptions())
    created = await apiservices.create("", body(case), "v1", WriteOptions())
    recorded = CREATES[case]["response"]
    assert created["spec"] == recorded["spec"]
    assert _without_times(created["status"]) == _without_times(recorded["status"])


def _is_rfc3339_utc(value: Any) -> bool:
    try:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")
    except (TypeError, ValueError):
        return False
    return True


def test_prepare_for_create_makes_a_local_apiservice_available() -> None:
    obj = body("create_local_v1.nothere.example.com")
    strategy().prepare_for_create(obj)
    recorded = CREATES["create_local_v1.nothere.example.com"]["response"]["status"]
    assert _without_times(obj["status"]) == _without_times(recorded) == {"conditions": [LOCAL_CONDITION]}
    assert _is_rfc3339_utc(obj["status"]["conditions"][0]["lastTransitionTime"])


def test_prepare_for_create_gives_a_remote_apiservice_an_empty_status() -> None:
    obj = body("create_wardle_apiservice")
    strategy().prepare_for_create(obj)
    assert obj["status"] == CREATES["create_wardle_apiservice"]["response"]["status"] == {}


def test_a_status_sent_with_the_create_is_not_kept() -> None:
    remote = body("create_wardle_apiservice")
    remote["status"] = {"conditions": [{"type": "Available", "status": "True", "reason": "Passed"}]}
    strategy().prepare_for_create(remote)
    assert remote["status"] == {}
    local = body("create_local_v1.nothere.example.com")
    local["status"] = {"conditions": [{"type": "Available", "status": "False", "reason": "Mine"}]}
    strategy().prepare_for_create(local)
    assert _without_times(local["status"]) == {"conditions": [LOCAL_CONDITION]}
