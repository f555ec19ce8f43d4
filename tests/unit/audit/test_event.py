"""Audit events as kube writes them: fields, order, omissions, levels, timestamps, IDs and the JSON framing."""
from __future__ import annotations

import re
import time
import uuid
from typing import Any

import orjson
import pytest

from kapi.api.requestinfo import parse_request_info
from kapi.api.user import UserInfo
from kapi.audit.event import (
    AUDIT_ID_KEY,
    BODY_KEY,
    DECISION_KEY,
    INFO_KEY,
    RECEIVED_KEY,
    USER_KEY,
    AuditRecord,
    encode,
    event_list,
    is_long_running,
    item_of,
    micro_time,
    new_audit_id,
    request_uri,
    source_ips,
    without_managed_fields,
)
from kapi.audit.policy import RequestAuditConfig
from kapi.auth.interfaces import Decision

ALICE = UserInfo("alice", uid="u-1", groups=("devs", "system:authenticated"), extra={"scopes": ("a", "b")})
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
POD = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "managedFields": [{"manager": "m"}]},
       "spec": {"containers": []}}
JSON_HEADERS = [(b"content-type", b"application/json")]
SECRET = b'{"metadata":{"name":"s"},"data":{"password":"c2VjcmV0"}}'


def scope(path: str = "/api/v1/namespaces/default/pods", query: bytes = b"", headers: Any = (),
          client: Any = ("10.1.2.3", 5000), root_path: str = "", method: str = "POST",
          user: UserInfo | None = ALICE) -> dict[str, Any]:
    """A request's ASGI scope as the filters leave it for the auditor."""
    out: dict[str, Any] = {
        "type": "http", "path": path, "raw_path": path.encode(), "query_string": query, "root_path": root_path,
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers], "client": client,
        AUDIT_ID_KEY: "id-1", RECEIVED_KEY: time.time_ns(), INFO_KEY: parse_request_info(method, path)}
    if user is not None:
        out[USER_KEY] = user
    return out


def record(level: str = "Metadata", method: str = "POST", path: str = "/api/v1/namespaces/default/pods",
           managed: bool = False, **kw: Any) -> AuditRecord:
    return AuditRecord(RequestAuditConfig(level, frozenset(), managed), scope(path, method=method, **kw), ALICE)


def answered(rec: AuditRecord, code: int, body: bytes | None = None, headers: Any = (),
             status: Any = None) -> AuditRecord:
    rec.answer((code, body, headers, status))
    return rec


def test_request_received_event_has_kube_fields_in_kube_order() -> None:
    rec = record(headers=[("User-Agent", "kubectl/v1.32.4")], query=b"fieldManager=kubectl")
    ev = rec.event("RequestReceived")
    assert list(ev) == ["level", "auditID", "stage", "requestURI", "verb", "user", "sourceIPs", "userAgent",
                        "objectRef", "requestReceivedTimestamp", "stageTimestamp"]
    assert ev["requestURI"] == "/api/v1/namespaces/default/pods?fieldManager=kubectl"
    assert ev["verb"] == "create"
    assert ev["user"] == {"username": "alice", "uid": "u-1", "groups": ["devs", "system:authenticated"],
                          "extra": {"scopes": ["a", "b"]}}
    assert ev["objectRef"] == {"resource": "pods", "namespace": "default", "apiVersion": "v1"}
    assert ev["stageTimestamp"] == ev["requestReceivedTimestamp"]  # kube: RequestReceived's stage time
    assert MICRO_TIME.match(ev["requestReceivedTimestamp"])


def test_later_stages_carry_status_annotations_and_impersonation() -> None:
    rec = record()
    rec.scope[DECISION_KEY] = Decision(True, 'RBAC: allowed by ClusterRoleBinding "x"')
    rec.scope[USER_KEY] = UserInfo("bob", groups=("system:authenticated",))  # impersonation
    answered(rec, 201)
    ev = rec.event("ResponseComplete")
    assert list(ev) == ["level", "auditID", "stage", "requestURI", "verb", "user", "impersonatedUser", "sourceIPs",
                        "objectRef", "responseStatus", "requestReceivedTimestamp", "stageTimestamp", "annotations"]
    assert ev["impersonatedUser"] == {"username": "bob", "groups": ["system:authenticated"]}
    assert ev["responseStatus"] == {"metadata": {}, "code": 201}
    assert ev["annotations"] == {"authorization.k8s.io/decision": "allow",
                                 "authorization.k8s.io/reason": 'RBAC: allowed by ClusterRoleBinding "x"'}
    assert ev["stageTimestamp"] >= ev["requestReceivedTimestamp"]
    received = rec.event("RequestReceived")  # encoded late, it still shows what was known when it came in
    assert "impersonatedUser" not in received and "annotations" not in received and "responseStatus" not in received


def test_status_answers_keep_kube_bounded_fields() -> None:
    rec = record(method="GET", path="/api/v1/namespaces/default/pods/nope")
    answered(rec, 404, orjson.dumps({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                     "message": 'pods "nope" not found', "reason": "NotFound", "code": 404,
                                     "details": {"name": "nope", "kind": "pods"}}), JSON_HEADERS)
    assert rec.event("ResponseComplete")["responseStatus"] == {
        "metadata": {}, "status": "Failure", "message": 'pods "nope" not found', "reason": "NotFound",
        "details": {"name": "nope", "kind": "pods"}, "code": 404}
    decided = answered(record(), 401, status={"message": "Authentication failed, attempted: bearer"})
    assert decided.event("ResponseStarted")["responseStatus"] == {
        "metadata": {}, "message": "Authentication failed, attempted: bearer", "code": 401}


@pytest.mark.parametrize("level, request_object, response_object", [
    ("Metadata", False, False), ("Request", True, False), ("RequestResponse", True, True)])
def test_levels_decide_which_bodies_are_kept(level: str, request_object: bool, response_object: bool) -> None:
    rec = record(level, path="/api/v1/namespaces/default/secrets")
    rec.scope[BODY_KEY] = [SECRET[:20], SECRET[20:]]
    answered(rec, 201, SECRET, JSON_HEADERS)
    ev = rec.event("ResponseComplete")
    assert ("requestObject" in ev) is request_object
    assert ("responseObject" in ev) is response_object
    if request_object:
        assert ev["requestObject"] == orjson.loads(SECRET)
    if level == "Metadata":
        assert b"c2VjcmV0" not in rec.line("ResponseComplete")


def test_only_objects_are_response_objects() -> None:
    rec = record("RequestResponse", method="GET", path="/api/v1/namespaces/default/pods/p/log")
    answered(rec, 200, b'{"not": "a pod log"}', [(b"content-type", b"text/plain")])
    assert "responseObject" not in rec.event("ResponseComplete")
    broken = record("RequestResponse")
    broken.scope[BODY_KEY] = [b"{not json"]
    answered(broken, 400, b"{also not json", JSON_HEADERS)
    ev = broken.event("ResponseComplete")
    assert "requestObject" not in ev and "responseObject" not in ev


def test_create_completes_the_object_ref_from_the_body_at_every_level() -> None:
    rec = record("Metadata")
    rec.scope[BODY_KEY] = [b'{"metadata":{"name":"p","namespace":"default","uid":"u","resourceVersion":"7"}}']
    answered(rec, 201)
    assert rec.event("ResponseComplete")["objectRef"] == {
        "resource": "pods", "namespace": "default", "name": "p", "uid": "u", "apiVersion": "v1",
        "resourceVersion": "7"}
    assert "name" not in rec.event("RequestReceived")["objectRef"]  # kube learns it after RequestReceived
    named = answered(record("Metadata", method="PUT", path="/api/v1/namespaces/default/pods/from-url"), 200)
    named.scope[BODY_KEY] = [b'{"metadata":{"name":"from-body"}}']
    assert named.event("ResponseComplete")["objectRef"]["name"] == "from-url"  # the URL's name stays
    patched = answered(record("Metadata", method="PATCH", path="/api/v1/namespaces/default/pods/p"), 200)
    patched.scope[BODY_KEY] = [b'{"metadata":{"uid":"x"}}']
    assert "uid" not in patched.event("ResponseComplete")["objectRef"]  # a patch is not an object


def test_omit_managed_fields() -> None:
    rec = record("RequestResponse", managed=True)
    rec.scope[BODY_KEY] = [orjson.dumps({"kind": "PodList", "items": [POD, POD]})]
    answered(rec, 201, orjson.dumps(POD), JSON_HEADERS)
    ev = rec.event("ResponseComplete")
    assert "managedFields" not in ev["responseObject"]["metadata"]
    assert all("managedFields" not in item["metadata"] for item in ev["requestObject"]["items"])
    kept = answered(record("RequestResponse"), 201, orjson.dumps(POD), JSON_HEADERS)
    assert kept.event("ResponseComplete")["responseObject"]["metadata"]["managedFields"]
    assert without_managed_fields([1]) == [1]
    assert POD["metadata"]["managedFields"] == [{"manager": "m"}]  # never changed in place


def test_non_resource_requests_have_no_object_ref() -> None:
    rec = record(method="GET", path="/healthz")
    assert "objectRef" not in rec.event("RequestReceived")
    assert rec.event("RequestReceived")["verb"] == "get"


def test_failed_authentication_has_an_empty_user() -> None:
    rec = AuditRecord(RequestAuditConfig("Metadata"), scope("/api/v1/pods", method="GET", user=None), None)
    answered(rec, 401, status={"message": "Authentication failed, no credentials provided"})
    assert rec.event("ResponseStarted")["user"] == {}


def test_source_ips_as_kube() -> None:
    assert source_ips(scope()) == ["10.1.2.3"]
    assert source_ips(scope(headers=[("X-Forwarded-For", "1.1.1.1, bogus, 2.2.2.2")])) == [
        "1.1.1.1", "2.2.2.2", "10.1.2.3"]
    assert source_ips(scope(headers=[("X-Real-Ip", "3.3.3.3")])) == ["3.3.3.3", "10.1.2.3"]
    assert source_ips(scope(headers=[("X-Forwarded-For", "10.1.2.3")])) == ["10.1.2.3"]  # not repeated
    assert source_ips(scope(headers=[("X-Forwarded-For", "1.1.1.1"), ("X-Real-Ip", "1.1.1.1")])) == [
        "1.1.1.1", "10.1.2.3"]
    assert source_ips(scope(client=None)) == []


def test_request_uri_of_a_logical_cluster_and_long_user_agents() -> None:
    assert request_uri(scope("/api/v1/pods", query=b"watch=1", root_path="/clusters/dev")) == \
        "/clusters/dev/api/v1/pods?watch=1"
    long_agent = record(headers=[("User-Agent", "x" * 2000)]).event("RequestReceived")["userAgent"]
    assert long_agent == "x" * 1024 + "...TRUNCATED"
    both = record(headers=[("X-Forwarded-For", "1.1.1.1"), ("User-Agent", "a")]).event("RequestReceived")
    assert (both["userAgent"], both["sourceIPs"]) == ("a", ["1.1.1.1", "10.1.2.3"])


def test_micro_time_is_utc_and_truncated_to_microseconds() -> None:
    assert micro_time(1_700_000_000_123_456_789) == "2023-11-14T22:13:20.123456Z"
    assert micro_time(1_700_000_001_000_000_999) == "2023-11-14T22:13:21.000000Z"
    assert micro_time(1_700_000_000_999_999_999) == "2023-11-14T22:13:20.999999Z"


def test_audit_ids_are_random_uuid4() -> None:
    ids = {new_audit_id() for _ in range(1000)}
    assert len(ids) == 1000
    for text in list(ids)[:50]:
        parsed = uuid.UUID(text)
        assert str(parsed) == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_long_running_requests() -> None:
    assert is_long_running(parse_request_info("GET", "/api/v1/pods", watch_param=True))
    assert is_long_running(parse_request_info("GET", "/api/v1/namespaces/a/pods/p/log"))
    assert is_long_running(parse_request_info("POST", "/api/v1/namespaces/a/pods/p/exec"))
    assert not is_long_running(parse_request_info("GET", "/api/v1/pods"))


def test_log_lines_and_event_lists() -> None:
    rec = record("Request", headers=[("User-Agent", 'quote" \\ agent')])
    rec.scope[DECISION_KEY] = Decision(False, "RBAC: no")
    rec.scope[BODY_KEY] = [b'{"metadata":{"name":"p"}}']
    answered(rec, 403)
    for stage in ("RequestReceived", "ResponseComplete"):
        line = rec.line(stage, 1_700_000_000_000_000_000)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        parsed = orjson.loads(line)
        assert list(parsed)[:2] == ["kind", "apiVersion"]
        assert (parsed["kind"], parsed["apiVersion"], parsed["userAgent"]) == (
            "Event", "audit.k8s.io/v1", 'quote" \\ agent')
        assert {k: v for k, v in parsed.items() if k not in ("kind", "apiVersion")} == rec.event(
            stage, 1_700_000_000_000_000_000)
    item = item_of(rec.line("ResponseComplete"))
    assert "kind" not in orjson.loads(item) and orjson.loads(item)["auditID"] == "id-1"
    events = orjson.loads(event_list([item, item]))
    assert (events["kind"], events["apiVersion"], events["metadata"]) == ("EventList", "audit.k8s.io/v1", {})
    assert len(events["items"]) == 2 and "kind" not in events["items"][0]


def test_a_client_audit_id_is_escaped() -> None:
    request = scope("/api/v1/pods", method="GET")
    request[AUDIT_ID_KEY] = 'x","level":"None'
    rec = AuditRecord(RequestAuditConfig("Metadata"), request, ALICE)
    parsed = orjson.loads(rec.line("RequestReceived"))
    assert parsed["auditID"] == 'x","level":"None' and parsed["level"] == "Metadata"


class _Response:
    """What encode's common case gets: a plain response with its code and bytes."""

    def __init__(self, status_code: int, body: bytes) -> None:
        self.status_code, self.body, self.raw_headers = status_code, body, JSON_HEADERS


@pytest.mark.parametrize("level, answer", [
    ("Metadata", _Response(200, b'{"kind":"Pod"}')),  # the inline common case
    ("Metadata", _Response(404, b'{"kind":"Status","message":"gone","code":404}')),
    ("RequestResponse", (201, b'{"kind":"Pod","metadata":{"name":"p"}}', JSON_HEADERS, None)),
])
def test_a_batch_encodes_as_the_record_does_and_stages_may_span_batches(level: str, answer: Any) -> None:
    config, stamp = RequestAuditConfig(level), 1_700_000_000_000_000_000
    request = scope("/api/v1/namespaces/default/pods/p", method="GET")
    request[DECISION_KEY] = Decision(True, "")
    expected = AuditRecord(config, dict(request), ALICE)
    expected.answer(answer)
    wanted = [expected.line("RequestReceived"), expected.line("ResponseComplete", stamp)]

    def notes(req: dict[str, Any]) -> list[Any]:
        return [("RequestReceived", config, req, ALICE, None, 0),
                ("ResponseComplete", config, req, ALICE, answer, stamp)]

    def fail(exc: Exception) -> None:
        raise exc

    received, complete = notes(dict(request))
    assert encode([received], failed=fail) + encode([complete], failed=fail) == wanted  # two batches
    assert encode(notes(dict(request)), failed=fail) == wanted  # one
    # a later stage keeps the first answer it was encoded with
    assert encode([(*complete[:4], _Response(500, b"{}"), stamp)], failed=fail) == wanted[1:]
