"""Server-side apply through the app on what the recorded cases do not cover: a typed Python resource (its
schema comes from the plugin), the request checks before any apply, and ownership of replicas written through /scale."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

from server.app import create_app
from server.config import ServerConfig

FOOS = "/apis/hello.zeng.dev/v1/namespaces/default/foos"
APPLY = {"Content-Type": "application/apply-patch+yaml"}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def foo(msg: str) -> str:
    return json.dumps({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "f"},
                       "spec": {"msg": msg}})


async def apply(http: httpx.AsyncClient, path: str, body: str, **params: str) -> httpx.Response:
    return await http.patch(path, params=params, content=body, headers=APPLY)


async def test_a_typed_python_resource_takes_apply_with_ownership_and_conflicts(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        created = await apply(http, f"{FOOS}/f", foo("hi"), fieldManager="one")
        assert created.status_code == 201, created.text
        entry = created.json()["metadata"]["managedFields"][0]
        assert (entry["manager"], entry["operation"], entry["fieldsV1"]) == ("one", "Apply", {"f:spec": {"f:msg": {}}})
        conflict = await apply(http, f"{FOOS}/f", foo("yo"), fieldManager="two")
        assert conflict.status_code == 409
        assert conflict.json()["message"] == 'Apply failed with 1 conflict: conflict with "one": .spec.msg'
        forced = await apply(http, f"{FOOS}/f", foo("yo"), fieldManager="two", force="true")
        assert forced.json()["spec"]["msg"] == "yo"
        assert [e["manager"] for e in forced.json()["metadata"]["managedFields"]] == ["two"]


async def test_requests_kube_refuses_before_applying_anything(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        not_a_map = await apply(http, f"{FOOS}/f", "[1, 2]", fieldManager="m")
        assert not_a_map.status_code == 400 and not_a_map.json()["message"].startswith("error decoding patch")
        unknown_type = await http.patch(f"{FOOS}/f", content="{}", headers={"Content-Type": "text/plain"})
        assert unknown_type.status_code == 415 and "application/apply-patch+yaml" in unknown_type.json()["message"]
        missing = await apply(http, f"{FOOS}/f", foo("x"), fieldManager="m", dryRun="All")
        assert missing.status_code == 201
        assert (await http.get(f"{FOOS}/f")).status_code == 404


async def test_scaling_through_scale_credits_the_scale_subresource(tmp_path: Path) -> None:
    deployments = "/apis/apps/v1/namespaces/default/deployments"
    body: dict[str, Any] = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"}, "spec": {
        "replicas": 1, "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    async with serve(tmp_path) as http:
        assert (await http.post(deployments, json=body, params={"fieldManager": "creator"})).status_code == 201
        scaled = await http.patch(f"{deployments}/web/scale", params={"fieldManager": "scaler"},
                                  content=json.dumps({"spec": {"replicas": 4}}),
                                  headers={"Content-Type": "application/merge-patch+json"})
        assert scaled.status_code == 200 and scaled.json()["spec"]["replicas"] == 4
        entries = (await http.get(f"{deployments}/web")).json()["metadata"]["managedFields"]
        scaler = next(e for e in entries if e["manager"] == "scaler")
        assert (scaler["subresource"], scaler["fieldsV1"]) == ("scale", {"f:spec": {"f:replicas": {}}})
        creator = next(e for e in entries if e["manager"] == "creator")
        assert "f:replicas" not in creator["fieldsV1"]["f:spec"]  # the scaler took it over
