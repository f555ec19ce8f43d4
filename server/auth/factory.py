"""Build the authentication chain from plain settings (`create_app` passes them from ServerConfig).

Order, first match wins: a front proxy's identity headers (request-header
authentication), bearer tokens (the static token file, then the kubectl token),
service-account tokens (JWTs of kapi's issuer), tokens the main server's
TokenReview accepts (delegated), x509 client certificates, then loopback
without credentials.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from cryptography import x509

from kapi.auth.bearer import BearerTokenAuthenticator
from kapi.auth.delegated import (
    AlwaysAllowPathsAuthorizer,
    SubjectAccessReviewAuthorizer,
    TokenReviewAuthenticator,
    published_settings,
)
from kapi.auth.main_server import MainServer, MainServerError, connection_for
from kapi.auth.request_header import RequestHeaderAuthenticator, RequestHeaderSettings
from kapi.auth.interfaces import Authenticator, Authorizer, TokenAuthenticator
from kapi.auth.kubectl_token import KubectlTokenAuthenticator
from kapi.auth.localhost import LocalhostAuthenticator
from kapi.auth.token_file import TokenFileAuthenticator
from kapi.auth.modes import (
    ALWAYS_ALLOW,
    ALWAYS_DENY,
    AlwaysAllowAuthorizer,
    AlwaysDenyAuthorizer,
    PrivilegedGroupAuthorizer,
    UnionAuthorizer,
    check_modes,
)
from kapi.auth.rbac import RbacAuthorizer
from kapi.auth.union import UnionAuthenticator
from kapi.auth.x509 import X509Authenticator, load_ca_bundle


@dataclass(frozen=True)
class Delegation:
    """What a server that delegates to a main server (or trusts a front proxy) was configured with.

    `client_ca_pem` is the client CA the main server publishes: its users' certificates are good
    here too. `authentication`/`authorization` are the main server to ask, or None.
    """

    request_header: RequestHeaderSettings | None = None
    client_ca_pem: str = ""
    authentication: MainServer | None = None
    authorization: MainServer | None = None

    @property
    def trusted_client_ca_pem(self) -> str:
        """Client CAs the TLS layer must accept beyond kapi's own: the front proxy's and the main server's."""
        return "\n".join(p for p in (self.request_header.client_ca_pem if self.request_header else "",
                                      self.client_ca_pem) if p)


def resolve_delegation(*, request_header: RequestHeaderSettings | None, authentication_kubeconfig: str = "",
                       authorization_kubeconfig: str = "") -> Delegation:
    """Connect the configured main servers; without a request-header CA of its own, read the main
    server's published settings (kube's `extension-apiserver-authentication`). Raises ValueError."""
    try:
        authn = MainServer(connection_for(authentication_kubeconfig)) if authentication_kubeconfig else None
        authz = MainServer(connection_for(authorization_kubeconfig)) if authorization_kubeconfig else None
        client_ca = ""
        if authn is not None:
            published, client_ca = published_settings(authn)
            request_header = request_header or published
    except MainServerError as exc:
        raise ValueError(f"delegated authentication: {exc}") from None
    return Delegation(request_header, client_ca, authn, authz)


def request_header_settings(ca_file: Path | None, allowed_names: Sequence[str], username_headers: Sequence[str],
                            group_headers: Sequence[str], extra_prefixes: Sequence[str]) -> RequestHeaderSettings | None:
    """`--requestheader-*` as settings, or None without a CA file (ValueError/OSError when unreadable)."""
    if ca_file is None:
        return None
    settings = RequestHeaderSettings(ca_file.read_text(), tuple(allowed_names), tuple(username_headers),
                                     tuple(group_headers), tuple(extra_prefixes))
    settings.ca_certificates()  # fails now rather than on the first request
    return settings


def build_authenticator(
    *,
    token_auth_file: Path | None = None,
    kubectl_token: str | None = None,
    client_ca_file: Path | None = None,
    allow_localhost: bool = False,
    service_accounts: Authenticator | None = None,
    delegation: Delegation = Delegation(),
    token_cache_ttl: float = 10.0,
) -> UnionAuthenticator:
    """The union of every configured authenticator. Raises ValueError/OSError for unusable files."""
    tokens: list[TokenAuthenticator] = []
    if token_auth_file is not None:
        tokens.append(TokenFileAuthenticator.load(token_auth_file))
    if kubectl_token:
        tokens.append(KubectlTokenAuthenticator(kubectl_token))
    parts: list[Authenticator] = []
    if delegation.request_header is not None:
        parts.append(RequestHeaderAuthenticator(delegation.request_header))
    if tokens:
        parts.append(BearerTokenAuthenticator(tokens))
    if service_accounts is not None:
        parts.append(service_accounts)
    if delegation.authentication is not None:
        parts.append(TokenReviewAuthenticator(delegation.authentication, token_cache_ttl))
    cas: list[x509.Certificate] = load_ca_bundle(client_ca_file) if client_ca_file is not None else []
    if delegation.client_ca_pem:
        cas += x509.load_pem_x509_certificates(delegation.client_ca_pem.encode("ascii"))
    if cas:
        parts.append(X509Authenticator(cas))
    if allow_localhost:
        parts.append(LocalhostAuthenticator())
    return UnionAuthenticator(parts)


def build_authorizer(modes: Sequence[str], rbac: RbacAuthorizer, *, always_allow_paths: Sequence[str] = (),
                     delegated: SubjectAccessReviewAuthorizer | None = None) -> UnionAuthorizer:
    """`system:masters` and the always-allowed paths first, then the modes in the order given, then the
    main server's SubjectAccessReview when delegating (ValueError for a bad list)."""
    chosen: list[Authorizer] = [PrivilegedGroupAuthorizer()]
    if always_allow_paths:
        chosen.append(AlwaysAllowPathsAuthorizer(always_allow_paths))
    for mode in check_modes(modes):
        chosen.append(AlwaysAllowAuthorizer() if mode == ALWAYS_ALLOW
                      else AlwaysDenyAuthorizer() if mode == ALWAYS_DENY else rbac)
    if delegated is not None:
        chosen.append(delegated)
    return UnionAuthorizer(chosen)
