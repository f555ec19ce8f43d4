"""A LIST made from stored bytes answers the very bytes the object path does: the same list as one whose
label selector matches everything (selectors always take the object path), page by page. Only
remainingItemCount differs, as kube's does: a filtered list cannot count what is left."""
from __future__ import annotations

from typing import Iterator

import httpx
import orjson
import pytest

from kapi.testing import RunningServer, start_server

NS = "default"
COLLECTIONS = {
    "configmaps": ("/api/v1/namespaces/default/configmaps",
                   lambda i: {"apiVersion": "v1", "kind": "ConfigMap", "data": {"i": str(i), "u": "é"}}),
    "deployments": ("/apis/apps/v1/namespaces/default/deployments", lambda i: {
        "apiVersion": "apps/v1", "kind": "Deployment", "spec": {
            "selector": {"matchLabels": {"app": "a"}}, "replicas": i,
            "template": {"metadata": {"labels": {"app": "a"}}, "spec": {"containers": [
                {"name": "c", "image": "nginx"}]}}}}),
    "foos": ("/apis/hello.zeng.dev/v1/namespaces/default/foos",
             lambda i: {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "spec": {"msg": f"m{i}"}}),
}


@pytest.fixture(scope="module")
def kapi() -> Iterator[RunningServer]:
    with start_server(backend="memory", examples=True) as server:
        yield server


@pytest.mark.parametrize("resource", list(COLLECTIONS))
def test_lists_from_stored_bytes_are_the_object_lists(kapi: RunningServer, resource: str) -> None:
    path, make = COLLECTIONS[resource]
    with httpx.Client(base_url=kapi.url, headers={"Accept": "application/json"}) as client:
        for i in range(5):
            body = make(i)
            body["metadata"] = {"name": f"x{i}", "labels": {"n": str(i)}}
            assert client.post(path, json=body).status_code == 201
        for limit in ("", "2"):
            token, pages = "", 0
            while True:
                params = {"limit": limit, "continue": token} if limit else {}
                fast = client.get(path, params=params)
                slow = client.get(path, params={**params, "labelSelector": "!absent"})
                assert fast.status_code == slow.status_code == 200
                assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"
                assert fast.content == orjson.dumps(fast.json())  # compact, keys in the object path's order
                listed = fast.json()
                remaining = listed["metadata"].pop("remainingItemCount", None)
                assert remaining == (None if not limit or pages == 2 else 3 - 2 * pages)
                assert orjson.dumps(listed) == slow.content
                pages += 1
                token = fast.json()["metadata"].get("continue", "")
                if not token:
                    break
            assert pages == (3 if limit else 1)
        one = client.get(f"{path}/x3")
        assert one.status_code == 200 and one.json()["metadata"]["name"] == "x3"
        assert one.content.startswith(b'{"apiVersion":')
