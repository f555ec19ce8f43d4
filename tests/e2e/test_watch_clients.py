"""Watch through real clients: `kubectl get -w` and the Python `kubernetes` client's `Watch`.

Writes go through raw HTTP so that every event a watcher sees is one the test made.
"""
from __future__ import annotations

import os
import queue
import shutil
import subprocess
import threading
import time
import uuid
from typing import Any, Callable, Iterator

import httpx
import kubernetes
import orjson
import pytest
from kubernetes.client.rest import ApiException

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
GROUP, VERSION, PLURAL = "hello.zeng.dev", "v1", "foos"
API = f"{GROUP}/{VERSION}"


# ---------------------------------------------------------------- helpers

def foos_path(namespace: str, name: str = "") -> str:
    return f"/apis/{API}/namespaces/{namespace}/{PLURAL}" + (f"/{name}" if name else "")


def new_namespace(server: Any, prefix: str) -> str:
    name = f"{prefix}-{uuid.uuid4().hex[:6]}"
    with server.client() as c:
        r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
        assert r.status_code == 201, r.text
    return name


def create_foo(server: Any, namespace: str, name: str, msg: str, labels: dict[str, str] | None = None) -> dict:
    body = {"apiVersion": API, "kind": "Foo", "metadata": {"name": name, "labels": labels or {}},
            "spec": {"msg": msg}}
    with server.client() as c:
        r = c.post(foos_path(namespace), json=body)
    assert r.status_code == 201, r.text
    return r.json()


def patch_foo(server: Any, namespace: str, name: str, patch: dict) -> dict:
    with server.client() as c:
        r = c.patch(foos_path(namespace, name), content=orjson.dumps(patch),
                    headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    return r.json()


def delete_foo(server: Any, namespace: str, name: str) -> None:
    with server.client() as c:
        r = c.delete(foos_path(namespace, name))
    assert r.status_code == 200, r.text


class KubectlWatch:
    """`kubectl get ... -w` in the background; its stdout lines are read by a thread."""

    def __init__(self, server: Any, *args: str) -> None:
        cmd = [KUBECTL, "--server", server.url, "--cache-dir", str(server.cache_dir), "get", *args, "-w"]
        env = {**os.environ, "KUBECONFIG": "/dev/null"}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[list[str]], bool], timeout: float = 20.0) -> list[str]:
        """Read lines until `predicate(cells of a line)` holds; that line's cells."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if line is None:
                err = self.proc.stderr.read() if self.proc.stderr else ""
                raise AssertionError(f"kubectl exited ({self.proc.wait()}); output so far {self.lines}; {err}")
            self.lines.append(line)
            if predicate(line.split()):
                return line.split()
        raise AssertionError(f"no matching line within {timeout}s; kubectl printed: {self.lines}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def kubectl_watch() -> Iterator[Callable[..., KubectlWatch]]:
    started: list[KubectlWatch] = []

    def start(server: Any, *args: str) -> KubectlWatch:
        started.append(KubectlWatch(server, *args))
        return started[-1]

    yield start
    for w in started:
        w.stop()


def custom_api(server: Any) -> kubernetes.client.CustomObjectsApi:
    config = kubernetes.client.Configuration(host=server.url)
    return kubernetes.client.CustomObjectsApi(kubernetes.client.ApiClient(config))


def list_rv(api: kubernetes.client.CustomObjectsApi, namespace: str) -> str:
    listed: Any = api.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL)
    return str(listed["metadata"]["resourceVersion"])


def summary(event: dict) -> tuple[str, str, str]:
    """(type, name, msg) of a watch event from the Python client."""
    obj = event["raw_object"]
    return event["type"], obj["metadata"].get("name", ""), (obj.get("spec") or {}).get("msg", "")


# ---------------------------------------------------------------- kubectl get -w

def test_kubectl_get_w_shows_create_change_delete(kapi: Any, kubectl_watch: Callable[..., KubectlWatch]) -> None:
    ns = new_namespace(kapi, "kw")
    create_foo(kapi, ns, "seed", "present")
    # the objects are written in v1; watch them in v1 too (`foos` alone would be the preferred v2)
    w = kubectl_watch(kapi, f"{PLURAL}.{VERSION}.{GROUP}", "-n", ns, "--output-watch-events")
    header = w.wait_for(lambda cells: cells[:1] == ["EVENT"])
    assert header == ["EVENT", "NAME", "MESSAGE", "AGE"]
    assert w.wait_for(lambda cells: cells[1:2] == ["seed"])[:3] == ["ADDED", "seed", "present"]

    create_foo(kapi, ns, "live", "hello")
    assert w.wait_for(lambda cells: cells[1:2] == ["live"])[:3] == ["ADDED", "live", "hello"]
    patch_foo(kapi, ns, "live", {"spec": {"msg": "changed"}})
    assert w.wait_for(lambda cells: cells[1:2] == ["live"])[:3] == ["MODIFIED", "live", "changed"]
    delete_foo(kapi, ns, "live")
    assert w.wait_for(lambda cells: cells[1:2] == ["live"])[:3] == ["DELETED", "live", "changed"]
    assert w.proc.poll() is None, "kubectl get -w must keep watching"


def test_kubectl_get_w_plain_prints_rows(kapi: Any, kubectl_watch: Callable[..., KubectlWatch]) -> None:
    """Without --output-watch-events: a Table row per event, the AGE cell formatted by the server."""
    ns = new_namespace(kapi, "kp")
    w = kubectl_watch(kapi, "fo", "-n", ns)  # short name; whether it lists before or after the create, it shows it
    create_foo(kapi, ns, "row", "first")
    # `fo` is read in the preferred version, v2, whose columns these are; a Foo written in v1 has no
    # image nor phase, so those cells are empty and the row splits into name, message and age
    assert w.wait_for(lambda cells: cells[:1] == ["NAME"]) == ["NAME", "IMAGE", "MESSAGE", "PHASE", "AGE"]
    assert w.wait_for(lambda cells: cells[:1] == ["row"])[:2] == ["row", "first"]
    patch_foo(kapi, ns, "row", {"spec": {"msg": "second"}})
    row = w.wait_for(lambda cells: cells[:1] == ["row"])
    assert row[:2] == ["row", "second"] and row[2][-1] in "smhd"
    delete_foo(kapi, ns, "row")
    assert w.wait_for(lambda cells: cells[:1] == ["row"])[:2] == ["row", "second"]  # the deleted object's last row


def test_kubectl_get_single_object_w(kapi: Any, kubectl_watch: Callable[..., KubectlWatch]) -> None:
    ns = new_namespace(kapi, "ks")
    create_foo(kapi, ns, "one", "first")
    w = kubectl_watch(kapi, "foo", "one", "-n", ns, "--output-watch-events")
    assert w.wait_for(lambda cells: cells[1:2] == ["one"])[:3] == ["ADDED", "one", "first"]
    create_foo(kapi, ns, "other", "noise")  # another object: never shown
    patch_foo(kapi, ns, "other", {"spec": {"msg": "more-noise"}})
    patch_foo(kapi, ns, "one", {"spec": {"msg": "second"}})
    assert w.wait_for(lambda cells: "one" in cells)[:3] == ["MODIFIED", "one", "second"]
    delete_foo(kapi, ns, "other")
    delete_foo(kapi, ns, "one")
    assert w.wait_for(lambda cells: "one" in cells)[:3] == ["DELETED", "one", "second"]
    assert not any("other" in line for line in w.lines), w.lines


# ---------------------------------------------------------------- the Python client's Watch

def test_python_watch_streams_bookmarks_and_resumes(kapi_factory: Any) -> None:
    server = kapi_factory("--watch-bookmark-interval", "1s", name="bookmarks")
    api = custom_api(server)
    create_foo(server, "default", "py-seed", "seed")
    w = kubernetes.watch.Watch()
    seen: list[tuple[str, str, str]] = []
    bookmark_rv = ""
    wrote = False
    deleted_rv = 0
    for event in w.stream(api.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                          allow_watch_bookmarks=True, timeout_seconds=20):
        seen.append(summary(event))
        if event["type"] == "ADDED" and seen[-1][1] == "py-seed" and not wrote:
            wrote = True  # the live part: write only once the stream is flowing
            create_foo(server, "default", "py-a", "one")
            patch_foo(server, "default", "py-a", {"spec": {"msg": "two"}})
            delete_foo(server, "default", "py-a")
        if event["type"] == "DELETED":
            deleted_rv = int(event["raw_object"]["metadata"]["resourceVersion"])
        if event["type"] == "BOOKMARK" and deleted_rv:
            bookmark_rv = event["raw_object"]["metadata"]["resourceVersion"]
            w.stop()
    assert [s for s in seen if s[0] != "BOOKMARK"] == [
        ("ADDED", "py-seed", "seed"), ("ADDED", "py-a", "one"), ("MODIFIED", "py-a", "two"),
        ("DELETED", "py-a", "two")]
    assert bookmark_rv, f"no BOOKMARK within the stream's 20 s: {seen}"
    assert int(bookmark_rv) >= deleted_rv
    assert w.resource_version == bookmark_rv  # the client tracks bookmarks for its own resumption

    # Resume from the bookmark: only what happened after it.
    create_foo(server, "default", "py-b", "later")
    resumed: list[tuple[str, str, str]] = []
    w2 = kubernetes.watch.Watch()
    for event in w2.stream(api.list_namespaced_custom_object, GROUP, VERSION, "default", PLURAL,
                           resource_version=bookmark_rv, allow_watch_bookmarks=True, timeout_seconds=10):
        resumed.append(summary(event))
        if event["type"] == "BOOKMARK" and any(s[1] == "py-b" for s in resumed):
            w2.stop()
    assert [s for s in resumed if s[0] != "BOOKMARK"] == [("ADDED", "py-b", "later")]


def test_python_watch_without_bookmarks_gets_none(kapi: Any) -> None:
    """Bookmarks are only sent to watchers that allow them; timeoutSeconds ends the stream."""
    api = custom_api(kapi)
    ns = new_namespace(kapi, "nb")
    started = time.monotonic()
    events = list(kubernetes.watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL,
                                                  timeout_seconds=2))
    assert events == []
    assert 1.5 < time.monotonic() - started < 10


def test_python_watch_from_too_old_revision_gets_410(kapi_factory: Any) -> None:
    server = kapi_factory("--watch-event-window", "5", name="window")
    api = custom_api(server)
    create_foo(server, "default", "old", "v0")
    old_rv = list_rv(api, "default")
    for i in range(20):
        patch_foo(server, "default", "old", {"spec": {"msg": f"v{i + 1}"}})

    # The client raises on the ERROR event (with timeout_seconds it does not retry).
    with pytest.raises(ApiException) as info:
        for _ in kubernetes.watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, "default",
                                                 PLURAL, resource_version=old_rv, timeout_seconds=5):
            pass
    assert info.value.status == 410
    assert "Expired" in str(info.value.reason)

    # On the wire: HTTP 200 and exactly one ERROR event carrying a 410 Status, then the stream ends.
    with server.client() as c:
        r = c.get(foos_path("default"), params={"watch": "true", "resourceVersion": old_rv})
    assert r.status_code == 200
    events = [orjson.loads(line) for line in r.content.splitlines() if line.strip()]
    assert len(events) == 1 and events[0]["type"] == "ERROR"
    status = events[0]["object"]
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 410, "Expired")

    # A recent revision still resumes; a future one is a 504.
    current = list_rv(api, "default")
    patch_foo(server, "default", "old", {"spec": {"msg": "newest"}})
    events = list(kubernetes.watch.Watch().stream(api.list_namespaced_custom_object, GROUP, VERSION, "default",
                                                  PLURAL, resource_version=current, timeout_seconds=1))
    assert [summary(e) for e in events] == [("MODIFIED", "old", "newest")]
    with server.client() as c:
        r = c.get(foos_path("default"), params={"watch": "true", "resourceVersion": str(int(current) + 1000)})
    assert r.status_code == 504 and r.json()["reason"] == "Timeout"


def test_python_watch_label_selector_turns_relabel_into_added_deleted(kapi: Any) -> None:
    api = custom_api(kapi)
    ns = new_namespace(kapi, "ls")
    rv = list_rv(api, ns)
    create_foo(kapi, ns, "x", "hidden", labels={"app": "db"})  # not selected: invisible
    patch_foo(kapi, ns, "x", {"metadata": {"labels": {"app": "web"}}})  # starts matching: ADDED
    patch_foo(kapi, ns, "x", {"spec": {"msg": "visible"}})  # still matching: MODIFIED
    patch_foo(kapi, ns, "x", {"metadata": {"labels": {"app": "db"}}})  # stops matching: DELETED
    patch_foo(kapi, ns, "x", {"spec": {"msg": "hidden-again"}})  # invisible
    delete_foo(kapi, ns, "x")  # invisible
    create_foo(kapi, ns, "marker", "end", labels={"app": "web", "tier": "front"})
    seen: list[tuple[str, str, str]] = []
    w = kubernetes.watch.Watch()
    for event in w.stream(api.list_namespaced_custom_object, GROUP, VERSION, ns, PLURAL, resource_version=rv,
                          label_selector="app in (web), tier!=back", timeout_seconds=10):
        seen.append(summary(event))
        if seen[-1][1] == "marker":
            w.stop()
    assert seen == [("ADDED", "x", "hidden"), ("MODIFIED", "x", "visible"), ("DELETED", "x", "visible"),
                    ("ADDED", "marker", "end")]


def test_watch_field_selector_and_legacy_watch_path(kapi: Any) -> None:
    """`fieldSelector=metadata.name=` (single-object watch) over the legacy `/watch/` path."""
    ns = new_namespace(kapi, "fs")
    with kapi.client() as c:
        rv = c.get(foos_path(ns)).json()["metadata"]["resourceVersion"]
    create_foo(kapi, ns, "a", "1")
    create_foo(kapi, ns, "b", "1")
    patch_foo(kapi, ns, "b", {"spec": {"msg": "2"}})
    delete_foo(kapi, ns, "b")
    delete_foo(kapi, ns, "a")
    with kapi.client() as c:
        r = c.get(f"/apis/{API}/watch/namespaces/{ns}/{PLURAL}",
                  params={"resourceVersion": rv, "fieldSelector": "metadata.name=b", "timeoutSeconds": "1"})
    assert r.status_code == 200
    events = [orjson.loads(line) for line in r.content.splitlines()]
    assert [(e["type"], e["object"]["spec"]["msg"]) for e in events] == [("ADDED", "1"), ("MODIFIED", "2"),
                                                                         ("DELETED", "2")]
    assert {e["object"]["metadata"]["name"] for e in events} == {"b"}


def test_watch_list_initial_events_end_bookmark(kapi: Any) -> None:
    """`sendInitialEvents=true` (client-go's watch-list): ADDEDs, then the annotated BOOKMARK."""
    ns = new_namespace(kapi, "wl")
    for name in ("p", "q"):
        create_foo(kapi, ns, name, name)
    params = {"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true",
              "resourceVersionMatch": "NotOlderThan", "timeoutSeconds": "1"}
    with httpx.Client(base_url=kapi.url, timeout=10) as c:
        r = c.get(foos_path(ns), params=params)
        lines = [orjson.loads(line) for line in r.content.splitlines()]
        bad = c.get(foos_path(ns), params={**params, "allowWatchBookmarks": "false"})
    assert [(e["type"], e["object"]["metadata"].get("name")) for e in lines[:2]] == [("ADDED", "p"), ("ADDED", "q")]
    end = lines[2]
    assert end["type"] == "BOOKMARK"
    assert end["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert bad.status_code == 422 and bad.json()["reason"] == "Invalid"


def test_client_leaving_a_bookmark_watch_leaves_no_server_error(kapi_factory: Any) -> None:
    server = kapi_factory("--watch-bookmark-interval", "1s", "--backend", "memory", name="leaving")
    params = {"watch": "true", "allowWatchBookmarks": "true"}
    for _ in range(3):
        with httpx.stream("GET", server.url + foos_path("default"), params=params, timeout=10) as r:
            assert next(line for line in r.iter_lines() if line.strip())  # a bookmark: the stream is idle
    time.sleep(1.0)
    with server.client() as c:
        assert c.get("/readyz").status_code == 200
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
