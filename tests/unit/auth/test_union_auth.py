"""The union authenticator, bearer tokens, the allow-all authorizer and the factory."""
from __future__ import annotations

from pathlib import Path

import pytest

from kapi.api.errors import Unauthorized
from kapi.api.requestinfo import parse_request_info
from kapi.api.user import ANONYMOUS, UserInfo, authenticated
from kapi.auth.bearer import BearerTokenAuthenticator
from kapi.auth.factory import build_authenticator
from kapi.auth.interfaces import AuthRequest
from kapi.auth.kubectl_token import KubectlTokenAuthenticator
from kapi.auth.localhost import LocalhostAuthenticator
from kapi.auth.token_file import TokenFileAuthenticator, parse_token_csv
from kapi.auth.modes import AlwaysAllowAuthorizer
from kapi.auth.union import UnionAuthenticator
from kapi.auth.x509 import X509Authenticator


class Fixed:
    def __init__(self, result: UserInfo | None | Exception) -> None:
        self.result, self.calls = result, 0

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        self.calls += 1
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


def bearer(token: str) -> AuthRequest:
    return AuthRequest(headers={"authorization": f"Bearer {token}"}, client_host="127.0.0.1")


async def test_first_match_wins_and_adds_system_authenticated() -> None:
    first, second = Fixed(UserInfo("a", groups=("g",))), Fixed(UserInfo("b"))
    user = await UnionAuthenticator([Fixed(None), first, second]).authenticate(AuthRequest())
    assert user == UserInfo("a", groups=("g", "system:authenticated"))
    assert second.calls == 0


async def test_a_failing_part_does_not_stop_the_others() -> None:
    later = Fixed(UserInfo("b"))
    user = await UnionAuthenticator([Fixed(Unauthorized("bad cert")), later]).authenticate(AuthRequest())
    assert user.name == "b"


@pytest.mark.parametrize("parts", [[], [Fixed(None)], [Fixed(Unauthorized("expired certificate")), Fixed(None)]])
async def test_nobody_recognises_you_is_one_plain_401(parts: list[Fixed]) -> None:
    with pytest.raises(Unauthorized) as info:
        await UnionAuthenticator(parts).authenticate(AuthRequest())
    assert info.value.to_status() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": "Unauthorized", "reason": "Unauthorized", "code": 401,
    }


def test_authenticated_group_is_added_once_and_never_to_anonymous() -> None:
    user = UserInfo("x", groups=("system:authenticated",))
    assert authenticated(user) == user
    assert authenticated(ANONYMOUS) == ANONYMOUS


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", b"abc"), ("bearer abc", b"abc"), ("BEARER abc extra", b"abc"), ("  Bearer abc  ", b"abc"),
     ("Bearer", None), ("Bearer  abc", None), ("Basic abc", None), ("", None), ("abc", None)],
)
def test_bearer_token_parsing_follows_kube(header: str, token: bytes | None) -> None:
    assert AuthRequest(headers={"authorization": header}).bearer_token() == token


async def test_bearer_tries_every_token_source_and_refuses_unknown_tokens() -> None:
    auth = BearerTokenAuthenticator([
        TokenFileAuthenticator(parse_token_csv('static,alice,1,"dev"\n')),
        KubectlTokenAuthenticator("kubectl-token"),
    ])
    assert (await auth.authenticate(bearer("static"))) == UserInfo("alice", uid="1", groups=("dev",))
    assert (await auth.authenticate(bearer("kubectl-token"))).name == "kubectl"  # type: ignore[union-attr]
    assert await auth.authenticate(AuthRequest()) is None
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(bearer("nope"))
    assert info.value.message == "Unauthorized"


async def test_wrong_token_from_loopback_is_still_401() -> None:
    union = UnionAuthenticator([BearerTokenAuthenticator([KubectlTokenAuthenticator("right")]),
                                LocalhostAuthenticator()])
    with pytest.raises(Unauthorized):
        await union.authenticate(bearer("wrong"))
    assert (await union.authenticate(AuthRequest(client_host="127.0.0.1"))).name == "kapi:localhost-admin"


async def test_always_allow() -> None:
    decision = await AlwaysAllowAuthorizer().authorize(ANONYMOUS, parse_request_info("DELETE", "/api/v1/namespaces/x"))
    assert decision.allowed and decision.reason == ""


def test_factory_builds_only_what_is_configured(tmp_path: Path) -> None:
    assert build_authenticator().authenticators == ()
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t-s3cret,u,1\n")
    union = build_authenticator(token_auth_file=tokens, kubectl_token="k-s3cret", allow_localhost=True)
    kinds = [type(a) for a in union.authenticators]
    assert kinds == [BearerTokenAuthenticator, LocalhostAuthenticator]
    assert "s3cret" not in repr(union)


def test_factory_with_a_ca_file(tmp_path: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime as dt

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ca")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + dt.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    ca = tmp_path / "ca.crt"
    ca.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    union = build_authenticator(client_ca_file=ca)
    assert [type(a) for a in union.authenticators] == [X509Authenticator]


def test_factory_reports_a_bad_token_file(tmp_path: Path) -> None:
    bad = tmp_path / "tokens.csv"
    bad.write_text("only,two\n")
    with pytest.raises(ValueError, match="line 1"):
        build_authenticator(token_auth_file=bad)
