"""Server-side apply and dryRun=All through the real Python `kubernetes` client.

Operators written in Python apply with `DynamicClient(...).resources.get(...).server_side_apply(...)`
and preview with `dry_run="All"` on the typed CoreV1Api; both must behave as on kube-apiserver. Every
expectation here (status codes, Status bodies, the client's default manager `OpenAPI-Generator`)
was first observed with the same client against a real kube-apiserver. The tests take an ApiClient
(`api`), a DynamicClient (`dyn`) and a namespace, so that a scratch script can run them there too.
"""
from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from kubernetes.client import ApiClient, Configuration, CoreV1Api, V1ConfigMap, V1Namespace, V1ObjectMeta
from kubernetes.client.rest import ApiException
from kubernetes.dynamic import DynamicClient

APPLY = "application/apply-patch+yaml"


@pytest.fixture(scope="module")
def api(kapi: Any) -> Iterator[ApiClient]:
    with ApiClient(Configuration(host=kapi.url)) as client:
        yield client


@pytest.fixture(scope="module")
def dyn(api: ApiClient, tmp_path_factory: pytest.TempPathFactory) -> DynamicClient:
    """Its discovery cache in a directory of its own: never a stale file from another server on the same port."""
    return DynamicClient(api, cache_file=str(Path(tmp_path_factory.mktemp("dynamic")) / "discovery.json"))


@pytest.fixture
def ns(api: ApiClient) -> str:
    return new_namespace(api)


def new_namespace(api: ApiClient) -> str:
    name = f"e2e-py-{uuid.uuid4().hex[:6]}"
    CoreV1Api(api).create_namespace(V1Namespace(metadata=V1ObjectMeta(name=name)))
    return name


def configmap(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": data}


def typed(data: dict[str, str] | None = None, name: str | None = None, generate_name: str | None = None,
          resource_version: str | None = None) -> V1ConfigMap:
    """A request body for the typed API (it accepts dicts too, but is annotated with its models)."""
    meta = V1ObjectMeta(name=name, generate_name=generate_name, resource_version=resource_version)
    return V1ConfigMap(api_version="v1", kind="ConfigMap", metadata=meta, data=data)


def owners(obj: dict[str, Any]) -> dict[str, tuple[str, dict[str, Any]]]:
    """(operation, fieldsV1) by manager, from an object as plain JSON."""
    return {e["manager"]: (e["operation"], e["fieldsV1"]) for e in obj["metadata"].get("managedFields") or []}


def plain(api: ApiClient, obj: Any) -> dict[str, Any]:
    """A typed answer as the JSON kube served (camelCase keys)."""
    return dict(api.sanitize_for_serialization(obj))


def read(api: ApiClient, ns: str, name: str) -> dict[str, Any]:
    return plain(api, CoreV1Api(api).read_namespaced_config_map(name, ns))


def status_of(exc: ApiException) -> dict[str, Any]:
    return dict(json.loads(exc.body or "{}"))


# ---------------------------------------------------------------- server-side apply

def test_dynamic_server_side_apply_creates_then_updates(dyn: DynamicClient, ns: str) -> None:
    """The first apply creates, the next updates; the manager owns exactly the applied keys."""
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    created = cms.server_side_apply(body=configmap(ns, "p", {"a": "1"}), field_manager="py", namespace=ns).to_dict()
    assert created["data"] == {"a": "1"}
    assert owners(created) == {"py": ("Apply", {"f:data": {"f:a": {}}})}
    updated = cms.server_side_apply(body=configmap(ns, "p", {"a": "2", "b": "3"}), field_manager="py",
                                    namespace=ns).to_dict()
    assert updated["data"] == {"a": "2", "b": "3"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert updated["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    assert owners(updated) == {"py": ("Apply", {"f:data": {"f:a": {}, "f:b": {}}})}
    assert cms.get(name="p", namespace=ns).to_dict()["data"] == {"a": "2", "b": "3"}


def test_conflict_is_a_409_listing_the_field_and_manager_until_forced(dyn: DynamicClient, ns: str) -> None:
    """The Status names each conflicting field as a FieldManagerConflict cause; force_conflicts=True takes it."""
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.server_side_apply(body=configmap(ns, "p", {"a": "1", "b": "2"}), field_manager="py", namespace=ns)
    theirs = configmap(ns, "p", {"a": "3", "b": "2"})
    with pytest.raises(ApiException) as caught:
        cms.server_side_apply(body=theirs, field_manager="other", namespace=ns)
    assert (caught.value.status, caught.value.reason) == (409, "Conflict")
    assert status_of(caught.value) == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'Apply failed with 1 conflict: conflict with "py": .data.a', "reason": "Conflict",
        "details": {"causes": [{"reason": "FieldManagerConflict", "message": 'conflict with "py"',
                                "field": ".data.a"}]},
        "code": 409}
    assert cms.get(name="p", namespace=ns).to_dict()["data"] == {"a": "1", "b": "2"}

    forced = cms.server_side_apply(body=theirs, field_manager="other", namespace=ns, force_conflicts=True).to_dict()
    assert forced["data"] == {"a": "3", "b": "2"}
    assert owners(forced) == {"py": ("Apply", {"f:data": {"f:b": {}}}),
                              "other": ("Apply", {"f:data": {"f:a": {}, "f:b": {}}})}


def test_apply_needs_a_field_manager_and_force_needs_apply(api: ApiClient, dyn: DynamicClient, ns: str) -> None:
    """Both mistakes are 422s about PatchOptions, in kube's words."""
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    with pytest.raises(ApiException) as caught:
        cms.server_side_apply(body=configmap(ns, "p", {"a": "1"}), namespace=ns)
    assert caught.value.status == 422
    assert status_of(caught.value)["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch')
    cms.server_side_apply(body=configmap(ns, "p", {"a": "1"}), field_manager="py", namespace=ns)
    with pytest.raises(ApiException) as caught:
        CoreV1Api(api).patch_namespaced_config_map("p", ns, {"data": {"a": "m"}}, force=True)
    assert caught.value.status == 422
    assert status_of(caught.value)["details"]["causes"] == [{
        "reason": "FieldValueForbidden", "message": "Forbidden: may not be specified for non-apply patch",
        "field": "force"}]


def test_typed_client_applies_with_the_apply_content_type(api: ApiClient, ns: str) -> None:
    """CoreV1Api's patch with `_content_type` apply-patch is server-side apply too."""
    core = CoreV1Api(api)
    core.patch_namespaced_config_map("t", ns, configmap(ns, "t", {"a": "1"}), field_manager="typed",
                                     _content_type=APPLY)
    core.patch_namespaced_config_map("t", ns, configmap(ns, "t", {"a": "2"}), field_manager="typed",
                                     _content_type=APPLY)
    obj = read(api, ns, "t")
    assert obj["data"] == {"a": "2"}
    assert owners(obj) == {"typed": ("Apply", {"f:data": {"f:a": {}}})}
    with pytest.raises(ApiException) as caught:
        core.patch_namespaced_config_map("t", ns, configmap(ns, "t", {"a": "3"}), field_manager="rival",
                                         _content_type=APPLY)
    assert caught.value.status == 409
    core.patch_namespaced_config_map("t", ns, configmap(ns, "t", {"a": "3"}), field_manager="rival",
                                     _content_type=APPLY, force=True)
    assert read(api, ns, "t")["data"] == {"a": "3"}


# ---------------------------------------------------------------- dryRun=All

def test_dry_run_create_returns_the_object_and_stores_nothing(api: ApiClient, ns: str) -> None:
    """The answer is what would be stored (uid, managedFields, a generated name) minus a resourceVersion."""
    core = CoreV1Api(api)
    made = plain(api, core.create_namespaced_config_map(ns, typed({"x": "y"}, name="dry"), dry_run="All"))
    assert made["data"] == {"x": "y"} and made["metadata"]["uid"] and made["metadata"]["creationTimestamp"]
    assert "resourceVersion" not in made["metadata"]
    assert owners(made) == {"OpenAPI-Generator": ("Update", {"f:data": {".": {}, "f:x": {}}})}
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("dry", ns)
    assert caught.value.status == 404

    generated = plain(api, core.create_namespaced_config_map(ns, typed(generate_name="gen-"), dry_run="All"))
    assert generated["metadata"]["name"].startswith("gen-") and len(generated["metadata"]["name"]) == 9
    stored = {c["metadata"]["name"] for c in plain(api, core.list_namespaced_config_map(ns))["items"]}
    assert "dry" not in stored and not [name for name in stored if name.startswith("gen-")]

    with pytest.raises(ApiException) as caught:
        core.create_namespaced_config_map(ns, typed(name="bogus"), dry_run="Bogus")
    assert caught.value.status == 422
    assert status_of(caught.value)["message"] == (
        'CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ["Bogus"]: supported values: "All"')
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("bogus", ns)
    assert caught.value.status == 404


def test_dry_run_patch_replace_and_apply_change_nothing(api: ApiClient, dyn: DynamicClient, ns: str) -> None:
    """Each answers with the would-be object at the unchanged resourceVersion; conflicts are still reported."""
    core = CoreV1Api(api)
    cms = dyn.resources.get(api_version="v1", kind="ConfigMap")
    cms.server_side_apply(body=configmap(ns, "p", {"a": "1"}), field_manager="py", namespace=ns)
    before = read(api, ns, "p")
    rv = before["metadata"]["resourceVersion"]

    patched = plain(api, core.patch_namespaced_config_map("p", ns, {"data": {"a": "patched"}}, dry_run="All"))
    assert (patched["data"], patched["metadata"]["resourceVersion"]) == ({"a": "patched"}, rv)
    # a non-apply write takes the field: the would-be object has lost py's now empty entry
    assert owners(patched) == {"OpenAPI-Generator": ("Update", {"f:data": {"f:a": {}}})}
    replaced = plain(api, core.replace_namespaced_config_map(
        "p", ns, typed({"a": "replaced"}, name="p", resource_version=rv), dry_run="All"))
    assert (replaced["data"], replaced["metadata"]["resourceVersion"]) == ({"a": "replaced"}, rv)
    applied = cms.server_side_apply(body=configmap(ns, "p", {"a": "applied"}), field_manager="py", namespace=ns,
                                    dry_run="All").to_dict()
    assert (applied["data"], applied["metadata"]["resourceVersion"]) == ({"a": "applied"}, rv)

    with pytest.raises(ApiException) as caught:
        cms.server_side_apply(body=configmap(ns, "p", {"a": "x"}), field_manager="x", namespace=ns, dry_run="All")
    assert caught.value.status == 409
    assert status_of(caught.value)["message"] == 'Apply failed with 1 conflict: conflict with "py": .data.a'
    forced = cms.server_side_apply(body=configmap(ns, "p", {"a": "x"}), field_manager="x", namespace=ns,
                                   dry_run="All", force_conflicts=True).to_dict()
    assert owners(forced) == {"x": ("Apply", {"f:data": {"f:a": {}}})}

    assert read(api, ns, "p") == before


def test_dry_run_delete_answers_success_and_deletes_nothing(api: ApiClient, ns: str) -> None:
    """The Status is the one a real delete gives; the object stays, and a missing one is still a 404."""
    core = CoreV1Api(api)
    core.create_namespaced_config_map(ns, typed({"a": "1"}, name="p"))
    before = read(api, ns, "p")
    answer = core.delete_namespaced_config_map("p", ns, dry_run="All")
    assert answer == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                      "details": {"name": "p", "kind": "configmaps", "uid": before["metadata"]["uid"]}}
    assert read(api, ns, "p") == before
    with pytest.raises(ApiException) as caught:
        core.delete_namespaced_config_map("nope", ns, dry_run="All")
    assert caught.value.status == 404
    assert status_of(caught.value)["message"] == 'configmaps "nope" not found'

    assert core.delete_namespaced_config_map("p", ns) == answer  # the real one, for comparison
    with pytest.raises(ApiException) as caught:
        core.read_namespaced_config_map("p", ns)
    assert caught.value.status == 404
