"""Server-side apply through the app on what the recorded cases do not cover: a typed Python resource (its
schema comes from the plugin), the request checks before any apply, and ownership of replicas written through /scale."""
from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any, AsyncIterator

import httpx

from kapi.app import create_app
from kapi.config import ServerConfig

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
        assert unknown_type.status_code == 415 and unknown_type.json()["message"] == "415: Unsupported Media Type"
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


def foo_v2(**config: str) -> str:
    return json.dumps({"apiVersion": "hello.zeng.dev/v2", "kind": "Foo", "metadata": {"name": "f"},
                       "spec": {"config": config}})


async def test_managers_of_another_version_are_compared_in_their_own_version(tmp_path: Path) -> None:
    """Foo v1's `spec.msg` is v2's `spec.config.msg`: ownership follows the field across versions, as kube's
    field manager converts to each manager's version (structured-merge-diff's obsolete/multiple-version cases)."""
    foos_v2 = FOOS.replace("/v1/", "/v2/")
    v1 = json.dumps({"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "f"},
                     "spec": {"msg": "hi", "msg1": "there"}})
    async with serve(tmp_path) as http:
        assert (await apply(http, f"{FOOS}/f", v1, fieldManager="one")).status_code == 201
        conflict = await apply(http, f"{foos_v2}/f", foo_v2(msg="yo"), fieldManager="two")
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["message"] == 'Apply failed with 1 conflict: conflict with "one": .spec.msg'
        patched = await http.patch(f"{foos_v2}/f", params={"fieldManager": "up"},
                                   content=json.dumps({"spec": {"config": {"msg1": "again"}}}),
                                   headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
        owners = {e["manager"]: e["fieldsV1"] for e in patched.json()["metadata"]["managedFields"]}
        assert owners["one"] == {"f:spec": {"f:msg": {}}}  # msg1 went to "up", seen in v1
        assert owners["up"] == {"f:spec": {"f:config": {"f:msg1": {}}}}
        forced = await apply(http, f"{foos_v2}/f", foo_v2(msg="yo"), fieldManager="two", force="true")
        owners = {e["manager"]: e["fieldsV1"] for e in forced.json()["metadata"]["managedFields"]}
        assert "one" not in owners and owners["two"] == {"f:spec": {"f:config": {"f:msg": {}}}}
