"""The RBAC index and authorizer, and the union of authorization modes with system:masters first."""
from __future__ import annotations

from typing import Any

import pytest

from kapi.api.requestinfo import parse_request_info
from kapi.api.user import UserInfo
from kapi.auth.factory import build_authorizer
from kapi.auth.rbac import RbacAuthorizer, RbacIndex
from kapi.auth.rbac_rules import PolicyRule

BOB = UserInfo("bob", groups=("viewers", "system:authenticated"))
ROBOT = UserInfo("system:serviceaccount:ci:robot", groups=("system:serviceaccounts", "system:serviceaccounts:ci"))
ADMIN = UserInfo("root", groups=("system:masters",))


def role(kind: str, name: str, rules: list[dict[str, Any]], namespace: str = "", rv: int = 1) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(rv)}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta, "rules": rules}


def binding(kind: str, name: str, role_kind: str, role_name: str, subjects: list[dict[str, Any]],
            namespace: str = "", rv: int = 1) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "resourceVersion": str(rv)}
    if namespace:
        meta["namespace"] = namespace
    return {"kind": kind, "metadata": meta, "roleRef": {"kind": role_kind, "name": role_name},
            "subjects": subjects}


READ_CM = {"verbs": ["get", "list"], "apiGroups": [""], "resources": ["configmaps"]}


def index_with(*objects: tuple[str, dict[str, Any]]) -> RbacIndex:
    index = RbacIndex()
    index.replace(list(objects), 1)
    return index


async def allowed(authorizer: Any, user: UserInfo, method: str, path: str) -> bool:
    return (await authorizer.authorize(user, parse_request_info(method, path))).allowed


async def test_cluster_binding_to_a_group_applies_everywhere() -> None:
    rbac = RbacAuthorizer(index_with(
        ("clusterroles", role("ClusterRole", "reader", [READ_CM])),
        ("clusterrolebindings", binding("ClusterRoleBinding", "r", "ClusterRole", "reader",
                                        [{"kind": "Group", "name": "viewers"}]))))
    assert await allowed(rbac, BOB, "GET", "/api/v1/namespaces/any/configmaps")
    assert not await allowed(rbac, BOB, "POST", "/api/v1/namespaces/any/configmaps")
    assert not await allowed(rbac, UserInfo("eve"), "GET", "/api/v1/namespaces/any/configmaps")


async def test_role_binding_grants_in_its_namespace_only_and_sa_subjects_default_their_namespace() -> None:
    rbac = RbacAuthorizer(index_with(
        ("roles", role("Role", "reader", [READ_CM], namespace="ci")),
        ("rolebindings", binding("RoleBinding", "r", "Role", "reader", [{"kind": "ServiceAccount", "name": "robot"}],
                                 namespace="ci"))))
    assert await allowed(rbac, ROBOT, "GET", "/api/v1/namespaces/ci/configmaps/x")
    assert not await allowed(rbac, ROBOT, "GET", "/api/v1/namespaces/other/configmaps/x")
    assert not await allowed(rbac, ROBOT, "GET", "/api/v1/configmaps")  # all namespaces is cluster scope


async def test_a_binding_to_a_missing_role_gives_kubes_reason() -> None:
    rbac = RbacAuthorizer(index_with(
        ("clusterrolebindings", binding("ClusterRoleBinding", "r", "ClusterRole", "gone",
                                        [{"kind": "User", "name": "bob"}]))))
    decision = await rbac.authorize(BOB, parse_request_info("GET", "/api/v1/pods"))
    assert not decision.allowed
    assert decision.reason == 'RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found'


async def test_decisions_follow_index_changes_and_late_events_are_ignored() -> None:
    index = RbacIndex()
    rbac = RbacAuthorizer(index)
    path = "/api/v1/namespaces/a/configmaps"
    assert not await allowed(rbac, BOB, "GET", path)
    index.observe("clusterroles", "", "reader", role("ClusterRole", "reader", [READ_CM], rv=5))
    index.observe("clusterrolebindings", "", "r", binding("ClusterRoleBinding", "r", "ClusterRole", "reader",
                                                            [{"kind": "User", "name": "bob"}], rv=6))
    assert await allowed(rbac, BOB, "GET", path)  # the cached "no" is gone
    index.observe("clusterrolebindings", "", "r", None, 6)  # deleted (as the store saw it)
    assert not await allowed(rbac, BOB, "GET", path)
    late = binding("ClusterRoleBinding", "r", "ClusterRole", "reader", [{"kind": "User", "name": "bob"}], rv=6)
    index.observe("clusterrolebindings", "", "r", late, 6)  # the watch's older event arrives afterwards
    assert not await allowed(rbac, BOB, "GET", path)


async def test_rules_for_splits_resource_and_url_rules() -> None:
    rbac = RbacAuthorizer(index_with(
        ("clusterroles", role("ClusterRole", "mixed", [READ_CM, {"verbs": ["get"], "nonResourceURLs": ["/x"]}])),
        ("clusterrolebindings", binding("ClusterRoleBinding", "m", "ClusterRole", "mixed",
                                        [{"kind": "User", "name": "bob"}])),
        ("rolebindings", binding("RoleBinding", "broken", "Role", "nope", [{"kind": "User", "name": "bob"}],
                                 namespace="a"))))
    answer = await rbac.rules_for(BOB, "a")
    assert answer.resource_rules == (PolicyRule(("get", "list"), ("",), ("configmaps",)),)
    assert answer.non_resource_rules == (PolicyRule(("get",), non_resource_urls=("/x",)),)
    assert answer.incomplete and answer.errors == ('role.rbac.authorization.k8s.io "nope" not found',)


@pytest.mark.parametrize("modes, bob_may, reason", [
    (("AlwaysAllow",), True, ""),
    (("AlwaysDeny",), False, "Everything is forbidden."),
    (("RBAC",), False, ""),
    (("AlwaysDeny", "AlwaysAllow"), True, ""),  # no opinion, then allowed
])
async def test_modes_in_order_with_masters_first(modes: tuple[str, ...], bob_may: bool, reason: str) -> None:
    union = build_authorizer(modes, RbacAuthorizer(RbacIndex()))
    info = parse_request_info("DELETE", "/api/v1/namespaces/kube-public")
    decision = await union.authorize(BOB, info)
    assert decision.allowed is bob_may
    if not bob_may:
        assert decision.reason == reason
    assert (await union.authorize(ADMIN, info)).allowed


@pytest.mark.parametrize("modes, message", [
    ((), "at least one authorization-mode must be passed"),
    (("Node", "RBAC"), "Node is not supported"),
    (("Magic",), "'Magic' is not a valid mode"),
    (("RBAC", "RBAC"), "more than once"),
])
def test_bad_mode_lists_are_refused(modes: tuple[str, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_authorizer(modes, RbacAuthorizer(RbacIndex()))


async def test_always_allow_lists_everything_and_rbac_lists_bound_rules_only() -> None:
    allow_all = build_authorizer(("AlwaysAllow",), RbacAuthorizer(RbacIndex()))
    answer = await allow_all.rules_for(BOB, "default")
    assert answer.resource_rules == (PolicyRule(("*",), ("*",), ("*",)),)
    assert answer.non_resource_rules == (PolicyRule(("*",), non_resource_urls=("*",)),)
    rbac_only = build_authorizer(("RBAC",), RbacAuthorizer(RbacIndex()))
    empty = await rbac_only.rules_for(ADMIN, "default")  # masters' rules come from the cluster-admin binding
    assert empty.resource_rules == () and not empty.incomplete


async def test_an_allow_names_the_binding_as_kube_does() -> None:
    rbac = RbacAuthorizer(index_with(
        ("clusterroles", role("ClusterRole", "reader", [READ_CM])),
        ("clusterrolebindings", binding("ClusterRoleBinding", "r", "ClusterRole", "reader",
                                        [{"kind": "User", "name": "eve"}, {"kind": "Group", "name": "viewers"}])),
        ("rolebindings", binding("RoleBinding", "rb", "ClusterRole", "reader",
                                 [{"kind": "ServiceAccount", "name": "robot"}], namespace="ci"))))
    decision = await rbac.authorize(BOB, parse_request_info("GET", "/api/v1/configmaps"))
    assert decision.reason == 'RBAC: allowed by ClusterRoleBinding "r" of ClusterRole "reader" to Group "viewers"'
    decision = await rbac.authorize(ROBOT, parse_request_info("GET", "/api/v1/namespaces/ci/configmaps"))
    assert decision.reason == ('RBAC: allowed by RoleBinding "rb/ci" of ClusterRole "reader" to '
                               'ServiceAccount "robot/ci"')
