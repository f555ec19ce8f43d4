"""The aggregation layer end to end (issue 19's "Done when"), on loopback with real processes and kubectl.

Server A (the aggregator, token users admin/alice/bob/kapi-b) proxies wardle.example.com/v1alpha1 to server
B, an aggregated kapi that serves a Flunder CRD and delegates authentication (TokenReview, request headers
from A's front proxy) and authorization (SubjectAccessReview) to A. Clients only ever talk to A, except
where a test proves what B itself believes.
"""
from __future__ import annotations

import base64
import functools
import json
import queue
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import pytest

from tests.e2e.conftest import sibling

H = sibling("aggregation_helpers.py")
FLUNDERS = f"/apis/{H.GROUP}/{H.VERSION}/namespaces/default/flunders"
DISCOVERY_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"


@dataclass
class Wardle:
    a: Any  # H.Server, the aggregator
    b: Any  # H.Server, the aggregated server

    def logs(self) -> str:
        return self.a.logs() + "\n" + self.b.logs()

    def available(self) -> dict[str, Any]:
        """The APIService's Available condition as A reports it ({} when it has none yet)."""
        got = self.a.kubectl("get", "apiservice", H.APISERVICE, "-o", "json", check=True)
        conditions = json.loads(got.stdout).get("status", {}).get("conditions", [])
        return next((c for c in conditions if c["type"] == "Available"), {})

    def wait_available(self, status: str, timeout: float = 15) -> dict[str, Any]:
        return H.wait_for(f"APIService Available={status}",  # type: ignore[no-any-return]
                          lambda: (c := self.available()).get("status") == status and c, timeout)


def with_logs(test: Callable[..., None]) -> Callable[..., None]:
    """On failure, both servers' logs are added to the assertion message."""
    @functools.wraps(test)
    def wrapper(**kwargs: Any) -> None:
        try:
            test(**kwargs)
        except AssertionError as exc:
            exc.add_note(kwargs["wardle"].logs())
            raise
    return wrapper


@pytest.fixture(scope="module")
def wardle(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Wardle]:
    """A, B and the APIService v1alpha1.wardle.example.com, Available=True; both servers stopped at the end."""
    base = tmp_path_factory.mktemp("aggregation")
    (base / "tokens.csv").write_text(H.TOKENS_CSV)
    a = H.Server(base / "a", ["--backend", "memory", "--token-auth-file", str(base / "tokens.csv"),
                              "--no-examples", "--apiservice-check-interval", "1s"])
    b = H.Server(base / "b", [])
    try:
        a.start()
        a.kubectl("create", "clusterrolebinding", "kapi-b-delegator", "--clusterrole", "system:auth-delegator",
                  "--user", "kapi-b", check=True)
        a.kubectl("create", "rolebinding", "-n", "kube-system", "kapi-b-auth-reader", "--role",
                  "extension-apiserver-authentication-reader", "--user", "kapi-b", check=True)
        (base / "b.kubeconfig").write_text(H.kubeconfig(a, H.TOKENS["kapi-b"]))
        (base / "crds").mkdir()
        (base / "crds" / "flunders.yaml").write_text(json.dumps(H.FLUNDER_CRD))
        b.args = ["--backend", "memory", "--no-examples", "--no-core-resources", "--resources",
                  str(base / "crds"), "--kubectl-disabled", "--san", "api.wardle.svc",
                  "--authentication-kubeconfig", str(base / "b.kubeconfig"),
                  "--authorization-kubeconfig", str(base / "b.kubeconfig")]
        b.start()
        a.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "wardle"}},
                {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "api", "namespace": "wardle"},
                 "spec": {"type": "ExternalName", "externalName": "localhost"}},
                {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": H.APISERVICE},
                 "spec": {"group": H.GROUP, "version": H.VERSION,
                          "service": {"namespace": "wardle", "name": "api", "port": b.port},
                          "caBundle": base64.b64encode(b.ca.read_bytes()).decode(),
                          "groupPriorityMinimum": 1000, "versionPriority": 15}})
        setup = Wardle(a, b)
        try:
            setup.wait_available("True")
        except AssertionError as exc:
            exc.add_note(setup.logs())
            raise
        yield setup
    finally:
        b.stop()
        a.stop()


def kubectl_ok(server: Any, *args: str, user: str = "admin", input: str | None = None) -> str:
    return server.kubectl(*args, user=user, input=input, check=True).stdout  # type: ignore[no-any-return]


@with_logs
def test_apiservice_is_available(wardle: Wardle) -> None:
    """The availability controller checked B (discovery over TLS with the caBundle) and says so as kube does."""
    condition = wardle.available()
    assert (condition["status"], condition["reason"], condition["message"]) == ("True", "Passed",
                                                                                 "all checks passed"), condition
    table = kubectl_ok(wardle.a, "get", "apiservices")
    row = next((line.split() for line in table.splitlines() if line.startswith(H.APISERVICE + " ")), [])
    assert row[1:3] == ["wardle/api", "True"], table


@with_logs
def test_flunder_crud_through_the_aggregator_is_stored_in_b(wardle: Wardle) -> None:
    """kubectl apply/get/list/patch/delete through A; B answers the same object when asked directly."""
    a, name = wardle.a, H.unique("flunder")
    kubectl_ok(a, "apply", "-f", "-", input=json.dumps(H.flunder(name, "first")))
    got = json.loads(kubectl_ok(a, "get", "flunder", name, "-o", "json"))
    assert got["apiVersion"] == f"{H.GROUP}/{H.VERSION}" and got["kind"] == "Flunder", got
    assert got["spec"] == {"reference": "first"}, got
    listed = kubectl_ok(a, "get", "flunders", "-A", "-o", "jsonpath={range .items[*]}{.metadata.name}{' '}{end}")
    assert name in listed.split(), listed
    kubectl_ok(a, "patch", "flunder", name, "--type", "merge", "-p", '{"spec":{"reference":"second"}}')
    with wardle.b.http() as b:
        direct = b.get(f"{FLUNDERS}/{name}")
    assert direct.status_code == 200, direct.text
    assert direct.json()["spec"] == {"reference": "second"}, direct.text
    assert direct.json()["metadata"]["uid"] == got["metadata"]["uid"], direct.text
    kubectl_ok(a, "delete", "flunder", name)
    gone = a.kubectl("get", "flunder", name)
    assert gone.returncode != 0 and "NotFound" in gone.stderr, gone.stderr
    with wardle.b.http() as b:
        assert b.get(f"{FLUNDERS}/{name}").status_code == 404


@with_logs
def test_alice_is_authorized_by_a_through_b(wardle: Wardle) -> None:
    """B knows alice only from A's X-Remote-User and asks A (SubjectAccessReview): A's RBAC decides."""
    a = wardle.a
    denied = a.kubectl("get", "flunders", user="alice")
    assert denied.returncode != 0 and "forbidden" in denied.stderr, denied.stderr
    assert 'User "alice" cannot list resource "flunders"' in denied.stderr, denied.stderr
    kubectl_ok(a, "create", "role", "flunder-user", "--verb", "get,list,create,watch",
               "--resource", f"flunders.{H.GROUP}")
    kubectl_ok(a, "create", "rolebinding", "alice-flunders", "--role", "flunder-user", "--user", "alice")
    # Should B have seen (and cached for 10 s) a denial, allow for it to expire.
    H.wait_for("alice to list flunders", lambda: a.kubectl("get", "flunders", user="alice").returncode == 0,
               timeout=15, every=1)
    name = H.unique("alices")
    kubectl_ok(a, "create", "-f", "-", user="alice", input=json.dumps(H.flunder(name)))
    assert name in kubectl_ok(a, "get", "flunders", "-o", "name", user="alice")
    kubectl_ok(a, "delete", "flunder", name)


@with_logs
def test_bob_with_his_token_directly_at_b_is_forbidden(wardle: Wardle) -> None:
    """B checks bob's token with A's TokenReview, then A's SubjectAccessReview says no: 403 Status."""
    with wardle.b.http(H.TOKENS["bob"]) as b:
        response = b.get(FLUNDERS)
    assert response.status_code == 403, response.text
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Forbidden", 403), status
    assert '"bob"' in status["message"], status


@with_logs
def test_b_ignores_identity_headers_without_a_front_proxy_certificate(wardle: Wardle) -> None:
    """X-Remote-* headers count only with a client certificate from A's front-proxy CA."""
    forged = {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}
    with wardle.b.http(None) as b:
        response = b.get(FLUNDERS, headers=forged)
    assert response.status_code == 401, response.text
    status = response.json()
    assert (status["kind"], status["reason"], status["code"]) == ("Status", "Unauthorized", 401), status
    # A's client certificate (A's main CA, a client CA B trusts) is an x509 user, not a front proxy:
    # the header naming bob is ignored.
    cert_dir = wardle.a.root / "cert"
    if not (cert_dir / "client.crt").exists():
        pytest.skip("A wrote no client certificate")
    with wardle.b.http(None, cert=(cert_dir / "client.crt", cert_dir / "client.key")) as b:
        response = b.get(FLUNDERS, headers={"X-Remote-User": "bob"})
        assert response.status_code == 200, response.text  # kapi-admin is in system:masters
        review = b.post("/apis/authentication.k8s.io/v1/selfsubjectreviews",
                        json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
                        headers={"X-Remote-User": "bob", "X-Remote-Group": "system:masters"})
    assert review.status_code == 201, review.text
    assert review.json()["status"]["userInfo"]["username"] == "kapi-admin", review.text


@with_logs
def test_discovery_and_explain_through_a(wardle: Wardle) -> None:
    """A's discovery (legacy and aggregated) and OpenAPI include what B serves."""
    a = wardle.a
    resources = kubectl_ok(a, "api-resources", "--api-group", H.GROUP)
    assert any(line.split()[:1] == ["flunders"] for line in resources.splitlines()), resources
    explained = kubectl_ok(a, "explain", "flunders.spec")
    assert "reference" in explained, explained
    groups = json.loads(kubectl_ok(a, "get", "--raw", "/apis"))
    assert H.GROUP in [g["name"] for g in groups["groups"]], groups
    with a.http() as http:
        response = http.get("/apis", headers={"Accept": DISCOVERY_V2})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == DISCOVERY_V2, response.headers
    listed = response.json()
    assert (listed["kind"], listed["apiVersion"]) == ("APIGroupDiscoveryList", "apidiscovery.k8s.io/v2"), listed
    item = next((i for i in listed["items"] if i["metadata"]["name"] == H.GROUP), None)
    assert item is not None, response.text
    version = next((v for v in item["versions"] if v["version"] == H.VERSION), {})
    assert version.get("freshness") == "Current", version
    assert "flunders" in [r["resource"] for r in version["resources"]], version


@with_logs
def test_watch_through_a_streams_events(wardle: Wardle) -> None:
    """`kubectl get -w` through A receives B's ADDED event for a flunder created after the watch began."""
    a, before, after = wardle.a, H.unique("before"), H.unique("after")
    kubectl_ok(a, "create", "-f", "-", input=json.dumps(H.flunder(before)))
    cmd = [H.KUBECTL, "--kubeconfig", "/dev/null", "--cache-dir", str(a.base / "kube-cache" / "admin"),
           "--server", a.url, "--certificate-authority", str(a.ca), "--token", H.TOKENS["admin"],
           "get", "flunders", "-w", "--output-watch-events"]
    watch = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in watch.stdout or ():
            lines.put(line)
    threading.Thread(target=pump, daemon=True).start()

    def added(name: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if lines.get(timeout=left).split()[:2] == ["ADDED", name]:
                    return True
            except queue.Empty:
                break
        return False

    try:
        assert added(before, 10), "the watch's initial list did not show the existing flunder"
        kubectl_ok(a, "create", "-f", "-", input=json.dumps(H.flunder(after)))
        assert added(after, 5), "no ADDED event streamed through A"
    finally:
        watch.terminate()
        watch.wait(timeout=10)
        a.kubectl("delete", "flunder", before, after, "--ignore-not-found")


@with_logs
def test_b_down_then_back(wardle: Wardle) -> None:
    """B stopped: Available=False (FailedDiscoveryCheck) and 503 through A; B restarted: Available again."""
    a, b = wardle.a, wardle.b
    b.stop()
    condition = wardle.wait_available("False")
    assert condition["reason"] == "FailedDiscoveryCheck", condition
    with a.http() as http:
        response = http.get(FLUNDERS)
    assert response.status_code == 503, response.text
    status = response.json()
    assert (status["kind"], status["code"], status["reason"]) == ("Status", 503, "ServiceUnavailable"), status
    table = kubectl_ok(a, "get", "apiservices")
    row = next((line for line in table.splitlines() if line.startswith(H.APISERVICE + " ")), "")
    assert "wardle/api" in row and "False (FailedDiscoveryCheck)" in row, table

    b.start()
    condition = wardle.wait_available("True")
    assert condition["reason"] == "Passed", condition
    listed = H.wait_for("flunders through A after B's restart",
                        lambda: (r := a.kubectl("get", "flunders", "-o", "json")).returncode == 0 and r)
    assert json.loads(listed.stdout)["items"] == [], listed.stdout
