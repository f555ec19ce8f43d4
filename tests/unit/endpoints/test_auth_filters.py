"""Authentication and authorization in the filter chain, and the review endpoints, over in-process HTTP."""
from __future__ import annotations

import contextlib
import stat
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from kapi_certs.layout import CertPaths
from kapi.api.requestinfo import RequestInfo, parse_request_info
from kapi.api.user import UserInfo
from kapi.app import create_app
from kapi.auth.factory import build_authenticator
from kapi.auth.interfaces import Decision
from kapi.config import ServerConfig
from kapi.endpoints.filters import forbidden
from kapi.endpoints.router import make_api_handler

STATIC_TOKEN = "static-s3cret-token"
UNAUTHORIZED = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": "Unauthorized", "reason": "Unauthorized", "code": 401}
PROTOBUF = "application/vnd.kubernetes.protobuf"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
REMOTE = ("10.0.0.7", 40000)
LOCAL = ("127.0.0.1", 40000)

# Recorded from kubectl v1.32.4: `auth can-i get deployments.apps -n default` (tests/unit/api/test_protobuf_decode.py).
KUBECTL_CAN_I = bytes.fromhex(
    "6b3873000a320a17617574686f72697a6174696f6e2e6b38732e696f2f7631121753656c665375626a"
    "65637441636365737352657669657712480a100a0012001a0022002a00320038004200122a0a280a07"
    "64656661756c7412036765741a0022002a106465706c6f796d656e74732e6170707332003a001a0808"
    "0012001a0020001a002200"
)
# `kubectl auth whoami`'s body: k8s\0 + Unknown{TypeMeta{authentication.k8s.io/v1, SelfSubjectReview}, raw{metadata{}}}
def _field(number: int, data: bytes) -> bytes:
    assert len(data) < 128
    return bytes([number << 3 | 2, len(data)]) + data


KUBECTL_WHOAMI = b"k8s\x00" + _field(1, _field(1, b"authentication.k8s.io/v1") + _field(2, b"SelfSubjectReview")) \
    + _field(2, _field(1, b"") + _field(2, b"")) + _field(3, b"") + _field(4, b"")


def config(tmp_path: Path, **kw: Any) -> ServerConfig:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{STATIC_TOKEN},alice,1001,"developers,viewers"\n')
    # Authentication is what these tests look at: every authenticated user may do anything (RBAC has its own tests).
    base: dict[str, Any] = dict(backend="memory", file_rootpath=tmp_path / "root", token_auth_file=tokens,
                                authorization_modes=("AlwaysAllow",))
    base.update(kw)
    return ServerConfig(**base)


@contextlib.asynccontextmanager
async def serve(cfg: ServerConfig, client: tuple[str, int] = REMOTE, wrap: Any = None) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(cfg)
    asgi = wrap(app) if wrap else app
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=asgi, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def kubectl_token(cfg: ServerConfig) -> str:
    return cfg.kubectl_token_path.read_text().strip()


async def test_no_or_bad_credentials_are_kubes_401(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as http:
        for headers in ({}, auth("wrong"), auth(STATIC_TOKEN + "x"), {"Authorization": "Basic YTpi"},
                        {"Authorization": "Bearer"}):
            resp = await http.get("/api/v1/namespaces", headers=headers)
            assert resp.status_code == 401, headers
            assert resp.json() == UNAUTHORIZED
            assert resp.headers["content-type"] == "application/json"
            assert "www-authenticate" not in resp.headers  # kube sends none
        for path in ("/apis", "/api", "/openapi/v3", "/nope", SSR_PATH):
            assert (await http.get(path)).status_code == 401, path


async def test_good_static_token_and_kubectl_token(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        assert (await http.get("/api/v1/namespaces", headers=auth(STATIC_TOKEN))).status_code == 200
        assert (await http.get("/api/v1/namespaces", headers=auth(kubectl_token(cfg)))).status_code == 200
        assert (await http.get("/apis", headers={"Authorization": f"bearer {STATIC_TOKEN}"})).status_code == 200


async def test_kubectl_token_file_is_private_and_survives_restarts(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg):
        token = kubectl_token(cfg)
    assert stat.S_IMODE(cfg.kubectl_token_path.stat().st_mode) == 0o600
    async with serve(cfg) as http:
        assert kubectl_token(cfg) == token
        assert (await http.get("/api", headers=auth(token))).status_code == 200
    ephemeral = config(tmp_path, kubectl_ephemeral_token=True)
    async with serve(ephemeral) as http:
        assert kubectl_token(ephemeral) != token
        assert (await http.get("/api", headers=auth(token))).status_code == 401
        assert (await http.get("/api", headers=auth(kubectl_token(ephemeral)))).status_code == 200


async def test_kubectl_disabled_means_no_token_at_all(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg):
        token = kubectl_token(cfg)
    async with serve(config(tmp_path, kubectl_disabled=True)) as http:
        assert not cfg.kubectl_token_path.exists()
        assert (await http.get("/api", headers=auth(token))).status_code == 401


@pytest.mark.parametrize("path", ["/healthz", "/livez", "/readyz", "/healthz/ping", "/readyz/", "/version",
                                  "/version/"])
async def test_public_paths_need_no_credentials(tmp_path: Path, path: str) -> None:
    async with serve(config(tmp_path)) as http:
        assert (await http.get(path)).status_code == 200
        assert (await http.get(path, headers=auth("wrong"))).status_code == 200


async def test_localhost_allowance(tmp_path: Path) -> None:
    async with serve(config(tmp_path, authn_allow_localhost=True), client=LOCAL) as http:
        assert (await http.get("/api/v1/namespaces")).status_code == 200
        assert (await http.get("/api/v1/namespaces", headers=auth("wrong"))).status_code == 401
        whoami = await http.post(SSR_PATH, json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
        assert whoami.json()["status"]["userInfo"] == {
            "username": "kapi:localhost-admin", "groups": ["system:masters", "system:authenticated"]}
    async with serve(config(tmp_path, authn_allow_localhost=True), client=REMOTE) as http:
        assert (await http.get("/api/v1/namespaces")).status_code == 401
    async with serve(config(tmp_path, authn_allow_localhost=False), client=LOCAL) as http:
        assert (await http.get("/api/v1/namespaces")).status_code == 401
    async with serve(config(tmp_path, authn_allow_localhost=True), client=("::1", 5)) as http:
        assert (await http.get("/api/v1/namespaces")).status_code == 200


async def test_whoami_shows_user_uid_and_groups(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as http:
        resp = await http.post(SSR_PATH, headers=auth(STATIC_TOKEN),
                               json={"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["kind"] == "SelfSubjectReview" and body["apiVersion"] == "authentication.k8s.io/v1"
    assert body["status"] == {"userInfo": {"username": "alice", "uid": "1001",
                                           "groups": ["developers", "viewers", "system:authenticated"]}}
    created = datetime.strptime(body["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")
    assert abs(created.replace(tzinfo=timezone.utc) - datetime.now(timezone.utc)) < timedelta(minutes=1)


async def test_whoami_as_kubectl_sends_it_in_protobuf(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        resp = await http.post(SSR_PATH, content=KUBECTL_WHOAMI, headers={
            **auth(kubectl_token(cfg)), "Content-Type": PROTOBUF, "Accept": f"{PROTOBUF},application/json"})
    assert resp.status_code == 201 and resp.headers["content-type"] == "application/json"
    assert resp.json()["status"]["userInfo"] == {"username": "kubectl",
                                                 "groups": ["system:masters", "system:authenticated"]}


async def test_can_i_answers_from_the_authorizer(tmp_path: Path) -> None:
    spec = {"resourceAttributes": {"namespace": "default", "verb": "create", "resource": "pizzas",
                                   "group": "restaurant.wukong.com"}}
    async with serve(config(tmp_path)) as http:
        resp = await http.post(SSAR_PATH, headers=auth(STATIC_TOKEN), json={
            "apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview", "spec": spec})
        assert resp.status_code == 201
        assert resp.json() == {"kind": "SelfSubjectAccessReview", "apiVersion": "authorization.k8s.io/v1",
                               "metadata": {"creationTimestamp": None}, "spec": spec, "status": {"allowed": True}}
        non_resource = await http.post(SSAR_PATH, headers=auth(STATIC_TOKEN), json={
            "spec": {"nonResourceAttributes": {"path": "/healthz", "verb": "get"}}})
        assert non_resource.status_code == 201 and non_resource.json()["status"] == {"allowed": True}


async def test_can_i_as_kubectl_sends_it_in_protobuf(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        resp = await http.post(SSAR_PATH, content=KUBECTL_CAN_I, headers={
            **auth(kubectl_token(cfg)), "Content-Type": PROTOBUF, "Accept": f"{PROTOBUF},application/json"})
    assert resp.status_code == 201
    body = resp.json()
    assert body["status"] == {"allowed": True}
    assert body["spec"] == {"resourceAttributes": {"namespace": "default", "verb": "get",
                                                   "resource": "deployments.apps"}}


async def test_review_errors(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as http:
        h = auth(STATIC_TOKEN)
        empty = await http.post(SSAR_PATH, headers=h, json={"kind": "SelfSubjectAccessReview", "spec": {}})
        assert empty.status_code == 422
        assert empty.json()["message"] == (  # kube's decoded internal object has no kind; a nil pointer is "null"
            '.authorization.k8s.io "" is invalid: spec.resourceAttributes: '
            'Invalid value: "null": exactly one of nonResourceAttributes or resourceAttributes must be specified')
        both = await http.post(SSAR_PATH, headers=h, json={"spec": {
            "resourceAttributes": {"verb": "get"}, "nonResourceAttributes": {"verb": "get", "path": "/"}}})
        assert both.status_code == 422 and "cannot be specified in combination" in both.json()["message"]
        assert (await http.post(SSAR_PATH, headers=h, json={"kind": "Namespace"})).status_code == 400
        assert (await http.post(SSAR_PATH, headers=h, content=b"[1]")).status_code == 400
        assert (await http.get(SSAR_PATH, headers=h)).status_code == 405
        assert (await http.post(SSAR_PATH + "/x", headers=h, json={})).status_code == 404
        assert (await http.post("/apis/authorization.k8s.io/v1/namespaces/default/selfsubjectaccessreviews",
                                headers=h, json={})).status_code == 404
        assert (await http.post("/apis/authentication.k8s.io/v1beta1/selfsubjectreviews",
                                headers=h, json={})).status_code == 404


async def test_discovery_lists_the_review_groups(tmp_path: Path) -> None:
    async with serve(config(tmp_path)) as http:
        h = auth(STATIC_TOKEN)
        groups = {g["name"]: g for g in (await http.get("/apis", headers=h)).json()["groups"]}
        assert groups["authorization.k8s.io"]["preferredVersion"] == {
            "groupVersion": "authorization.k8s.io/v1", "version": "v1"}
        assert "authentication.k8s.io" in groups
        resources = (await http.get("/apis/authorization.k8s.io/v1", headers=h)).json()
        assert resources["groupVersion"] == "authorization.k8s.io/v1"
        assert {"name": "selfsubjectaccessreviews", "singularName": "selfsubjectaccessreview", "namespaced": False,
                "kind": "SelfSubjectAccessReview", "verbs": ["create"]} in resources["resources"]
        aggregated = (await http.get("/apis", headers={**h, "Accept": (
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json")})).json()
        by_name = {item["metadata"]["name"]: item for item in aggregated["items"]}
        ssr = by_name["authentication.k8s.io"]["versions"][0]["resources"]
        assert ssr == [{"resource": "selfsubjectreviews", "scope": "Cluster", "singularResource": "selfsubjectreview",
                        "verbs": ["create"], "responseKind": {"group": "", "version": "",
                                                              "kind": "SelfSubjectReview"}},
                       {"resource": "tokenreviews", "scope": "Cluster", "singularResource": "tokenreview",
                        "verbs": ["create"], "responseKind": {"group": "", "version": "",
                                                              "kind": "TokenReview"}}]
        openapi = (await http.get("/openapi/v3/apis/authorization.k8s.io/v1", headers=h)).json()
        ops = openapi["paths"][SSAR_PATH]
        assert list(ops) == ["post"]
        assert "io.k8s.api.authorization.v1.SelfSubjectAccessReview" in openapi["components"]["schemas"]
        assert not any(name.endswith("SelfSubjectAccessReviewList") for name in openapi["components"]["schemas"])
        # no store behind a review: it cannot be listed
        assert (await http.get(SSR_PATH, headers=h)).status_code == 405


# --- client certificates through the scope the HTTPS layer fills ----------------------------------

def _cert(subject: str, orgs: tuple[str, ...], issuer: x509.Name | None, key: ec.EllipticCurvePrivateKey,
          signer: ec.EllipticCurvePrivateKey, ca: bool, days: int = 30) -> x509.Certificate:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    name = x509.Name(attrs + [x509.NameAttribute(NameOID.COMMON_NAME, subject)])
    now = datetime.now(timezone.utc)
    return (x509.CertificateBuilder().subject_name(name).issuer_name(issuer or name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(signer, hashes.SHA256()))


def with_peer_cert(der: bytes) -> Any:
    def wrap(app: Any) -> Any:
        async def asgi(scope: dict, receive: Any, send: Any) -> None:  # type: ignore[type-arg]
            if scope["type"] == "http":
                scope = {**scope, "scheme": "https", "extensions": {"tls": {"client_cert_chain": [der]}}}
            await app(scope, receive, send)
        return asgi
    return wrap


async def test_client_certificate_from_kapis_ca(tmp_path: Path) -> None:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = _cert("kapi-ca", (), None, ca_key, ca_key, ca=True)
    paths = CertPaths(tmp_path / "root" / "cert")
    paths.dir.mkdir(parents=True)
    paths.ca_crt.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert("cert-user", ("system:masters",), ca.subject, leaf_key, ca_key, ca=False)
    der = leaf.public_bytes(serialization.Encoding.DER)
    async with serve(config(tmp_path), wrap=with_peer_cert(der)) as http:
        resp = await http.post(SSR_PATH, json={"kind": "SelfSubjectReview"})
        assert resp.status_code == 201
        assert resp.json()["status"]["userInfo"] == {"username": "cert-user",
                                                     "groups": ["system:masters", "system:authenticated"]}
    other_key = ec.generate_private_key(ec.SECP256R1())
    forged = _cert("cert-user", ("system:masters",), ca.subject, leaf_key, other_key, ca=False)
    async with serve(config(tmp_path, authn_allow_localhost=True), client=LOCAL,
                     wrap=with_peer_cert(forged.public_bytes(serialization.Encoding.DER))) as http:
        resp = await http.get("/api/v1/namespaces")
        assert resp.status_code == 401 and resp.json() == UNAUTHORIZED
        # a valid token still wins over a bad certificate, as in kube's union
        assert (await http.get("/api/v1/namespaces", headers=auth(STATIC_TOKEN))).status_code == 200


async def test_tokens_are_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("DEBUG")
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        await http.get("/api", headers=auth(STATIC_TOKEN))
        await http.get("/api", headers=auth("guessed-s3cret"))
        await http.get("/api", headers=auth(kubectl_token(cfg)))
    assert STATIC_TOKEN not in caplog.text and "guessed-s3cret" not in caplog.text
    assert kubectl_token(cfg) not in caplog.text


async def test_a_malformed_token_file_fails_app_creation_naming_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("ok,u,1\ns3cret-two-columns,u\n")
    with pytest.raises(ValueError, match="line 2") as info:
        create_app(config(tmp_path, token_auth_file=bad))
    assert "s3cret" not in str(info.value)


# --- authorization -----------------------------------------------------------------------------------

class DenyWrites:
    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        if info.verb in ("get", "list") or not info.is_resource_request:
            return Decision(True)
        return Decision(False, "writes are off")


async def test_a_denying_authorizer_gives_kubes_403_and_drives_can_i(tmp_path: Path) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route

    app = create_app(config(tmp_path))
    authn = build_authenticator(kubectl_token="tok")
    handler = make_api_handler(app.state.api, authn, DenyWrites())
    denying = Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST", "DELETE"])])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=denying), base_url="http://kapi") as http:
            h = auth("tok")
            assert (await http.get("/api/v1/namespaces", headers=h)).status_code == 200
            resp = await http.delete("/api/v1/namespaces/default", headers=h)
            assert resp.status_code == 403
            assert resp.json() == {
                "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": 'namespaces "default" is forbidden: User "kubectl" cannot delete resource "namespaces" '
                           'in API group "" in the namespace "default": writes are off',  # as kube words it
                "reason": "Forbidden", "details": {"name": "default", "kind": "namespaces"}, "code": 403,
            }
            can_i = await http.post(SSAR_PATH, headers=h, json={"spec": {"resourceAttributes": {
                "verb": "create", "resource": "pizzas", "group": "restaurant.wukong.com", "namespace": "x"}}})
            assert can_i.status_code == 403  # creating a review is itself a write this authorizer refuses


def test_forbidden_messages() -> None:
    user = UserInfo("bob")
    ns = parse_request_info("GET", "/apis/restaurant.wukong.com/v1alpha1/namespaces/team/pizzas")
    assert forbidden(user, ns).message == (
        'pizzas.restaurant.wukong.com is forbidden: User "bob" cannot list resource "pizzas" '
        'in API group "restaurant.wukong.com" in the namespace "team"')
    status = parse_request_info("PUT", "/api/v1/namespaces/team/status")
    assert 'cannot update resource "namespaces/status"' in forbidden(user, status).message
    assert forbidden(user, parse_request_info("GET", "/metrics")).message == (
        'forbidden: User "bob" cannot get path "/metrics"')
