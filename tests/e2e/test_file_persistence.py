"""The file backend keeps every object across a restart; the memory backend does not."""
from __future__ import annotations

from pathlib import Path

import httpx

FOOS = "/apis/hello.zeng.dev/v1/namespaces/{ns}/foos"
NAMESPACES = "/api/v1/namespaces"


def foo(name: str, msg: str) -> dict:
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name},
            "spec": {"msg": msg, "msg1": "second"}}


def create(client: httpx.Client, path: str, body: dict) -> dict:
    resp = client.post(path, json=body)
    assert resp.status_code == 201, resp.text
    return resp.json()


def get(client: httpx.Client, path: str) -> dict:
    resp = client.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()


def start(kapi_factory, tmp_path: Path, name: str, *args: str):
    return kapi_factory(*args, name=name)


def test_file_backend_survives_restart(kapi_factory, tmp_path: Path) -> None:
    server = start(kapi_factory, tmp_path, "file", "--backend", "file")
    with server.client() as client:
        ns = create(client, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "persist-ns", "labels": {"team": "a"}}})
        foo_a = create(client, FOOS.format(ns="persist-ns"), foo("keep-a", "one"))
        foo_b = create(client, FOOS.format(ns="default"), foo("keep-b", "two"))
        patched = client.patch(f"{FOOS.format(ns='default')}/keep-b", json={"spec": {"msg": "patched"}},
                               headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
        foo_b = patched.json()
        assert foo_b["metadata"]["generation"] == 2
        doomed = create(client, FOOS.format(ns="default"), foo("gone-c", "three"))
        assert client.delete(f"{FOOS.format(ns='default')}/gone-c").status_code == 200
        before_list = get(client, "/apis/hello.zeng.dev/v1/foos")
    revisions = [int(o["metadata"]["resourceVersion"]) for o in (ns, foo_a, foo_b, doomed)]
    assert len(set(revisions)) == len(revisions)

    server.restart()

    with server.client() as client:
        assert get(client, f"{NAMESPACES}/persist-ns") == ns
        assert get(client, f"{FOOS.format(ns='persist-ns')}/keep-a") == foo_a
        assert get(client, f"{FOOS.format(ns='default')}/keep-b") == foo_b
        assert client.get(f"{FOOS.format(ns='default')}/gone-c").status_code == 404
        after_list = get(client, "/apis/hello.zeng.dev/v1/foos")
        assert after_list["items"] == before_list["items"]
        assert int(after_list["metadata"]["resourceVersion"]) >= int(before_list["metadata"]["resourceVersion"])
        names = [o["metadata"]["name"] for o in get(client, NAMESPACES)["items"]]
        for expected in ("default", "kube-system", "kube-public", "persist-ns"):
            assert expected in names

        # writes after the restart get higher resourceVersions than anything before it
        highest = max(revisions)
        new = create(client, FOOS.format(ns="default"), foo("after-d", "four"))
        assert int(new["metadata"]["resourceVersion"]) > highest
        assert new["metadata"]["uid"] not in {o["metadata"]["uid"] for o in (ns, foo_a, foo_b, doomed)}
        updated = client.patch(f"{FOOS.format(ns='persist-ns')}/keep-a", json={"spec": {"msg": "later"}},
                               headers={"Content-Type": "application/merge-patch+json"})
        assert updated.status_code == 200, updated.text
        assert int(updated.json()["metadata"]["resourceVersion"]) > int(new["metadata"]["resourceVersion"])
        assert updated.json()["metadata"]["uid"] == foo_a["metadata"]["uid"]
        # a deleted name can be reused, as a new object
        reborn = create(client, FOOS.format(ns="default"), foo("gone-c", "again"))
        assert reborn["metadata"]["uid"] != doomed["metadata"]["uid"]
        # the stale resourceVersion from before the restart still conflicts
        stale = client.put(f"{FOOS.format(ns='persist-ns')}/keep-a", json=foo_a)
        assert stale.status_code == 409, stale.text


def test_file_backend_survives_two_restarts_and_kubectl_sees_it(kapi_factory, tmp_path: Path) -> None:
    server = start(kapi_factory, tmp_path, "twice")
    server.kubectl("create", "namespace", "persist-kubectl")
    manifest = ("apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata:\n  name: kept\n"
                "  namespace: persist-kubectl\nspec:\n  msg: durable\n")
    server.kubectl("apply", "-f", "-", input=manifest)
    with server.client() as client:
        before = get(client, f"{FOOS.format(ns='persist-kubectl')}/kept")
        ns_before = get(client, f"{NAMESPACES}/persist-kubectl")
    server.restart()
    server.restart()
    with server.client() as client:
        assert get(client, f"{FOOS.format(ns='persist-kubectl')}/kept") == before
        assert get(client, f"{NAMESPACES}/persist-kubectl") == ns_before
    out = server.kubectl("get", "foos", "-n", "persist-kubectl").stdout
    assert "kept" in out and "durable" in out
    # apply with no change stays unchanged: last-applied survived too
    assert "unchanged" in server.kubectl("apply", "-f", "-", input=manifest).stdout


def test_memory_backend_loses_objects_on_restart(kapi_factory, tmp_path: Path) -> None:
    server = start(kapi_factory, tmp_path, "memory", "--backend", "memory")
    with server.client() as client:
        create(client, NAMESPACES, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "fleeting"}})
        create(client, FOOS.format(ns="default"), foo("fleeting-foo", "bye"))
        assert client.get(f"{FOOS.format(ns='default')}/fleeting-foo").status_code == 200
    server.restart()
    with server.client() as client:
        resp = client.get(f"{FOOS.format(ns='default')}/fleeting-foo")
        assert resp.status_code == 404, resp.text
        assert resp.json()["reason"] == "NotFound"
        assert client.get(f"{NAMESPACES}/fleeting").status_code == 404
        assert get(client, "/apis/hello.zeng.dev/v1/foos")["items"] == []
        # the built-in namespaces are back
        names = [o["metadata"]["name"] for o in get(client, NAMESPACES)["items"]]
        assert {"default", "kube-system", "kube-public"} <= set(names)
    # the memory backend wrote no object to disk
    data = tmp_path / "memory" / "data"
    if data.exists():
        for path in data.rglob("*"):
            assert not path.is_file() or b"fleeting" not in path.read_bytes(), path
