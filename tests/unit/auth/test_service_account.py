"""Service-account tokens: the issuer's key and JWTs, and the authenticator that accepts them."""
from __future__ import annotations

import base64
import hashlib
import json
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kapi.api.errors import Unauthorized
from kapi.auth.factory import build_authenticator
from kapi.auth.interfaces import AuthRequest
from kapi.auth.service_account import (
    DEFAULT_ISSUER, ServiceAccountAuthenticator, TokenIssuer, load_or_create_key,
)
from kapi.auth.union import UnionAuthenticator
from kapi.auth.x509 import X509Authenticator

NOW = 1_700_000_000


def b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def parts(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    header, payload, _signature = token.split(".")
    return json.loads(b64decode(header)), json.loads(b64decode(payload))


def sa(name: str = "builder", namespace: str = "ci", uid: str | None = None, **meta: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "uid": uid or str(uuid.uuid4()), **meta}}


def obj(name: str, namespace: str = "ci", **meta: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": namespace, "uid": str(uuid.uuid4()), **meta}}


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sa") / "cert" / "sa.key"
    load_or_create_key(path)
    return path


class World:
    """The objects a token may name, read through the injected getters."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str, str], dict[str, Any]] = {}

    def add(self, plural: str, item: dict[str, Any]) -> dict[str, Any]:
        meta = item["metadata"]
        self.objects[("", plural, meta.get("namespace", ""), meta["name"])] = item
        return item

    async def get_service_account(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get(("", "serviceaccounts", namespace, name))

    async def get_object(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.objects.get((group, plural, namespace, name))


def make(key_path: Path, now: float = NOW,
         issuer: str = DEFAULT_ISSUER) -> tuple[TokenIssuer, World, ServiceAccountAuthenticator]:
    token_issuer = TokenIssuer.load_or_create(key_path, issuer, clock=lambda: now)
    world = World()
    return token_issuer, world, ServiceAccountAuthenticator(token_issuer, world.get_service_account, world.get_object)


def bearer(token: str, audiences: tuple[str, ...] = ()) -> AuthRequest:
    return AuthRequest(headers={"authorization": f"Bearer {token}"}, audiences=audiences)


# -- the key -----------------------------------------------------------------------------------------------
def test_key_is_created_private_in_a_new_directory_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "root" / "cert" / "sa.key"
    first = TokenIssuer.load_or_create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    assert key.key_size == 2048  # type: ignore[union-attr]
    assert TokenIssuer.load_or_create(path).key_id == first.key_id


def test_key_id_is_kubes_hash_of_the_public_key(key_path: Path) -> None:
    issuer, _, _ = make(key_path)
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert issuer.key_id == base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode()


def test_a_non_rsa_key_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ec.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(ValueError, match="RSA"):
        TokenIssuer.load_or_create(path)
    (tmp_path / "junk.key").write_text("not a key")
    with pytest.raises(ValueError, match="PEM"):
        TokenIssuer.load_or_create(tmp_path / "junk.key")


# -- JWTs ---------------------------------------------------------------------------------------------------
def test_claims_and_header_are_kubes(key_path: Path) -> None:
    issuer, _, _ = make(key_path)
    account = sa()
    pod, node = obj("runner-1"), obj("node-a", namespace="")
    claims = issuer.claims(account, ["https://kubernetes.default.svc.cluster.local"], 3600, pod=pod, node=node)
    token = issuer.sign(claims)
    header, payload = parts(token)
    assert header == {"alg": "RS256", "kid": issuer.key_id}
    assert list(payload) == sorted(payload)  # Go marshals the merged claims as a map: keys sorted
    assert payload == {
        "aud": ["https://kubernetes.default.svc.cluster.local"],
        "exp": NOW + 3600, "iat": NOW, "nbf": NOW,
        "iss": DEFAULT_ISSUER,
        "jti": payload["jti"],
        "kubernetes.io": {
            "namespace": "ci",
            "node": {"name": "node-a", "uid": node["metadata"]["uid"]},
            "pod": {"name": "runner-1", "uid": pod["metadata"]["uid"]},
            "serviceaccount": {"name": "builder", "uid": account["metadata"]["uid"]},
        },
        "sub": "system:serviceaccount:ci:builder",
    }
    assert str(uuid.UUID(payload["jti"])) == payload["jti"]
    assert issuer.verify(token) == payload
    assert issuer.verify(token.encode()) == payload


def test_verify_accepts_only_this_issuers_tokens_signed_with_this_key(key_path: Path, tmp_path: Path) -> None:
    issuer, _, _ = make(key_path)
    claims = issuer.claims(sa(), ["api"], 600)
    token = issuer.sign(claims)
    other_key = TokenIssuer.load_or_create(tmp_path / "other.key")
    other_issuer = TokenIssuer.load_or_create(key_path, "https://elsewhere.example")
    header, payload, signature = token.split(".")
    assert other_key.verify(token) is None
    assert other_issuer.verify(token) is None
    assert issuer.verify(other_key.sign(claims)) is None
    forged = base64.urlsafe_b64encode(json.dumps({**claims, "sub": "system:serviceaccount:ci:admin"}).encode())
    assert issuer.verify(f"{header}.{forged.decode().rstrip('=')}.{signature}") is None
    for junk in ("", "abc", "a.b.c", "eyJ.eyJ.x", f"{header}.{payload}", b"\xff\xfe", "eyJhbGciOiJub25lIn0.e30."):
        assert issuer.verify(junk) is None


def test_jwks_and_openid_configuration(key_path: Path) -> None:
    issuer, _, _ = make(key_path)
    [jwk] = issuer.jwks()["keys"]
    assert {k: jwk[k] for k in ("use", "kty", "kid", "alg", "e")} == {
        "use": "sig", "kty": "RSA", "kid": issuer.key_id, "alg": "RS256", "e": "AQAB"}
    public = serialization.load_pem_private_key(key_path.read_bytes(), password=None).public_key()
    assert int.from_bytes(b64decode(jwk["n"]), "big") == public.public_numbers().n  # type: ignore[union-attr]
    assert issuer.openid_configuration("https://127.0.0.1:6443/openid/v1/jwks") == {
        "issuer": DEFAULT_ISSUER,
        "jwks_uri": "https://127.0.0.1:6443/openid/v1/jwks",
        "response_types_supported": ["id_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


# -- the authenticator ------------------------------------------------------------------------------------
async def test_a_good_token_is_the_service_account_user(key_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    claims = issuer.claims(account, [DEFAULT_ISSUER], 3600)
    user = await authn.authenticate(bearer(issuer.sign(claims)))
    assert user is not None
    assert user.name == "system:serviceaccount:ci:builder"
    assert user.uid == account["metadata"]["uid"]
    assert user.groups == ("system:serviceaccounts", "system:serviceaccounts:ci")
    assert dict(user.extra) == {"authentication.kubernetes.io/credential-id": (f"JTI={claims['jti']}",)}
    # through the union, as the server sees it: system:authenticated is added
    union = build_authenticator(service_accounts=authn)
    user = await union.authenticate(bearer(issuer.sign(claims)))
    assert user.groups[-1] == "system:authenticated"


async def test_not_mine_is_none(key_path: Path, tmp_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    other = TokenIssuer.load_or_create(tmp_path / "other.key")
    assert await authn.authenticate(AuthRequest()) is None
    assert await authn.authenticate(bearer("static-token")) is None
    assert await authn.authenticate(bearer(other.sign(other.claims(account, [DEFAULT_ISSUER], 3600)))) is None
    elsewhere = TokenIssuer.load_or_create(key_path, "https://elsewhere.example")
    assert await authn.authenticate(bearer(elsewhere.sign(elsewhere.claims(account, [DEFAULT_ISSUER], 3600)))) is None


@pytest.mark.parametrize(("offset", "reason"), [
    (3600 + 61, "service account token has expired"),
    (-61, "service account token is not valid yet"),
])
async def test_out_of_date_tokens_are_unauthorized(key_path: Path, offset: int, reason: str) -> None:
    issuer, world, _ = make(key_path)
    account = world.add("serviceaccounts", sa())
    token = issuer.sign(issuer.claims(account, [DEFAULT_ISSUER], 3600))
    later_world_authn = ServiceAccountAuthenticator(TokenIssuer.load_or_create(key_path, clock=lambda: NOW + offset),
                                                    world.get_service_account, world.get_object)
    with pytest.raises(Unauthorized, match=reason):
        await later_world_authn.authenticate(bearer(token))
    # within a minute's leeway the token is still good
    leeway = ServiceAccountAuthenticator(
        TokenIssuer.load_or_create(key_path, clock=lambda: NOW + offset - (1 if offset > 0 else -1) * 2),
        world.get_service_account, world.get_object)
    assert await leeway.authenticate(bearer(token)) is not None


async def test_audiences(key_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    vault = issuer.sign(issuer.claims(account, ["vault"], 3600))
    with pytest.raises(Unauthorized, match=r'token audiences \["vault"\] is invalid for the target audiences '
                                           r'\["https://kubernetes.default.svc.cluster.local"\]'):
        await authn.authenticate(bearer(vault))
    assert await authn.authenticate(bearer(vault, audiences=("vault",))) is not None
    claims = issuer.claims(account, ["vault", DEFAULT_ISSUER], 3600)
    user, matched = await authn.validate(claims, ("vault", "other"))
    assert matched == ("vault",) and user.name == "system:serviceaccount:ci:builder"


async def test_a_deleted_or_recreated_service_account_invalidates_its_tokens(key_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    token = issuer.sign(issuer.claims(account, [DEFAULT_ISSUER], 3600))
    world.objects.clear()
    with pytest.raises(Unauthorized, match='serviceaccount "builder" not found'):
        await authn.authenticate(bearer(token))
    world.add("serviceaccounts", sa())  # same name, new uid
    with pytest.raises(Unauthorized, match=r"service account UID \(.+\) does not match claim"):
        await authn.authenticate(bearer(token))
    world.add("serviceaccounts", {**account, "metadata": {**account["metadata"],
                                                          "deletionTimestamp": "2023-01-01T00:00:00Z"}})
    with pytest.raises(Unauthorized, match="service account ci/builder has been deleted"):
        await authn.authenticate(bearer(token))


async def test_bound_objects_must_still_exist(key_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    pod = world.add("pods", obj("runner-1"))
    secret = world.add("secrets", obj("creds"))
    node = world.add("nodes", obj("node-a", namespace=""))
    pod_token = issuer.sign(issuer.claims(account, [DEFAULT_ISSUER], 3600, pod=pod, node={"metadata": {"name": "n"}}))
    user = await authn.authenticate(bearer(pod_token))
    assert user is not None and dict(user.extra) == {
        "authentication.kubernetes.io/pod-name": ("runner-1",),
        "authentication.kubernetes.io/pod-uid": (pod["metadata"]["uid"],),
        "authentication.kubernetes.io/credential-id": (user.extra["authentication.kubernetes.io/credential-id"][0],),
        "authentication.kubernetes.io/node-name": ("n",),
    }
    secret_token = issuer.sign(issuer.claims(account, [DEFAULT_ISSUER], 3600, secret=secret))
    node_token = issuer.sign(issuer.claims(account, [DEFAULT_ISSUER], 3600, node=node))
    user = await authn.authenticate(bearer(node_token))
    assert user is not None and user.extra["authentication.kubernetes.io/node-uid"] == (node["metadata"]["uid"],)
    assert await authn.authenticate(bearer(secret_token)) is not None
    world.add("pods", obj("runner-1"))  # recreated: another uid
    with pytest.raises(Unauthorized, match=r"pod UID \(.+\) does not match service account pod ref claim"):
        await authn.authenticate(bearer(pod_token))
    for plural, token in (("pods", pod_token), ("secrets", secret_token), ("nodes", node_token)):
        world.objects = {k: v for k, v in world.objects.items() if k[1] != plural}
        with pytest.raises(Unauthorized, match="service account token has been invalidated"):
            await authn.authenticate(bearer(token))


def test_factory_puts_service_accounts_after_bearer_tokens_and_before_x509(key_path: Path, tmp_path: Path) -> None:
    _, _, authn = make(key_path)
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,u,1\n")
    from kapi_certs.bundle import ensure_certs
    ensure_certs(tmp_path / "cert")
    union = build_authenticator(token_auth_file=tokens, service_accounts=authn,
                                client_ca_file=tmp_path / "cert" / "ca.crt", allow_localhost=True)
    assert isinstance(union, UnionAuthenticator)
    names = [type(a).__name__ for a in union.authenticators]
    assert names == ["BearerTokenAuthenticator", "ServiceAccountAuthenticator", "X509Authenticator",
                     "LocalhostAuthenticator"]
    assert isinstance(union.authenticators[2], X509Authenticator)
    assert [type(a).__name__ for a in build_authenticator().authenticators] == []


async def test_union_review_gives_the_reasons(key_path: Path) -> None:
    issuer, world, authn = make(key_path)
    account = world.add("serviceaccounts", sa())
    union = build_authenticator(kubectl_token="kubectl-secret", service_accounts=authn)
    token = issuer.sign(issuer.claims(account, ["vault"], 3600))
    user, reasons = await union.review(bearer(token))
    assert user is None and reasons[-1].startswith('token audiences ["vault"] is invalid')
    user, reasons = await union.review(bearer("kubectl-secret"))
    assert user is not None and user.name == "kubectl" and reasons == ()
