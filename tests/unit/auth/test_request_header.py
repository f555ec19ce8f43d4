"""Request-header authentication: a front proxy's identity headers, believed only from its certificate.

The set-up of the reference run (`tests/data/aggregation/README.md`): a front-proxy CA (CN front-proxy-ca), a
client certificate CN=front-proxy-client with clientAuth, `--requestheader-allowed-names=front-proxy-client`
and the X-Remote-User / X-Remote-Group / X-Remote-Extra- headers. The aggregator sends one X-Remote-Group
header per group (`stub_backend_requests_received`).
"""
from __future__ import annotations

from typing import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kapi_certs import pki
from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.factory import Delegation, build_authenticator
from kapi.auth.interfaces import AuthRequest
from kapi.auth.request_header import RequestHeaderAuthenticator, RequestHeaderSettings


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


class Pki:
    """The front proxy's CA and certificates, plus a CA nobody trusts."""

    def __init__(self) -> None:
        self.ca, ca_key = pki.make_ca("front-proxy-ca")
        self.ca_pem = pki.cert_pem(self.ca).decode("ascii")
        self.proxy = der(pki.issue_client_cert(self.ca, ca_key, "front-proxy-client", [])[0])
        self.other_name = der(pki.issue_client_cert(self.ca, ca_key, "someone-else", ["system:masters"])[0])
        self.serving = der(pki.issue_serving_cert(self.ca, ca_key, ["127.0.0.1"])[0])  # serverAuth only
        stranger_ca, stranger_key = pki.make_ca("front-proxy-ca")  # same name, other key
        self.stranger = der(pki.issue_client_cert(stranger_ca, stranger_key, "front-proxy-client", [])[0])


@pytest.fixture(scope="module")
def certs() -> Pki:
    return Pki()


def settings(certs: Pki, allowed: Sequence[str] = ("front-proxy-client",), **kw: tuple[str, ...]) -> RequestHeaderSettings:
    return RequestHeaderSettings(certs.ca_pem, allowed_names=tuple(allowed), **kw)


def request(cert: bytes | None, headers: Sequence[tuple[str, str]], ca: x509.Certificate | None = None) -> AuthRequest:
    chain = [cert] if cert is not None else []
    if cert is not None and ca is not None:
        chain.append(der(ca))
    first: dict[str, str] = {}
    for name, value in headers:
        first.setdefault(name, value)
    return AuthRequest(headers=first, peer_cert_chain=chain, raw_headers=headers, scheme="https",
                       client_host="127.0.0.1")


PROXIED = [  # what the aggregator sends for admin, plus extras (lower-case names, as the server hands them)
    ("x-remote-user", "admin"),
    ("x-remote-group", "system:masters"),
    ("x-remote-group", "system:authenticated"),
    ("x-remote-extra-scopes", "view"),
    ("x-remote-extra-scopes", "edit"),
    ("x-remote-extra-example.com%2fproject", "p1"),
]


async def test_identity_comes_from_the_headers(certs: Pki) -> None:
    user = await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.proxy, PROXIED, certs.ca))
    assert user == UserInfo("admin", groups=("system:masters", "system:authenticated"),
                            extra={"scopes": ("view", "edit"), "example.com/project": ("p1",)})


async def test_extra_keys_are_lower_cased_and_unescaped(certs: Pki) -> None:
    """A proxy escapes what a header name cannot carry; the key is unescaped after lower-casing, as in
    k8s.io/apiserver's requestheader (`unescapeExtraKey(strings.ToLower(name[len(prefix):]))`)."""
    headers = [("x-remote-user", "alice"), ("x-remote-extra-acme.io%2fteam%20name", "blue"),
               ("x-remote-extra-scopes", "read")]
    user = await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.proxy, headers))
    assert user is not None and dict(user.extra) == {"acme.io/team name": ("blue",), "scopes": ("read",)}


async def test_an_escaped_capital_survives_in_an_extra_key(certs: Pki) -> None:
    """Lower-casing happens before unescaping (kube), so `%41` is an upper-case A in the key."""
    headers = [("x-remote-user", "alice"), ("x-remote-extra-key%41b", "v")]
    user = await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.proxy, headers))
    assert user is not None and dict(user.extra) == {"keyAb": ("v",)}


async def test_identity_headers_from_the_first_occurrence_map(certs: Pki) -> None:
    """Without raw headers (one value per name) the user and a single group still come through."""
    req = AuthRequest(headers={"x-remote-user": "bob", "x-remote-group": "dev"}, peer_cert_chain=[certs.proxy])
    user = await RequestHeaderAuthenticator(settings(certs)).authenticate(req)
    assert user == UserInfo("bob", groups=("dev",))


async def test_without_a_client_certificate_the_headers_are_not_mine(certs: Pki) -> None:
    assert await RequestHeaderAuthenticator(settings(certs)).authenticate(request(None, PROXIED)) is None


async def test_a_certificate_of_another_ca_is_refused(certs: Pki) -> None:
    with pytest.raises(Unauthorized):
        await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.stranger, PROXIED))


async def test_a_certificate_without_client_auth_is_refused(certs: Pki) -> None:
    with pytest.raises(Unauthorized):
        await RequestHeaderAuthenticator(settings(certs, allowed=())).authenticate(request(certs.serving, PROXIED))


async def test_a_common_name_not_allowed_is_refused(certs: Pki) -> None:
    with pytest.raises(Unauthorized):
        await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.other_name, PROXIED))


async def test_the_allowed_names_may_list_several(certs: Pki) -> None:
    auth = RequestHeaderAuthenticator(settings(certs, allowed=("aggregator", "someone-else")))
    user = await auth.authenticate(request(certs.other_name, PROXIED))
    assert user is not None and user.name == "admin"
    with pytest.raises(Unauthorized):
        await auth.authenticate(request(certs.proxy, PROXIED))


async def test_no_allowed_names_means_any_common_name(certs: Pki) -> None:
    """The certificate's own CN and O do not become the user: the headers do."""
    auth = RequestHeaderAuthenticator(settings(certs, allowed=()))
    for cert in (certs.proxy, certs.other_name):
        user = await auth.authenticate(request(cert, [("x-remote-user", "carol")]))
        assert user == UserInfo("carol")


@pytest.mark.parametrize("headers", [
    [],
    [("x-remote-group", "system:masters")],
    [("x-remote-user", ""), ("x-remote-group", "dev")],
    [("x-forwarded-user", "alice")],
], ids=["nothing", "groups only", "empty user", "other header"])
async def test_a_good_certificate_without_a_user_header_is_not_mine(certs: Pki, headers: list[tuple[str, str]]) -> None:
    assert await RequestHeaderAuthenticator(settings(certs)).authenticate(request(certs.proxy, headers)) is None


async def test_custom_header_names(certs: Pki) -> None:
    custom = settings(certs, username_headers=("X-Proxy-User", "X-Alt-User"), group_headers=("X-Proxy-Group",),
                      extra_headers_prefixes=("X-Proxy-Extra-", "X-Alt-Extra-"))
    headers = [("x-remote-user", "ignored"), ("x-remote-group", "ignored"), ("x-remote-extra-k", "ignored"),
               ("x-alt-user", "second-choice"), ("x-proxy-user", "dave"),
               ("x-proxy-group", "ops"), ("x-proxy-group", "dev"),
               ("x-proxy-extra-team", "a"), ("x-alt-extra-team", "b")]
    user = await RequestHeaderAuthenticator(custom).authenticate(request(certs.proxy, headers))
    assert user is not None
    assert (user.name, user.groups) == ("dave", ("ops", "dev"))
    assert dict(user.extra) == {"team": ("a", "b")}


async def test_the_second_user_header_counts_when_the_first_is_absent(certs: Pki) -> None:
    custom = settings(certs, username_headers=("X-Proxy-User", "X-Alt-User"))
    user = await RequestHeaderAuthenticator(custom).authenticate(request(certs.proxy, [("x-alt-user", "erin")]))
    assert user == UserInfo("erin")


async def test_through_the_factory_the_union_adds_system_authenticated(certs: Pki) -> None:
    union = build_authenticator(delegation=Delegation(request_header=settings(certs)))
    user = await union.authenticate(request(certs.proxy, [("x-remote-user", "alice"), ("x-remote-group", "dev")]))
    assert user == UserInfo("alice", groups=("dev", "system:authenticated"))
    admin = await union.authenticate(request(certs.proxy, PROXIED))
    assert admin.groups == ("system:masters", "system:authenticated")  # not added twice


async def test_through_the_factory_a_stranger_gets_401(certs: Pki) -> None:
    union = build_authenticator(delegation=Delegation(request_header=settings(certs)))
    with pytest.raises(Unauthorized) as info:
        await union.authenticate(request(certs.stranger, PROXIED))
    assert info.value.message == "Unauthorized"


def test_settings_refuse_a_ca_file_without_certificates() -> None:
    with pytest.raises(ValueError):
        RequestHeaderAuthenticator(RequestHeaderSettings("not a certificate"))
