"""The site operator's tests, each in a cluster of its own (`kapi_cluster`): no test sees another's objects.

Every test creates the same Site name in the same namespace, which would collide in
a shared cluster. Faults come from `kapi_faults`, scoped to the test's cluster and
taken back when it ends. Runs as is, or in parallel (`pytest -n 2`, pytest-xdist):

    pytest configs/examples/kopf_cluster_per_test
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
from kopf.testing import KopfRunner
from kubernetes import client, watch

HERE = Path(__file__).parent
GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "sites"
OPERATOR = ["run", "--standalone", "--namespace", "default", str(HERE / "site_operator.py")]


def wait_for(get: Callable[[], Any], predicate: Callable[[Any], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last seen: {value}"
        time.sleep(0.05)


@pytest.fixture
def sites(kapi_cluster: Any) -> Iterator[client.CustomObjectsApi]:
    with kapi_cluster.api_client() as api:
        yield client.CustomObjectsApi(api)


def create_site(sites: client.CustomObjectsApi, name: str = "shop", domain: str = "shop.example.com") -> None:
    sites.create_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "Site", "metadata": {"name": name}, "spec": {"domain": domain}})


def provisioned(sites: client.CustomObjectsApi, name: str = "shop") -> dict[str, Any]:
    return wait_for(lambda: sites.get_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, name),
                    lambda site: site.get("status", {}).get("attempts"))


@pytest.mark.kapi_resources("crd.yaml")
def test_a_site_gets_its_config_map(kapi_cluster: Any, sites: client.CustomObjectsApi) -> None:
    with KopfRunner(OPERATOR, timeout=60) as runner:
        create_site(sites)
        site = provisioned(sites)
    assert site["status"] == {"configMap": "shop-site", "attempts": 1}
    with kapi_cluster.api_client() as api:
        config_map = client.CoreV1Api(api).read_namespaced_config_map("shop-site", "default")
    assert config_map.data == {"domain": "shop.example.com"}
    assert config_map.metadata.owner_references[0].name == "shop"
    assert runner.exception is None, runner.output


@pytest.mark.kapi_resources("crd.yaml")
def test_conflicts_are_retried(kapi_cluster: Any, kapi_faults: Any, sites: client.CustomObjectsApi) -> None:
    kapi_faults.conflict("configmaps", count=2, verbs=["create"])  # the next two ConfigMap creates get 409
    with KopfRunner(OPERATOR, timeout=60) as runner:
        create_site(sites)
        site = provisioned(sites)
    assert site["status"]["attempts"] == 3
    assert "the object has been modified" in runner.output
    assert runner.exception is None, runner.output


@pytest.mark.kapi_resources("crd.yaml")
def test_server_errors_are_retried(kapi_cluster: Any, kapi_faults: Any, sites: client.CustomObjectsApi) -> None:
    kapi_faults.fail(503, verbs=["create"], resource="configmaps", count=1)
    with KopfRunner(OPERATOR, timeout=60):
        create_site(sites)
        site = provisioned(sites)
    assert site["status"]["attempts"] == 2


@pytest.mark.kapi_resources("crd.yaml")
def test_the_operator_survives_its_watch_expiring(kapi_cluster: Any, kapi_faults: Any,
                                                   sites: client.CustomObjectsApi) -> None:
    with KopfRunner(OPERATOR, timeout=60) as runner:
        create_site(sites, "first")
        provisioned(sites, "first")
        assert kapi_faults.expire_watches(f"{PLURAL}.{GROUP}") >= 1  # kopf's watch ends with 410 Expired
        create_site(sites, "second")
        provisioned(sites, "second")
    assert runner.exception is None, runner.output


@pytest.mark.kapi_snapshot("prepared_sites")
def test_a_forked_cluster_starts_prepared(kapi_cluster: Any, sites: client.CustomObjectsApi) -> None:
    with KopfRunner(OPERATOR, timeout=60):
        site = provisioned(sites, "existing")  # in the snapshot: the operator handles it as new
        create_site(sites)
        provisioned(sites)
    assert site["spec"]["domain"] == "example.org"


@pytest.mark.kapi_snapshot("prepared_sites")
def test_forks_do_not_share_writes(kapi_cluster: Any, sites: client.CustomObjectsApi) -> None:
    listed = sites.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert [s["metadata"]["name"] for s in listed["items"]] == ["existing"]  # not "shop" of the test before
    assert "status" not in listed["items"][0]  # the operator of another fork handled its own copy


@pytest.mark.kapi_resources("crd.yaml")
def test_a_watch_relists_after_410(kapi_cluster: Any, kapi_faults: Any, sites: client.CustomObjectsApi) -> None:
    create_site(sites)
    listed = sites.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    create_site(sites, "blog", "blog.example.com")
    kapi_faults.compact()  # the list's resourceVersion is history now: its watch gets 410 (the client retries
    # once on the same resourceVersion, then raises) and the client must list again
    with pytest.raises(client.ApiException) as gone:
        for _event in watch.Watch().stream(sites.list_namespaced_custom_object, GROUP, VERSION, "default",
                                           PLURAL, resource_version=listed["metadata"]["resourceVersion"],
                                           timeout_seconds=5):
            pass
    assert gone.value.status == 410
    relisted = sites.list_namespaced_custom_object(GROUP, VERSION, "default", PLURAL)
    assert [s["metadata"]["name"] for s in relisted["items"]] == ["blog", "shop"]
