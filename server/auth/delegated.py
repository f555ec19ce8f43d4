"""Delegated authentication and authorization: ask the main server, as kube's extension servers do.

- `TokenReviewAuthenticator`: a bearer token is sent in a TokenReview; the answer
  (user or refusal) is cached for `--authentication-token-webhook-cache-ttl`.
- `SubjectAccessReviewAuthorizer`: each decision is asked in a SubjectAccessReview and cached
  for `--authorization-webhook-cache-authorized-ttl` / `-unauthorized-ttl`.
- `AlwaysAllowPathsAuthorizer`: `--authorization-always-allow-paths` (exact paths, or a
  prefix ending in `*`), allowed for anyone without asking.
- `published_settings`: the request-header settings and client CA the main server publishes in
  `kube-system/extension-apiserver-authentication`.

kube's defaults for all three TTLs are 10 seconds. A failure to reach the main server is
never cached: a refused token is 401, an unanswerable authorization is kube's 500.
"""
from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Sequence

import orjson

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest, Decision, RulesAnswer
from kapi.auth.main_server import MainServer, MainServerError
from kapi.auth.request_header import RequestHeaderSettings

DEFAULT_TTL = 10.0
DEFAULT_ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")
AUTHENTICATION_CONFIGMAP = ("kube-system", "extension-apiserver-authentication")
TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
SUBJECT_ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
_MAX_ENTRIES = 4096


class _TtlCache:
    """Answers by key, each good for its own number of seconds; the oldest go first when full."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}

    def get(self, key: Any) -> Any:
        hit = self._entries.get(key)
        if hit is None:
            return None
        if hit[0] < self._clock():
            del self._entries[key]
            return None
        return hit[1]

    def put(self, key: Any, value: Any, ttl: float) -> None:
        if ttl <= 0:
            return
        if len(self._entries) >= _MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (self._clock() + ttl, value)


def _user(status: dict[str, Any]) -> UserInfo:
    user = status.get("user") or {}
    extra = {str(k): tuple(v or ()) for k, v in (user.get("extra") or {}).items()}
    return UserInfo(str(user.get("username", "")), uid=str(user.get("uid", "")),
                    groups=tuple(user.get("groups") or ()), extra=extra)


class TokenReviewAuthenticator:
    """Bearer tokens checked by the main server's TokenReview."""

    def __init__(self, main: MainServer, ttl: float = DEFAULT_TTL, audiences: Sequence[str] = (),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._main, self._ttl, self._audiences = main, ttl, tuple(audiences)
        self._cache = _TtlCache(clock)

    def __repr__(self) -> str:
        return f"TokenReviewAuthenticator({self._main!r})"

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        token = request.bearer_token()
        if token is None:
            return None
        audiences = tuple(request.audiences) or self._audiences
        key = (hashlib.sha256(token).digest(), audiences)
        answer = self._cache.get(key)
        if answer is None:
            spec: dict[str, Any] = {"token": token.decode("latin-1")}
            if audiences:
                spec["audiences"] = list(audiences)
            try:
                review = await self._main.post(TOKEN_REVIEWS, {
                    "apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": spec})
            except MainServerError:
                raise errors.Unauthorized("Unauthorized") from None
            status = review.get("status") or {}
            answer = _user(status) if status.get("authenticated") else False
            self._cache.put(key, answer, self._ttl)
        if answer is False:
            raise errors.Unauthorized("Unauthorized")
        return answer  # type: ignore[no-any-return]


def access_review_spec(user: UserInfo, info: RequestInfo) -> dict[str, Any]:
    """The SubjectAccessReview spec kube's webhook authorizer sends for a request."""
    spec: dict[str, Any] = {"user": user.name, "groups": list(user.groups)}
    if user.uid:
        spec["uid"] = user.uid
    if user.extra:
        spec["extra"] = {k: list(v) for k, v in user.extra.items()}
    if info.is_resource_request:
        attrs = {"namespace": info.namespace, "verb": info.verb, "group": info.group, "version": info.version,
                 "resource": info.resource, "subresource": info.subresource, "name": info.name}
        spec["resourceAttributes"] = {k: v for k, v in attrs.items() if v}
    else:
        spec["nonResourceAttributes"] = {"path": info.path, "verb": info.verb}
    return spec


class SubjectAccessReviewAuthorizer:
    """Decisions asked of the main server; it cannot list a user's rules (kube's webhook cannot either)."""

    def __init__(self, main: MainServer, allowed_ttl: float = DEFAULT_TTL, denied_ttl: float = DEFAULT_TTL,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._main, self._allowed_ttl, self._denied_ttl = main, allowed_ttl, denied_ttl
        self._cache = _TtlCache(clock)

    def __repr__(self) -> str:
        return f"SubjectAccessReviewAuthorizer({self._main!r})"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        spec = access_review_spec(user, info)
        key = orjson.dumps(spec, option=orjson.OPT_SORT_KEYS)
        decision = self._cache.get(key)
        if decision is not None:
            return decision  # type: ignore[no-any-return]
        try:
            review = await self._main.post(SUBJECT_ACCESS_REVIEWS, {
                "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec})
        except MainServerError as exc:
            raise errors.InternalError(f"error contacting the authorization server: {exc}") from None
        status = review.get("status") or {}
        decision = Decision(bool(status.get("allowed")), str(status.get("reason") or ""))
        self._cache.put(key, decision, self._allowed_ttl if decision.allowed else self._denied_ttl)
        return decision

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        return RulesAnswer(incomplete=True, errors=("webhook authorizer does not support user rule resolution",))


class AlwaysAllowPathsAuthorizer:
    """Non-resource paths anyone may use: exact, or every path under a `prefix*`."""

    def __init__(self, paths: Sequence[str]) -> None:
        self._exact = frozenset(p for p in paths if not p.endswith("*"))
        self._prefixes = tuple(p[:-1] for p in paths if p.endswith("*"))

    def __repr__(self) -> str:
        return f"AlwaysAllowPathsAuthorizer({sorted(self._exact) + [p + '*' for p in self._prefixes]})"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        if info.is_resource_request:
            return Decision(False)
        return Decision(info.path in self._exact or info.path.startswith(self._prefixes))

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        return RulesAnswer()


def check_always_allow_paths(paths: Sequence[str]) -> tuple[str, ...]:
    """kube's rule: each path absolute, and `*` only at the end."""
    for path in paths:
        if not path.startswith("/"):
            raise ValueError(f"path {path!r} must begin with /")
        if "*" in path[:-1]:
            raise ValueError(f"only trailing * allowed in {path!r}")
    return tuple(paths)


def _json_list(data: dict[str, Any], key: str) -> tuple[str, ...]:
    raw = data.get(key)
    if not raw:
        return ()
    try:
        values = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise MainServerError(f"{key} in the authentication configmap is not a JSON list") from None
    return tuple(str(v) for v in values) if isinstance(values, list) else ()


def published_settings(main: MainServer) -> tuple[RequestHeaderSettings | None, str]:
    """The request-header settings (None when the main server publishes no request-header CA) and the
    client CA PEM ("" when none) from `kube-system/extension-apiserver-authentication`."""
    namespace, name = AUTHENTICATION_CONFIGMAP
    configmap = main.get_sync(f"/api/v1/namespaces/{namespace}/configmaps/{name}")
    data = configmap.get("data") or {}
    client_ca = str(data.get("client-ca-file") or "")
    ca = str(data.get("requestheader-client-ca-file") or "")
    if not ca:
        return None, client_ca
    return RequestHeaderSettings(
        ca, allowed_names=_json_list(data, "requestheader-allowed-names"),
        username_headers=_json_list(data, "requestheader-username-headers"),
        group_headers=_json_list(data, "requestheader-group-headers"),
        extra_headers_prefixes=_json_list(data, "requestheader-extra-headers-prefix"),
    ), client_ca


def authentication_configmap_data(client_ca_pem: str, settings: RequestHeaderSettings | None) -> dict[str, str]:
    """What a main server publishes for its extension servers (kube-apiserver's keys and JSON lists)."""
    data = {"client-ca-file": client_ca_pem} if client_ca_pem else {}
    if settings is not None:
        data.update({
            "requestheader-client-ca-file": settings.client_ca_pem,
            "requestheader-allowed-names": orjson.dumps(list(settings.allowed_names)).decode(),
            "requestheader-username-headers": orjson.dumps(list(settings.username_headers)).decode(),
            "requestheader-group-headers": orjson.dumps(list(settings.group_headers)).decode(),
            "requestheader-extra-headers-prefix": orjson.dumps(list(settings.extra_headers_prefixes)).decode(),
        })
    return data
