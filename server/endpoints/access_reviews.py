"""The authorization reviews, answered from the authorizer in force and never stored.

- SubjectAccessReview (cluster): may `spec.user` / `spec.groups` / `spec.uid` /
  `spec.extra` do what `spec.resourceAttributes` or `spec.nonResourceAttributes`
  describes? The user is taken exactly as given (no `system:authenticated`).
- LocalSubjectAccessReview (`/namespaces/<ns>/localsubjectaccessreviews`): the
  same, in one namespace: `metadata.namespace` comes from the path and
  `spec.resourceAttributes.namespace` must equal it; no non-resource attributes.
- SelfSubjectAccessReview (`kubectl auth can-i`): the same for the caller.
- SelfSubjectRulesReview (`kubectl auth can-i --list`): what the caller may do
  in `spec.namespace`, from the authorizer's `rules_for`.

Validated as kube's `pkg/apis/authorization/validation` (422 named
`.authorization.k8s.io ""`: kube's decoder leaves the internal object's kind
empty), answered as its `pkg/registry/authorization/*/rest.go`: the request
object with its status filled in (`allowed`, `reason`, and `evaluationError`
when a field or label selector could not be parsed; `denied` never comes from
kapi's authorizers, which allow or have no opinion). Field and label selectors
(kube 1.31+) are validated and parsed as kube does, but authorizers ignore them.
"""
from __future__ import annotations

from typing import Any, NoReturn

from kapi.api import errors
from kapi.api.field_selectors import parse_field_selector
from kapi.api.requestinfo import RequestInfo
from kapi.api.selectors import parse_label_selector
from kapi.api.user import UserInfo
from kapi.api.validation import label_value_errors, qualified_name_errors
from kapi.auth.interfaces import Authorizer
from kapi.scheme.builtin_auth import (
    LOCAL_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_ACCESS_REVIEWS,
    SELF_SUBJECT_RULES_REVIEWS,
    SUBJECT_ACCESS_REVIEWS,
)
from kapi.scheme.definitions import ResourceDef

Object = dict[str, Any]
GROUP = SUBJECT_ACCESS_REVIEWS.group
RESOURCE_FIELDS = ("namespace", "verb", "group", "version", "resource", "subresource", "name")
NON_RESOURCE_FIELDS = ("path", "verb")
_JSON_TYPES = ((bool, "bool"), (str, "string"), ((int, float), "number"), (list, "array"), (dict, "object"))
# metadata fields kube's create handler wipes before the review's "must be empty" check
_WIPED = ("creationTimestamp", "uid", "deletionTimestamp", "deletionGracePeriodSeconds", "selfLink", "managedFields")


def envelope(definition: ResourceDef, version: str, metadata: Object, spec: Any, status: Object) -> Object:
    """A review as kube answers it: kind, apiVersion, metadata (creationTimestamp null), spec and status."""
    return {
        "kind": definition.kind,
        "apiVersion": f"{definition.group}/{version}",
        "metadata": {**metadata, "creationTimestamp": metadata.get("creationTimestamp") or None},
        "spec": spec,
        "status": status,
    }


# -- decoding: the spec as kube's typed decoder reads it (and echoes it back) ---------------------------------------
class _Decoder:
    """Reads one review body as Go's JSON decoder would; a wrong type is kube's 400 decode error."""

    def __init__(self, definition: ResourceDef, version: str) -> None:
        self.definition, self.version = definition, version

    def fail(self, value: Any, struct: str, path: str, go_type: str) -> NoReturn:
        kind = next(name for types, name in _JSON_TYPES if isinstance(value, types))
        d = self.definition
        raise errors.BadRequest(
            f'{d.kind} in version "{self.version}" cannot be handled as a {d.kind}: json: cannot unmarshal '
            f"{kind} into Go struct field {struct}.{path} of type {go_type}")

    def object(self, value: Any, struct: str, path: str, go_type: str) -> Object | None:
        if value is not None and not isinstance(value, dict):
            self.fail(value, struct, path, go_type)
        return value

    def string(self, obj: Object, key: str, struct: str, path: str) -> str:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            self.fail(value, struct, f"{path}.{key}", "string")
        return value or ""

    def items(self, value: Any, struct: str, path: str, go_type: str) -> list[Any]:
        if value is not None and not isinstance(value, list):
            self.fail(value, struct, path, go_type)
        return value or []

    def strings(self, value: Any, struct: str, path: str, go_type: str = "[]string") -> list[str] | None:
        for item in self.items(value, struct, path, go_type):
            if not isinstance(item, str):
                self.fail(item, struct, path, "string")
        return value

    def fields(self, obj: Object, names: tuple[str, ...], struct: str, path: str) -> Object:
        """The string fields `names` of `obj`, empty ones left out (Go's omitempty)."""
        return {k: v for k in names if (v := self.string(obj, k, struct, path))}

    def selector(self, raw: Any, kind: str, path: str) -> Object | None:
        sel = self.object(raw, "ResourceAttributes", path, f"v1.{kind}SelectorAttributes")
        if sel is None:
            return None
        out: Object = {}
        if text := self.string(sel, "rawSelector", f"{kind}SelectorAttributes", path):
            out["rawSelector"] = text
        reqs = []
        for item in self.items(sel.get("requirements"), f"{kind}SelectorAttributes", f"{path}.requirements",
                              f"[]v1.{kind}SelectorRequirement"):
            req = self.object(item, f"{kind}SelectorAttributes", f"{path}.requirements",
                              f"v1.{kind}SelectorRequirement") or {}
            one: Object = {k: self.string(req, k, f"{kind}SelectorRequirement", f"{path}.requirements")
                           for k in ("key", "operator")}  # never omitted, as Go's JSON prints them
            values = self.strings(req.get("values"), f"{kind}SelectorRequirement", f"{path}.requirements.values")
            if values:
                one["values"] = values
            reqs.append(one)
        if reqs:
            out["requirements"] = reqs
        return out

    def spec(self, body: Object, subject: bool) -> Object:
        """The spec in kube's JSON form: unknown and empty fields dropped, field order as Go's."""
        kind = self.definition.kind
        spec_type = "SubjectAccessReviewSpec" if subject else f"{kind}Spec"
        spec = self.object(body.get("spec"), kind, "spec", f"v1.{spec_type}") or {}
        out: Object = {}
        resource = self.object(spec.get("resourceAttributes"), spec_type, "spec.resourceAttributes",
                               "v1.ResourceAttributes")
        if resource is not None:
            path = "spec.resourceAttributes"
            attrs = self.fields(resource, RESOURCE_FIELDS, "ResourceAttributes", path)
            for key, label in (("fieldSelector", "Field"), ("labelSelector", "Label")):
                selector = self.selector(resource.get(key), label, f"{path}.{key}")
                if selector is not None:
                    attrs[key] = selector
            out["resourceAttributes"] = attrs
        non_resource = self.object(spec.get("nonResourceAttributes"), spec_type, "spec.nonResourceAttributes",
                                   "v1.NonResourceAttributes")
        if non_resource is not None:
            out["nonResourceAttributes"] = self.fields(non_resource, NON_RESOURCE_FIELDS, "NonResourceAttributes",
                                                       "spec.nonResourceAttributes")
        if not subject:
            return out
        if user := self.string(spec, "user", spec_type, "spec"):
            out["user"] = user
        if groups := self.strings(spec.get("groups"), spec_type, "spec.groups"):
            out["groups"] = groups
        extra = self.object(spec.get("extra"), spec_type, "spec.extra", "map[string]v1.ExtraValue")
        if extra:
            out["extra"] = {k: self.strings(v, spec_type, "spec.extra", "v1.ExtraValue") for k, v in extra.items()}
        if uid := self.string(spec, "uid", spec_type, "spec"):
            out["uid"] = uid
        return out


# -- validation: kube's pkg/apis/authorization/validation ------------------------------------------------------------
def _go_non_resource(attrs: Object) -> str:
    """Go's `%#v` of the internal NonResourceAttributes, as kube's field errors print it."""
    return (f"authorization.NonResourceAttributes{{Path:{errors.go_quote(attrs.get('path', ''))}, "
            f"Verb:{errors.go_quote(attrs.get('verb', ''))}}}")


def _go_value(values: Any, type_name: str) -> str:
    """Go's `%#v` of a string map or slice (`map[string]string(nil)`, `[]string{"a"}`); other elements by str()."""
    if not values:
        return f"{type_name}(nil)"
    q = errors.go_quote
    items = [f"{q(str(k))}:{q(str(v))}" for k, v in sorted(values.items())] if isinstance(values, dict) \
        else [q(v) if isinstance(v, str) else str(v) for v in values]
    return type_name + "{" + ", ".join(items) + "}"


def _go_object_meta(meta: Object) -> str:
    """Go's `%#v` of the ObjectMeta a review carried (system fields wiped), as kube 1.32's field error prints it
    (owner references, whose pointers Go prints as addresses, only roughly)."""
    def text(key: str) -> str:
        return errors.go_quote(str(meta.get(key) or ""))
    return (f"v1.ObjectMeta{{Name:{text('name')}, GenerateName:{text('generateName')}, "
            f"Namespace:{text('namespace')}, SelfLink:\"\", UID:\"\", ResourceVersion:{text('resourceVersion')}, "
            f"Generation:{meta.get('generation') or 0}, "
            f"CreationTimestamp:time.Date(1, time.January, 1, 0, 0, 0, 0, time.UTC), DeletionTimestamp:<nil>, "
            f"DeletionGracePeriodSeconds:(*int64)(nil), Labels:{_go_value(meta.get('labels'), 'map[string]string')}, "
            f"Annotations:{_go_value(meta.get('annotations'), 'map[string]string')}, "
            f"OwnerReferences:{_go_value(meta.get('ownerReferences'), '[]v1.OwnerReference')}, "
            f"Finalizers:{_go_value(meta.get('finalizers'), '[]string')}, ManagedFields:[]v1.ManagedFieldsEntry(nil)}}")


def _selector_causes(selector: Object | None, path: str, labels: bool) -> list[errors.Cause]:
    """kube's validateFieldSelectorAttributes / validateLabelSelectorAttributes (unknown operators allowed)."""
    if selector is None:
        return []
    causes: list[errors.Cause] = []
    raw, requirements = selector.get("rawSelector", ""), selector.get("requirements") or []
    if raw and requirements:
        causes.append(errors.field_value_invalid(f"{path}.rawSelector", raw,
                                                 "may not specified at the same time as requirements"))
    if not raw and not requirements:
        causes.append(errors.required(f"{path}.requirements",
                                      f"when {path} is specified, requirements or rawSelector is required"))
    for i, req in enumerate(requirements):
        at = f"{path}.requirements[{i}]"
        if not labels and not req["key"]:
            causes.append(errors.required(f"{at}.key", "must be specified"))
        values = req.get("values") or []
        if req["operator"] in ("In", "NotIn") and not values:
            causes.append(errors.required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif req["operator"] in ("Exists", "DoesNotExist") and values:
            causes.append(errors.field_forbidden(
                f"{at}.values", "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        if labels:
            causes += [errors.field_value_invalid(f"{at}.key", req["key"], msg)
                       for msg in qualified_name_errors(req["key"])]
            causes += [errors.field_value_invalid(f"{at}.values[{j}]", value, msg)
                       for j, value in enumerate(values) for msg in label_value_errors(value)]
    return causes


def spec_causes(spec: Object, subject: bool) -> list[errors.Cause]:
    """kube's Validate(Self)SubjectAccessReviewSpec."""
    causes: list[errors.Cause] = []
    resource, non_resource = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if resource is not None and non_resource is not None:
        causes.append(errors.Cause("FieldValueInvalid", f"Invalid value: {_go_non_resource(non_resource)}: "
                                   "cannot be specified in combination with resourceAttributes",
                                   "spec.nonResourceAttributes"))
    if resource is None and non_resource is None:
        causes.append(errors.field_value_invalid(
            "spec.resourceAttributes", None, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
    if subject and not spec.get("user") and not spec.get("groups"):
        causes.append(errors.field_value_invalid("spec.user", "", "at least one of user or group must be specified"))
    if resource is not None:
        causes += _selector_causes(resource.get("fieldSelector"), "spec.resourceAttributes.fieldSelector", False)
        causes += _selector_causes(resource.get("labelSelector"), "spec.resourceAttributes.labelSelector", True)
    return causes


def _metadata(body: Object, definition: ResourceDef, namespace: str) -> Object:
    """The request's metadata after kube's create handler: system fields wiped, the namespace the path's."""
    raw = body.get("metadata")
    if raw is not None and not isinstance(raw, dict):
        _Decoder(definition, "v1").fail(raw, definition.kind, "metadata", "v1.ObjectMeta")
    meta = {k: v for k, v in (raw or {}).items() if k not in _WIPED and v not in (None, "", 0, [], {})}
    sent = meta.get("namespace", "")
    if namespace and sent and sent != namespace:
        raise errors.BadRequest("the namespace of the provided object does not match the namespace sent on the request")
    meta.pop("namespace", None)
    return {"namespace": namespace, **meta} if namespace else meta


def _invalid(causes: list[errors.Cause]) -> errors.Invalid:
    return errors.invalid(GROUP, "", "", causes)  # kube's decoded internal object has no kind


# -- answering -----------------------------------------------------------------------------------------------------
def request_for(spec: Object) -> RequestInfo:
    """The request a validated spec asks about (kube's ResourceAttributesFrom: no version means `*`)."""
    resource = spec.get("resourceAttributes")
    if resource is not None:
        return RequestInfo(path="", verb=resource.get("verb", ""), is_resource_request=True,
                           group=resource.get("group", ""), version=resource.get("version") or "*",
                           namespace=resource.get("namespace", ""), resource=resource.get("resource", ""),
                           name=resource.get("name", ""), subresource=resource.get("subresource", ""))
    attrs = spec.get("nonResourceAttributes") or {}
    return RequestInfo(path=attrs.get("path", ""), verb=attrs.get("verb", ""))


def _selector_error(selector: Object | None, labels: bool) -> str:
    """kube's BuildEvaluationError for one selector: "" when it parsed, else how much of it was ignored."""
    if selector is None:
        return ""
    which = "labelSelector" if labels else "fieldSelector"
    requirements = selector.get("requirements") or []
    if not requirements:
        try:
            (parse_label_selector if labels else parse_field_selector)(selector.get("rawSelector", ""))
        except errors.BadRequest:
            return f"spec.resourceAttributes.{which} ignored due to parse error"
        return ""
    if labels:
        good = [r for r in requirements if r["operator"] in ("In", "NotIn", "Exists", "DoesNotExist")]
    else:
        good = [r for r in requirements if r["operator"] in ("In", "NotIn") and len(r.get("values") or []) == 1]
    if len(good) == len(requirements):
        return ""
    how = "partially ignored" if good else "ignored"
    return f"spec.resourceAttributes.{which} {how} due to parse error"


def evaluation_error(spec: Object) -> str:
    resource = spec.get("resourceAttributes") or {}
    found = [_selector_error(resource.get("fieldSelector"), False), _selector_error(resource.get("labelSelector"), True)]
    return "; ".join(e for e in found if e)


def user_from(spec: Object) -> UserInfo:
    """kube's AuthorizationAttributesFrom: the subject exactly as the spec names it."""
    extra = {k: tuple(v or ()) for k, v in (spec.get("extra") or {}).items()}
    return UserInfo(spec.get("user", ""), uid=spec.get("uid", ""), groups=tuple(spec.get("groups") or ()),
                    extra=extra)


async def _status(authorizer: Authorizer, user: UserInfo, spec: Object) -> Object:
    decision = await authorizer.authorize(user, request_for(spec))
    status: Object = {"allowed": decision.allowed}
    if decision.reason:
        status["reason"] = decision.reason
    if problem := evaluation_error(spec):
        status["evaluationError"] = problem
    return status


async def subject_access_review(body: Object, authorizer: Authorizer, version: str = "v1",
                                namespace: str = "") -> Object:
    """SubjectAccessReview, or with `namespace` (the path's) a LocalSubjectAccessReview."""
    definition = LOCAL_SUBJECT_ACCESS_REVIEWS if namespace else SUBJECT_ACCESS_REVIEWS
    spec = _Decoder(definition, version).spec(body, subject=True)
    metadata = _metadata(body, definition, namespace)
    causes = spec_causes(spec, subject=True)
    rest = {k: v for k, v in metadata.items() if k != "namespace"}
    if rest:
        detail = "must be empty except for namespace" if namespace else "must be empty"
        causes.append(errors.Cause("FieldValueInvalid", f"Invalid value: {_go_object_meta(metadata)}: {detail}",
                                   "metadata"))
    if namespace:
        resource = spec.get("resourceAttributes")
        if resource is not None and resource.get("namespace", "") != namespace:
            causes.append(errors.field_value_invalid("spec.resourceAttributes.namespace", resource.get("namespace", ""),
                                                     "must match metadata.namespace"))
        if spec.get("nonResourceAttributes") is not None:
            causes.append(errors.Cause("FieldValueInvalid", "Invalid value: "
                                       f"{_go_non_resource(spec['nonResourceAttributes'])}: "
                                       "disallowed on this kind of request", "spec.nonResourceAttributes"))
    if causes:
        raise _invalid(causes)
    status = await _status(authorizer, user_from(spec), spec)
    return envelope(definition, version, metadata, spec, status)


async def self_subject_access_review(body: Object, user: UserInfo, authorizer: Authorizer,
                                     version: str = "v1") -> Object:
    """SelfSubjectAccessReview (`kubectl auth can-i`): the spec's question, asked for the caller."""
    spec = _Decoder(SELF_SUBJECT_ACCESS_REVIEWS, version).spec(body, subject=False)
    metadata = _metadata(body, SELF_SUBJECT_ACCESS_REVIEWS, "")
    causes = spec_causes(spec, subject=False)
    if metadata:
        causes.append(errors.Cause("FieldValueInvalid", f"Invalid value: {_go_object_meta(metadata)}: must be empty",
                                   "metadata"))
    if causes:
        raise _invalid(causes)
    return envelope(SELF_SUBJECT_ACCESS_REVIEWS, version, metadata, spec, await _status(authorizer, user, spec))


def _aggregate(messages: tuple[str, ...]) -> str:
    """Go's `utilerrors.NewAggregate(...).Error()`: one message, or `[a, b]` (duplicates once)."""
    unique = list(dict.fromkeys(m for m in messages if m))
    if len(unique) <= 1:
        return unique[0] if unique else ""
    return "[" + ", ".join(unique) + "]"


async def self_subject_rules_review(body: Object, user: UserInfo, authorizer: Authorizer,
                                    version: str = "v1") -> Object:
    """SelfSubjectRulesReview (`kubectl auth can-i --list`): kube answers a new object, only the status filled."""
    decoder = _Decoder(SELF_SUBJECT_RULES_REVIEWS, version)
    spec = decoder.object(body.get("spec"), SELF_SUBJECT_RULES_REVIEWS.kind, "spec",
                          "v1.SelfSubjectRulesReviewSpec") or {}
    namespace = decoder.string(spec, "namespace", "SelfSubjectRulesReviewSpec", "spec")
    if not namespace:
        raise errors.BadRequest("no namespace on request")
    answer = await authorizer.rules_for(user, namespace)
    status: Object = {
        "resourceRules": [_resource_rule(r) for r in answer.resource_rules],
        "nonResourceRules": [{"verbs": list(r.verbs), **({"nonResourceURLs": list(r.non_resource_urls)}
                                                          if r.non_resource_urls else {})}
                             for r in answer.non_resource_rules],
        "incomplete": answer.incomplete,
    }
    if problem := _aggregate(tuple(answer.errors)):
        status["evaluationError"] = problem
    return envelope(SELF_SUBJECT_RULES_REVIEWS, version, {}, {}, status)


def _resource_rule(rule: Any) -> Object:
    """A ResourceRule's JSON: verbs always, the rest when not empty."""
    out: Object = {"verbs": list(rule.verbs)}
    for key, values in (("apiGroups", rule.api_groups), ("resources", rule.resources),
                        ("resourceNames", rule.resource_names)):
        if values:
            out[key] = list(values)
    return out


async def access_review(definition: ResourceDef, body: Object, user: UserInfo, authorizer: Authorizer,
                        namespace: str = "", version: str = "v1") -> Object:
    """Answer one of the four authorization reviews `definition` names."""
    if definition is SELF_SUBJECT_RULES_REVIEWS:
        return await self_subject_rules_review(body, user, authorizer, version)
    if definition is SELF_SUBJECT_ACCESS_REVIEWS:
        return await self_subject_access_review(body, user, authorizer, version)
    return await subject_access_review(body, authorizer, version, namespace)


ACCESS_REVIEWS = (SUBJECT_ACCESS_REVIEWS, LOCAL_SUBJECT_ACCESS_REVIEWS, SELF_SUBJECT_ACCESS_REVIEWS,
                  SELF_SUBJECT_RULES_REVIEWS)
