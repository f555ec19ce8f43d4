"""Audit end to end: a real `kapi start --audit-policy-file P --audit-log-path L` (and a webhook backend), a
scripted set of requests, then exactly the events kube would record, rotation by size, batched EventLists."""
from __future__ import annotations

import base64
import http.server
import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import orjson
import pytest

REPO = Path(__file__).resolve().parents[2]
SECRET_TEXT = "s3cr3t-pa55w0rd"
QUIET_TOKEN = "quiet-token-0123456789"
FOUR_LEVELS = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  users: ["quiet"]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: Request
  resources: [{group: "", resources: ["configmaps"]}]
- level: RequestResponse
  resources: [{group: "", resources: ["pods"]}]
"""
NS = "/api/v1/namespaces/default"
POD = {"metadata": {"name": "web"}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
# (what, method, path, body, token, expected events: (stage, level, verb, resource, requestObject?, responseObject?))
Expected = tuple[str, str, str, str, bool, bool]
SCRIPT: list[tuple[str, str, str, Any, str | None, list[Expected]]] = [
    ("create a secret", "POST", f"{NS}/secrets", {"metadata": {"name": "db"}, "stringData": {"password": SECRET_TEXT}},
     None, [("RequestReceived", "Metadata", "create", "secrets", False, False),
            ("ResponseComplete", "Metadata", "create", "secrets", False, False)]),
    ("read the secret", "GET", f"{NS}/secrets/db", None, None,
     [("RequestReceived", "Metadata", "get", "secrets", False, False),
      ("ResponseComplete", "Metadata", "get", "secrets", False, False)]),
    ("list secrets", "GET", f"{NS}/secrets", None, None,
     [("RequestReceived", "Metadata", "list", "secrets", False, False),
      ("ResponseComplete", "Metadata", "list", "secrets", False, False)]),
    ("a missing secret", "GET", f"{NS}/secrets/nope", None, None,
     [("RequestReceived", "Metadata", "get", "secrets", False, False),
      ("ResponseComplete", "Metadata", "get", "secrets", False, False)]),
    ("create a configmap", "POST", f"{NS}/configmaps", {"metadata": {"name": "cfg"}, "data": {"k": "v"}}, None,
     [("RequestReceived", "Request", "create", "configmaps", False, False),
      ("ResponseComplete", "Request", "create", "configmaps", True, False)]),
    ("read the configmap", "GET", f"{NS}/configmaps/cfg", None, None,
     [("RequestReceived", "Request", "get", "configmaps", False, False),
      ("ResponseComplete", "Request", "get", "configmaps", False, False)]),
    ("patch the configmap", "PATCH", f"{NS}/configmaps/cfg", {"data": {"k": "w"}}, None,
     [("RequestReceived", "Request", "patch", "configmaps", False, False),
      ("ResponseComplete", "Request", "patch", "configmaps", True, False)]),
    ("create a pod", "POST", f"{NS}/pods", POD, None,
     [("RequestReceived", "RequestResponse", "create", "pods", False, False),
      ("ResponseComplete", "RequestResponse", "create", "pods", True, True)]),
    ("read the pod", "GET", f"{NS}/pods/web", None, None,
     [("RequestReceived", "RequestResponse", "get", "pods", False, False),
      ("ResponseComplete", "RequestResponse", "get", "pods", False, True)]),
    ("watch pods for a second", "GET", f"{NS}/pods?watch=1&timeoutSeconds=1", None, None,
     [("RequestReceived", "RequestResponse", "watch", "pods", False, False),
      ("ResponseStarted", "RequestResponse", "watch", "pods", False, False),
      ("ResponseComplete", "RequestResponse", "watch", "pods", False, False)]),
    ("quiet lists pods (level None)", "GET", f"{NS}/pods", None, QUIET_TOKEN, []),
    ("quiet reads the secret (level None)", "GET", f"{NS}/secrets/db", None, QUIET_TOKEN, []),
    ("no rule for namespaces (level None)", "GET", "/api/v1/namespaces", None, None, []),
    ("no rule for /version (level None)", "GET", "/version", None, None, []),
    ("delete the pod", "DELETE", f"{NS}/pods/web", None, None,
     [("RequestReceived", "RequestResponse", "delete", "pods", False, False),
      ("ResponseComplete", "RequestResponse", "delete", "pods", False, True)]),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def read_events(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in path.read_bytes().splitlines()]


def tokens(tmp_path: Path) -> Path:
    return write(tmp_path / "tokens.csv", f'{QUIET_TOKEN},quiet,2000,"system:masters"\n')


def run_script(client: httpx.Client) -> list[tuple[str, httpx.Response]]:
    answers = []
    for what, method, path, body, token, _ in SCRIPT:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        content = orjson.dumps(body) if body is not None else None
        answer = client.request(method, path, content=content, headers=headers)
        assert answer.status_code < 500, (what, answer.text)
        answers.append((what, answer))
    return answers


def test_four_levels_give_exactly_the_expected_events(kapi_factory: Any, tmp_path: Path) -> None:
    policy, log = write(tmp_path / "policy.yaml", FOUR_LEVELS), tmp_path / "audit" / "audit.log"
    kapi = kapi_factory("--audit-policy-file", str(policy), "--audit-log-path", str(log),
                        "--token-auth-file", str(tokens(tmp_path)))
    with kapi.client() as client:
        answers = run_script(client)
    kapi.stop()  # a graceful stop flushes the log
    events = read_events(log)

    expected = [(answer.headers["Audit-Id"], *stage) for (_, answer), (*_, stages) in zip(answers, SCRIPT)
                for stage in stages]
    got = [(e["auditID"], e["stage"], e["level"], e["verb"], e["objectRef"]["resource"], "requestObject" in e,
            "responseObject" in e) for e in events]
    assert got == expected  # nothing more (level None, unmatched requests), nothing less, in order

    raw = log.read_bytes()
    assert SECRET_TEXT.encode() not in raw
    assert base64.b64encode(SECRET_TEXT.encode()) not in raw
    for event in events:
        assert (event["kind"], event["apiVersion"]) == ("Event", "audit.k8s.io/v1")
        assert event["user"]["username"] == "kapi:localhost-admin"
        assert event["sourceIPs"] == ["127.0.0.1"]
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event["stageTimestamp"])
        if event["stage"] != "RequestReceived":
            assert event["annotations"]["authorization.k8s.io/decision"] == "allow"
            assert event["responseStatus"]["code"] == next(
                a.status_code for _, a in answers if a.headers["Audit-Id"] == event["auditID"])
    by_id = {(e["auditID"], e["stage"]): e for e in events}
    created_cm = by_id[(answers[4][1].headers["Audit-Id"], "ResponseComplete")]
    assert created_cm["requestObject"] == {"metadata": {"name": "cfg"}, "data": {"k": "v"}}
    assert created_cm["objectRef"]["name"] == "cfg"
    missing = by_id[(answers[3][1].headers["Audit-Id"], "ResponseComplete")]
    assert (missing["responseStatus"]["reason"], missing["responseStatus"]["code"]) == ("NotFound", 404)
    pod = by_id[(answers[8][1].headers["Audit-Id"], "ResponseComplete")]
    assert pod["responseObject"]["metadata"]["uid"] == answers[8][1].json()["metadata"]["uid"]


def test_kubectl_sees_audit_ids_and_secrets_stay_out(kapi_factory: Any, tmp_path: Path) -> None:
    policy = write(tmp_path / "policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                   "- level: None\n  nonResourceURLs: ['/api*', '/openapi*', '/version', '/readyz', '/healthz']\n"
                   "- level: Metadata\n  resources: [{group: '', resources: [secrets]}]\n"
                   "- level: RequestResponse\n")
    log = tmp_path / "audit.log"
    kapi = kapi_factory("--audit-policy-file", str(policy), "--audit-log-path", str(log))
    kapi.kubectl("create", "secret", "generic", "db", f"--from-literal=password={SECRET_TEXT}")
    kapi.kubectl("get", "secret", "db", "-o", "yaml")
    kapi.kubectl("create", "configmap", "cfg", "--from-literal=k=v")
    kapi.stop()
    events = read_events(log)
    secrets = [e for e in events if e["objectRef"]["resource"] == "secrets"]
    assert {(e["verb"], e["stage"], e["level"]) for e in secrets} == {
        ("create", "RequestReceived", "Metadata"), ("create", "ResponseComplete", "Metadata"),
        ("get", "RequestReceived", "Metadata"), ("get", "ResponseComplete", "Metadata")}
    assert SECRET_TEXT.encode() not in log.read_bytes()
    assert base64.b64encode(SECRET_TEXT.encode()) not in log.read_bytes()
    configmap = [e for e in events if e["objectRef"]["resource"] == "configmaps" and e["stage"] == "ResponseComplete"]
    assert configmap[0]["requestObject"]["data"] == {"k": "v"} and configmap[0]["responseObject"]["data"] == {"k": "v"}
    assert configmap[0]["userAgent"].startswith("kubectl/")


def test_log_rotates_by_size_keeping_max_backups(kapi_factory: Any, tmp_path: Path) -> None:
    policy = write(tmp_path / "policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                   "- level: RequestResponse\n  resources: [{group: '', resources: [configmaps]}]\n")
    log = tmp_path / "audit" / "audit.log"
    kapi = kapi_factory("--audit-policy-file", str(policy), "--audit-log-path", str(log),
                        "--audit-log-maxsize", "1", "--audit-log-maxbackup", "2")
    big = "x" * 300_000  # each GET's ResponseComplete carries it: about 300 kB per request
    with kapi.client() as client:
        created = client.post(f"{NS}/configmaps", json={"metadata": {"name": "big"}, "data": {"k": big}})
        assert created.status_code == 201
        ids = [client.get(f"{NS}/configmaps/big").headers["Audit-Id"] for _ in range(12)]
    kapi.stop()
    backups = sorted(p.name for p in log.parent.iterdir() if p != log)
    assert len(backups) == 2, backups  # more were made (about 4.5 MB written), only the newest two are kept
    for name in backups:
        assert re.fullmatch(r"audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log", name)
    files = [log.parent / name for name in backups] + [log]
    for path in files:
        assert path.stat().st_size <= 1024 * 1024
        assert all(orjson.loads(raw)["kind"] == "Event" for raw in path.read_bytes().splitlines())
    kept = [e["auditID"] for path in files for e in read_events(path) if e["stage"] == "ResponseComplete"]
    assert kept == ids[-len(kept):] and ids[-1] in kept  # the newest events, in order, none lost within


class Receiver:
    """A real HTTP server in the test process that records the EventLists POSTed to it."""

    def __init__(self) -> None:
        self.lists: list[dict[str, Any]] = []
        lists = self.lists

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                lists.append({"path": self.path, "auth": self.headers.get("Authorization"), **body})
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def kubeconfig(self, path: Path) -> Path:
        return write(path, f"""apiVersion: v1
kind: Config
clusters:
- name: audit-sink
  cluster:
    server: http://127.0.0.1:{self.port}/audit/events
users:
- name: kapi
  user:
    token: sink-token
contexts:
- name: sink
  context: {{cluster: audit-sink, user: kapi}}
current-context: sink
""")

    def events(self) -> list[dict[str, Any]]:
        return [item for batch in list(self.lists) for item in batch["items"]]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    yield server
    server.server.shutdown()
    server.server.server_close()


def wait_until(check: Callable[[], bool], seconds: float = 20.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "the webhook did not get every event"
        time.sleep(0.05)


def test_webhook_receives_batched_event_lists(kapi_factory: Any, tmp_path: Path, receiver: Receiver) -> None:
    policy = write(tmp_path / "policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n"
                   "- level: Metadata\n  resources: [{group: ''}]\n")
    kapi = kapi_factory("--audit-policy-file", str(policy),
                        "--audit-webhook-config-file", str(receiver.kubeconfig(tmp_path / "sink.kubeconfig")),
                        "--audit-webhook-batch-max-size", "5", "--audit-webhook-batch-max-wait", "1s")
    with kapi.client() as client:
        ids = [client.get(f"{NS}/configmaps").headers["Audit-Id"] for _ in range(6)]
    wait_until(lambda: len(receiver.events()) == 12)  # the last partial batch goes after at most 1 s
    batches = list(receiver.lists)
    assert all(b["kind"] == "EventList" and b["apiVersion"] == "audit.k8s.io/v1" for b in batches)
    assert all(b["path"] == "/audit/events" and b["auth"] == "Bearer sink-token" for b in batches)
    assert all(1 <= len(b["items"]) <= 5 for b in batches)
    assert sum(len(b["items"]) == 5 for b in batches) >= 2  # full batches went without waiting
    received = receiver.events()
    assert sorted((e["auditID"], e["stage"]) for e in received) == sorted(
        (i, stage) for i in ids for stage in ("RequestReceived", "ResponseComplete"))
    assert all(e["verb"] == "list" and e["level"] == "Metadata" for e in received)
    kapi.stop()


def test_a_bad_policy_stops_the_start_with_its_reason(tmp_path: Path) -> None:
    policy = write(tmp_path / "policy.yaml", "apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n")
    result = subprocess.run(
        [sys.executable, "-m", "kapi_cli.main", "start", "--backend", "memory", "--secure-port", "0",
         "--insecure-port", str(free_port()), "--file-rootpath", str(tmp_path / "root"),
         "--audit-policy-file", str(policy), "--audit-log-path", str(tmp_path / "audit.log")],
        capture_output=True, text=True, timeout=60, cwd=REPO, env={**os.environ, "KAPI_HOME": str(tmp_path / "home")})
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "--audit-policy-file" in output and 'Unsupported value: "Loud"' in output
    assert "Traceback" not in output
