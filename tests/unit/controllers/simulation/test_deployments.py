"""The simulated Deployment controller: ReplicaSets per template, rolling within surge/unavailable, revisions."""
from __future__ import annotations

from typing import Any, Callable

import pytest

from kapi.controllers.simulation.deployments import resolve, surge_and_unavailable
from kapi.testing import RunningServer

DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
REPLICA_SETS = "/apis/apps/v1/namespaces/default/replicasets"
MERGE = "application/merge-patch+json"


def _deployment(name: str, replicas: int, image: str = "nginx:1", probe_delay: int = 0, **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if probe_delay:
        container["readinessProbe"] = {"tcpSocket": {"port": 80}, "initialDelaySeconds": probe_delay}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}}, "spec": {"containers": [container]}},
                     **spec}}


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{DEPLOYMENTS}/{name}")[1]


def _sets(kapi: RunningServer, app: str) -> dict[str, tuple[int, int]]:
    """image -> (spec.replicas, status.availableReplicas) of the app's ReplicaSets."""
    items = kapi.request("GET", f"{REPLICA_SETS}?labelSelector=app%3D{app}")[1]["items"]
    return {rs["spec"]["template"]["spec"]["containers"][0]["image"]:
            (rs["spec"]["replicas"], rs.get("status", {}).get("availableReplicas", 0)) for rs in items}


def _rolled_out(kapi: RunningServer, name: str, replicas: int) -> bool:
    d = _get(kapi, name)
    status = d.get("status", {})
    return (status.get("observedGeneration", 0) >= d["metadata"]["generation"]
            and status.get("updatedReplicas") == replicas == status.get("availableReplicas")
            and status.get("replicas") == replicas)


def _running(kapi: RunningServer, app: str, image: str) -> int:
    pods = kapi.request("GET", f"/api/v1/namespaces/default/pods?labelSelector=app%3D{app}")[1]["items"]
    return sum(1 for p in pods if p.get("status", {}).get("phase") == "Running"
               and p["spec"]["containers"][0]["image"] == image and not p["metadata"].get("deletionTimestamp"))


def _set_image(kapi: RunningServer, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    assert kapi.request("PATCH", f"{DEPLOYMENTS}/{name}", patch, content_type=MERGE)[0] == 200


def test_intorstring_scaling_as_kube() -> None:
    assert resolve("25%", 10, True) == 3 and resolve("25%", 10, False) == 2 and resolve(2, 10, True) == 2
    assert surge_and_unavailable(_deployment("d", 4)) == (1, 1)  # kube's defaults 25%/25%
    zero = _deployment("d", 4, strategy={"rollingUpdate": {"maxSurge": 0, "maxUnavailable": 0}})
    assert surge_and_unavailable(zero) == (0, 1)
    assert surge_and_unavailable(_deployment("d", 4, strategy={"type": "Recreate"})) == (0, 4)


def test_a_deployment_becomes_available_with_kube_conditions(sim: RunningServer,
                                                            eventually: Callable[..., Any]) -> None:
    sim.apply(_deployment("web", 3))
    eventually(lambda: _rolled_out(sim, "web", 3), what="the rollout")
    d = _get(sim, "web")
    conditions = {c["type"]: c for c in d["status"]["conditions"]}
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable"
    assert conditions["Available"]["message"] == "Deployment has minimum availability."
    rs_name = next(iter(sim.request("GET", f"{REPLICA_SETS}?labelSelector=app%3Dweb")[1]["items"]))["metadata"]["name"]
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable"
    assert conditions["Progressing"]["message"] == f'ReplicaSet "{rs_name}" has successfully progressed.'
    assert d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    rs = sim.request("GET", f"{REPLICA_SETS}/{rs_name}")[1]
    hash_label = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs_name == f"web-{hash_label}" and rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == hash_label
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/desired-replicas"] == "3"
    assert rs["metadata"]["annotations"]["deployment.kubernetes.io/max-replicas"] == "4"


def test_a_rolling_update_stays_within_surge_and_unavailability(sim: RunningServer,
                                                                eventually: Callable[..., Any]) -> None:
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}}
    sim.apply(_deployment("roll", 3, probe_delay=10, strategy=strategy))
    eventually(lambda: _running(sim, "roll", "nginx:1") == 3, what="3 running pods")
    sim.advance(10)
    eventually(lambda: _rolled_out(sim, "roll", 3))
    _set_image(sim, "roll", "nginx:2")
    for step in range(1, 4):  # each new pod must be available before an old one goes: never below 3
        eventually(lambda: _sets(sim, "roll").get("nginx:2", (0, 0))[0] == step, what=f"surge step {step}")
        sets = _sets(sim, "roll")
        assert sets["nginx:1"][0] == 4 - step and sets["nginx:1"][1] == 4 - step
        eventually(lambda: _running(sim, "roll", "nginx:2") == step, what=f"new pod {step} running")
        sim.advance(10)
        eventually(lambda: _sets(sim, "roll")["nginx:1"][0] == 3 - step, what=f"scale-down step {step}")
    eventually(lambda: _rolled_out(sim, "roll", 3))
    assert _sets(sim, "roll") == {"nginx:1": (0, 0), "nginx:2": (3, 3)}


def test_recreate_removes_old_pods_first(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_deployment("batch", 2, strategy={"type": "Recreate"}))
    eventually(lambda: _rolled_out(sim, "batch", 2))
    _set_image(sim, "batch", "nginx:2")
    eventually(lambda: _rolled_out(sim, "batch", 2), what="the recreate rollout")
    assert _sets(sim, "batch") == {"nginx:1": (0, 0), "nginx:2": (2, 2)}


def test_undo_makes_the_old_set_new_under_the_next_revision(sim: RunningServer,
                                                             eventually: Callable[..., Any]) -> None:
    sim.apply(_deployment("undo", 2))
    eventually(lambda: _rolled_out(sim, "undo", 2))
    _set_image(sim, "undo", "nginx:2")
    eventually(lambda: _rolled_out(sim, "undo", 2) and _sets(sim, "undo").get("nginx:2") == (2, 2))
    _set_image(sim, "undo", "nginx:1")  # what kubectl rollout undo does: the old template back
    eventually(lambda: _sets(sim, "undo") == {"nginx:1": (2, 2), "nginx:2": (0, 0)} and _rolled_out(sim, "undo", 2))
    revisions = {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs["metadata"]["annotations"]
                 for rs in sim.request("GET", f"{REPLICA_SETS}?labelSelector=app%3Dundo")[1]["items"]}
    assert revisions["nginx:1"]["deployment.kubernetes.io/revision"] == "3"
    assert revisions["nginx:1"]["deployment.kubernetes.io/revision-history"] == "1"
    assert revisions["nginx:2"]["deployment.kubernetes.io/revision"] == "2"
    assert _get(sim, "undo")["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "3"


def test_old_sets_beyond_the_history_limit_are_deleted(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_deployment("hist", 1, revisionHistoryLimit=1))
    for image in ("nginx:2", "nginx:3"):
        eventually(lambda: _rolled_out(sim, "hist", 1))
        _set_image(sim, "hist", image)
    eventually(lambda: _rolled_out(sim, "hist", 1) and set(_sets(sim, "hist")) == {"nginx:2", "nginx:3"},
               what="the oldest set deleted")


def test_a_stuck_rollout_exceeds_its_progress_deadline(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_deployment("stuck", 1, probe_delay=100_000, progressDeadlineSeconds=60))

    def progressing() -> dict[str, Any]:
        return next((c for c in _get(sim, "stuck").get("status", {}).get("conditions", [])
                     if c["type"] == "Progressing"), {})
    pods = "/api/v1/namespaces/default/pods?labelSelector=app%3Dstuck"
    eventually(lambda: [p["status"].get("phase") for p in sim.request("GET", pods)[1]["items"]] == ["Running"]
               and _get(sim, "stuck")["status"].get("updatedReplicas") == 1 and progressing().get("status") == "True",
               what="a running pod that never becomes ready")
    sim.advance(61)
    stuck = eventually(lambda: (c := progressing()).get("reason") == "ProgressDeadlineExceeded" and c)
    assert stuck["status"] == "False" and stuck["message"].endswith("has timed out progressing.")


@pytest.mark.parametrize("replicas", [5, 1])
def test_scaling_follows_spec_replicas(sim: RunningServer, eventually: Callable[..., Any], replicas: int) -> None:
    sim.apply(_deployment("scale", 3))
    eventually(lambda: _rolled_out(sim, "scale", 3))
    status, _ = sim.request("PATCH", f"{DEPLOYMENTS}/scale/scale", {"spec": {"replicas": replicas}},
                            content_type=MERGE)
    assert status == 200
    eventually(lambda: _rolled_out(sim, "scale", replicas), what=f"scaling to {replicas}")
    pods = sim.request("GET", "/api/v1/namespaces/default/pods?labelSelector=app%3Dscale")[1]["items"]
    assert len([p for p in pods if not p["metadata"].get("deletionTimestamp")]) == replicas
