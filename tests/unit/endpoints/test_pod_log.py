"""pods/log: kube's container checks and kubelet refusals, the simulated text, and the PodLogOptions."""
from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from kapi.app import create_app
from kapi.config import ServerConfig
from kapi.testing import start_server

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}
STARTED = "2024-05-01T10:00:00Z"
RUNNING = {"phase": "Running", "containerStatuses": [
    {"name": "c", "ready": True, "restartCount": 0, "image": "nginx:1.25", "imageID": "", "containerID": "sim://1",
     "state": {"running": {"startedAt": STARTED}}}]}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def pod(name: str, *containers: str, node: str = "node-1", annotations: dict[str, str] | None = None,
        init: tuple[str, ...] = ()) -> dict[str, Any]:
    spec: dict[str, Any] = {"containers": [{"name": c, "image": "nginx:1.25"} for c in containers or ("c",)]}
    if init:
        spec["initContainers"] = [{"name": c, "image": "busybox"} for c in init]
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": spec}


async def make(http: httpx.AsyncClient, obj: dict[str, Any], status: dict[str, Any] | None = None) -> None:
    assert (await http.post(PODS, json=obj)).status_code == 201
    if status is not None:
        done = await http.patch(f"{PODS}/{obj['metadata']['name']}/status", json={"status": status}, headers=MERGE)
        assert done.status_code == 200, done.text


async def test_a_running_container_tells_where_and_when_it_started(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await make(http, pod("web"), RUNNING)
        answer = await http.get(f"{PODS}/web/log")
        assert answer.status_code == 200 and answer.headers["content-type"] == "text/plain"
        assert answer.text == f"kapi simulated container c: image nginx:1.25 started on node node-1 at {STARTED}\n"
        stamped = await http.get(f"{PODS}/web/log", params={"timestamps": "true"})
        assert stamped.text.startswith("2024-05-01T10:00:00.000000000Z kapi simulated container c")
        resources = {r["name"]: r for r in (await http.get("/api/v1")).json()["resources"]}
        assert resources["pods/log"]["verbs"] == ["get"] and resources["pods/log"]["kind"] == "Pod"
        assert (await http.post(f"{PODS}/web/log", json={})).status_code == 405


async def test_the_annotation_is_the_log_and_options_cut_it(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await make(http, pod("app", annotations={"kapi.dev/simulate-log": "one\ntwo\nthree\n"}), RUNNING)
        assert (await http.get(f"{PODS}/app/log")).text == "one\ntwo\nthree\n"
        assert (await http.get(f"{PODS}/app/log", params={"tailLines": "2"})).text == "two\nthree\n"
        assert (await http.get(f"{PODS}/app/log", params={"tailLines": "0"})).text == ""
        assert (await http.get(f"{PODS}/app/log", params={"limitBytes": "5"})).text == "one\nt"
        assert (await http.get(f"{PODS}/app/log", params={"follow": "true", "container": "c"})).text.count("\n") == 3
        assert (await http.get(f"{PODS}/app/log", params={"sinceSeconds": "60"})).text == ""  # started long ago
        bad = await http.get(f"{PODS}/app/log", params={"tailLines": "-1", "limitBytes": "0"})
        assert bad.status_code == 422 and bad.json()["reason"] == "Invalid"
        assert bad.json()["message"] == ('PodLogOptions "app" is invalid: [tailLines: Invalid value: -1: must be '
                                         'greater than or equal to 0, limitBytes: Invalid value: 0: must be greater '
                                         'than 0]')
        assert (await http.get(f"{PODS}/app/log", params={"tailLines": "x"})).status_code == 400


async def test_container_choice_is_checked_like_kube(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await make(http, pod("two", "a", "b", init=("setup",)))
        many = await http.get(f"{PODS}/two/log")
        assert many.status_code == 400 and many.json()["reason"] == "BadRequest"
        assert many.json()["message"] == "a container name must be specified for pod two, choose one of: [setup a b]"
        unknown = await http.get(f"{PODS}/two/log", params={"container": "x"})
        assert unknown.json()["message"] == "container x is not valid for pod two"
        assert (await http.get(f"{PODS}/nope/log")).status_code == 404


async def test_the_kubelets_refusals(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await make(http, pod("unscheduled", node=""))
        empty = await http.get(f"{PODS}/unscheduled/log")
        assert empty.status_code == 200 and empty.text == ""  # kube: no node to ask
        await make(http, pod("fresh"))
        fresh = await http.get(f"{PODS}/fresh/log")
        assert fresh.status_code == 400 and fresh.json()["message"] == 'container "c" in pod "fresh" is not available'
        waiting = {"phase": "Pending", "containerStatuses": [
            {"name": "c", "ready": False, "restartCount": 0, "image": "nginx:1.25", "imageID": "",
             "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        await make(http, pod("creating"), waiting)
        creating = await http.get(f"{PODS}/creating/log")
        assert creating.status_code == 400
        assert creating.json()["message"] == 'container "c" in pod "creating" is waiting to start: ContainerCreating'
        previous = await http.get(f"{PODS}/creating/log", params={"previous": "true"})
        assert previous.json()["message"] == 'previous terminated container "c" in pod "creating" not found'


async def test_terminated_and_previous_instances(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        restarted = {"phase": "Running", "containerStatuses": [
            {"name": "c", "ready": True, "restartCount": 1, "image": "nginx:1.25", "imageID": "",
             "containerID": "sim://2", "state": {"running": {"startedAt": "2024-05-01T10:01:00Z"}},
             "lastState": {"terminated": {"exitCode": 3, "reason": "Error", "containerID": "sim://1",
                                          "startedAt": STARTED, "finishedAt": "2024-05-01T10:00:30Z"}}}]}
        await make(http, pod("crashy"), restarted)
        now = (await http.get(f"{PODS}/crashy/log")).text
        assert now == "kapi simulated container c: image nginx:1.25 started on node node-1 at 2024-05-01T10:01:00Z\n"
        before = (await http.get(f"{PODS}/crashy/log", params={"previous": "true", "timestamps": "true"})).text
        assert before.splitlines() == [
            f"2024-05-01T10:00:00.000000000Z kapi simulated container c: image nginx:1.25 started on node node-1 "
            f"at {STARTED}",
            "2024-05-01T10:00:30.000000000Z kapi simulated container c: exited with code 3 (Error)",
        ]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_logs() -> None:
    with start_server() as kapi:
        status, _ = kapi.request("POST", PODS, pod("web", annotations={"kapi.dev/simulate-log": "hello\nworld"}))
        assert status == 201
        status, _ = kapi.request("PATCH", f"{PODS}/web/status", {"status": RUNNING},
                                 content_type="application/merge-patch+json")
        assert status == 200
        run = subprocess.run(["kubectl", "--kubeconfig", str(kapi.kubeconfig), "logs", "pod/web", "--tail", "1"],
                             capture_output=True, text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        assert run.stdout == "world\n"
        kapi.request("POST", PODS, pod("fresh"))
        refused = subprocess.run(["kubectl", "--kubeconfig", str(kapi.kubeconfig), "logs", "fresh"],
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode != 0
        assert 'Error from server (BadRequest): container "c" in pod "fresh" is not available' in refused.stderr
