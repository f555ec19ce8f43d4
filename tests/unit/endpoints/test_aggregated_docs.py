"""Discovery and OpenAPI with APIService backends merged in, against the real kube-apiserver's answers.

The reference (`tests/data/aggregation/reference.json`) kept, for `/apis` (legacy and aggregated), the
wardle.example.com entry and the order of the group names; `/apis/wardle.example.com` whole; and the
backend's own APIResourceList (`discovery_version_wardle_available_stub`) next to what aggregated discovery
made of it. The local documents here are stand-ins with the reference's built-in groups in its order.
"""
from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from kapi.endpoints.aggregated_docs import (
    discovery_resources,
    merged_aggregated,
    merged_group,
    merged_group_list,
    merged_openapi_v2,
    merged_openapi_v3_index,
)
from kapi.registry.aggregated import AggregatedApis, Backend

Object = dict[str, Any]
REFERENCE: dict[str, Object] = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "aggregation" / "reference.json").read_text())
WARDLE = "wardle.example.com"
# /apis in the reference, wardle being the only group not served by kube-apiserver itself
GROUP_ORDER: list[str] = REFERENCE["legacy_apis_wardle_entry_service_not_found"]["groupOrder"]
BUILTIN_GROUPS = [g for g in GROUP_ORDER if g != WARDLE]
BUILTIN_VERSIONS = {"autoscaling": ["v2", "v1"]}


def reference(case: str) -> Object:
    return copy.deepcopy(REFERENCE[case])


def is_builtin(group: str) -> bool:
    return group in BUILTIN_GROUPS


def versions_of(group: str) -> list[str]:
    return BUILTIN_VERSIONS.get(group, ["v1"])


def group_list(extra: list[tuple[str, list[str]]] = ()) -> Object:  # type: ignore[assignment]
    """A local `/apis`: the reference's built-in groups in its order, then `extra` (CRD-like) groups."""
    groups = [(g, versions_of(g)) for g in BUILTIN_GROUPS] + list(extra)
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [
        {"name": g, "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
         "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]}} for g, vs in groups]}


def discovery_list(extra: list[tuple[str, list[str]]] = ()) -> Object:  # type: ignore[assignment]
    groups = [(g, versions_of(g)) for g in BUILTIN_GROUPS] + list(extra)
    return {"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": [
        {"metadata": {"name": g}, "versions": [{"version": v, "resources": [], "freshness": "Current"} for v in vs]}
        for g, vs in groups]}


def backend(version: str = "v1alpha1", group: str = WARDLE, gpm: int = 1000, vp: int = 15, **kw: Any) -> Backend:
    return Backend(f"{version}.{group}", group, version, gpm, vp, url="https://localhost:8443", **kw)


def table(*backends: Backend) -> AggregatedApis:
    apis = AggregatedApis()
    for b in backends:
        apis.put(b)
    return apis


def names(doc: Object) -> list[str]:
    return [g["name"] for g in doc["groups"]]


def entry(doc: Object, group: str) -> Object:
    [found] = [g for g in doc["groups"] if g["name"] == group]
    return found


def item(doc: Object, group: str) -> Object:
    [found] = [i for i in doc["items"] if i["metadata"].get("name") == group]
    return found


STUB_RESOURCES = REFERENCE["discovery_version_wardle_available_stub"]["response"]  # the backend's APIResourceList


# --- /apis -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["service_not_found", "endpoints_not_found", "failed_discovery_check_404",
                                   "externalname_refused"])
def test_an_unavailable_remote_group_is_listed_after_the_builtin_ones(state: str) -> None:
    merged = merged_group_list(group_list(), is_builtin, table(backend()))
    assert names(merged) == GROUP_ORDER
    assert entry(merged, WARDLE) == reference(f"legacy_apis_wardle_entry_{state}")["wardleEntry"]
    assert merged["kind"] == "APIGroupList" and merged["apiVersion"] == "v1"


def test_an_available_remote_group_is_listed_the_same() -> None:
    merged = merged_group_list(group_list(), is_builtin, table(backend(available=True, resources=STUB_RESOURCES)))
    assert entry(merged, WARDLE) == reference("legacy_apis_wardle_entry_available_stub")["wardleEntry"]


def test_final_state_versions_by_version_priority() -> None:
    """v1alpha1 (vp 15) before v1beta1 (vp 10), whatever order the table holds them in. foo.example.com and
    nothere.example.com stand in for the reference's local groups at priority 1000 (served here as by CRDs)."""
    recorded = reference("legacy_apis_example_groups_final")
    local = group_list([("foo.example.com", ["v1"]), ("nothere.example.com", ["v1"])])
    merged = merged_group_list(local, is_builtin, table(backend("v1beta1", vp=10), backend("v1alpha1", vp=15)))
    assert names(merged) == recorded["groupOrder"]
    assert [g for g in merged["groups"] if "example" in g["name"]] == recorded["exampleGroups"]


def test_versions_are_ordered_by_version_priority() -> None:
    apis = table(backend("v1", vp=5), backend("v2", vp=20), backend("v1beta1", vp=10))
    wardle = entry(merged_group_list(group_list(), is_builtin, apis), WARDLE)
    assert [v["version"] for v in wardle["versions"]] == ["v2", "v1beta1", "v1"]
    assert wardle["preferredVersion"] == {"groupVersion": f"{WARDLE}/v2", "version": "v2"}


def test_remote_groups_are_placed_by_group_priority_minimum() -> None:
    """Built-in groups first in their own order; a remote group above 1000 before the local CRD-like groups
    (which count as 1000), one below after them; remote groups among themselves by priority."""
    local = group_list([("crd-a.example.com", ["v1"]), ("crd-b.example.com", ["v1"])])
    apis = table(backend("v1", "low.example.com", gpm=900), backend("v1", "high.example.com", gpm=1500),
                 backend("v1", "higher.example.com", gpm=2000))
    order = names(merged_group_list(local, is_builtin, apis))
    assert order[:len(BUILTIN_GROUPS)] == BUILTIN_GROUPS
    assert order[len(BUILTIN_GROUPS):] == ["higher.example.com", "high.example.com", "crd-a.example.com",
                                           "crd-b.example.com", "low.example.com"]


def test_a_group_served_locally_and_remotely_is_listed_once() -> None:
    local = group_list([(WARDLE, ["v1"])])
    merged = merged_group_list(local, is_builtin, table(backend("v1alpha1", vp=15), backend("v2", vp=200)))
    assert names(merged).count(WARDLE) == 1
    assert [v["version"] for v in entry(merged, WARDLE)["versions"]] == ["v2", "v1", "v1alpha1"]


def test_without_backends_the_list_is_unchanged() -> None:
    local = group_list([("crd.example.com", ["v1"])])
    assert merged_group_list(local, is_builtin, table()) == local


# --- /apis/<group> --------------------------------------------------------------------------------

@pytest.mark.parametrize("state", ["service_not_found", "endpoints_not_found", "failed_discovery_check_404",
                                   "externalname_refused", "available_stub"])
def test_a_remote_only_group_is_answered_by_the_aggregator(state: str) -> None:
    apis = table(backend(available=state == "available_stub"))
    assert merged_group(None, WARDLE, False, apis) == reference(f"discovery_group_wardle_{state}")["response"]


def test_a_group_served_locally_and_remotely() -> None:
    local = {"kind": "APIGroup", "apiVersion": "v1", **entry(group_list([(WARDLE, ["v1", "v1beta1"])]), WARDLE)}
    merged = merged_group(local, WARDLE, False, table(backend("v1alpha1", vp=15)))
    assert merged == {"kind": "APIGroup", "apiVersion": "v1", "name": WARDLE, "versions": [
        {"groupVersion": f"{WARDLE}/v1", "version": "v1"},
        {"groupVersion": f"{WARDLE}/v1beta1", "version": "v1beta1"},
        {"groupVersion": f"{WARDLE}/v1alpha1", "version": "v1alpha1"}],
        "preferredVersion": {"groupVersion": f"{WARDLE}/v1", "version": "v1"}}
    preferred = merged_group(local, WARDLE, False, table(backend("v2", vp=500)))
    assert preferred is not None and preferred["preferredVersion"]["version"] == "v2"


def test_a_group_no_backend_serves_is_left_alone() -> None:
    apis = table(backend())
    local = {"kind": "APIGroup", "apiVersion": "v1", **entry(group_list(), "apps")}
    assert merged_group(local, "apps", True, apis) == local
    assert merged_group(None, "nothing.example.com", False, apis) is None


# --- aggregated discovery -----------------------------------------------------------------------------

def test_an_available_backend_is_current_with_its_resources() -> None:
    apis = table(backend(available=True, resources=STUB_RESOURCES))
    merged = merged_aggregated(discovery_list(), is_builtin, apis)
    assert item(merged, WARDLE) == reference("aggregated_discovery_wardle_entry_available_stub")["wardleEntry"]
    assert [i["metadata"]["name"] for i in merged["items"]] == GROUP_ORDER


@pytest.mark.parametrize("state", ["service_not_found", "endpoints_not_found", "failed_discovery_check_404",
                                   "externalname_refused"])
def test_an_unavailable_backend_is_stale_without_resources(state: str) -> None:
    merged = merged_aggregated(discovery_list(), is_builtin, table(backend()))
    assert item(merged, WARDLE) == reference(f"aggregated_discovery_wardle_entry_{state}")["wardleEntry"]
    assert [i["metadata"]["name"] for i in merged["items"]] == GROUP_ORDER


def test_a_backend_that_went_down_is_stale_even_with_old_resources() -> None:
    """The table keeps the last resources of a backend that failed its check; discovery must not show them."""
    merged = merged_aggregated(discovery_list(), is_builtin, table(backend(available=False, resources=STUB_RESOURCES)))
    assert item(merged, WARDLE)["versions"] == [{"version": "v1alpha1", "freshness": "Stale"}]


def test_final_state_aggregated() -> None:
    recorded = reference("aggregated_discovery_example_groups_final")
    merged = merged_aggregated(discovery_list(), is_builtin, table(backend("v1beta1", vp=10), backend("v1alpha1")))
    assert [i["metadata"]["name"] for i in merged["items"]] == recorded["groupOrder"]
    assert [i for i in merged["items"] if "example" in i["metadata"]["name"]] == recorded["exampleGroups"]


def test_local_versions_stay_as_served_next_to_remote_ones() -> None:
    local_version = {"version": "v1", "resources": [{"resource": "widgets"}], "freshness": "Current"}
    local = discovery_list()
    local["items"].append({"metadata": {"name": WARDLE}, "versions": [local_version]})
    merged = merged_aggregated(local, is_builtin, table(backend("v1alpha1", vp=15)))
    assert item(merged, WARDLE)["versions"] == [local_version, {"version": "v1alpha1", "freshness": "Stale"}]


def test_discovery_resources_of_a_resource_list() -> None:
    """kube's conversion: scope from namespaced, responseKind from the entry's own group/version (empty when
    the backend leaves them out), subresources under their resource, shortNames and categories kept."""
    resources = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{WARDLE}/v1alpha1", "resources": [
        {"name": "fischers", "singularName": "fischer", "namespaced": False, "kind": "Fischer",
         "verbs": ["get", "list"], "shortNames": ["fi"], "categories": ["all"]},
        {"name": "fischers/status", "singularName": "", "namespaced": False, "kind": "Fischer",
         "verbs": ["get", "patch", "update"]},
        {"name": "fischers/scale", "singularName": "", "namespaced": False, "kind": "Scale",
         "group": "autoscaling", "version": "v1", "verbs": ["get", "update"]},
    ]}
    assert discovery_resources(resources) == [{
        "resource": "fischers", "responseKind": {"group": "", "version": "", "kind": "Fischer"},
        "scope": "Cluster", "singularResource": "fischer", "verbs": ["get", "list"],
        "shortNames": ["fi"], "categories": ["all"],
        "subresources": [
            {"subresource": "status", "responseKind": {"group": "", "version": "", "kind": "Fischer"},
             "verbs": ["get", "patch", "update"]},
            {"subresource": "scale", "responseKind": {"group": "autoscaling", "version": "v1", "kind": "Scale"},
             "verbs": ["get", "update"]},
        ],
    }]
    expected_stub = reference("aggregated_discovery_wardle_entry_available_stub")["wardleEntry"]["versions"][0]
    assert discovery_resources(STUB_RESOURCES) == expected_stub["resources"]


# --- OpenAPI ----------------------------------------------------------------------------------------------

LOCAL_POD = {"type": "object", "description": "the local Pod"}
FLUNDER = {"type": "object", "description": "Flunder"}
WARDLE_V2 = {
    "swagger": "2.0",
    "paths": {
        "/apis/wardle.example.com/v1alpha1/": {"get": {"operationId": "getWardleV1alpha1APIResources"}},
        "/apis/wardle.example.com/v1alpha1/namespaces/{namespace}/flunders": {
            "get": {"operationId": "listWardleV1alpha1NamespacedFlunder"}},
        "/apis/other.example.com/v1/things": {"get": {"operationId": "listOtherV1Thing"}},
        "/api/v1/pods": {"get": {"operationId": "theBackendsOwnPods"}},
    },
    "definitions": {"com.example.wardle.v1alpha1.Flunder": FLUNDER,
                    "io.k8s.api.core.v1.Pod": {"type": "object", "description": "the backend's Pod"}},
}


def local_v2() -> Object:
    return {"swagger": "2.0", "info": {"title": "Kubernetes", "version": "v1.32.0"},
            "paths": {"/api/v1/pods": {"get": {"operationId": "listCoreV1PodForAllNamespaces"}}},
            "definitions": {"io.k8s.api.core.v1.Pod": LOCAL_POD}}


def test_openapi_v2_takes_the_backends_group_version_paths_and_new_definitions() -> None:
    merged = merged_openapi_v2(local_v2(), table(backend(available=True, openapi_v2=WARDLE_V2)))
    assert merged["info"] == local_v2()["info"]
    assert merged["paths"] == {
        "/api/v1/pods": {"get": {"operationId": "listCoreV1PodForAllNamespaces"}},
        "/apis/wardle.example.com/v1alpha1/": {"get": {"operationId": "getWardleV1alpha1APIResources"}},
        "/apis/wardle.example.com/v1alpha1/namespaces/{namespace}/flunders": {
            "get": {"operationId": "listWardleV1alpha1NamespacedFlunder"}},
    }
    assert merged["definitions"] == {"io.k8s.api.core.v1.Pod": LOCAL_POD, "com.example.wardle.v1alpha1.Flunder": FLUNDER}


def test_openapi_v2_without_a_fetched_document_is_the_local_one() -> None:
    assert merged_openapi_v2(local_v2(), table(backend())) == local_v2()


def test_openapi_v2_does_not_change_its_inputs() -> None:
    local, theirs = local_v2(), copy.deepcopy(WARDLE_V2)
    merged_openapi_v2(local, table(backend(openapi_v2=theirs)))
    assert local == local_v2() and theirs == WARDLE_V2


def test_openapi_v3_index_lists_each_backend_document_by_its_hash() -> None:
    document = json.dumps({"openapi": "3.0.0", "info": {"title": "wardle"}, "paths": {}}).encode()
    local = {"paths": {"apis/apiregistration.k8s.io/v1": {
        "serverRelativeURL": "/openapi/v3/apis/apiregistration.k8s.io/v1?hash=ABC"}}}
    merged = merged_openapi_v3_index(local, table(backend(available=True, openapi_v3=document),
                                                  backend("v1beta1", vp=10)))
    digest = hashlib.sha512(document).hexdigest().upper()
    assert merged == {"paths": {
        "apis/apiregistration.k8s.io/v1": {"serverRelativeURL": "/openapi/v3/apis/apiregistration.k8s.io/v1?hash=ABC"},
        "apis/wardle.example.com/v1alpha1": {
            "serverRelativeURL": f"/openapi/v3/apis/wardle.example.com/v1alpha1?hash={digest}"},
    }}
    # the reference's form: 128 upper-case hex digits after ?hash=
    url = merged["paths"]["apis/wardle.example.com/v1alpha1"]["serverRelativeURL"]
    recorded = reference("openapi_v3_index_apiregistration")["response_excerpt"]["paths"]
    assert recorded["apis/apiregistration.k8s.io/v1"]["serverRelativeURL"].endswith("?hash=<sha512-hex>")
    assert re.fullmatch(r"/openapi/v3/apis/wardle\.example\.com/v1alpha1\?hash=[0-9A-F]{128}", url)
