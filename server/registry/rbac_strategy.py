"""Roles, ClusterRoles and their bindings: kube's names, defaults and validation for RBAC objects.

RBAC names are path segments (`system:basic-user` is a name), a binding's
roleRef and subjects default their API group as kube's v1 defaulting does,
rules need verbs and either resources or non-resource URLs (never both, and
no URLs in a namespaced Role), and a binding's roleRef never changes.
"""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.api.validation import dns1123_subdomain_errors, path_segment_errors
from kapi.registry.builtin_strategy import BuiltinStrategy, as_dict, as_list
from kapi.registry.strategy import Object

RBAC_GROUP = "rbac.authorization.k8s.io"
SUBJECT_KINDS = ["ServiceAccount", "User", "Group"]


def rule_causes(rule: Any, path: str, namespaced: bool) -> list[Cause]:
    """kube's `ValidatePolicyRule`."""
    rule = as_dict(rule)
    causes: list[Cause] = []
    if not rule.get("verbs"):
        causes.append(errors.required(f"{path}.verbs", "verbs must contain at least one value"))
    urls = rule.get("nonResourceURLs")
    if urls:
        if namespaced:
            causes.append(errors.field_invalid(f"{path}.nonResourceURLs", urls,
                                               "namespaced rules cannot apply to non-resource URLs"))
        if rule.get("apiGroups") or rule.get("resources") or rule.get("resourceNames"):
            causes.append(errors.field_invalid(f"{path}.nonResourceURLs", urls,
                                               "rules cannot apply to both regular resources and non-resource URLs"))
        return causes
    if not rule.get("apiGroups"):
        causes.append(errors.required(f"{path}.apiGroups", "resource rules must supply at least one api group"))
    if not rule.get("resources"):
        causes.append(errors.required(f"{path}.resources", "resource rules must supply at least one resource"))
    return causes


class RoleStrategy(BuiltinStrategy):
    """Role and ClusterRole."""

    name_rule = "path"

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        namespaced = self.definition.namespaced
        causes = [c for i, rule in enumerate(as_list(obj.get("rules")))
                  for c in rule_causes(rule, f"rules[{i}]", namespaced)]
        aggregation = obj.get("aggregationRule")
        if isinstance(aggregation, dict) and not aggregation.get("clusterRoleSelectors"):
            causes.append(errors.required("aggregationRule.clusterRoleSelectors",
                                                "at least one clusterRoleSelector required if aggregationRule is non-nil"))
        return causes


def default_binding(obj: Object) -> None:
    """kube's v1 defaults: roleRef.apiGroup and User/Group subjects' apiGroup are the RBAC group."""
    ref = obj.get("roleRef")
    if isinstance(ref, dict) and not ref.get("apiGroup"):
        ref["apiGroup"] = RBAC_GROUP
    for subject in as_list(obj.get("subjects")):
        if isinstance(subject, dict) and not subject.get("apiGroup") and subject.get("kind") in ("User", "Group"):
            subject["apiGroup"] = RBAC_GROUP


def subject_causes(subject: Any, path: str, namespaced: bool) -> list[Cause]:
    """kube's `ValidateRoleBindingSubject`."""
    subject = as_dict(subject)
    causes: list[Cause] = []
    name, kind, group = subject.get("name") or "", subject.get("kind") or "", subject.get("apiGroup") or ""
    if not name:
        causes.append(errors.required(f"{path}.name", ""))
    if kind == "ServiceAccount":
        causes += [errors.field_invalid(f"{path}.name", name, m) for m in _service_account_name_errors(name)]
        if group:
            causes.append(errors.field_not_supported(f"{path}.apiGroup", group, [""]))
        if not namespaced and not subject.get("namespace"):
            causes.append(errors.required(f"{path}.namespace", ""))
    elif kind in ("User", "Group"):
        if group != RBAC_GROUP:
            causes.append(errors.field_not_supported(f"{path}.apiGroup", group, [RBAC_GROUP]))
    else:
        causes.append(errors.field_not_supported(f"{path}.kind", kind, SUBJECT_KINDS))
    return causes


def _service_account_name_errors(name: str) -> list[str]:
    return dns1123_subdomain_errors(name) if name else []


class BindingStrategy(BuiltinStrategy):
    """RoleBinding and ClusterRoleBinding."""

    name_rule = "path"

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        default_binding(obj)

    def prepare_for_update(self, new: Object, old: Object, subresource: str) -> None:
        super().prepare_for_update(new, old, subresource)
        default_binding(new)

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        namespaced = self.definition.namespaced
        kinds = ["Role", "ClusterRole"] if namespaced else ["ClusterRole"]
        ref = as_dict(obj.get("roleRef"))
        causes: list[Cause] = []
        if ref.get("apiGroup") != RBAC_GROUP:
            causes.append(errors.field_not_supported("roleRef.apiGroup", ref.get("apiGroup") or "", [RBAC_GROUP]))
        if ref.get("kind") not in kinds:
            causes.append(errors.field_not_supported("roleRef.kind", ref.get("kind") or "", kinds))
        name = ref.get("name") or ""
        if not name:
            causes.append(errors.required("roleRef.name", ""))
        causes += [errors.field_invalid("roleRef.name", name, m) for m in path_segment_errors(str(name))]
        causes += [c for i, subject in enumerate(as_list(obj.get("subjects")))
                   for c in subject_causes(subject, f"subjects[{i}]", namespaced)]
        if old is not None and as_dict(old.get("roleRef")) != ref:
            causes.append(errors.field_invalid("roleRef", ref, "cannot change roleRef"))
        return causes
