"""CEL validation rules (`x-kubernetes-validations`) of custom resources, worded like kube-apiserver.

Follows k8s.io/apiextensions-apiserver `pkg/apiserver/schema/cel` (`validation.go`, `compilation.go`,
`values.go`) and the CRD checks of `apis/apiextensions/validation`. Rules are evaluated with
cel-expr-python, Google's C++ CEL runtime: it type-checks (compile errors read like cel-go's),
ships the strings and optional-types extensions kube enables, takes Python functions for kube's
own `Lists`, `Regex` and `Sets` libraries, and caps every evaluation at about 10,000
comprehension iterations.

- A rule attaches to any schema node; `self` is the node's value (never `null`: kube skips nulls),
  `oldSelf` the old value on update. A rule that references `oldSelf` is a transition rule and
  runs only where an old value correlates (object properties, map values, items of
  `x-kubernetes-list-type: map` lists matched by key), unless `optionalOldSelf` makes `oldSelf`
  an optional. Values are typed by the schema: `number` is a double, `date`/`date-time` a
  timestamp, `duration` a duration, `byte` bytes; property names are escaped (`__dash__`, ...);
  at a resource root only apiVersion, kind, metadata.name and metadata.generateName are visible.
- A failing rule is `field.Invalid(path, <schema type>, message)` (`reason` may make it Forbidden,
  Required or Duplicate); the message is the evaluated `messageExpression`, else `message`, else
  `failed rule: <rule>`; `fieldPath` is appended to the node path. A root rule's path is `<nil>`.
- On update, a non-transition rule failing on a value equal to its old value is ratcheted into a
  warning (kube's CRDValidationRatcheting).
- Cost bound: kube rejects expensive rules by estimated cost and cuts evaluation at a cost limit;
  here the runtime's iteration cap cuts loops, and a rule that could blow up with the data
  (comprehensions, `replace`, `find`, set functions, over a value bigger than a few hundred bytes)
  runs in a worker process that is killed after `RULE_TIME_BUDGET`. Either way the error is
  kube's "call cost exceeds limit" and no further rules run; past `TOTAL_TIME_BUDGET` per object,
  kube's "running out of cost budget".
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any


from kapi.api.errors import Cause, field_duplicate, field_forbidden, field_value_invalid, go_quote

from kapi.scheme.cel_crd import _any_rules, _schema_errors
from kapi.scheme.cel_values import (
    _BLOCKED,
    _COST,
    _OUT_OF_BUDGET,
    BLOCKING,
    TOTAL_TIME_BUDGET,
    _evaluate,
    _join,
    _kind_of,
    _program,
    _rules_here,
    _to_cel,
    normalize_field_path,
)
from kapi.scheme.cel_worker import _small, _worker

Schema = dict[str, Any]
_has_rules_cache: dict[int, tuple[Schema, bool]] = {}

# -- public API --------------------------------------------------------------------------------

def has_rules(schema: Schema | None) -> bool:
    """Whether any node of `schema` carries `x-kubernetes-validations` (cached per schema object)."""
    if not isinstance(schema, dict):
        return False
    hit = _has_rules_cache.get(id(schema))
    if hit is None or hit[0] is not schema:
        if len(_has_rules_cache) > 16384:
            _has_rules_cache.clear()
        hit = _has_rules_cache[id(schema)] = (schema, _any_rules(schema))
    return hit[1]


def validate_rules(obj: Any, old_obj: Any, schema: Schema | None,
                   warnings: list[str] | None = None) -> list[Cause]:
    """Field errors of every failing rule of `schema` on `obj` (`old_obj` on update, else None).

    Ratcheted errors (a value unchanged since `old_obj`) go to `warnings` as `path: message`.
    """
    if not has_rules(schema) or obj is None:
        return []
    walk = _Walk([], warnings, time.monotonic() + TOTAL_TIME_BUDGET)
    _node(walk, obj, old_obj, schema, "", True, (obj, old_obj) if old_obj is not None else None)
    return walk.out


def validate_rules_after(prior: list[Cause], obj: Any, old_obj: Any, schema: Schema | None,
                         warnings: list[str] | None = None) -> list[Cause]:
    """`validate_rules` unless `prior` (schema and metadata errors) already make rules meaningless.

    kube's `hasBlockingErr`: a type, required, enum, length or count error skips every rule and
    says so in one `<nil>` error instead.
    """
    if not has_rules(schema):
        return []
    if any(c.reason in BLOCKING for c in prior):
        return [Cause("FieldValueInvalid", f'Invalid value: "null": {_BLOCKED}', "<nil>")]
    return validate_rules(obj, old_obj, schema, warnings)


def rule_schema_errors(schema: Schema | None, path: str = "") -> list[Cause]:
    """What is wrong with the rules of a CRD schema, as kube's CRD validation says it.

    Paths are relative to `openAPIV3Schema` (`properties[spec].x-kubernetes-validations[0].rule`),
    prefixed with `path`.
    """
    found: list[Cause] = []
    cel_found: list[Cause] = []
    if isinstance(schema, dict):
        _schema_errors(schema, path, None, True, found, cel_found)
    return found + cel_found


def compile_rules(schema: Schema | None) -> list[str]:
    """Every reason the rules of `schema` cannot be used, as `path: message` lines."""
    return [f"{c.field}: {c.message}" for c in rule_schema_errors(schema)]


# -- the walk --------------------------------------------------------------------------------------

@dataclass
class _Walk:
    out: list[Cause]
    warnings: list[str] | None
    deadline: float
    stopped: bool = False


def _same(a: Any, b: Any) -> bool:
    """Go's DeepEqual on JSON values (1 is not 1.0, true is not 1)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


def _node(walk: _Walk, value: Any, old: Any, schema: Any, path: str, root: bool,
          ratchet: tuple[Any, Any] | None) -> None:
    if walk.stopped or value is None or not has_rules(schema):
        return
    rules = _rules_here(schema)
    if rules:
        _check(walk, value, old, schema, path, root, ratchet, rules)
    if isinstance(value, dict):
        correlated = isinstance(old, dict) and schema.get("x-kubernetes-map-type") in (None, "granular", "atomic")
        props, additional = schema.get("properties"), schema.get("additionalProperties")
        props = props if isinstance(props, dict) else {}
        for key in sorted(value):
            sub = props.get(key, additional if key not in props else None)
            if not isinstance(sub, dict):
                continue
            old_sub = old.get(key) if correlated else None
            child = _join(path, key) if key in props else f"{path}[{key}]"
            _node(walk, value[key], old_sub, sub, child, False,
                  (value[key], old_sub) if correlated else ratchet)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keys = schema.get("x-kubernetes-list-map-keys")
        keys = keys if isinstance(keys, list) else []
        olds: dict[Any, Any] | None = None
        if schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list) and keys:
            olds = {_map_key(item, keys): item for item in old if isinstance(item, dict)}
        for i, item in enumerate(value):
            old_item = olds.get(_map_key(item, keys)) if olds is not None and isinstance(item, dict) else None
            _node(walk, item, old_item, schema["items"], f"{path}[{i}]", False,
                  (item, old_item) if olds is not None else ratchet)


def _map_key(item: dict[str, Any], keys: list[Any]) -> str:
    return repr([item.get(k) for k in keys])


def _check(walk: _Walk, value: Any, old: Any, schema: Schema, path: str, root: bool,
           ratchet: tuple[Any, Any] | None, rules: list[dict[str, Any]]) -> None:
    type_name = schema["type"] if isinstance(schema.get("type"), str) else ""
    here = path or "<nil>"
    kind = _kind_of(schema)
    converted: list[Any] = []

    def fail(where: str, detail: str) -> None:
        walk.out.append(field_value_invalid(where, type_name, detail))

    for rule in rules:
        source = rule.get("rule")
        if not isinstance(source, str) or not source.strip():
            continue
        program = _program(rule, kind)
        if program.expr is None:
            fail(here, f"rule compile error: {program.error}")
            continue
        if program.uses_old and old is None and not program.optional:
            continue
        if time.monotonic() > walk.deadline:
            fail(here, _OUT_OF_BUDGET)
            walk.stopped = True
            return
        outcome = None
        if program.isolate == 2 or program.isolate and not (_small(value) and _small(old)):
            outcome = _worker.run({"rule": rule, "schema": schema, "root": root, "self": value, "old": old})
        if outcome is None:
            if not converted:
                converted[:] = [_to_cel(value, schema, root), _to_cel(old, schema, root) if old is not None else None]
            try:
                outcome = _evaluate(program, converted[0], converted[1])
            except Exception as exc:  # a value the runtime cannot take (an integer past 64 bits, ...)
                outcome = {"error": str(exc)}
        said = _rule_error_string(rule)
        if "budget" in outcome:
            if outcome["budget"] == "message":
                expr = rule.get("messageExpression")
                fail(_at(path, rule, schema), "no further validation rules will be run due to call cost exceeds "
                                              f"limit for messageExpression: {go_quote(str(expr))}")
            else:
                fail(here, _COST + said)
            walk.stopped = True
            return
        if "error" in outcome:
            error = outcome["error"]
            fail(here, f"'{error}': call arguments did not match a supported operator, function or macro "
                       f"signature for rule: {said}" if error.startswith("no such overload")
                 else f"{error} evaluating rule: {said}")
            continue
        if outcome["ok"]:
            continue
        detail = outcome.get("message") or _rule_message(rule)
        cause = _for_reason(_at(path, rule, schema), type_name, detail, rule.get("reason"))
        if not program.uses_old and ratchet is not None and ratchet[1] is not None and _same(*ratchet):
            if walk.warnings is not None:
                walk.warnings.append(f"{cause.field}: {cause.message}")
        else:
            walk.out.append(cause)


def _rule_error_string(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    return message.strip() if isinstance(message, str) and message else str(rule.get("rule", "")).strip()


def _rule_message(rule: dict[str, Any]) -> str:
    message = rule.get("message")
    return message.strip() if isinstance(message, str) and message else f"failed rule: {_rule_error_string(rule)}"


def _for_reason(path: str, type_name: str, detail: str, reason: Any) -> Cause:
    if reason == "FieldValueForbidden":
        return field_forbidden(path, detail)
    if reason == "FieldValueRequired":
        return Cause("FieldValueRequired", f"Required value: {detail}", path)
    if reason == "FieldValueDuplicate":
        return field_duplicate(path, type_name)
    return field_value_invalid(path, type_name, detail)


def _at(path: str, rule: dict[str, Any], schema: Schema) -> str:
    """The node path with the rule's `fieldPath` appended (kube's `Child(NormalizedRuleFieldPath)`)."""
    field_path = rule.get("fieldPath")
    if not isinstance(field_path, str) or not field_path.strip():
        return path or "<nil>"
    normalized, error = normalize_field_path(field_path, schema)
    if error:
        return path or "<nil>"
    return _join(path, normalized)
