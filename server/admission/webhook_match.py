"""Which webhooks a write concerns: rules, namespaceSelector and objectSelector, as kube matches them.

kube's `rules.Matcher` (operations, groups, versions, `res/sub` resources,
scope), `namespace.Matcher` (the labels of the object's namespace; a
Namespace's own labels; cluster-scoped objects always match) and
`object.Matcher` (the new or the old object's labels). Label selectors are
`metav1.LabelSelector`s turned into the parsed selectors of
`kapi.api.selectors`, so matching is the same code as `?labelSelector=`.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any, Awaitable, Callable, Mapping

from kapi.api import errors
from kapi.api.attributes import AdmissionAttributes
from kapi.api.selectors import LabelSelector, Requirement

GROUP = "admissionregistration.k8s.io"
# kube never calls webhooks for the objects that configure admission (a bad webhook could lock them out).
EXEMPT_RESOURCES = frozenset({
    "mutatingwebhookconfigurations", "validatingwebhookconfigurations",
    "validatingadmissionpolicies", "validatingadmissionpolicybindings",
    "mutatingadmissionpolicies", "mutatingadmissionpolicybindings",
})
_OPERATORS = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
# kube's namespace strategy always sets this label; selectors on it are common, so kapi reads it as set.
NAME_LABEL = "kubernetes.io/metadata.name"

Labels = Mapping[str, str]
NamespaceLabels = Callable[[], Awaitable[Labels]]


def exempt(attrs: AdmissionAttributes) -> bool:
    return attrs.group == GROUP and attrs.resource in EXEMPT_RESOURCES


def _is_namespace(attrs: AdmissionAttributes) -> bool:
    return attrs.group == "" and attrs.resource == "namespaces"


def request_namespace(attrs: AdmissionAttributes) -> str:
    """The namespace a request is in; for a Namespace object kube puts the namespace's own name here."""
    return attrs.name if _is_namespace(attrs) else attrs.namespace


def _values(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def rule_matches(rule: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    """One `RuleWithOperations` against the request (kube's scope, operation, group, version, resource)."""
    scope = rule.get("scope") or "*"
    namespace = request_namespace(attrs)
    if scope == "Namespaced" and (_is_namespace(attrs) or not namespace):
        return False
    if scope == "Cluster" and not (_is_namespace(attrs) or not namespace):
        return False
    if scope not in ("*", "Namespaced", "Cluster"):
        return False
    operations = _values(rule.get("operations"))
    if "*" not in operations and attrs.operation not in operations:
        return False
    groups = _values(rule.get("apiGroups"))
    if "*" not in groups and attrs.group not in groups:
        return False
    versions = _values(rule.get("apiVersions"))
    if "*" not in versions and attrs.version not in versions:
        return False
    for resource in _values(rule.get("resources")):
        res, _, sub = resource.partition("/")
        if res in ("*", attrs.resource) and sub in ("*", attrs.subresource):
            return True
    return False


def rules_match(hook: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    rules = hook.get("rules")
    return any(isinstance(r, Mapping) and rule_matches(r, attrs) for r in (rules if isinstance(rules, list) else []))


def matching_version(hook: Mapping[str, Any], attrs: AdmissionAttributes) -> str:
    """The version the webhook is to see the request in; "" when its rules do not match.

    The request's own version first; with `matchPolicy: Equivalent` (the default) another
    served version of the same resource that a rule names, as kube's equivalent-resource matching.
    """
    if rules_match(hook, attrs):
        return attrs.version
    if hook.get("matchPolicy", "Equivalent") != "Equivalent" or attrs.convert is None:
        return ""
    for version in attrs.versions:
        if version != attrs.version and rules_match(hook, replace(attrs, version=version)):
            return version
    return ""


async def viewed_in(attrs: AdmissionAttributes, version: str) -> AdmissionAttributes:
    """The request as a webhook matched in `version` sees it: objects converted, requestKind kept."""
    if version == attrs.version or attrs.convert is None:
        return attrs
    convert = attrs.convert
    return replace(attrs, version=version, request_version=attrs.version,
                   obj=await convert(attrs.obj, version) if attrs.obj is not None else None,
                   old_obj=await convert(attrs.old_obj, version) if attrs.old_obj is not None else None)


def parse_selector(raw: Any) -> LabelSelector:
    """A `metav1.LabelSelector` (matchLabels and matchExpressions) as a parsed selector; {} selects everything.

    An operator kube does not know selects nothing, as kube's `LabelSelectorAsSelector` refuses it.
    """
    if not isinstance(raw, Mapping):
        return LabelSelector()
    requirements: list[Requirement] = []
    labels = raw.get("matchLabels")
    for key, value in (labels.items() if isinstance(labels, Mapping) else ()):
        requirements.append(Requirement(str(key), "=", (str(value),)))
    expressions = raw.get("matchExpressions")
    for expr in expressions if isinstance(expressions, list) else []:
        expr = expr if isinstance(expr, Mapping) else {}
        operator = _OPERATORS.get(str(expr.get("operator")), "")
        if not operator:
            return LabelSelector((Requirement("", "in", ()),))  # matches no object
        values = tuple(sorted(_values(expr.get("values"))))
        requirements.append(Requirement(str(expr.get("key") or ""), operator, values))
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


def labels_of(obj: Any) -> Labels:
    meta = obj.get("metadata") if isinstance(obj, Mapping) else None
    labels = meta.get("labels") if isinstance(meta, Mapping) else None
    return labels if isinstance(labels, Mapping) else {}


def object_matches(hook: Mapping[str, Any], attrs: AdmissionAttributes) -> bool:
    """kube's objectSelector: the new object's labels or the old one's (an absent object never matches)."""
    selector = parse_selector(hook.get("objectSelector"))
    if selector.empty:
        return True
    return any(obj is not None and selector.matches(labels_of(obj)) for obj in (attrs.obj, attrs.old_obj))


def namespace_labels_getter(attrs: AdmissionAttributes,
                            get_namespace: Callable[[str], Awaitable[dict[str, Any] | None]]) -> NamespaceLabels:
    """A once-per-request lookup of the labels kube's namespaceSelector reads.

    A create or update of a Namespace uses the object in the request; everything else reads the stored
    namespace, and a missing one is kube's 404 for it.
    """
    cache: list[Labels] = []

    async def labels() -> Labels:
        if cache:
            return cache[0]
        name = request_namespace(attrs)
        if _is_namespace(attrs) and not attrs.subresource and attrs.operation in ("CREATE", "UPDATE"):
            found: Labels = labels_of(attrs.obj)
        else:
            namespace = await get_namespace(name)
            if namespace is None:
                raise errors.not_found("", "namespaces", name)
            found = labels_of(namespace)
        if NAME_LABEL not in found:
            found = {**found, NAME_LABEL: name}
        cache.append(found)
        return found

    return labels


async def namespace_matches(hook: Mapping[str, Any], attrs: AdmissionAttributes, labels: NamespaceLabels) -> bool:
    """kube's namespaceSelector: cluster-scoped objects other than Namespaces always match."""
    if not request_namespace(attrs):
        return True
    selector = parse_selector(hook.get("namespaceSelector"))
    if selector.empty:
        return True
    return selector.matches(await labels())
