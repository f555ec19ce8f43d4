"""CRD-time checks of `x-kubernetes-validations`: the reasons a CRD's rules are refused, in kube's words."""
from __future__ import annotations

import re
from typing import Any


from kapi.api.errors import Cause, field_not_supported, field_value_invalid, go_quote

from kapi.scheme.cel_values import REASONS, _join, _kind_of, _program, _rules_here, normalize_field_path

Schema = dict[str, Any]

# -- CRD-time checks -----------------------------------------------------------------------------------



def _any_rules(schema: Any) -> bool:
    if not isinstance(schema, dict):
        return False
    if _rules_here(schema):
        return True
    props = schema.get("properties")
    if isinstance(props, dict) and any(_any_rules(p) for p in props.values()):
        return True
    return _any_rules(schema.get("additionalProperties")) or _any_rules(schema.get("items"))


def _go_rule(rule: dict[str, Any]) -> str:
    """The rule as Go's `%#v` prints kube's internal `apiextensions.ValidationRule`."""
    def text(key: str) -> str:
        value = rule.get(key)
        return go_quote(value if isinstance(value, str) else "")
    reason = "(0xc000a1b2c0)" if rule.get("reason") is not None else "(nil)"
    optional = "(0xc000a1b2c8)" if rule.get("optionalOldSelf") is not None else "(nil)"
    return (f"apiextensions.ValidationRule{{Rule:{text('rule')}, Message:{text('message')}, "
            f"MessageExpression:{text('messageExpression')}, Reason:(*apiextensions.FieldValueErrorReason){reason}, "
            f"FieldPath:{text('fieldPath')}, OptionalOldSelf:(*bool){optional}}}")


def _schema_errors(schema: Schema, path: str, uncorrelatable: str | None, compile: bool,
                   found: list[Cause], cel_found: list[Cause]) -> None:
    """kube's walk of a CRD schema: children first, then this node's rules; CEL compilation only
    where nothing at this level or deeper is wrong and outside allOf/anyOf/oneOf."""
    before = len(found)
    props = schema.get("properties")
    props = props if isinstance(props, dict) else {}
    for name in sorted(props):
        if isinstance(props[name], dict):
            _schema_errors(props[name], f"{_join(path, 'properties')}[{name}]", uncorrelatable, compile,
                           found, cel_found)
    if isinstance(schema.get("additionalProperties"), dict):
        _schema_errors(schema["additionalProperties"], _join(path, "additionalProperties"), uncorrelatable,
                       compile, found, cel_found)
    for junctor in ("allOf", "oneOf", "anyOf"):
        for i, sub in enumerate(schema.get(junctor) or ()):
            if isinstance(sub, dict):
                _schema_errors(sub, f"{_join(path, junctor)}[{i}]", uncorrelatable, False, found, cel_found)
    items = schema.get("items")
    if isinstance(items, dict):
        keep = uncorrelatable or (None if schema.get("x-kubernetes-list-type") == "map" else path or "<nil>")
        _schema_errors(items, _join(path, "items"), keep, compile, found, cel_found)
    rules = schema.get("x-kubernetes-validations")
    if isinstance(rules, list) and rules:
        rules = [r if isinstance(r, dict) else {} for r in rules]
        _rule_checks(schema, rules, path, found)
        if compile and len(found) == before:
            _rule_compilation(schema, rules, path, uncorrelatable, cel_found)


def _rule_checks(schema: Schema, rules: list[dict[str, Any]], path: str, found: list[Cause]) -> None:
    """kube's per-rule checks of a CRD: rule, message, messageExpression, reason, fieldPath."""
    base = _join(path, "x-kubernetes-validations")
    for i, rule in enumerate(rules):
        at = f"{base}[{i}]"
        text, message = str(rule.get("rule") or ""), rule.get("message")
        message = message if isinstance(message, str) else ""
        if not text.strip():
            found.append(Cause("FieldValueRequired", "Required value: rule is not specified", f"{at}.rule"))
        elif message and not message.strip():
            found.append(field_value_invalid(f"{at}.message", message, "message must be non-empty if specified"))
        elif re.search(r"[\n\r]", message.strip()):
            found.append(field_value_invalid(f"{at}.message", message, "message must not contain line breaks"))
        elif re.search(r"[\n\r]", text.strip()) and not message.strip():
            found.append(Cause("FieldValueRequired", "Required value: message must be specified if rule contains "
                                                     "line breaks", f"{at}.message"))
        expr = rule.get("messageExpression")
        if isinstance(expr, str) and expr and not expr.strip():
            found.append(Cause("FieldValueRequired", "Required value: messageExpression must be non-empty if "
                                                     "specified", f"{at}.messageExpression"))
        reason = rule.get("reason")
        if reason is not None and reason not in REASONS:
            found.append(field_not_supported(f"{at}.reason", reason, list(REASONS)))
        field_path = rule.get("fieldPath")
        if isinstance(field_path, str) and field_path:
            if not field_path.strip():
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 "fieldPath must be non-empty if specified"))
            if re.search(r"[\n\r]", field_path):
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 "fieldPath must not contain line breaks"))
            why = normalize_field_path(field_path, schema)[1]
            if why:
                found.append(field_value_invalid(f"{at}.fieldPath", field_path,
                                                 f"fieldPath must be a valid path: {why}"))


def _rule_compilation(schema: Schema, rules: list[dict[str, Any]], path: str, uncorrelatable: str | None,
                      found: list[Cause]) -> None:
    base, kind = _join(path, "x-kubernetes-validations"), _kind_of(schema)
    for i, rule in enumerate(rules):
        at = f"{base}[{i}]"
        program = _program(rule, kind)
        if program.error:
            found.append(Cause("FieldValueInvalid", f"Invalid value: {_go_rule(rule)}: {program.error}",
                               f"{at}.rule"))
        if program.message_error:
            found.append(Cause("FieldValueInvalid", f"Invalid value: {_go_rule(rule)}: {program.message_error}",
                               f"{at}.messageExpression"))
        if program.uses_old and uncorrelatable:
            found.append(field_value_invalid(f"{at}.rule", rule.get("rule"), "oldSelf cannot be used on the "
                                             f"uncorrelatable portion of the schema within {uncorrelatable}"))
        elif program.error == "" and not program.uses_old and rule.get("optionalOldSelf") is not None:
            found.append(field_value_invalid(f"{at}.optionalOldSelf", rule.get("optionalOldSelf"),
                                             "may not be set if oldSelf is not used in rule"))
