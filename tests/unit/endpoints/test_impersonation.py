"""Impersonation (`kubectl --as`, `--as-group`, `--as-uid`, `Impersonate-Extra-*`), in the filter chain of a real app.

The authorizer is a small rule table (`rules_allow` over fixed PolicyRules per user and group) so that each
test says exactly who may impersonate what; RBAC itself is tested in tests/unit/auth.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import orjson
from starlette.applications import Starlette
from starlette.routing import Route

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.app import create_app
from kapi.auth.factory import build_authenticator
from kapi.auth.interfaces import Decision, RulesAnswer
from kapi.auth.rbac_rules import PolicyRule, rules_allow
from kapi.config import ServerConfig
from kapi.endpoints.impersonation import (
    Impersonation,
    checks,
    extra_key,
    impersonated_user,
    requested,
    split_service_account,
)
from kapi.endpoints.router import make_api_handler

SSR_PATH = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
SSAR_PATH = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"
ALICE = ("authorization", "Bearer alice-token")  # may impersonate what ADMIN_RULES allow
BOB = ("authorization", "Bearer bob-token")  # may impersonate nothing
EVERYTHING = [PolicyRule(("*",), ("*",), ("*",)), PolicyRule(("*",), non_resource_urls=("*",))]
REVIEWS = [PolicyRule(("create",), ("authentication.k8s.io", "authorization.k8s.io"), ("*",))]


class RuleTable:
    """An Authorizer with fixed rules per `user:<name>` / `group:<name>`; records every question asked."""

    def __init__(self, rules: dict[str, list[PolicyRule]]) -> None:
        self.rules = rules
        self.asked: list[tuple[str, RequestInfo]] = []

    def _rules(self, user: UserInfo) -> list[PolicyRule]:
        keys = ["user:" + user.name, *("group:" + g for g in user.groups)]
        return [rule for key in keys for rule in self.rules.get(key, ())]

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        self.asked.append((user.name, info))
        allowed = rules_allow(self._rules(user), info)
        return Decision(allowed, "" if allowed else "no rule allows it")

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        rules = self._rules(user)
        return RulesAnswer(tuple(r for r in rules if r.resources), tuple(r for r in rules if r.non_resource_urls))


class EchoHeaders:
    """A mounted app (the router's plugin seam) that answers the headers and user it was handed."""

    def handles(self, path: str) -> bool:
        return path == "/echo"

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = orjson.dumps({"headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
                             "user": scope["kapi.user"].to_dict()})
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
        await send({"type": "http.response.body", "body": body})


def impersonator_rules() -> list[PolicyRule]:
    """alice may impersonate user bob, service accounts in ns1, groups g1/g2, any uid and extra `scopes`."""
    return [
        PolicyRule(("impersonate",), ("",), ("users",), ("bob", "system:anonymous")),
        PolicyRule(("impersonate",), ("",), ("serviceaccounts",)),
        PolicyRule(("impersonate",), ("",), ("groups",), ("g1", "g2", "system:authenticated")),
        PolicyRule(("impersonate",), ("authentication.k8s.io",), ("uids",)),
        PolicyRule(("impersonate",), ("authentication.k8s.io",), ("userextras/scopes",)),
    ]


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, authorizer: RuleTable) -> AsyncIterator[httpx.AsyncClient]:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("alice-token,alice,1001,\"admins\"\nbob-token,bob,1002\n")
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path / "root", token_auth_file=tokens,
                                  load_examples=False, authorization_modes=("AlwaysAllow",)))
    handler = make_api_handler(app.state.api, build_authenticator(token_auth_file=tokens), authorizer, [EchoHeaders()])
    chained = Starlette(routes=[Route("/{path:path}", handler, methods=["GET", "POST", "DELETE"])])
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=chained), base_url="http://kapi") as http:
            yield http


def table() -> RuleTable:
    return RuleTable({"group:admins": impersonator_rules() + [PolicyRule(("*",), ("",), ("configmaps",))],
                      "group:system:authenticated": REVIEWS + [PolicyRule(("get",), non_resource_urls=("/echo",))],
                      "group:g1": [PolicyRule(("list",), ("",), ("configmaps",))]})


async def whoami(http: httpx.AsyncClient, *headers: tuple[str, str]) -> httpx.Response:
    return await http.post(SSR_PATH, headers=list(headers), json={"kind": "SelfSubjectReview"})


# -- parsing the headers -------------------------------------------------------------------------------------------
def test_requested_reads_every_impersonation_header_in_one_pass() -> None:
    headers = [(b"accept", b"*/*"), (b"impersonate-group", b"g1"), (b"impersonate-user", b"bob"),
               (b"impersonate-group", b"g2"), (b"impersonate-user", b"carol"), (b"impersonate-uid", b"u-1"),
               (b"impersonate-extra-scopes", b"view"), (b"impersonate-extra-scopes", b"edit"),
               (b"impersonate-extra-acme.com%2fproject", b"p1"), (b"impersonate-extra-bad%zzkey", b"x"),
               (b"impersonate-user-x", b"ignored")]
    assert requested(headers) == Impersonation(
        user="bob", groups=("g1", "g2"), uid="u-1",  # the first User wins (Go's Header.Get), every Group counts
        extra=(("scopes", "view"), ("scopes", "edit"), ("acme.com/project", "p1"), ("bad%zzkey", "x")))
    assert requested([(b"accept", b"*/*"), (b"authorization", b"Bearer x")]) is None
    assert requested([(b"impersonate-user", b"")]) is None  # an empty user asks for nothing, as in kube
    assert requested([(b"impersonate-user", "zoë".encode())]) == Impersonation(user="zoë")


def test_extra_keys_are_lower_cased_then_percent_decoded() -> None:
    assert extra_key("Acme.COM%2FProject") == "acme.com/project"
    assert extra_key("with%20space") == "with space"
    assert extra_key("broken%2") == "broken%2"  # url.PathUnescape fails: the key is kept as sent
    assert extra_key("plus+sign") == "plus+sign"


def test_service_account_names_follow_kubes_split_username() -> None:
    assert split_service_account("system:serviceaccount:ns1:robot") == ("ns1", "robot")
    assert split_service_account("system:serviceaccount:ns1:robot:extra") is None
    assert split_service_account("system:serviceaccount:Bad_NS:robot") is None
    assert split_service_account("system:serviceaccounts:ns1") is None
    assert split_service_account("bob") is None


def test_checks_are_kubes_attributes_in_kubes_order() -> None:
    asked = Impersonation(user="system:serviceaccount:ns1:robot", groups=("g1",), uid="u-1",
                          extra=(("scopes", "view"),))
    got = [(i.verb, i.group, i.version, i.namespace, i.resource, i.subresource, i.name) for i in checks(asked)]
    assert got == [
        ("impersonate", "", "v1", "ns1", "serviceaccounts", "", "robot"),
        ("impersonate", "", "v1", "", "groups", "", "g1"),
        ("impersonate", "authentication.k8s.io", "v1", "", "userextras", "scopes", "view"),
        ("impersonate", "authentication.k8s.io", "v1", "", "uids", "", "u-1"),
    ]
    assert all(i.is_resource_request for i in checks(asked))
    assert [i.resource for i in checks(Impersonation(user="bob"))] == ["users"]


def test_impersonated_users_get_kubes_groups() -> None:
    assert impersonated_user(Impersonation(user="bob")).groups == ("system:authenticated",)
    assert impersonated_user(Impersonation(user="bob", groups=("g1",))).groups == ("g1", "system:authenticated")
    assert impersonated_user(Impersonation(user="bob", groups=("system:unauthenticated",))).groups == (
        "system:unauthenticated",)
    assert impersonated_user(Impersonation(user="system:anonymous")).groups == ("system:unauthenticated",)
    assert impersonated_user(Impersonation(user="system:serviceaccount:ns1:robot")).groups == (
        "system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated")
    # groups asked for replace a service account's own
    assert impersonated_user(Impersonation(user="system:serviceaccount:ns1:robot", groups=("g1",))).groups == (
        "g1", "system:authenticated")
    both = impersonated_user(Impersonation(user="bob", uid="u-1", extra=(("scopes", "a"), ("scopes", "b"))))
    assert both.uid == "u-1" and dict(both.extra) == {"scopes": ("a", "b")}


# -- through the filter chain --------------------------------------------------------------------------------------
async def test_the_request_runs_as_the_impersonated_user(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        resp = await whoami(http, ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g1"),
                            ("Impersonate-Group", "g2"), ("Impersonate-Uid", "u-1"),
                            ("Impersonate-Extra-Scopes", "view"), ("Impersonate-Extra-scopes", "edit"))
        assert resp.status_code == 201
        assert resp.json()["status"]["userInfo"] == {"username": "bob", "uid": "u-1",
                                                     "groups": ["g1", "g2", "system:authenticated"],
                                                     "extra": {"scopes": ["view", "edit"]}}
        # bob as g1 may list configmaps but not create them; the 403 names bob, not alice
        listed = await http.get("/api/v1/namespaces/default/configmaps",
                                headers=[ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g1")])
        assert listed.status_code == 200
        created = await http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}},
                                  headers=[ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g1")])
        assert created.status_code == 403
        assert created.json()["message"] == ('configmaps is forbidden: User "bob" cannot create resource "configmaps" '
                                             'in API group "" in the namespace "default": no rule allows it')
        # alice herself may
        own = await http.post("/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "c"}},
                              headers=[ALICE])
        assert own.status_code == 201


async def test_a_refused_impersonation_is_kubes_403(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        resp = await whoami(http, BOB, ("Impersonate-User", "alice"))
        assert resp.status_code == 403
        assert resp.json() == {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": 'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" '
                       "at the cluster scope: no rule allows it",
            "reason": "Forbidden", "details": {"name": "alice", "kind": "users"}, "code": 403}
        carol = await whoami(http, ALICE, ("Impersonate-User", "carol"))  # resourceNames: bob only
        assert carol.status_code == 403 and carol.json()["message"].startswith(
            'users "carol" is forbidden: User "alice" cannot impersonate resource "users"')
        group = await whoami(http, ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g3"))
        assert group.json()["message"].startswith(
            'groups "g3" is forbidden: User "alice" cannot impersonate resource "groups" in API group "" '
            "at the cluster scope")
        extra = await whoami(http, ALICE, ("Impersonate-User", "bob"), ("Impersonate-Extra-Reason", "why"))
        assert extra.status_code == 403
        assert extra.json()["message"].startswith(
            'userextras.authentication.k8s.io "why" is forbidden: User "alice" cannot impersonate resource '
            '"userextras/reason" in API group "authentication.k8s.io" at the cluster scope')
        assert extra.json()["details"] == {"name": "why", "group": "authentication.k8s.io", "kind": "userextras"}
        account = await whoami(http, BOB, ("Impersonate-User", "system:serviceaccount:ns1:robot"))
        assert account.json()["message"].startswith(
            'serviceaccounts "robot" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" '
            'in API group "" in the namespace "ns1"')
        uid = await whoami(http, BOB, ("Impersonate-User", "bob"), ("Impersonate-Uid", "u-9"))
        assert uid.status_code == 403 and uid.json()["message"].startswith('users "bob" is forbidden')


async def test_each_part_is_authorized_for_the_real_caller_in_order(tmp_path: Path) -> None:
    authorizer = table()
    async with serve(tmp_path, authorizer) as http:
        authorizer.asked.clear()
        resp = await whoami(http, ALICE, ("Impersonate-Uid", "u-1"), ("Impersonate-Extra-Scopes", "view"),
                            ("Impersonate-Group", "g1"), ("Impersonate-User", "system:serviceaccount:ns1:robot"))
        assert resp.status_code == 201
        assert [(who, i.verb, i.resource) for who, i in authorizer.asked] == [
            ("alice", "impersonate", "serviceaccounts"), ("alice", "impersonate", "groups"),
            ("alice", "impersonate", "userextras"), ("alice", "impersonate", "uids"),
            ("system:serviceaccount:ns1:robot", "create", "selfsubjectreviews")]  # then the request, as robot
        assert resp.json()["status"]["userInfo"]["groups"] == ["g1", "system:authenticated"]
        authorizer.asked.clear()
        plain = await whoami(http, ALICE)
        assert plain.status_code == 201 and [who for who, _ in authorizer.asked] == ["alice"]  # no headers: no checks


async def test_groups_extras_or_uid_without_a_user_are_kubes_400(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        resp = await whoami(http, ALICE, ("Impersonate-Group", "g1"), ("Impersonate-Group", "g2"))
        assert resp.status_code == 400
        assert resp.json() == {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                               "message": "requested [{Group  g1    } {Group  g2    }] without impersonating a user",
                               "reason": "BadRequest", "code": 400}
        extra = await whoami(http, ALICE, ("Impersonate-Extra-Scopes", "view"), ("Impersonate-Uid", "u-1"))
        assert extra.status_code == 400
        assert extra.json()["message"] == (
            "requested [{UserExtra  view  authentication.k8s.io/v1  scopes} {UID  u-1  authentication.k8s.io/v1  }] "
            "without impersonating a user")


async def test_service_accounts_and_anonymous(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        robot = await whoami(http, ALICE, ("Impersonate-User", "system:serviceaccount:ns1:robot"))
        assert robot.json()["status"]["userInfo"] == {
            "username": "system:serviceaccount:ns1:robot",
            "groups": ["system:serviceaccounts", "system:serviceaccounts:ns1", "system:authenticated"]}
        # anonymous gets system:unauthenticated, so not even the review is allowed any more
        anonymous = await whoami(http, ALICE, ("Impersonate-User", "system:anonymous"))
        assert anonymous.status_code == 403
        assert 'User "system:anonymous" cannot create resource "selfsubjectreviews"' in anonymous.json()["message"]
        anonymous_in = await whoami(http, ALICE, ("Impersonate-User", "system:anonymous"),
                                    ("Impersonate-Group", "system:authenticated"))
        assert anonymous_in.json()["status"]["userInfo"] == {  # kube still adds system:unauthenticated
            "username": "system:anonymous", "groups": ["system:authenticated", "system:unauthenticated"]}


async def test_the_impersonation_headers_do_not_travel_on(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        resp = await http.get("/echo", headers=[ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g1"),
                                                ("Impersonate-Uid", "u-1"), ("Impersonate-Extra-Scopes", "view"),
                                                ("Impersonate-Other", "kept"), ("X-Trace", "t")])
        assert resp.status_code == 200
        names = [name for name, _ in resp.json()["headers"]]
        assert not any(n in ("impersonate-user", "impersonate-group", "impersonate-uid") or
                       n.startswith("impersonate-extra-") for n in names)
        assert "impersonate-other" in names and "x-trace" in names and "authorization" in names
        assert resp.json()["user"]["username"] == "bob"


async def test_public_paths_ignore_impersonation(tmp_path: Path) -> None:
    async with serve(tmp_path, table()) as http:
        resp = await http.get("/healthz", headers=[("Impersonate-User", "bob"), ("Impersonate-Group", "g1")])
        assert resp.status_code == 200


async def test_can_i_as_another_user(tmp_path: Path) -> None:
    spec = {"resourceAttributes": {"verb": "list", "resource": "configmaps", "namespace": "default"}}
    async with serve(tmp_path, table()) as http:
        mine = await http.post(SSAR_PATH, headers=[ALICE], json={"spec": spec})
        assert mine.json()["status"] == {"allowed": True}
        as_bob = await http.post(SSAR_PATH, headers=[ALICE, ("Impersonate-User", "bob")], json={"spec": spec})
        assert as_bob.status_code == 201 and as_bob.json()["status"] == {"allowed": False,
                                                                           "reason": "no rule allows it"}
        as_g1 = await http.post(SSAR_PATH, headers=[ALICE, ("Impersonate-User", "bob"), ("Impersonate-Group", "g1")],
                                json={"spec": spec})
        assert as_g1.json()["status"] == {"allowed": True}
