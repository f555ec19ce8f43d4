"""Object life cycle with real requests: finalizers, propagation policies, namespace deletion."""
from __future__ import annotations

import time
import uuid
from typing import Any, Callable

import httpx
import pytest

FOOS = "/apis/hello.zeng.dev/v1/namespaces/{ns}/foos"


def eventually(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(what)


@pytest.fixture
def client(kapi: Any) -> Any:
    with kapi.client() as c:
        yield c


@pytest.fixture
def ns(client: httpx.Client) -> str:
    name = f"life-{uuid.uuid4().hex[:8]}"
    assert client.post("/api/v1/namespaces", json={"metadata": {"name": name}}).status_code == 201
    return name


def make_foo(client: httpx.Client, ns: str, name: str, owner: dict[str, Any] | None = None,
             block: bool = False, **meta: Any) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, **meta}
    if owner:
        metadata["ownerReferences"] = [{"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                                        "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"],
                                        "blockOwnerDeletion": block}]
    resp = client.post(FOOS.format(ns=ns), json={"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                                                 "metadata": metadata, "spec": {"msg": name}})
    assert resp.status_code == 201, resp.text
    return resp.json()


def exists(client: httpx.Client, ns: str, name: str) -> bool:
    return client.get(f"{FOOS.format(ns=ns)}/{name}").status_code == 200


def delete(client: httpx.Client, ns: str, name: str, policy: str | None = None) -> httpx.Response:
    body = {"propagationPolicy": policy} if policy else {}
    return client.request("DELETE", f"{FOOS.format(ns=ns)}/{name}", json=body)


def test_background_deletion_collects_dependents(client: httpx.Client, ns: str) -> None:
    owner = make_foo(client, ns, "owner")
    make_foo(client, ns, "child", owner)
    assert delete(client, ns, "owner", "Background").status_code == 200
    eventually(lambda: not exists(client, ns, "child"), "the dependent of a deleted owner was not collected")


def test_foreground_deletion_waits_for_blocking_dependents(client: httpx.Client, ns: str) -> None:
    owner = make_foo(client, ns, "owner")
    make_foo(client, ns, "child", owner, block=True, finalizers=["example.com/hold"])
    resp = delete(client, ns, "owner", "Foreground")
    assert resp.status_code == 200 and "foregroundDeletion" in resp.json()["metadata"]["finalizers"]
    eventually(lambda: client.get(f"{FOOS.format(ns=ns)}/child").json()["metadata"].get("deletionTimestamp"),
               "the dependent was not deleted in the foreground")
    time.sleep(0.3)
    assert exists(client, ns, "owner"), "the owner went before its blocking dependent"
    client.patch(f"{FOOS.format(ns=ns)}/child", json={"metadata": {"finalizers": None}},
                 headers={"Content-Type": "application/merge-patch+json"})
    eventually(lambda: not exists(client, ns, "owner") and not exists(client, ns, "child"),
               "the owner stayed after its dependents were gone")


def test_orphan_deletion_frees_dependents(client: httpx.Client, ns: str) -> None:
    owner = make_foo(client, ns, "owner")
    make_foo(client, ns, "child", owner)
    assert delete(client, ns, "owner", "Orphan").status_code == 200
    eventually(lambda: not exists(client, ns, "owner"), "the orphaning owner was not deleted")
    child = client.get(f"{FOOS.format(ns=ns)}/child").json()
    assert child["metadata"].get("ownerReferences") in (None, [])


def test_a_dependent_with_another_owner_survives(client: httpx.Client, ns: str) -> None:
    first, second = make_foo(client, ns, "first"), make_foo(client, ns, "second")
    child = make_foo(client, ns, "child", first)
    refs = child["metadata"]["ownerReferences"] + [{"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                                                     "name": "second", "uid": second["metadata"]["uid"]}]
    client.patch(f"{FOOS.format(ns=ns)}/child", json={"metadata": {"ownerReferences": refs}},
                 headers={"Content-Type": "application/merge-patch+json"})
    delete(client, ns, "first")
    eventually(lambda: [r["name"] for r in client.get(f"{FOOS.format(ns=ns)}/child").json()["metadata"]
                        .get("ownerReferences", [])] == ["second"], "the gone owner's reference stayed")


def test_namespace_deletion_empties_then_removes_it(client: httpx.Client, kapi: Any, ns: str) -> None:
    make_foo(client, ns, "a")
    make_foo(client, ns, "held", finalizers=["example.com/hold"])
    resp = client.delete(f"/api/v1/namespaces/{ns}")
    assert resp.status_code == 200 and resp.json()["status"]["phase"] == "Terminating"
    eventually(lambda: not exists(client, ns, "a"), "the namespace's objects were not deleted")
    assert client.get(f"/api/v1/namespaces/{ns}").status_code == 200, "gone while an object was still held"
    created = client.post(FOOS.format(ns=ns), json={"metadata": {"name": "late"}, "spec": {}})
    assert created.status_code == 403 and created.json()["reason"] == "Forbidden"
    client.patch(f"{FOOS.format(ns=ns)}/held", json={"metadata": {"finalizers": None}},
                 headers={"Content-Type": "application/merge-patch+json"})
    eventually(lambda: client.get(f"/api/v1/namespaces/{ns}").status_code == 404, "the namespace never went away")
    kapi.kubectl("create", "namespace", ns)  # the name is free again
