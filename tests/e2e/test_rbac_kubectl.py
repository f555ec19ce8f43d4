"""RBAC with real kubectl (issue 17): the example token users (configs/token.csv) bound by
configs/examples/rbac-token-users.yaml, Roles and RoleBindings, resourceNames, impersonation, escalation
prevention, ServiceAccount tokens, discovery, the bootstrap policy across restarts and the
`--authorization-mode` values. Every message is kube-apiserver's own text.

One server serves the module (RBAC, the default mode); the tests that restart or need another mode start
their own. Users: alice (groups developers, editors → ClusterRole edit), bob (viewers → view), ci-bot
(system:masters), and carol, dave, erin with no groups (only what a test binds).
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator

import pytest


H = sys.modules["kapi_e2e_rbac_helpers"]  # loaded by conftest.py
F = H.GET_FORBIDDEN
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with H.started(tmp_path_factory.mktemp("rbac-kubectl")) as s:
        s.apply_example_bindings()
        yield s


def whoami(server: Any, *args: str, user: str | None = None, token: str | None = None) -> dict[str, Any]:
    result = server.kubectl("auth", "whoami", "-o", "json", *args, user=user, token=token)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["status"]["userInfo"]  # type: ignore[no-any-return]


# -- the bootstrap policy ----------------------------------------------------------------------------------
BOOTSTRAP_ROLES = ["cluster-admin", "admin", "edit", "view", "system:basic-user", "system:discovery",
                   "system:public-info-viewer"]


def test_bootstrap_cluster_roles_are_kubes(server: Any) -> None:
    roles = {r["metadata"]["name"]: r for r in H.get_json(server, "clusterroles")["items"]}
    for name in BOOTSTRAP_ROLES:
        assert name in roles, f"bootstrap ClusterRole {name} missing"
        meta = roles[name]["metadata"]
        assert meta.get("labels", {}).get("kubernetes.io/bootstrapping") == "rbac-defaults", meta
        assert meta.get("annotations", {}).get("rbac.authorization.kubernetes.io/autoupdate") == "true", meta

    admin_rules = roles["cluster-admin"]["rules"]
    assert {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]} in admin_rules
    assert {"nonResourceURLs": ["*"], "verbs": ["*"]} in admin_rules

    # view < edit < admin, built by aggregation as in kube
    assert roles["view"]["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-view": "true"}}]
    assert roles["edit"]["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-edit": "true"}}]
    assert roles["admin"]["aggregationRule"]["clusterRoleSelectors"] == [
        {"matchLabels": {"rbac.authorization.k8s.io/aggregate-to-admin": "true"}}]
    view, edit, admin = roles["view"]["rules"], roles["edit"]["rules"], roles["admin"]["rules"]
    for verb in ("get", "list", "watch"):
        assert H.covers(view, verb, "configmaps") and H.covers(view, verb, "deployments", "apps")
        assert H.covers(view, verb, "namespaces")
    assert not any(H.covers(view, verb, "secrets") for verb in ("get", "list", "watch", "create"))
    assert not H.covers(view, "create", "configmaps")
    for verb in ("get", "create", "update", "patch", "delete"):
        assert H.covers(edit, verb, "secrets") and H.covers(edit, verb, "configmaps")
        assert H.covers(edit, verb, "deployments", "apps")
    assert H.covers(edit, "impersonate", "serviceaccounts")
    assert not H.covers(edit, "create", "roles", RBAC) and not H.covers(edit, "create", "rolebindings", RBAC)
    assert not H.covers(edit, "list", "nodes") and not H.covers(edit, "create", "namespaces")
    assert H.covers(admin, "create", "roles", RBAC) and H.covers(admin, "create", "rolebindings", RBAC)
    assert H.covers(admin, "create", "localsubjectaccessreviews", "authorization.k8s.io")
    assert H.covers(admin, "delete", "secrets")

    basic = roles["system:basic-user"]["rules"]
    assert H.covers(basic, "create", "selfsubjectaccessreviews", "authorization.k8s.io")
    assert H.covers(basic, "create", "selfsubjectrulesreviews", "authorization.k8s.io")
    assert H.covers(basic, "create", "selfsubjectreviews", "authentication.k8s.io")
    discovery = roles["system:discovery"]["rules"]
    for url in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2", "/version", "/healthz", "/livez"):
        assert H.covers_url(discovery, url), url
    public = roles["system:public-info-viewer"]["rules"]
    for url in ("/healthz", "/livez", "/readyz", "/version", "/version/"):
        assert H.covers_url(public, url), url
    assert not H.covers_url(public, "/api")


def test_bootstrap_cluster_role_bindings_are_kubes(server: Any) -> None:
    bindings = {b["metadata"]["name"]: b for b in H.get_json(server, "clusterrolebindings")["items"]}

    def groups(name: str) -> set[str]:
        binding = bindings[name]
        assert binding["roleRef"] == {"apiGroup": RBAC, "kind": "ClusterRole", "name": name}
        return {s["name"] for s in binding["subjects"] if s["kind"] == "Group"}

    assert groups("cluster-admin") == {"system:masters"}
    assert groups("system:basic-user") == {"system:authenticated"}
    assert groups("system:discovery") == {"system:authenticated"}
    assert groups("system:public-info-viewer") == {"system:authenticated", "system:unauthenticated"}
    # the example bindings applied by the fixture
    assert bindings["kapi-example-viewers"]["roleRef"]["name"] == "view"
    assert bindings["kapi-example-editors"]["roleRef"]["name"] == "edit"


# -- view and edit -----------------------------------------------------------------------------------------
def test_viewer_reads_but_cannot_write(server: Any) -> None:
    ns = server.namespace("view")
    server.apply(H.configmap("settings", ns), H.secret("token", ns))

    listed = server.kubectl("get", "configmaps", "-n", ns, "-o", "name", user="bob")
    assert listed.returncode == 0, listed.stderr
    assert "configmap/settings" in listed.stdout.split()
    got = server.kubectl("get", "configmap", "settings", "-n", ns, "-o", "jsonpath={.data.k}", user="bob")
    assert got.returncode == 0 and got.stdout == "v", got.stderr
    everywhere = server.kubectl("get", "deployments", "--all-namespaces", user="bob")
    assert everywhere.returncode == 0, everywhere.stderr
    assert server.kubectl("get", "namespaces", ns, user="bob").returncode == 0

    created = server.kubectl("create", "configmap", "new", "-n", ns, "--from-literal", "a=b", user="bob")
    H.assert_kubectl_forbidden(created, H.forbidden("bob", "create", "configmaps", namespace=ns),
                               prefix="error: failed to create configmap: ")
    from_file = server.kubectl("create", "-f", "-", user="bob", input=json.dumps(H.configmap("new", ns)))
    H.assert_kubectl_forbidden(from_file, H.forbidden("bob", "create", "configmaps", namespace=ns),
                               prefix=F + 'error when creating "STDIN": ')
    deleted = server.kubectl("delete", "configmap", "settings", "-n", ns, user="bob")
    H.assert_kubectl_forbidden(deleted, H.forbidden("bob", "delete", "configmaps", namespace=ns, name="settings"),
                               prefix=F)
    labelled = server.kubectl("label", "configmap", "settings", "-n", ns, "x=y", user="bob")
    H.assert_kubectl_forbidden(labelled, H.forbidden("bob", "patch", "configmaps", namespace=ns, name="settings"))
    secrets = server.kubectl("get", "secrets", "-n", ns, user="bob")
    H.assert_kubectl_forbidden(secrets, H.forbidden("bob", "list", "secrets", namespace=ns), prefix=F)
    secret = server.kubectl("get", "secret", "token", "-n", ns, user="bob")
    H.assert_kubectl_forbidden(secret, H.forbidden("bob", "get", "secrets", namespace=ns, name="token"), prefix=F)
    nodes = server.kubectl("get", "nodes", user="bob")
    H.assert_kubectl_forbidden(nodes, H.forbidden("bob", "list", "nodes"), prefix=F)
    namespace = server.kubectl("create", "namespace", H.unique("bobs"), user="bob")
    H.assert_kubectl_forbidden(namespace, H.forbidden("bob", "create", "namespaces"))

    # the object is untouched
    after = H.get_json(server, "configmap", "settings", "-n", ns)
    assert "x" not in after["metadata"].get("labels", {})


def test_viewer_can_watch_and_a_stranger_cannot(server: Any) -> None:
    ns = server.namespace("watch")
    server.apply(H.configmap("seen", ns))
    path = f"/api/v1/namespaces/{ns}/configmaps?watch=true&timeoutSeconds=1"
    with server.http("bob") as http, http.stream("GET", path) as response:
        assert response.status_code == 200
        events = [json.loads(line) for line in response.iter_lines() if line.strip()]
    assert {"ADDED"} == {e["type"] for e in events}
    assert "seen" in [e["object"]["metadata"]["name"] for e in events]
    with server.http("erin") as http:
        response = http.get(path)
        assert response.status_code == 403
        assert response.json()["message"] == H.forbidden("erin", "watch", "configmaps", namespace=ns)


def test_editor_writes_workloads_but_not_rbac_or_cluster_scope(server: Any) -> None:
    ns = server.namespace("edit")
    alice = {"user": "alice"}

    def ok(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
        result = server.kubectl(*args, input=input, **alice)
        assert result.returncode == 0, f"alice: kubectl {' '.join(args)}: {result.stderr}"
        return result

    ok("create", "configmap", "app", "-n", ns, "--from-literal", "mode=dev")
    ok("create", "secret", "generic", "creds", "-n", ns, "--from-literal", "password=x")
    ok("create", "deployment", "web", "--image", "nginx:1.27", "-n", ns)
    assert ok("get", "secret", "creds", "-n", ns, "-o", "jsonpath={.data.password}").stdout == "eA=="
    # update (PUT) and patch
    cm = json.loads(ok("get", "configmap", "app", "-n", ns, "-o", "json").stdout)
    cm["data"]["mode"] = "prod"
    ok("replace", "-f", "-", input=json.dumps(cm))
    ok("label", "secret", "creds", "-n", ns, "tier=backend")
    ok("scale", "deployment", "web", "-n", ns, "--replicas", "3")
    assert H.get_json(server, "configmap", "app", "-n", ns)["data"]["mode"] == "prod"
    assert H.get_json(server, "deployment", "web", "-n", ns)["spec"]["replicas"] == 3
    # edit is bound cluster-wide: any namespace
    other = server.namespace("edit-other")
    ok("create", "configmap", "there", "-n", other, "--from-literal", "a=b")
    ok("delete", "configmap", "there", "-n", other)
    ok("get", "namespaces")
    ok("delete", "configmap", "app", "-n", ns)
    ok("delete", "secret", "creds", "-n", ns)
    ok("delete", "deployment", "web", "-n", ns)

    # no RBAC writes (that is `admin`), nothing cluster-scoped beyond reading namespaces
    role = server.kubectl("create", "role", "r", "--verb", "get", "--resource", "pods", "-n", ns, **alice)
    H.assert_kubectl_forbidden(role, H.forbidden("alice", "create", "roles", RBAC, namespace=ns))
    binding = server.kubectl("create", "rolebinding", "b", "--clusterrole", "view", "--user", "dave", "-n", ns,
                             **alice)
    H.assert_kubectl_forbidden(binding, H.forbidden("alice", "create", "rolebindings", RBAC, namespace=ns))
    roles = server.kubectl("get", "roles", "-n", ns, **alice)
    H.assert_kubectl_forbidden(roles, H.forbidden("alice", "list", "roles", RBAC, namespace=ns), prefix=F)
    nodes = server.kubectl("get", "nodes", **alice)
    H.assert_kubectl_forbidden(nodes, H.forbidden("alice", "list", "nodes"), prefix=F)
    namespace = server.kubectl("create", "namespace", H.unique("alices"), **alice)
    H.assert_kubectl_forbidden(namespace, H.forbidden("alice", "create", "namespaces"))
    dropped = server.kubectl("delete", "namespace", ns, **alice)
    H.assert_kubectl_forbidden(dropped, H.forbidden("alice", "delete", "namespaces", name=ns), prefix=F)
    cluster_role = server.kubectl("create", "clusterrole", "cr", "--verb", "get", "--resource", "pods", **alice)
    H.assert_kubectl_forbidden(cluster_role, H.forbidden("alice", "create", "clusterroles", RBAC))


# -- Roles, RoleBindings, resourceNames ----------------------------------------------------------------------
def test_role_binding_grants_in_its_namespace_only(server: Any) -> None:
    a, b = server.namespace("rb-a"), server.namespace("rb-b")
    server.apply(H.configmap("c1", a), H.configmap("c1", b),
                 H.role("cm-reader", a, H.rule(["get", "list"], ["configmaps"])),
                 H.role_binding("dave-cm-reader", a, "Role", "cm-reader", H.subject("User", "dave")))
    dave = {"user": "dave"}

    listed = server.kubectl("get", "configmaps", "-n", a, "-o", "name", **dave)
    assert listed.returncode == 0 and "configmap/c1" in listed.stdout.split(), listed.stderr
    assert server.kubectl("get", "configmap", "c1", "-n", a, **dave).returncode == 0

    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", b, **dave),
                               H.forbidden("dave", "list", "configmaps", namespace=b), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "configmap", "c1", "-n", b, **dave),
                               H.forbidden("dave", "get", "configmaps", namespace=b, name="c1"), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "--all-namespaces", **dave),
                               H.forbidden("dave", "list", "configmaps"), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("create", "configmap", "c2", "-n", a, **dave),
                               H.forbidden("dave", "create", "configmaps", namespace=a))

    # a RoleBinding to a ClusterRole grants that ClusterRole in the binding's namespace only
    server.apply(H.role_binding("dave-view", b, "ClusterRole", "view", H.subject("User", "dave")))
    assert server.kubectl("get", "configmaps", "-n", b, **dave).returncode == 0
    assert server.kubectl("get", "deployments", "-n", b, **dave).returncode == 0
    H.assert_kubectl_forbidden(server.kubectl("get", "deployments", "-n", a, **dave),
                               H.forbidden("dave", "list", "deployments", "apps", namespace=a), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", "default", **dave),
                               H.forbidden("dave", "list", "configmaps", namespace="default"), prefix=F)

    # deleting the binding takes the access away
    server.admin("delete", "rolebinding", "dave-cm-reader", "-n", a)
    H.assert_kubectl_forbidden(server.kubectl("get", "configmap", "c1", "-n", a, **dave),
                               H.forbidden("dave", "get", "configmaps", namespace=a, name="c1"), prefix=F)


def test_resource_names_narrow_get_and_cannot_allow_list(server: Any) -> None:
    ns = server.namespace("names")
    server.apply(H.secret("s1", ns), H.secret("s2", ns),
                 H.role("secret-s1", ns, H.rule(["get", "update"], ["secrets"], names=["s1"])),
                 H.role_binding("dave-secret-s1", ns, "Role", "secret-s1", H.subject("User", "dave")))
    dave = {"user": "dave"}
    got = server.kubectl("get", "secret", "s1", "-n", ns, "-o", "jsonpath={.metadata.name}", **dave)
    assert got.returncode == 0 and got.stdout == "s1", got.stderr
    H.assert_kubectl_forbidden(server.kubectl("get", "secret", "s2", "-n", ns, **dave),
                               H.forbidden("dave", "get", "secrets", namespace=ns, name="s2"), prefix=F)
    # authorization comes before existence: a missing name is a 403, not a 404
    H.assert_kubectl_forbidden(server.kubectl("get", "secret", "nope", "-n", ns, **dave),
                               H.forbidden("dave", "get", "secrets", namespace=ns, name="nope"), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "secrets", "-n", ns, **dave),
                               H.forbidden("dave", "list", "secrets", namespace=ns), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("delete", "secret", "s1", "-n", ns, **dave),
                               H.forbidden("dave", "delete", "secrets", namespace=ns, name="s1"), prefix=F)
    # update of the named object is allowed (PUT), of another name is not
    s1 = json.loads(server.kubectl("get", "secret", "s1", "-n", ns, "-o", "json", **dave).stdout)
    s1.setdefault("metadata", {}).setdefault("labels", {})["touched"] = "yes"
    replaced = server.kubectl("replace", "-f", "-", input=json.dumps(s1), **dave)
    assert replaced.returncode == 0, replaced.stderr
    s2 = H.get_json(server, "secret", "s2", "-n", ns)
    s2["metadata"]["labels"] = {"touched": "yes"}
    H.assert_kubectl_forbidden(server.kubectl("replace", "-f", "-", input=json.dumps(s2), **dave),
                               H.forbidden("dave", "update", "secrets", namespace=ns, name="s2"))


# -- impersonation -------------------------------------------------------------------------------------------
def test_admin_impersonates_and_the_request_runs_as_the_impersonated_user(server: Any) -> None:
    ns = server.namespace("as-admin")
    me = whoami(server, "--as", "bob")
    assert me["username"] == "bob"
    assert me["groups"] == ["system:authenticated"]  # impersonation does not look the user's groups up
    me = whoami(server, "--as", "bob", "--as-group", "viewers")
    assert me["username"] == "bob" and me["groups"] == ["viewers", "system:authenticated"]

    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", ns, "--as", "bob"),
                               H.forbidden("bob", "list", "configmaps", namespace=ns), prefix=F)
    viewed = server.kubectl("get", "configmaps", "-n", ns, "--as", "bob", "--as-group", "viewers")
    assert viewed.returncode == 0, viewed.stderr
    H.assert_kubectl_forbidden(
        server.kubectl("create", "configmap", "x", "-n", ns, "--as", "bob", "--as-group", "viewers"),
        H.forbidden("bob", "create", "configmaps", namespace=ns))


def test_impersonation_needs_the_impersonate_verb(server: Any) -> None:
    ns = server.namespace("as-bob")
    bob = {"user": "bob"}
    assert server.kubectl("get", "configmaps", "-n", ns, **bob).returncode == 0  # bob's own view works
    H.assert_kubectl_forbidden(
        server.kubectl("get", "configmaps", "-n", ns, "--as", "alice", **bob),
        'users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group "" '
        "at the cluster scope", prefix=F)

    name = H.unique("impersonate-alice")
    server.apply(H.cluster_role(name, H.rule(["impersonate"], ["users"], names=["alice"])),
                 H.cluster_role_binding(name, name, H.subject("User", "bob")))
    me = whoami(server, "--as", "alice", **bob)
    assert me["username"] == "alice" and me["groups"] == ["system:authenticated"]
    # it runs as alice, who (without her groups) may not even list configmaps
    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", ns, "--as", "alice", **bob),
                               H.forbidden("alice", "list", "configmaps", namespace=ns), prefix=F)
    # resourceNames narrows whom bob may impersonate
    H.assert_kubectl_forbidden(
        server.kubectl("get", "configmaps", "-n", ns, "--as", "carol", **bob),
        'users "carol" is forbidden: User "bob" cannot impersonate resource "users" in API group "" '
        "at the cluster scope", prefix=F)
    # groups are a separate resource
    H.assert_kubectl_forbidden(
        server.kubectl("get", "configmaps", "-n", ns, "--as", "alice", "--as-group", "editors", **bob),
        'groups "editors" is forbidden: User "bob" cannot impersonate resource "groups" in API group "" '
        "at the cluster scope", prefix=F)

    groups = H.unique("impersonate-editors")
    server.apply(H.cluster_role(groups, H.rule(["impersonate"], ["groups"], names=["editors"])),
                 H.cluster_role_binding(groups, groups, H.subject("User", "bob")))
    me = whoami(server, "--as", "alice", "--as-group", "editors", **bob)
    assert me["username"] == "alice" and me["groups"] == ["editors", "system:authenticated"]
    created = server.kubectl("create", "configmap", "by-alice", "-n", ns, "--from-literal", "a=b",
                             "--as", "alice", "--as-group", "editors", **bob)
    assert created.returncode == 0, created.stderr
    assert H.get_json(server, "configmap", "by-alice", "-n", ns)["data"] == {"a": "b"}
    # bob himself still cannot
    H.assert_kubectl_forbidden(server.kubectl("create", "configmap", "by-bob", "-n", ns, **bob),
                               H.forbidden("bob", "create", "configmaps", namespace=ns))


def test_impersonating_a_service_account(server: Any) -> None:
    ns = server.namespace("as-sa")
    server.apply(H.service_account("robot", ns))
    sa = f"system:serviceaccount:{ns}:robot"
    H.assert_kubectl_forbidden(
        server.kubectl("get", "configmaps", "-n", ns, "--as", sa, user="bob"),
        f'serviceaccounts "robot" is forbidden: User "bob" cannot impersonate resource "serviceaccounts" '
        f'in API group "" in the namespace "{ns}"', prefix=F)
    # edit grants impersonate on serviceaccounts
    me = whoami(server, "--as", sa, user="alice")
    assert me["username"] == sa
    assert set(me["groups"]) == {"system:serviceaccounts", f"system:serviceaccounts:{ns}", "system:authenticated"}
    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", ns, "--as", sa, user="alice"),
                               H.forbidden(sa, "list", "configmaps", namespace=ns), prefix=F)


# -- escalation prevention -----------------------------------------------------------------------------------
def _role_manager(server: Any, ns: str, user: str) -> None:
    server.apply(H.role("role-manager", ns, H.rule(["create", "get", "list", "update", "patch", "delete"],
                                                   ["roles", "rolebindings"], groups=[RBAC])),
                 H.role_binding(f"{user}-role-manager", ns, "Role", "role-manager", H.subject("User", user)))


BOB_GROUPS = '(groups=["viewers" "system:authenticated"])'


def test_creating_a_role_cannot_grant_what_the_creator_lacks(server: Any) -> None:
    ns = server.namespace("esc-role")
    _role_manager(server, ns, "bob")
    bob = {"user": "bob"}

    refused = server.kubectl("create", "role", "grant-secrets", "--verb", "get", "--resource", "secrets",
                             "-n", ns, **bob)
    H.assert_kubectl_forbidden(
        refused, f'roles.rbac.authorization.k8s.io "grant-secrets" is forbidden: user "bob" {BOB_GROUPS} '
        "is attempting to grant RBAC permissions not currently held:", prefix=F)
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in H.error_lines(refused)
    assert server.kubectl("get", "role", "grant-secrets", "-n", ns).returncode != 0

    # rules he holds (configmaps through view, roles through role-manager) are fine
    held = server.kubectl("create", "role", "read-cm", "--verb", "get,list", "--resource", "configmaps",
                          "-n", ns, **bob)
    assert held.returncode == 0, held.stderr
    same = server.kubectl("create", "-f", "-", **bob, input=json.dumps(
        H.role("manager-copy", ns, H.rule(["get", "create"], ["roles"], groups=[RBAC]))))
    assert same.returncode == 0, same.stderr

    # an update is checked as well
    patch = [{"op": "add", "path": "/rules/-", "value": H.rule(["list"], ["secrets"])}]
    patched = server.kubectl("patch", "role", "read-cm", "-n", ns, "--type", "json", "-p", json.dumps(patch), **bob)
    H.assert_kubectl_forbidden(
        patched, f'roles.rbac.authorization.k8s.io "read-cm" is forbidden: user "bob" {BOB_GROUPS} '
        "is attempting to grant RBAC permissions not currently held:", prefix=F)
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["list"]}' in H.error_lines(patched)

    # with `escalate` on roles he may
    server.apply(H.role("escalator", ns, H.rule(["escalate"], ["roles"], groups=[RBAC])),
                 H.role_binding("bob-escalator", ns, "Role", "escalator", H.subject("User", "bob")))
    escalated = server.kubectl("create", "role", "grant-secrets", "--verb", "get", "--resource", "secrets",
                               "-n", ns, **bob)
    assert escalated.returncode == 0, escalated.stderr
    assert H.get_json(server, "role", "grant-secrets", "-n", ns)["rules"][0]["resources"] == ["secrets"]
    # but only where that Role binds him
    other = server.namespace("esc-role-other")
    _role_manager(server, other, "bob")
    H.assert_kubectl_forbidden(
        server.kubectl("create", "role", "grant-secrets", "--verb", "get", "--resource", "secrets", "-n", other,
                       **bob),
        f'roles.rbac.authorization.k8s.io "grant-secrets" is forbidden: user "bob" {BOB_GROUPS} '
        "is attempting to grant RBAC permissions not currently held:", prefix=F)


def test_binding_a_role_cannot_grant_what_the_binder_lacks(server: Any) -> None:
    ns = server.namespace("esc-bind")
    _role_manager(server, ns, "bob")
    bob = {"user": "bob"}

    refused = server.kubectl("create", "rolebinding", "give-edit", "--clusterrole", "edit", "--user", "carol",
                             "-n", ns, **bob)
    H.assert_kubectl_forbidden(
        refused, f'rolebindings.rbac.authorization.k8s.io "give-edit" is forbidden: user "bob" {BOB_GROUPS} '
        "is attempting to grant RBAC permissions not currently held:")
    assert any('Resources:["secrets"]' in line for line in H.error_lines(refused)), refused.stderr
    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", ns, user="carol"),
                               H.forbidden("carol", "list", "configmaps", namespace=ns), prefix=F)

    # a role whose rules he holds: fine, and it takes effect
    allowed = server.kubectl("create", "rolebinding", "give-view", "--clusterrole", "view", "--user", "carol",
                             "-n", ns, **bob)
    assert allowed.returncode == 0, allowed.stderr
    assert server.kubectl("get", "configmaps", "-n", ns, user="carol").returncode == 0

    # `bind` on that very ClusterRole lets him bind it
    server.apply(H.role("binder", ns, H.rule(["bind"], ["clusterroles"], groups=[RBAC], names=["edit"])),
                 H.role_binding("bob-binder", ns, "Role", "binder", H.subject("User", "bob")))
    bound = server.kubectl("create", "rolebinding", "give-edit", "--clusterrole", "edit", "--user", "carol",
                           "-n", ns, **bob)
    assert bound.returncode == 0, bound.stderr
    made = server.kubectl("create", "secret", "generic", "by-carol", "-n", ns, "--from-literal", "a=b",
                          user="carol")
    assert made.returncode == 0, made.stderr
    # ... and only that one
    H.assert_kubectl_forbidden(
        server.kubectl("create", "rolebinding", "give-admin", "--clusterrole", "admin", "--user", "carol",
                       "-n", ns, **bob),
        f'rolebindings.rbac.authorization.k8s.io "give-admin" is forbidden: user "bob" {BOB_GROUPS} '
        "is attempting to grant RBAC permissions not currently held:")


def test_cluster_roles_and_cluster_role_bindings_are_checked_the_same_way(server: Any) -> None:
    name = H.unique("rbac-writer")
    server.apply(H.cluster_role(name, H.rule(["create", "get", "delete"], ["clusterroles", "clusterrolebindings"],
                                             groups=[RBAC])),
                 H.cluster_role_binding(name, name, H.subject("User", "dave")))
    dave = {"user": "dave"}
    groups = '(groups=["system:authenticated"])'
    refused = server.kubectl("create", "clusterrole", "dave-secrets", "--verb", "get", "--resource", "secrets",
                             **dave)
    H.assert_kubectl_forbidden(
        refused, f'clusterroles.rbac.authorization.k8s.io "dave-secrets" is forbidden: user "dave" {groups} '
        "is attempting to grant RBAC permissions not currently held:")
    assert '{APIGroups:[""], Resources:["secrets"], Verbs:["get"]}' in H.error_lines(refused)
    held = server.kubectl("create", "clusterrole", H.unique("dave-held"), "--verb", "get",
                          "--resource", "clusterroles", **dave)
    assert held.returncode == 0, held.stderr
    binding = server.kubectl("create", "clusterrolebinding", "dave-admin", "--clusterrole", "cluster-admin",
                             "--user", "dave", **dave)
    H.assert_kubectl_forbidden(
        binding, f'clusterrolebindings.rbac.authorization.k8s.io "dave-admin" is forbidden: user "dave" {groups} '
        "is attempting to grant RBAC permissions not currently held:")
    assert '{APIGroups:["*"], Resources:["*"], Verbs:["*"]}' in H.error_lines(binding)
    assert '{NonResourceURLs:["*"], Verbs:["*"]}' in H.error_lines(binding)
    H.assert_kubectl_forbidden(server.kubectl("get", "secrets", "-n", "default", **dave),
                               H.forbidden("dave", "list", "secrets", namespace="default"), prefix=F)


# -- ServiceAccount tokens -----------------------------------------------------------------------------------
def test_service_account_token_has_exactly_its_roles_access(server: Any) -> None:
    ns, other = server.namespace("sa"), server.namespace("sa-other")
    server.apply(H.service_account("builder", ns), H.configmap("c1", ns), H.configmap("c1", other),
                 H.role("builder", ns, H.rule(["get", "list", "create"], ["configmaps"])),
                 H.role_binding("builder", ns, "Role", "builder", H.subject("ServiceAccount", "builder", ns)))
    token = server.admin("create", "token", "builder", "-n", ns).stdout.strip()
    sa = f"system:serviceaccount:{ns}:builder"
    assert whoami(server, token=token)["username"] == sa

    listed = server.kubectl("get", "configmaps", "-n", ns, "-o", "name", token=token)
    assert listed.returncode == 0 and "configmap/c1" in listed.stdout.split(), listed.stderr
    made = server.kubectl("create", "configmap", "c2", "-n", ns, "--from-literal", "a=b", token=token)
    assert made.returncode == 0, made.stderr

    H.assert_kubectl_forbidden(server.kubectl("get", "configmaps", "-n", other, token=token),
                               H.forbidden(sa, "list", "configmaps", namespace=other), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "configmap", "c1", "-n", other, token=token),
                               H.forbidden(sa, "get", "configmaps", namespace=other, name="c1"), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "secrets", "-n", ns, token=token),
                               H.forbidden(sa, "list", "secrets", namespace=ns), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("delete", "configmap", "c1", "-n", ns, token=token),
                               H.forbidden(sa, "delete", "configmaps", namespace=ns, name="c1"), prefix=F)
    H.assert_kubectl_forbidden(server.kubectl("get", "pods", "-n", ns, token=token),
                               H.forbidden(sa, "list", "pods", namespace=ns), prefix=F)


# -- discovery and the public endpoints ----------------------------------------------------------------------
def test_discovery_works_for_every_authenticated_user(server: Any) -> None:
    for user in ("bob", "erin"):
        resources = server.kubectl("api-resources", "-o", "name", user=user, cache=H.unique(f"fresh-{user}"))
        assert resources.returncode == 0, resources.stderr
        names = resources.stdout.split()
        assert "configmaps" in names and "deployments.apps" in names and "roles.rbac.authorization.k8s.io" in names
        version = server.kubectl("version", "-o", "json", user=user)
        assert version.returncode == 0 and "serverVersion" in json.loads(version.stdout), version.stderr
        with server.http(user) as http:
            for path in ("/api", "/api/v1", "/apis", "/apis/apps/v1", "/openapi/v2", "/openapi/v3", "/version",
                         "/healthz", "/livez", "/readyz"):
                assert http.get(path).status_code == 200, (user, path)
            response = http.get("/metrics")
            assert response.status_code == 403
            assert response.json()["message"] == H.forbidden_path(user, "/metrics")
            response = http.get("/no/such/path")
            assert response.status_code == 403
            assert response.json()["message"] == H.forbidden_path(user, "/no/such/path")


# -- aggregation ---------------------------------------------------------------------------------------------
def test_a_cluster_role_labelled_aggregate_to_view_extends_view_edit_and_admin(server: Any) -> None:
    name = H.unique("foo-viewer")
    server.apply(H.cluster_role(name, H.rule(["get", "list", "watch"], ["foos"], groups=["hello.zeng.dev"]),
                                labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}))

    def has_foos(role_name: str) -> bool:
        return H.covers(H.get_json(server, "clusterrole", role_name).get("rules") or [], "list", "foos",
                        "hello.zeng.dev")

    for aggregate in ("view", "edit", "admin"):
        assert H.wait_for(lambda: has_foos(aggregate)), f"{aggregate} did not aggregate {name}"
    assert H.wait_for(lambda: server.kubectl("get", "foos", "-A", user="bob").returncode == 0)
    server.admin("delete", "clusterrole", name)
    assert H.wait_for(lambda: not has_foos("view")), "view kept the rules of a deleted ClusterRole"
    assert H.wait_for(lambda: server.kubectl("get", "foos", "-A", user="bob").returncode != 0)
    H.assert_kubectl_forbidden(server.kubectl("get", "foos", "-A", user="bob"),
                               H.forbidden("bob", "list", "foos", "hello.zeng.dev"), prefix=F)


# -- the bootstrap policy across restarts --------------------------------------------------------------------
def _rules(server: Any, name: str) -> list[dict[str, Any]]:
    return H.get_json(server, "clusterrole", name).get("rules") or []


def test_bootstrap_policy_is_reconciled_additively_at_restart(tmp_path: Path) -> None:
    server = H.RbacServer(tmp_path / "restart")
    try:
        server.start()
        # 1. a rule a user adds to a bootstrap role stays
        basic = H.get_json(server, "clusterrole", "system:basic-user")
        basic["rules"].append(H.rule(["get"], ["configmaps"], names=["restart-marker"]))
        server.admin("replace", "-f", "-", input=json.dumps(basic))
        # 2. a permission a user removes from an auto-updated role comes back
        discovery = H.get_json(server, "clusterrole", "system:discovery")
        for r in discovery["rules"]:
            r["nonResourceURLs"] = [u for u in r.get("nonResourceURLs", []) if u != "/openapi/*"]
        server.admin("replace", "-f", "-", input=json.dumps(discovery))
        assert not H.covers_url(_rules(server, "system:discovery"), "/openapi/v2")
        with server.http("erin") as http:
            assert http.get("/openapi/v2").status_code == 403
        # 3. autoupdate "false": the same removal stays, and so does a user's rule
        public = H.get_json(server, "clusterrole", "system:public-info-viewer")
        public["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] = "false"
        for r in public["rules"]:
            r["nonResourceURLs"] = [u for u in r.get("nonResourceURLs", []) if u != "/livez"]
        public["rules"].append({"nonResourceURLs": ["/custom-info"], "verbs": ["get"]})
        server.admin("replace", "-f", "-", input=json.dumps(public))
        # 4. a deleted bootstrap binding and role come back
        server.admin("delete", "clusterrolebinding", "system:basic-user")
        server.admin("delete", "clusterrole", "admin")
        # 5. a user's label on view, and a role aggregated into it, stay
        server.admin("label", "clusterrole", "view", "team=platform")
        server.apply(H.cluster_role("foo-viewer", H.rule(["get", "list"], ["foos"], groups=["hello.zeng.dev"]),
                                    labels={"rbac.authorization.k8s.io/aggregate-to-view": "true"}))
        assert H.wait_for(lambda: H.covers(_rules(server, "view"), "list", "foos", "hello.zeng.dev"))

        server.restart()

        for name in BOOTSTRAP_ROLES:
            assert server.kubectl("get", "clusterrole", name).returncode == 0, f"{name} missing after restart"
        for name in ("system:basic-user", "system:discovery", "system:public-info-viewer", "cluster-admin"):
            assert server.kubectl("get", "clusterrolebinding", name).returncode == 0, f"binding {name} missing"
        binding = H.get_json(server, "clusterrolebinding", "system:basic-user")
        assert {s["name"] for s in binding["subjects"]} == {"system:authenticated"}

        basic_rules = _rules(server, "system:basic-user")
        assert H.rule(["get"], ["configmaps"], names=["restart-marker"]) in basic_rules
        assert H.covers(basic_rules, "create", "selfsubjectaccessreviews", "authorization.k8s.io")

        assert H.covers_url(_rules(server, "system:discovery"), "/openapi/v2"), \
            "reconciliation did not restore /openapi/*"

        public = H.get_json(server, "clusterrole", "system:public-info-viewer")
        assert public["metadata"]["annotations"]["rbac.authorization.kubernetes.io/autoupdate"] == "false"
        assert not H.covers_url(public["rules"], "/livez"), "a role with autoupdate false was reconciled"
        assert H.covers_url(public["rules"], "/custom-info")

        assert H.covers(_rules(server, "admin"), "create", "roles", RBAC)
        view = H.get_json(server, "clusterrole", "view")
        assert view["metadata"]["labels"].get("team") == "platform"
        assert view["metadata"]["labels"].get("kubernetes.io/bootstrapping") == "rbac-defaults"
        assert H.covers(view["rules"], "list", "foos", "hello.zeng.dev")
        assert H.covers(view["rules"], "list", "configmaps")

        # the permissions work
        with server.http("erin") as http:
            assert http.get("/openapi/v2").status_code == 200
        marker = server.kubectl("get", "configmap", "restart-marker", "-n", "default", user="erin")
        assert 'Error from server (NotFound): configmaps "restart-marker" not found' in H.error_lines(marker), \
            marker.stderr
        H.assert_kubectl_forbidden(server.kubectl("get", "configmap", "other", "-n", "default", user="erin"),
                                   H.forbidden("erin", "get", "configmaps", namespace="default", name="other"),
                                   prefix=F)
    finally:
        server.stop()


def test_rules_written_into_an_aggregated_role_are_replaced_by_the_aggregation(tmp_path: Path) -> None:
    """kube's ClusterRole aggregation controller owns an aggregated role's rules ("the control plane
    overwrites any values that you manually specify in the rules field of an aggregate ClusterRole")."""
    server = H.RbacServer(tmp_path / "aggregated")
    try:
        server.start()
        view = H.get_json(server, "clusterrole", "view")
        view["rules"].append(H.rule(["get"], ["secrets"]))
        server.admin("replace", "-f", "-", input=json.dumps(view))
        assert H.wait_for(lambda: not H.covers(_rules(server, "view"), "get", "secrets")), \
            "a rule written into view's rules stayed"
        assert H.covers(_rules(server, "view"), "get", "configmaps")
    finally:
        server.stop()


# -- --authorization-mode ------------------------------------------------------------------------------------
def test_always_deny_forbids_everyone_but_system_masters(tmp_path: Path) -> None:
    server = H.RbacServer(tmp_path / "deny", ["--authorization-mode", "AlwaysDeny"])
    try:
        server.start()
        server.apply_example_bindings()  # the admin passes; RBAC bindings change nothing under AlwaysDeny
        path = "/api/v1/namespaces/default/configmaps"
        raw = server.kubectl("get", "--raw", path, user="bob")
        H.assert_kubectl_forbidden(
            raw, H.forbidden("bob", "list", "configmaps", namespace="default") + ": Everything is forbidden.",
            prefix=F)
        with server.http("alice") as http:
            response = http.post(path, json=H.configmap("no", "default"))
            assert response.status_code == 403
            body = response.json()
            assert body["reason"] == "Forbidden" and body["code"] == 403
            assert body["message"] == (H.forbidden("alice", "create", "configmaps", namespace="default")
                                       + ": Everything is forbidden.")
            api = http.get("/api")
            assert api.status_code == 403
            assert api.json()["message"] == H.forbidden_path("alice", "/api") + ": Everything is forbidden."
        ci = server.kubectl("create", "configmap", "by-ci", "-n", "default", "--from-literal", "a=b", user="ci-bot")
        assert ci.returncode == 0, ci.stderr
        assert server.kubectl("get", "configmap", "by-ci", "-n", "default").returncode == 0
        assert whoami(server, user="ci-bot")["username"] == "ci-bot"
    finally:
        server.stop()


def test_rbac_then_always_deny_adds_the_reason_to_rbac_denials(tmp_path: Path) -> None:
    server = H.RbacServer(tmp_path / "rbac-deny", ["--authorization-mode", "RBAC,AlwaysDeny"])
    try:
        server.start()
        server.apply_example_bindings()
        listed = server.kubectl("get", "configmaps", "-n", "default", user="bob")
        assert listed.returncode == 0, listed.stderr
        created = server.kubectl("create", "configmap", "no", "-n", "default", user="bob")
        H.assert_kubectl_forbidden(
            created, H.forbidden("bob", "create", "configmaps", namespace="default") + ": Everything is forbidden.")
    finally:
        server.stop()


def test_always_allow_lets_every_authenticated_user_write(tmp_path: Path) -> None:
    server = H.RbacServer(tmp_path / "allow", ["--authorization-mode", "AlwaysAllow"])
    try:
        server.start()
        made = server.kubectl("create", "configmap", "by-bob", "-n", "default", "--from-literal", "a=b", user="bob")
        assert made.returncode == 0, made.stderr
        ns = H.unique("erins")
        assert server.kubectl("create", "namespace", ns, user="erin").returncode == 0
        assert server.kubectl("get", "secrets", "-n", "default", user="erin").returncode == 0
        assert server.kubectl("get", "configmap", "by-bob", "-n", "default").returncode == 0
        yes = server.kubectl("auth", "can-i", "delete", "nodes", user="erin")
        assert yes.returncode == 0 and yes.stdout.strip() == "yes", yes.stdout + yes.stderr
    finally:
        server.stop()


def test_an_unknown_authorization_mode_is_refused_at_start(tmp_path: Path) -> None:
    server = H.RbacServer(tmp_path / "bad", ["--authorization-mode", "RBAC,Sometimes"])
    with pytest.raises(RuntimeError, match="kapi exited early") as failure:
        server.start(timeout=20)
    assert "Sometimes" in str(failure.value) and "authorization-mode" in str(failure.value)
