"""Build the authentication chain from plain settings (`create_app` passes them from ServerConfig).

Order, first match wins: bearer tokens (the static token file, then the
kubectl token), service-account tokens (JWTs of kapi's issuer), x509 client
certificates, then loopback without credentials.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from server.auth.bearer import BearerTokenAuthenticator
from server.auth.interfaces import Authenticator, Authorizer, TokenAuthenticator
from server.auth.kubectl_token import KubectlTokenAuthenticator
from server.auth.localhost import LocalhostAuthenticator
from server.auth.token_file import TokenFileAuthenticator
from server.auth.modes import (
    ALWAYS_ALLOW,
    ALWAYS_DENY,
    AlwaysAllowAuthorizer,
    AlwaysDenyAuthorizer,
    PrivilegedGroupAuthorizer,
    UnionAuthorizer,
    check_modes,
)
from server.auth.rbac import RbacAuthorizer
from server.auth.union import UnionAuthenticator
from server.auth.x509 import X509Authenticator


def build_authenticator(
    *,
    token_auth_file: Path | None = None,
    kubectl_token: str | None = None,
    client_ca_file: Path | None = None,
    allow_localhost: bool = False,
    service_accounts: Authenticator | None = None,
) -> UnionAuthenticator:
    """The union of every configured authenticator. Raises ValueError/OSError for unusable files."""
    tokens: list[TokenAuthenticator] = []
    if token_auth_file is not None:
        tokens.append(TokenFileAuthenticator.load(token_auth_file))
    if kubectl_token:
        tokens.append(KubectlTokenAuthenticator(kubectl_token))
    parts: list[Authenticator] = []
    if tokens:
        parts.append(BearerTokenAuthenticator(tokens))
    if service_accounts is not None:
        parts.append(service_accounts)
    if client_ca_file is not None:
        parts.append(X509Authenticator.from_ca_file(client_ca_file))
    if allow_localhost:
        parts.append(LocalhostAuthenticator())
    return UnionAuthenticator(parts)


def build_authorizer(modes: Sequence[str], rbac: RbacAuthorizer) -> UnionAuthorizer:
    """`system:masters` first, then the modes in the order given (ValueError for a bad list)."""
    chosen: list[Authorizer] = [PrivilegedGroupAuthorizer()]
    for mode in check_modes(modes):
        chosen.append(AlwaysAllowAuthorizer() if mode == ALWAYS_ALLOW
                      else AlwaysDenyAuthorizer() if mode == ALWAYS_DENY else rbac)
    return UnionAuthorizer(chosen)
