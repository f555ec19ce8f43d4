"""One DELETE of a collection on the file and etcd backends, with its deletes in flight together.

What a client of kube-apiserver relies on: exactly the selected objects go, each one once (a watch sees one
DELETED per object), objects changed while the DELETE runs are deleted all the same, finalizers keep theirs
with a deletionTimestamp, the answer lists what was deleted in list order, and the deletes are durable.
"""
from __future__ import annotations

import json
import threading
import uuid

import httpx

from tests.e2e.conftest import KapiProcess

KAPI_ARGS = ["--delete-collection-workers", "16"]
COUNT = 300


def configmaps(ns: str) -> str:
    return f"/api/v1/namespaces/{ns}/configmaps"


def namespace(c: httpx.Client) -> str:
    ns = f"delcol-{uuid.uuid4().hex[:8]}"
    r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    assert r.status_code == 201, r.text
    return ns


def fill(c: httpx.Client, ns: str, finalized: set[str] = frozenset()) -> list[str]:
    """COUNT configmaps, even ones labelled tier=a and odd ones tier=b; their names in list order."""
    names = [f"cm-{i:04d}" for i in range(COUNT)]
    for i, name in enumerate(names):
        meta = {"name": name, "labels": {"tier": "ab"[i % 2]}}
        if name in finalized:
            meta["finalizers"] = ["e2e.kapi.dev/hold"]
        r = c.post(configmaps(ns), json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta,
                                         "data": {"n": str(i)}})
        assert r.status_code == 201, r.text
    return names


def listed(c: httpx.Client, ns: str) -> dict[str, dict]:
    r = c.get(configmaps(ns))
    assert r.status_code == 200, r.text
    return {o["metadata"]["name"]: o for o in r.json()["items"]}


def test_deletes_exactly_the_selected_objects_while_they_change(kapi: KapiProcess) -> None:
    with kapi.client() as c:
        ns = namespace(c)
        names = fill(c, ns)
        even, odd = names[0::2], names[1::2]
        stop = threading.Event()
        patched: list[int] = []

        def patch_evens() -> None:
            """Change the objects being deleted, as a controller would; a 404 means the DELETE got there first."""
            with kapi.client() as w:
                while not stop.is_set():
                    for name in even[::7]:
                        r = w.patch(f"{configmaps(ns)}/{name}", json={"data": {"touched": "yes"}},
                                    headers={"Content-Type": "application/merge-patch+json"})
                        assert r.status_code in (200, 404), r.text
                        patched.append(r.status_code)

        writer = threading.Thread(target=patch_evens)
        writer.start()
        try:
            r = c.delete(configmaps(ns), params={"labelSelector": "tier=a"}, timeout=60)
        finally:
            stop.set()
            writer.join()
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["kind"] == "ConfigMapList" and body["metadata"]["resourceVersion"]
        assert [o["metadata"]["name"] for o in body["items"]] == even
        assert patched, "the writer ran alongside the DELETE"
        left = listed(c, ns)
        assert sorted(left) == odd
        assert all(o["data"] == {"n": str(int(name[3:]))} for name, o in left.items())  # untouched

        kapi.restart()  # the deletes are durable, not just gone from a cache
        with kapi.client() as again:
            assert sorted(listed(again, ns)) == odd


def test_finalizers_hold_and_a_watch_sees_each_delete_once(kapi: KapiProcess) -> None:
    with kapi.client() as c:
        ns = namespace(c)
        held = {"cm-0003", "cm-0150"}
        names = fill(c, ns, finalized=held)
        rv = c.get(configmaps(ns)).json()["metadata"]["resourceVersion"]
        events: list[dict] = []

        def watch() -> None:
            params = {"watch": "true", "resourceVersion": rv, "timeoutSeconds": "20"}
            with httpx.Client(base_url=kapi.url, timeout=30) as w, w.stream("GET", configmaps(ns),
                                                                          params=params) as stream:
                for line in stream.iter_lines():
                    if line:
                        events.append(json.loads(line))
                    kinds = [e["type"] for e in events]
                    if kinds.count("DELETED") >= COUNT - len(held) and kinds.count("MODIFIED") >= len(held):
                        return

        watcher = threading.Thread(target=watch)
        watcher.start()
        r = c.delete(configmaps(ns), timeout=60)
        watcher.join()
        assert r.status_code == 200, r.text
        assert [o["metadata"]["name"] for o in r.json()["items"]] == names  # held ones answered as they now are
        deleted = [e["object"]["metadata"]["name"] for e in events if e["type"] == "DELETED"]
        assert sorted(deleted) == sorted(set(names) - held)  # each exactly once
        modified = {e["object"]["metadata"]["name"] for e in events if e["type"] == "MODIFIED"}
        assert modified == held  # a deletionTimestamp set, kept for their finalizer
        left = listed(c, ns)
        assert sorted(left) == sorted(held)
        assert all(o["metadata"].get("deletionTimestamp") for o in left.values())

        for name in held:  # the finalizer's owner lets go: gone
            r = c.patch(f"{configmaps(ns)}/{name}", json={"metadata": {"finalizers": None}},
                        headers={"Content-Type": "application/merge-patch+json"})
            assert r.status_code == 200, r.text
        assert listed(c, ns) == {}
