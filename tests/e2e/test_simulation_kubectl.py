"""`kapi start --simulate` driven by the real kubectl: workloads roll out, run and complete.

One `kapi start --simulate --simulate-manual-clock --simulate-nodes 3` process serves the module;
kubectl talks to it over plain HTTP (loopback trusted). What kubectl waits for (`rollout status`,
`wait --for=condition=complete`) is what it waits for on a real cluster, so each test passing
means the simulated controllers and kubelets set the fields kubectl reads. The clock only moves
when a test POSTs `{"advance": "61s"}` to /kapi/simulation/clock (`kubectl create --raw`).
Results are polled up to a deadline; nothing asserts how long anything took.
"""
from __future__ import annotations

import ipaddress
import json
import os
import subprocess
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

DEADLINE = 60.0
NODES = 3
CLOCK = "/kapi/simulation/clock"
SIMULATE = ["--backend", "memory", "--no-examples", "--simulate", "--simulate-manual-clock"]


def _conftest(config: pytest.Config) -> Any:
    """tests/e2e/conftest.py as loaded by pytest (test modules cannot import it under importlib mode)."""
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "make_kapi") and hasattr(plugin, "KapiProcess"):
            return plugin
    raise RuntimeError("tests/e2e/conftest.py is not loaded")


@pytest.fixture(scope="module")
def sim(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    server = _conftest(request.config).make_kapi(tmp_path_factory.mktemp("kapi-sim"), *SIMULATE,
                                                 "--simulate-nodes", str(NODES))
    server.start()
    yield server
    server.stop()


def kubectl(kapi: Any, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The real kubectl against `kapi`, allowed longer than the `--timeout 60s` of the waits it runs."""
    cmd = [_kubectl_path(), "--server", kapi.url, "--cache-dir", str(kapi.cache_dir), *args]
    env = {**os.environ, "KUBECONFIG": "/dev/null"}
    result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=DEADLINE + 30, env=env)
    if check and result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                             f"stdout: {result.stdout}\nstderr: {result.stderr}\n{_log_tail(kapi)}")
    return result


def _kubectl_path() -> str:
    import shutil

    return shutil.which("kubectl") or "/usr/bin/kubectl"


def _log_tail(kapi: Any, lines: int = 30) -> str:
    text = Path(kapi.log_path).read_text(errors="replace").splitlines()
    return "kapi log (tail):\n" + "\n".join(text[-lines:])


def get_json(kapi: Any, *args: str) -> dict[str, Any]:
    return json.loads(kubectl(kapi, "get", *args, "-o", "json").stdout)


def apply(kapi: Any, obj: dict[str, Any]) -> str:
    return kubectl(kapi, "apply", "-f", "-", input=yaml.safe_dump(obj)).stdout


def until(what: str, probe: Callable[[], Any], timeout: float = DEADLINE) -> Any:
    """Poll `probe` until it returns something truthy; fail with its last value after `timeout`."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not value:
        assert time.monotonic() < deadline, f"timed out waiting for {what}; last seen: {value!r}"
        time.sleep(0.2)
        value = probe()
    return value


def advance(kapi: Any, tmp_path: Path, by: str) -> dict[str, Any]:
    """Move the manual clock with kubectl: `kubectl create --raw /kapi/simulation/clock -f body.json`."""
    body = tmp_path / "advance.json"
    body.write_text(json.dumps({"advance": by}))
    return json.loads(kubectl(kapi, "create", "--raw", CLOCK, "-f", str(body)).stdout)


def live_pods(kapi: Any, selector: str, namespace: str = "default") -> list[dict[str, Any]]:
    """Pods matching `selector` that are not being deleted."""
    items = get_json(kapi, "pods", "-n", namespace, "-l", selector)["items"]
    return [p for p in items if not p["metadata"].get("deletionTimestamp")]


def is_ready(pod: dict[str, Any]) -> bool:
    return pod.get("status", {}).get("phase") == "Running" and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod["status"].get("conditions") or [])


def node_names(kapi: Any) -> set[str]:
    return {n["metadata"]["name"] for n in get_json(kapi, "nodes")["items"]}


def images(pods: list[dict[str, Any]]) -> set[str]:
    return {c["image"] for p in pods for c in p["spec"]["containers"]}


def rollout_status(kapi: Any, what: str, namespace: str = "default") -> str:
    out = kubectl(kapi, "rollout", "status", what, "-n", namespace, "--timeout", "60s").stdout
    return out


# ---------------------------------------------------------------- nodes and clock

def test_nodes_are_ready_and_the_clock_is_manual(sim: Any, tmp_path: Path) -> None:
    nodes = until(f"{NODES} nodes", lambda: (lambda items: len(items) == NODES and items)(
        get_json(sim, "nodes")["items"]))
    for node in nodes:
        ready = [c for c in node["status"]["conditions"] if c["type"] == "Ready"]
        assert ready and ready[0]["status"] == "True", node["status"]
    table = kubectl(sim, "get", "nodes").stdout
    assert table.split("\n")[0].split()[:2] == ["NAME", "STATUS"], table
    assert all(" Ready " in line for line in table.splitlines()[1:]), table

    clock = json.loads(kubectl(sim, "get", "--raw", CLOCK).stdout)
    assert clock["manual"] is True and clock["nodes"] == NODES, clock
    moved = advance(sim, tmp_path, "5s")
    assert moved["epochSeconds"] >= clock["epochSeconds"] + 5, (clock, moved)


# ---------------------------------------------------------------- deployments

def test_deployment_rolls_out_updates_undoes_and_scales(sim: Any) -> None:
    assert "deployment.apps/web created" in kubectl(sim, "create", "deployment", "web", "--image", "nginx",
                                                     "--replicas", "3").stdout
    assert 'deployment "web" successfully rolled out' in rollout_status(sim, "deployment/web")
    pods = until("3 ready web pods", lambda: (lambda ps: len(ps) == 3 and all(map(is_ready, ps)) and ps)(
        live_pods(sim, "app=web")))
    nodes = node_names(sim)
    assert {p["spec"]["nodeName"] for p in pods} <= nodes
    assert all(ipaddress.ip_address(p["status"]["podIP"]) for p in pods)
    assert images(pods) == {"nginx"}

    # A new image: a second ReplicaSet takes over, the first is scaled to 0.
    assert "deployment.apps/web image updated" in kubectl(sim, "set", "image", "deployment/web",
                                                          "nginx=nginx:1.27").stdout
    assert 'deployment "web" successfully rolled out' in rollout_status(sim, "deployment/web")
    until("web pods on nginx:1.27 only", lambda: (lambda ps: len(ps) == 3 and images(ps) == {"nginx:1.27"}
                                                  and all(map(is_ready, ps)))(live_pods(sim, "app=web")))

    def replica_sets() -> dict[str, dict[str, Any]]:
        items = get_json(sim, "replicasets", "-l", "app=web")["items"]
        return {rs["spec"]["template"]["spec"]["containers"][0]["image"]: rs for rs in items}

    sets = until("the old ReplicaSet scaled to 0", lambda: (lambda rs: len(rs) == 2 and rs["nginx"]["spec"]["replicas"]
                                                            == 0 and rs["nginx"]["status"].get("replicas", 0) == 0
                                                            and rs)(replica_sets()))
    assert sets["nginx"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "1"
    assert sets["nginx:1.27"]["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert sets["nginx:1.27"]["spec"]["replicas"] == 3
    for rs in sets.values():
        owner = rs["metadata"]["ownerReferences"][0]
        assert (owner["kind"], owner["name"], owner["controller"]) == ("Deployment", "web", True)

    # Undo returns to the first template, now revision 3.
    assert "deployment.apps/web rolled back" in kubectl(sim, "rollout", "undo", "deployment/web").stdout
    assert 'deployment "web" successfully rolled out' in rollout_status(sim, "deployment/web")
    deployment = get_json(sim, "deployment", "web")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == "nginx"
    until("web pods back on nginx", lambda: (lambda ps: len(ps) == 3 and images(ps) == {"nginx"}
                                             and all(map(is_ready, ps)))(live_pods(sim, "app=web")))
    history = kubectl(sim, "rollout", "history", "deployment/web").stdout
    revisions = [line.split()[0] for line in history.splitlines() if line[:1].isdigit()]
    assert revisions == ["2", "3"], history

    # Scale: five ready replicas, shown by `kubectl get deploy` as kube-controller-manager would.
    assert "deployment.apps/web scaled" in kubectl(sim, "scale", "deployment/web", "--replicas", "5").stdout
    rollout_status(sim, "deployment/web")
    until("5 ready web pods", lambda: (lambda ps: len(ps) == 5 and all(map(is_ready, ps)))(live_pods(sim, "app=web")))
    status = until("deployment status 5/5", lambda: (lambda s: s.get("readyReplicas") == 5
                                                     and s.get("availableReplicas") == 5 and s)(
        get_json(sim, "deployment", "web")["status"]))
    assert status["replicas"] == status["updatedReplicas"] == 5, status
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Available"]["status"] == "True", conditions
    assert conditions["Available"]["reason"] == "MinimumReplicasAvailable", conditions
    assert conditions["Progressing"]["status"] == "True", conditions
    assert conditions["Progressing"]["reason"] == "NewReplicaSetAvailable", conditions
    header, *rows = kubectl(sim, "get", "deployment", "web").stdout.splitlines()
    assert header.split()[:4] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE"] and rows[0].split()[1:4] == [
        "5/5", "5", "5"], rows


def test_get_pods_wide_shows_nodes_and_ips(sim: Any) -> None:
    kubectl(sim, "create", "deployment", "wide", "--image", "nginx", "--replicas", "2")
    rollout_status(sim, "deployment/wide")
    out = until("2 running pods with IPs in -o wide", lambda: (lambda text: text.count(" Running ") == 2 and text)(
        kubectl(sim, "get", "pods", "-o", "wide", "-l", "app=wide").stdout))
    header, *rows = out.splitlines()
    columns = header.split()
    assert columns[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"], header
    nodes = node_names(sim)
    for row in rows:
        cells = row.split()
        assert cells[1:3] == ["1/1", "Running"], row
        assert ipaddress.ip_address(cells[5]) and cells[6] in nodes, row


def test_logs_of_a_deployment(sim: Any) -> None:
    kubectl(sim, "create", "deployment", "logged", "--image", "nginx")
    rollout_status(sim, "deployment/logged")
    result = kubectl(sim, "logs", "deploy/logged", check=False)
    assert result.returncode == 0, f"stdout: {result.stdout}\nstderr: {result.stderr}"
    assert "nginx" in result.stdout, result.stdout  # the simulated container's log names its image


# ---------------------------------------------------------------- services

def test_expose_lists_the_ready_pods_in_endpoint_slices(sim: Any) -> None:
    kubectl(sim, "create", "deployment", "svc", "--image", "nginx", "--replicas", "3")
    rollout_status(sim, "deployment/svc")
    assert "service/svc exposed" in kubectl(sim, "expose", "deployment", "svc", "--port", "80").stdout
    ips = until("3 ready pod IPs", lambda: (lambda ps: len(ps) == 3 and all(map(is_ready, ps))
                                            and {p["status"]["podIP"] for p in ps})(live_pods(sim, "app=svc")))

    def sliced() -> Any:
        slices = get_json(sim, "endpointslices", "-l", "kubernetes.io/service-name=svc")["items"]
        ready = {a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]
                 if e.get("conditions", {}).get("ready")}
        return ready == ips and slices

    slices = until("EndpointSlices with the ready pods' IPs", sliced)
    for s in slices:
        assert s["addressType"] == "IPv4", s
        assert s["metadata"]["labels"]["endpointslice.kubernetes.io/managed-by"] == "endpointslice-controller.k8s.io"
        assert [(p.get("port"), p.get("protocol")) for p in s["ports"]] == [(80, "TCP")], s["ports"]
        for endpoint in s["endpoints"]:
            assert endpoint["targetRef"]["kind"] == "Pod" and endpoint.get("nodeName"), endpoint


# ---------------------------------------------------------------- jobs and cronjobs

def test_job_completes(sim: Any) -> None:
    assert "job.batch/pi created" in kubectl(sim, "create", "job", "pi", "--image", "busybox").stdout
    out = kubectl(sim, "wait", "--for=condition=complete", "job/pi", "--timeout", "60s").stdout
    assert "job.batch/pi condition met" in out
    job = get_json(sim, "job", "pi")
    assert job["status"]["succeeded"] == 1 and job["status"].get("completionTime"), job["status"]
    pods = get_json(sim, "pods", "-l", "job-name=pi")["items"]
    assert [p["status"]["phase"] for p in pods] == ["Succeeded"], pods


def test_cronjob_fires_when_the_clock_advances(sim: Any, tmp_path: Path) -> None:
    assert "cronjob.batch/tick created" in kubectl(sim, "create", "cronjob", "tick", "--image", "busybox",
                                                   "--schedule", "*/1 * * * *").stdout

    def jobs_of_tick() -> list[dict[str, Any]]:
        return [j for j in get_json(sim, "jobs")["items"]
                if any(o["kind"] == "CronJob" and o["name"] == "tick" for o in j["metadata"].get("ownerReferences")
                       or [])]

    assert jobs_of_tick() == []  # the manual clock has not reached the next minute
    advance(sim, tmp_path, "61s")
    jobs = until("a Job of CronJob tick", jobs_of_tick)
    name = jobs[0]["metadata"]["name"]
    assert name.startswith("tick-"), name
    out = kubectl(sim, "wait", "--for=condition=complete", f"job/{name}", "--timeout", "60s").stdout
    assert "condition met" in out
    status = until("the CronJob's lastSuccessfulTime", lambda: (lambda s: s.get("lastSuccessfulTime") and s)(
        get_json(sim, "cronjob", "tick").get("status") or {}))
    assert status.get("lastScheduleTime"), status


# ---------------------------------------------------------------- statefulsets and daemonsets

def test_statefulset_rolls_out_in_order(sim: Any) -> None:
    apply(sim, {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "db", "namespace": "default"},
                "spec": {"clusterIP": "None", "selector": {"app": "db"}, "ports": [{"port": 5432}]}})
    apply(sim, {"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "default"},
                "spec": {"serviceName": "db", "replicas": 3, "selector": {"matchLabels": {"app": "db"}},
                         "template": {"metadata": {"labels": {"app": "db"}},
                                      "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}}}})
    rollout_status(sim, "statefulset/db")
    pods = until("3 ready db pods", lambda: (lambda ps: len(ps) == 3 and all(map(is_ready, ps)) and ps)(
        live_pods(sim, "app=db")))
    assert sorted(p["metadata"]["name"] for p in pods) == ["db-0", "db-1", "db-2"]
    status = get_json(sim, "statefulset", "db")["status"]
    assert status["readyReplicas"] == 3 and status["currentRevision"] == status["updateRevision"], status


def test_daemonset_runs_one_pod_per_node(sim: Any) -> None:
    apply(sim, {"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": "agent", "namespace": "default"},
                "spec": {"selector": {"matchLabels": {"app": "agent"}},
                         "template": {"metadata": {"labels": {"app": "agent"}},
                                      "spec": {"containers": [{"name": "agent", "image": "busybox"}]}}}})
    rollout_status(sim, "daemonset/agent")
    pods = until("one ready agent pod per node", lambda: (lambda ps: len(ps) == NODES and all(map(is_ready, ps))
                                                          and ps)(live_pods(sim, "app=agent")))
    assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(node_names(sim))
    status = get_json(sim, "daemonset", "agent")["status"]
    assert status["desiredNumberScheduled"] == status["numberReady"] == NODES, status


# ---------------------------------------------------------------- node capacity

def pod_requesting(name: str, cpu: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
            "spec": {"containers": [{"name": "c", "image": "nginx", "resources": {"requests": {"cpu": cpu}}}]}}


def test_a_pod_that_does_not_fit_waits_for_capacity(kapi_factory: Any) -> None:
    small = kapi_factory(*SIMULATE, "--simulate-nodes", "1", "--simulate-node-capacity", "cpu=1", name="small")
    until("one node", lambda: get_json(small, "nodes")["items"])
    apply(small, pod_requesting("first", "600m"))
    until("first running", lambda: is_ready(get_json(small, "pod", "first")))
    apply(small, pod_requesting("second", "600m"))

    def unschedulable() -> Any:
        pod = get_json(small, "pod", "second")
        scheduled = [c for c in pod["status"].get("conditions") or [] if c["type"] == "PodScheduled"]
        return scheduled and scheduled[0]["status"] == "False" and scheduled[0]

    condition = until("second to be Unschedulable", unschedulable)
    assert condition["reason"] == "Unschedulable", condition
    assert "Insufficient cpu" in condition["message"], condition
    second = get_json(small, "pod", "second")
    assert second["status"]["phase"] == "Pending" and not second["spec"].get("nodeName"), second
    row = kubectl(small, "get", "pod", "second", "--no-headers").stdout.split()
    assert row[1:3] == ["0/1", "Pending"], row

    kubectl(small, "delete", "pod", "first", "--timeout", "60s")
    scheduled = until("second running once first is gone",
                      lambda: (lambda p: is_ready(p) and p)(get_json(small, "pod", "second")))
    assert scheduled["spec"]["nodeName"] == "kapi-node-1"

