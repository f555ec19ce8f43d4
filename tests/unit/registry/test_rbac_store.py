"""The RBAC stores: kube's validation, escalation prevention, and the index told of every write."""
from __future__ import annotations

from typing import Any

import pytest

from kapi.api import errors
from kapi.api.requestinfo import parse_request_info
from kapi.api.user import UserInfo
from kapi.auth.factory import build_authorizer
from kapi.auth.rbac import GROUP, RbacAuthorizer, RbacIndex
from kapi.registry.rbac_store import RbacStore
from kapi.registry.store import StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.catalogue import builtin
from kapi.storage.memory import MemoryStorage

BOB = UserInfo("bob", groups=("viewers", "system:authenticated"))
ADMIN = UserInfo("root", groups=("system:masters", "system:authenticated"))
Object = dict[str, Any]


class Rbac:
    """The four RBAC stores over one memory storage, with RBAC authorization, as create_app wires them."""

    def __init__(self) -> None:
        storage = MemoryStorage()
        self.index = RbacIndex()
        self.authorizer = build_authorizer(("RBAC",), RbacAuthorizer(self.index))
        self.stores = {plural: RbacStore(strategy_for(builtin(GROUP, plural)), storage, None, StoreOptions(),
                                         index=self.index, authorizer=self.authorizer)
                       for plural in ("roles", "clusterroles", "rolebindings", "clusterrolebindings")}

    async def create(self, plural: str, obj: Object, user: UserInfo | None = ADMIN, namespace: str = "") -> Object:
        return await self.stores[plural].create(namespace, obj, "v1", WriteOptions(user=user))

    async def allowed(self, user: UserInfo, method: str, path: str) -> bool:
        return (await self.authorizer.authorize(user, parse_request_info(method, path))).allowed


def rule(verbs: list[str], resources: list[str], group: str = "") -> Object:
    return {"verbs": verbs, "apiGroups": [group], "resources": resources}


def role(name: str, *rules: Object, kind: str = "Role", **extra: Any) -> Object:
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name}, "rules": list(rules), **extra}


def binding(name: str, role_kind: str, role_name: str, *subjects: Object, kind: str = "RoleBinding") -> Object:
    return {"apiVersion": f"{GROUP}/v1", "kind": kind, "metadata": {"name": name},
            "roleRef": {"apiGroup": GROUP, "kind": role_kind, "name": role_name}, "subjects": list(subjects)}


def user(name: str) -> Object:
    return {"kind": "User", "apiGroup": GROUP, "name": name}


async def grant(rbac: Rbac, namespace: str, name: str, *rules: Object) -> None:
    """Bob gets `rules` in `namespace` (made by an administrator)."""
    await rbac.create("roles", role(name, *rules), namespace=namespace)
    await rbac.create("rolebindings", binding(name, "Role", name, user("bob")), namespace=namespace)


async def test_a_binding_applies_to_the_next_request_at_once() -> None:
    rbac = Rbac()
    path = "/api/v1/namespaces/team/configmaps"
    assert not await rbac.allowed(BOB, "GET", path)
    await grant(rbac, "team", "reader", rule(["list"], ["configmaps"]))
    assert await rbac.allowed(BOB, "GET", path)
    await rbac.stores["rolebindings"].delete("team", "reader", "v1", None, WriteOptions(user=ADMIN))
    assert not await rbac.allowed(BOB, "GET", path)


async def test_escalation_is_refused_with_kubes_message() -> None:
    rbac = Rbac()
    await grant(rbac, "team", "role-maker", rule(["create"], ["roles"], GROUP), rule(["get"], ["configmaps"]))
    await rbac.create("roles", role("ok", rule(["get"], ["configmaps"])), user=BOB, namespace="team")
    with pytest.raises(errors.Forbidden) as caught:
        await rbac.create("roles", role("too-much", rule(["get", "list"], ["secrets"]), rule(["get"], ["configmaps"])),
                          user=BOB, namespace="team")
    assert caught.value.message == (
        'roles.rbac.authorization.k8s.io "too-much" is forbidden: user "bob" (groups=["viewers" '
        '"system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n'
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}')
    with pytest.raises(errors.Forbidden):  # the rules hold in "team" only
        await rbac.create("roles", role("elsewhere", rule(["get"], ["configmaps"])), user=BOB, namespace="other")


async def test_escalate_and_bind_verbs_lift_the_check() -> None:
    rbac = Rbac()
    await grant(rbac, "team", "powers", rule(["create"], ["roles", "rolebindings"], GROUP),
                rule(["escalate"], ["roles"], GROUP))
    await rbac.create("roles", role("secrets", rule(["*"], ["secrets"])), user=BOB, namespace="team")
    with pytest.raises(errors.Forbidden, match="not currently held"):
        await rbac.create("rolebindings", binding("b", "Role", "secrets", user("eve")), user=BOB, namespace="team")
    await rbac.create("roles", role("binder", rule(["bind"], ["roles"], GROUP)), namespace="team")
    await rbac.create("rolebindings", binding("binder", "Role", "binder", user("bob")), namespace="team")
    await rbac.create("rolebindings", binding("b", "Role", "secrets", user("eve")), user=BOB, namespace="team")
    assert await rbac.allowed(UserInfo("eve"), "DELETE", "/api/v1/namespaces/team/secrets/x")


async def test_binding_to_a_missing_role_by_a_plain_user_is_not_found() -> None:
    rbac = Rbac()
    await grant(rbac, "team", "maker", rule(["create"], ["rolebindings"], GROUP))
    with pytest.raises(errors.NotFound, match='clusterrole.rbac.authorization.k8s.io "ghost" not found'):
        await rbac.create("rolebindings", binding("b", "ClusterRole", "ghost", user("bob")), user=BOB,
                          namespace="team")


async def test_aggregation_rule_needs_everything() -> None:
    rbac = Rbac()
    await rbac.create("clusterroles", role("maker", rule(["create"], ["clusterroles"], GROUP), kind="ClusterRole"))
    await rbac.create("clusterrolebindings", binding("maker", "ClusterRole", "maker", user("bob"),
                                                     kind="ClusterRoleBinding"))
    aggregated = role("agg", kind="ClusterRole", aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"a": "b"}}]})
    with pytest.raises(errors.Forbidden, match="must have cluster-admin privileges to use the aggregationRule"):
        await rbac.create("clusterroles", aggregated, user=BOB)
    await rbac.create("clusterroles", aggregated, user=ADMIN)


async def test_masters_and_the_servers_controllers_pass() -> None:
    rbac = Rbac()
    await rbac.create("clusterroles", role("all", rule(["*"], ["*"], "*"), kind="ClusterRole"), user=ADMIN)
    await rbac.create("clusterroles", role("all2", rule(["*"], ["*"], "*"), kind="ClusterRole"), user=None)


@pytest.mark.parametrize("plural, obj, message", [
    ("roles", role("r", {"apiGroups": [""], "resources": ["pods"]}),
     "rules[0].verbs: Required value"),  # the schema says so first
    ("roles", role("r", {"verbs": ["get"], "nonResourceURLs": ["/x"]}),
     "rules[0].nonResourceURLs: Invalid value: [\"/x\"]: namespaced rules cannot apply to non-resource URLs"),
    ("clusterroles", role("r", {"verbs": ["get"], "resources": ["pods"]}, kind="ClusterRole"),
     "rules[0].apiGroups: Required value: resource rules must supply at least one api group"),
    ("rolebindings", binding("b", "Secret", "x", user("u")),
     'roleRef.kind: Unsupported value: "Secret": supported values: "Role", "ClusterRole"'),
    ("clusterrolebindings", binding("b", "Role", "x", user("u"), kind="ClusterRoleBinding"),
     'roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole"'),
    ("rolebindings", binding("b", "Role", "x", {"kind": "Robot", "name": "r"}),
     'subjects[0].kind: Unsupported value: "Robot"'),
    ("clusterrolebindings", binding("b", "ClusterRole", "x", {"kind": "ServiceAccount", "name": "r"},
                                    kind="ClusterRoleBinding"),
     "subjects[0].namespace: Required value"),
])
async def test_kubes_validation(plural: str, obj: Object, message: str) -> None:
    rbac = Rbac()
    with pytest.raises(errors.Invalid) as caught:
        await rbac.create(plural, obj, namespace="team" if plural.startswith("role") else "")
    assert message in caught.value.message


async def test_names_are_path_segments_defaults_fill_api_groups_and_role_ref_is_fixed() -> None:
    rbac = Rbac()
    created = await rbac.create("clusterroles", role("system:my-role", rule(["get"], ["pods"]), kind="ClusterRole"))
    assert created["metadata"]["name"] == "system:my-role"
    raw = binding("system:b", "ClusterRole", "system:my-role", {"kind": "Group", "name": "g"},
                  kind="ClusterRoleBinding")
    del raw["roleRef"]["apiGroup"]
    made = await rbac.create("clusterrolebindings", raw)
    assert made["roleRef"]["apiGroup"] == GROUP and made["subjects"][0]["apiGroup"] == GROUP
    made["roleRef"]["name"] = "other"
    with pytest.raises(errors.Invalid, match="roleRef: Invalid value: .*cannot change roleRef"):
        await rbac.stores["clusterrolebindings"].update("", "system:b", made, "v1", "", WriteOptions(user=ADMIN))
    with pytest.raises(errors.Invalid, match="may not contain '%'"):
        await rbac.create("clusterroles", role("a%b", kind="ClusterRole"))
