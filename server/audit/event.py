"""One audited request as kube's `audit.k8s.io/v1 Event`: what it records at each stage, and its JSON.

Serving an audited request only notes what happens (`Auditor.note`, with
references to the request's ASGI scope and answer); the filters leave in the
scope what the event needs: the audit ID and received time (`with_audit_init`),
the request info and user, the authorizer's decision (kube's
`authorization.k8s.io/decision` and `/reason` annotations), the body the handler
read (levels Request and up). `encode()` works the events out from that, a
batch at a time, off the request's path: an `AuditRecord` per request, whose
parts (URI, addresses, user agent, objectRef, the responseStatus a Status answer
gives, decoded bodies) are worked out once for all its stages, and the parts
that repeat across requests (who asked what) come from caches.

A line has kube's field names, order and omissions. RequestReceived shows what
was known when the request came in (the authenticated user, the objectRef of
the URL, no annotations); `requestObject` appears from level Request and
`responseObject` at RequestResponse only, so a Metadata-level event never holds
an object's data.

Timestamps are kube's MicroTime (RFC 3339, UTC, microseconds); audit IDs are
random UUIDs unless the client sent an `Audit-ID` header (kube keeps it).
"""
from __future__ import annotations

import ipaddress
import os
import time
from typing import Any, Callable, Iterable, Mapping

import orjson

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.audit.policy import (
    LEVELS,
    METADATA,
    NONE,
    RANK,
    REQUEST,
    REQUEST_RECEIVED,
    REQUEST_RESPONSE,
    STAGES,
    RequestAuditConfig,
)

AUDIT_KEY = "kapi.audit"  # the request's RequestAuditConfig in the ASGI scope, when it is audited
DECISION_KEY = "kapi.audit_decision"  # the authorizer's Decision (allowed, reason), for the annotations
BODY_KEY = "kapi.audit_body"  # the request body's chunks as the handler read them (levels Request and up)
AUDIT_ID_KEY = "kapi.audit_id"  # its audit ID (every request has one, audited or not)
RECEIVED_KEY = "kapi.received_ns"  # when the request came in (time.time_ns())
INFO_KEY, USER_KEY = "kapi.request_info", "kapi.user"  # what the HTTP layer's filters put in the scope
HEADER = b"audit-id"  # the request header a client may set
RESPONSE_HEADER = b"Audit-Id"  # as Go's canonical header name spells it
DECISION_ANNOTATION = "authorization.k8s.io/decision"
REASON_ANNOTATION = "authorization.k8s.io/reason"
MAX_USER_AGENT = 1024
LONG_RUNNING_VERBS = frozenset({"watch", "proxy"})
LONG_RUNNING_SUBRESOURCES = frozenset({"attach", "exec", "proxy", "log", "portforward"})
OBJECT_VERBS = frozenset({"create", "update"})  # whose body completes the objectRef (kube's LogRequestObject)
_STATUS_FIELDS = ("status", "message", "reason", "details", "code")
_OBJECT_REF_ORDER = ("resource", "namespace", "name", "uid", "apiGroup", "apiVersion", "resourceVersion",
                     "subresource")
_REQUEST_RANK, _REQUEST_RESPONSE_RANK = RANK[REQUEST], RANK[REQUEST_RESPONSE]
EVENT_PREFIX = b'{"kind":"Event","apiVersion":"audit.k8s.io/v1",'
_LEVEL_PREFIX = {level: EVENT_PREFIX + b'"level":"' + level.encode() + b'","auditID":' for level in LEVELS}
_STAGE_BYTES = {stage: b',"stage":"' + stage.encode() + b'",' for stage in STAGES}
_RECEIVED_LINE = b'%s,"stage":"RequestReceived",%s,"requestReceivedTimestamp":"%s","stageTimestamp":"%s"}\n'
_LATER_LINE = b'%s%s%s","stageTimestamp":"%s"%s'
_CODE_STATUS = {code: b'"responseStatus":{"metadata":{},"code":%d},"requestReceivedTimestamp":"' % code
                for code in (200, 201, 202, 204, 304)}
_ALLOW_NO_REASON = b',"annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":""}}\n'
_FORBID_NO_REASON = b',"annotations":{"authorization.k8s.io/decision":"forbid","authorization.k8s.io/reason":""}}\n'
_second: list[Any] = [-1, b""]

#: Decodes a body by its content type; None when it is no object (text, a broken body).
Decoder = Callable[[str | None, bytes], Any]
#: How a request was answered: (code, body bytes or None, raw headers, a Status the filter decided or None);
#: a plain Starlette response may stand for the first three.
Answer = tuple[int, Any, Any, Mapping[str, Any] | None]


def new_audit_id() -> str:
    """A random (version 4) UUID, about five times cheaper than `str(uuid.uuid4())`."""
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def micro_time(ns: int) -> str:
    """kube's MicroTime in JSON: `2006-01-02T15:04:05.000000Z` (UTC, truncated to microseconds)."""
    return _micro_time(ns).decode()


def _micro_time(ns: int) -> bytes:
    seconds, rest = divmod(ns, 1_000_000_000)
    if seconds != _second[0]:
        _second[0], _second[1] = seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)).encode()
    return b"%s%06dZ" % (_second[1], rest // 1000)


def header(scope: Mapping[str, Any], name: bytes) -> bytes | None:
    """The first value of the (lower-case) header `name` in an ASGI scope."""
    return _first(scope.get("headers", ()), name)


def _first(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    for key, value in headers:
        if key == name:
            return value
    return None


def request_uri(scope: Mapping[str, Any]) -> str:
    """Go's `URL.RequestURI()`: the path as sent (a logical cluster's `/clusters/<name>` prefix too) and query."""
    return _uri(scope.get("root_path", ""), scope.get("raw_path"), scope.get("path", "/"), scope.get("query_string"))


def _uri(root: str, raw: bytes | None, path: str, query: bytes | None) -> str:
    uri = root + (raw.decode("latin-1") if raw else path)
    return f"{uri}?{query.decode('latin-1')}" if query else uri


def _ip(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text.strip().strip("[]")))
    except ValueError:
        return None


def source_ips(scope: Mapping[str, Any]) -> list[str]:
    """kube's `utilnet.SourceIPs`: X-Forwarded-For's addresses, X-Real-Ip if new, then the peer address
    unless it is the last one already."""
    return _source_ips(scope.get("headers", ()), scope.get("client"))


def _source_ips(headers: Iterable[tuple[bytes, bytes]], client: Any) -> list[str]:
    forwarded, real = _first(headers, b"x-forwarded-for"), _first(headers, b"x-real-ip")
    if forwarded is None and real is None:
        return [client[0]] if client else []
    ips = [ip for ip in (_ip(part) for part in forwarded.decode("latin-1").split(",")) if ip] if forwarded else []
    if real:
        ip = _ip(real.decode("latin-1"))
        if ip and ip not in ips:
            ips.append(ip)
    remote = _ip(client[0]) if client else None
    if remote and (not ips or ips[-1] != remote):
        ips.append(remote)
    return ips


def user_agent(scope: Mapping[str, Any]) -> str:
    """The User-Agent, cut at kube's 1024 characters."""
    return _agent(header(scope, b"user-agent"))


def _agent(raw: bytes | None) -> str:
    if not raw:
        return ""
    agent = raw.decode("latin-1")
    return agent[:MAX_USER_AGENT] + "...TRUNCATED" if len(agent) > MAX_USER_AGENT else agent


def object_ref(info: RequestInfo) -> dict[str, str] | None:
    """kube's ObjectReference of a resource request (omitempty fields, kube's order); None otherwise."""
    if not info.is_resource_request:
        return None
    ref: dict[str, str] = {}
    for key, value in (("resource", info.resource), ("namespace", info.namespace), ("name", info.name),
                       ("apiGroup", info.group), ("apiVersion", info.version), ("subresource", info.subresource)):
        if value:
            ref[key] = value
    return ref


def completed_ref(ref: dict[str, str], obj: Any) -> dict[str, str]:
    """kube's LogRequestObject: a created or updated object's namespace, name, uid and resourceVersion fill what
    the URL left empty."""
    metadata = obj.get("metadata") if isinstance(obj, dict) else None
    if not isinstance(metadata, dict):
        return ref
    out = dict(ref)
    for key in ("namespace", "name", "uid", "resourceVersion"):
        value = metadata.get(key)
        if isinstance(value, str) and value and not out.get(key):
            out[key] = value
    return {k: out[k] for k in _OBJECT_REF_ORDER if k in out}


def is_long_running(info: RequestInfo) -> bool:
    """kube-apiserver's long-running check: watches and proxies, and attach/exec/log/portforward/proxy."""
    return info.verb in LONG_RUNNING_VERBS or info.subresource in LONG_RUNNING_SUBRESOURCES


def without_managed_fields(obj: Any) -> Any:
    """`obj` (or each item of a list) without `metadata.managedFields` (kube's omitManagedFields); copies only
    what it changes."""
    if not isinstance(obj, dict):
        return obj
    items = obj.get("items")
    if isinstance(items, list):
        return {**obj, "items": [without_managed_fields(item) for item in items]}
    metadata = obj.get("metadata")
    if isinstance(metadata, dict) and "managedFields" in metadata:
        return {**obj, "metadata": {k: v for k, v in metadata.items() if k != "managedFields"}}
    return obj


def status_fields(status: Mapping[str, Any]) -> dict[str, Any]:
    """The bounded fields kube's LogResponseObject copies from a Status answer."""
    out: dict[str, Any] = {"metadata": {}}
    for key in _STATUS_FIELDS:
        value = status.get(key)
        if value or (key == "details" and value is not None):  # omitempty, but a present details stays ({})
            out[key] = value
    return out


_CACHE_LIMIT = 4096
_commons: dict[tuple[Any, ...], tuple[UserInfo | None, bytes]] = {}


def _common_bytes(user: UserInfo | None, scope: Mapping[str, Any]) -> bytes:
    """`"requestURI":…,"verb":…,"user":…,"sourceIPs":…,"userAgent":…,"objectRef":…` as RequestReceived sees
    them, cached: the same user (by identity) from the same address and agent asking the same thing gets the
    same bytes."""
    agent = forwarded = real = None
    for key, value in scope.get("headers", ()):
        if key == b"user-agent":
            if agent is None:
                agent = value
        elif key == b"x-forwarded-for":
            if forwarded is None:
                forwarded = value
        elif key == b"x-real-ip" and real is None:
            real = value
    client = scope.get("client")
    info = scope[INFO_KEY]
    root, raw, path, query = scope.get("root_path", ""), scope.get("raw_path"), scope["path"], scope.get("query_string")
    cache_key = (id(user), client[0] if client else None, agent, forwarded, real, root, raw or path, query, info.verb)
    found = _commons.get(cache_key)
    if found is not None and found[0] is user:
        return found[1]
    uri = root + (raw.decode("latin-1") if raw else path)
    if query:
        uri = f"{uri}?{query.decode('latin-1')}"
    fields: dict[str, Any] = {"requestURI": uri, "verb": info.verb, "user": user.to_dict() if user is not None else {}}
    forwarding = [(name, value) for name, value in ((b"x-forwarded-for", forwarded), (b"x-real-ip", real)) if value]
    ips = _source_ips(forwarding, client)
    if ips:
        fields["sourceIPs"] = ips
    text = _agent(agent)
    if text:
        fields["userAgent"] = text
    ref = object_ref(info)
    if ref is not None:
        fields["objectRef"] = ref
    encoded = orjson.dumps(fields)[1:-1]
    if len(_commons) >= _CACHE_LIMIT:
        _commons.clear()
    _commons[cache_key] = (user, encoded)
    return encoded


def _status_like(body: Any) -> bool:
    """Whether a response body may be a Status (its kind in the first 40 bytes), looked at without a copy."""
    if not body:
        return False
    if type(body) is bytes:
        return body.find(b'"kind":"Status"', 0, 40) >= 0
    return b'"kind":"Status"' in bytes(body[:40])


def _annotations(decision: Any) -> bytes:
    """The end of a later stage's line: kube's authorization annotations from the authorizer's Decision (its
    `allowed` and `reason`), when one was made."""
    if decision is None:
        return b"}\n"
    if not decision.reason:
        return _ALLOW_NO_REASON if decision.allowed else _FORBID_NO_REASON
    return b',"annotations":' + orjson.dumps({DECISION_ANNOTATION: "allow" if decision.allowed else "forbid",
                                              REASON_ANNOTATION: decision.reason}) + b"}\n"


def json_decoder(content_type: str | None, body: bytes) -> Any:
    """The decoder records use unless given one: JSON bodies only."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


class AuditRecord:
    """The event of one audited request, worked out from the request's ASGI scope (see the module docstring).

    Made when the auditor encodes a batch (never while the request is served, and never kept by the scope,
    so no reference cycle): the scope holds the audit ID, the received time, the request info, the user the
    request ended up as, the authorizer's decision and the body read; `user` is who authenticated;
    `answer()` gives how it was answered."""

    code = 0
    response_body: bytes | memoryview | None = None
    response_headers: Any = ()
    status: Mapping[str, Any] | None = None
    _head: bytes = b""
    _common_part: bytes = b""
    _received_ts: bytes = b""
    _later_part: bytes = b""

    def __init__(self, config: RequestAuditConfig, scope: Mapping[str, Any], user: UserInfo | None,
                 decoder: Decoder = json_decoder) -> None:
        self.config, self.scope, self.user = config, scope, user
        if decoder is not json_decoder:
            self.decoder = decoder

    decoder: Decoder = staticmethod(json_decoder)  # type: ignore[assignment]

    def answer(self, answer: Any) -> None:
        """How the request was answered: an `Answer`, or the (Starlette) response itself, which has the same
        three (the first answer given stays: ResponseStarted and ResponseComplete show the same one)."""
        if not self.code:
            if type(answer) is tuple:
                self.code, self.response_body, self.response_headers, status = answer
                if status is not None:
                    self.status = status
            else:
                self.code, self.response_body, self.response_headers = (
                    answer.status_code, answer.body, answer.raw_headers)

    # -- the parts of the event ----------------------------------------------------------------------------------
    def _common(self, impersonated: UserInfo | None, ref: dict[str, str] | None) -> bytes:
        """requestURI … objectRef, encoded (without the braces): the general way."""
        scope = self.scope
        headers = scope.get("headers", ())
        ev: dict[str, Any] = {"requestURI": request_uri(scope), "verb": scope[INFO_KEY].verb,
                              "user": self.user.to_dict() if self.user is not None else {}}
        if impersonated is not None:
            ev["impersonatedUser"] = impersonated.to_dict()
        ips = _source_ips(headers, scope.get("client"))
        if ips:
            ev["sourceIPs"] = ips
        agent = _agent(_first(headers, b"user-agent"))
        if agent:
            ev["userAgent"] = agent
        if ref is not None:
            ev["objectRef"] = ref
        return orjson.dumps(ev)[1:-1]

    def _make_common(self) -> bytes:
        """requestURI … objectRef as RequestReceived saw them (and the received time), worked out once."""
        scope = self.scope
        common = self._common_part = _common_bytes(self.user, scope)
        self._received_ts = _micro_time(scope[RECEIVED_KEY])
        return common

    def _decoded(self, content_type: str | None, body: bytes) -> Any:
        if not body.strip():
            return None
        try:
            return self.decoder(content_type, body)
        except Exception:  # noqa: BLE001 - a body that does not decode is simply not recorded
            return None

    def request_object(self) -> Any:
        """The request body as data (kube's requestObject), when one was read and it decodes."""
        chunks = self.scope.get(BODY_KEY)
        if not chunks:
            return None
        content_type = header(self.scope, b"content-type")
        return self._decoded(content_type.decode("latin-1") if content_type else None, b"".join(chunks))

    def response_status(self) -> dict[str, Any]:
        """kube's responseStatus: a Status answer's bounded fields, else just the code."""
        status = self.status
        if status is None:
            body = self.response_body
            if body is not None and _status_like(body):
                answer = self._decoded("application/json", bytes(body))
                if isinstance(answer, dict) and answer.get("kind") == "Status":
                    status = answer
        if status is None:
            return {"metadata": {}, "code": self.code}
        out = status_fields(status)
        out["code"] = self.code
        return out

    def response_object(self) -> Any:
        body = bytes(self.response_body) if self.response_body else None
        if not body:
            return None
        content_type = _first(self.response_headers, b"content-type")
        kind = content_type.decode("latin-1").split(";")[0].strip().lower() if content_type else ""
        if kind not in ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf"):
            return None
        return self._decoded(kind, body)

    def _make_later(self) -> bytes:
        """Every later stage's fields from requestURI to requestReceivedTimestamp's value, worked out once
        (nothing changes between ResponseStarted and ResponseComplete)."""
        scope = self.scope
        common = self._common_part or self._make_common()
        level = self.config.level
        if (level == METADATA and self.status is None and BODY_KEY not in scope
                and scope.get(USER_KEY) in (self.user, None) and not _status_like(self.response_body)):
            # the common case (Metadata, no body read, not impersonating, not a Status): no encoder needed
            later = self._later_part = b"%s,%s%s" % (common, _CODE_STATUS.get(self.code) or (
                b'"responseStatus":{"metadata":{},"code":%d},"requestReceivedTimestamp":"' % self.code),
                self._received_ts)
            return later
        request_object = self.request_object() if BODY_KEY in scope else None
        info = scope[INFO_KEY]
        now_user = scope.get(USER_KEY)
        impersonated = now_user if now_user is not self.user and now_user is not None else None
        completes = request_object is not None and info.verb in OBJECT_VERBS
        if impersonated is not None or completes:
            ref = object_ref(info)
            common = self._common(impersonated, completed_ref(ref, request_object) if ref and completes else ref)
        rank, omit = RANK[level], self.config.omit_managed_fields
        ev: dict[str, Any] = {"responseStatus": self.response_status()}
        if request_object is not None and rank >= _REQUEST_RANK:
            ev["requestObject"] = without_managed_fields(request_object) if omit else request_object
        response_object = self.response_object() if rank >= _REQUEST_RESPONSE_RANK else None
        if response_object is not None:
            ev["responseObject"] = without_managed_fields(response_object) if omit else response_object
        later = self._later_part = b"%s,%s,\"requestReceivedTimestamp\":\"%s" % (
            common, orjson.dumps(ev)[1:-1], self._received_ts)
        return later

    def line(self, stage: str, stage_ns: int | None = None) -> bytes:
        """The event at `stage` (stamped `stage_ns`, default now) as the log writes it: JSON with kind and
        apiVersion first, one line."""
        head = self._head
        if not head:
            head = self._head = _LEVEL_PREFIX[self.config.level] + orjson.dumps(self.scope[AUDIT_ID_KEY])
        if stage == REQUEST_RECEIVED:
            common = self._common_part or self._make_common()
            received = self._received_ts
            return _RECEIVED_LINE % (head, common, received, received)
        annotations = _annotations(self.scope.get(DECISION_KEY))
        return _LATER_LINE % (head, _STAGE_BYTES[stage], self._later_part or self._make_later(),
                              _micro_time(time.time_ns() if stage_ns is None else stage_ns), annotations)

    def event(self, stage: str, stage_ns: int | None = None) -> dict[str, Any]:
        """The event at `stage` as data, without kind and apiVersion (as an EventList item)."""
        event = orjson.loads(self.line(stage, stage_ns))
        del event["kind"], event["apiVersion"]
        return event  # type: ignore[no-any-return]


#: What `Auditor.note` keeps: (stage, config, scope, user as authenticated, an `Answer` (or the response) or
#: None, stage time or 0).
Note = tuple[str, RequestAuditConfig, Any, "UserInfo | None", Any, int]


_PARTS_KEY = "kapi.audit_parts"  # (head, common part, received time) of a request's events, once worked out
_LATER_KEY = "kapi.audit_later"  # the later stages' shared part, once worked out (the first answer stays)


def _parts(config: RequestAuditConfig, scope: Any, user: UserInfo | None) -> tuple[bytes, bytes, bytes]:
    """What every stage's line of the request starts with, kept in the scope (bytes only: no reference cycle),
    so stages encoded in different batches work it out once."""
    parts = scope[_PARTS_KEY] = (_LEVEL_PREFIX[config.level] + orjson.dumps(scope[AUDIT_ID_KEY]),
                                 _common_bytes(user, scope), _micro_time(scope[RECEIVED_KEY]))
    return parts


def _later(config: RequestAuditConfig, scope: Any, user: UserInfo | None, answer: Any,
           parts: tuple[bytes, bytes, bytes], decoder: Decoder) -> bytes:
    """The later stages' part, worked out once by an AuditRecord from the request's shared parts."""
    record = AuditRecord(config, scope, user, decoder)
    record._head, record._common_part, record._received_ts = parts
    if answer is not None:
        record.answer(answer)
    later = scope[_LATER_KEY] = record._make_later()
    return later


def encode(notes: Iterable[Note], decoder: Decoder = json_decoder,
           failed: Callable[[Exception], None] | None = None) -> list[bytes]:
    """The log lines of `notes`, in order; stages the policy omits give none.

    `AuditRecord.line` inlined for the batch, the parts a request's stages share kept in its scope. An event
    that cannot be encoded is reported to `failed` and skipped."""
    lines: list[bytes] = []
    append = lines.append
    for stage, config, scope, user, answer, stamp in notes:
        if stage in config.omit_stages:
            continue
        try:
            parts = scope.get(_PARTS_KEY) or _parts(config, scope, user)
            if stage == REQUEST_RECEIVED:
                received = parts[2]
                append(_RECEIVED_LINE % (parts[0], parts[1], received, received))
                continue
            later = scope.get(_LATER_KEY) or _later(config, scope, user, answer, parts, decoder)
            append(_LATER_LINE % (parts[0], _STAGE_BYTES[stage], later, _micro_time(stamp or time.time_ns()),
                                  _annotations(scope.get(DECISION_KEY))))
        except Exception as exc:  # noqa: BLE001 - one event that cannot be encoded never stops the others
            if failed is not None:
                failed(exc)
    return lines


def item_of(line: bytes) -> bytes:
    """A log line (`AuditRecord.line`) as an EventList item: without kind, apiVersion and the newline."""
    return b"{" + line[len(EVENT_PREFIX):-1]


def event_list(items: Iterable[bytes]) -> bytes:
    """Encoded events as the webhook backend sends them: one `audit.k8s.io/v1` EventList."""
    return b'{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[' + b",".join(items) + b"]}"


__all__ = ["AUDIT_ID_KEY", "AUDIT_KEY", "Answer", "AuditRecord", "BODY_KEY", "DECISION_KEY", "NONE", "Note",
           "RECEIVED_KEY", "encode", "event_list", "is_long_running", "item_of", "micro_time", "new_audit_id",
           "object_ref", "source_ips", "without_managed_fields"]
