"""kube's bootstrap RBAC policy as recorded for v1.32.0, and the start-up reconcile rules applied to it."""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.auth.rbac import GROUP
from kapi.auth.rbac_bootstrap import (
    AUTOUPDATE,
    BOOTSTRAPPING_LABEL,
    load,
    must_recreate,
    reconcile_binding,
    reconcile_role,
    semantic,
)

Object = dict[str, Any]
AUTHENTICATED = {"apiGroup": GROUP, "kind": "Group", "name": "system:authenticated"}
UNAUTHENTICATED = {"apiGroup": GROUP, "kind": "Group", "name": "system:unauthenticated"}


def cluster_role(name: str) -> Object:
    obj = load().get("clusterroles", name)
    assert obj is not None, name
    return obj


def binding(name: str) -> Object:
    obj = load().get("clusterrolebindings", name)
    assert obj is not None, name
    return obj


def stored(obj: Object) -> Object:
    """`obj` as the server would hand it back: a copy with server-filled metadata."""
    out = copy.deepcopy(obj)
    out["metadata"].update(uid="u-1", resourceVersion="7", creationTimestamp="2024-01-01T00:00:00Z")
    return out


# -- the data -----------------------------------------------------------------------------------------------------
def test_the_policy_is_kubes_v1_32_0() -> None:
    policy = load()
    assert policy.release == "v1.32.0"
    assert load() is policy  # read once
    counts = {plural: len(objs) for plural, objs in policy.by_plural.items()}
    assert counts == {"clusterroles": 64, "clusterrolebindings": 45, "roles": 7, "rolebindings": 7}
    for plural, obj in policy.objects():
        meta = obj["metadata"]
        assert obj["apiVersion"] == f"{GROUP}/v1"
        assert obj["kind"] == {"clusterroles": "ClusterRole", "clusterrolebindings": "ClusterRoleBinding",
                               "roles": "Role", "rolebindings": "RoleBinding"}[plural]
        assert meta["labels"][BOOTSTRAPPING_LABEL] == "rbac-defaults"
        assert meta["annotations"][AUTOUPDATE] == "true"
        assert "creationTimestamp" not in meta and None not in obj.values()
        assert bool(meta.get("namespace")) == (plural in ("roles", "rolebindings"))


def test_objects_come_in_kubes_reconcile_order() -> None:
    plurals = [plural for plural, _ in load().objects()]
    assert plurals == sorted(plurals, key=["clusterroles", "clusterrolebindings", "roles", "rolebindings"].index)
    roles = [obj["metadata"]["name"] for obj in load().by_plural["clusterroles"]]
    assert roles.index("view") < roles.index("system:controller:namespace-controller")  # bootstrap before controllers


def test_cluster_admin_may_do_everything() -> None:
    assert cluster_role("cluster-admin")["rules"] == [
        {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}, {"nonResourceURLs": ["*"], "verbs": ["*"]}]
    assert binding("cluster-admin")["subjects"] == [{"apiGroup": GROUP, "kind": "Group", "name": "system:masters"}]


@pytest.mark.parametrize(("name", "selected", "also_into"), [
    ("admin", "rbac.authorization.k8s.io/aggregate-to-admin", None),
    ("edit", "rbac.authorization.k8s.io/aggregate-to-edit", "rbac.authorization.k8s.io/aggregate-to-admin"),
    ("view", "rbac.authorization.k8s.io/aggregate-to-view", "rbac.authorization.k8s.io/aggregate-to-edit"),
])
def test_user_facing_roles_are_aggregated(name: str, selected: str, also_into: str | None) -> None:
    role = cluster_role(name)
    assert role["aggregationRule"] == {"clusterRoleSelectors": [{"matchLabels": {selected: "true"}}]}
    assert "rules" not in role  # the controller fills them
    assert (role["metadata"]["labels"].get(also_into) == "true") if also_into else True
    part = cluster_role(f"system:aggregate-to-{name}")
    assert part["metadata"]["labels"][selected] == "true" and part["rules"]


def test_aggregate_to_view_reads_pods_but_not_secrets() -> None:
    rules = cluster_role("system:aggregate-to-view")["rules"]
    pods = [r for r in rules if "pods" in r.get("resources", []) and "" in r["apiGroups"]]
    assert pods and {"get", "list", "watch"} <= set(pods[0]["verbs"])
    assert not any("secrets" in r.get("resources", []) for r in rules)


@pytest.mark.parametrize(("name", "subjects"), [
    ("system:basic-user", [AUTHENTICATED]),
    ("system:discovery", [AUTHENTICATED]),
    ("system:public-info-viewer", [AUTHENTICATED, UNAUTHENTICATED]),
])
def test_everyone_may_discover(name: str, subjects: list[Object]) -> None:
    assert cluster_role(name)["rules"]
    bound = binding(name)
    assert bound["roleRef"] == {"apiGroup": GROUP, "kind": "ClusterRole", "name": name}
    assert bound["subjects"] == subjects


def test_discovery_and_public_info_cover_their_urls() -> None:
    discovery = {u for r in cluster_role("system:discovery")["rules"] for u in r.get("nonResourceURLs", [])}
    assert {"/api", "/api/*", "/apis", "/apis/*", "/openapi", "/openapi/*", "/version"} <= discovery
    public = {u for r in cluster_role("system:public-info-viewer")["rules"] for u in r.get("nonResourceURLs", [])}
    assert {"/healthz", "/livez", "/readyz", "/version"} <= public
    basic = cluster_role("system:basic-user")["rules"]
    assert any("selfsubjectaccessreviews" in r.get("resources", []) for r in basic)


def test_namespaced_roles_live_in_kube_system_and_kube_public() -> None:
    namespaces = {obj["metadata"]["namespace"] for plural, obj in load().objects() if plural in ("roles", "rolebindings")}
    assert namespaces == {"kube-system", "kube-public"}
    assert load().get("roles", "system:controller:bootstrap-signer", "kube-public") is not None
    assert load().get("roles", "system:controller:bootstrap-signer") is None  # namespaced: needs its namespace


# -- reconciling roles --------------------------------------------------------------------------------------------
def test_an_up_to_date_role_needs_no_write() -> None:
    for name in ("cluster-admin", "view", "system:discovery"):
        assert reconcile_role(stored(cluster_role(name)), cluster_role(name)) is None


def test_missing_rules_are_added_and_user_rules_kept() -> None:
    expected = cluster_role("system:discovery")
    [kubes] = expected["rules"]  # one rule: get on a list of discovery URLs
    mine = {"apiGroups": ["example.com"], "resources": ["widgets"], "verbs": ["get"]}
    partial = {"nonResourceURLs": kubes["nonResourceURLs"][:3], "verbs": ["get"]}
    existing = stored(expected)
    existing["rules"] = [mine, partial]  # the user's rule, and only part of kube's
    out = reconcile_role(existing, expected)
    assert out is not None
    assert out["rules"][:2] == [mine, partial]  # what was there stays, in place
    # kube's Covers reports the missing pieces one verb and one URL at a time, and those are appended
    assert out["rules"][2:] == [{"nonResourceURLs": [url], "verbs": ["get"]} for url in kubes["nonResourceURLs"][3:]]
    assert out["metadata"]["uid"] == "u-1" and out["metadata"]["resourceVersion"] == "7"
    assert reconcile_role(out, expected) is None  # now covered
    assert existing["rules"] == [mine, partial]  # the input was not changed


def test_missing_resource_rules_are_broken_down() -> None:
    expected = cluster_role("system:basic-user")
    existing = stored(expected)
    existing["rules"] = []
    out = reconcile_role(existing, expected)
    assert out is not None
    pieces = {(g, r, v) for rule in expected["rules"] for g in rule["apiGroups"] for r in rule["resources"]
              for v in rule["verbs"]}
    assert {(r["apiGroups"][0], r["resources"][0], r["verbs"][0]) for r in out["rules"]} == pieces
    assert len(out["rules"]) == len(pieces)


def test_rules_covered_by_a_wider_rule_are_not_missing() -> None:
    expected = cluster_role("system:aggregate-to-view")
    existing = stored(expected)
    existing["rules"] = [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]
    assert reconcile_role(existing, expected) is None


def test_missing_labels_and_annotations_are_added_existing_values_win() -> None:
    expected = cluster_role("view")
    existing = stored(expected)
    existing["metadata"]["labels"] = {BOOTSTRAPPING_LABEL: "mine", "team": "a"}
    del existing["metadata"]["annotations"]
    out = reconcile_role(existing, expected)
    assert out is not None
    assert out["metadata"]["labels"] == {BOOTSTRAPPING_LABEL: "mine", "team": "a",
                                         "rbac.authorization.k8s.io/aggregate-to-edit": "true"}
    assert out["metadata"]["annotations"] == {AUTOUPDATE: "true"}


def test_autoupdate_false_is_left_alone() -> None:
    expected = cluster_role("system:discovery")
    existing = stored(expected)
    existing["rules"] = []
    existing["metadata"]["annotations"] = {AUTOUPDATE: "false"}
    existing["metadata"]["labels"] = {}
    assert reconcile_role(existing, expected) is None
    bound = stored(binding("system:discovery"))
    bound["subjects"] = []
    bound["roleRef"]["name"] = "something-else"
    bound["metadata"]["annotations"][AUTOUPDATE] = "false"
    assert reconcile_binding(bound, binding("system:discovery")) is None


def test_aggregated_roles_keep_the_rules_the_controller_gave_them() -> None:
    expected = cluster_role("view")
    existing = stored(expected)
    existing["rules"] = [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]}]
    assert reconcile_role(existing, expected) is None


def test_aggregation_selectors_are_merged() -> None:
    expected = cluster_role("view")
    mine = {"matchLabels": {"example.com/aggregate-to-view": "true"}}
    existing = stored(expected)
    existing["aggregationRule"] = {"clusterRoleSelectors": [mine]}
    out = reconcile_role(existing, expected)
    assert out is not None
    assert out["aggregationRule"]["clusterRoleSelectors"] == [mine, *expected["aggregationRule"]["clusterRoleSelectors"]]
    assert reconcile_role(out, expected) is None
    del existing["aggregationRule"]  # kube aggregates view: the rule comes back
    back = reconcile_role(existing, expected)
    assert back is not None and back["aggregationRule"] == expected["aggregationRule"]


def test_an_aggregation_rule_kube_does_not_expect_is_removed() -> None:
    expected = cluster_role("system:discovery")
    existing = stored(expected)
    existing["aggregationRule"] = {"clusterRoleSelectors": [{"matchLabels": {"x": "y"}}]}
    out = reconcile_role(existing, expected)
    assert out is not None and "aggregationRule" not in out


# -- reconciling bindings -----------------------------------------------------------------------------------------
def test_missing_subjects_are_added_and_user_subjects_kept() -> None:
    expected = binding("system:public-info-viewer")
    mine = {"apiGroup": GROUP, "kind": "User", "name": "alice"}
    existing = stored(expected)
    existing["subjects"] = [mine, AUTHENTICATED]
    out = reconcile_binding(existing, expected)
    assert out is not None and out["subjects"] == [mine, AUTHENTICATED, UNAUTHENTICATED]
    assert not must_recreate(existing, expected)
    assert reconcile_binding(out, expected) is None
    assert reconcile_binding(stored(expected), expected) is None


def test_a_binding_to_another_role_is_replaced() -> None:
    expected = binding("system:basic-user")
    existing = stored(expected)
    existing["roleRef"] = {"apiGroup": GROUP, "kind": "ClusterRole", "name": "cluster-admin"}
    existing["subjects"].append({"apiGroup": GROUP, "kind": "User", "name": "mallory"})
    assert must_recreate(existing, expected)
    out = reconcile_binding(existing, expected)
    assert out == expected and out is not expected  # kube's binding, as a fresh copy: no uid, no extra subject


def test_semantic_equality_ignores_empty_fields() -> None:
    assert semantic({"verbs": ["get"], "resourceNames": []}) == semantic({"verbs": ["get"]})
    assert semantic([{"a": None}]) == semantic([{}])
    assert semantic({"verbs": ["get"]}) != semantic({"verbs": ["list"]})
