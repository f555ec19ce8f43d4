"""dryRun=All on every write verb, through the whole app: answers as a real write would, stores nothing,
takes no ClusterIP, and no watcher hears of it."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

from kapi.app import create_app
from kapi.config import ServerConfig

CMS = "/api/v1/namespaces/default/configmaps"
SERVICES = "/api/v1/namespaces/default/services"
DRY = {"dryRun": "All"}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    # a range with one free address: the kubernetes Service takes 10.0.0.1, the next Service gets 10.0.0.2
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False, service_cluster_ip_range="10.0.0.0/30"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "labels": {"app": "x"}},
            "data": data}


def service(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], "selector": {"app": "x"}}}


async def test_a_dry_run_create_takes_no_cluster_ip(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        dry = await http.post(SERVICES, params=DRY, json=service("a"))
        assert dry.status_code == 201, dry.text
        real = await http.post(SERVICES, json=service("b"))
        assert real.json()["spec"]["clusterIP"] == dry.json()["spec"]["clusterIP"] == "10.0.0.2"  # never taken
        assert (await http.get(f"{SERVICES}/a")).status_code == 404


async def test_no_dry_run_write_reaches_storage_or_a_watcher(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        created = (await http.post(CMS, json=cm("live", a="1"))).json()
        rv = created["metadata"]["resourceVersion"]
        answers = [
            await http.post(CMS, params=DRY, json=cm("new", a="1")),
            await http.put(f"{CMS}/live", params=DRY, json={**cm("live", a="2"), "metadata": created["metadata"]}),
            await http.patch(f"{CMS}/live", params=DRY, content=json.dumps({"data": {"a": "3"}}),
                             headers={"Content-Type": "application/merge-patch+json"}),
            await http.patch(f"{CMS}/live", params=DRY, content=json.dumps([{"op": "add", "path": "/data/b",
                                                                             "value": "4"}]),
                             headers={"Content-Type": "application/json-patch+json"}),
            await http.patch(f"{CMS}/live", params=DRY, content=json.dumps({"data": {"a": "5"}}),
                             headers={"Content-Type": "application/strategic-merge-patch+json"}),
            await http.patch(f"{CMS}/live", params={**DRY, "fieldManager": "m", "force": "true"}, content=json.dumps(cm("live", a="6")),
                             headers={"Content-Type": "application/apply-patch+yaml"}),
            await http.delete(f"{CMS}/live", params=DRY),
            await http.delete(CMS, params={**DRY, "labelSelector": "app=x"}),
        ]
        assert [a.status_code for a in answers] == [201, 200, 200, 200, 200, 200, 200, 200]
        assert [a.json()["data"] for a in answers[1:6]] == [{"a": "2"}, {"a": "3"}, {"a": "1", "b": "4"},
                                                             {"a": "5"}, {"a": "6"}]
        assert answers[6].json()["status"] == "Success"
        assert [i["metadata"]["name"] for i in answers[7].json()["items"]] == ["live"]
        stored = (await http.get(f"{CMS}/live")).json()
        assert stored["data"] == {"a": "1"} and stored["metadata"]["resourceVersion"] == rv
        assert (await http.get(f"{CMS}/new")).status_code == 404

        await http.post(CMS, json=cm("later"))
        watched = await http.get(CMS, params={"watch": "1", "resourceVersion": rv, "timeoutSeconds": "1"})
        events = [json.loads(line) for line in watched.text.splitlines() if line.strip()]
        assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "later")]


async def test_an_unsupported_dry_run_is_422_on_writes_only(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        assert (await http.get(CMS, params={"dryRun": "Bogus"})).status_code == 200
        refused = await http.post(CMS, params={"dryRun": "Bogus"}, json=cm("x"))
        assert refused.status_code == 422
        assert refused.json()["message"] == ('CreateOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: '
                                             '["Bogus"]: supported values: "All"')
