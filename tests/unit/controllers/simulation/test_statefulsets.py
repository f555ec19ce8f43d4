"""The simulated StatefulSet controller: ordered identities and claims, revisions, rolling updates, kubectl."""
from __future__ import annotations

import subprocess
import time
from typing import Any, Callable

from kapi.controllers.simulation.revisions import (
    fnv32,
    revision_hash,
    revision_template,
    surplus,
    template_patch,
)
from kapi.controllers.simulation.statefulsets import claims_for, parent_and_ordinal, stateful_pod
from kapi.testing import RunningServer

STS = "/apis/apps/v1/namespaces/default/statefulsets"
PODS = "/api/v1/namespaces/default/pods"
MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"  # merges containers by name, keeping their probes


def _sts(name: str, replicas: int, image: str = "nginx:1", probe_delay: int = 0, stop_seconds: int = 0,
         **spec: Any) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "app", "image": image}
    if probe_delay:
        container["readinessProbe"] = {"tcpSocket": {"port": 80}, "initialDelaySeconds": probe_delay}
    meta: dict[str, Any] = {"labels": {"app": name}}
    if stop_seconds:
        meta["annotations"] = {"kapi.dev/simulate-termination-seconds": str(stop_seconds)}
    return {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name, "namespace": "default"},
            "spec": {"replicas": replicas, "serviceName": name, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": meta, "spec": {"containers": [container]}}, **spec}}


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{STS}/{name}")[1]


def _pods(kapi: RunningServer, app: str) -> dict[str, dict[str, Any]]:
    items = kapi.request("GET", f"{PODS}?labelSelector=app%3D{app}")[1]["items"]
    return {p["metadata"]["name"]: p for p in items}


def _ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def _done(kapi: RunningServer, name: str, replicas: int) -> bool:
    sts = _get(kapi, name)
    status = sts.get("status", {})
    return (status.get("observedGeneration") == sts["metadata"]["generation"]
            and status.get("readyReplicas") == status.get("updatedReplicas") == replicas == status.get("replicas")
            and status.get("currentRevision") == status.get("updateRevision"))


def _running(kapi: RunningServer, app: str, count: int) -> bool:
    """`count` live pods, all Running (a readiness delay counts from the start of their containers)."""
    pods = [p for p in _pods(kapi, app).values() if not p["metadata"].get("deletionTimestamp")]
    return len(pods) == count and all(p["status"].get("phase") == "Running" for p in pods)


def _images(kapi: RunningServer, app: str) -> dict[str, str]:
    return {n: p["spec"]["containers"][0]["image"] for n, p in _pods(kapi, app).items()
            if not p["metadata"].get("deletionTimestamp")}


def _set_image(kapi: RunningServer, name: str, image: str) -> None:
    patch = {"spec": {"template": {"spec": {"containers": [{"name": "app", "image": image}]}}}}
    assert kapi.request("PATCH", f"{STS}/{name}", patch, content_type=STRATEGIC)[0] == 200


def _kubectl(kapi: RunningServer, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["kubectl", "--kubeconfig", str(kapi.kubeconfig), *args], capture_output=True, text=True,
                          timeout=60)


# -- pure ---------------------------------------------------------------------------------------------------
def test_identities_claims_and_pods_are_kubes() -> None:
    assert parent_and_ordinal("web-12") == ("web", 12) and parent_and_ordinal("a-b-0") == ("a-b", 0)
    assert parent_and_ordinal("web") == ("", -1)
    sts = _sts("db", 2, volumeClaimTemplates=[{"metadata": {"name": "data", "labels": {"tier": "x"}},
                                               "spec": {"accessModes": ["ReadWriteOnce"]}}])
    sts["metadata"]["uid"] = "u1"
    sts["spec"]["template"]["spec"]["volumes"] = [{"name": "cfg", "configMap": {"name": "c"}},
                                                  {"name": "data", "emptyDir": {}}]
    [claim] = claims_for(sts, 3)
    assert claim["metadata"]["name"] == "data-db-3" and claim["metadata"]["labels"] == {"tier": "x", "app": "db"}
    assert claim["spec"] == {"accessModes": ["ReadWriteOnce"]}
    pod = stateful_pod(sts, sts["spec"]["template"], 3, "db-abc")
    meta, spec = pod["metadata"], pod["spec"]
    assert meta["name"] == "db-3" and meta["generateName"] == "db-"
    assert meta["labels"] == {"app": "db", "controller-revision-hash": "db-abc",
                              "statefulset.kubernetes.io/pod-name": "db-3", "apps.kubernetes.io/pod-index": "3"}
    assert spec["hostname"] == "db-3" and spec["subdomain"] == "db"
    assert spec["volumes"] == [{"name": "data", "persistentVolumeClaim": {"claimName": "data-db-3"}},
                               {"name": "cfg", "configMap": {"name": "c"}}]  # the claim replaces the template's
    assert meta["ownerReferences"][0] == {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u1",
                                          "controller": True, "blockOwnerDeletion": True}


def test_revision_data_and_hash_are_kubes() -> None:
    assert fnv32(b"") == 0x811C9DC5 and fnv32(b"a") == 0x050C5D7E and fnv32(b"foobar") == 0x31F0B262  # FNV-1
    template = {"spec": {"containers": [{"name": "c", "image": "i"}]}, "metadata": {"labels": {"b": "1", "a": "2"}}}
    data = template_patch(template)
    assert list(data["spec"]["template"]) == ["$patch", "metadata", "spec"]  # sorted, as Go writes a map
    assert list(data["spec"]["template"]["metadata"]["labels"]) == ["a", "b"]
    assert revision_template({"data": data}) == template
    assert revision_hash(data, 0) == revision_hash(template_patch(template), 0) != revision_hash(data, 1)
    assert set(revision_hash(data, None)) <= set("bcdfghjklmnpqrstvwxz2456789")
    revisions = [{"metadata": {"name": f"r{i}"}} for i in range(5)]
    assert [r["metadata"]["name"] for r in surplus(revisions, {"r0", "r4"}, 2)] == ["r1"]
    assert [r["metadata"]["name"] for r in surplus(revisions, {"r0", "r4"}, 2, live_counts=True)] == [
        "r1", "r2", "r3"]


# -- in the simulation ----------------------------------------------------------------------------------------
def test_ordered_ready_creates_one_at_a_time_with_claims(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    claims = [{"metadata": {"name": "www"}, "spec": {"accessModes": ["ReadWriteOnce"],
                                                     "resources": {"requests": {"storage": "1Gi"}}}}]
    sim.apply(_sts("web", 3, probe_delay=10, volumeClaimTemplates=claims))
    for count in (1, 2, 3):
        eventually(lambda: _running(sim, "web", count), what=f"{count} pods")
        time.sleep(0.2)
        assert len(_pods(sim, "web")) == count  # the next waits for this one to be Ready
        sim.advance(10)
    eventually(lambda: _done(sim, "web", 3), what="the StatefulSet ready")
    pvcs = sim.request("GET", "/api/v1/namespaces/default/persistentvolumeclaims")[1]["items"]
    assert sorted(c["metadata"]["name"] for c in pvcs) == ["www-web-0", "www-web-1", "www-web-2"]
    assert all(c["metadata"]["labels"] == {"app": "web"} for c in pvcs)
    status = _get(sim, "web")["status"]
    assert status["availableReplicas"] == 3 and status["collisionCount"] == 0
    revision = sim.request("GET", f"/apis/apps/v1/namespaces/default/controllerrevisions/{status['updateRevision']}")[1]
    assert revision["revision"] == 1 and revision["metadata"]["ownerReferences"][0]["name"] == "web"
    assert revision["data"]["spec"]["template"]["$patch"] == "replace"
    assert revision["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"][len("web-"):]

    assert sim.request("PATCH", f"{STS}/web", {"spec": {"replicas": 1}}, content_type=MERGE)[0] == 200
    eventually(lambda: _done(sim, "web", 1) and list(_pods(sim, "web")) == ["web-0"], what="scaled down")
    pvcs = sim.request("GET", "/api/v1/namespaces/default/persistentvolumeclaims")[1]["items"]
    assert len(pvcs) == 3  # claims are kept


def test_ordered_scale_down_goes_from_the_highest_one_at_a_time(sim: RunningServer,
                                                                eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("down", 3, stop_seconds=5))
    eventually(lambda: _done(sim, "down", 3))
    assert sim.request("PATCH", f"{STS}/down", {"spec": {"replicas": 1}}, content_type=MERGE)[0] == 200
    for doomed, left in (("down-2", ["down-0", "down-1"]), ("down-1", ["down-0"])):
        eventually(lambda: _pods(sim, "down")[doomed]["metadata"].get("deletionTimestamp"), what=f"{doomed} going")
        time.sleep(0.2)
        assert [n for n, p in _pods(sim, "down").items() if not p["metadata"].get("deletionTimestamp")] == left
        sim.advance(5)
        eventually(lambda: doomed not in _pods(sim, "down"), what=f"{doomed} gone")
    eventually(lambda: _done(sim, "down", 1))


def test_parallel_creates_all_at_once(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("par", 3, probe_delay=10, podManagementPolicy="Parallel"))
    eventually(lambda: sorted(_pods(sim, "par")) == ["par-0", "par-1", "par-2"], what="three pods before any is ready")
    assert not any(_ready(p) for p in _pods(sim, "par").values())
    eventually(lambda: _running(sim, "par", 3))
    sim.advance(10)
    eventually(lambda: _done(sim, "par", 3))


def test_ordinals_start_names_the_pods(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("ord", 2, ordinals={"start": 5}))
    eventually(lambda: _done(sim, "ord", 2))
    pods = _pods(sim, "ord")
    assert sorted(pods) == ["ord-5", "ord-6"]
    assert pods["ord-6"]["metadata"]["labels"]["apps.kubernetes.io/pod-index"] == "6"


def test_rolling_update_goes_down_to_the_partition(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("part", 3, updateStrategy={"type": "RollingUpdate", "rollingUpdate": {"partition": 1}}))
    eventually(lambda: _done(sim, "part", 3))
    old = _get(sim, "part")["status"]["currentRevision"]
    _set_image(sim, "part", "nginx:2")
    eventually(lambda: _images(sim, "part") == {"part-0": "nginx:1", "part-1": "nginx:2", "part-2": "nginx:2"}
               and _get(sim, "part")["status"].get("updatedReplicas") == 2, what="the partitioned rollout")
    status = _get(sim, "part")["status"]
    assert status["currentRevision"] == old != status["updateRevision"] and status["currentReplicas"] == 1
    result = _kubectl(sim, "rollout", "status", "statefulset/part", "--timeout=20s")
    assert result.returncode == 0 and "partitioned roll out complete: 2 new pods have been updated" in result.stdout
    assert sim.request("PATCH", f"{STS}/part", {"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}},
                       content_type=MERGE)[0] == 200
    eventually(lambda: _done(sim, "part", 3) and set(_images(sim, "part").values()) == {"nginx:2"})
    assert _get(sim, "part")["status"]["currentRevision"] == status["updateRevision"]


def test_rolling_update_replaces_one_ready_pod_at_a_time(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("roll", 3, probe_delay=10, podManagementPolicy="Parallel"))
    eventually(lambda: _running(sim, "roll", 3))
    sim.advance(10)
    eventually(lambda: _done(sim, "roll", 3))
    _set_image(sim, "roll", "nginx:2")
    for step, name in enumerate(("roll-2", "roll-1", "roll-0")):
        eventually(lambda: _images(sim, "roll").get(name) == "nginx:2" and _running(sim, "roll", 3),
                   what=f"{name} replaced")
        time.sleep(0.2)  # the next waits for this one to be ready
        assert list(_images(sim, "roll").values()).count("nginx:2") == step + 1
        sim.advance(10)
    eventually(lambda: _done(sim, "roll", 3))


def test_on_delete_replaces_only_deleted_pods(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("od", 2, updateStrategy={"type": "OnDelete"}))
    eventually(lambda: _done(sim, "od", 2))
    _set_image(sim, "od", "nginx:2")
    eventually(lambda: _get(sim, "od")["status"].get("observedGeneration") == 2)
    time.sleep(0.2)
    assert _images(sim, "od") == {"od-0": "nginx:1", "od-1": "nginx:1"}
    assert sim.request("DELETE", f"{PODS}/od-1")[0] == 200
    eventually(lambda: _images(sim, "od") == {"od-0": "nginx:1", "od-1": "nginx:2"}, what="od-1 recreated")
    status = _get(sim, "od")["status"]
    assert status.get("updatedReplicas") == 1 and status.get("currentReplicas") == 1


def test_kubectl_rollout_status_history_and_undo(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_sts("kc", 2))
    assert _kubectl(sim, "rollout", "status", "statefulset/kc", "--timeout=20s").returncode == 0
    assert _kubectl(sim, "set", "image", "statefulset/kc", "app=nginx:2").returncode == 0
    result = _kubectl(sim, "rollout", "status", "statefulset/kc", "--timeout=20s")
    assert result.returncode == 0, result.stderr
    eventually(lambda: _done(sim, "kc", 2) and set(_images(sim, "kc").values()) == {"nginx:2"})
    history = _kubectl(sim, "rollout", "history", "statefulset/kc")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["1", "2"]
    first = _kubectl(sim, "rollout", "history", "statefulset/kc", "--revision=1")
    assert "nginx:1" in first.stdout, first.stdout + first.stderr
    assert _kubectl(sim, "rollout", "undo", "statefulset/kc").returncode == 0
    eventually(lambda: _done(sim, "kc", 2) and set(_images(sim, "kc").values()) == {"nginx:1"}, what="undone")
    history = _kubectl(sim, "rollout", "history", "statefulset/kc")
    assert [line.split()[0] for line in history.stdout.splitlines()[2:] if line.strip()] == ["2", "3"]
