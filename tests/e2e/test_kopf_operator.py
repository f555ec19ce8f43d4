"""A real `kopf run` operator against kapi: it reacts to a Foo's create, update and delete.

The operator is written to tmp by the test; its handlers leave marker files the
test waits for. kopf reaches the server through a kubeconfig without
credentials (the server trusts loopback over HTTP).
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import orjson
import pytest
import yaml

API = "hello.zeng.dev/v1"
DEADLINE = 30.0

OPERATOR = '''
import os
import pathlib

import kopf

MARKERS = pathlib.Path(os.environ["KAPI_TEST_MARKERS"])


def mark(name: str, text: str) -> None:
    (MARKERS / (name + ".tmp")).write_text(text)
    (MARKERS / (name + ".tmp")).rename(MARKERS / name)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_):
    settings.watching.server_timeout = 60
    settings.posting.level = 20  # INFO: kopf.info() and handler outcomes become core v1 Events


@kopf.on.create("hello.zeng.dev", "v1", "foos")
def created(body, name, namespace, patch, **_):
    mark(f"create-{namespace}-{name}", body["spec"].get("msg", ""))
    patch.metadata.setdefault("annotations", {})["kapi.test/handled"] = "created"
    kopf.info(body, reason="SeenByTest", message=f"created {name}")


@kopf.on.update("hello.zeng.dev", "v1", "foos", field="spec.msg")
def updated(name, namespace, new, **_):
    mark(f"update-{namespace}-{name}-{new}", str(new))
'''

# Deletion without finalizers: kopf's raw-event handler sees the DELETED watch event.
ON_DELETED_EVENT = '''

@kopf.on.event("hello.zeng.dev", "v1", "foos")
def raw_event(event, name, namespace, **_):
    if event["type"] == "DELETED":
        mark(f"delete-{namespace}-{name}", "deleted")
'''

# Deletion the kopf way: on.delete adds kopf's finalizer; the handler runs while the object is terminating.
ON_DELETE_HANDLER = '''

@kopf.on.delete("hello.zeng.dev", "v1", "foos")
def deleted(name, namespace, **_):
    mark(f"delete-{namespace}-{name}", "deleted")
'''


def write_kubeconfig(path: Path, url: str, namespace: str) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kapi",
        "clusters": [{"name": "kapi", "cluster": {"server": url}}],
        "users": [{"name": "loopback", "user": {}}],
        "contexts": [{"name": "kapi", "context": {"cluster": "kapi", "user": "loopback", "namespace": namespace}}],
    }))
    return path


class KopfRun:
    """`python -m kopf run --standalone ...` with its output in a log file."""

    def __init__(self, tmp: Path, url: str, scope: list[str], source: str, namespace: str) -> None:
        self.markers = tmp / "markers"
        self.markers.mkdir(parents=True)
        operator = tmp / "foo_operator.py"
        operator.write_text(source)
        self.log_path = tmp / "kopf.log"
        self._log = open(self.log_path, "wb")
        env = {**os.environ, "KUBECONFIG": str(write_kubeconfig(tmp / "kubeconfig", url, namespace)),
               "KAPI_TEST_MARKERS": str(self.markers), "PYTHONUNBUFFERED": "1"}
        cmd = [sys.executable, "-m", "kopf", "run", "--standalone", "--verbose", *scope, str(operator)]
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=tmp)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern: str, timeout: float = DEADLINE) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if re.search(pattern, self.log()):
                return
            assert self.proc.poll() is None, f"kopf exited ({self.proc.returncode}):\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"kopf never logged {pattern!r} within {timeout}s:\n{self.log()}")

    def wait_marker(self, name: str, timeout: float = DEADLINE) -> str:
        path = self.markers / name
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if path.exists():
                return path.read_text()
            assert self.proc.poll() is None, f"kopf exited ({self.proc.returncode}):\n{self.log()}"
            time.sleep(0.1)
        raise AssertionError(f"no marker {name!r} within {timeout}s; markers: "
                             f"{sorted(p.name for p in self.markers.iterdir())}\nkopf log:\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


@pytest.fixture
def kopf_run(tmp_path: Path) -> Iterator[Callable[..., KopfRun]]:
    runs: list[KopfRun] = []

    def start(url: str, scope: list[str], source: str, namespace: str) -> KopfRun:
        runs.append(KopfRun(tmp_path / f"run{len(runs)}", url, scope, source, namespace))
        return runs[-1]

    yield start
    for run in runs:
        run.stop()


# ---------------------------------------------------------------- helpers over raw HTTP

def new_namespace(server: Any) -> str:
    name = f"kopf-{uuid.uuid4().hex[:6]}"
    with server.client() as c:
        r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def foo_url(namespace: str, name: str = "") -> str:
    return f"/apis/{API}/namespaces/{namespace}/foos" + (f"/{name}" if name else "")


def server_log_since(server: Any, offset: int) -> str:
    return server.log_path.read_bytes()[offset:].decode(errors="replace")


def assert_clean_kopf_log(run: KopfRun) -> None:
    log = run.log()
    bad = [line for line in log.splitlines() if re.search(r"\[(ERROR|CRITICAL)\s*\]|Traceback", line)]
    assert not bad, "kopf logged errors:\n" + "\n".join(bad) + "\n\nfull log:\n" + log


def served_requests(log: str) -> list[tuple[str, str, str]]:
    """(verb, URI, code) of every request a `kapi start -v=3` logged (kube's httplog "HTTP" line)."""
    return re.findall(r'"HTTP" verb="(\w+)" URI="([^"]*)" .*? resp=(\d{3})', log)


KAPI_ARGS = ["-v=3"]  # the shared `kapi` servers log every request, which the checks below read


def assert_kopf_requests_served(server_log: str) -> None:
    """Every request kopf made was answered without a server error and without a missing route."""
    statuses = served_requests(server_log)
    assert statuses, server_log
    failed = [s for s in statuses if s[2].startswith("5")
              or (s[2] in ("404", "405", "415") and "/foos/" not in s[1])]  # a just-deleted Foo may 404
    assert not failed, failed
    assert "Traceback" not in server_log, server_log


def run_lifecycle(server: Any, run: KopfRun, ns: str, delete_timeout: float = DEADLINE) -> None:
    """Create, update and delete a Foo; kopf's handlers must run for each."""
    run.wait_log(r"Starting the watch-stream for foos\.v1\.hello\.zeng\.dev")
    with server.client() as c:
        r = c.post(foo_url(ns), json={"apiVersion": API, "kind": "Foo", "metadata": {"name": "op"},
                                      "spec": {"msg": "hello"}})
        assert r.status_code == 201, r.text
        assert run.wait_marker(f"create-{ns}-op") == "hello"

        # The handler's patch and kopf's own bookkeeping land on the object.
        deadline = time.monotonic() + DEADLINE
        annotations: dict[str, str] = {}
        while time.monotonic() < deadline:
            annotations = c.get(foo_url(ns, "op")).json()["metadata"].get("annotations") or {}
            if "kopf.zalando.org/last-handled-configuration" in annotations:
                break
            time.sleep(0.1)
        assert annotations.get("kapi.test/handled") == "created", annotations
        assert "kopf.zalando.org/last-handled-configuration" in annotations, annotations

        r = c.patch(foo_url(ns, "op"), content=orjson.dumps({"spec": {"msg": "changed"}}),
                    headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        assert run.wait_marker(f"update-{ns}-op-changed") == "changed"

        # What kopf posted as core v1 Events, found the way `kubectl describe` looks for them.
        deadline = time.monotonic() + DEADLINE
        events: list[dict] = []
        while time.monotonic() < deadline and not any(e.get("reason") == "SeenByTest" for e in events):
            r = c.get(f"/api/v1/namespaces/{ns}/events",
                      params={"fieldSelector": "involvedObject.name=op,involvedObject.kind=Foo"})
            assert r.status_code == 200, r.text
            events = r.json()["items"]
            time.sleep(0.1)
        seen = [e for e in events if e.get("reason") == "SeenByTest"]
        assert seen and seen[0]["message"] == "created op", events
        assert seen[0]["involvedObject"]["apiVersion"] == API
        assert seen[0]["metadata"]["name"].startswith("kopf-event-")

        r = c.delete(foo_url(ns, "op"))
        assert r.status_code in (200, 202), r.text
        assert run.wait_marker(f"delete-{ns}-op", timeout=delete_timeout) == "deleted"
        deadline = time.monotonic() + DEADLINE
        while c.get(foo_url(ns, "op")).status_code != 404:
            assert time.monotonic() < deadline, "the Foo was never removed"
            time.sleep(0.1)


# ---------------------------------------------------------------- tests

@pytest.mark.parametrize("scope", ["namespace", "all-namespaces"])
def test_kopf_operator_reacts_to_create_update_delete(kapi: Any, kopf_run: Callable[..., KopfRun],
                                                      scope: str) -> None:
    ns = new_namespace(kapi)
    offset = kapi.log_path.stat().st_size
    flags = ["--namespace", ns] if scope == "namespace" else ["--all-namespaces"]
    run = kopf_run(kapi.url, flags, OPERATOR + ON_DELETED_EVENT, ns)
    run_lifecycle(kapi, run, ns)
    assert_clean_kopf_log(run)
    run.stop()  # its watches end, and a watch is logged when it ends
    watch = (r'"HTTP" verb="WATCH" URI="/apis/hello\.zeng\.dev/v1/(namespaces/\S+/)?foos\?watch=true'
             r'&allowWatchBookmarks=true&resourceVersion=\d+')
    deadline = time.monotonic() + 10
    while not re.search(watch, requests := server_log_since(kapi, offset)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert_kopf_requests_served(requests)
    # kopf listed, then watched with bookmarks from the list's revision.
    assert re.search(watch, requests), requests
    if scope == "namespace":
        assert 'verb="WATCH" URI="/api/v1/namespaces?watch=true' in requests, requests
    assert ("POST", f"/api/v1/namespaces/{ns}/events", "201") in served_requests(requests), requests


def test_kopf_on_delete_handler_runs_through_its_finalizer(kapi: Any, kopf_run: Callable[..., KopfRun]) -> None:
    ns = new_namespace(kapi)
    run = kopf_run(kapi.url, ["--namespace", ns], OPERATOR + ON_DELETE_HANDLER, ns)
    run_lifecycle(kapi, run, ns, delete_timeout=10)
    assert_clean_kopf_log(run)
