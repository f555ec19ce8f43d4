"""The simulated scheduler: requests, selectors, affinity and taints decide where a pod goes, or why it cannot."""
from __future__ import annotations

from fractions import Fraction
from typing import Any, Callable

from kapi.controllers.simulation.scheduler import _tolerates, affinity_matches, pod_requests
from kapi.testing import RunningServer, start_server

PODS = "/api/v1/namespaces/default/pods"


def _pod(name: str, cpu: str = "", **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "c", "image": "nginx"}
    if cpu:
        container["resources"] = {"requests": {"cpu": cpu}}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [container], **spec}}


def _node(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}}


def test_requests_are_the_sum_of_containers_or_the_largest_init_container() -> None:
    pod = {"spec": {"containers": [{"resources": {"requests": {"cpu": "250m", "memory": "64Mi"}}},
                                   {"resources": {"requests": {"cpu": "250m"}}}],
                    "initContainers": [{"resources": {"requests": {"cpu": "2"}}}],
                    "overhead": {"memory": "1Mi"}}}
    assert pod_requests(pod) == {"cpu": Fraction(2), "memory": Fraction(65 * 2**20), "pods": Fraction(1)}


def test_node_selector_and_required_affinity() -> None:
    node = _node("n1", {"disk": "ssd", "zone": "a"})
    assert affinity_matches({"spec": {"nodeSelector": {"disk": "ssd"}}}, node)
    assert not affinity_matches({"spec": {"nodeSelector": {"disk": "hdd"}}}, node)
    terms = {"nodeSelectorTerms": [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b"]}]},
                                   {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    pod = {"spec": {"affinity": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": terms}}}}
    assert affinity_matches(pod, node)  # the second term matches by name, as DaemonSet pods ask
    assert not affinity_matches(pod, _node("n2", {"zone": "a"}))


def test_tolerations() -> None:
    taint = {"key": "gpu", "value": "yes", "effect": "NoSchedule"}
    assert _tolerates([{"key": "gpu", "operator": "Equal", "value": "yes", "effect": "NoSchedule"}], taint)
    assert _tolerates([{"key": "gpu", "operator": "Exists"}], taint)
    assert _tolerates([{"operator": "Exists"}], taint)
    assert not _tolerates([{"key": "gpu", "value": "no"}], taint)
    assert not _tolerates([{"key": "gpu", "operator": "Exists", "effect": "NoExecute"}], taint)


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{PODS}/{name}")[1]


def _scheduled(pod: dict[str, Any]) -> dict[str, Any]:
    return next((c for c in pod.get("status", {}).get("conditions", []) if c["type"] == "PodScheduled"), {})


def test_a_pod_that_fits_nowhere_waits_until_capacity_frees(eventually: Callable[..., Any]) -> None:
    with start_server(simulate=True, simulate_manual_clock=True, simulate_nodes=1,
                      simulate_node_capacity=(("cpu", "1"), ("memory", "1Gi"), ("pods", "10"))) as kapi:
        kapi.apply(_pod("first", "600m"))
        eventually(lambda: _get(kapi, "first")["spec"].get("nodeName") == "kapi-node-1")
        kapi.apply(_pod("second", "600m"))
        waiting = eventually(lambda: _scheduled(_get(kapi, "second")).get("reason") == "Unschedulable"
                             and _get(kapi, "second"))
        assert _scheduled(waiting)["message"] == (
            "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: "
            "1 No preemption victims found for incoming pod.")
        assert waiting["status"]["phase"] == "Pending" and not waiting["spec"].get("nodeName")
        status, _ = kapi.request("DELETE", f"{PODS}/first?gracePeriodSeconds=0")
        assert status == 200
        eventually(lambda: _get(kapi, "second")["spec"].get("nodeName") == "kapi-node-1", what="rescheduling")


def test_selectors_and_taints_are_reasons(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("picky", nodeSelector={"disk": "ssd"}))
    pod = eventually(lambda: _scheduled(_get(sim, "picky")).get("reason") == "Unschedulable" and _get(sim, "picky"))
    assert "3 node(s) didn't match Pod's node affinity/selector" in _scheduled(pod)["message"]
    status, _ = sim.request("PATCH", "/api/v1/nodes/kapi-node-2", {"metadata": {"labels": {"disk": "ssd"}}},
                            content_type="application/merge-patch+json")
    assert status == 200
    eventually(lambda: _get(sim, "picky")["spec"].get("nodeName") == "kapi-node-2", what="binding after a label")
    for node in ("kapi-node-1", "kapi-node-2", "kapi-node-3"):
        sim.request("PATCH", f"/api/v1/nodes/{node}", {"spec": {"taints": [{"key": "dedicated", "value": "db",
                                                                              "effect": "NoSchedule"}]}},
                    content_type="application/merge-patch+json")
    sim.apply(_pod("plain"))
    pod = eventually(lambda: _scheduled(_get(sim, "plain")).get("reason") == "Unschedulable" and _get(sim, "plain"))
    assert "3 node(s) had untolerated taint {dedicated: db}" in _scheduled(pod)["message"]
    sim.apply(_pod("tolerant", tolerations=[{"key": "dedicated", "operator": "Equal", "value": "db",
                                             "effect": "NoSchedule"}]))
    eventually(lambda: _get(sim, "tolerant")["spec"].get("nodeName"), what="a tolerating pod bound")


def test_pods_spread_over_the_least_allocated_nodes(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    for i in range(6):
        sim.apply(_pod(f"p{i}", "100m"))
    nodes = eventually(lambda: [n for i in range(6) if (n := _get(sim, f"p{i}")["spec"].get("nodeName"))]
                       if all(_get(sim, f"p{i}")["spec"].get("nodeName") for i in range(6)) else None)
    assert sorted(nodes) == ["kapi-node-1", "kapi-node-1", "kapi-node-2", "kapi-node-2", "kapi-node-3", "kapi-node-3"]


def test_without_nodes_there_is_nowhere_to_go(eventually: Callable[..., Any]) -> None:
    with start_server(simulate=True, simulate_manual_clock=True, simulate_nodes=0) as kapi:
        kapi.apply(_pod("lonely"))
        pod = eventually(lambda: _scheduled(_get(kapi, "lonely")).get("reason") == "Unschedulable"
                         and _get(kapi, "lonely"))
        assert _scheduled(pod)["message"] == "no nodes available to schedule pods"
