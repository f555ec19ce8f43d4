"""Request-header authentication: the identity an authenticating front proxy asserts in headers.

kube's aggregation layer proxies a request to an extension server with the
caller's identity in `X-Remote-User`, `X-Remote-Group` and
`X-Remote-Extra-<key>` headers. Anybody can send such headers, so they are
believed only on a connection whose client certificate chains to the
request-header CA (`--requestheader-client-ca-file`) and, when
`--requestheader-allowed-names` lists any, whose common name is one of them.
A request without such a certificate is "not mine" (the next authenticator
decides); a certificate that fails is `Unauthorized`; a good certificate
without a user header is not mine either, as in kube.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence
from urllib.parse import unquote

from cryptography import x509

from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest
from kapi.auth.x509 import X509Authenticator

DEFAULT_USERNAME_HEADERS = ("X-Remote-User",)
DEFAULT_GROUP_HEADERS = ("X-Remote-Group",)
DEFAULT_EXTRA_PREFIXES = ("X-Remote-Extra-",)


@dataclass(frozen=True)
class RequestHeaderSettings:
    """kube's `--requestheader-*` flags; also what `extension-apiserver-authentication` publishes."""

    client_ca_pem: str
    allowed_names: tuple[str, ...] = ()
    username_headers: tuple[str, ...] = DEFAULT_USERNAME_HEADERS
    group_headers: tuple[str, ...] = DEFAULT_GROUP_HEADERS
    extra_headers_prefixes: tuple[str, ...] = DEFAULT_EXTRA_PREFIXES

    def ca_certificates(self) -> list[x509.Certificate]:
        certs = x509.load_pem_x509_certificates(self.client_ca_pem.encode("ascii"))
        if not certs:
            raise ValueError("the request-header client CA holds no certificate")
        return certs


def _values(headers: Mapping[str, Sequence[str]], names: Sequence[str]) -> list[str]:
    return [v for name in names for v in headers.get(name.lower(), ())]


class RequestHeaderAuthenticator:
    """Believe identity headers only from a front proxy's verified client certificate."""

    def __init__(self, settings: RequestHeaderSettings) -> None:
        self.settings = settings
        self._verifier = X509Authenticator(settings.ca_certificates())
        self._allowed = frozenset(settings.allowed_names)

    def __repr__(self) -> str:
        return f"RequestHeaderAuthenticator(allowed_names={sorted(self._allowed)})"

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        if not request.peer_cert_chain:
            return None
        proxy = self._verifier.verify(request.peer_cert_chain[0])  # Unauthorized when not of our CA
        if self._allowed and (proxy is None or proxy.name not in self._allowed):
            raise Unauthorized("Unauthorized")
        headers = request.all_headers
        names = [v for v in _values(headers, self.settings.username_headers) if v]
        if not names:
            return None
        groups = tuple(v for v in _values(headers, self.settings.group_headers) if v)
        extra: dict[str, list[str]] = {}
        lowered = tuple(p.lower() for p in self.settings.extra_headers_prefixes)
        for name, values in headers.items():  # names arrive lower-cased; kube unescapes after lowering
            for prefix in lowered:
                if name.startswith(prefix) and len(name) > len(prefix):
                    extra.setdefault(unquote(name[len(prefix):]), []).extend(values)
        return UserInfo(names[0], groups=groups, extra={k: tuple(v) for k, v in extra.items()})


def identity_header_names(settings: RequestHeaderSettings | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(exact header names, name prefixes) that carry a front proxy's identity assertion, lower case."""
    if settings is None:
        return (), ()
    exact = tuple(h.lower() for h in (*settings.username_headers, *settings.group_headers))
    return exact, tuple(p.lower() for p in settings.extra_headers_prefixes)
