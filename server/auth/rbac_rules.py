"""RBAC's policy rules as pure data: when a rule allows a request, and when one set of rules covers another.

Matching follows kube's `rbac.RuleAllows`: `*` matches any verb, group or
resource; a rule resource names `resource` or `resource/subresource`, and
`*/subresource` matches that subresource of anything; `resourceNames` narrows
to those names (empty means all); a non-resource URL matches exactly or by a
trailing `*` prefix. Coverage (escalation prevention) follows kube's
`validation.Covers`: each requested rule is broken into one verb, group,
resource and name at a time, and each piece must be covered by one owner rule.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from kapi.api.errors import go_quote
from kapi.api.requestinfo import RequestInfo

ALL = "*"


@dataclass(frozen=True)
class PolicyRule:
    """One `rbac.authorization.k8s.io/v1 PolicyRule`; field order as kube prints them."""

    verbs: tuple[str, ...] = ()
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, raw: Any) -> PolicyRule:
        """A stored rule (already validated); odd shapes become empty fields, which allow nothing."""
        if not isinstance(raw, dict):
            return cls()
        return cls(
            verbs=_strings(raw.get("verbs")),
            api_groups=_strings(raw.get("apiGroups")),
            resources=_strings(raw.get("resources")),
            resource_names=_strings(raw.get("resourceNames")),
            non_resource_urls=_strings(raw.get("nonResourceURLs")),
        )

    def to_dict(self) -> dict[str, list[str]]:
        """The JSON form, empty fields left out (kube's omitempty)."""
        pairs = (("verbs", self.verbs), ("apiGroups", self.api_groups), ("resources", self.resources),
                 ("resourceNames", self.resource_names), ("nonResourceURLs", self.non_resource_urls))
        return {key: list(value) for key, value in pairs if value or key == "verbs"}

    def compact_string(self) -> str:
        """kube's `CompactString`, as escalation errors list missing rules: `{APIGroups:[""], Verbs:["get"]}`."""
        parts = [(label, values) for label, values in (
            ("APIGroups", self.api_groups), ("Resources", self.resources),
            ("NonResourceURLs", self.non_resource_urls), ("ResourceNames", self.resource_names),
            ("Verbs", self.verbs)) if values]
        return "{" + ", ".join(f"{label}:{go_quoted(values)}" for label, values in parts) + "}"


def go_quoted(values: Sequence[str]) -> str:
    """Go's `%q` of a string slice: `["a" "b"]`."""
    return "[" + " ".join(go_quote(v) for v in values) + "]"


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def rules_of(obj: Any) -> tuple[PolicyRule, ...]:
    """The rules of a stored Role or ClusterRole."""
    raw = obj.get("rules") if isinstance(obj, dict) else None
    return tuple(PolicyRule.from_dict(r) for r in raw) if isinstance(raw, list) else ()


# -- matching a request -------------------------------------------------------------------------------------------
def _verb_matches(rule: PolicyRule, verb: str) -> bool:
    return ALL in rule.verbs or verb in rule.verbs


def _resource_matches(rule: PolicyRule, combined: str, subresource: str) -> bool:
    for allowed in rule.resources:
        if allowed == ALL or allowed == combined:
            return True
        if subresource and allowed == "*/" + subresource:
            return True
    return False


def url_matches(pattern: str, path: str) -> bool:
    """A non-resource URL rule: `*`, the exact path, or a prefix ending in `*`."""
    if pattern == ALL or pattern == path:
        return True
    return pattern.endswith("*") and path.startswith(pattern.rstrip("*"))


def rule_allows(rule: PolicyRule, info: RequestInfo) -> bool:
    """Whether `rule` allows the request `info` describes."""
    if not _verb_matches(rule, info.verb):
        return False
    if not info.is_resource_request:
        return any(url_matches(pattern, info.path) for pattern in rule.non_resource_urls)
    if not (ALL in rule.api_groups or info.group in rule.api_groups):
        return False
    combined = f"{info.resource}/{info.subresource}" if info.subresource else info.resource
    if not _resource_matches(rule, combined, info.subresource):
        return False
    return not rule.resource_names or info.name in rule.resource_names


def rules_allow(rules: Iterable[PolicyRule], info: RequestInfo) -> bool:
    return any(rule_allows(rule, info) for rule in rules)


# -- coverage: escalation prevention ------------------------------------------------------------------------------
def breakdown(rule: PolicyRule) -> list[PolicyRule]:
    """kube's `BreakdownRule`: one verb, group, resource and name (or URL) per rule."""
    pieces: list[PolicyRule] = []
    for group in rule.api_groups:
        for resource in rule.resources:
            for verb in rule.verbs:
                if rule.resource_names:
                    pieces.extend(PolicyRule((verb,), (group,), (resource,), (name,)) for name in rule.resource_names)
                else:
                    pieces.append(PolicyRule((verb,), (group,), (resource,)))
    for url in rule.non_resource_urls:
        pieces.extend(PolicyRule((verb,), non_resource_urls=(url,)) for verb in rule.verbs)
    return pieces


def _resources_cover(owned: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    if ALL in owned:
        return True
    for path in wanted:
        if path in owned:
            continue
        if "/" not in path or path.split("/", 1)[0] + "/*" not in owned:
            return False
    return True


def _urls_cover(owned: tuple[str, ...], wanted: tuple[str, ...]) -> bool:
    return all(any(o == w or (o.endswith("*") and w.startswith(o.rstrip("*"))) for o in owned) for w in wanted)


def rule_covers(owner: PolicyRule, sub: PolicyRule) -> bool:
    """kube's `ruleCovers`: everything `sub` grants, `owner` grants too."""
    if not (ALL in owner.verbs or set(sub.verbs) <= set(owner.verbs)):
        return False
    if not (ALL in owner.api_groups or set(sub.api_groups) <= set(owner.api_groups)):
        return False
    if not _resources_cover(owner.resources, sub.resources):
        return False
    if not _urls_cover(owner.non_resource_urls, sub.non_resource_urls):
        return False
    if not sub.resource_names:
        return not owner.resource_names
    return not owner.resource_names or set(sub.resource_names) <= set(owner.resource_names)


def uncovered(owner_rules: Sequence[PolicyRule], requested: Iterable[PolicyRule]) -> list[PolicyRule]:
    """The pieces of `requested` no owner rule covers (empty: no escalation)."""
    return [piece for rule in requested for piece in breakdown(rule)
            if not any(rule_covers(owner, piece) for owner in owner_rules)]


def compact(rules: Sequence[PolicyRule]) -> list[PolicyRule]:
    """kube's `CompactRules`: simple resource rules that differ only in verbs become one rule."""
    merged: dict[tuple[str, str, tuple[str, ...]], list[str]] = {}
    out: list[PolicyRule | tuple[str, str, tuple[str, ...]]] = []
    for rule in rules:
        simple = (len(rule.api_groups) == 1 and len(rule.resources) == 1 and not rule.non_resource_urls)
        if not simple:
            out.append(rule)
            continue
        key = (rule.api_groups[0], rule.resources[0], rule.resource_names)
        if key not in merged:
            merged[key] = []
            out.append(key)
        merged[key].extend(v for v in rule.verbs if v not in merged[key])
    return [item if isinstance(item, PolicyRule) else
            PolicyRule(tuple(merged[item]), (item[0],), (item[1],), item[2]) for item in out]
