"""Audit policy parsing and matching, table-driven from kube's documented example policy
(kubernetes.io/docs/tasks/debug/debug-cluster/audit/#audit-policy) and kube's checker semantics."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import yaml

from kapi.api.requestinfo import RequestInfo, parse_request_info
from kapi.api.user import ANONYMOUS, UserInfo
from kapi.audit.policy import Policy, PolicyError, PolicyEvaluator, load_policy, parse_policy

# kube's example policy, verbatim (comments dropped).
KUBE_EXAMPLE = """
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages:
  - "RequestReceived"
rules:
  - level: RequestResponse
    resources:
    - group: ""
      resources: ["pods"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["pods/log", "pods/status"]
  - level: None
    resources:
    - group: ""
      resources: ["configmaps"]
      resourceNames: ["controller-leader"]
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
    resources:
    - group: ""
      resources: ["endpoints", "services"]
  - level: None
    userGroups: ["system:authenticated"]
    nonResourceURLs:
    - "/api*"
    - "/version"
  - level: Request
    resources:
    - group: ""
      resources: ["configmaps"]
    namespaces: ["kube-system"]
  - level: Metadata
    resources:
    - group: ""
      resources: ["secrets", "configmaps"]
  - level: Request
    resources:
    - group: ""
    - group: "extensions"
  - level: Metadata
    omitStages:
      - "RequestReceived"
"""

ALICE = UserInfo("alice", groups=("developers", "system:authenticated"))
KUBE_PROXY = UserInfo("system:kube-proxy", groups=("system:authenticated",))


def req(method: str, path: str, watch: bool = False) -> RequestInfo:
    return parse_request_info(method, path, watch)


# (who, method, path, watch, expected level)
EXAMPLE_CASES: list[tuple[UserInfo | None, str, str, bool, str]] = [
    (ALICE, "POST", "/api/v1/namespaces/default/pods", False, "RequestResponse"),
    (ALICE, "GET", "/api/v1/namespaces/default/pods/p1", False, "RequestResponse"),
    (ALICE, "GET", "/api/v1/pods", True, "RequestResponse"),
    (ALICE, "GET", "/api/v1/namespaces/default/pods/p1/log", False, "Metadata"),
    (ALICE, "PUT", "/api/v1/namespaces/default/pods/p1/status", False, "Metadata"),
    # "pods" does not match a subresource, nor do pods/log and pods/status: the core-group rule does.
    (ALICE, "POST", "/api/v1/namespaces/default/pods/p1/exec", False, "Request"),
    (ALICE, "PUT", "/api/v1/namespaces/kube-system/configmaps/controller-leader", False, "None"),
    (ALICE, "PUT", "/api/v1/namespaces/default/configmaps/controller-leader", False, "None"),
    (KUBE_PROXY, "GET", "/api/v1/endpoints", True, "None"),
    (KUBE_PROXY, "GET", "/api/v1/namespaces/default/services", True, "None"),
    (KUBE_PROXY, "GET", "/api/v1/namespaces/default/services", False, "Request"),  # not a watch
    (ALICE, "GET", "/api/v1/endpoints", True, "Request"),  # not kube-proxy
    (ALICE, "GET", "/apis", False, "None"),
    (ALICE, "GET", "/api/v1", False, "None"),
    (ALICE, "GET", "/apis/apps/v1", False, "None"),
    (ALICE, "GET", "/version", False, "None"),
    (ANONYMOUS, "GET", "/version", False, "Metadata"),  # not in system:authenticated
    (ALICE, "GET", "/healthz", False, "Metadata"),
    (ALICE, "GET", "/versions", False, "Metadata"),  # "/version" is exact
    (ALICE, "POST", "/api/v1/namespaces/kube-system/configmaps", False, "Request"),
    (ALICE, "GET", "/api/v1/namespaces/default/configmaps/c", False, "Metadata"),
    (ALICE, "GET", "/api/v1/namespaces/default/secrets/s", False, "Metadata"),
    (ALICE, "POST", "/api/v1/namespaces/kube-system/secrets", False, "Metadata"),
    (ALICE, "GET", "/api/v1/namespaces/default/serviceaccounts", False, "Request"),
    (ALICE, "GET", "/api/v1/nodes", False, "Request"),
    (ALICE, "GET", "/apis/extensions/v1beta1/namespaces/default/ingresses", False, "Request"),
    (ALICE, "GET", "/apis/apps/v1/namespaces/default/deployments", False, "Metadata"),
    (None, "GET", "/api/v1/namespaces/default/pods", False, "RequestResponse"),  # failed authentication
    (None, "GET", "/version", False, "Metadata"),  # a group rule never matches a user-less request
]


@pytest.fixture(scope="module")
def example() -> Policy:
    return parse_policy(yaml.safe_load(KUBE_EXAMPLE))


@pytest.mark.parametrize("who, method, path, watch, level", EXAMPLE_CASES,
                         ids=[f"{c[0].name if c[0] else 'nobody'} {c[1]} {c[2]}{' watch' if c[3] else ''}"
                              for c in EXAMPLE_CASES])
def test_kube_example_policy(example: Policy, who: UserInfo | None, method: str, path: str, watch: bool,
                             level: str) -> None:
    config = example.evaluate(who, req(method, path, watch))
    assert config.level == level
    assert config.omit_stages == frozenset({"RequestReceived"})  # the policy's omitStages join every rule's


def test_evaluator_cache_answers_as_the_policy(example: Policy) -> None:
    evaluator = PolicyEvaluator(example)
    for _ in range(2):  # the second round is served from the cache
        for who, method, path, watch, level in EXAMPLE_CASES:
            assert evaluator.evaluate(who, req(method, path, watch)).level == level


@pytest.mark.parametrize("policy_rules", [
    [{"level": "Metadata"}],
    [{"level": "None", "verbs": ["watch"]}, {"level": "Request", "users": ["alice"]}, {"level": "Metadata"}],
    [{"level": "Request", "userGroups": ["developers"], "namespaces": ["team"]},
     {"level": "None", "nonResourceURLs": ["/healthz*"]}, {"level": "RequestResponse", "verbs": ["delete"]}],
    [{"level": "None", "resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["quiet"]}]},
     {"level": "Metadata", "namespaces": ["", "team"]}],
])
def test_evaluator_keys_on_what_the_rules_look_at(policy_rules: list[dict[str, Any]]) -> None:
    policy = rules(*policy_rules)
    evaluator = PolicyEvaluator(policy)
    users = [ALICE, KUBE_PROXY, ANONYMOUS, None, UserInfo("bob", groups=("developers",))]
    requests = [req(m, p, w) for m, p, w in (
        ("GET", "/api/v1/namespaces/team/configmaps/quiet", False),
        ("GET", "/api/v1/namespaces/team/configmaps/x", False),
        ("GET", "/api/v1/namespaces/team/pods", True), ("DELETE", "/api/v1/namespaces/other/pods/p", False),
        ("GET", "/api/v1/nodes", False), ("GET", "/healthz/etcd", False), ("GET", "/version", False),
        ("POST", "/apis/apps/v1/namespaces/team/deployments", False))]
    for _ in range(2):
        for user in users:
            for info in requests:
                assert evaluator.evaluate(user, info) == policy.evaluate(user, info), (user, info)


def test_cache_keys_names_only_when_a_rule_names_objects() -> None:
    policy = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "", "resources": ["configmaps"], "resourceNames": ["quiet"]}]},
        {"level": "Metadata"}]})
    evaluator = PolicyEvaluator(policy)
    assert evaluator.evaluate(ALICE, req("GET", "/api/v1/namespaces/a/configmaps/quiet")).level == "None"
    assert evaluator.evaluate(ALICE, req("GET", "/api/v1/namespaces/a/configmaps/loud")).level == "Metadata"
    assert evaluator.evaluate(ALICE, req("GET", "/api/v1/namespaces/a/configmaps/quiet")).level == "None"


def rules(*items: dict[str, Any], **top: Any) -> Policy:
    return parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": list(items), **top})


def level(policy: Policy, info: RequestInfo, who: UserInfo | None = ALICE) -> str:
    return policy.evaluate(who, info).level


@pytest.mark.parametrize("spec, path, expected", [
    ("*", "/api/v1/namespaces/a/pods/p/log", True),  # "*": every resource and subresource
    ("*", "/api/v1/namespaces/a/pods", True),
    ("*/scale", "/apis/apps/v1/namespaces/a/deployments/d/scale", False),  # other group
    ("*/status", "/api/v1/namespaces/a/pods/p/status", True),
    ("*/status", "/api/v1/namespaces/a/pods/p", False),
    ("pods/*", "/api/v1/namespaces/a/pods/p/log", True),
    ("pods/*", "/api/v1/namespaces/a/pods/p", True),  # kube's checker: "pods/*" covers pods too
    ("pods/*", "/api/v1/namespaces/a/services/s/proxy", False),
    ("pods", "/api/v1/namespaces/a/pods/p/log", False),
    ("pods/log", "/api/v1/namespaces/a/pods/p/log", True),
])
def test_resource_wildcards(spec: str, path: str, expected: bool) -> None:
    policy = rules({"level": "Request", "resources": [{"group": "", "resources": [spec]}]})
    assert (level(policy, req("GET", path)) == "Request") is expected


def test_group_scale_wildcard_in_its_group() -> None:
    policy = rules({"level": "Request", "resources": [{"group": "apps", "resources": ["*/scale"]}]})
    assert level(policy, req("GET", "/apis/apps/v1/namespaces/a/deployments/d/scale")) == "Request"
    assert level(policy, req("GET", "/apis/apps/v1/namespaces/a/deployments/d")) == "None"


def test_namespaces_and_cluster_scope() -> None:
    policy = rules({"level": "Metadata", "namespaces": [""]}, {"level": "Request", "namespaces": ["team"]})
    assert level(policy, req("GET", "/api/v1/nodes")) == "Metadata"
    assert level(policy, req("GET", "/api/v1/namespaces/team/pods")) == "Request"
    assert level(policy, req("GET", "/api/v1/namespaces/other/pods")) == "None"
    assert level(policy, req("GET", "/healthz")) == "None"  # namespaces select resource requests only


def test_users_groups_verbs() -> None:
    policy = rules({"level": "RequestResponse", "users": ["alice"], "verbs": ["delete"]},
                   {"level": "Request", "userGroups": ["developers"]},
                   {"level": "Metadata", "verbs": ["get"]})
    pods = "/api/v1/namespaces/a/pods/p"
    assert level(policy, req("DELETE", pods)) == "RequestResponse"
    assert level(policy, req("GET", pods)) == "Request"
    bob = UserInfo("bob", groups=("system:authenticated",))
    assert level(policy, req("GET", pods), bob) == "Metadata"
    assert level(policy, req("DELETE", pods), bob) == "None"
    assert level(policy, req("GET", pods), None) == "Metadata"
    assert level(policy, req("GET", "/healthz"), bob) == "Metadata"  # a non-resource GET's verb is get


def test_non_resource_urls() -> None:
    policy = rules({"level": "None", "nonResourceURLs": ["/healthz*", "/version"]},
                   {"level": "Request", "nonResourceURLs": ["*"]}, {"level": "Metadata"})
    assert level(policy, req("GET", "/healthz/etcd")) == "None"
    assert level(policy, req("GET", "/healthz")) == "None"
    assert level(policy, req("GET", "/openapi/v2")) == "Request"
    assert level(policy, req("GET", "/api/v1/pods")) == "Metadata"  # nonResourceURLs never match resources


def test_omit_stages_and_managed_fields() -> None:
    policy = rules({"level": "Request", "users": ["alice"], "omitStages": ["ResponseComplete"],
                    "omitManagedFields": False},
                   {"level": "Metadata"}, omitStages=["RequestReceived"], omitManagedFields=True)
    alice = policy.evaluate(ALICE, req("GET", "/api/v1/pods"))
    assert alice.omit_stages == {"RequestReceived", "ResponseComplete"} and alice.omit_managed_fields is False
    bob = policy.evaluate(UserInfo("bob"), req("GET", "/api/v1/pods"))
    assert bob.omit_stages == {"RequestReceived"} and bob.omit_managed_fields is True
    nothing = rules({"level": "Metadata", "users": ["x"]}, omitStages=["Panic"]).evaluate(ALICE, req("GET", "/"))
    assert (nothing.level, nothing.omit_stages) == ("None", {"Panic"})


@pytest.mark.parametrize("doc, message", [
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": []}, "loaded illegal policy with 0 rules"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy"}, "0 rules"),
    ({"apiVersion": "audit.k8s.io/v1beta1", "kind": "Policy", "rules": [{"level": "None"}]},
     "unknown group version field audit.k8s.io/v1beta1, Kind=Policy"),
    ({"kind": "Policy", "rules": [{"level": "None"}]}, "unknown group version"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"users": ["a"]}]},
     "rules[0].level: Required value"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Everything"}]},
     'rules[0].level: Unsupported value: "Everything": supported values: "Metadata", "None", "Request", '
     '"RequestResponse"'),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "omitStages": ["Later"]}]},
     'rules[0].omitStages[0]: Invalid value: "Later": allowed stages are'),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "omitStages": ["Soon"], "rules": [{"level": "None"}]},
     'omitStages[0]: Invalid value: "Soon"'),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "nonResourceURLs": ["/x"], "resources": [{"group": ""}]}]},
     "rules cannot apply to both regular resources and non-resource URLs"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "nonResourceURLs": ["x"]}]},
     "non-resource URL rules must begin with a '/' character"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "nonResourceURLs": ["/a*b"]}]},
     "non-resource URL wildcards '*' must be the final character of the rule"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "", "resourceNames": ["x"]}]}]},
     "using resourceNames requires at least one resource"),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [
        {"level": "None", "resources": [{"group": "apps/v1", "resources": ["deployments"]}]}]},
     'rules[0].resources[0].group: Invalid value: "apps/v1"'),
    ({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "None", "users": "alice"}]},
     "rules[0].users: expected a list of strings"),
    (["not", "a", "policy"], "not an object"),
])
def test_invalid_policies(doc: Any, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(doc)
    assert message in str(caught.value)


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy",
                      "rules": [{"level": "Loud"}, {"level": "None", "nonResourceURLs": ["x"]}]})
    assert "rules[0].level" in str(caught.value) and "rules[1].nonResourceURLs[0]" in str(caught.value)


def test_unknown_fields_are_warned_about_and_ignored(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kapi.audit"):
        policy = parse_policy({"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "colour": "red",
                               "rules": [{"level": "Metadata", "verb": ["get"]}]})
    assert level(policy, req("DELETE", "/api/v1/pods")) == "Metadata"  # the misspelt "verb" narrowed nothing
    assert '"colour"' in caplog.text and '"rules[0].verb"' in caplog.text


def test_load_policy_from_yaml_and_json(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(KUBE_EXAMPLE)
    assert len(load_policy(path).rules) == 9
    as_json = tmp_path / "policy.json"
    as_json.write_text('{"apiVersion":"audit.k8s.io/v1","kind":"Policy","rules":[{"level":"Metadata"}]}')
    assert load_policy(as_json).rules[0].level == "Metadata"
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [\n")
    with pytest.raises(PolicyError, match="failed decoding"):
        load_policy(broken)
