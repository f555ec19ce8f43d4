"""kube's audit policy (`audit.k8s.io/v1 Policy`): parsing, kube's validation, and rule matching.

A request is audited at the level of the first rule that matches it (kube's
`policyRuleEvaluator`); no match means level None. A rule matches when every
field it sets matches:

    users          the user's name is listed
    userGroups     one of the user's groups is listed
    verbs          the request's verb (get, list, watch, create, …, or the lower-case HTTP method of a
                   non-resource request) is listed
    resources      (with namespaces) a resource request whose API group is a listed `group` and whose
                   resource is listed: `pods`, `pods/log` (a subresource), `*` (anything, subresources
                   too), `*/scale` (that subresource of anything), `pods/*` (pods and its subresources);
                   `resourceNames` narrows a group's entry to those object names
    namespaces     a resource request in a listed namespace ("" = cluster-scoped)
    nonResourceURLs a non-resource request whose path is listed, `*`, or starts with a `/prefix*`

A user-less request (one that failed authentication) matches no rule that names users or groups.
Policy-level `omitStages` add to every rule's; `omitManagedFields` is the default of the rules that do
not say. Matching is cached per request shape, so a busy server evaluates each shape once.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.api.validation import dns1123_subdomain_errors

log = logging.getLogger("kapi.audit")

API_VERSION = "audit.k8s.io/v1"
NONE, METADATA, REQUEST, REQUEST_RESPONSE = "None", "Metadata", "Request", "RequestResponse"
LEVELS = (NONE, METADATA, REQUEST, REQUEST_RESPONSE)
RANK = {level: rank for rank, level in enumerate(LEVELS)}
REQUEST_RECEIVED, RESPONSE_STARTED, RESPONSE_COMPLETE, PANIC = (
    "RequestReceived", "ResponseStarted", "ResponseComplete", "Panic")
STAGES = (REQUEST_RECEIVED, RESPONSE_STARTED, RESPONSE_COMPLETE, PANIC)
_CACHE_LIMIT = 4096

_POLICY_FIELDS = {"apiVersion", "kind", "metadata", "rules", "omitStages", "omitManagedFields"}
_RULE_FIELDS = {"level", "users", "userGroups", "verbs", "resources", "namespaces", "nonResourceURLs",
                "omitStages", "omitManagedFields"}
_GROUP_FIELDS = {"group", "resources", "resourceNames"}


class PolicyError(ValueError):
    """A policy file kube-apiserver would refuse; `str()` lists kube's field errors."""


@dataclass(frozen=True)
class GroupResources:
    group: str = ""
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()

    def matches(self, resource: str, subresource: str, name: str) -> bool:
        """kube's `ruleMatchesResource` for one entry whose group already matched."""
        if not self.resources:
            return True
        if self.resource_names and name not in self.resource_names:
            return False
        combined = f"{resource}/{subresource}" if subresource else resource
        for res in self.resources:
            if res == combined or res == "*":
                return True
            if subresource and res.startswith("*/") and res[2:] == subresource:
                return True
            if res.endswith("/*") and res[:-2] == resource:
                return True
        return False


@dataclass(frozen=True)
class PolicyRule:
    level: str
    users: tuple[str, ...] = ()
    user_groups: tuple[str, ...] = ()
    verbs: tuple[str, ...] = ()
    resources: tuple[GroupResources, ...] = ()
    namespaces: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool | None = None

    def matches(self, user: UserInfo | None, info: RequestInfo) -> bool:
        """kube's `ruleMatches`."""
        if self.users and (user is None or user.name not in self.users):
            return False
        if self.user_groups and (user is None or not any(g in self.user_groups for g in user.groups)):
            return False
        if self.verbs and info.verb not in self.verbs:
            return False
        if self.namespaces or self.resources:
            return self._matches_resource(info)
        if self.non_resource_urls:
            return not info.is_resource_request and any(_path_matches(info.path, spec)
                                                        for spec in self.non_resource_urls)
        return True

    def _matches_resource(self, info: RequestInfo) -> bool:
        if not info.is_resource_request:
            return False
        if self.namespaces and info.namespace not in self.namespaces:
            return False
        if not self.resources:
            return True
        return any(entry.group == info.group and entry.matches(info.resource, info.subresource, info.name)
                   for entry in self.resources)


def _path_matches(path: str, spec: str) -> bool:
    """kube's `pathMatches`: `*`, the exact path, or a trailing-`*` prefix."""
    return spec == "*" or spec == path or (spec.endswith("*") and path.startswith(spec.rstrip("*")))


@dataclass(frozen=True)
class RequestAuditConfig:
    """What the policy says about one request: its level, the stages left out, whether managedFields go."""

    level: str
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False


@dataclass(frozen=True)
class Policy:
    rules: tuple[PolicyRule, ...]
    omit_stages: frozenset[str] = frozenset()
    omit_managed_fields: bool = False

    def evaluate(self, user: UserInfo | None, info: RequestInfo) -> RequestAuditConfig:
        """The first matching rule's config (its stages joined with the policy's), else level None."""
        for rule in self.rules:
            if rule.matches(user, info):
                managed = self.omit_managed_fields if rule.omit_managed_fields is None else rule.omit_managed_fields
                return RequestAuditConfig(rule.level, rule.omit_stages | self.omit_stages, managed)
        return RequestAuditConfig(NONE, self.omit_stages, self.omit_managed_fields)


class PolicyEvaluator:
    """`Policy.evaluate` with a bounded cache keyed by only what the rules look at.

    A policy whose first rule matches everything needs no key at all; object names and paths are part of the
    key only when some rule names objects or URLs, so a GET of many objects shares one entry."""

    def __init__(self, policy: Policy) -> None:
        self.policy = policy
        rules = policy.rules
        self._always = policy.evaluate(None, RequestInfo(path="/", verb="get")) if rules and not any(
            (rules[0].users, rules[0].user_groups, rules[0].verbs, rules[0].resources, rules[0].namespaces,
             rules[0].non_resource_urls)) else None
        self._users = any(rule.users for rule in rules)
        self._groups = any(rule.user_groups for rule in rules)
        self._verbs = any(rule.verbs for rule in rules)
        self._resources = any(rule.resources or rule.namespaces for rule in rules)
        self._names = any(entry.resource_names for rule in rules for entry in rule.resources)
        self._paths = any(rule.non_resource_urls for rule in rules)
        self._cache: dict[tuple[Any, ...], RequestAuditConfig] = {}

    def evaluate(self, user: UserInfo | None, info: RequestInfo) -> RequestAuditConfig:
        if self._always is not None:
            return self._always
        resource = info.is_resource_request
        key = (
            (user is None, user.name if self._users and user is not None else None,
             user.groups if self._groups and user is not None else None,
             info.verb if self._verbs else None, resource)
            + ((info.group, info.resource, info.subresource, info.namespace, info.name if self._names else None)
               if resource and self._resources else (info.path,) if not resource and self._paths else ()))
        found = self._cache.get(key)
        if found is None:
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            found = self._cache[key] = self.policy.evaluate(user, info)
        return found


# -- parsing -------------------------------------------------------------------------------------------------
def load_policy(path: Path) -> Policy:
    """The policy in a YAML or JSON file; PolicyError (or OSError) says why it cannot be used."""
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise PolicyError(f"failed decoding: {exc}") from None
    return parse_policy(doc)


def parse_policy(doc: Any) -> Policy:
    """kube's `LoadPolicyFromBytes`: an `audit.k8s.io/v1` Policy with at least one rule, validated as kube does.

    Unknown fields are warned about and ignored (kube falls back to lenient decoding); wrong types fail."""
    if not isinstance(doc, Mapping):
        raise PolicyError("failed decoding: the policy is not an object")
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if api_version != API_VERSION or kind != "Policy":
        raise PolicyError(f"unknown group version field {_gvk(api_version, kind)} in policy "
                          f"(expected apiVersion: {API_VERSION}, kind: Policy)")
    _warn_unknown(doc, _POLICY_FIELDS, "")
    problems: list[str] = []
    raw_rules = doc.get("rules") or []
    if not isinstance(raw_rules, list):
        raise PolicyError("failed decoding: rules: expected a list")
    omit = _stages(doc.get("omitStages"), "omitStages", problems)
    rules = tuple(_rule(raw, f"rules[{i}]", problems) for i, raw in enumerate(raw_rules))
    managed = _bool(doc.get("omitManagedFields"), "omitManagedFields")
    if problems:
        raise PolicyError(", ".join(problems) if len(problems) == 1 else "[" + ", ".join(problems) + "]")
    if not rules:
        raise PolicyError("loaded illegal policy with 0 rules")
    return Policy(rules, omit, bool(managed))


def _gvk(api_version: Any, kind: Any) -> str:
    group, _, version = str(api_version or "").rpartition("/")
    return f"{group}/{version}, Kind={kind or ''}"


def _warn_unknown(raw: Mapping[str, Any], known: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in raw if k not in known)
    if unknown:
        log.warning("Audit policy contains errors, falling back to lenient decoding: unknown field(s) %s",
                    ", ".join(f'"{where}{k}"' for k in unknown))


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(item, str) for item in raw):
        raise PolicyError(f"failed decoding: {where}: expected a list of strings")
    return tuple(raw)


def _bool(raw: Any, where: str) -> bool | None:
    if raw is not None and not isinstance(raw, bool):
        raise PolicyError(f"failed decoding: {where}: expected true or false")
    return raw


def _stages(raw: Any, where: str, problems: list[str]) -> frozenset[str]:
    stages = _strings(raw, where)
    for i, stage in enumerate(stages):
        if stage not in STAGES:
            problems.append(f'{where}[{i}]: Invalid value: "{stage}": allowed stages are {",".join(STAGES)}')
    return frozenset(stages)


def _rule(raw: Any, where: str, problems: list[str]) -> PolicyRule:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"failed decoding: {where}: expected an object")
    _warn_unknown(raw, _RULE_FIELDS, f"{where}.")
    level = raw.get("level")
    if level is None or level == "":
        problems.append(f"{where}.level: Required value")
    elif level not in LEVELS:
        supported = ", ".join(f'"{name}"' for name in sorted(LEVELS))
        problems.append(f'{where}.level: Unsupported value: "{level}": supported values: {supported}')
    urls = _strings(raw.get("nonResourceURLs"), f"{where}.nonResourceURLs")
    namespaces = _strings(raw.get("namespaces"), f"{where}.namespaces")
    raw_groups = raw.get("resources") or []
    if not isinstance(raw_groups, list):
        raise PolicyError(f"failed decoding: {where}.resources: expected a list")
    groups = tuple(_group(g, f"{where}.resources[{i}]", problems) for i, g in enumerate(raw_groups))
    if urls and (groups or namespaces):
        problems.append(f"{where}.nonResourceURLs: Invalid value: {list(urls)}: rules cannot apply to both "
                        "regular resources and non-resource URLs")
    for i, url in enumerate(urls):
        if url == "*":
            continue
        if not url.startswith("/"):
            problems.append(f'{where}.nonResourceURLs[{i}]: Invalid value: "{url}": non-resource URL rules '
                            "must begin with a '/' character")
        if url and "*" in url[:-1]:
            problems.append(f'{where}.nonResourceURLs[{i}]: Invalid value: "{url}": non-resource URL wildcards '
                            "'*' must be the final character of the rule")
    return PolicyRule(
        level=str(level or ""), users=_strings(raw.get("users"), f"{where}.users"),
        user_groups=_strings(raw.get("userGroups"), f"{where}.userGroups"),
        verbs=_strings(raw.get("verbs"), f"{where}.verbs"), resources=groups, namespaces=namespaces,
        non_resource_urls=urls, omit_stages=_stages(raw.get("omitStages"), f"{where}.omitStages", problems),
        omit_managed_fields=_bool(raw.get("omitManagedFields"), f"{where}.omitManagedFields"))


def _group(raw: Any, where: str, problems: list[str]) -> GroupResources:
    if not isinstance(raw, Mapping):
        raise PolicyError(f"failed decoding: {where}: expected an object")
    _warn_unknown(raw, _GROUP_FIELDS, f"{where}.")
    group = raw.get("group") or ""
    if not isinstance(group, str):
        raise PolicyError(f"failed decoding: {where}.group: expected a string")
    if group:
        found = dns1123_subdomain_errors(group)
        if found:
            problems.append(f'{where}.group: Invalid value: "{group}": {",".join(found)}')
    resources = _strings(raw.get("resources"), f"{where}.resources")
    names = _strings(raw.get("resourceNames"), f"{where}.resourceNames")
    if names and not resources:
        problems.append(f"{where}.resourceNames: Invalid value: {list(names)}: using resourceNames requires at "
                        "least one resource")
    return GroupResources(group, resources, names)


__all__ = ["GroupResources", "LEVELS", "Policy", "PolicyError", "PolicyEvaluator", "PolicyRule", "RANK",
           "RequestAuditConfig", "STAGES", "load_policy", "parse_policy"]
