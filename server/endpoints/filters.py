"""The filter chain every API request passes through, built in one visible function.

Order, outermost first (as kube-apiserver's DefaultBuildHandlerChain):
Status errors -> request info -> authentication -> impersonation
(`kapi.endpoints.impersonation`) -> authorization -> timeout -> injected
faults (`kapi.endpoints.faults`) -> router.
`/healthz`, `/livez`, `/readyz` (and their subpaths) and `/version` are
public: they skip authentication, impersonation and authorization and run
as the anonymous user.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Awaitable, Callable, MutableMapping

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.duration import parse_duration
from kapi.api.requestinfo import RequestInfo, parse_request_info
from kapi.api.user import ANONYMOUS, UserInfo
from kapi.audit.event import AUDIT_KEY, DECISION_KEY
from kapi.auth.interfaces import Authenticator, AuthRequest, Authorizer
from kapi.endpoints.context import ApiContext
from kapi.storage.interfaces import StorageUnavailableError

Handler = Callable[[Request], Awaitable[Response]]
log = logging.getLogger("kapi.server")
INFO_KEY = "kapi.request_info"
USER_KEY = "kapi.user"
PUBLIC_PATHS = ("/healthz", "/livez", "/readyz", "/version")


def status_response(exc: errors.StatusError) -> Response:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else None
    return Response(orjson.dumps(exc.to_status()), status_code=exc.code, media_type="application/json",
                    headers=headers)


def request_info(request: Request) -> RequestInfo:
    return request.scope[INFO_KEY]  # type: ignore[no-any-return]


def with_status_errors(handler: Handler) -> Handler:
    """Translate every error into a Status once; a bug becomes a bare 500, never a traceback."""
    async def run(request: Request) -> Response:
        try:
            return await handler(request)
        except errors.StatusError as exc:
            return status_response(exc)
        except StorageUnavailableError as exc:  # wherever the backend went away, not only in a store
            return status_response(errors.ServiceUnavailable(str(exc), retry_after=1))
        except Exception:  # noqa: BLE001 - the one place that must catch everything
            return unexpected_error_response(request)
    return run


def unexpected_error_response(request: Request) -> Response:
    """A bug while serving `request`: logged with its traceback, answered with a bare 500 Status."""
    log.exception("internal error serving %s %s", request.method, request.scope["path"])
    return status_response(errors.InternalError("an error on the server has prevented the request from succeeding"))


def with_request_info(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        watch = request.query_params.get("watch", "").lower() in ("true", "1")
        request.scope[INFO_KEY] = parse_request_info(request.method, request.scope["path"], watch)
        return await handler(request)
    return run


def request_user(request: Request) -> UserInfo:
    """The user the authentication filter put on the request (anonymous on public paths)."""
    return request.scope.get(USER_KEY, ANONYMOUS)  # type: ignore[no-any-return]


def is_public_path(path: str) -> bool:
    if not path.startswith(PUBLIC_PATHS):
        return False
    trimmed = path.rstrip("/") or "/"
    return trimmed in PUBLIC_PATHS or any(
        path.startswith(p + "/") for p in PUBLIC_PATHS if p != "/version")


def auth_request(scope: MutableMapping[str, Any]) -> AuthRequest:
    """The framework-free view of a request the authenticators get (headers, peer, client cert chain)."""
    headers: dict[str, str] = {}
    raw: list[tuple[str, str]] = []
    for raw_name, raw_value in scope.get("headers", ()):
        name, value = raw_name.decode("latin-1").lower(), raw_value.decode("latin-1")
        raw.append((name, value))
        if name not in headers:
            headers[name] = value
    client = scope.get("client")
    tls = (scope.get("extensions") or {}).get("tls") or {}
    return AuthRequest(
        headers=headers,
        client_host=client[0] if client else None,
        peer_cert_chain=tuple(tls.get("client_cert_chain") or ()),
        scheme=scope.get("scheme", "http"),
        raw_headers=raw,
    )


def with_authentication(handler: Handler, authenticator: Authenticator) -> Handler:
    """Put the caller in `scope["kapi.user"]` or answer kube's 401 Status (message "Unauthorized").

    Nothing here logs: credentials and their outcome stay out of the logs.
    """
    async def run(request: Request) -> Response:
        if is_public_path(request.scope["path"]):
            request.scope[USER_KEY] = ANONYMOUS
            return await handler(request)
        user = await authenticator.authenticate(auth_request(request.scope))
        if user is None:  # an authenticator that breaks the protocol fails closed
            raise errors.Unauthorized("Unauthorized")
        request.scope[USER_KEY] = user
        return await handler(request)
    return run


def forbidden(user: UserInfo, info: RequestInfo, reason: str = "") -> errors.Forbidden:
    """kube's 403 for a denied request, worded as its responsewriters.Forbidden."""
    if not info.is_resource_request:
        message = f"User {_quote(user.name)} cannot {info.verb} path {_quote(info.path)}"
    else:
        resource = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
        message = (f"User {_quote(user.name)} cannot {info.verb} resource {_quote(resource)} "
                   f"in API group {_quote(info.group)}")
        message += f" in the namespace {_quote(info.namespace)}" if info.namespace else " at the cluster scope"
    if reason:
        message = f"{message}: {reason}"
    label = errors.resource_label(info.group, info.resource) if info.resource else ""
    if label and info.name:
        full = f'{label} "{info.name}" is forbidden: {message}'
    elif label:
        full = f"{label} is forbidden: {message}"
    else:
        full = f"forbidden: {message}"
    return errors.Forbidden(full, details=errors.QualifiedKind(name=info.name, group=info.group, kind=info.resource))


def _quote(text: str) -> str:
    return orjson.dumps(text).decode()


def with_authorization(handler: Handler, authorizer: Authorizer) -> Handler:
    """Ask the authorizer about every non-public request; 403 Status when it says no."""
    async def run(request: Request) -> Response:
        if is_public_path(request.scope["path"]):
            return await handler(request)
        user, info = request_user(request), request_info(request)
        decision = await authorizer.authorize(user, info)
        if AUDIT_KEY in request.scope:  # kube's authorization.k8s.io/decision and /reason audit annotations
            request.scope[DECISION_KEY] = decision
        if not decision.allowed:
            raise forbidden(user, info, decision.reason)
        return await handler(request)
    return run


def with_timeout(handler: Handler, default_seconds: float) -> Handler:
    """Bound every short request by `?timeout=` or the server's --request-timeout, whichever is shorter."""
    async def run(request: Request) -> Response:
        if request_info(request).verb == "watch":
            return await handler(request)
        seconds = default_seconds
        raw = request.query_params.get("timeout")
        if raw:
            try:
                seconds = min(seconds, max(parse_duration(raw), 0.001))
            except ValueError:
                raise errors.BadRequest(f'invalid value for timeout: "{raw}"') from None
        try:
            async with asyncio.timeout(seconds):  # no task per request, unlike wait_for
                return await handler(request)
        except TimeoutError:
            raise errors.Timeout("Timeout: request did not complete within the allotted timeout",
                                 retry_after=1) from None
    return run


def build_handler_chain(router: Handler, ctx: ApiContext, authenticator: Authenticator,
                        authorizer: Authorizer) -> Handler:
    """Outermost first: Status errors, request info, metrics, authentication, impersonation, authorization,
    timeout, faults, router. The audit ID (`Audit-Id`) is given first of all (and failed authentications are
    audited there); with an auditor, the audit filter runs right after authentication, as kube's WithAudit."""
    from kapi.endpoints.audit_filter import with_audit, with_audit_init
    from kapi.endpoints.faults import with_faults  # these build on this module's helpers
    from kapi.endpoints.httplog import with_http_logging
    from kapi.endpoints.impersonation import with_impersonation
    from kapi.endpoints.metrics import with_metrics

    handler = with_timeout(with_faults(router, ctx), ctx.request_timeout)
    handler = with_authorization(handler, authorizer)
    handler = with_impersonation(handler, authorizer)
    if ctx.auditor is not None:  # kube's WithAudit: after authentication, the user known
        handler = with_audit(handler, ctx.auditor)
    handler = with_authentication(handler, authenticator)
    handler = with_metrics(handler, ctx)  # every request after request info counts, its 401/403/429 too
    handler = with_request_info(handler)
    # kube's WithLogging (`-v`): outside the Status translation, so it logs the code the client gets.
    return with_audit_init(with_http_logging(with_status_errors(handler), ctx.log_verbosity), ctx.auditor)
