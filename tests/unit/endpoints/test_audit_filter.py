"""The audit filters in the real handler chain, over in-process HTTP: stages, levels, users, Audit-Id."""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import orjson
import pytest
from starlette.requests import Request
from starlette.responses import Response

from kapi.app import ConfigError, create_app
from kapi.auth.modes import AlwaysAllowAuthorizer
from kapi.config import ServerConfig
from kapi.endpoints.filters import build_handler_chain

TOKEN = "alice-s3cret"
POLICY = """
apiVersion: audit.k8s.io/v1
kind: Policy
rules:
- level: None
  nonResourceURLs: ["/readyz*", "/healthz*", "/livez*"]
- level: Metadata
  resources: [{group: "", resources: ["secrets"]}]
- level: Request
  resources: [{group: "", resources: ["configmaps"]}]
- level: RequestResponse
  resources: [{group: "", resources: ["pods"]}]
- level: None
  users: ["quiet"]
- level: Metadata
"""


def config(tmp_path: Path, policy: str = POLICY, **kw: Any) -> ServerConfig:
    (tmp_path / "tokens.csv").write_text(f'{TOKEN},alice,1001,"developers"\n')
    (tmp_path / "policy.yaml").write_text(policy)
    base: dict[str, Any] = dict(backend="memory", file_rootpath=tmp_path / "root", load_examples=False,
                                token_auth_file=tmp_path / "tokens.csv", audit_policy_file=tmp_path / "policy.yaml",
                                audit_log_path=str(tmp_path / "audit.log"))
    base.update(kw)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def serve(cfg: ServerConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(cfg)
    admin = {"Authorization": f"Bearer {cfg.kubectl_token_path.read_text().strip()}"}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.9", 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi", headers=admin) as http:
            yield http


def events(cfg: ServerConfig) -> list[dict[str, Any]]:
    return [orjson.loads(raw) for raw in Path(cfg.audit_log_path).read_bytes().splitlines()]


def of(found: list[dict[str, Any]], audit_id: str) -> list[dict[str, Any]]:
    return [e for e in found if e["auditID"] == audit_id]


async def test_four_levels_and_their_bodies(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        secret = await http.post("/api/v1/namespaces/default/secrets",
                                 json={"metadata": {"name": "s"}, "stringData": {"password": "hunter2"}})
        configmap = await http.post("/api/v1/namespaces/default/configmaps",
                                    json={"metadata": {"name": "c"}, "data": {"k": "v"}})
        read_cm = await http.get("/api/v1/namespaces/default/configmaps/c")
        pod = await http.post("/api/v1/namespaces/default/pods",
                              json={"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "i"}]}})
        patched = await http.patch("/api/v1/namespaces/default/pods/p", content=b'{"metadata":{"labels":{"a":"b"}}}',
                                   headers={"Content-Type": "application/merge-patch+json"})
        missing = await http.get("/api/v1/namespaces/default/pods/nope")
        namespaces = await http.get("/api/v1/namespaces")
        ready = await http.get("/readyz")
    found = events(cfg)
    assert of(found, ready.headers["Audit-Id"]) == []  # level None: nothing

    stages = of(found, secret.headers["Audit-Id"])
    assert [(e["stage"], e["level"], e["verb"]) for e in stages] == [
        ("RequestReceived", "Metadata", "create"), ("ResponseComplete", "Metadata", "create")]
    assert all("requestObject" not in e and "responseObject" not in e for e in stages)
    assert b"hunter2" not in Path(cfg.audit_log_path).read_bytes()
    assert stages[1]["objectRef"] == {"resource": "secrets", "namespace": "default", "name": "s", "apiVersion": "v1"}
    assert stages[1]["responseStatus"] == {"metadata": {}, "code": 201}

    cm = of(found, configmap.headers["Audit-Id"])[1]
    assert cm["level"] == "Request" and cm["requestObject"] == {"metadata": {"name": "c"}, "data": {"k": "v"}}
    assert "responseObject" not in cm
    assert "requestObject" not in of(found, read_cm.headers["Audit-Id"])[1]  # a GET has no body

    created = of(found, pod.headers["Audit-Id"])[1]
    assert created["level"] == "RequestResponse"
    assert created["responseObject"]["metadata"]["uid"] == pod.json()["metadata"]["uid"]
    assert created["requestObject"]["metadata"] == {"name": "p"}
    patch = of(found, patched.headers["Audit-Id"])[1]
    assert patch["requestObject"] == {"metadata": {"labels": {"a": "b"}}}
    assert patch["responseObject"]["metadata"]["labels"] == {"a": "b"}
    not_found = of(found, missing.headers["Audit-Id"])[1]
    assert not_found["responseStatus"] == {"metadata": {}, "status": "Failure", "message": 'pods "nope" not found',
                                           "reason": "NotFound", "details": {"name": "nope", "kind": "pods"},
                                           "code": 404}
    assert not_found["responseObject"]["kind"] == "Status"
    listed = of(found, namespaces.headers["Audit-Id"])
    assert [(e["level"], e["verb"]) for e in listed] == [("Metadata", "list")] * 2
    for e in found:
        assert e["user"]["username"] == "kubectl" or "system:masters" in e["user"].get("groups", ())
        assert e["sourceIPs"] == ["10.0.0.9"]


async def test_audit_id_header_generated_or_kept(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        mine = await http.get("/api/v1/namespaces", headers={"Audit-ID": "my-own-id"})
        fresh = await http.get("/api/v1/namespaces")
    assert mine.headers["Audit-Id"] == "my-own-id"
    assert len(fresh.headers["Audit-Id"]) == 36 and fresh.headers["Audit-Id"] != "my-own-id"
    assert [e["stage"] for e in of(events(cfg), "my-own-id")] == ["RequestReceived", "ResponseComplete"]


async def test_audit_id_without_auditing(tmp_path: Path) -> None:
    cfg = config(tmp_path, audit_policy_file=None, audit_log_path="")
    async with serve(cfg) as http:
        answer = await http.get("/api/v1/namespaces/default/pods/nope")
    assert answer.status_code == 404 and len(answer.headers["Audit-Id"]) == 36
    assert not (tmp_path / "audit.log").exists()


async def test_authorization_annotations_and_impersonation(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        denied = await http.get("/api/v1/namespaces/default/configmaps", headers={"Authorization": f"Bearer {TOKEN}"})
        acting = await http.get("/api/v1/namespaces/default/configmaps", headers={"Impersonate-User": "alice"})
    assert denied.status_code == 403
    first, last = of(events(cfg), denied.headers["Audit-Id"])
    assert last["user"] == {"username": "alice", "uid": "1001", "groups": ["developers", "system:authenticated"]}
    assert last["annotations"]["authorization.k8s.io/decision"] == "forbid"
    assert "annotations" not in first  # decided after RequestReceived, as in kube
    assert last["responseStatus"]["reason"] == "Forbidden" and last["responseStatus"]["code"] == 403
    assert acting.status_code == 403  # alice may not list configmaps
    received, complete = of(events(cfg), acting.headers["Audit-Id"])
    assert "impersonatedUser" not in received
    assert complete["impersonatedUser"]["username"] == "alice"
    assert "system:masters" in complete["user"]["groups"]  # the real caller stays the user


async def test_failed_authentication_is_one_response_started_event(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        answer = await http.get("/api/v1/namespaces/default/pods", headers={"Authorization": "Bearer wrong"})
    assert answer.status_code == 401
    (event,) = of(events(cfg), answer.headers["Audit-Id"])
    assert event["stage"] == "ResponseStarted" and event["user"] == {} and event["level"] == "RequestResponse"
    assert event["responseStatus"] == {"metadata": {}, "message": "Authentication failed, attempted: bearer",
                                       "code": 401}


async def test_watch_stages(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        answer = await http.get("/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=1")
    assert answer.status_code == 200
    stages = of(events(cfg), answer.headers["Audit-Id"])
    assert [(e["stage"], e["verb"]) for e in stages] == [
        ("RequestReceived", "watch"), ("ResponseStarted", "watch"), ("ResponseComplete", "watch")]
    assert stages[1]["responseStatus"] == {"metadata": {}, "code": 200}
    assert "responseObject" not in stages[2]  # a stream is not an object
    assert stages[2]["stageTimestamp"] >= stages[1]["stageTimestamp"]


async def test_logical_clusters_share_the_log_and_mounted_apps_are_audited(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        made = await http.post("/kapi/clusters", json={"name": "dev"})
        inside = await http.get("/clusters/dev/api/v1/namespaces/default/configmaps?limit=5")
    assert made.status_code == 201
    created = of(events(cfg), made.headers["Audit-Id"])
    assert [(e["stage"], e["verb"], e["requestURI"]) for e in created] == [
        ("RequestReceived", "post", "/kapi/clusters"), ("ResponseComplete", "post", "/kapi/clusters")]
    assert created[1]["responseStatus"]["code"] == 201
    (_, listed) = of(events(cfg), inside.headers["Audit-Id"])
    assert listed["requestURI"] == "/clusters/dev/api/v1/namespaces/default/configmaps?limit=5"
    assert listed["level"] == "Request"


async def test_omit_stages_and_managed_fields(tmp_path: Path) -> None:
    policy = ("apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nomitManagedFields: true\n"
              "rules:\n- level: RequestResponse\n")
    cfg = config(tmp_path, policy)
    async with serve(cfg) as http:
        answer = await http.post("/api/v1/namespaces/default/configmaps",
                                 json={"metadata": {"name": "c"}, "data": {"k": "v"}})
    assert answer.json()["metadata"]["managedFields"]
    (event,) = of(events(cfg), answer.headers["Audit-Id"])
    assert event["stage"] == "ResponseComplete"
    assert "managedFields" not in event["responseObject"]["metadata"]


async def test_an_unexpected_error_is_a_panic_event(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    app = create_app(cfg)

    async def broken(_request: Request) -> Response:
        raise RuntimeError("a bug")

    ctx = app.state.api
    handler = build_handler_chain(broken, ctx, app.state.clusters.root.authenticator, AlwaysAllowAuthorizer())
    async with app.router.lifespan_context(app):
        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            await (await handler(Request(scope, receive, send)))(scope, receive, send)

        transport = httpx.ASGITransport(app=asgi, client=("127.0.0.1", 1))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            token = cfg.kubectl_token_path.read_text().strip()
            answer = await http.get("/api/v1/namespaces", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 500
    stages = of(events(cfg), answer.headers["Audit-Id"])
    assert [e["stage"] for e in stages] == ["RequestReceived", "Panic"]
    assert stages[1]["responseStatus"] == {"metadata": {}, "status": "Failure",
                                           "message": "APIServer panic'd: a bug", "reason": "InternalError",
                                           "code": 500}


@pytest.mark.parametrize("policy, message", [
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules: []\n", "loaded illegal policy with 0 rules"),
    ("apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Loud\n", 'Unsupported value: "Loud"'),
    ("kind: Policy\nrules:\n- level: None\n", "unknown group version"),
])
def test_a_bad_policy_stops_the_start(tmp_path: Path, policy: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        create_app(config(tmp_path, policy))
    assert "--audit-policy-file" in str(caught.value) and message in str(caught.value)
