"""Delegated authentication and authorization: asking a main server, as kube's extension servers do.

The main server is a real HTTPS server on loopback (a thread, a fresh CA) that answers TokenReviews,
SubjectAccessReviews and the `extension-apiserver-authentication` ConfigMap with the answers the real
kube-apiserver gave (`tests/data/aggregation/reference.json`: `tokenreview_*`, `subjectaccessreview_*`,
`configmap_extension_apiserver_authentication*`), and records what it was sent.
"""
from __future__ import annotations

import base64
import copy
import json
import socket
import ssl
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest
import yaml

from kapi_certs import pki
from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.auth.delegated import (
    AUTHENTICATION_CONFIGMAP,
    SUBJECT_ACCESS_REVIEWS,
    TOKEN_REVIEWS,
    AlwaysAllowPathsAuthorizer,
    SubjectAccessReviewAuthorizer,
    TokenReviewAuthenticator,
    access_review_spec,
    authentication_configmap_data,
    check_always_allow_paths,
    published_settings,
)
from kapi.auth.interfaces import AuthRequest, Decision
from kapi.auth.main_server import Connection, MainServer, MainServerError, from_kubeconfig, in_cluster
from kapi.auth.request_header import RequestHeaderSettings

Object = dict[str, Any]
REFERENCE: dict[str, Object] = json.loads(
    (Path(__file__).resolve().parents[2] / "data" / "aggregation" / "reference.json").read_text())
CONFIGMAP_PATH = "/api/v1/namespaces/{}/configmaps/{}".format(*AUTHENTICATION_CONFIGMAP)
PLACEHOLDER_PEM = "-----BEGIN CERTIFICATE-----\n<base64 DER>\n-----END CERTIFICATE-----\n"
DELEGATOR_TOKEN = "delegator-token"


def reference(case: str) -> Object:
    return copy.deepcopy(REFERENCE[case])


# --- the main server ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


Answer = Callable[[Any], tuple[int, Any]]


class MainServerStub:
    """HTTPS on 127.0.0.1: `routes[(method, path)](body) -> (status, payload)`; 404 for anything else."""

    def __init__(self) -> None:
        ca, ca_key = pki.make_ca("main-server-test-ca")
        cert, key = pki.issue_serving_cert(ca, ca_key, ["127.0.0.1"])
        self.ca_pem = pki.cert_pem(ca).decode("ascii")
        self.routes: dict[tuple[str, str], Answer] = {}
        self.seen: list[Seen] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "tls.crt").write_bytes(pki.cert_pem(cert))
            (Path(tmp) / "tls.key").write_bytes(pki.key_pem(key))
            context.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                seen = Seen(self.command, self.path, {k.lower(): v for k, v in self.headers.items()},
                            json.loads(raw) if raw else None)
                owner.seen.append(seen)
                route = owner.routes.get((self.command, self.path))
                status, payload = route(seen.body) if route else (404, {"kind": "Status", "code": 404})
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve  # noqa: N815 - http.server's naming

            def log_message(self, *args: Any) -> None:
                pass

        class Httpd(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Httpd(("127.0.0.1", 0), Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def connection(self) -> Connection:
        return Connection(self.url, self.ca_pem, token=DELEGATOR_TOKEN)

    def posts(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.method == "POST" and s.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def stub() -> Iterator[MainServerStub]:
    server = MainServerStub()
    yield server
    server.close()


@pytest.fixture
async def main(stub: MainServerStub) -> Any:
    client = MainServer(stub.connection())
    yield client
    await client.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def unreachable() -> MainServer:
    return MainServer(Connection(f"https://127.0.0.1:{free_port()}", token=DELEGATOR_TOKEN))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def bearer(token: str) -> AuthRequest:
    return AuthRequest(headers={"authorization": f"Bearer {token}"}, client_host="127.0.0.1", scheme="https")


def token_review_answer(case: str) -> Answer:
    """The recorded TokenReview response, for whatever token was sent."""
    def answer(body: Any) -> tuple[int, Any]:
        response = reference(case)["response"]
        response["spec"] = body["spec"]
        return 201, response
    return answer


ADMIN = UserInfo("admin", uid="admin", groups=("system:masters", "system:authenticated"))


# --- TokenReview ----------------------------------------------------------------------------------

async def test_token_review_sends_the_token_and_maps_the_user(stub: MainServerStub, main: MainServer) -> None:
    stub.routes[("POST", TOKEN_REVIEWS)] = token_review_answer("tokenreview_admin_token")
    user = await TokenReviewAuthenticator(main).authenticate(bearer("admin-token"))
    assert user == ADMIN
    [seen] = stub.posts(TOKEN_REVIEWS)
    recorded = reference("tokenreview_admin_token")["body"]
    assert (seen.body["apiVersion"], seen.body["kind"]) == (recorded["apiVersion"], recorded["kind"])
    assert seen.body["spec"] == {"token": "admin-token"}  # recorded: {"token": "<admin-token>"}
    assert set(seen.body["spec"]) == set(recorded["spec"])
    assert seen.headers["authorization"] == f"Bearer {DELEGATOR_TOKEN}"
    assert seen.headers["content-type"] == "application/json"


async def test_token_review_extra_and_uid(stub: MainServerStub, main: MainServer) -> None:
    stub.routes[("POST", TOKEN_REVIEWS)] = lambda body: (201, {
        "kind": "TokenReview", "apiVersion": "authentication.k8s.io/v1", "spec": body["spec"],
        "status": {"authenticated": True, "user": {
            "username": "system:serviceaccount:ns:sa", "uid": "0b1c",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"],
            "extra": {"authentication.kubernetes.io/pod-name": ["web-0"], "scopes": ["a", "b"]}}}})
    user = await TokenReviewAuthenticator(main).authenticate(bearer("sa-token"))
    assert user == UserInfo("system:serviceaccount:ns:sa", uid="0b1c",
                            groups=("system:serviceaccounts", "system:serviceaccounts:ns", "system:authenticated"),
                            extra={"authentication.kubernetes.io/pod-name": ("web-0",), "scopes": ("a", "b")})


async def test_a_token_the_main_server_refuses_is_401(stub: MainServerStub, main: MainServer) -> None:
    """`tokenreview_bad_token`: 201 with no `authenticated`, `user: {}` and an error."""
    stub.routes[("POST", TOKEN_REVIEWS)] = token_review_answer("tokenreview_bad_token")
    with pytest.raises(errors.Unauthorized):
        await TokenReviewAuthenticator(main).authenticate(bearer("not-a-valid-token"))
    assert [s.body["spec"] for s in stub.posts(TOKEN_REVIEWS)] == [reference("tokenreview_bad_token")["body"]["spec"]]


async def test_no_bearer_token_is_not_mine(stub: MainServerStub, main: MainServer) -> None:
    auth = TokenReviewAuthenticator(main)
    assert await auth.authenticate(AuthRequest()) is None
    assert await auth.authenticate(AuthRequest(headers={"authorization": "Basic YTpi"})) is None
    assert stub.seen == []


async def test_audiences_are_sent_when_configured(stub: MainServerStub, main: MainServer) -> None:
    stub.routes[("POST", TOKEN_REVIEWS)] = token_review_answer("tokenreview_admin_token")
    await TokenReviewAuthenticator(main, audiences=("https://kubernetes.default.svc",)).authenticate(bearer("t"))
    req = AuthRequest(headers={"authorization": "Bearer t"}, audiences=("wardle",))
    await TokenReviewAuthenticator(main).authenticate(req)
    assert [s.body["spec"] for s in stub.posts(TOKEN_REVIEWS)] == [
        {"token": "t", "audiences": ["https://kubernetes.default.svc"]}, {"token": "t", "audiences": ["wardle"]}]


async def test_answers_are_cached_for_the_ttl(stub: MainServerStub, main: MainServer) -> None:
    clock = Clock()
    good = token_review_answer("tokenreview_admin_token")
    bad = token_review_answer("tokenreview_bad_token")
    stub.routes[("POST", TOKEN_REVIEWS)] = lambda body: (good if body["spec"]["token"] == "good" else bad)(body)
    auth = TokenReviewAuthenticator(main, ttl=10.0, clock=clock)
    assert await auth.authenticate(bearer("good")) == ADMIN
    with pytest.raises(errors.Unauthorized):
        await auth.authenticate(bearer("bad"))
    assert len(stub.posts(TOKEN_REVIEWS)) == 2
    clock.now += 9.5
    assert await auth.authenticate(bearer("good")) == ADMIN
    with pytest.raises(errors.Unauthorized):
        await auth.authenticate(bearer("bad"))  # a refusal is cached too
    assert len(stub.posts(TOKEN_REVIEWS)) == 2
    clock.now += 1.0
    assert await auth.authenticate(bearer("good")) == ADMIN
    assert len(stub.posts(TOKEN_REVIEWS)) == 3
    with pytest.raises(errors.Unauthorized):
        await auth.authenticate(bearer("other"))  # another token is another question
    assert len(stub.posts(TOKEN_REVIEWS)) == 4


async def test_failing_to_ask_is_401_and_not_cached(stub: MainServerStub, main: MainServer) -> None:
    state = {"down": True}
    good = token_review_answer("tokenreview_admin_token")
    stub.routes[("POST", TOKEN_REVIEWS)] = lambda body: (503, {"kind": "Status", "code": 503}) if state["down"] \
        else good(body)
    auth = TokenReviewAuthenticator(main, ttl=10.0, clock=Clock())
    with pytest.raises(errors.Unauthorized):
        await auth.authenticate(bearer("good"))
    state["down"] = False
    assert await auth.authenticate(bearer("good")) == ADMIN
    assert len(stub.posts(TOKEN_REVIEWS)) == 2


async def test_an_unreachable_main_server_is_401() -> None:
    main = await unreachable()
    try:
        with pytest.raises(errors.Unauthorized):
            await TokenReviewAuthenticator(main).authenticate(bearer("good"))
    finally:
        await main.close()


# --- SubjectAccessReview --------------------------------------------------------------------------

ALICE = UserInfo("alice", groups=("system:authenticated",))
GET_FLUNDERS = RequestInfo(path="/apis/wardle.example.com/v1alpha1/namespaces/default/flunders", verb="get",
                           is_resource_request=True, api_prefix="apis", group="wardle.example.com",
                           version="v1alpha1", namespace="default", resource="flunders")
HEALTHZ = RequestInfo(path="/healthz", verb="get")


def sar_answer(allowed: bool, reason: str = "") -> Answer:
    def answer(body: Any) -> tuple[int, Any]:
        status: Object = {"allowed": allowed}
        if reason:
            status["reason"] = reason
        return 201, {"kind": "SubjectAccessReview", "apiVersion": "authorization.k8s.io/v1", "metadata": {},
                     "spec": body["spec"], "status": status}
    return answer


@pytest.mark.parametrize(("case", "user"), [("subjectaccessreview_alice_get_flunders", ALICE),
                                            ("subjectaccessreview_admin_masters", ADMIN)])
def test_access_review_spec_is_what_a_delegating_server_sends(case: str, user: UserInfo) -> None:
    assert access_review_spec(user, GET_FLUNDERS) == reference(case)["body"]["spec"]


def test_access_review_spec_for_a_path_and_with_extra() -> None:
    user = UserInfo("bob", uid="42", groups=("dev",), extra={"scopes": ("a", "b")})
    assert access_review_spec(user, HEALTHZ) == {
        "user": "bob", "uid": "42", "groups": ["dev"], "extra": {"scopes": ["a", "b"]},
        "nonResourceAttributes": {"path": "/healthz", "verb": "get"}}
    named = RequestInfo(path="/api/v1/namespaces/ns/pods/p/log", verb="get", is_resource_request=True,
                        api_prefix="api", version="v1", namespace="ns", resource="pods", name="p", subresource="log")
    assert access_review_spec(user, named)["resourceAttributes"] == {
        "namespace": "ns", "verb": "get", "version": "v1", "resource": "pods", "subresource": "log", "name": "p"}


@pytest.mark.parametrize(("case", "user"), [("subjectaccessreview_alice_get_flunders", ALICE),
                                            ("subjectaccessreview_admin_masters", ADMIN)])
async def test_authorizer_sends_kubes_review_and_takes_the_answer(stub: MainServerStub, main: MainServer,
                                                                  case: str, user: UserInfo) -> None:
    recorded = reference(case)
    stub.routes[("POST", SUBJECT_ACCESS_REVIEWS)] = lambda body: (recorded["status"], recorded["response"])
    decision = await SubjectAccessReviewAuthorizer(main).authorize(user, GET_FLUNDERS)
    assert decision == Decision(recorded["response"]["status"]["allowed"])
    [seen] = stub.posts(SUBJECT_ACCESS_REVIEWS)
    assert (seen.body["apiVersion"], seen.body["kind"]) == (recorded["body"]["apiVersion"], recorded["body"]["kind"])
    assert seen.body["spec"] == recorded["body"]["spec"]
    assert seen.headers["authorization"] == f"Bearer {DELEGATOR_TOKEN}"


async def test_the_reason_comes_along(stub: MainServerStub, main: MainServer) -> None:
    stub.routes[("POST", SUBJECT_ACCESS_REVIEWS)] = sar_answer(False, "no RBAC policy matched")
    assert await SubjectAccessReviewAuthorizer(main).authorize(ALICE, HEALTHZ) == Decision(False, "no RBAC policy matched")
    [seen] = stub.posts(SUBJECT_ACCESS_REVIEWS)
    assert seen.body["spec"]["nonResourceAttributes"] == {"path": "/healthz", "verb": "get"}


async def test_allow_and_deny_are_cached_for_their_own_ttls(stub: MainServerStub, main: MainServer) -> None:
    clock = Clock()
    stub.routes[("POST", SUBJECT_ACCESS_REVIEWS)] = lambda body: sar_answer(body["spec"]["user"] == "admin")(body)
    authz = SubjectAccessReviewAuthorizer(main, allowed_ttl=30.0, denied_ttl=5.0, clock=clock)

    async def ask() -> tuple[bool, bool]:
        return ((await authz.authorize(ADMIN, GET_FLUNDERS)).allowed, (await authz.authorize(ALICE, GET_FLUNDERS)).allowed)

    assert await ask() == (True, False)
    assert len(stub.posts(SUBJECT_ACCESS_REVIEWS)) == 2
    clock.now += 4.0
    assert await ask() == (True, False)
    assert len(stub.posts(SUBJECT_ACCESS_REVIEWS)) == 2
    clock.now += 2.0  # 6 s: the denial expired, the allowance did not
    assert await ask() == (True, False)
    assert [s.body["spec"]["user"] for s in stub.posts(SUBJECT_ACCESS_REVIEWS)] == ["admin", "alice", "alice"]
    clock.now += 25.0  # 31 s
    assert await ask() == (True, False)
    assert [s.body["spec"]["user"] for s in stub.posts(SUBJECT_ACCESS_REVIEWS)][3:] == ["admin", "alice"]
    await authz.authorize(ADMIN, HEALTHZ)  # another request is another question
    assert len(stub.posts(SUBJECT_ACCESS_REVIEWS)) == 6


async def test_an_unanswerable_review_is_500_and_not_cached(stub: MainServerStub, main: MainServer) -> None:
    state = {"down": True}
    stub.routes[("POST", SUBJECT_ACCESS_REVIEWS)] = lambda body: (500, {"kind": "Status", "code": 500}) \
        if state["down"] else sar_answer(True)(body)
    authz = SubjectAccessReviewAuthorizer(main, clock=Clock())
    with pytest.raises(errors.InternalError):
        await authz.authorize(ADMIN, GET_FLUNDERS)
    state["down"] = False
    assert (await authz.authorize(ADMIN, GET_FLUNDERS)).allowed
    assert len(stub.posts(SUBJECT_ACCESS_REVIEWS)) == 2


async def test_an_unreachable_authorizer_is_500() -> None:
    main = await unreachable()
    try:
        with pytest.raises(errors.InternalError) as info:
            await SubjectAccessReviewAuthorizer(main).authorize(ADMIN, GET_FLUNDERS)
        assert info.value.code == 500
    finally:
        await main.close()


async def test_the_webhook_authorizer_cannot_list_rules(main: MainServer) -> None:
    answer = await SubjectAccessReviewAuthorizer(main).rules_for(ALICE, "default")
    assert answer.incomplete and answer.resource_rules == () and answer.non_resource_rules == ()


# --- extension-apiserver-authentication ----------------------------------------------------------

@pytest.fixture(scope="module")
def pems() -> list[str]:
    """Three self-made CA certificates: the front-proxy CA and a two-certificate client CA bundle."""
    return [pki.cert_pem(pki.make_ca(cn)[0]).decode("ascii") for cn in ("front-proxy-ca", "client-ca-1", "client-ca-2")]


def filled(data: dict[str, str], pems: list[str]) -> dict[str, str]:
    """The recorded data with each `<base64 DER>` placeholder block replaced by a real certificate."""
    out = {}
    for key, value in data.items():
        if key == "requestheader-client-ca-file":
            value = value.replace(PLACEHOLDER_PEM, pems[0])
        elif key == "client-ca-file":
            assert value == PLACEHOLDER_PEM * 2
            value = pems[1] + pems[2]
        out[key] = value
    return out


def configmap(case: str, pems: list[str]) -> Object:
    response = reference(case)["response"]
    response["data"] = filled(response["data"], pems)
    return response


REFERENCE_SETTINGS = dict(allowed_names=("front-proxy-client",), username_headers=("X-Remote-User",),
                          group_headers=("X-Remote-Group",), extra_headers_prefixes=("X-Remote-Extra-",))


def test_published_settings_without_a_client_ca(stub: MainServerStub, pems: list[str]) -> None:
    answer = configmap("configmap_extension_apiserver_authentication", pems)
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: (200, answer)
    settings, client_ca = published_settings(MainServer(stub.connection()))
    assert settings == RequestHeaderSettings(pems[0], **REFERENCE_SETTINGS)  # type: ignore[arg-type]
    assert client_ca == ""
    assert len(settings.ca_certificates()) == 1
    [seen] = stub.seen
    assert (seen.method, seen.path, seen.headers["authorization"]) == ("GET", CONFIGMAP_PATH, f"Bearer {DELEGATOR_TOKEN}")


def test_published_settings_with_a_client_ca(stub: MainServerStub, pems: list[str]) -> None:
    answer = configmap("configmap_extension_apiserver_authentication_with_client_ca", pems)
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: (200, answer)
    settings, client_ca = published_settings(MainServer(stub.connection()))
    assert settings == RequestHeaderSettings(pems[0], **REFERENCE_SETTINGS)  # type: ignore[arg-type]
    assert client_ca == pems[1] + pems[2]  # the bundle verbatim


def test_no_request_header_ca_published(stub: MainServerStub, pems: list[str]) -> None:
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: (200, {"kind": "ConfigMap", "apiVersion": "v1",
                                                               "data": {"client-ca-file": pems[1]}})
    assert published_settings(MainServer(stub.connection())) == (None, pems[1])


@pytest.mark.parametrize("answer", [
    (200, {"kind": "ConfigMap", "data": {"requestheader-client-ca-file": "x", "requestheader-allowed-names": "front"}}),
    (404, {"kind": "Status", "code": 404}),
    (403, {"kind": "Status", "code": 403}),
], ids=["not a JSON list", "missing", "forbidden"])
def test_an_unusable_configmap_is_a_main_server_error(stub: MainServerStub, answer: tuple[int, Any]) -> None:
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: answer
    with pytest.raises(MainServerError):
        published_settings(MainServer(stub.connection()))


@pytest.mark.parametrize(("case", "client_ca"), [("configmap_extension_apiserver_authentication", False),
                                                 ("configmap_extension_apiserver_authentication_with_client_ca", True)])
def test_authentication_configmap_data_is_kubes(case: str, client_ca: bool, pems: list[str]) -> None:
    settings = RequestHeaderSettings(pems[0], **REFERENCE_SETTINGS)  # type: ignore[arg-type]
    data = authentication_configmap_data(pems[1] + pems[2] if client_ca else "", settings)
    assert data == filled(reference(case)["response"]["data"], pems)


def test_authentication_configmap_data_round_trips(stub: MainServerStub, pems: list[str]) -> None:
    settings = RequestHeaderSettings(pems[0], allowed_names=(), username_headers=("X-User", "X-Other-User"),
                                     group_headers=("X-Group",), extra_headers_prefixes=("X-Extra-", "X-More-"))
    data = authentication_configmap_data("", settings)
    assert data["requestheader-allowed-names"] == "[]"
    assert data["requestheader-username-headers"] == '["X-User","X-Other-User"]'
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: (200, {"kind": "ConfigMap", "data": data})
    assert published_settings(MainServer(stub.connection())) == (settings, "")


def test_without_request_header_settings_only_the_client_ca_is_published(pems: list[str]) -> None:
    assert authentication_configmap_data(pems[1], None) == {"client-ca-file": pems[1]}
    assert authentication_configmap_data("", None) == {}


# --- always-allowed paths --------------------------------------------------------------------------

def test_check_always_allow_paths_accepts_paths_and_trailing_stars() -> None:
    paths = ["/healthz", "/readyz", "/livez", "/metrics*", "/", "/*"]
    assert check_always_allow_paths(paths) == tuple(paths)
    assert check_always_allow_paths([]) == ()


@pytest.mark.parametrize(("path", "message"), [
    ("healthz", "must begin with /"),
    ("/debug/*/pprof", "only trailing * allowed"),
    ("/**", "only trailing * allowed"),
])
def test_check_always_allow_paths_refuses(path: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("*", r"\*")):
        check_always_allow_paths(["/healthz", path])


@pytest.mark.parametrize(("path", "allowed"), [
    ("/healthz", True), ("/livez", True), ("/healthz/etcd", False), ("/healthzz", False),
    ("/metrics", True), ("/metrics/cadvisor", True), ("/metricsx", True), ("/metric", False),
    ("/version", False), ("/", False),
])
async def test_always_allow_paths_exact_and_prefix(path: str, allowed: bool) -> None:
    authz = AlwaysAllowPathsAuthorizer(["/healthz", "/livez", "/metrics*"])
    assert await authz.authorize(UserInfo("system:anonymous"), RequestInfo(path=path, verb="get")) == Decision(allowed)


async def test_always_allow_paths_never_allow_resources() -> None:
    authz = AlwaysAllowPathsAuthorizer(["/*"])
    assert (await authz.authorize(ALICE, GET_FLUNDERS)).allowed is False
    assert (await authz.authorize(ALICE, RequestInfo(path="/openapi/v2", verb="get"))).allowed is True


# --- reaching the main server ----------------------------------------------------------------------

def kubeconfig(tmp_path: Path, cluster: Object, user: Object, current: str = "main") -> Path:
    doc = {"apiVersion": "v1", "kind": "Config", "current-context": current,
           "clusters": [{"name": "c", "cluster": cluster}],
           "users": [{"name": "u", "user": user}],
           "contexts": [{"name": "main", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_kubeconfig_with_a_token_and_a_ca_file(tmp_path: Path, stub: MainServerStub) -> None:
    (tmp_path / "ca.crt").write_text(stub.ca_pem)
    path = kubeconfig(tmp_path, {"server": stub.url + "/", "certificate-authority": "ca.crt"}, {"token": "s3cret"})
    assert from_kubeconfig(path) == Connection(stub.url, stub.ca_pem, token="s3cret")


def test_kubeconfig_with_ca_data_reaches_the_server(tmp_path: Path, stub: MainServerStub, pems: list[str]) -> None:
    data = base64.b64encode(stub.ca_pem.encode()).decode()
    path = kubeconfig(tmp_path, {"server": stub.url, "certificate-authority-data": data}, {"token": DELEGATOR_TOKEN})
    connection = from_kubeconfig(path)
    assert connection == Connection(stub.url, stub.ca_pem, token=DELEGATOR_TOKEN)
    answer = configmap("configmap_extension_apiserver_authentication", pems)
    stub.routes[("GET", CONFIGMAP_PATH)] = lambda body: (200, answer)
    settings, _ = published_settings(MainServer(connection))
    assert settings is not None and settings.allowed_names == ("front-proxy-client",)


def test_kubeconfig_with_an_absolute_ca_path_and_a_token_file(tmp_path: Path, stub: MainServerStub) -> None:
    (tmp_path / "ca.crt").write_text(stub.ca_pem)
    (tmp_path / "token").write_text("from-file\n")
    path = kubeconfig(tmp_path, {"server": stub.url, "certificate-authority": str(tmp_path / "ca.crt")},
                      {"tokenFile": "token"})
    assert from_kubeconfig(path) == Connection(stub.url, stub.ca_pem, token="from-file")


def test_kubeconfig_client_certificate_data(tmp_path: Path) -> None:
    ca, ca_key = pki.make_ca("client-ca")
    cert, key = pki.issue_client_cert(ca, ca_key, "system:wardle", [])
    path = kubeconfig(tmp_path, {"server": "https://main.example:6443", "insecure-skip-tls-verify": True}, {
        "client-certificate-data": base64.b64encode(pki.cert_pem(cert)).decode(),
        "client-key-data": base64.b64encode(pki.key_pem(key)).decode()})
    connection = from_kubeconfig(path)
    assert connection.server == "https://main.example:6443" and connection.insecure and connection.token == ""
    assert connection.client_cert_pem == pki.cert_pem(cert).decode()
    assert connection.client_key_pem == pki.key_pem(key).decode()
    assert connection.ssl_context().verify_mode == ssl.CERT_NONE


@pytest.mark.parametrize("current", ["elsewhere", ""])
def test_kubeconfig_without_its_context_is_an_error(tmp_path: Path, current: str) -> None:
    path = kubeconfig(tmp_path, {"server": "https://main.example"}, {"token": "t"}, current=current)
    with pytest.raises(MainServerError, match="no context named"):
        from_kubeconfig(path)


@pytest.mark.parametrize("content", ["not: [a kubeconfig", "- a list\n"])
def test_an_unreadable_kubeconfig_is_an_error(tmp_path: Path, content: str) -> None:
    path = tmp_path / "kubeconfig"
    path.write_text(content)
    with pytest.raises(MainServerError, match=str(path)):
        from_kubeconfig(path)
    with pytest.raises(MainServerError):
        from_kubeconfig(tmp_path / "missing")


def test_kubeconfig_cluster_without_a_server(tmp_path: Path) -> None:
    with pytest.raises(MainServerError, match="no server"):
        from_kubeconfig(kubeconfig(tmp_path, {"certificate-authority-data": ""}, {"token": "t"}))


def test_in_cluster_reads_the_service_account(tmp_path: Path, pems: list[str]) -> None:
    (tmp_path / "token").write_text("pod-token\n")
    (tmp_path / "ca.crt").write_text(pems[1])
    env = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    assert in_cluster(env, tmp_path) == Connection("https://10.0.0.1:443", pems[1], token="pod-token")
    env6 = {"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "6443"}
    assert in_cluster(env6, tmp_path).server == "https://[fd00::1]:6443"


@pytest.mark.parametrize("env", [{}, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, {"KUBERNETES_SERVICE_PORT": "443"}])
def test_in_cluster_without_the_environment(tmp_path: Path, env: dict[str, str]) -> None:
    with pytest.raises(MainServerError, match="KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be defined"):
        in_cluster(env, tmp_path)


def test_in_cluster_without_the_mounted_files(tmp_path: Path) -> None:
    with pytest.raises(MainServerError, match="in-cluster service account"):
        in_cluster({"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}, tmp_path)
