"""kube-apiserver's audit filters: `WithAuditInit`, `WithAudit` and `WithFailedAuthenticationAudit`.

`with_audit_init` (outermost) gives every request its audit ID, the client's
`Audit-ID` header or a new UUID, echoed in the `Audit-Id` response header as
kube does whether or not auditing is on; it also audits the 401s authentication
answers (kube's WithFailedAuthenticationAudit). `with_audit` sits right after
authentication, where the user is known, as kube places it: it asks the policy
for the request's level and, unless None, emits

    RequestReceived   before the request goes on (impersonation, authorization, the handler)
    ResponseStarted   for long-running requests (watch, proxy, exec, attach, log, portforward) once the
                      status is known, before the stream
    ResponseComplete  when the response is done (a watch: when its stream ends)
    Panic             for an unexpected error (then the client gets the 500 Status)

Serving the request only notes each stage (`Auditor.note`: a tuple appended to
a list); the events are worked out after the event loop's turn, in batches
(`kapi.audit.auditor`, `kapi.audit.event`). At level Request and above the
request body is kept as the handler reads it (the ASGI receive is wrapped:
nothing is read twice, streaming is kept); at RequestResponse the body of a
non-streaming response is recorded too. Bodies are decoded as the request's or
response's content type says, with managedFields dropped when the policy says
so. A request that fails authentication is audited as kube does, with no user,
one ResponseStarted event (401) whose message names the credentials tried.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, AsyncIterable, AsyncIterator

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.audit.auditor import Auditor
from kapi.audit.event import (
    AUDIT_ID_KEY,
    AUDIT_KEY,
    BODY_KEY,
    HEADER,
    LONG_RUNNING_SUBRESOURCES,
    LONG_RUNNING_VERBS,
    OBJECT_VERBS,
    RECEIVED_KEY,
    RESPONSE_HEADER,
    Answer,
    header,
    new_audit_id,
)
from kapi.audit.policy import (
    NONE,
    PANIC,
    REQUEST,
    REQUEST_RECEIVED,
    REQUEST_RESPONSE,
    RESPONSE_COMPLETE,
    RESPONSE_STARTED,
    RequestAuditConfig,
)
from kapi.endpoints import negotiation as neg
from kapi.endpoints.filters import INFO_KEY, USER_KEY, Handler, status_response
from kapi.storage.interfaces import StorageUnavailableError

_BODY_LEVELS = frozenset({REQUEST, REQUEST_RESPONSE})  # whose events carry the request body


def with_audit_init(handler: Handler, auditor: Auditor | None = None) -> Handler:
    """Every request's audit ID and received time; the ID goes back in the `Audit-Id` header. With an auditor,
    a 401 that authentication answered (no user was set) is audited here, as kube's
    WithFailedAuthenticationAudit does (no user, one ResponseStarted event)."""
    async def run(request: Request) -> Response:
        scope = request.scope
        scope[RECEIVED_KEY] = time.time_ns()
        sent = header(scope, HEADER)
        audit_id = sent.decode("latin-1") if sent else new_audit_id()
        scope[AUDIT_ID_KEY] = audit_id
        response = await handler(request)
        if response.status_code == 401 and auditor is not None and USER_KEY not in scope and INFO_KEY in scope:
            _audit_failed_authentication(request, auditor)
        pair = (RESPONSE_HEADER, audit_id.encode("latin-1"))
        if isinstance(response, StreamingResponse) or type(response).__call__ is Response.__call__:
            response.raw_headers.append(pair)
            return response
        return _WithHeader(response, pair)  # an app that answers itself: the header joins its own
    return run


def _audit_failed_authentication(request: Request, auditor: Auditor) -> None:
    scope = request.scope
    config = auditor.evaluate(None, scope[INFO_KEY])
    if config.level != NONE:
        auditor.note(RESPONSE_STARTED, config, scope, None, (401, None, (), {"message": _auth_methods(request)}))


class _WithHeader(Response):
    """A response that is an app of its own (a plugin router, the admin API) with one more header."""

    def __init__(self, inner: Response, pair: tuple[bytes, bytes]) -> None:
        self._inner, self._pair = inner, pair
        self.status_code, self.body, self.background, self.raw_headers = inner.status_code, b"", None, []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        async def sending(message: Any) -> None:
            if message.get("type") == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), self._pair]}
            await send(message)

        await self._inner(scope, receive, sending)


def with_audit(handler: Handler, auditor: Auditor) -> Handler:
    """kube's WithAudit (see the module docstring).

    Serving a request only notes what happened (`Auditor.note`); the auditor works the events out later, in
    batches. The authorization filter leaves its decision in the scope (`DECISION_KEY`) for them."""
    evaluate, note, pend = auditor.evaluate, auditor.note, auditor.pending.append
    auditor.decoder = _decode  # request and response bodies decode as the handlers decode them

    async def run(request: Request) -> Response:
        scope = request.scope
        user = scope.get(USER_KEY)
        info: RequestInfo = scope[INFO_KEY]
        config = evaluate(user, info)
        if config.level == NONE:
            return await handler(request)
        scope[AUDIT_KEY] = config
        if config.level in _BODY_LEVELS or info.verb in OBJECT_VERBS:
            _capture_body(request)
        pend((REQUEST_RECEIVED, config, scope, user, None, 0))  # auditor.note, inlined: the hot path
        if not auditor.scheduled:
            auditor.schedule()
        try:
            response = await handler(request)
        except errors.StatusError as exc:
            response = status_response(exc)
        except StorageUnavailableError as exc:
            response = status_response(errors.ServiceUnavailable(str(exc), retry_after=1))
        except Exception as exc:  # noqa: BLE001 - recorded as kube's Panic stage, then re-raised
            note(PANIC, config, scope, user, (500, None, (), {
                "status": "Failure", "reason": "InternalError", "message": f"APIServer panic'd: {exc}"}))
            raise
        long_running = info.verb in LONG_RUNNING_VERBS or info.subresource in LONG_RUNNING_SUBRESOURCES
        if type(response).__call__ is Response.__call__:  # bytes already: the common case
            if long_running:
                note(RESPONSE_STARTED, config, scope, user, response)  # type: ignore[arg-type]
            pend((RESPONSE_COMPLETE, config, scope, user, response, time.time_ns()))
            if not auditor.scheduled:
                auditor.schedule()
            return response
        if isinstance(response, StreamingResponse):
            answer: Answer = (response.status_code, None, (), None)
            if long_running:
                note(RESPONSE_STARTED, config, scope, user, answer)
            response.body_iterator = _complete_after(response.body_iterator, auditor, config, scope, user, answer)
            return response
        return _AuditedResponse(response, auditor, config, scope, user, long_running)  # an app that answers itself
    return run


def _auth_methods(request: Request) -> str:
    """kube's getAuthMethods: which credentials the failed request carried."""
    methods = []
    authorization = (header(request.scope, b"authorization") or b"").decode("latin-1").strip()
    scheme = authorization.split(" ")[0].lower() if authorization else ""
    if scheme == "basic":
        methods.append("basic")
    if len(authorization.split(" ")) > 1 and scheme == "bearer":
        methods.append("bearer")
    if request.query_params.get("access_token", "").strip():
        methods.append("access_token")
    tls = (request.scope.get("extensions") or {}).get("tls") or {}
    if tls.get("client_cert_chain"):
        methods.append("x509")
    if methods:
        return "Authentication failed, attempted: " + ", ".join(methods)
    return "Authentication failed, no credentials provided"


def _capture_body(request: Request) -> None:
    """Keep the body chunks as the handler reads them (the receive channel wrapped, nothing read twice)."""
    chunks: list[bytes] = []
    request.scope[BODY_KEY] = chunks
    receive = request._receive

    async def capturing() -> Any:
        message = await receive()
        if message.get("type") == "http.request":
            body = message.get("body")
            if body:
                chunks.append(body)
        return message

    request._receive = capturing


def _decode(content_type: str | None, body: bytes) -> Any:
    """A body as data (JSON, YAML, protobuf, patches), as the handlers decode it; raises when it does not parse."""
    return neg.decode_body(content_type, body)


async def _complete_after(iterator: AsyncIterable[Any], auditor: Auditor, config: RequestAuditConfig,
                          scope: Any, user: UserInfo | None, answer: Answer) -> AsyncIterator[Any]:
    """The stream as it was, with ResponseComplete noted when it ends (done, failed or the client gone)."""
    try:
        async for chunk in iterator:
            yield chunk
    finally:
        closer = getattr(iterator, "aclose", None)
        if closer is not None:
            with contextlib.suppress(Exception):
                await closer()
        auditor.note(RESPONSE_COMPLETE, config, scope, user, answer)


class _AuditedResponse(Response):
    """A response that is an app of its own (a plugin router): its status read as it is sent, ResponseComplete
    once it is done."""

    def __init__(self, inner: Response, auditor: Auditor, config: RequestAuditConfig, scope: Any,
                 user: UserInfo | None, long_running: bool) -> None:
        self._inner, self._auditor, self._long_running = inner, auditor, long_running
        self._noted = (config, scope, user)
        self.status_code, self.body, self.background, self.raw_headers = inner.status_code, b"", None, []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        auditor, (config, audited, user) = self._auditor, self._noted
        answer: Answer = (200, None, (), {"status": "Success", "message": "Connection closed early"})

        async def sending(message: Any) -> None:
            nonlocal answer
            if message.get("type") == "http.response.start":
                answer = (int(message.get("status", 200)), None, (), None)
                if self._long_running:
                    auditor.note(RESPONSE_STARTED, config, audited, user, answer)
            await send(message)

        try:
            await self._inner(scope, receive, sending)
        finally:
            auditor.note(RESPONSE_COMPLETE, config, audited, user, answer)


__all__ = ["with_audit", "with_audit_init"]
