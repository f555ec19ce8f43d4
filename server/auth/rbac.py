"""RBAC, as kube-apiserver's `--authorization-mode=RBAC`: an in-memory index of Roles, ClusterRoles and
their bindings, and the authorizer that reads it.

The index is kept current by two feeds: the RBAC stores tell it of each write
they make (so a binding a client just created applies to its next request),
and a controller follows the storage watch (writes by other servers sharing
an etcd, and re-syncs). Each entry remembers the revision it was seen at, so a
late watch event never undoes a newer write.

Bindings are indexed by subject (a user name, a group; a ServiceAccount subject
is its user name `system:serviceaccount:<ns>:<name>`), so a decision looks only
at the bindings that name the caller, however many exist. Decisions are cached
until the index changes.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Iterable

from kapi.api.errors import go_quote
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.auth.interfaces import Decision, RulesAnswer
from kapi.auth.rbac_rules import PolicyRule, rule_allows, rules_of

Object = dict[str, Any]
GROUP = "rbac.authorization.k8s.io"
ROLES, CLUSTER_ROLES = "roles", "clusterroles"
ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS = "rolebindings", "clusterrolebindings"
RESOURCES = (ROLES, CLUSTER_ROLES, ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS)
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"
_CACHE_LIMIT = 8192


@dataclass(frozen=True)
class Binding:
    """A RoleBinding or ClusterRoleBinding reduced to what decisions need."""

    name: str
    namespace: str
    role_kind: str
    role_name: str
    subjects: tuple[str, ...]  # "user:<name>" or "group:<name>"
    described: tuple[str, ...]  # each subject as kube names it in an allow reason: `Group "viewers"`

    def reason(self, user: UserInfo) -> str:
        """kube's allow reason: `RBAC: allowed by ClusterRoleBinding "b" of ClusterRole "r" to User "u"`."""
        keys = set(user_keys(user))
        subject = next((d for k, d in zip(self.subjects, self.described) if k in keys), "")
        if self.namespace:
            return (f"RBAC: allowed by RoleBinding {go_quote(self.name + '/' + self.namespace)} of {self.role_kind} "
                    f"{go_quote(self.role_name)} to {subject}")
        return f"RBAC: allowed by ClusterRoleBinding {go_quote(self.name)} of ClusterRole {go_quote(self.role_name)} to {subject}"


def subjects_of(obj: Object, namespace: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The index keys a binding's subjects stand for (kube's `appliesTo`), and how kube describes each."""
    keys: list[str] = []
    described: list[str] = []
    for subject in obj.get("subjects") or ():
        if not isinstance(subject, dict) or not isinstance(subject.get("name"), str):
            continue
        kind, name = subject.get("kind"), subject["name"]
        if kind == "User":
            keys.append("user:" + name)
        elif kind == "Group":
            keys.append("group:" + name)
        elif kind == "ServiceAccount":
            sa_namespace = subject.get("namespace") or namespace
            keys.append(f"user:{SERVICE_ACCOUNT_PREFIX}{sa_namespace}:{name}")
            name = f"{name}/{sa_namespace}"
        else:
            continue
        described.append(f"{kind} {go_quote(name)}")
    return tuple(keys), tuple(described)


def user_keys(user: UserInfo) -> tuple[str, ...]:
    return ("user:" + user.name, *("group:" + g for g in user.groups))


def _binding(obj: Object, namespace: str, name: str) -> Binding:
    raw_ref = obj.get("roleRef")
    ref: Object = raw_ref if isinstance(raw_ref, dict) else {}
    return Binding(name, namespace, str(ref.get("kind") or ""), str(ref.get("name") or ""), *subjects_of(obj, namespace))


def _revision(obj: Object) -> int:
    try:
        return int((obj.get("metadata") or {}).get("resourceVersion") or 0)
    except (TypeError, ValueError):
        return 0


class RbacIndex:
    """Roles, ClusterRoles and bindings by name and by subject; `version` moves on every change."""

    def __init__(self) -> None:
        self.version = 0
        self._clear()

    def _clear(self) -> None:
        self._seen: dict[tuple[str, str, str], int] = {}
        self._roles: dict[tuple[str, str], tuple[PolicyRule, ...]] = {}
        self._cluster_roles: dict[str, tuple[PolicyRule, ...]] = {}
        self._bindings: dict[tuple[str, str], Binding] = {}  # (namespace, name); "" for cluster bindings
        self._by_subject: dict[tuple[str, str], set[str]] = defaultdict(set)  # (namespace, subject) → names

    # -- feeding ---------------------------------------------------------------------------------------------------
    def observe(self, resource: str, namespace: str, name: str, obj: Object | None, revision: int = 0) -> None:
        """Record `obj` (None: deleted) as of `revision` (0: the object's own resourceVersion).

        A deletion is recorded at the revision the caller knows (the deleted object's own at least), so
        a late event for the state before it never brings the object back."""
        if resource not in RESOURCES:
            return
        namespace = namespace if resource in (ROLES, ROLE_BINDINGS) else ""
        revision = revision or (_revision(obj) if obj is not None else 0)
        key = (resource, namespace, name)
        seen = self._seen.get(key, 0)
        if revision and (seen > revision or (seen == revision and obj is not None)):
            return  # this state, or a newer one, is already recorded (a deletion wins a tie)
        self._seen[key] = revision
        self._forget(resource, namespace, name)
        if obj is not None:
            self._remember(resource, namespace, name, obj)
        self.version += 1

    def replace(self, objects: Iterable[tuple[str, Object]], revision: int) -> None:
        """Start over from a full listing (`(resource, object)` pairs) read at `revision`."""
        self._clear()
        for resource, obj in objects:
            meta = obj.get("metadata") or {}
            self.observe(resource, str(meta.get("namespace") or ""), str(meta.get("name") or ""), obj,
                         _revision(obj) or revision)
        self.version += 1

    def _forget(self, resource: str, namespace: str, name: str) -> None:
        if resource == ROLES:
            self._roles.pop((namespace, name), None)
        elif resource == CLUSTER_ROLES:
            self._cluster_roles.pop(name, None)
        else:
            old = self._bindings.pop((namespace, name), None)
            for subject in old.subjects if old else ():
                names = self._by_subject.get((namespace, subject))
                if names is not None:
                    names.discard(name)
                    if not names:
                        del self._by_subject[(namespace, subject)]

    def _remember(self, resource: str, namespace: str, name: str, obj: Object) -> None:
        if resource == ROLES:
            self._roles[(namespace, name)] = rules_of(obj)
        elif resource == CLUSTER_ROLES:
            self._cluster_roles[name] = rules_of(obj)
        else:
            binding = _binding(obj, namespace, name)
            self._bindings[(namespace, name)] = binding
            for subject in binding.subjects:
                self._by_subject[(namespace, subject)].add(name)

    # -- reading ---------------------------------------------------------------------------------------------------
    def _bindings_for(self, user: UserInfo, namespace: str) -> list[Binding]:
        names: set[str] = set()
        for key in user_keys(user):
            names |= self._by_subject.get((namespace, key), set())
        return [self._bindings[(namespace, n)] for n in sorted(names)]

    def _role_rules(self, binding: Binding, namespace: str) -> tuple[tuple[PolicyRule, ...], str]:
        """The rules a binding grants, or an error like kube's when its role is missing."""
        if binding.role_kind == "ClusterRole":
            rules = self._cluster_roles.get(binding.role_name)
            missing = f'clusterrole.{GROUP} "{binding.role_name}" not found'
        elif binding.role_kind == "Role" and namespace:
            rules = self._roles.get((namespace, binding.role_name))
            missing = f'role.{GROUP} "{binding.role_name}" not found'
        else:
            return (), f"unsupported role reference kind: {binding.role_kind!r}"
        return (rules, "") if rules is not None else ((), missing)

    def visit(self, user: UserInfo, namespace: str) -> Iterable[tuple[Binding, tuple[PolicyRule, ...], str]]:
        """kube's `VisitRulesFor`: cluster bindings first, then the namespace's; (binding, rules, error) each."""
        for scope in ("", namespace) if namespace else ("",):
            for binding in self._bindings_for(user, scope):
                yield binding, *self._role_rules(binding, scope)

    def rules_for(self, user: UserInfo, namespace: str) -> tuple[list[PolicyRule], list[str]]:
        rules: list[PolicyRule] = []
        problems: list[str] = []
        for _binding, granted, problem in self.visit(user, namespace):
            rules.extend(granted)
            if problem:
                problems.append(problem)
        return rules, problems

    def cluster_role_rules(self, name: str) -> tuple[PolicyRule, ...] | None:
        return self._cluster_roles.get(name)

    def role_rules(self, namespace: str, name: str) -> tuple[PolicyRule, ...] | None:
        return self._roles.get((namespace, name))


def aggregate_errors(problems: list[str]) -> str:
    """Go's `utilerrors.NewAggregate(...).Error()`: one message, or `[a, b]`."""
    unique = list(dict.fromkeys(problems))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


class RbacAuthorizer:
    """Allows what some bound role's rule allows; otherwise no opinion (with kube's `RBAC: ...` reason
    when a binding names a role that does not exist)."""

    def __init__(self, index: RbacIndex) -> None:
        self.index = index
        self._cache: dict[tuple[UserInfo, RequestInfo], Decision] = {}
        self._cache_version = -1

    def __repr__(self) -> str:
        return "RbacAuthorizer()"

    async def authorize(self, user: UserInfo, info: RequestInfo) -> Decision:
        if self._cache_version != self.index.version:
            self._cache.clear()
            self._cache_version = self.index.version
        key = (user, info)
        decision = self._cache.get(key)
        if decision is None:
            decision = self.decide(user, info)
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[key] = decision
        return decision

    def decide(self, user: UserInfo, info: RequestInfo) -> Decision:
        problems: list[str] = []
        namespace = info.namespace if info.is_resource_request else ""
        for binding, rules, problem in self.index.visit(user, namespace):
            if problem:
                problems.append(problem)
            if any(rule_allows(rule, info) for rule in rules):
                return Decision(True, binding.reason(user))
        return Decision(False, f"RBAC: {aggregate_errors(problems)}" if problems else "")

    async def rules_for(self, user: UserInfo, namespace: str) -> RulesAnswer:
        rules, problems = self.index.rules_for(user, namespace)
        resource_rules = tuple(PolicyRule(r.verbs, r.api_groups, r.resources, r.resource_names)
                               for r in rules if r.resources)
        non_resource = tuple(PolicyRule(r.verbs, non_resource_urls=r.non_resource_urls)
                             for r in rules if r.non_resource_urls)
        return RulesAnswer(resource_rules, non_resource, incomplete=bool(problems), errors=tuple(problems))
