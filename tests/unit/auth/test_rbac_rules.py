"""RBAC rule matching and coverage, as kube's `RuleAllows` and `validation.Covers` decide them."""
from __future__ import annotations

import pytest

from kapi.api.requestinfo import RequestInfo, parse_request_info
from kapi.auth.rbac_rules import PolicyRule, breakdown, compact, rule_allows, rule_covers, uncovered


def rule(verbs: str, groups: str = "", resources: str = "", names: str = "", urls: str = "") -> PolicyRule:
    split = lambda text: tuple(text.split(",")) if text else ()  # noqa: E731
    return PolicyRule(split(verbs), tuple(groups.split(",")) if resources else (), split(resources), split(names),
                      split(urls))


def request(method: str, path: str) -> RequestInfo:
    return parse_request_info(method, path)


@pytest.mark.parametrize("policy, method, path, allowed", [
    (rule("get", "", "pods"), "GET", "/api/v1/namespaces/a/pods/p", True),
    (rule("get", "", "pods"), "GET", "/api/v1/namespaces/a/pods", False),  # list is another verb
    (rule("*", "", "pods"), "DELETE", "/api/v1/namespaces/a/pods", True),
    (rule("get", "apps", "pods"), "GET", "/api/v1/namespaces/a/pods/p", False),  # group differs
    (rule("get", "*", "*"), "GET", "/apis/apps/v1/namespaces/a/deployments/d", True),
    (rule("get", "", "pods"), "GET", "/api/v1/namespaces/a/pods/p/log", False),  # a subresource is its own
    (rule("get", "", "pods/log"), "GET", "/api/v1/namespaces/a/pods/p/log", True),
    (rule("get", "", "*/log"), "GET", "/api/v1/namespaces/a/pods/p/log", True),
    (rule("get", "", "pods/*"), "GET", "/api/v1/namespaces/a/pods/p/log", False),  # not a wildcard when matching
    (rule("get", "", "pods", names="p"), "GET", "/api/v1/namespaces/a/pods/p", True),
    (rule("get", "", "pods", names="p"), "GET", "/api/v1/namespaces/a/pods/q", False),
    (rule("list", "", "pods", names="p"), "GET", "/api/v1/namespaces/a/pods", False),  # a list names nothing
    (rule("get", urls="/healthz"), "GET", "/healthz", True),
    (rule("get", urls="/healthz"), "GET", "/healthz/etcd", False),
    (rule("get", urls="/apis/*"), "GET", "/apis/apps/v1", True),
    (rule("get", urls="/apis/*"), "GET", "/api", False),
    (rule("get", urls="*"), "GET", "/anything", True),
    (rule("get", urls="*"), "POST", "/anything", False),
    (rule("get", "*", "*"), "GET", "/version", False),  # resource rules never allow a URL
])
def test_rule_allows_like_kube(policy: PolicyRule, method: str, path: str, allowed: bool) -> None:
    assert rule_allows(policy, request(method, path)) is allowed


def test_breakdown_is_one_verb_group_resource_name_at_a_time() -> None:
    pieces = breakdown(rule("get,list", "", "pods,secrets", names="a"))
    assert len(pieces) == 4
    assert PolicyRule(("list",), ("",), ("secrets",), ("a",)) in pieces
    assert breakdown(rule("get", urls="/a,/b")) == [rule("get", urls="/a"), rule("get", urls="/b")]


@pytest.mark.parametrize("owner, sub, covers", [
    (rule("*", "*", "*"), rule("delete", "apps", "deployments"), True),
    (rule("get", "", "pods"), rule("get", "", "pods"), True),
    (rule("get", "", "pods"), rule("list", "", "pods"), False),
    (rule("get", "", "pods/*"), rule("get", "", "pods/log"), True),  # coverage knows resource/*
    (rule("get", "", "pods", names="a"), rule("get", "", "pods"), False),  # narrower cannot grant wider
    (rule("get", "", "pods"), rule("get", "", "pods", names="a"), True),
    (rule("get", "", "pods", names="a,b"), rule("get", "", "pods", names="b"), True),
    (rule("get", urls="/apis/*"), rule("get", urls="/apis/apps"), True),
    (rule("get", urls="/apis"), rule("get", urls="/apis/apps"), False),
])
def test_rule_covers_like_kube(owner: PolicyRule, sub: PolicyRule, covers: bool) -> None:
    assert rule_covers(owner, sub) is covers


def test_uncovered_lists_the_missing_pieces_and_compact_merges_verbs() -> None:
    owned = [rule("get,list", "", "configmaps")]
    missing = uncovered(owned, [rule("get,list,watch,create", "", "configmaps,secrets")])
    assert PolicyRule(("watch",), ("",), ("configmaps",)) in missing
    assert len(missing) == 2 + 4
    merged = compact(missing)
    assert [r.compact_string() for r in merged] == [
        '{APIGroups:[""], Resources:["configmaps"], Verbs:["watch" "create"]}',
        '{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list" "watch" "create"]}',
    ]
    assert uncovered(owned, [rule("get", "", "configmaps", names="x")]) == []


def test_from_dict_ignores_odd_shapes() -> None:
    assert PolicyRule.from_dict({"verbs": "get", "apiGroups": [""], "resources": ["pods", 3]}) == PolicyRule(
        (), ("",), ("pods",))
    assert PolicyRule.from_dict(None) == PolicyRule()
    assert rule("get", urls="/x").to_dict() == {"verbs": ["get"], "nonResourceURLs": ["/x"]}
