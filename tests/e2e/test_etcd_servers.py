"""kapi on etcd as a real cluster member would use it: shared by several servers, and surviving etcd faults.

- several servers on one etcd prefix share objects, watches, CRDs and optimistic concurrency;
- etcd killed and restarted under a running watch and writer: 503s while it is away, no acknowledged
  write lost, the watch continues without loss or duplicates (or ends with 410);
- etcd compacted past the feed's revision while kapi could not reach it (a TCP proxy cut): watches end
  with 410 Expired, nothing written meanwhile is missing, fresh watches work;
- a 3-member cluster losing its leader keeps serving;
- start-up faults (unreachable etcd, --etcd-wait, a bad prefix), TLS to etcd, and the key layout in etcd.

Tests that kill etcd start their own (`own_etcd`), never the session's.
"""
from __future__ import annotations

import base64
import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
import yaml

from kapi_cli.etcd_local import LocalEtcd, free_port, make_tls_files

API = "hello.zeng.dev/v1"
FOOS = f"/apis/{API}/namespaces/default/foos"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
ETCDCTL = "/usr/bin/etcdctl"


# ---------------------------------------------------------------- helpers

def prefix(label: str) -> str:
    return f"/e2e-{label}-{uuid.uuid4().hex[:8]}"


def etcd_args(cluster: LocalEtcd, key_prefix: str = "") -> list[str]:
    """`kapi start` flags for an etcd of the test's own (conftest's helper is not importable: no package)."""
    return ["--backend", "etcd", "--etcd-servers", cluster.endpoints, "--etcd-prefix", key_prefix or prefix("own")]


def foo(name: str, msg: str = "hi") -> dict[str, Any]:
    return {"apiVersion": API, "kind": "Foo", "metadata": {"name": name}, "spec": {"msg": msg}}


def wait_until(probe: Callable[[], Any], what: str, timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {result!r})")
        time.sleep(interval)


def is_unavailable(r: httpx.Response) -> bool:
    """kube's 503: a Status with reason ServiceUnavailable."""
    if r.status_code != 503:
        return False
    try:
        body = r.json()
    except ValueError:
        return False
    return body.get("kind") == "Status" and body.get("reason") == "ServiceUnavailable"


def readyz(server: Any) -> httpx.Response | None:
    try:
        return httpx.get(server.url + "/readyz", timeout=3)
    except httpx.HTTPError:
        return None


def is_ready(server: Any) -> bool:
    r = readyz(server)
    return r is not None and r.status_code == 200


def storage_report(server: Any) -> dict[str, Any]:
    r = httpx.get(server.url + "/kapi/storage", timeout=5)
    assert r.status_code == 200, r.text
    return r.json()


def kapi_start_cmd(tmp_path: Path, name: str, *args: str) -> tuple[list[str], dict[str, str]]:
    """A foreground `kapi start` command line (own ports, own KAPI_HOME) for tests that expect it to fail."""
    cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--insecure-port", str(free_port()),
           "--secure-port", "0", "--authn-allow-localhost=true", "--name", f"e2e-{uuid.uuid4().hex[:8]}",
           "--file-rootpath", str(tmp_path / name / "data"), *args]
    env = {**os.environ, "KAPI_HOME": str(tmp_path / name / "kapi-home")}
    return cmd, env


def run_kapi_start(tmp_path: Path, name: str, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    cmd, env = kapi_start_cmd(tmp_path, name, *args)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def kapi_status(server: Any) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KAPI_HOME": str(server.kapi_home), "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "kapi_cli.main", "status", server.name],
                          capture_output=True, text=True, timeout=30, env=env)


class Watch:
    """A raw HTTP watch (`?watch=true&resourceVersion=N`) read by a thread; events arrive on a queue.

    The reader ends by itself when the stream ends (timeoutSeconds, an ERROR event, the server going
    away) or when `close()` shuts its socket; `None` on the queue marks the end. Closing matters: an
    open watch holds a stopping server for its whole graceful-shutdown period.
    """

    def __init__(self, server: Any, path: str, resource_version: str, seconds: int = 40) -> None:
        self.url = server.url + path
        self.params = {"watch": "true", "resourceVersion": resource_version, "allowWatchBookmarks": "true",
                       "timeoutSeconds": str(seconds)}
        self.read_timeout = seconds + 15
        self.events: list[dict[str, Any]] = []
        self.status_code: int | None = None
        self.client_error = ""
        self._response: httpx.Response | None = None
        self._closing = False
        self._queue: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._opened = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._opened.wait(10), "the watch request did not get response headers in 10s"
        assert self.status_code == 200, f"watch answered {self.status_code}: {self.client_error}"

    def _run(self) -> None:
        try:
            with httpx.stream("GET", self.url, params=self.params,
                              timeout=httpx.Timeout(10, read=self.read_timeout)) as r:
                self._response = r
                self.status_code = r.status_code
                if r.status_code != 200:
                    self.client_error = r.read().decode(errors="replace")
                    return
                self._opened.set()
                for line in r.iter_lines():
                    if line.strip():
                        self._queue.put(orjson.loads(line))
        except Exception as exc:  # noqa: BLE001 - reported through the queue
            self.client_error = "closed by the test" if self._closing else repr(exc)
        finally:
            self._opened.set()
            self._queue.put(None)

    def next(self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 10.0) -> dict[str, Any]:
        """Read events until one matches (bookmarks are read too); AssertionError on timeout or end."""
        deadline = time.monotonic() + timeout
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                event = self._queue.get(timeout=remaining)
            except queue.Empty:
                break
            if event is None:
                self._queue.put(None)
                raise AssertionError(f"watch ended ({self.client_error}); events so far: {self.summary()}")
            self.events.append(event)
            if predicate(event):
                return event
        raise AssertionError(f"no matching watch event within {timeout}s; events so far: {self.summary()}")

    def summary(self) -> list[tuple[str, str, str]]:
        return [(e["type"], e["object"].get("metadata", {}).get("name", ""),
                 e["object"].get("metadata", {}).get("resourceVersion", "") or str(e["object"].get("code", "")))
                for e in self.events]

    def close(self) -> None:
        """Shut the connection down (a blocked read in the reader thread returns at once)."""
        self._closing = True
        response = self._response
        if response is not None and self._thread.is_alive():
            stream = response.extensions.get("network_stream")
            sock = stream.get_extra_info("socket") if stream is not None else None
            if sock is not None:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self._thread.join(5)


@pytest.fixture
def watch(kapi_factory: Any) -> Iterator[Callable[..., Watch]]:
    """Open watches, closed at teardown before the servers stop (this fixture needs kapi_factory, so it
    is torn down first)."""
    opened: list[Watch] = []

    def open_(server: Any, path: str, resource_version: str, seconds: int = 40) -> Watch:
        opened.append(Watch(server, path, resource_version, seconds))
        return opened[-1]

    try:
        yield open_
    finally:
        for w in opened:
            w.close()


class TcpProxy:
    """A loopback TCP proxy in front of one etcd member. `cut()` drops every connection through it and
    refuses new ones until `resume()`: etcd unreachable for kapi only, while the test still reaches it."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = int(self._listener.getsockname()[1])
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._cut = False
        self._stopped = False
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            if self._cut:
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=2)
            except OSError:
                client.close()
                continue
            client.settimeout(None)
            upstream.settimeout(None)
            for sock in (client, upstream):  # relay each gRPC frame at once: Nagle would add ~40 ms per call
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._conns.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(src, dst)

    def _drop(self, *socks: socket.socket) -> None:
        for sock in socks:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
            with self._lock:
                self._conns.discard(sock)

    def cut(self) -> None:
        self._cut = True
        with self._lock:
            conns = list(self._conns)
        self._drop(*conns)

    def resume(self) -> None:
        self._cut = False

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._thread.join(2)
        self._listener.close()


def named(event_type: str, name: str) -> Callable[[dict[str, Any]], bool]:
    return lambda e: e["type"] == event_type and e["object"].get("metadata", {}).get("name") == name


@pytest.fixture
def own_etcd(tmp_path: Path) -> Iterator[Callable[..., LocalEtcd]]:
    """etcd clusters of a test's own (to kill and restart); all stopped at teardown."""
    made: list[LocalEtcd] = []

    def make(size: int = 1, tls: Any = None, name: str = "etcd", start: bool = True) -> LocalEtcd:
        cluster = LocalEtcd.create(tmp_path / name, size=size, tls=tls)
        made.append(cluster)
        return cluster.start() if start else cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.stop()


# ---------------------------------------------------------------- 1. two servers, one etcd

def test_two_servers_share_objects_watches_and_crds(kapi_factory: Any, watch: Callable[..., Watch]) -> None:
    shared = prefix("two")
    a = kapi_factory("--watch-bookmark-interval", "1s", name="a", etcd_prefix=shared)
    b = kapi_factory("--watch-bookmark-interval", "1s", name="b", etcd_prefix=shared)
    with a.client() as ca, b.client() as cb:
        # A watch on B, opened before the write, from a list on B.
        list_rv = cb.get(FOOS).json()["metadata"]["resourceVersion"]
        w = watch(b, FOOS, list_rv)
        created = ca.post(FOOS, json=foo("shared", "from-a"))
        assert created.status_code == 201, created.text
        rv = created.json()["metadata"]["resourceVersion"]
        assert int(rv) > int(list_rv)

        got = cb.get(f"{FOOS}/shared")
        assert got.status_code == 200, got.text
        assert got.json()["spec"] == {"msg": "from-a"} and got.json()["metadata"]["resourceVersion"] == rv
        added = w.next(named("ADDED", "shared"))
        assert added["object"]["metadata"]["resourceVersion"] == rv
        assert added["object"]["metadata"]["uid"] == created.json()["metadata"]["uid"]

        # A watch on B from a resourceVersion A returned (B may not have seen it yet): later events only.
        w2 = watch(b, FOOS, rv)
        patched = ca.patch(f"{FOOS}/shared", content=orjson.dumps({"spec": {"msg": "changed-on-a"}}),
                           headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200, patched.text
        modified = w2.next(lambda e: e["type"] != "BOOKMARK")
        assert modified["type"] == "MODIFIED", w2.summary()
        assert modified["object"]["spec"]["msg"] == "changed-on-a"
        assert modified["object"]["metadata"]["resourceVersion"] == patched.json()["metadata"]["resourceVersion"]
        assert w.next(named("MODIFIED", "shared"))["object"]["spec"]["msg"] == "changed-on-a"

        # Deleted through B: gone on A, and both watches on B say so.
        deleted = cb.delete(f"{FOOS}/shared")
        assert deleted.status_code == 200, deleted.text
        gone = ca.get(f"{FOOS}/shared")
        assert gone.status_code == 404 and gone.json()["reason"] == "NotFound", gone.text
        assert "shared" not in [o["metadata"]["name"] for o in ca.get(FOOS).json()["items"]]
        w.next(named("DELETED", "shared"))
        w2.next(named("DELETED", "shared"))
        for stream, expected in ((w, ["ADDED", "MODIFIED", "DELETED"]), (w2, ["MODIFIED", "DELETED"])):
            kinds = [t for t, n, _ in stream.summary() if n == "shared"]  # one event per write, no duplicates
            assert kinds == expected, stream.summary()

    # A CRD created through A becomes served on B.
    group = f"g{uuid.uuid4().hex[:8]}.example.com"
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": f"gadgets.{group}"},
           "spec": {"group": group, "scope": "Namespaced",
                    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
                    "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                        "type": "object", "properties": {"spec": {"type": "object", "properties": {
                            "size": {"type": "integer"}}}}}}}]}}
    a.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
    out = b.kubectl("wait", "--for", "condition=established", f"crd/gadgets.{group}", "--timeout=10s")
    assert "condition met" in out.stdout
    wait_until(lambda: b.kubectl("get", f"gadgets.{group}", check=False).returncode == 0,
               "kubectl get gadgets on B", timeout=10, interval=0.2)
    gadget = {"apiVersion": f"{group}/v1", "kind": "Gadget", "metadata": {"name": "g1", "namespace": "default"},
              "spec": {"size": 3}}
    b.kubectl("apply", "-f", "-", input=yaml.safe_dump(gadget))
    got_a = json.loads(a.kubectl("get", f"gadgets.{group}", "g1", "-o", "json").stdout)
    assert got_a["spec"] == {"size": 3}
    b.kubectl("delete", f"gadgets.{group}", "g1")
    assert a.kubectl("get", f"gadgets.{group}", "g1", check=False).returncode != 0


# ---------------------------------------------------------------- 2. etcd killed under a watch and a writer

def test_etcd_restart_under_running_watch_and_writer(own_etcd: Callable[..., LocalEtcd], kapi_factory: Any,
                                                     watch: Callable[..., Watch]) -> None:
    cluster = own_etcd()
    server = kapi_factory(*etcd_args(cluster, "/registry"), "--watch-bookmark-interval", "1s", name="survivor")
    with server.client() as c:
        assert c.post(FOOS, json=foo("seed")).status_code == 201
        start_rv = c.get(FOOS).json()["metadata"]["resourceVersion"]
    w = watch(server, FOOS, start_rv, seconds=60)

    acks: list[tuple[str, str, float]] = []  # (name, resourceVersion, when), appended by the writer only
    failed: list[str] = []
    unexpected: list[Any] = []
    stop = threading.Event()

    def writer() -> None:
        i = 0
        with httpx.Client(base_url=server.url, timeout=8) as wc:  # above etcd's own 5 s request timeout
            while not stop.is_set():
                name = f"w-{i:04d}"
                i += 1
                try:
                    r = wc.post(FOOS, json=foo(name, str(i)))
                except httpx.TimeoutException:
                    failed.append(name)
                    continue
                except httpx.HTTPError as exc:
                    unexpected.append((name, repr(exc)))
                    continue
                if r.status_code == 201:
                    acks.append((name, r.json()["metadata"]["resourceVersion"], time.monotonic()))
                elif is_unavailable(r):
                    failed.append(name)
                else:
                    unexpected.append((name, r.status_code, r.text))
                time.sleep(0.01)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        wait_until(lambda: len(acks) >= 5, "writes before the outage", timeout=10)
        cluster.kill_member(0)
        down_at = time.monotonic()
        readyz_while_down: list[tuple[int, str]] = []
        while time.monotonic() - down_at < 2.0:
            r = readyz(server)
            if r is not None:
                readyz_while_down.append((r.status_code, r.text))
            time.sleep(0.1)
        assert readyz_while_down and all(code == 500 and "[-]etcd failed" in text
                                         for code, text in readyz_while_down), readyz_while_down
        assert failed, "no write failed while etcd was down"

        cluster.start_member(0)
        cluster.wait_healthy(20)
        wait_until(lambda: is_ready(server), "/readyz 200 after etcd came back", timeout=20, interval=0.1)
        back_at = time.monotonic()
        wait_until(lambda: sum(1 for _, _, t in acks if t > back_at) >= 5, "writes after the recovery", timeout=15)
    finally:
        stop.set()
        thread.join(15)
    assert not thread.is_alive()
    assert not unexpected, f"writes failed with something other than 503 ServiceUnavailable or a timeout: {unexpected}"
    acked = {name: rv for name, rv, _ in acks}

    with server.client() as c:
        final = c.post(FOOS, json=foo("zz-final"))
        assert final.status_code == 201, final.text
        listed = c.get(FOOS).json()
    present = {o["metadata"]["name"]: o["metadata"]["resourceVersion"] for o in listed["items"]}
    missing = sorted(set(acked) - set(present))
    assert not missing, f"acknowledged writes missing after the outage: {missing}"
    assert all(present[n] == rv for n, rv in acked.items())

    end = w.next(lambda e: e["type"] == "ERROR" or named("ADDED", "zz-final")(e), timeout=20)
    if end["type"] == "ERROR":
        assert end["object"]["code"] == 410 and end["object"]["reason"] == "Expired", end
        fresh_rv = listed["metadata"]["resourceVersion"]
        fresh = watch(server, FOOS, fresh_rv)
        with server.client() as c:
            assert c.post(FOOS, json=foo("zz-after-410")).status_code == 201
        fresh.next(named("ADDED", "zz-after-410"))
    else:
        events = [e for e in w.events if e["type"] != "BOOKMARK"]
        names = [e["object"]["metadata"]["name"] for e in events]
        rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
        assert all(e["type"] == "ADDED" for e in events), w.summary()
        assert len(names) == len(set(names)), f"duplicate events: {w.summary()}"
        assert rvs == sorted(rvs) and len(set(rvs)) == len(rvs), f"events out of order: {w.summary()}"
        lost = sorted(set(acked) - set(names))
        assert not lost, f"acknowledged writes the watch never delivered: {lost}"
        assert set(names) <= set(present), "the watch delivered objects that are not stored"
        assert all(str(rv) == present[n] for n, rv in zip(names, rvs))
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-4000:]


def test_etcd_compacted_while_unreachable_ends_watches_with_410(own_etcd: Callable[..., LocalEtcd],
                                                                kapi_factory: Any, watch: Callable[..., Watch]) -> None:
    """The feed cannot resume where it stopped: watchers get one ERROR 410, lists at old revisions 410,
    and everything written meanwhile (even straight into etcd) is there; fresh watches work."""
    cluster = own_etcd()
    proxy = TcpProxy(cluster.members[0].client_port)
    try:
        server = kapi_factory("--backend", "etcd", "--etcd-servers", proxy.url, "--etcd-prefix", "/registry",
                              "--watch-bookmark-interval", "1s", name="compacted")
        with server.client() as c:
            assert c.post(FOOS, json=foo("before")).status_code == 201
            old_rv = c.get(FOOS).json()["metadata"]["resourceVersion"]
        w = watch(server, FOOS, old_rv, seconds=60)

        proxy.cut()
        wait_until(lambda: (r := readyz(server)) is not None and r.status_code == 500 and "[-]etcd failed" in r.text,
                   "/readyz 500 while etcd is unreachable", timeout=10)
        with server.client() as c:
            r = c.post(FOOS, json=foo("refused"))
            assert is_unavailable(r), (r.status_code, r.text)
            r = c.get(FOOS)
            assert is_unavailable(r), (r.status_code, r.text)
        report = storage_report(server)
        assert not report["ok"] and not report["endpoints"][0]["ok"] and not report["watch"]["connected"], report
        out = kapi_status(server)
        assert out.returncode == 1, out.stdout + out.stderr
        assert "storage: etcd unavailable" in out.stdout, out.stdout
        assert f"{proxy.url}: unreachable" in out.stdout, out.stdout
        sneaky = {"apiVersion": API, "kind": "Foo", "spec": {"msg": "straight-into-etcd"},
                  "metadata": {"name": "sneaky", "namespace": "default", "uid": str(uuid.uuid4()),
                               "creationTimestamp": "2024-01-01T00:00:00Z"}}
        etcdctl(cluster, "put", "/registry/hello.zeng.dev/foos/default/sneaky", json.dumps(sneaky))
        etcdctl(cluster, "put", "/elsewhere/filler", "x")
        revision = json.loads(etcdctl(cluster, "get", "/elsewhere/filler", "-w", "json"))["header"]["revision"]
        etcdctl(cluster, "compact", str(revision))
        proxy.resume()
        wait_until(lambda: is_ready(server), "/readyz 200 once etcd is reachable again", timeout=20, interval=0.1)

        error = w.next(lambda e: e["type"] == "ERROR", timeout=15)
        assert error["object"]["kind"] == "Status" and error["object"]["code"] == 410, error
        assert error["object"]["reason"] == "Expired", error
        assert [t for t, _, _ in w.summary() if t not in ("BOOKMARK", "ERROR")] == [], w.summary()
        with server.client() as c:
            stale = c.get(FOOS, params={"resourceVersion": old_rv, "resourceVersionMatch": "Exact"})
            assert stale.status_code == 410 and stale.json()["reason"] == "Expired", stale.text
            listed = c.get(FOOS).json()
            assert sorted(o["metadata"]["name"] for o in listed["items"]) == ["before", "sneaky"]
            assert int(listed["metadata"]["resourceVersion"]) >= revision
            fresh = watch(server, FOOS, listed["metadata"]["resourceVersion"])
            assert c.post(FOOS, json=foo("after")).status_code == 201
        assert fresh.next(lambda e: e["type"] != "BOOKMARK")["object"]["metadata"]["name"] == "after"
        assert storage_report(server)["watch"]["restarts"] >= 1
    finally:
        proxy.close()


# ---------------------------------------------------------------- 3. a 3-member cluster loses its leader

def test_three_member_cluster_survives_losing_its_leader(own_etcd: Callable[..., LocalEtcd],
                                                         kapi_factory: Any, watch: Callable[..., Watch]) -> None:
    cluster = own_etcd(size=3)
    server = kapi_factory(*etcd_args(cluster, "/registry"), "--watch-bookmark-interval", "1s", name="ha")
    report = storage_report(server)
    assert report["ok"] and len(report["endpoints"]) == 3, report
    leaders = [e for e in report["endpoints"] if e.get("isLeader")]
    assert len(leaders) == 1, report
    leader_port = urlsplit(leaders[0]["endpoint"]).port
    leader = next(i for i, m in enumerate(cluster.members) if m.client_port == leader_port)

    acked: dict[str, str] = {}

    def retrying(c: httpx.Client, method: str, path: str, ok: tuple[int, ...], window: float = 10.0,
                 **kwargs: Any) -> httpx.Response:
        """One request, retried only on 503 ServiceUnavailable, for up to `window` seconds."""
        deadline = time.monotonic() + window
        retried = False
        while True:
            r = c.request(method, path, **kwargs)
            if r.status_code in ok or (retried and method == "POST" and r.status_code == 409):
                return r  # a 409 after a 503: the first attempt did commit
            assert is_unavailable(r), f"{method} {path}: {r.status_code} {r.text}"
            assert time.monotonic() < deadline, f"{method} {path} still 503 after {window}s: {r.text}"
            retried = True
            time.sleep(0.1)

    def write(c: httpx.Client, name: str) -> None:
        r = retrying(c, "POST", FOOS, (201,), json=foo(name))
        if r.status_code == 409:
            r = retrying(c, "GET", f"{FOOS}/{name}", (200,))
        acked[name] = r.json()["metadata"]["resourceVersion"]

    with server.client() as c:
        for i in range(5):
            write(c, f"before-{i}")
        w = watch(server, FOOS, c.get(FOOS).json()["metadata"]["resourceVersion"], seconds=60)
        cluster.kill_member(leader)
        killed_at = time.monotonic()
        for i in range(20):
            write(c, f"after-{i}")
            got = retrying(c, "GET", f"{FOOS}/after-{i}", (200,))
            assert got.json()["metadata"]["resourceVersion"] == acked[f"after-{i}"]
            listed = retrying(c, "GET", FOOS, (200,))
            assert f"after-{i}" in {o["metadata"]["name"] for o in listed.json()["items"]}
        elapsed = time.monotonic() - killed_at
        present = {o["metadata"]["name"]: o["metadata"]["resourceVersion"]
                   for o in retrying(c, "GET", FOOS, (200,)).json()["items"]}
    assert elapsed < 20, f"20 writes and reads took {elapsed:.1f}s after the leader was lost"
    assert {n: present.get(n) for n in acked} == acked

    for i in range(20):
        w.next(named("ADDED", f"after-{i}"), timeout=15)
    after = [n for t, n, _ in w.summary() if t != "BOOKMARK"]
    assert after == [f"after-{i}" for i in range(20)], after

    killed_url = cluster.members[leader].client_url
    others = [m.client_url for i, m in enumerate(cluster.members) if i != leader]

    def status_shows_the_loss() -> str | None:
        out = kapi_status(server)
        lines = out.stdout.splitlines()
        line_of = {url: next((ln for ln in lines if ln.strip().startswith(url + ":")), "") for url in
                   [killed_url, *others]}
        if (out.returncode == 0 and any("storage: etcd ok, revision" in ln for ln in lines)
                and "unreachable" in line_of[killed_url]
                and all(": ok, " in line_of[u] for u in others)
                and sum("leader" in line_of[u] and "follower" not in line_of[u] for u in others) == 1):
            return out.stdout
        return None

    try:
        wait_until(status_shows_the_loss, "kapi status to show the lost member", timeout=15, interval=0.3)
    except AssertionError:
        out = kapi_status(server)
        raise AssertionError(f"kapi status ({out.returncode}):\n{out.stdout}\n{out.stderr}") from None


# ---------------------------------------------------------------- 4. concurrent updaters

def test_concurrent_updaters_on_two_servers_lose_nothing(kapi_factory: Any) -> None:
    shared = prefix("counter")
    servers = [kapi_factory(name="a", etcd_prefix=shared), kapi_factory(name="b", etcd_prefix=shared)]
    with servers[0].client() as c:
        r = c.post(CONFIGMAPS, json={"apiVersion": "v1", "kind": "ConfigMap",
                                     "metadata": {"name": "counter"}, "data": {"n": "0"}})
        assert r.status_code == 201, r.text
    threads_n, increments = 4, 15
    errors: list[str] = []

    def updater(t: int) -> None:
        clients = [s.client() for s in servers]
        try:
            for k in range(increments):
                c = clients[(t + k) % 2]
                for _ in range(200):
                    current = c.get(f"{CONFIGMAPS}/counter")
                    if current.status_code != 200:
                        errors.append(f"GET {current.status_code} {current.text}")
                        return
                    obj = current.json()
                    obj["data"]["n"] = str(int(obj["data"]["n"]) + 1)  # keeps the read resourceVersion
                    put = c.put(f"{CONFIGMAPS}/counter", json=obj)
                    if put.status_code == 200:
                        break
                    if put.status_code != 409 or put.json().get("reason") != "Conflict":
                        errors.append(f"PUT {put.status_code} {put.text}")
                        return
                else:
                    errors.append("too many conflicts")
                    return
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(repr(exc))
        finally:
            for c in clients:
                c.close()

    threads = [threading.Thread(target=updater, args=(t,), daemon=True) for t in range(threads_n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    for s in servers:
        with s.client() as c:
            assert c.get(f"{CONFIGMAPS}/counter").json()["data"]["n"] == str(threads_n * increments)


# ---------------------------------------------------------------- 5. start-up faults

def test_unreachable_etcd_at_startup_fails_fast(tmp_path: Path) -> None:
    began = time.monotonic()
    out = run_kapi_start(tmp_path, "nowhere", "--backend", "etcd", "--etcd-servers",
                         f"http://127.0.0.1:{free_port()}")
    took = time.monotonic() - began
    assert out.returncode != 0, out.stdout + out.stderr
    assert "cannot reach etcd" in out.stdout + out.stderr, out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr
    assert took < 15, f"kapi start took {took:.1f}s to give up"


def test_bad_etcd_prefix_is_a_usage_error(tmp_path: Path, etcd: LocalEtcd) -> None:
    out = run_kapi_start(tmp_path, "badprefix", "--backend", "etcd", "--etcd-servers", etcd.endpoints,
                         "--etcd-prefix", "registry")
    assert out.returncode == 2, out.stdout + out.stderr
    assert "--etcd-prefix" in out.stdout + out.stderr
    assert "Traceback" not in out.stdout + out.stderr


def test_etcd_wait_starts_once_etcd_answers(tmp_path: Path, own_etcd: Callable[..., LocalEtcd]) -> None:
    cluster = own_etcd(start=False)
    port = free_port()
    cluster.members[0].client_port = port
    cmd, env = kapi_start_cmd(tmp_path, "waiting", "--backend", "etcd", "--etcd-servers", f"http://127.0.0.1:{port}",
                              "--etcd-prefix", "/waited", "--etcd-wait")
    url = "http://127.0.0.1:" + cmd[cmd.index("--insecure-port") + 1]
    server = SimpleNamespace(url=url)
    log_path = tmp_path / "waiting.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
    try:
        wait_until(lambda: "waiting for etcd" in log_path.read_text() or proc.poll() is not None,
                   "kapi to say it waits for etcd", timeout=15)
        time.sleep(1.5)
        assert proc.poll() is None, log_path.read_text()
        assert not is_ready(server)
        cluster.start()
        wait_until(lambda: is_ready(server) or proc.poll() is not None, "kapi ready once etcd answers",
                   timeout=20, interval=0.1)
        assert proc.poll() is None and is_ready(server), log_path.read_text()
        with httpx.Client(base_url=url, timeout=10) as c:
            assert c.post(FOOS, json=foo("after-wait")).status_code == 201
            assert c.get(f"{FOOS}/after-wait").status_code == 200
        assert storage_report(server)["prefix"] == "/waited"
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


# ---------------------------------------------------------------- 6. TLS to etcd

def test_tls_to_etcd_with_client_certificates(tmp_path: Path, own_etcd: Callable[..., LocalEtcd],
                                              kapi_factory: Any) -> None:
    tls = make_tls_files(tmp_path / "tls")
    cluster = own_etcd(tls=tls)
    assert cluster.endpoints.startswith("https://")
    server = kapi_factory(*etcd_args(cluster), "--etcd-cafile", str(tls.ca), "--etcd-certfile",
                          str(tls.client_cert), "--etcd-keyfile", str(tls.client_key), name="tls")
    server.kubectl("create", "configmap", "over-tls", "--from-literal=k=v")
    got = json.loads(server.kubectl("get", "configmap", "over-tls", "-o", "json").stdout)
    assert got["data"] == {"k": "v"}
    report = storage_report(server)
    assert report["ok"] and report["endpoints"][0]["ok"], report

    out = run_kapi_start(tmp_path, "no-client-cert", *etcd_args(cluster), "--etcd-cafile", str(tls.ca))
    assert out.returncode == 1, out.stdout + out.stderr
    assert "cannot reach etcd" in out.stdout + out.stderr, out.stdout + out.stderr


# ---------------------------------------------------------------- 7. key layout

def etcdctl(etcd: LocalEtcd, *args: str) -> str:
    out = subprocess.run([ETCDCTL, "--endpoints", etcd.endpoints, *args], capture_output=True, text=True,
                         timeout=20, env={**os.environ, "ETCDCTL_API": "3"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def test_keys_follow_kube_apiserver_layout(etcd: LocalEtcd, kapi_factory: Any) -> None:
    root = prefix("layout")
    server = kapi_factory(name="layout", etcd_prefix=root)
    with server.client() as c:
        created = c.post(FOOS, json=foo("laid-out"))
        assert created.status_code == 201, created.text
    key = f"{root}/hello.zeng.dev/foos/default/laid-out"
    keys = etcdctl(etcd, "get", "--prefix", f"{root}/hello.zeng.dev/foos/default/", "--keys-only").split()
    assert keys == [key], keys
    reply = json.loads(etcdctl(etcd, "get", key, "-w", "json"))
    kv = reply["kvs"][0]
    assert str(kv["mod_revision"]) == created.json()["metadata"]["resourceVersion"]
    stored = json.loads(base64.b64decode(kv["value"]))
    # stored in the storage version, v2, whatever version it was written in
    assert stored["apiVersion"] == "hello.zeng.dev/v2" and stored["kind"] == "Foo"
    assert stored["metadata"]["name"] == "laid-out" and stored["spec"] == {"config": {"msg": "hi"}}
    assert "resourceVersion" not in stored["metadata"]
