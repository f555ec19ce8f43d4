"""Injected faults (POST /clusters/<name>/kapi/faults) as real clients see them: the Python `kubernetes` client
(its watch helper, its urllib3 retries), kubectl and raw HTTP, against a real `kapi start`.

Every test works in logical clusters of its own (POST /kapi/clusters) and, where it makes sense, checks that
another cluster (and the root) never notice the faults. Two client behaviours these tests pin down:

- `kubernetes.watch.Watch().stream()` swallows one ERROR 410 and re-watches from the last resourceVersion it
  saw; a second 410 before any new event raises `ApiException(410)`, after which the caller must relist.
- The client's urllib3 pool retries a GET answered 503 (or 429) with a Retry-After header three times,
  sleeping Retry-After each time. The clients here set `retries = 0` to see the first answer, except in the
  test that shows that retrying.
"""
from __future__ import annotations

import functools
import json
import os
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest
import yaml
from kubernetes import client, watch
from kubernetes.client.rest import ApiException

KUBECTL = "/usr/bin/kubectl"
BOB_TOKEN = "kapi-e2e-faults-token-bob"
NS = "default"
LABEL = "faults-e2e=yes"  # every object a test watches carries it (kube-root-ca.crt and co. do not)
FAIL_MESSAGE = "etcd is on fire (injected)"


# -- a server and its clusters -----------------------------------------------------------------------------
def start(kapi_factory: Any, tmp_path: Path, backend: str = "memory") -> Any:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{BOB_TOKEN},bob,1002,"viewers"\n')
    return kapi_factory("--backend", backend, "--token-auth-file", str(tokens), name=f"kapi-{backend}")


@pytest.fixture
def server(kapi_factory: Any, tmp_path: Path) -> Any:
    return start(kapi_factory, tmp_path)


@dataclass
class Cluster:
    """A logical cluster of a running `kapi start` ("root": the server's own)."""

    kapi: Any
    name: str

    @property
    def url(self) -> str:
        return self.kapi.url if self.name == "root" else f"{self.kapi.url}/clusters/{self.name}"

    def http(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)

    def api_client(self, token: str | None = None, retries: int | None = 0) -> client.ApiClient:
        config = client.Configuration(host=self.url)
        if token:
            config.api_key = {"authorization": f"Bearer {token}"}
        config.retries = retries  # None: urllib3's default Retry(3), which honours Retry-After on 503
        return client.ApiClient(config)

    def core(self, token: str | None = None, retries: int | None = 0) -> Any:
        """CoreV1Api; Any, as its answers are read loosely (their fields are all Optional)."""
        return client.CoreV1Api(self.api_client(token, retries))

    # -- faults ------------------------------------------------------------------------------------------
    def add_fault(self, **spec: Any) -> dict[str, Any]:
        with self.http() as http:
            response = http.post("/kapi/faults", json=spec)
        assert response.status_code in (200, 201), response.text
        return response.json()  # type: ignore[no-any-return]

    def faults(self) -> list[dict[str, Any]]:
        with self.http() as http:
            response = http.get("/kapi/faults")
        assert response.status_code == 200, response.text
        return response.json()["faults"]  # type: ignore[no-any-return]

    def remove_fault(self, fault_id: str) -> None:
        with self.http() as http:
            response = http.delete(f"/kapi/faults/{fault_id}")
        assert response.status_code == 200, response.text

    def expire_watches(self, resource: str | None = None) -> int:
        spec = {"type": "ExpireWatches", **({"resource": resource} if resource else {})}
        answer = self.add_fault(**spec)
        assert answer["type"] == "ExpireWatches"
        return int(answer["ended"])

    def compact(self) -> int:
        answer = self.add_fault(type="Compact")
        assert answer["type"] == "Compact"
        return int(answer["revision"])

    # -- objects -----------------------------------------------------------------------------------------
    def configmap(self, name: str, **data: str) -> Any:
        return self.core().create_namespaced_config_map(NS, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, labels={"faults-e2e": "yes"}), data=data or {"k": "v"}))

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [KUBECTL, "--server", self.url, "--cache-dir", str(self.kapi.cache_dir / self.name), *args]
        env = {**os.environ, "KUBECONFIG": "/dev/null"}
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result


def new_cluster(kapi: Any, name: str) -> Cluster:
    with httpx.Client(base_url=kapi.url, timeout=30) as http:
        response = http.post("/kapi/clusters", json={"name": name})
    assert response.status_code == 201, response.text
    assert response.json() == {"name": name, "path": f"/clusters/{name}"}
    return Cluster(kapi, name)


def api_error(call: Any, *args: Any, **kwargs: Any) -> ApiException:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    return info.value


def status_of(exc: ApiException) -> dict[str, Any]:
    return json.loads(exc.body or "null")  # type: ignore[no-any-return]


def retry_after(exc: ApiException) -> str | None:
    return exc.headers.get("Retry-After") if exc.headers is not None else None


def names(items: list[Any]) -> set[str]:
    return {item.metadata.name for item in items}


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.02)


# -- watches in threads ------------------------------------------------------------------------------------
class ClientWatch:
    """`kubernetes.watch.Watch().stream(list_namespaced_config_map, ...)` in a thread: the events it yields,
    the resourceVersion of every (re)watch request it made, and the exception that ended it."""

    def __init__(self, api: Any, **kwargs: Any) -> None:
        self.calls: list[str | None] = []
        self.events: queue.Queue[tuple[str, str, str]] = queue.Queue()
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._watch = watch.Watch()
        listing = api.list_namespaced_config_map

        @functools.wraps(listing)  # the watch helper reads the return type from the docstring
        def counted(*args: Any, **kw: Any) -> Any:
            self.calls.append(kw.get("resource_version"))
            return listing(*args, **kw)

        self._thread = threading.Thread(target=self._run, args=(counted, kwargs), daemon=True)
        self._thread.start()

    def _run(self, func: Any, kwargs: dict[str, Any]) -> None:
        try:
            for event in self._watch.stream(func, NS, label_selector=LABEL, _request_timeout=30, **kwargs):
                obj = event["object"]
                self.events.put((event["type"], obj.metadata.name, obj.metadata.resource_version))
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.done.set()

    def next(self, timeout: float = 10.0) -> tuple[str, str, str]:
        try:
            return self.events.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"no watch event within {timeout}s (error: {self.error!r}, calls: {self.calls})")

    def stop(self) -> None:
        self._watch.stop()


class RawWatch:
    """A watch read line by line over plain HTTP: exactly what the server sent, ERROR events included.
    `None` on the queue marks the end of the stream."""

    def __init__(self, cluster: Cluster, path: str, **params: str) -> None:
        self.lines: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.opened = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(cluster.url + path, params), daemon=True)
        self._thread.start()
        assert self.opened.wait(10), "the watch did not open"

    def _run(self, url: str, params: dict[str, str]) -> None:
        try:
            with httpx.stream("GET", url, params={"watch": "1", "timeoutSeconds": "60", **params},
                              timeout=httpx.Timeout(10, read=90)) as response:
                assert response.status_code == 200, response.read()
                self.opened.set()  # the server registered the stream before it answered
                for line in response.iter_lines():
                    if line:
                        self.lines.put(json.loads(line))
        except httpx.HTTPError:
            pass
        finally:
            self.opened.set()
            self.lines.put(None)

    def next(self, timeout: float = 10.0) -> dict[str, Any] | None:
        try:
            return self.lines.get(timeout=timeout)
        except queue.Empty:
            pytest.fail(f"nothing on the watch within {timeout}s")

    def quiet(self, seconds: float) -> bool:
        """Whether nothing at all arrives (the stream also stays open) for `seconds`."""
        try:
            self.lines.get(timeout=seconds)
        except queue.Empty:
            return True
        return False


def expired_status(event: dict[str, Any] | None) -> dict[str, Any]:
    assert event is not None and event["type"] == "ERROR", event
    status = event["object"]
    assert (status["kind"], status["status"], status["code"], status["reason"]) == \
        ("Status", "Failure", 410, "Expired"), status
    assert status["message"].startswith("too old resource version: "), status
    return status  # type: ignore[no-any-return]


# -- ExpireWatches -----------------------------------------------------------------------------------------
def test_python_watch_retries_one_410_then_raises_after_compaction_and_the_caller_relists(
        kapi_factory: Any, tmp_path: Path) -> None:
    kapi = start(kapi_factory, tmp_path, "file")
    a, b = new_cluster(kapi, "watch-a"), new_cluster(kapi, "watch-b")
    one = a.configmap("one")
    watcher = ClientWatch(a.core())
    assert watcher.next()[:2] == ("ADDED", "one")
    other = RawWatch(b, f"/api/v1/namespaces/{NS}/configmaps", labelSelector=LABEL)

    # 1. The stream ends with ERROR 410; the client re-watches once from the last resourceVersion it saw,
    # which the server still holds, so the stream goes on and the next write arrives.
    assert a.expire_watches("configmaps") == 1
    two = a.configmap("two")
    assert watcher.next() == ("ADDED", "two", two.metadata.resource_version)
    assert watcher.calls == [None, one.metadata.resource_version]
    assert watcher.error is None and not watcher.done.is_set()

    # 2. History dropped past what the client saw (a secret written since, then Compact): the re-watch is
    # answered ERROR 410 too, and this second 410 in a row is raised to the caller. One re-watch only: so the
    # expiry itself reached the client as a 410 (a stream merely closed would have been re-watched twice).
    a.core().create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="bump")))
    revision = a.compact()
    assert revision > int(two.metadata.resource_version)
    assert a.expire_watches("configmaps") == 1
    assert watcher.done.wait(10), "the client did not give up"
    assert isinstance(watcher.error, ApiException) and watcher.error.status == 410, repr(watcher.error)
    assert str(watcher.error.reason).startswith("Expired: too old resource version"), watcher.error.reason
    assert watcher.calls == [None, one.metadata.resource_version, two.metadata.resource_version]
    assert watcher.events.empty()

    # 3. What the client must do then: relist, and watch on from the list's resourceVersion.
    relisted = a.core().list_namespaced_config_map(NS, label_selector=LABEL)
    assert names(relisted.items) == {"one", "two"}
    assert int(relisted.metadata.resource_version) >= revision
    again = ClientWatch(a.core(), resource_version=relisted.metadata.resource_version)
    three = a.configmap("three")
    assert again.next() == ("ADDED", "three", three.metadata.resource_version)
    assert again.calls == [relisted.metadata.resource_version]
    again.stop()

    # The other cluster's watch never ended: it has only its own object to show.
    assert other.quiet(0.2)
    b.configmap("b-one")
    event = other.next()
    assert event is not None and (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "b-one")


def test_expire_watches_with_a_resource_ends_only_that_resources_watches(server: Any) -> None:
    a, b = new_cluster(server, "expire-a"), new_cluster(server, "expire-b")
    secrets = RawWatch(a, f"/api/v1/namespaces/{NS}/secrets")
    configmaps = RawWatch(a, f"/api/v1/namespaces/{NS}/configmaps", labelSelector=LABEL)
    deployments = RawWatch(a, f"/apis/apps/v1/namespaces/{NS}/deployments")
    elsewhere = RawWatch(b, f"/api/v1/namespaces/{NS}/configmaps", labelSelector=LABEL)

    assert a.expire_watches("configmaps") == 1
    expired_status(configmaps.next())
    assert configmaps.next() is None  # the stream is over

    a.core().create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="still-watched")))
    event = secrets.next()
    assert event is not None and (event["type"], event["object"]["metadata"]["name"]) == \
        ("ADDED", "still-watched")

    assert a.expire_watches("deployments.apps") == 1  # "plural.group"
    expired_status(deployments.next())
    assert a.expire_watches("deployments") == 0  # core has no deployments: nothing matched
    assert secrets.quiet(0.2)

    assert a.expire_watches() == 1  # no resource: every open watch of this cluster (the secrets one is left)
    expired_status(secrets.next())
    assert secrets.next() is None

    assert elsewhere.quiet(0.2)  # cluster b's watch saw none of it
    b.configmap("b-still")
    event = elsewhere.next()
    assert event is not None and event["object"]["metadata"]["name"] == "b-still"


# -- Compact -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["memory", "file"])
def test_compact_expires_a_paged_list_and_a_watch_from_before(kapi_factory: Any, tmp_path: Path,
                                                              backend: str) -> None:
    kapi = start(kapi_factory, tmp_path, backend)
    a, b = new_cluster(kapi, "compact-a"), new_cluster(kapi, "compact-b")
    for cluster in (a, b):
        for name in ("p1", "p2", "p3"):
            cluster.configmap(name)
    first = a.core().list_namespaced_config_map(NS, label_selector=LABEL, limit=1)
    other_first = b.core().list_namespaced_config_map(NS, label_selector=LABEL, limit=1)
    old = first.metadata.resource_version
    assert [c.metadata.name for c in first.items] == ["p1"] and first.metadata._continue

    a.configmap("p4")  # history moves on past the first page's revision...
    revision = a.compact()  # ...and is dropped
    assert revision > int(old)

    gone = api_error(a.core().list_namespaced_config_map, NS, label_selector=LABEL, limit=1,
                     _continue=first.metadata._continue)
    assert gone.status == 410
    body = status_of(gone)
    assert (body["reason"], body["code"]) == ("Expired", 410)
    assert body["message"].startswith("The provided continue parameter is too old to display a consistent "
                                      "list result.")

    # a watch from the old resourceVersion: one ERROR 410 event, raw and as the Python client raises it
    raw = RawWatch(a, f"/api/v1/namespaces/{NS}/configmaps", resourceVersion=old)
    expired_status(raw.next())
    assert raw.next() is None
    with pytest.raises(ApiException) as info:  # timeout_seconds: the helper does not retry, so raises at once
        for _event in watch.Watch().stream(a.core().list_namespaced_config_map, NS, resource_version=old,
                                           timeout_seconds=5):
            pytest.fail("no event was expected")
    assert info.value.status == 410 and str(info.value.reason).startswith("Expired: too old resource version")

    # from the compacted revision on, watching works; a fresh paged list works
    fresh = RawWatch(a, f"/api/v1/namespaces/{NS}/configmaps", labelSelector=LABEL, resourceVersion=str(revision))
    a.configmap("p5")
    event = fresh.next()
    assert event is not None and (event["type"], event["object"]["metadata"]["name"]) == ("ADDED", "p5")
    pages, token = [], None
    while True:
        page = a.core().list_namespaced_config_map(NS, label_selector=LABEL, limit=2, _continue=token)
        pages.append([c.metadata.name for c in page.items])
        token = page.metadata._continue
        if not token:
            break
    assert pages == [["p1", "p2"], ["p3", "p4"], ["p5"]]

    # cluster b's history was not compacted: its continuation still works
    rest = b.core().list_namespaced_config_map(NS, label_selector=LABEL, limit=5,
                                               _continue=other_first.metadata._continue)
    assert [c.metadata.name for c in rest.items] == ["p2", "p3"]


# -- Conflict ----------------------------------------------------------------------------------------------
def test_conflict_answers_409_count_times_then_the_write_goes_through(server: Any) -> None:
    a, b = new_cluster(server, "conflict-a"), new_cluster(server, "conflict-b")
    for cluster in (a, b):
        cluster.configmap("shared", k="v0")
    fault = a.add_fault(type="Conflict", resource="configmaps", count=2)
    assert fault == {"id": fault["id"], "type": "Conflict", "resource": "configmaps", "count": 2,
                     "verbs": ["create", "delete", "deletecollection", "patch", "update"]}

    api = a.core()
    expected = ('Operation cannot be fulfilled on configmaps "shared": the object has been modified; please '
                "apply your changes to the latest version and try again")
    for attempt in (1, 2):
        current = api.read_namespaced_config_map("shared", NS)  # reads are not writes: untouched
        current.data = {"k": f"v{attempt}"}
        conflict = api_error(api.replace_namespaced_config_map, "shared", NS, current)
        assert conflict.status == 409
        body = status_of(conflict)
        assert (body["reason"], body["message"]) == ("Conflict", expected)
        assert body["details"] == {"name": "shared", "kind": "configmaps"}
        assert api.read_namespaced_config_map("shared", NS).data == {"k": "v0"}  # nothing was written
        left = a.faults()
        assert left == ([] if attempt == 2 else [{**fault, "count": 1}])
    current = api.read_namespaced_config_map("shared", NS)
    current.data = {"k": "v3"}
    assert api.replace_namespaced_config_map("shared", NS, current).data == {"k": "v3"}

    # kubectl shows kube's wording; cluster b writes freely meanwhile
    a.add_fault(type="Conflict", resource="configmaps", verbs=["patch"])
    refused = a.kubectl("label", "configmap", "shared", "tier=gold", check=False)
    assert refused.returncode != 0
    assert f"Error from server (Conflict): {expected}" in refused.stderr
    assert "configmap/shared labeled" in b.kubectl("label", "configmap", "shared", "tier=gold").stdout
    assert "tier" not in (api.read_namespaced_config_map("shared", NS).metadata.labels or {})


# -- Fail --------------------------------------------------------------------------------------------------
def test_fail_by_verb_and_resource_and_count(server: Any) -> None:
    a, b = new_cluster(server, "fail-a"), new_cluster(server, "fail-b")
    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="web"), spec=client.V1PodSpec(
        containers=[client.V1Container(name="web", image="nginx:1.27")]))
    for cluster in (a, b):
        cluster.core().create_namespaced_pod(NS, pod)
    a.add_fault(type="Fail", code=500, verbs=["list"], resource="pods", message=FAIL_MESSAGE)

    api = a.core()
    failed = api_error(api.list_namespaced_pod, NS)
    assert failed.status == 500
    assert status_of(failed) == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                 "message": FAIL_MESSAGE, "reason": "InternalError", "code": 500}
    assert api.read_namespaced_pod("web", NS).metadata.name == "web"  # get is not list
    assert api.list_namespaced_config_map(NS).items is not None  # pods only
    assert [p.metadata.name for p in b.core().list_namespaced_pod(NS).items] == ["web"]

    listed = a.kubectl("get", "pods", check=False)
    assert listed.returncode != 0
    assert f"Error from server (InternalError): {FAIL_MESSAGE}" in listed.stderr
    assert a.kubectl("get", "pod", "web", "-o", "name").stdout.strip() == "pod/web"
    assert b.kubectl("get", "pods", "-o", "name").stdout.strip() == "pod/web"

    # count: only the first N matching requests fail, then the fault is gone
    counted = a.add_fault(type="Fail", code=500, verbs=["create"], resource="configmaps", count=2)
    assert counted["count"] == 2
    for n, left in ((1, 1), (2, None)):
        error = api_error(a.configmap, f"try-{n}")
        assert error.status == 500
        assert status_of(error)["message"] == f"injected fault {counted['id']}: the server answered 500"
        listed_faults = {f["id"]: f for f in a.faults()}
        assert listed_faults.get(counted["id"], {}).get("count") == left
    assert a.configmap("try-3").metadata.name == "try-3"
    assert names(api.list_namespaced_config_map(NS, label_selector=LABEL).items) == {"try-3"}


def test_fail_by_user_answers_bob_503_with_retry_after_and_not_the_admin(server: Any) -> None:
    a, b = new_cluster(server, "user-a"), new_cluster(server, "user-b")
    binding = client.V1ClusterRoleBinding(
        metadata=client.V1ObjectMeta(name="viewers-view"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole", name="view"),
        subjects=[client.RbacV1Subject(kind="Group", name="viewers", api_group="rbac.authorization.k8s.io")])
    for cluster in (a, b):
        client.RbacAuthorizationV1Api(cluster.api_client()).create_cluster_role_binding(binding)
        cluster.configmap("seen")
    bob = a.core(BOB_TOKEN)
    assert bob.read_namespaced_config_map("seen", NS).data == {"k": "v"}  # RBAC lets bob read

    fault = a.add_fault(type="Fail", code=503, user="bob", resource="configmaps")
    with a.http(BOB_TOKEN) as http:
        raw = http.get(f"/api/v1/namespaces/{NS}/configmaps/seen")
    assert raw.status_code == 503 and raw.headers["Retry-After"] == "1"
    assert raw.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                          "message": f"injected fault {fault['id']}: the server answered 503",
                          "reason": "ServiceUnavailable", "details": {"retryAfterSeconds": 1}, "code": 503}
    unavailable = api_error(bob.read_namespaced_config_map, "seen", NS)
    assert unavailable.status == 503 and retry_after(unavailable) == "1"
    assert status_of(unavailable)["reason"] == "ServiceUnavailable"

    assert a.core().read_namespaced_config_map("seen", NS).data == {"k": "v"}  # the admin is not bob
    assert b.core(BOB_TOKEN).read_namespaced_config_map("seen", NS).data == {"k": "v"}  # nor is b faulted
    assert bob.list_namespaced_pod(NS).items == []  # nor other resources

    # A client left with its defaults (urllib3's Retry(3)) retries a 503 GET that has a Retry-After, waiting
    # Retry-After each time: three such answers are absorbed, bob never sees them.
    a.remove_fault(fault["id"])
    fault = a.add_fault(type="Fail", code=503, user="bob", resource="configmaps", verbs=["get"], count=3)
    started = time.monotonic()
    assert a.core(BOB_TOKEN, retries=None).read_namespaced_config_map("seen", NS).data == {"k": "v"}
    assert time.monotonic() - started >= 2.5  # three Retry-After: 1 waits
    assert a.faults() == []  # all three were spent on that one call


# -- Delay -------------------------------------------------------------------------------------------------
def test_delay_holds_matching_requests_for_at_least_delay_seconds(server: Any) -> None:
    a, b = new_cluster(server, "delay-a"), new_cluster(server, "delay-b")
    a.configmap("slow")
    fault = a.add_fault(type="Delay", delaySeconds=1.5, verbs=["list"], resource="configmaps", count=1)
    assert fault["delaySeconds"] == 1.5

    b.core().list_namespaced_config_map(NS)  # another cluster
    a.core().read_namespaced_config_map("slow", NS)  # another verb
    assert [f["id"] for f in a.faults()] == [fault["id"]]  # neither met the fault

    started = time.monotonic()
    listed = a.core().list_namespaced_config_map(NS, label_selector=LABEL)
    elapsed = time.monotonic() - started
    assert names(listed.items) == {"slow"}  # delayed, then answered as usual
    assert 1.5 <= elapsed < 10
    assert a.faults() == []

    a.add_fault(type="Delay", delaySeconds=1, resource="configmaps")  # no count: every request, kubectl's too
    started = time.monotonic()
    assert a.kubectl("get", "configmap", "slow", "-o", "name").stdout.strip() == "configmap/slow"
    assert time.monotonic() - started >= 1


# -- WebhookTimeout ----------------------------------------------------------------------------------------
def validating_webhook(hooks: Any, failure_policy: str) -> str:
    return yaml.safe_dump({
        "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
        "metadata": {"name": "check"},
        "webhooks": [{"name": "check.kapi.test", "clientConfig": hooks.client_config("/check"),
                      "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 1,
                      "failurePolicy": failure_policy,
                      "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                                 "resources": ["configmaps"]}]}]})


def test_webhook_timeout_fails_the_call_unless_failure_policy_ignores_it(
        server: Any, https_json_server: Any) -> None:
    hooks = https_json_server()
    hooks.routes["/check"] = lambda review: (200, {
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "response": {"uid": review["request"]["uid"], "allowed": True}})
    a, b = new_cluster(server, "hook-a"), new_cluster(server, "hook-b")
    for cluster in (a, b):
        cluster.kubectl("apply", "-f", "-", input=validating_webhook(hooks, "Fail"))

    def called() -> list[str]:
        return [f'{r.body["request"]["name"]}' for r in hooks.requests]

    assert a.configmap("before").metadata.name == "before"
    assert called() == ["before"]

    a.add_fault(type="WebhookTimeout", webhook="some-other.kapi.test")  # another webhook's name: no effect
    assert a.configmap("other-hook").metadata.name == "other-hook"
    assert called() == ["before", "other-hook"]

    fault = a.add_fault(type="WebhookTimeout")
    started = time.monotonic()
    failed = api_error(a.configmap, "timed-out")
    assert time.monotonic() - started >= 1  # the webhook's timeoutSeconds was waited out
    assert failed.status == 500
    body = status_of(failed)
    assert body["reason"] == "InternalError"
    assert body["message"] == (
        'Internal error occurred: failed calling webhook "check.kapi.test": failed to call webhook: '
        f'Post "{hooks.client_config("/check")["url"]}?timeout=1s": context deadline exceeded')
    assert called() == ["before", "other-hook"]  # the webhook was never called
    refused = a.kubectl("create", "configmap", "by-kubectl", check=False)
    assert refused.returncode != 0 and "context deadline exceeded" in refused.stderr
    assert names(a.core().list_namespaced_config_map(NS).items) >= {"before", "other-hook"}
    assert not names(a.core().list_namespaced_config_map(NS).items) & {"timed-out", "by-kubectl"}

    assert b.configmap("in-b").metadata.name == "in-b"  # b's webhook is called as usual
    assert called() == ["before", "other-hook", "in-b"]

    a.kubectl("apply", "-f", "-", input=validating_webhook(hooks, "Ignore"))
    started = time.monotonic()
    assert a.configmap("ignored").metadata.name == "ignored"  # the failure is ignored, the write goes on
    assert time.monotonic() - started >= 1
    assert called() == ["before", "other-hook", "in-b"]

    a.remove_fault(fault["id"])
    a.configmap("after")
    assert called()[-1] == "after"


# -- PauseStorage ------------------------------------------------------------------------------------------
def test_pause_storage_answers_503_fails_readyz_and_stalls_watches_until_removed(server: Any) -> None:
    a, b = new_cluster(server, "pause-a"), new_cluster(server, "pause-b")
    for cluster in (a, b):
        cluster.configmap("before")
    watcher = ClientWatch(a.core())
    assert watcher.next()[:2] == ("ADDED", "before")

    # A create already past the fault check when the storage pauses: held by a one-shot Delay, whose
    # disappearance from the fault list says the request has met it.
    delay = a.add_fault(type="Delay", delaySeconds=1, verbs=["create"], resource="configmaps", count=1)
    created: queue.Queue[Any] = queue.Queue()
    threading.Thread(target=lambda: created.put(a.configmap("during")), daemon=True).start()
    wait_until(lambda: delay["id"] not in [f["id"] for f in a.faults()], what="the create to meet the delay")
    pause = a.add_fault(type="PauseStorage")
    assert pause == {"id": pause["id"], "type": "PauseStorage"}

    api = a.core()
    unavailable = api_error(api.read_namespaced_config_map, "before", NS)
    assert unavailable.status == 503 and retry_after(unavailable) == "1"
    body = status_of(unavailable)
    assert body["reason"] == "ServiceUnavailable"
    assert body["message"] == "storage is unavailable: etcdserver: request timed out (kapi fault: PauseStorage)"
    assert api_error(a.configmap, "refused").status == 503  # writes too
    assert api_error(api.list_namespaced_config_map, NS, watch=True).status == 503  # and new watches

    with a.http() as http:
        ready = http.get("/readyz")
        assert ready.status_code == 500
        assert "[-]etcd failed: reason withheld" in ready.text
        assert http.get("/livez").status_code == 200  # alive, not ready
        assert http.get("/version").status_code == 200  # not a resource request
    for other in (b, Cluster(server, "root")):
        with other.http() as http:
            assert http.get("/readyz").status_code == 200
    assert b.core().read_namespaced_config_map("before", NS).metadata.name == "before"

    during = created.get(timeout=10)  # the held create finished: it was in the storage before the pause
    assert during.metadata.name == "during"
    time.sleep(1)
    assert watcher.events.empty()  # ...but the open watch shows nothing while paused
    assert watcher.error is None and not watcher.done.is_set()

    a.remove_fault(pause["id"])  # DELETE /kapi/faults/<id>
    assert watcher.next() == ("ADDED", "during", during.metadata.resource_version)
    with a.http() as http:
        assert http.get("/readyz").status_code == 200
    assert api.read_namespaced_config_map("before", NS).metadata.name == "before"
    after = a.configmap("after")
    assert watcher.next() == ("ADDED", "after", after.metadata.resource_version)
    assert watcher.calls == [None]  # one stream all along
    watcher.stop()


# -- per cluster, clearing, bad specs ----------------------------------------------------------------------
def test_faults_are_per_cluster_and_delete_clears_them(server: Any) -> None:
    a, b, root = new_cluster(server, "scope-a"), new_cluster(server, "scope-b"), Cluster(server, "root")
    for cluster in (a, b, root):
        cluster.configmap("here")
    a.add_fault(type="Fail", code=500, resource="configmaps", message=FAIL_MESSAGE)
    a.add_fault(type="Conflict", resource="secrets")
    assert [f["type"] for f in a.faults()] == ["Fail", "Conflict"]
    assert b.faults() == [] and root.faults() == []

    assert api_error(a.core().read_namespaced_config_map, "here", NS).status == 500
    failed = a.kubectl("get", "configmaps", check=False)
    assert failed.returncode != 0 and f"Error from server (InternalError): {FAIL_MESSAGE}" in failed.stderr
    for cluster in (b, root):
        assert cluster.core().read_namespaced_config_map("here", NS).metadata.name == "here"
        assert "configmap/here" in cluster.kubectl("get", "configmaps", "-o", "name").stdout.split()
        cluster.core().create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="s")))

    root.add_fault(type="Fail", code=500, resource="configmaps")  # the root's faults stay in the root too
    assert b.core().read_namespaced_config_map("here", NS).metadata.name == "here"
    with root.http() as http:
        assert http.delete("/kapi/faults").json() == {"faults": []}

    with a.http() as http:
        cleared = http.delete("/kapi/faults")
    assert cleared.status_code == 200 and cleared.json() == {"faults": []}
    assert a.faults() == []
    assert a.core().read_namespaced_config_map("here", NS).metadata.name == "here"
    assert "configmap/here" in a.kubectl("get", "configmaps", "-o", "name").stdout.split()
    a.core().create_namespaced_secret(NS, client.V1Secret(metadata=client.V1ObjectMeta(name="s")))


def test_bad_fault_specs_are_400_status_errors(server: Any) -> None:
    a = new_cluster(server, "bad-specs")

    def refused(spec: Any, status: int = 400) -> str:
        with a.http() as http:
            response = http.post("/kapi/faults", content=spec if isinstance(spec, bytes) else json.dumps(spec))
        assert response.status_code == status, response.text
        body = response.json()
        assert (body["kind"], body["status"], body["code"]) == ("Status", "Failure", status), body
        return str(body["message"])

    assert refused({"type": "Explode"}) == ("fault type 'Explode' is not one of Fail, Delay, Conflict, "
                                            "WebhookTimeout, PauseStorage, ExpireWatches, Compact")
    assert refused({"type": "Fail"}) == "a Fail fault needs a 'code' between 400 and 599"
    assert refused({"type": "Fail", "code": 200}) == "a Fail fault needs a 'code' between 400 and 599"
    assert refused({"type": "Fail", "code": 500, "colour": "red"}) == "unknown fault field(s): colour"
    assert refused({"type": "Delay"}) == "a Delay fault needs 'delaySeconds' above 0"
    assert refused({"type": "Conflict", "verbs": ["get"]}).startswith("a Conflict fault applies to writes only")
    assert refused({"type": "ExpireWatches", "resource": 3}).startswith("ExpireWatches takes only")
    assert refused(b"not json").startswith("the body must be a JSON fault")
    assert refused(["Fail"]) == 'a fault is a JSON object such as {"type": "Fail", "code": 500}'
    assert a.faults() == []  # none of them was kept

    with a.http() as http:
        assert http.delete("/kapi/faults/fault-99").status_code == 404
    with httpx.Client(base_url=server.url, timeout=10) as http:
        missing = http.post("/clusters/no-such/kapi/faults", json={"type": "Fail", "code": 500})
    assert missing.status_code == 404 and missing.json()["message"] == 'clusters "no-such" not found'
