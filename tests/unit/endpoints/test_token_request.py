"""`serviceaccounts/token`, TokenReview and the issuer's OIDC discovery, over in-process HTTP."""
from __future__ import annotations

import base64
import contextlib
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from kapi.app import create_app
from kapi.auth.service_account import TokenIssuer
from kapi.config import ServerConfig

ADMIN = "admin-s3cret-token"
ISSUER = "https://kubernetes.default.svc.cluster.local"
SA_PATH = "/api/v1/namespaces/default/serviceaccounts"
TOKEN_PATH = SA_PATH + "/default/token"
SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
TR_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
TOKEN_REQUEST = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest"}
SSR = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
H = {"Authorization": f"Bearer {ADMIN}"}


def config(tmp_path: Path, **kw: Any) -> ServerConfig:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text(f'{ADMIN},alice,1001,"developers"\n')
    # Tokens are what these tests look at; what their holders may do is RBAC's business (its own tests).
    return ServerConfig(**{"backend": "memory", "file_rootpath": tmp_path / "root", "token_auth_file": tokens,
                           "load_examples": False, "authorization_modes": ("AlwaysAllow",), **kw})


@contextlib.asynccontextmanager
async def serve(cfg: ServerConfig) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(cfg)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(config(tmp_path)) as client:
        yield client


def claims_of(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    def decode(part: str) -> dict[str, Any]:
        return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    header, payload, _ = token.split(".")
    return decode(header), decode(payload)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def request_token(http: httpx.AsyncClient, spec: dict[str, Any] | None = None, path: str = TOKEN_PATH,
                        expect: int = 201) -> dict[str, Any]:
    resp = await http.post(path, headers=H, json={**TOKEN_REQUEST, "spec": spec or {}})
    assert resp.status_code == expect, resp.text
    return resp.json()  # type: ignore[no-any-return]


async def whoami(http: httpx.AsyncClient, token: str) -> httpx.Response:
    return await http.post(SSR_PATH, headers=bearer(token), json=SSR)


async def token_review(http: httpx.AsyncClient, token: str, audiences: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"token": token}
    if audiences is not None:
        spec["audiences"] = audiences
    resp = await http.post(TR_PATH, headers=H, json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                     "spec": spec})
    assert resp.status_code == 201, resp.text
    return resp.json()  # type: ignore[no-any-return]


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


async def test_a_token_is_issued_with_kubes_claims_and_an_hour_by_default(http: httpx.AsyncClient) -> None:
    account = (await http.get(SA_PATH + "/default", headers=H)).json()  # made with the namespace
    before = int(time.time())
    answer = await request_token(http)
    assert answer["kind"] == "TokenRequest" and answer["apiVersion"] == "authentication.k8s.io/v1"
    assert answer["metadata"]["name"] == "default" and answer["metadata"]["namespace"] == "default"
    assert before <= seconds(answer["metadata"]["creationTimestamp"]) <= time.time()
    assert answer["spec"] == {"audiences": [ISSUER], "expirationSeconds": 3600}
    header, claims = claims_of(answer["status"]["token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["iss"] == ISSUER and claims["aud"] == [ISSUER]
    assert claims["sub"] == "system:serviceaccount:default:default"
    assert claims["exp"] - claims["iat"] == 3600 and claims["nbf"] == claims["iat"]
    assert seconds(answer["status"]["expirationTimestamp"]) == claims["exp"]
    assert claims["kubernetes.io"] == {"namespace": "default", "serviceaccount": {
        "name": "default", "uid": account["metadata"]["uid"]}}
    assert claims["jti"]


async def test_the_token_is_a_bearer_credential_for_the_service_account(http: httpx.AsyncClient) -> None:
    account = (await http.get(SA_PATH + "/default", headers=H)).json()
    token = (await request_token(http, {"expirationSeconds": 600}))["status"]["token"]
    resp = await whoami(http, token)
    assert resp.status_code == 201
    user = resp.json()["status"]["userInfo"]
    assert user == {
        "username": "system:serviceaccount:default:default",
        "uid": account["metadata"]["uid"],
        "groups": ["system:serviceaccounts", "system:serviceaccounts:default", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/credential-id": [f"JTI={claims_of(token)[1]['jti']}"]},
    }
    assert (await http.get("/api/v1/namespaces", headers=bearer(token))).status_code == 200


async def test_deleting_the_service_account_revokes_its_tokens(http: httpx.AsyncClient) -> None:
    assert (await http.post(SA_PATH, headers=H, json={"apiVersion": "v1", "kind": "ServiceAccount",
                                                     "metadata": {"name": "builder"}})).status_code == 201
    token = (await request_token(http, path=SA_PATH + "/builder/token"))["status"]["token"]
    assert (await whoami(http, token)).status_code == 201
    assert (await http.delete(SA_PATH + "/builder", headers=H)).status_code == 200
    resp = await whoami(http, token)
    assert resp.status_code == 401 and resp.json()["message"] == "Unauthorized"
    # recreated under the same name: another uid, the old token stays dead
    await http.post(SA_PATH, headers=H, json={"apiVersion": "v1", "kind": "ServiceAccount",
                                              "metadata": {"name": "builder"}})
    assert (await whoami(http, token)).status_code == 401


async def test_an_expired_token_is_401(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    async with serve(cfg) as http:
        account = (await http.get(SA_PATH + "/default", headers=H)).json()
        past = TokenIssuer.load_or_create(cfg.service_account_key_path, clock=lambda: time.time() - 7200)
        token = past.sign(past.claims(account, [ISSUER], 3600))
        assert (await whoami(http, token)).status_code == 401
        review = await token_review(http, token)
        assert review["status"] == {"user": {}, "error": "service account token has expired"}
        fresh = TokenIssuer.load_or_create(cfg.service_account_key_path)
        assert (await whoami(http, fresh.sign(fresh.claims(account, [ISSUER], 3600)))).status_code == 201


async def test_a_token_for_another_audience_is_not_an_api_credential(http: httpx.AsyncClient) -> None:
    answer = await request_token(http, {"audiences": ["vault"]})
    assert answer["spec"]["audiences"] == ["vault"]
    token = answer["status"]["token"]
    assert claims_of(token)[1]["aud"] == ["vault"]
    assert (await whoami(http, token)).status_code == 401
    review = await token_review(http, token)
    assert "authenticated" not in review["status"]
    assert review["status"]["error"] == (
        'token audiences ["vault"] is invalid for the target audiences '
        '["https://kubernetes.default.svc.cluster.local"]')
    review = await token_review(http, token, ["vault", "other"])
    assert review["status"]["authenticated"] is True and review["status"]["audiences"] == ["vault"]


@pytest.mark.parametrize(("seconds_", "detail"), [
    (599, "may not specify a duration less than 10 minutes"),
    (2**32 + 1, "may not specify a duration larger than 2^32 seconds"),
])
async def test_expiration_out_of_range_is_422(http: httpx.AsyncClient, seconds_: int, detail: str) -> None:
    status = await request_token(http, {"expirationSeconds": seconds_}, expect=422)
    assert status["reason"] == "Invalid"
    assert status["message"] == (f'TokenRequest.authentication.k8s.io "" is invalid: spec.expirationSeconds: '
                                 f"Invalid value: {seconds_}: {detail}")
    assert status["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.expirationSeconds",
                                            "message": f"Invalid value: {seconds_}: {detail}"}]


async def test_a_missing_service_account_is_404(http: httpx.AsyncClient) -> None:
    status = await request_token(http, path=SA_PATH + "/nobody/token", expect=404)
    assert status["message"] == 'serviceaccounts "nobody" not found'
    status = await request_token(http, path="/api/v1/namespaces/nowhere/serviceaccounts/default/token", expect=404)
    assert status["message"] == 'serviceaccounts "default" not found'


async def test_the_body_is_checked(http: httpx.AsyncClient) -> None:
    resp = await http.post(TOKEN_PATH, headers=H, json={**TOKEN_REQUEST, "metadata": {"name": "other"}})
    assert resp.status_code == 422
    assert resp.json()["message"] == ('TokenRequest.authentication.k8s.io "default" is invalid: metadata.name: '
                                      'Invalid value: "other": must match the service account name if specified')
    resp = await http.post(TOKEN_PATH, headers=H, json={"apiVersion": "v1", "kind": "Pod"})
    assert resp.status_code == 400
    resp = await http.post(TOKEN_PATH, headers={**H, "Content-Type": "application/yaml"},
                           content=b"apiVersion: authentication.k8s.io/v1\nkind: TokenRequest\nspec:\n"
                                   b"  expirationSeconds: 7200\n")
    assert resp.status_code == 201 and resp.json()["spec"]["expirationSeconds"] == 7200
    assert (await http.get(TOKEN_PATH, headers=H)).status_code == 405


async def test_bound_object_refs(http: httpx.AsyncClient) -> None:
    secret = (await http.post("/api/v1/namespaces/default/secrets", headers=H, json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}})).json()
    ref = {"apiVersion": "v1", "kind": "Secret", "name": "creds", "uid": secret["metadata"]["uid"]}
    answer = await request_token(http, {"boundObjectRef": ref})
    assert answer["spec"]["boundObjectRef"] == ref
    token = answer["status"]["token"]
    assert claims_of(token)[1]["kubernetes.io"]["secret"] == {"name": "creds", "uid": secret["metadata"]["uid"]}
    assert (await whoami(http, token)).status_code == 201
    await http.delete("/api/v1/namespaces/default/secrets/creds", headers=H)
    assert (await whoami(http, token)).status_code == 401

    status = await request_token(http, {"boundObjectRef": {**ref, "uid": "0000"}}, expect=404)
    assert status["message"] == 'secrets "creds" not found'
    await http.post("/api/v1/namespaces/default/secrets", headers=H, json={
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "creds"}})
    status = await request_token(http, {"boundObjectRef": {**ref, "uid": "0000"}}, expect=409)
    assert status["message"] == ('Operation cannot be fulfilled on Secret "creds": the UID in the bound object '
                                 "reference (0000) does not match the UID in record. The object might have been "
                                 "deleted and then recreated")
    status = await request_token(http, {"boundObjectRef": {"apiVersion": "v1", "kind": "ConfigMap", "name": "x"}},
                                 expect=400)
    assert status["message"] == "cannot bind token to object of type /v1, Kind=ConfigMap"
    status = await request_token(http, {"boundObjectRef": {"apiVersion": "apps/v1", "kind": "Pod", "name": "x"}},
                                 expect=400)
    assert status["message"] == "cannot bind token to object of type apps/v1, Kind=Pod"


async def test_a_token_bound_to_a_pod_names_it(http: httpx.AsyncClient) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "runner"},
           "spec": {"serviceAccountName": "default", "nodeName": "node-a",
                    "containers": [{"name": "c", "image": "busybox"}]}}
    created = await http.post("/api/v1/namespaces/default/pods", headers=H, json=pod)
    assert created.status_code == 201, created.text
    uid = created.json()["metadata"]["uid"]
    token = (await request_token(http, {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "runner"}}))[
        "status"]["token"]
    private = claims_of(token)[1]["kubernetes.io"]
    assert private["pod"] == {"name": "runner", "uid": uid}
    assert private["node"] == {"name": "node-a"}  # no such Node object: its name only
    extra = (await whoami(http, token)).json()["status"]["userInfo"]["extra"]
    assert extra["authentication.kubernetes.io/pod-name"] == ["runner"]
    assert extra["authentication.kubernetes.io/pod-uid"] == [uid]
    assert extra["authentication.kubernetes.io/node-name"] == ["node-a"]
    other = await request_token(http, {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "runner"}},
                                path=SA_PATH + "/nobody/token", expect=404)
    assert other["message"] == 'serviceaccounts "nobody" not found'
    await http.post(SA_PATH, headers=H, json={"apiVersion": "v1", "kind": "ServiceAccount",
                                              "metadata": {"name": "other"}})
    status = await request_token(http, {"boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": "runner"}},
                                 path=SA_PATH + "/other/token", expect=400)
    assert status["message"] == ('cannot bind token for serviceaccount "other" to pod running with different '
                                 "serviceaccount name.")
    await http.delete("/api/v1/namespaces/default/pods/runner?gracePeriodSeconds=0", headers=H)
    assert (await http.get("/api/v1/namespaces/default/pods/runner", headers=H)).status_code == 404
    assert (await whoami(http, token)).status_code == 401


async def test_token_review(http: httpx.AsyncClient) -> None:
    token = (await request_token(http))["status"]["token"]
    review = await token_review(http, token)
    assert review["kind"] == "TokenReview" and review["spec"]["token"] == token
    status = review["status"]
    assert status["authenticated"] is True and status["audiences"] == [ISSUER]
    assert status["user"]["username"] == "system:serviceaccount:default:default"
    assert status["user"]["groups"] == ["system:serviceaccounts", "system:serviceaccounts:default",
                                        "system:authenticated"]
    assert list(status["user"]["extra"]) == ["authentication.kubernetes.io/credential-id"]
    static = (await token_review(http, ADMIN))["status"]
    assert static == {"authenticated": True, "audiences": [ISSUER], "user": {
        "username": "alice", "uid": "1001", "groups": ["developers", "system:authenticated"]}}
    assert (await token_review(http, ADMIN, ["vault"]))["status"] == {"user": {}, "error": "invalid bearer token"}
    assert (await token_review(http, "nonsense"))["status"] == {"user": {}, "error": "invalid bearer token"}
    resp = await http.post(TR_PATH, headers=H, json={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                                     "spec": {}})
    assert resp.status_code == 400 and resp.json()["message"] == "token is required for TokenReview in authentication"


async def test_oidc_discovery_serves_the_key_that_verifies_tokens(http: httpx.AsyncClient) -> None:
    config_doc = await http.get("/.well-known/openid-configuration", headers=H)
    assert config_doc.status_code == 200 and config_doc.headers["content-type"] == "application/json"
    assert config_doc.headers["cache-control"] == "public, max-age=3600"
    doc = config_doc.json()
    assert doc["issuer"] == ISSUER and doc["jwks_uri"].endswith("/openid/v1/jwks")
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    jwks = await http.get("/openid/v1/jwks", headers=H)
    assert jwks.headers["content-type"] == "application/jwk-set+json"
    [jwk] = jwks.json()["keys"]
    token = (await request_token(http))["status"]["token"]
    assert claims_of(token)[0]["kid"] == jwk["kid"]

    def number(text: str) -> int:
        return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")

    public = rsa.RSAPublicNumbers(number(jwk["e"]), number(jwk["n"])).public_key()
    signing_input, _, signature = token.rpartition(".")
    public.verify(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), signing_input.encode(),
                  padding.PKCS1v15(), hashes.SHA256())
    assert (await http.post("/openid/v1/jwks", headers=H)).status_code == 405
    assert (await http.get("/openid/v1/jwks")).status_code == 401


async def test_issuer_and_key_file_come_from_the_config(tmp_path: Path) -> None:
    key = tmp_path / "elsewhere" / "signing.key"
    cfg = config(tmp_path, service_account_issuer="https://kapi.example", service_account_key_file=key)
    assert cfg.service_account_key_path == key and config(tmp_path).service_account_key_path == (
        tmp_path / "root" / "cert" / "sa.key")
    async with serve(cfg) as http:
        answer = await request_token(http)
        assert answer["spec"]["audiences"] == ["https://kapi.example"]
        assert claims_of(answer["status"]["token"])[1]["iss"] == "https://kapi.example"
        assert (await whoami(http, answer["status"]["token"])).status_code == 201
        assert key.is_file()
