"""kube's field-manager rules that the recorded SSA cases do not reach: the Update-manager cap, entries of
versions no longer served, what kubectl may take over from a client-side apply, and bad managedFields."""
from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from kapi.api import errors
from kapi.registry.field_manager import LAST_APPLIED, FieldManager, manager_from
from kapi.registry.managed_fields import ANCIENT, MAX_UPDATE_MANAGERS
from kapi.scheme import catalogue

CONFIGMAPS = FieldManager(catalogue.builtin("", "configmaps"))


def cm(**data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c", "namespace": "default"},
            "data": data}


def managers(obj: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["manager"], e["operation"]) for e in obj["metadata"].get("managedFields", [])]


def updated(live: dict[str, Any] | None, new: dict[str, Any], manager: str) -> dict[str, Any]:
    asyncio.run(CONFIGMAPS.update(live, new, "v1", manager))
    return new


def test_more_than_ten_update_managers_fold_the_oldest_into_ancient_changes() -> None:
    """capmanagers.go: at most 10 Update entries; the oldest merge into one `ancient-changes` per version."""
    obj = updated(None, cm(k0="v"), "m0")
    for i in range(1, MAX_UPDATE_MANAGERS + 3):
        new = copy.deepcopy(obj)
        new["data"][f"k{i}"] = "v"
        obj = updated(obj, new, f"m{i}")
    names = [name for name, _ in managers(obj)]
    assert len(names) == MAX_UPDATE_MANAGERS and ANCIENT in names
    ancient = next(e for e in obj["metadata"]["managedFields"] if e["manager"] == ANCIENT)
    assert len(ancient["fieldsV1"]["f:data"]) >= 3  # three managers' fields in one bucket


def test_a_manager_of_a_version_no_longer_served_is_dropped() -> None:
    obj = updated(None, cm(a="1"), "m1")
    obj["metadata"]["managedFields"][0]["apiVersion"] = "v0"
    new = copy.deepcopy(obj)
    new["data"]["b"] = "2"
    assert managers(updated(obj, new, "m2")) == [("m2", "Update")]


def test_requested_managed_fields_that_cannot_be_read_fall_back_to_the_stored_ones() -> None:
    obj = updated(None, cm(a="1"), "m1")
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = [{"manager": "x", "operation": "Delete", "apiVersion": "v1"}]
    new["data"]["a"] = "2"
    result = updated(obj, new, "m2")
    assert sorted(managers(result)) == [("m1", "Update"), ("m2", "Update")]  # m1 keeps the data map itself
    assert [e["fieldsV1"] for e in result["metadata"]["managedFields"]] == [{"f:data": {}},
                                                                           {"f:data": {"f:a": {}}}]


def test_writing_empty_managed_fields_stops_tracking_until_the_next_apply() -> None:
    obj = updated(None, cm(a="1"), "m1")
    new = copy.deepcopy(obj)
    new["metadata"]["managedFields"] = []
    obj = updated(obj, new, "m2")
    assert "managedFields" not in obj["metadata"]
    new = copy.deepcopy(obj)
    new["data"]["a"] = "3"
    assert "managedFields" not in updated(obj, new, "m3")["metadata"]
    applied = asyncio.run(CONFIGMAPS.apply(obj, cm(a="4"), "v1", "ap", force=True))
    assert sorted(managers(applied)) == [("ap", "Apply"), ("before-first-apply", "Update")]


def test_kubectl_takes_over_the_fields_of_its_client_side_apply() -> None:
    """lastappliedmanager.go: conflicts on fields the last-applied annotation set are forced for `kubectl`
    only, and the annotation follows the new configuration (lastappliedupdater.go)."""
    live = cm(a="1")
    live["metadata"]["annotations"] = {LAST_APPLIED: '{"apiVersion":"v1","data":{"a":"1"},"kind":"ConfigMap",'
                                                      '"metadata":{"name":"c","namespace":"default"}}\n'}
    live = updated(None, live, "kubectl-client-side-apply")
    with pytest.raises(errors.Conflict, match='conflict with "kubectl-client-side-apply" using v1: .data.a'):
        asyncio.run(CONFIGMAPS.apply(live, cm(a="2"), "v1", "someone-else", force=False))
    taken = asyncio.run(CONFIGMAPS.apply(live, cm(a="2"), "v1", "kubectl", force=False))
    assert taken["data"] == {"a": "2"}
    assert ("kubectl", "Apply") in managers(taken)
    assert '"a":"2"' in taken["metadata"]["annotations"][LAST_APPLIED]


@pytest.mark.parametrize("field_manager, agent, manager", [
    ("mine", "kubectl/v1.32.0 (linux/amd64)", "mine"),
    ("", "kubectl/v1.32.0 (linux/amd64)", "kubectl"),
    ("", "OpenAPI-Generator/31.0.0/python", "OpenAPI-Generator"),
    ("", "tab\there/1", "tabhere"),
    ("", "x" * 200, "x" * 128),
])
def test_the_manager_comes_from_the_field_manager_or_the_user_agent(field_manager: str, agent: str,
                                                                    manager: str) -> None:
    assert manager_from(field_manager, agent) == manager


def test_the_zero_value_an_apply_creates_from_stays_untouched() -> None:
    deployments = FieldManager(catalogue.builtin("apps", "deployments"))
    before = copy.deepcopy(deployments.empty("v1"))
    config = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
              "spec": {"template": {"spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    created = asyncio.run(deployments.apply(None, config, "v1", "m", force=False))
    created["spec"]["template"]["metadata"]["labels"] = {"changed": "later"}  # as the create path would
    assert deployments.empty("v1") == before
