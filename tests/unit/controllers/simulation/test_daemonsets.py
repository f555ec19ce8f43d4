"""The simulated DaemonSet controller: a pod per eligible node, kube's tolerations and affinity, rolling updates."""
from __future__ import annotations

import subprocess
import time
from typing import Any, Callable

from kapi.controllers.simulation.daemonpods import (
    daemon_pod_spec,
    is_updated,
    node_affinity,
    scaled,
    should_run,
    target_node,
    tolerates,
)
from kapi.controllers.simulation.nodes import new_node
from kapi.testing import RunningServer

DS = "/apis/apps/v1/namespaces/default/daemonsets"
PODS = "/api/v1/namespaces/default/pods"
NODES = "/api/v1/nodes"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"


def _ds(name: str, image: str = "agent:1", probe_delay: int = 0, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if probe_delay:
        container["readinessProbe"] = {"tcpSocket": {"port": 80}, "initialDelaySeconds": probe_delay}
    template_spec = {"containers": [container], **spec.pop("pod", {})}
    return {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": template_spec}, **spec}}


def _node(name: str, labels: dict[str, str] | None = None, taints: list[dict[str, str]] | None = None
          ) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": {"taints": taints or []}}


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{DS}/{name}")[1]


def _live(kapi: RunningServer, app: str) -> list[dict[str, Any]]:
    items = kapi.request("GET", f"{PODS}?labelSelector=app%3D{app}")[1]["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def _by_node(kapi: RunningServer, app: str) -> dict[str, str]:
    """node -> image of the live pods bound to it."""
    return {p["spec"].get("nodeName", ""): p["spec"]["containers"][0]["image"] for p in _live(kapi, app)}


def _running(kapi: RunningServer, app: str, count: int) -> bool:
    pods = _live(kapi, app)
    return len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods)


def _done(kapi: RunningServer, name: str, nodes: int) -> bool:
    ds = _get(kapi, name)
    status = ds.get("status", {})
    return (status.get("observedGeneration") == ds["metadata"]["generation"]
            and status.get("desiredNumberScheduled") == nodes == status.get("currentNumberScheduled")
            and status.get("updatedNumberScheduled") == nodes == status.get("numberAvailable")
            and status.get("numberReady") == nodes)


def _set_image(kapi: RunningServer, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    assert kapi.request("PATCH", f"{DS}/{name}", patch, content_type=STRATEGIC)[0] == 200


def _kubectl(kapi: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kapi.kubeconfig), *args], capture_output=True, text=True,
                          timeout=60)


# -- pure ---------------------------------------------------------------------------------------------------
def test_daemon_pods_get_kubes_tolerations_once() -> None:
    spec = daemon_pod_spec({"tolerations": [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists",
                                             "effect": "NoSchedule"}]})
    keys = [(t["key"], t["effect"]) for t in spec["tolerations"]]
    assert keys == [("node.kubernetes.io/unschedulable", "NoSchedule"), ("node.kubernetes.io/not-ready", "NoExecute"),
                    ("node.kubernetes.io/unreachable", "NoExecute"), ("node.kubernetes.io/disk-pressure", "NoSchedule"),
                    ("node.kubernetes.io/memory-pressure", "NoSchedule"),
                    ("node.kubernetes.io/pid-pressure", "NoSchedule")]
    assert all(t["operator"] == "Exists" and "tolerationSeconds" not in t for t in spec["tolerations"])
    host = daemon_pod_spec({"hostNetwork": True})["tolerations"]
    assert host[-1] == {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


def test_which_nodes_want_a_daemon_pod() -> None:
    assert tolerates([{"operator": "Exists"}], {"key": "any", "effect": "NoExecute"})
    assert tolerates([{"key": "k", "value": "v"}], {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert not tolerates([{"key": "k", "value": "w"}], {"key": "k", "value": "v", "effect": "NoSchedule"})
    assert not tolerates([{"key": "k", "operator": "Exists", "effect": "NoExecute"}],
                         {"key": "k", "effect": "NoSchedule"})
    ds = _ds("d", pod={"nodeSelector": {"role": "edge"}})
    assert should_run(_node("n", {"role": "edge"}), ds) == (True, True)
    assert should_run(_node("n", {"role": "core"}), ds) == (False, False)
    plain = _ds("d")
    assert should_run(_node("n"), plain) == (True, True)
    assert should_run(_node("n", taints=[{"key": "node.kubernetes.io/not-ready", "effect": "NoExecute"},
                                         {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]),
                      plain) == (True, True)  # the automatic tolerations
    assert should_run(_node("n", taints=[{"key": "gpu", "effect": "NoSchedule"}]), plain) == (False, True)
    assert should_run(_node("n", taints=[{"key": "gpu", "effect": "NoExecute"}]), plain) == (False, False)
    assert should_run(_node("n", taints=[{"key": "gpu", "effect": "PreferNoSchedule"}]), plain) == (True, True)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]}}}
    zoned = _ds("d", pod={"affinity": affinity})
    assert should_run(_node("n", {"zone": "a"}), zoned)[0] and not should_run(_node("n", {"zone": "b"}), zoned)[0]


def test_each_pod_is_pinned_to_its_node() -> None:
    affinity: dict[str, Any] = {"nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"]}]}]},
        "preferredDuringSchedulingIgnoredDuringExecution": [{"weight": 1, "preference": {}}]}}
    pinned = node_affinity(affinity, "n1")
    assert pinned["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"] == {"nodeSelectorTerms": [
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}]}
    assert pinned["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert affinity["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"][0].get(
        "matchExpressions")  # the template is not changed
    assert target_node({"spec": {"affinity": node_affinity(None, "n2")}}) == "n2"
    assert target_node({"spec": {"nodeName": "n3", "affinity": node_affinity(None, "n2")}}) == "n3"
    assert scaled("25%", 3) == 1 and scaled("50%", 3) == 2 and scaled(2, 3) == 2 and scaled(None, 3) == 0
    pod = {"metadata": {"labels": {"controller-revision-hash": "h1", "pod-template-generation": "2"}}}
    assert is_updated(pod, "h1", None) and is_updated(pod, "h2", "2") and not is_updated(pod, "h2", "3")


# -- in the simulation ----------------------------------------------------------------------------------------
def test_a_pod_per_node_and_kubectl_rollout_status(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_ds("agent"))
    result = _kubectl(sim, "rollout", "status", "daemonset/agent", "--timeout=20s")
    assert result.returncode == 0 and 'daemon set "agent" successfully rolled out' in result.stdout, result.stderr
    eventually(lambda: _done(sim, "agent", 3))
    pods = _live(sim, "agent")
    assert sorted(p["spec"]["nodeName"] for p in pods) == ["kapi-node-1", "kapi-node-2", "kapi-node-3"]
    for pod in pods:
        meta, spec = pod["metadata"], pod["spec"]
        assert meta["generateName"] == "agent-" and meta["labels"]["pod-template-generation"] == "1"
        assert target_node({"spec": {"affinity": spec["affinity"]}}) == spec["nodeName"]
        assert {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"} in spec[
            "tolerations"]
    status = _get(sim, "agent")["status"]
    assert status == {"currentNumberScheduled": 3, "numberMisscheduled": 0, "desiredNumberScheduled": 3,
                      "numberReady": 3, "observedGeneration": 1, "updatedNumberScheduled": 3, "numberAvailable": 3}
    [revision] = sim.request("GET", "/apis/apps/v1/namespaces/default/controllerrevisions")[1]["items"]
    assert pods[0]["metadata"]["labels"]["controller-revision-hash"] == revision["metadata"]["labels"][
        "controller-revision-hash"]
    assert revision["metadata"]["name"] == f"agent-{revision['metadata']['labels']['controller-revision-hash']}"


def test_nodes_coming_going_and_changing(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_ds("agent"), _ds("edge", pod={"nodeSelector": {"role": "edge"}}))
    eventually(lambda: _done(sim, "agent", 3) and _get(sim, "edge").get("status", {}).get("observedGeneration") == 1)
    assert _live(sim, "edge") == [] and _get(sim, "edge")["status"]["desiredNumberScheduled"] == 0
    node = new_node(4, {"cpu": "8", "memory": "16Gi", "pods": "110"}, sim.clock()["now"])
    assert sim.request("POST", NODES, node)[0] == 201  # as a kubelet registers: the node, then its status
    assert sim.request("PATCH", f"{NODES}/kapi-node-4/status", {"status": node["status"]}, content_type=MERGE)[0] == 200
    eventually(lambda: _done(sim, "agent", 4) and "kapi-node-4" in _by_node(sim, "agent"), what="a pod on the new node")
    assert sim.request("PATCH", f"{NODES}/kapi-node-2", {"metadata": {"labels": {"role": "edge"}}},
                       content_type=MERGE)[0] == 200
    eventually(lambda: list(_by_node(sim, "edge")) == ["kapi-node-2"] and _done(sim, "edge", 1), what="the edge pod")
    assert sim.request("PATCH", f"{NODES}/kapi-node-2", {"spec": {"taints": [
        {"key": "maintenance", "effect": "NoSchedule"}]}}, content_type=MERGE)[0] == 200
    eventually(lambda: _get(sim, "edge")["status"]["desiredNumberScheduled"] == 0)
    assert list(_by_node(sim, "edge")) == ["kapi-node-2"]  # NoSchedule: the running pod stays
    assert _get(sim, "edge")["status"]["numberMisscheduled"] == 1
    assert sim.request("PATCH", f"{NODES}/kapi-node-2", {"spec": {"taints": [
        {"key": "maintenance", "effect": "NoExecute"}]}}, content_type=MERGE)[0] == 200
    eventually(lambda: _by_node(sim, "edge") == {} and "kapi-node-2" not in _by_node(sim, "agent"),
               what="NoExecute evicts")
    assert sim.request("DELETE", f"{NODES}/kapi-node-4")[0] == 200
    eventually(lambda: sorted(_by_node(sim, "agent")) == ["kapi-node-1", "kapi-node-3"] and _done(sim, "agent", 2),
               what="the deleted node's pod gone")


def test_rolling_update_within_max_unavailable(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_ds("roll", probe_delay=10))
    eventually(lambda: _running(sim, "roll", 3))
    sim.advance(10)
    eventually(lambda: _done(sim, "roll", 3))
    _set_image(sim, "roll", "agent:2")
    for step in (1, 2, 3):
        eventually(lambda: list(_by_node(sim, "roll").values()).count("agent:2") == step and _running(sim, "roll", 3),
                   what=f"step {step}")
        time.sleep(0.2)  # nothing more goes while the new pod is not ready
        assert list(_by_node(sim, "roll").values()).count("agent:2") == step
        assert _get(sim, "roll")["status"]["numberUnavailable"] == 1
        sim.advance(10)
    eventually(lambda: _done(sim, "roll", 3))
    assert "numberUnavailable" not in _get(sim, "roll")["status"]


def test_rolling_update_with_surge_starts_the_new_pod_first(sim: RunningServer,
                                                            eventually: Callable[..., Any]) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    sim.apply(_ds("surge", probe_delay=10, updateStrategy=strategy))
    eventually(lambda: _running(sim, "surge", 3))
    sim.advance(10)
    eventually(lambda: _done(sim, "surge", 3))
    _set_image(sim, "surge", "agent:2")
    eventually(lambda: len(_live(sim, "surge")) == 4 and _running(sim, "surge", 4), what="a surge pod")
    time.sleep(0.2)  # the old pod stays until the new one is available; no other node surges meanwhile
    images = [p["spec"]["containers"][0]["image"] for p in _live(sim, "surge")]
    assert sorted(images) == ["agent:1", "agent:1", "agent:1", "agent:2"]
    for _ in range(3):
        sim.advance(10)
        time.sleep(0.3)
    eventually(lambda: _done(sim, "surge", 3) and set(_by_node(sim, "surge").values()) == {"agent:2"})


def test_on_delete_and_kubectl_history_and_undo(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_ds("od", updateStrategy={"type": "OnDelete"}))
    eventually(lambda: _done(sim, "od", 3))
    _set_image(sim, "od", "agent:2")
    eventually(lambda: _get(sim, "od")["status"].get("observedGeneration") == 2)
    time.sleep(0.2)
    assert set(_by_node(sim, "od").values()) == {"agent:1"}
    assert _get(sim, "od")["status"].get("updatedNumberScheduled") is None
    victim = next(p for p in _live(sim, "od") if p["spec"]["nodeName"] == "kapi-node-1")
    assert sim.request("DELETE", f"{PODS}/{victim['metadata']['name']}")[0] == 200
    eventually(lambda: _by_node(sim, "od").get("kapi-node-1") == "agent:2", what="the deleted pod replaced")
    assert _get(sim, "od")["status"]["updatedNumberScheduled"] == 1
    history = _kubectl(sim, "rollout", "history", "daemonset/od")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["1", "2"]

    sim.apply(_ds("kc"))
    eventually(lambda: _done(sim, "kc", 3))
    assert _kubectl(sim, "set", "image", "daemonset/kc", "app=agent:2").returncode == 0
    assert _kubectl(sim, "rollout", "status", "daemonset/kc", "--timeout=20s").returncode == 0
    eventually(lambda: set(_by_node(sim, "kc").values()) == {"agent:2"} and _done(sim, "kc", 3))
    assert _kubectl(sim, "rollout", "undo", "daemonset/kc").returncode == 0
    eventually(lambda: set(_by_node(sim, "kc").values()) == {"agent:1"} and _done(sim, "kc", 3), what="undone")
    history = _kubectl(sim, "rollout", "history", "daemonset/kc")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]
