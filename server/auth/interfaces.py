"""The authentication and authorization protocols; every plugin and composite implements one.

Exceptions (from `kapi.api.errors`): an authenticator raises `Unauthorized`
when a credential it owns is present but wrong (an expired certificate, a
certificate from another CA); it returns None when the request carries no
credential it understands. The union decides what "nobody recognised you"
means (a 401 Status whose message is just "Unauthorized").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Mapping, Protocol, Sequence

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo


@dataclass(frozen=True)
class AuthRequest:
    """What authenticators may look at, independent of the HTTP framework.

    `headers` maps lower-cased names to values (latin-1 decoded, the first
    occurrence wins); `peer_cert_chain` is the TLS client certificate chain
    the serving layer verified, DER encoded, leaf first (empty without TLS or
    without a client certificate).
    """

    headers: Mapping[str, str] = field(default_factory=dict)
    client_host: str | None = None
    peer_cert_chain: Sequence[bytes] = ()  # stored as a tuple
    scheme: str = "http"
    # The audiences the credential must be good for (a TokenReview's spec.audiences);
    # empty means the server's own API audiences. Only audience-aware authenticators look.
    audiences: Sequence[str] = ()  # stored as a tuple
    # Every header as sent, (lower-case name, value) pairs in order: identity headers may repeat
    # (one X-Remote-Group per group). Empty when built from `headers` alone.
    raw_headers: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "peer_cert_chain", tuple(self.peer_cert_chain))
        object.__setattr__(self, "audiences", tuple(self.audiences))
        object.__setattr__(self, "raw_headers", tuple(self.raw_headers))

    def __repr__(self) -> str:  # never print credentials
        names = sorted(self.headers)
        return (f"AuthRequest(headers={names}, client_host={self.client_host!r}, "
                f"peer_certs={len(self.peer_cert_chain)}, scheme={self.scheme!r})")

    @cached_property
    def all_headers(self) -> Mapping[str, tuple[str, ...]]:
        """Every value of every header, by lower-case name (from `raw_headers`, else `headers`)."""
        if not self.raw_headers:
            return {k: (v,) for k, v in self.headers.items()}
        out: dict[str, tuple[str, ...]] = {}
        for name, value in self.raw_headers:
            out[name] = out.get(name, ()) + (value,)
        return out

    @property
    def authorization(self) -> str:
        return self.headers.get("authorization", "")

    @property
    def has_credentials(self) -> bool:
        """Anything that could identify a caller: an Authorization header or a client certificate."""
        return bool(self.authorization.strip()) or bool(self.peer_cert_chain)

    def bearer_token(self) -> bytes | None:
        """The raw bytes of `Authorization: Bearer <token>` (scheme case-insensitive), as kube parses it."""
        value = self.authorization.strip()
        if not value:
            return None
        parts = value.split(" ")
        if len(parts) < 2 or parts[0].lower() != "bearer" or not parts[1]:
            return None
        return parts[1].encode("latin-1", errors="replace")


class Authenticator(Protocol):
    """Identify the caller: a user, None (no credential of mine), or raise `Unauthorized`."""

    async def authenticate(self, request: AuthRequest) -> UserInfo | None: ...


class TokenAuthenticator(Protocol):
    """Map a bearer token to a user, or None when the token is not one of mine."""

    def authenticate_token(self, token: bytes) -> UserInfo | None: ...


@dataclass(frozen=True)
class Decision:
    """An authorizer's answer. Not allowed means "no opinion" (kube's DecisionNoOpinion): the union asks
    the next authorizer; `reason` says why, and ends up after the 403 message when all said no."""

    allowed: bool
    reason: str = ""


@dataclass(frozen=True)
class RulesAnswer:
    """What a user may do in a namespace, as a SelfSubjectRulesReview's status reports it.

    `resource_rules` and `non_resource_rules` are `PolicyRule`s (`kapi.auth.rbac_rules`);
    `incomplete` is True when some authorizer could not list everything it would allow, and
    `errors` says why (a binding to a missing role, say)."""

    resource_rules: tuple[Any, ...] = ()
    non_resource_rules: tuple[Any, ...] = ()
    incomplete: bool = False
    errors: tuple[str, ...] = ()


class Authorizer(Protocol):
    """Decide whether `user` may do what `info` describes (a request, or an access review), and list
    what a user may do in a namespace (kube's RuleResolver, for SelfSubjectRulesReview)."""

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision: ...

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer: ...


__all__ = ["AuthRequest", "Authenticator", "Authorizer", "Decision", "RulesAnswer", "TokenAuthenticator"]
