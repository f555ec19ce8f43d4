"""`kubectl auth can-i` agrees with what actually happens (issue 17).

Each row asks a SelfSubjectAccessReview through `kubectl auth can-i` (exit code 0 yes, 1 no) with one
user's token, then performs the very request with that token: the two must agree, and both must give the
answer kube-apiserver gives with the same bindings (the expected column). A denial's 403 must carry kube's
message. `kubectl auth can-i --list` (SelfSubjectRulesReview) must show a Role-bound user's rules.
"""
from __future__ import annotations

import json
import re
import sys
from dataclasses import dataclass
from typing import Any, Iterator

import pytest


H = sys.modules["kapi_e2e_rbac_helpers"]  # loaded by conftest.py
RBAC = "rbac.authorization.k8s.io"


@dataclass
class World:
    server: Any
    a: str  # carol's namespace (and robot's)
    b: str
    sa_token: str

    @property
    def sa_user(self) -> str:
        return f"system:serviceaccount:{self.a}:robot"

    def ns(self, which: str | None) -> str | None:
        return {"A": self.a, "B": self.b, None: None}[which]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with H.started(tmp_path_factory.mktemp("rbac-can-i")) as server:
        server.apply_example_bindings()
        a, b = server.namespace("can-i-a"), server.namespace("can-i-b")
        server.apply(
            H.configmap("c1", a), H.configmap("c1", b), H.secret("s1", a), H.secret("s2", a),
            H.role("carol", a, H.rule(["get", "list"], ["configmaps"]),
                   H.rule(["get"], ["secrets"], names=["s1"]),
                   H.rule(["create"], ["deployments"], groups=["apps"])),
            H.role_binding("carol", a, "Role", "carol", H.subject("User", "carol")),
            H.service_account("robot", a),
            H.role("robot", a, H.rule(["get", "list", "watch"], ["pods"])),
            H.role_binding("robot", a, "Role", "robot", H.subject("ServiceAccount", "robot", a)),
        )
        token = server.admin("create", "token", "robot", "-n", a).stdout.strip()
        yield World(server, a, b, token)


# -- what a request is ---------------------------------------------------------------------------------------
# resource argument of can-i -> (URL prefix, plural, API group, namespaced)
RESOURCES = {
    "configmaps": ("/api/v1", "configmaps", "", True),
    "secrets": ("/api/v1", "secrets", "", True),
    "pods": ("/api/v1", "pods", "", True),
    "deployments.apps": ("/apis/apps/v1", "deployments", "apps", True),
    "roles.rbac.authorization.k8s.io": (f"/apis/{RBAC}/v1", "roles", RBAC, True),
    "rolebindings.rbac.authorization.k8s.io": (f"/apis/{RBAC}/v1", "rolebindings", RBAC, True),
    "nodes": ("/api/v1", "nodes", "", False),
    "namespaces": ("/api/v1", "namespaces", "", False),
}


def body(plural: str, name: str, namespace: str | None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if plural == "configmaps":
        return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {"k": "v"}}
    if plural == "secrets":
        return {"apiVersion": "v1", "kind": "Secret", "metadata": meta, "stringData": {"k": "v"}}
    if plural == "pods":
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "c", "image": "nginx"}]}}
    if plural == "deployments":
        labels = {"app": name}
        return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta,
                "spec": {"selector": {"matchLabels": labels}, "template": {
                    "metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}}}}
    if plural == "roles":
        return {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": meta, "rules": []}
    if plural == "rolebindings":
        return {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": meta,
                "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": "view"},
                "subjects": [{"apiGroup": RBAC, "kind": "User", "name": "nobody"}]}
    if plural == "nodes":
        return {"apiVersion": "v1", "kind": "Node", "metadata": meta}
    if plural == "namespaces":
        return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}
    raise AssertionError(plural)


@dataclass(frozen=True)
class Row:
    user: str  # a token-file user, or "sa" (robot's token)
    verb: str
    resource: str  # can-i's argument: a resource (RESOURCES) or a non-resource URL
    namespace: str | None  # "A", "B" or None (cluster scope)
    name: str | None
    allowed: bool

    def __str__(self) -> str:
        where = f"-n {self.namespace}" if self.namespace else "cluster"
        target = f"{self.resource}/{self.name}" if self.name else self.resource
        return f"{self.user} {self.verb} {target} {where} -> {'yes' if self.allowed else 'no'}"


Y, N = True, False
ROWS = [
    # bob: group viewers -> ClusterRole view, everywhere
    Row("bob", "get", "configmaps", "A", "c1", Y),
    Row("bob", "list", "configmaps", "B", None, Y),
    Row("bob", "watch", "configmaps", "A", None, Y),
    Row("bob", "create", "configmaps", "A", None, N),
    Row("bob", "update", "configmaps", "A", "c1", N),
    Row("bob", "patch", "configmaps", "A", "c1", N),
    Row("bob", "delete", "configmaps", "A", "c1", N),
    Row("bob", "get", "secrets", "A", "s1", N),
    Row("bob", "list", "deployments.apps", "A", None, Y),
    Row("bob", "create", "deployments.apps", "B", None, N),
    Row("bob", "list", "nodes", None, None, N),
    Row("bob", "list", "namespaces", None, None, Y),
    Row("bob", "create", "namespaces", None, None, N),
    Row("bob", "get", "/healthz", None, None, Y),
    Row("bob", "get", "/apis", None, None, Y),
    Row("bob", "get", "/metrics", None, None, N),
    # alice: group editors -> ClusterRole edit, everywhere
    Row("alice", "create", "configmaps", "B", None, Y),
    Row("alice", "update", "configmaps", "A", "missing", Y),
    Row("alice", "list", "secrets", "B", None, Y),
    Row("alice", "delete", "secrets", "A", "missing", Y),
    Row("alice", "patch", "deployments.apps", "A", "missing", Y),
    Row("alice", "create", "roles.rbac.authorization.k8s.io", "A", None, N),
    Row("alice", "create", "rolebindings.rbac.authorization.k8s.io", "B", None, N),
    Row("alice", "list", "roles.rbac.authorization.k8s.io", "A", None, N),
    Row("alice", "list", "nodes", None, None, N),
    Row("alice", "create", "namespaces", None, None, N),
    Row("alice", "delete", "namespaces", None, "missing", N),
    # carol: a Role in A only, with a resourceNames rule
    Row("carol", "get", "configmaps", "A", "c1", Y),
    Row("carol", "list", "configmaps", "A", None, Y),
    Row("carol", "watch", "configmaps", "A", None, N),
    Row("carol", "get", "configmaps", "B", "c1", N),
    Row("carol", "list", "configmaps", "B", None, N),
    Row("carol", "create", "configmaps", "A", None, N),
    Row("carol", "get", "secrets", "A", "s1", Y),
    Row("carol", "get", "secrets", "A", "s2", N),
    Row("carol", "list", "secrets", "A", None, N),
    Row("carol", "create", "deployments.apps", "A", None, Y),
    Row("carol", "list", "deployments.apps", "A", None, N),
    Row("carol", "list", "namespaces", None, None, N),
    Row("carol", "get", "/version", None, None, Y),
    # robot: a ServiceAccount's token, a Role in A
    Row("sa", "list", "pods", "A", None, Y),
    Row("sa", "get", "pods", "A", "missing", Y),
    Row("sa", "list", "pods", "B", None, N),
    Row("sa", "get", "configmaps", "A", "c1", N),
    Row("sa", "create", "pods", "A", None, N),
    # ci-bot: system:masters; erin: nothing bound
    Row("ci-bot", "delete", "nodes", None, "missing", Y),
    Row("ci-bot", "create", "roles.rbac.authorization.k8s.io", "B", None, Y),
    Row("erin", "list", "configmaps", "A", None, N),
    Row("erin", "get", "namespaces", None, "default", N),
    Row("erin", "get", "/api", None, None, Y),
]


def can_i(world: World, row: Row) -> tuple[int, str, str]:
    target = f"{row.resource}/{row.name}" if row.name else row.resource
    args = ["auth", "can-i", row.verb, target]
    ns = world.ns(row.namespace)
    if ns:
        args += ["-n", ns]
    if row.user == "sa":
        result = world.server.kubectl(*args, token=world.sa_token)
    else:
        result = world.server.kubectl(*args, user=row.user)
    return result.returncode, result.stdout.strip(), result.stderr


def perform(world: World, row: Row) -> tuple[int, dict[str, Any] | None]:
    """The request `row` describes, with its user's token: (status, Status body for a failure)."""
    server = world.server
    client = server.http(token=world.sa_token) if row.user == "sa" else server.http(row.user)
    with client:
        if row.resource.startswith("/"):
            response = client.get(row.resource)
            return response.status_code, _status(response)
        prefix, plural, _group, namespaced = RESOURCES[row.resource]
        ns = world.ns(row.namespace)
        collection = f"{prefix}/namespaces/{ns}/{plural}" if namespaced else f"{prefix}/{plural}"
        item = f"{collection}/{row.name}"
        if row.verb == "get":
            response = client.get(item)
        elif row.verb == "list":
            response = client.get(collection)
        elif row.verb == "watch":
            with client.stream("GET", collection, params={"watch": "true", "timeoutSeconds": "1"}) as stream:
                stream.read()
                return stream.status_code, _status(stream)
        elif row.verb == "create":
            response = client.post(collection, json=body(plural, H.unique("made"), ns))
        elif row.verb == "update":
            response = client.put(item, json=body(plural, row.name or "", ns))
        elif row.verb == "patch":
            response = client.patch(item, content=json.dumps({"metadata": {"labels": {"patched": "yes"}}}),
                                    headers={"Content-Type": "application/merge-patch+json"})
        elif row.verb == "delete":
            response = client.delete(item)
        else:
            raise AssertionError(row.verb)
        return response.status_code, _status(response)


def _status(response: Any) -> dict[str, Any] | None:
    if response.status_code < 400:
        return None
    try:
        return response.json()  # type: ignore[no-any-return]
    except ValueError:
        return {"message": response.text}


def expected_message(world: World, row: Row) -> str:
    user = world.sa_user if row.user == "sa" else row.user
    if row.resource.startswith("/"):
        return H.forbidden_path(user, row.resource, row.verb)
    _prefix, plural, group, _namespaced = RESOURCES[row.resource]
    name = None if row.verb in ("create", "list", "watch") else row.name
    return H.forbidden(user, row.verb, plural, group, namespace=world.ns(row.namespace), name=name)


@pytest.mark.parametrize("row", ROWS, ids=str)
def test_can_i_agrees_with_the_request(world: World, row: Row) -> None:
    code, answer, stderr = can_i(world, row)
    status, failure = perform(world, row)
    said_yes = code == 0
    assert answer in ("yes", "no") or answer.startswith("no - "), f"can-i printed {answer!r}, stderr {stderr!r}"
    assert said_yes == answer.startswith("yes"), f"exit code {code} but printed {answer!r}"
    assert said_yes == (status != 403), f"can-i said {answer!r} but the request got {status}: {failure}"
    assert said_yes == row.allowed, f"can-i said {answer!r}, kube says {'yes' if row.allowed else 'no'}"
    if row.allowed:
        assert status not in (401, 403) and status < 500, (status, failure)
    else:
        assert status == 403 and failure is not None
        assert failure.get("kind") == "Status" and failure.get("reason") == "Forbidden", failure
        assert failure["message"] == expected_message(world, row)


def test_the_table_is_big_enough() -> None:
    assert len(ROWS) >= 20
    assert {r.allowed for r in ROWS} == {True, False}


# -- can-i --list ----------------------------------------------------------------------------------------------
LIST_LINE = re.compile(r"^(\S*)\s+\[(.*?)\]\s+\[(.*?)\]\s+\[(.*?)\]\s*$")


def can_i_list(world: World, namespace: str, **who: Any) -> dict[tuple[str, str, str], set[str]]:
    """`kubectl auth can-i --list -n NS` as {(resource, non-resource URLs, resource names): verbs}."""
    result = world.server.kubectl("auth", "can-i", "--list", "-n", namespace, **who)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines and lines[0].split() == ["Resources", "Non-Resource", "URLs", "Resource", "Names", "Verbs"], lines
    rows: dict[tuple[str, str, str], set[str]] = {}
    for line in lines[1:]:
        match = LIST_LINE.match(line)
        assert match, f"unexpected can-i --list line {line!r}"
        resource, urls, names, verbs = match.groups()
        rows.setdefault((resource, urls, names), set()).update(verbs.split())
    return rows


def test_can_i_list_shows_a_role_bound_users_rules(world: World) -> None:
    rows = can_i_list(world, world.a, user="carol")
    assert rows.get(("configmaps", "", "")) == {"get", "list"}, rows
    assert rows.get(("secrets", "", "s1")) == {"get"}, rows
    assert rows.get(("deployments.apps", "", "")) == {"create"}, rows
    assert ("secrets", "", "") not in rows
    # system:basic-user, system:discovery, system:public-info-viewer (bound to system:authenticated)
    assert rows.get(("selfsubjectaccessreviews.authorization.k8s.io", "", "")) == {"create"}, rows
    assert rows.get(("selfsubjectrulesreviews.authorization.k8s.io", "", "")) == {"create"}, rows
    assert rows.get(("selfsubjectreviews.authentication.k8s.io", "", "")) == {"create"}, rows
    urls = {key[1]: verbs for key, verbs in rows.items() if key[0] == ""}
    assert any("/api/*" in u.split() for u in urls) and any("/version" in u.split() for u in urls), urls
    assert not any(key[0] == "*.*" or "*" in verbs for key, verbs in rows.items()), rows

    elsewhere = can_i_list(world, world.b, user="carol")
    assert ("configmaps", "", "") not in elsewhere and ("secrets", "", "s1") not in elsewhere, elsewhere
    assert elsewhere.get(("selfsubjectaccessreviews.authorization.k8s.io", "", "")) == {"create"}


def test_can_i_list_for_a_viewer_and_a_service_account(world: World) -> None:
    bob = can_i_list(world, world.b, user="bob")
    assert {"get", "list", "watch"} <= bob.get(("configmaps", "", ""), set()), bob
    assert {"get", "list", "watch"} <= bob.get(("deployments.apps", "", ""), set()), bob
    assert not any(key[0] == "secrets" for key in bob), bob

    robot = can_i_list(world, world.a, token=world.sa_token)
    assert robot.get(("pods", "", "")) == {"get", "list", "watch"}, robot
    assert not any(key[0] == "configmaps" for key in robot), robot


def test_can_i_as_another_user(world: World) -> None:
    server = world.server
    yes = server.kubectl("auth", "can-i", "get", "configmaps/c1", "-n", world.a, "--as", "carol")
    assert yes.returncode == 0 and yes.stdout.strip() == "yes", yes.stdout + yes.stderr
    no = server.kubectl("auth", "can-i", "get", "configmaps/c1", "-n", world.b, "--as", "carol")
    assert no.returncode == 1 and no.stdout.strip().startswith("no"), no.stdout + no.stderr
    as_list = can_i_list(world, world.a)  # the admin's own list is everything
    assert any(key[0] == "*.*" for key in as_list), as_list
    impersonated = server.kubectl("auth", "can-i", "--list", "-n", world.a, "--as", "carol")
    assert impersonated.returncode == 0, impersonated.stderr
    assert can_i_list(world, world.a, user="carol") == _parse(impersonated.stdout)
    # a user without the impersonate verb cannot ask as someone else
    refused = server.kubectl("auth", "can-i", "get", "configmaps", "-n", world.a, "--as", "carol", user="bob")
    assert refused.returncode != 0 and not refused.stdout.strip().startswith("yes")
    assert ('users "carol" is forbidden: User "bob" cannot impersonate resource "users" in API group "" '
            "at the cluster scope") in refused.stderr


def _parse(stdout: str) -> dict[tuple[str, str, str], set[str]]:
    rows: dict[tuple[str, str, str], set[str]] = {}
    for line in stdout.splitlines()[1:]:
        match = LIST_LINE.match(line)
        assert match, line
        resource, urls, names, verbs = match.groups()
        rows.setdefault((resource, urls, names), set()).update(verbs.split())
    return rows
