"""Test the webapp operator end to end: its Deployment really rolls out, on kapi's simulated cluster.

`@pytest.mark.kapi_simulate` makes the session's `kapi_server` simulate nodes,
kubelets and kube-controller-manager's controllers (as `kapi start --simulate`), so
the Deployment the operator creates gets a ReplicaSet, pods that run on nodes,
and the `Available` condition the operator waits for. `kapi_resources` applies
this directory's CRD; kopf's `KopfRunner` runs the operator in a thread.

    pytest configs/examples/webapp_operator
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

HERE = Path(__file__).parent
GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "webapps"


def wait_for(get: Callable[[], Any], predicate: Callable[[Any], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last seen: {value}"
        time.sleep(0.2)


@pytest.mark.kapi_simulate
@pytest.mark.kapi_resources("crd.yaml")
def test_webapp_becomes_available_and_scales(kapi_server: Any, kapi_namespace: str) -> None:
    assert kapi_server.config.simulate, "the kapi_simulate marker turns the simulation on"
    operator = ["run", "--standalone", "--namespace", kapi_namespace, str(HERE / "webapp_operator.py")]
    with kapi_server.api_client() as api, KopfRunner(operator, timeout=60) as runner:
        objects, apps, core = client.CustomObjectsApi(api), client.AppsV1Api(api), client.CoreV1Api(api)
        objects.create_namespaced_custom_object(GROUP, VERSION, kapi_namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "WebApp",
            "metadata": {"name": "shop"}, "spec": {"image": "nginx:1.27", "replicas": 2},
        })

        def webapp() -> dict[str, Any]:
            return objects.get_namespaced_custom_object(GROUP, VERSION, kapi_namespace, PLURAL, "shop")

        def status_is(phase: str, ready: int) -> Callable[[dict[str, Any]], bool]:
            return lambda obj: obj.get("status", {}).get("phase") == phase and \
                obj["status"].get("readyReplicas") == ready

        wait_for(webapp, status_is("Available", 2))
        deployment = apps.read_namespaced_deployment("shop", kapi_namespace)
        assert deployment.metadata.owner_references[0].kind == "WebApp"
        available = [c for c in deployment.status.conditions if c.type == "Available"]
        assert available[0].status == "True" and available[0].reason == "MinimumReplicasAvailable"
        pods = core.list_namespaced_pod(kapi_namespace, label_selector="app.kubernetes.io/name=shop").items
        assert len(pods) == 2
        assert all(p.status.phase == "Running" and p.status.pod_ip and p.spec.node_name for p in pods)

        # A changed spec rolls through the Deployment; the status follows it.
        objects.patch_namespaced_custom_object(GROUP, VERSION, kapi_namespace, PLURAL, "shop",
                                               {"spec": {"replicas": 3}})
        wait_for(webapp, status_is("Available", 3))

    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert "WebApp shop is Available (3 ready)" in runner.output
