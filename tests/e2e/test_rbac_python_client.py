"""RBAC through the Python `kubernetes` client (issue 17): bearer tokens from configs/token.csv (plus
test users) in `Configuration(api_key={"authorization": "Bearer ..."})`, over HTTPS with the server's CA.
A denial is kube's 403 `Status`, body and all; the access-review kinds answer as kube's do.
"""
from __future__ import annotations

import json
import sys
from typing import Any, Iterator

import kubernetes
import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException


H = sys.modules["kapi_e2e_rbac_helpers"]  # loaded by conftest.py
RBAC = "rbac.authorization.k8s.io"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with H.started(tmp_path_factory.mktemp("rbac-python")) as s:
        s.apply_example_bindings()
        yield s


def api(kind: Any, server: Any, user: str | None = None, token: str | None = None) -> Any:
    """A typed API of the client (`client.CoreV1Api`, ...) as `user`; Any, as its answers are read loosely."""
    return kind(server.api_client(user, token))


def core(server: Any, user: str | None = None, token: str | None = None) -> Any:
    return api(client.CoreV1Api, server, user, token)


def meta(name: str, namespace: str | None = None, labels: dict[str, str] | None = None) -> client.V1ObjectMeta:
    return client.V1ObjectMeta(name=name, namespace=namespace, labels=labels)


def cm(name: str, namespace: str) -> client.V1ConfigMap:
    return client.V1ConfigMap(metadata=meta(name, namespace), data={"k": "v"})


def deployment(name: str, namespace: str) -> client.V1Deployment:
    labels = {"app": name}
    return client.V1Deployment(metadata=meta(name, namespace), spec=client.V1DeploymentSpec(
        selector=client.V1LabelSelector(match_labels=labels),
        template=client.V1PodTemplateSpec(metadata=meta(name, labels=labels), spec=client.V1PodSpec(
            containers=[client.V1Container(name="web", image="nginx:1.27")]))))


def forbidden_status(call: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as info:
        call(*args, **kwargs)
    assert info.value.status == 403, info.value
    return json.loads(info.value.body or "null")  # type: ignore[no-any-return]


def status(message: str, kind: str, group: str = "", name: str | None = None) -> dict[str, Any]:
    """kube's 403 Status (apierrors.NewForbidden): details carry the group, the resource as kind, the name."""
    details: dict[str, Any] = {"kind": kind}
    if group:
        details["group"] = group
    if name:
        details["name"] = name
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "message": message,
            "reason": "Forbidden", "details": details, "code": 403}


class _Wrapped:
    """An ApiClient already made (with extra default headers), in the shape `api()` takes."""

    def __init__(self, api_client: Any) -> None:
        self._client = api_client

    def api_client(self, user: str | None = None, token: str | None = None) -> Any:
        return self._client


# -- view and edit -------------------------------------------------------------------------------------------
def test_viewer_lists_and_watches_and_a_write_is_kubes_403_status(server: Any) -> None:
    ns = server.namespace("py-view")
    server.apply(H.configmap("seen", ns))
    bob = core(server, "bob")
    assert [c.metadata.name for c in bob.list_namespaced_config_map(ns).items if c.metadata.name == "seen"]
    assert bob.read_namespaced_config_map("seen", ns).data == {"k": "v"}

    watch = kubernetes.watch.Watch()
    for event in watch.stream(bob.list_namespaced_config_map, ns, timeout_seconds=5):
        if event["object"].metadata.name == "seen":
            assert event["type"] == "ADDED"
            watch.stop()
            break
    else:
        pytest.fail("bob's watch saw no configmap")

    body = forbidden_status(bob.create_namespaced_config_map, ns, cm("new", ns))
    assert body == status(H.forbidden("bob", "create", "configmaps", namespace=ns), "configmaps")
    body = forbidden_status(bob.delete_namespaced_config_map, "seen", ns)
    assert body == status(H.forbidden("bob", "delete", "configmaps", namespace=ns, name="seen"), "configmaps",
                          name="seen")
    body = forbidden_status(bob.patch_namespaced_config_map, "seen", ns, {"data": {"k": "x"}})
    assert body == status(H.forbidden("bob", "patch", "configmaps", namespace=ns, name="seen"), "configmaps",
                          name="seen")
    body = forbidden_status(bob.list_namespaced_secret, ns)
    assert body == status(H.forbidden("bob", "list", "secrets", namespace=ns), "secrets")
    apps = api(client.AppsV1Api, server, "bob")
    assert apps.list_namespaced_deployment(ns).items == []
    body = forbidden_status(apps.create_namespaced_deployment, ns, deployment("web", ns))
    assert body == status(H.forbidden("bob", "create", "deployments", "apps", namespace=ns), "deployments", "apps")
    body = forbidden_status(bob.list_node)
    assert body == status(H.forbidden("bob", "list", "nodes"), "nodes")
    assert bob.read_namespace(ns).metadata.name == ns
    assert bob.read_namespaced_config_map("seen", ns).data == {"k": "v"}


def test_editor_writes_configmaps_secrets_deployments_but_not_rbac(server: Any) -> None:
    ns = server.namespace("py-edit")
    alice = core(server, "alice")
    apps = api(client.AppsV1Api, server, "alice")
    rbac = api(client.RbacAuthorizationV1Api, server, "alice")

    alice.create_namespaced_config_map(ns, cm("app", ns))
    got = alice.read_namespaced_config_map("app", ns)
    got.data = {"k": "changed"}
    alice.replace_namespaced_config_map("app", ns, got)
    alice.patch_namespaced_config_map("app", ns, {"metadata": {"labels": {"tier": "web"}}})
    after = alice.read_namespaced_config_map("app", ns)
    assert after.data == {"k": "changed"} and after.metadata.labels == {"tier": "web"}
    alice.create_namespaced_secret(ns, client.V1Secret(metadata=meta("creds", ns), string_data={"p": "x"}))
    assert alice.read_namespaced_secret("creds", ns).data == {"p": "eA=="}
    apps.create_namespaced_deployment(ns, deployment("web", ns))
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 2}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 2
    alice.delete_namespaced_config_map("app", ns)
    alice.delete_namespaced_secret("creds", ns)
    apps.delete_namespaced_deployment("web", ns)
    assert [c.metadata.name for c in alice.list_namespaced_config_map(ns).items] == ["kube-root-ca.crt"]

    role = client.V1Role(metadata=meta("r", ns), rules=[client.V1PolicyRule(api_groups=[""], resources=["pods"],
                                                                            verbs=["get"])])
    body = forbidden_status(rbac.create_namespaced_role, ns, role)
    assert body == status(H.forbidden("alice", "create", "roles", RBAC, namespace=ns), "roles", RBAC)
    body = forbidden_status(rbac.list_namespaced_role_binding, ns)
    assert body == status(H.forbidden("alice", "list", "rolebindings", RBAC, namespace=ns), "rolebindings", RBAC)
    body = forbidden_status(alice.create_namespace, client.V1Namespace(metadata=meta(H.unique("py"))))
    assert body == status(H.forbidden("alice", "create", "namespaces"), "namespaces")
    body = forbidden_status(alice.delete_namespace, ns)
    assert body == status(H.forbidden("alice", "delete", "namespaces", name=ns), "namespaces", name=ns)
    body = forbidden_status(alice.read_node, "node-1")
    assert body == status(H.forbidden("alice", "get", "nodes", name="node-1"), "nodes", name="node-1")


# -- the review kinds ----------------------------------------------------------------------------------------
def ssar(server: Any, user: str, verb: str, resource: str, namespace: str | None = None, group: str = "",
         name: str | None = None) -> Any:
    authz = api(client.AuthorizationV1Api, server, user)
    review = client.V1SelfSubjectAccessReview(spec=client.V1SelfSubjectAccessReviewSpec(
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace,
                                                        group=group, name=name)))
    return authz.create_self_subject_access_review(review).status


def test_self_subject_access_review(server: Any) -> None:
    ns = server.namespace("py-ssar")
    allowed = ssar(server, "bob", "get", "configmaps", ns)
    assert allowed.allowed is True
    assert allowed.reason == ('RBAC: allowed by ClusterRoleBinding "kapi-example-viewers" of ClusterRole "view" '
                              'to Group "viewers"')
    assert ssar(server, "bob", "create", "configmaps", ns).allowed is False
    assert ssar(server, "bob", "get", "secrets", ns).allowed is False
    assert ssar(server, "alice", "delete", "secrets", ns, name="x").allowed is True
    assert ssar(server, "alice", "create", "roles", ns, group=RBAC).allowed is False
    assert ssar(server, "alice", "list", "deployments", ns, group="apps").allowed is True
    assert ssar(server, "ci-bot", "delete", "nodes").allowed is True

    authz = api(client.AuthorizationV1Api, server, "erin")
    url = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(non_resource_attributes=client.V1NonResourceAttributes(
            path="/healthz", verb="get")))).status
    assert url.allowed is True
    metrics = authz.create_self_subject_access_review(client.V1SelfSubjectAccessReview(
        spec=client.V1SelfSubjectAccessReviewSpec(non_resource_attributes=client.V1NonResourceAttributes(
            path="/metrics", verb="get")))).status
    assert metrics.allowed is False


def sar(server: Any, asker: str, user: str, groups: list[str], verb: str, resource: str,
        namespace: str | None = None) -> Any:
    authz = api(client.AuthorizationV1Api, server, asker)
    review = client.V1SubjectAccessReview(spec=client.V1SubjectAccessReviewSpec(
        user=user, groups=groups,
        resource_attributes=client.V1ResourceAttributes(verb=verb, resource=resource, namespace=namespace)))
    return authz.create_subject_access_review(review).status


def test_subject_access_review_and_local_subject_access_review(server: Any) -> None:
    ns = server.namespace("py-sar")
    server.apply(H.role("cm-writer", ns, H.rule(["create"], ["configmaps"])),
                 H.role_binding("dave-cm-writer", ns, "Role", "cm-writer", H.subject("User", "dave")),
                 H.role_binding("erin-admin", ns, "ClusterRole", "admin", H.subject("User", "erin")))
    # a SubjectAccessReview takes the groups it is given: none are looked up
    assert sar(server, "ci-bot", "bob", ["viewers"], "get", "configmaps", ns).allowed is True
    assert sar(server, "ci-bot", "bob", [], "get", "configmaps", ns).allowed is False
    assert sar(server, "ci-bot", "alice", ["editors"], "create", "secrets", ns).allowed is True
    assert sar(server, "ci-bot", "dave", [], "create", "configmaps", ns).allowed is True
    assert sar(server, "ci-bot", "dave", [], "create", "configmaps", "default").allowed is False

    bob = api(client.AuthorizationV1Api, server, "bob")
    body = forbidden_status(bob.create_subject_access_review, client.V1SubjectAccessReview(
        spec=client.V1SubjectAccessReviewSpec(user="bob", resource_attributes=client.V1ResourceAttributes(
            verb="get", resource="secrets"))))
    assert body == status(H.forbidden("bob", "create", "subjectaccessreviews", "authorization.k8s.io"),
                          "subjectaccessreviews", "authorization.k8s.io")

    def local(asker: str, user: str, verb: str) -> Any:
        authz = api(client.AuthorizationV1Api, server, asker)
        return authz.create_namespaced_local_subject_access_review(ns, client.V1LocalSubjectAccessReview(
            metadata=client.V1ObjectMeta(namespace=ns),
            spec=client.V1SubjectAccessReviewSpec(user=user, resource_attributes=client.V1ResourceAttributes(
                verb=verb, resource="configmaps", namespace=ns))))

    assert local("ci-bot", "dave", "create").status.allowed is True
    assert local("ci-bot", "dave", "delete").status.allowed is False
    # admin (bound in ns) may ask; edit may not
    assert local("erin", "dave", "create").status.allowed is True
    body = forbidden_status(local, "alice", "dave", "create")
    assert body == status(H.forbidden("alice", "create", "localsubjectaccessreviews", "authorization.k8s.io",
                                      namespace=ns), "localsubjectaccessreviews", "authorization.k8s.io")


def test_self_subject_rules_review(server: Any) -> None:
    ns = server.namespace("py-ssrr")
    server.apply(H.role("reader", ns, H.rule(["get", "list"], ["configmaps"]),
                        H.rule(["get"], ["secrets"], names=["only-this"])),
                 H.role_binding("dave-reader", ns, "Role", "reader", H.subject("User", "dave")))
    authz = api(client.AuthorizationV1Api, server, "dave")
    review = authz.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace=ns))).status
    assert review.incomplete is False
    rules = [{"verbs": sorted(r.verbs), "apiGroups": r.api_groups, "resources": r.resources,
              "resourceNames": r.resource_names} for r in review.resource_rules]
    assert {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"], "resourceNames": None} in rules
    assert {"verbs": ["get"], "apiGroups": [""], "resources": ["secrets"], "resourceNames": ["only-this"]} in rules
    assert any(r["resources"] == ["selfsubjectaccessreviews", "selfsubjectrulesreviews"] for r in rules), rules
    urls = {u for r in review.non_resource_rules for u in r.non_resource_urls}
    assert {"/api", "/api/*", "/apis", "/apis/*", "/version", "/healthz"} <= urls, urls

    elsewhere = authz.create_self_subject_rules_review(client.V1SelfSubjectRulesReview(
        spec=client.V1SelfSubjectRulesReviewSpec(namespace="default"))).status
    assert not any("configmaps" in r.resources for r in elsewhere.resource_rules)


# -- ServiceAccount tokens, impersonation, escalation ---------------------------------------------------------
def test_service_account_token_has_exactly_its_roles_access(server: Any) -> None:
    ns, other = server.namespace("py-sa"), server.namespace("py-sa-other")
    server.apply(H.service_account("worker", ns), H.configmap("c1", ns), H.configmap("c1", other),
                 H.role("worker", ns, H.rule(["get", "list", "create"], ["configmaps"])),
                 H.role_binding("worker", ns, "Role", "worker", H.subject("ServiceAccount", "worker", ns)))
    admin = core(server, "ci-bot")
    token = admin.create_namespaced_service_account_token(
        "worker", ns, client.AuthenticationV1TokenRequest(spec=client.V1TokenRequestSpec(audiences=[]))
    ).status.token
    who = api(client.AuthenticationV1Api, server, token=token).create_self_subject_review(
        client.V1SelfSubjectReview()).status.user_info
    sa = f"system:serviceaccount:{ns}:worker"
    assert who.username == sa

    worker = core(server, token=token)
    assert "c1" in [c.metadata.name for c in worker.list_namespaced_config_map(ns).items]
    worker.create_namespaced_config_map(ns, cm("c2", ns))
    body = forbidden_status(worker.list_namespaced_config_map, other)
    assert body == status(H.forbidden(sa, "list", "configmaps", namespace=other), "configmaps")
    body = forbidden_status(worker.read_namespaced_config_map, "c1", other)
    assert body == status(H.forbidden(sa, "get", "configmaps", namespace=other, name="c1"), "configmaps",
                          name="c1")
    body = forbidden_status(worker.create_namespaced_secret, ns, client.V1Secret(metadata=meta("s", ns)))
    assert body == status(H.forbidden(sa, "create", "secrets", namespace=ns), "secrets")
    body = forbidden_status(worker.delete_namespaced_config_map, "c1", ns)
    assert body == status(H.forbidden(sa, "delete", "configmaps", namespace=ns, name="c1"), "configmaps",
                          name="c1")


def test_impersonation_headers(server: Any) -> None:
    ns = server.namespace("py-as")
    as_alice = server.api_client("bob")
    as_alice.set_default_header("Impersonate-User", "alice")
    body = forbidden_status(api(client.CoreV1Api, _Wrapped(as_alice)).list_namespaced_config_map, ns)
    assert body == status('users "alice" is forbidden: User "bob" cannot impersonate resource "users" in API group '
                          '"" at the cluster scope', "users", name="alice")

    as_bob = server.api_client("ci-bot")
    as_bob.set_default_header("Impersonate-User", "bob")
    as_bob.set_default_header("Impersonate-Group", "viewers")
    who = api(client.AuthenticationV1Api, _Wrapped(as_bob)).create_self_subject_review(
        client.V1SelfSubjectReview()).status
    assert who.user_info.username == "bob"
    assert who.user_info.groups == ["viewers", "system:authenticated"]
    impersonated = api(client.CoreV1Api, _Wrapped(as_bob))
    assert impersonated.list_namespaced_config_map(ns).items is not None
    body = forbidden_status(impersonated.create_namespaced_config_map, ns, cm("x", ns))
    assert body == status(H.forbidden("bob", "create", "configmaps", namespace=ns), "configmaps")


def test_escalation_is_refused_with_kubes_status(server: Any) -> None:
    ns = server.namespace("py-esc")
    server.apply(H.role("role-manager", ns, H.rule(["create", "get", "list"], ["roles", "rolebindings"],
                                                   groups=[RBAC])),
                 H.role_binding("bob-role-manager", ns, "Role", "role-manager", H.subject("User", "bob")))
    rbac = api(client.RbacAuthorizationV1Api, server, "bob")

    def role(name: str, resource: str, verbs: list[str]) -> client.V1Role:
        return client.V1Role(metadata=meta(name, ns), rules=[client.V1PolicyRule(api_groups=[""],
                                                                                 resources=[resource], verbs=verbs)])

    body = forbidden_status(rbac.create_namespaced_role, ns, role("secret-reader", "secrets", ["get", "list"]))
    assert body == status('roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "bob" '
                          '(groups=["viewers" "system:authenticated"]) is attempting to grant RBAC permissions not '
                          'currently held:\n{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}',
                          "roles", RBAC, name="secret-reader")
    made = rbac.create_namespaced_role(ns, role("cm-reader", "configmaps", ["get", "list", "watch"]))
    assert made.metadata.name == "cm-reader"

    binding = client.V1RoleBinding(
        metadata=meta("give-edit", ns),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="ClusterRole", name="edit"),
        subjects=[client.RbacV1Subject(api_group=RBAC, kind="User", name="dave")])
    body = forbidden_status(rbac.create_namespaced_role_binding, ns, binding)
    assert body["reason"] == "Forbidden" and body["details"] == {"name": "give-edit", "group": RBAC,
                                                                  "kind": "rolebindings"}
    assert body["message"].startswith(
        'rolebindings.rbac.authorization.k8s.io "give-edit" is forbidden: user "bob" (groups=["viewers" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'), body["message"]
    binding = client.V1RoleBinding(
        metadata=meta("give-cm-reader", ns),
        role_ref=client.V1RoleRef(api_group=RBAC, kind="Role", name="cm-reader"),
        subjects=[client.RbacV1Subject(api_group=RBAC, kind="User", name="dave")])
    assert rbac.create_namespaced_role_binding(ns, binding).metadata.name == "give-cm-reader"
    assert "kube-root-ca.crt" in [c.metadata.name for c in core(server, "dave").list_namespaced_config_map(ns).items]
