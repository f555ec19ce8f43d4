"""Mutating- and ValidatingWebhookConfigurations: kube-apiserver's field validation, with its wording.

The schema fills in kube's v1 defaults before this runs, so what is checked
here is what kube's `ValidateMutatingWebhookConfiguration` checks: a fully
qualified, unique name per webhook; exactly one of url and service; a
sideEffects class without side effects on dry run; review versions kapi
speaks; rules, policies, timeouts, label selectors and matchConditions (at
most 64, unique qualified names, CEL that compiles to a bool). A bad configuration is
a 422 with one cause per problem, never a webhook that fails at call time.
"""
from __future__ import annotations

from typing import Any

from kapi.admission.webhook_conditions import condition_causes
from kapi.api.errors import Cause, field_duplicate, field_forbidden, field_not_supported
from kapi.api.validation import dns1123_subdomain_errors, label_value_errors, qualified_name_errors
from kapi.registry.strategy import Object, Strategy
from kapi.webhook.validation import client_config_causes, invalid, required, review_versions_causes

_OPERATIONS = ["*", "CONNECT", "CREATE", "DELETE", "UPDATE"]
_SCOPES = ["*", "Cluster", "Namespaced"]
_FAILURE_POLICIES = ["Fail", "Ignore"]
_MATCH_POLICIES = ["Equivalent", "Exact"]
_SIDE_EFFECTS = ["None", "NoneOnDryRun"]
_REINVOCATION = ["IfNeeded", "Never"]


def _strings(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []


def _fully_qualified_name(path: str, name: Any) -> list[Cause]:
    if not isinstance(name, str) or not name:
        return [required(path)]
    errs = dns1123_subdomain_errors(name)
    if errs:
        return [invalid(path, name, ",".join(errs))]
    if len(name.split(".")) < 3:
        return [invalid(path, name, "should be a domain with at least three segments separated by dots")]
    return []


def _resources(path: str, resources: list[str]) -> list[Cause]:
    causes = [] if resources else [required(path)]
    wildcard_sub: set[str] = set()
    wildcard_res: set[str] = set()
    single = plain = False
    for i, res_sub in enumerate(resources):
        if not res_sub:
            causes.append(required(f"{path}[{i}]"))
            continue
        single = single or res_sub == "*"
        res, slash, sub = res_sub.partition("/")
        if not slash:
            plain = res_sub != "*"
            continue
        if res in wildcard_sub:
            causes.append(invalid(f"{path}[{i}]", res_sub, f"if '{res}/*' is present, must not specify {res_sub}"))
        if sub in wildcard_res:
            causes.append(invalid(f"{path}[{i}]", res_sub, f"if '*/{sub}' is present, must not specify {res_sub}"))
        if sub == "*":
            wildcard_sub.add(res)
        if res == "*":
            wildcard_res.add(sub)
    if len(resources) > 1 and "*/*" in resources:
        causes.append(invalid(path, resources, "if '*/*' is present, must not specify other resources"))
    if single and plain:
        causes.append(invalid(path, resources,
                              "if '*' is present, must not specify other resources without subresources"))
    return causes


def _rule(path: str, rule: Any) -> list[Cause]:
    rule = rule if isinstance(rule, dict) else {}
    causes: list[Cause] = []
    operations = _strings(rule.get("operations"))
    if not operations:
        causes.append(required(f"{path}.operations"))
    if len(operations) > 1 and "*" in operations:
        causes.append(invalid(f"{path}.operations", operations, "if '*' is present, must not specify other operations"))
    causes += [field_not_supported(f"{path}.operations[{i}]", op, _OPERATIONS)
               for i, op in enumerate(operations) if op not in _OPERATIONS]
    for key, what in (("apiGroups", "API groups"), ("apiVersions", "API versions")):
        values = _strings(rule.get(key))
        if not values:
            causes.append(required(f"{path}.{key}"))
        if len(values) > 1 and "*" in values:
            causes.append(invalid(f"{path}.{key}", values, f"if '*' is present, must not specify other {what}"))
    causes += [required(f"{path}.apiVersions[{i}]") for i, v in enumerate(_strings(rule.get("apiVersions"))) if not v]
    causes += _resources(f"{path}.resources", _strings(rule.get("resources")))
    scope = rule.get("scope")
    if scope is not None and scope not in _SCOPES:
        causes.append(field_not_supported(f"{path}.scope", scope, _SCOPES))
    return causes


def _label_name(path: str, key: str) -> list[Cause]:
    return [invalid(path, key, m) for m in qualified_name_errors(key)]


def _label_selector(path: str, selector: Any) -> list[Cause]:
    """`metav1validation.ValidateLabelSelector`, invalid label values refused."""
    if not isinstance(selector, dict):
        return []
    causes: list[Cause] = []
    labels = selector.get("matchLabels")
    for key, value in (labels.items() if isinstance(labels, dict) else ()):
        causes += _label_name(f"{path}.matchLabels", str(key))
        causes += [invalid(f"{path}.matchLabels", value, m) for m in label_value_errors(str(value))]
    expressions = selector.get("matchExpressions")
    for i, expr in enumerate(expressions if isinstance(expressions, list) else []):
        expr = expr if isinstance(expr, dict) else {}
        at, values = f"{path}.matchExpressions[{i}]", _strings(expr.get("values"))
        operator = expr.get("operator")
        if operator in ("In", "NotIn"):
            if not values:
                causes.append(required(f"{at}.values", "must be specified when `operator` is 'In' or 'NotIn'"))
        elif operator in ("Exists", "DoesNotExist"):
            if values:
                causes.append(field_forbidden(f"{at}.values",
                                              "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"))
        else:
            causes.append(invalid(f"{at}.operator", operator, "not a valid selector operator"))
        causes += _label_name(f"{at}.key", str(expr.get("key") or ""))
        causes += [invalid(f"{at}.values[{j}]", v, m) for j, v in enumerate(values) for m in label_value_errors(v)]
    return causes


def _choice(path: str, value: Any, allowed: list[str]) -> list[Cause]:
    return [field_not_supported(path, value, allowed)] if value is not None and value not in allowed else []


def validate_webhook(path: str, hook: Any, mutating: bool) -> list[Cause]:
    """One entry of `webhooks`, in kube's order of checks."""
    hook = hook if isinstance(hook, dict) else {}
    causes = _fully_qualified_name(f"{path}.name", hook.get("name"))
    rules = hook.get("rules")
    for i, rule in enumerate(rules if isinstance(rules, list) else []):
        causes += _rule(f"{path}.rules[{i}]", rule)
    causes += _choice(f"{path}.failurePolicy", hook.get("failurePolicy"), _FAILURE_POLICIES)
    causes += _choice(f"{path}.matchPolicy", hook.get("matchPolicy"), _MATCH_POLICIES)
    side_effects = hook.get("sideEffects")
    if side_effects is None:
        causes.append(required(f"{path}.sideEffects", f"must specify one of {', '.join(_SIDE_EFFECTS)}"))
    else:
        causes += _choice(f"{path}.sideEffects", side_effects, _SIDE_EFFECTS)
    timeout = hook.get("timeoutSeconds")
    if isinstance(timeout, int) and not 1 <= timeout <= 30:
        causes.append(invalid(f"{path}.timeoutSeconds", timeout, "the timeout value must be between 1 and 30 seconds"))
    causes += _label_selector(f"{path}.namespaceSelector", hook.get("namespaceSelector"))
    causes += _label_selector(f"{path}.objectSelector", hook.get("objectSelector"))
    if mutating:
        causes += _choice(f"{path}.reinvocationPolicy", hook.get("reinvocationPolicy"), _REINVOCATION)
    causes += client_config_causes(f"{path}.clientConfig", hook.get("clientConfig"))
    causes += condition_causes(f"{path}.matchConditions", hook.get("matchConditions"))
    return causes


class WebhookConfigurationStrategy(Strategy):
    """Cluster-scoped, subdomain names, every webhook checked like kube's validation."""

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        mutating = self.definition.kind.startswith("Mutating")
        webhooks = obj.get("webhooks")
        names: set[str] = set()
        for i, hook in enumerate(webhooks if isinstance(webhooks, list) else []):
            path = f"webhooks[{i}]"
            causes += validate_webhook(path, hook, mutating)
            hook = hook if isinstance(hook, dict) else {}
            causes += review_versions_causes(f"{path}.admissionReviewVersions", hook.get("admissionReviewVersions"))
            name = hook.get("name")
            if isinstance(name, str) and name:
                if name in names:
                    causes.append(field_duplicate(f"{path}.name", name))
                names.add(name)
        return causes
