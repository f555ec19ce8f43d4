"""The simulated kubelets: pods start, become ready, exit, restart and go away as the annotations and clock say."""
from __future__ import annotations

from typing import Any, Callable

from kapi.controllers.simulation.kubelet import image_ref, pod_ip
from kapi.testing import RunningServer

PODS = "/api/v1/namespaces/default/pods"


def _pod(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "app", "image": "busybox", **spec.pop("container", {})}
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": "default", "annotations": annotations or {}},
            "spec": {"containers": [container], **spec}}


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{PODS}/{name}")[1]


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    return (pod.get("status", {}).get("containerStatuses") or [{}])[0]


def test_image_and_ip_naming() -> None:
    assert image_ref("nginx") == "docker.io/library/nginx:latest"
    assert image_ref("bitnami/redis:7") == "docker.io/bitnami/redis:7"
    assert image_ref("ghcr.io/org/app@sha256:abc") == "ghcr.io/org/app@sha256:abc"
    assert image_ref("localhost:5000/app") == "localhost:5000/app:latest"
    node = {"spec": {"podCIDR": "10.244.2.0/24"}}
    assert [pod_ip(node, i) for i in (0, 252, 253)] == ["10.244.2.2", "10.244.2.254", "10.245.2.2"]


def test_a_pod_runs_with_an_ip_of_its_node(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("web"))
    pod = eventually(lambda: (p := _get(sim, "web"))["status"].get("phase") == "Running" and p)
    node = sim.request("GET", f"/api/v1/nodes/{pod['spec']['nodeName']}")[1]
    prefix = node["spec"]["podCIDR"].rsplit(".", 1)[0] + "."
    assert pod["status"]["podIP"].startswith(prefix) and pod["status"]["podIPs"] == [{"ip": pod["status"]["podIP"]}]
    assert pod["status"]["hostIP"] == next(a["address"] for a in node["status"]["addresses"]
                                           if a["type"] == "InternalIP")
    status = _container(pod)
    assert status["ready"] is True and status["started"] is True and status["restartCount"] == 0
    assert "running" in status["state"] and status["image"] == "docker.io/library/busybox:latest"
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]} == {
        "PodReadyToStartContainers": "True", "Initialized": "True", "Ready": "True", "ContainersReady": "True",
        "PodScheduled": "True"}


def test_a_deleted_pods_address_is_not_handed_out_again_at_once(sim: RunningServer,
                                                               eventually: Callable[..., Any]) -> None:
    """Round robin as host-local IPAM: a replacement must not show up in endpoints under the old pod's address."""
    def ip_of(name: str) -> str:
        return eventually(lambda: _get(sim, name).get("status", {}).get("podIP"), what=f"{name}'s address")

    sim.apply(_pod("first", nodeName="kapi-node-1"))
    old = ip_of("first")
    code, body = sim.request("DELETE", f"{PODS}/first?gracePeriodSeconds=0")
    assert code == 200, body
    eventually(lambda: sim.request("GET", f"{PODS}/first")[0] == 404, what="the pod to go")
    sim.apply(_pod("second", nodeName="kapi-node-1"))
    assert ip_of("second") not in ("", old)


def test_exit_codes_and_restart_policies(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("fails", {"kapi.dev/simulate-exit-code": "3"}, restartPolicy="Never"))
    sim.apply(_pod("succeeds", {"kapi.dev/simulate-exit-code": "0"}, restartPolicy="OnFailure"))
    failed = eventually(lambda: (p := _get(sim, "fails"))["status"].get("phase") == "Failed" and p)
    terminated = _container(failed)["state"]["terminated"]
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    done = eventually(lambda: (p := _get(sim, "succeeds"))["status"].get("phase") == "Succeeded" and p)
    assert _container(done)["state"]["terminated"]["reason"] == "Completed"
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"


def test_a_crashing_container_restarts_after_back_off(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("crash", {"kapi.dev/simulate-exit-code": "1", "kapi.dev/simulate-run-seconds": "5"}))
    eventually(lambda: "running" in _container(_get(sim, "crash")).get("state", {}))
    sim.advance(5)
    waiting = eventually(lambda: (s := _container(_get(sim, "crash"))).get("state", {}).get("waiting") and s)
    assert waiting["state"]["waiting"]["reason"] == "CrashLoopBackOff" and waiting["restartCount"] == 1
    assert waiting["lastState"]["terminated"]["exitCode"] == 1
    assert _get(sim, "crash")["status"]["phase"] == "Running"  # restartPolicy Always: the pod lives on
    sim.advance(10)  # kube's first back-off
    again = eventually(lambda: "running" in (s := _container(_get(sim, "crash"))).get("state", {}) and s)
    assert again["restartCount"] == 1


def test_readiness_waits_for_the_probe_delay(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    probe = {"readinessProbe": {"httpGet": {"path": "/", "port": 80}, "initialDelaySeconds": 30}}
    sim.apply(_pod("slow", container=probe))
    pod = eventually(lambda: (p := _get(sim, "slow"))["status"].get("phase") == "Running" and p)
    assert _container(pod)["ready"] is False
    sim.advance(30)
    eventually(lambda: _container(_get(sim, "slow")).get("ready") is True, what="ready after the probe delay")


def test_a_slow_shutdown_is_cut_by_the_grace_period(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("stubborn", {"kapi.dev/simulate-termination-seconds": "300"}, terminationGracePeriodSeconds=20))
    eventually(lambda: _get(sim, "stubborn")["status"].get("phase") == "Running")
    assert sim.request("DELETE", f"{PODS}/stubborn")[0] == 200
    pod = _get(sim, "stubborn")
    assert pod["metadata"]["deletionGracePeriodSeconds"] == 20  # Terminating, on the simulated clock
    sim.advance(19)
    assert sim.request("GET", f"{PODS}/stubborn")[0] == 200
    sim.advance(1)
    eventually(lambda: sim.request("GET", f"{PODS}/stubborn")[0] == 404, what="removal after the grace period")


def test_a_quick_shutdown_removes_the_pod_at_once(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("quick"))
    eventually(lambda: _get(sim, "quick")["status"].get("phase") == "Running")
    assert sim.request("DELETE", f"{PODS}/quick")[0] == 200
    eventually(lambda: sim.request("GET", f"{PODS}/quick")[0] == 404, what="the kubelet's final delete")


def test_pods_of_a_deleted_node_go(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_pod("pinned", nodeName="kapi-node-1"))
    eventually(lambda: _get(sim, "pinned")["status"].get("phase") == "Running")
    assert sim.request("DELETE", "/api/v1/nodes/kapi-node-1")[0] == 200
    eventually(lambda: sim.request("GET", f"{PODS}/pinned")[0] == 404, what="pod garbage collection")


def test_nodes_kapi_does_not_simulate_are_left_alone(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "real"}})
    sim.apply(_pod("elsewhere", nodeName="real"))
    sim.apply(_pod("here", nodeName="kapi-node-2"))
    eventually(lambda: _get(sim, "here")["status"].get("phase") == "Running")
    assert not _get(sim, "elsewhere")["status"].get("containerStatuses")
