"""etcd_request_duration_seconds: every etcd request of a store operation timed under kube's operation and type."""
from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from kapi.api.metrics import ServerMetrics
from kapi.storage import keys
from kapi.storage.etcd import EtcdStorage
from kapi.storage.etcd_client import EtcdClient, parse_endpoints
from kapi.storage.factory import create_storage


def etcd_counts(metrics: ServerMetrics) -> dict[tuple[str, str], float]:
    text = metrics.exposition().decode()
    return {(s.labels["operation"], s.labels["type"]): s.value
            for family in text_string_to_metric_families(text) for s in family.samples
            if s.name == "etcd_request_duration_seconds_count"}


def test_keys_name_kubes_group_resources() -> None:
    assert keys.group_resource("/registry/pods/default/web") == "pods"
    assert keys.group_resource("/registry/namespaces/default") == "namespaces"
    assert keys.group_resource("/registry/apps/deployments/default/web") == "deployments.apps"
    assert keys.group_resource("/registry/batch/jobs/") == "jobs.batch"
    assert keys.group_resource("/registry/rbac.authorization.k8s.io/clusterroles/admin") == \
        "clusterroles.rbac.authorization.k8s.io"
    assert keys.group_resource("/registry/hello.zeng.dev/foos/default/a") == "foos.hello.zeng.dev"
    assert keys.group_resource("/registry/") == ""


async def test_store_operations_are_timed_by_operation_and_type(etcd_endpoints: str) -> None:
    metrics = ServerMetrics()
    storage = EtcdStorage(EtcdClient(parse_endpoints([etcd_endpoints]), metrics=metrics),
                          prefix=f"/t-metrics-{id(metrics)}")
    await storage.start()
    try:
        key = keys.object_key("apps", "deployments", "default", "web")
        await storage.create(key, {"metadata": {"name": "web", "namespace": "default"}})
        await storage.get(key)
        await storage.list(keys.collection_prefix("apps", "deployments", "default"))
        await storage.count(keys.collection_prefix("apps", "deployments"))
        await storage.guaranteed_update(key, lambda obj: {**(obj or {}), "spec": {"replicas": 2}})
        await storage.delete(key)
        await storage.create(keys.object_key("", "pods", "default", "p"), {"metadata": {"name": "p"}})
    finally:
        await storage.close()
    counts = etcd_counts(metrics)
    assert counts == {
        ("create", "deployments.apps"): 1,
        ("get", "deployments.apps"): 3,  # the get, and the reads guaranteed_update and delete start from
        ("list", "deployments.apps"): 1,
        ("listWithCount", "deployments.apps"): 1,
        ("update", "deployments.apps"): 1,
        ("delete", "deployments.apps"): 1,
        ("create", "pods"): 1,
    }


def test_the_factory_hands_the_metrics_to_the_etcd_client() -> None:
    metrics = ServerMetrics()
    storage = create_storage("etcd", None, etcd_servers=["http://127.0.0.1:2379"], metrics=metrics)
    assert isinstance(storage, EtcdStorage) and storage._client.metrics is metrics
    assert create_storage("memory", None, metrics=metrics) is not None  # the other backends take none
