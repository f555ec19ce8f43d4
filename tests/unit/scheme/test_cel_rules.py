"""CEL validation rules (`x-kubernetes-validations`), worded like kube-apiserver.

Expected messages follow k8s.io/apiextensions-apiserver `pkg/apiserver/schema/cel/validation.go`
(`field.Invalid(path, <schema type>, ...)`, `failed rule: <rule>`, `<err> evaluating rule: <rule>`,
the call-cost message) and the CRD checks of `pkg/apis/apiextensions/validation/validation.go`.
"""
from __future__ import annotations

import time
from typing import Any

import pytest

from kapi.api import errors
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme import cel
from kapi.scheme.cel import compile_rules, rule_schema_errors, validate_rules, validate_rules_after
from kapi.scheme.definitions import ResourceDef, VersionDef
from kapi.storage.memory import MemoryStorage

Row = tuple[str, str, str]


def rules(*items: str | dict[str, Any]) -> dict[str, Any]:
    return {"x-kubernetes-validations": [{"rule": r} if isinstance(r, str) else r for r in items]}


def spec_schema(spec_rules: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": props, **(spec_rules or {})},
    }}


def obj(spec: Any, name: str = "w") -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


def errs(spec: Any, old: Any = None, spec_rules: dict[str, Any] | None = None, **props: Any) -> list[Row]:
    schema = spec_schema(spec_rules, **props)
    found = validate_rules(obj(spec), None if old is None else obj(old), schema)
    return [(c.field, c.reason, c.message) for c in found]


def one(spec: Any, old: Any = None, **props: Any) -> Row:
    found = errs(spec, old, **props)
    assert len(found) == 1, found
    return found[0]


def passes(spec: Any, **props: Any) -> bool:
    return errs(spec, **props) == []


# -- self -----------------------------------------------------------------------------------------

def test_failed_rule_without_message() -> None:
    assert one({"replicas": -1}, replicas={"type": "integer", **rules("self >= 0")}) == (
        "spec.replicas", "FieldValueInvalid", 'Invalid value: "integer": failed rule: self >= 0')


def test_message_is_used_and_trimmed() -> None:
    rule = {"rule": "self >= 0", "message": "  must be positive "}
    assert one({"replicas": -1}, replicas={"type": "integer", **rules(rule)}) == (
        "spec.replicas", "FieldValueInvalid", 'Invalid value: "integer": must be positive')


def test_passing_rules_report_nothing() -> None:
    assert passes({"replicas": 2}, replicas={"type": "integer", **rules("self >= 0", "self < 10")})


def test_object_rule_shows_the_type_object() -> None:
    spec_rules = rules({"rule": "self.minReplicas <= self.maxReplicas", "message": "min must not exceed max"})
    assert errs({"minReplicas": 3, "maxReplicas": 1}, spec_rules=spec_rules,
                minReplicas={"type": "integer"}, maxReplicas={"type": "integer"}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": min must not exceed max')]


def test_every_failing_rule_is_reported_in_order() -> None:
    found = errs({"name": "ABC"}, name={"type": "string", **rules("self.size() < 3", "self.lowerAscii() == self")})
    assert [m for _, _, m in found] == ['Invalid value: "string": failed rule: self.size() < 3',
                                        'Invalid value: "string": failed rule: self.lowerAscii() == self']


def test_root_rule_is_reported_at_nil_and_sees_name_kind_and_api_version() -> None:
    schema = spec_schema()
    schema.update(rules("self.metadata.name.startsWith('x')",
                        "self.kind == 'Widget' && self.apiVersion == 'example.com/v1'"))
    assert [(c.field, c.message) for c in validate_rules(obj({}), None, schema)] == [
        ("<nil>", "Invalid value: \"object\": failed rule: self.metadata.name.startsWith('x')")]


def test_root_metadata_shows_only_name_and_generate_name() -> None:
    schema = spec_schema()
    schema.update(rules("has(self.metadata.labels)"))
    o = obj({})
    o["metadata"]["labels"] = {"a": "b"}
    assert [c.message for c in validate_rules(o, None, schema)] == [
        'Invalid value: "object": failed rule: has(self.metadata.labels)']


def test_null_values_are_not_validated() -> None:
    assert passes({"v": None}, v={"type": "string", "nullable": True, **rules("self.size() > 3")})


def test_map_values_are_reported_by_key() -> None:
    labels = {"type": "object", "additionalProperties": {"type": "string", **rules("self.size() <= 3")}}
    assert errs({"labels": {"a": "ok", "b": "toolong"}}, labels=labels) == [
        ("spec.labels[b]", "FieldValueInvalid", 'Invalid value: "string": failed rule: self.size() <= 3')]


def test_array_items_are_reported_by_index() -> None:
    items = {"type": "array", "items": {"type": "integer", **rules("self % 2 == 0")}}
    assert [f for f, _, _ in errs({"xs": [2, 3, 4, 5]}, xs=items)] == ["spec.xs[1]", "spec.xs[3]"]


def test_rules_in_embedded_resources_see_their_type_meta() -> None:
    embedded = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True,
                **rules("self.kind == 'ConfigMap'", "self.metadata.name == 'cm'")}
    assert errs({"tpl": {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "cm"}}}, tpl=embedded) == [
        ("spec.tpl", "FieldValueInvalid", "Invalid value: \"object\": failed rule: self.kind == 'ConfigMap'")]


# -- values are typed as kube types them ------------------------------------------------------------------

def test_number_fields_are_doubles_and_compare_with_ints() -> None:
    ratio = {"type": "number", **rules("self > 0.5", "self >= 1", "self + 0.5 == 2.5")}
    assert passes({"ratio": 2}, ratio=ratio)


def test_date_time_and_duration_formats() -> None:
    props = {"at": {"type": "string", "format": "date-time",
                    **rules("self > timestamp('2023-01-01T00:00:00Z')", "self.getFullYear() == 2024")},
             "every": {"type": "string", "format": "duration", **rules("self >= duration('90m')")},
             "day": {"type": "string", "format": "date", **rules("self < timestamp('2024-06-01T00:00:00Z')")}}
    assert passes({"at": "2024-03-01T10:00:00Z", "every": "1h30m", "day": "2024-05-31"}, **props)
    assert [f for f, _, _ in errs({"at": "2022-03-01T10:00:00Z", "every": "1h", "day": "2024-06-02"}, **props)] == [
        "spec.at", "spec.at", "spec.day", "spec.every"]


def test_property_names_are_escaped() -> None:
    spec_rules = rules("self.foo__dash__bar == 1", "self.__namespace__ == 'ns'", "self.a__dot__b",
                       "self.x__underscores__y == 2")
    props = {"foo-bar": {"type": "integer"}, "namespace": {"type": "string"}, "a.b": {"type": "boolean"},
             "x__y": {"type": "integer"}}
    assert passes({"foo-bar": 1, "namespace": "ns", "a.b": True, "x__y": 2}, spec_rules=spec_rules, **props)


def test_int_or_string_is_dynamic() -> None:
    port = {"x-kubernetes-int-or-string": True,
            **rules("type(self) == string ? self.matches('^[a-z]+$') : self > 0")}
    assert passes({"port": 80}, port=port) and passes({"port": "http"}, port=port)
    assert one({"port": 0}, port=port)[0] == "spec.port"


# -- the CEL language and kube's libraries -----------------------------------------------------------------

LIST = {"type": "array", "items": {"type": "string"}}
OBJECTS = {"type": "array", "items": {"type": "object", "properties": {
    "name": {"type": "string"}, "port": {"type": "integer"}}}}


@pytest.mark.parametrize("rule, spec, ok", [
    ("self.tags.all(t, t.startsWith('x-'))", {"tags": ["x-a", "x-b"]}, True),
    ("self.tags.all(t, t.startsWith('x-'))", {"tags": ["x-a", "b"]}, False),
    ("self.tags.exists(t, t == 'b')", {"tags": ["a", "b"]}, True),
    ("self.tags.exists(t, t == 'c')", {"tags": ["a", "b"]}, False),
    ("self.tags.exists_one(t, t == 'a')", {"tags": ["a", "a"]}, False),
    ("self.tags.map(t, t.size()).all(n, n < 3)", {"tags": ["ab", "c"]}, True),
    ("self.tags.filter(t, t.endsWith('z')).size() == 1", {"tags": ["az", "b"]}, True),
    ("self.ports.all(p, self.ports.exists_one(q, q.name == p.name))",
     {"ports": [{"name": "a"}, {"name": "a"}]}, False),
    ("has(self.tags)", {"tags": []}, True),
    ("has(self.ports) || !has(self.tags)", {"tags": ["a"]}, False),
    ("self.tags.size() == 2 && 'a' in self.tags", {"tags": ["a", "b"]}, True),
    ("self.name.contains('ell') && self.name.matches('^h[a-z]+o$')", {"name": "hello"}, True),
    ("self.name.split('l') == ['he', '', 'o']", {"name": "hello"}, True),
    ("self.name.upperAscii() == 'HELLO' && self.name.indexOf('l') == 2", {"name": "hello"}, True),
    ("self.name.replace('l', 'L') == 'heLLo' && self.name.substring(1, 3) == 'el'", {"name": "hello"}, True),
    ("'%s has %d tags'.format([self.name, size(self.tags)]) == 'hello has 1 tags'",
     {"name": "hello", "tags": ["a"]}, True),
    ("self.tags.isSorted() && self.tags.indexOf('b') == 1", {"tags": ["a", "b"]}, True),
    ("self.ports.map(p, p.port).sum() == 30 && self.ports.map(p, p.port).max() == 20",
     {"ports": [{"port": 10}, {"port": 20}]}, True),
    ("self.name.find('[0-9]+') == '42' && self.name.findAll('[a-z]').size() == 2", {"name": "ab42"}, True),
    ("sets.contains(self.tags, ['a']) && !sets.intersects(self.tags, ['z'])", {"tags": ["a", "b"]}, True),
    ("self.?missing.orValue('none') == 'none'", {}, True),
])
def test_language(rule: str, spec: dict[str, Any], ok: bool) -> None:
    props = {"tags": LIST, "ports": OBJECTS, "name": {"type": "string"}, "missing": {"type": "string"}}
    found = errs(spec, spec_rules=rules(rule), **props)
    assert (found == []) is ok, found


# -- message, messageExpression, fieldPath, reason ---------------------------------------------------------

def test_message_expression() -> None:
    rule = {"rule": "self <= 5", "message": "too many", "messageExpression": "'replicas ' + string(self) + ' > 5'"}
    assert one({"replicas": 7}, replicas={"type": "integer", **rules(rule)})[2] == \
        'Invalid value: "integer": replicas 7 > 5'


@pytest.mark.parametrize("expression", ["self.nope + 'x'", "''", "'  '", "'a\\nb'"])
def test_message_expression_falls_back_to_message(expression: str) -> None:
    rule = {"rule": "self.size() < 2", "message": "short please", "messageExpression": expression}
    assert one({"n": "abc"}, n={"type": "string", **rules(rule)})[2] == 'Invalid value: "string": short please'


def test_message_expression_falls_back_to_the_default_message() -> None:
    rule = {"rule": "self.size() < 2", "messageExpression": "self.nope"}
    assert one({"n": "abc"}, n={"type": "string", **rules(rule)})[2] == \
        'Invalid value: "string": failed rule: self.size() < 2'


@pytest.mark.parametrize("field_path, expected", [
    (".replicas", "spec.replicas"),
    (".limits.cpu", "spec.limits.cpu"),
    (".labels['app.kubernetes.io/name']", "spec.labels[app.kubernetes.io/name]"),
    ("['replicas']", "spec.replicas"),
])
def test_field_path_is_appended(field_path: str, expected: str) -> None:
    spec_rules = rules({"rule": "false", "message": "no", "fieldPath": field_path})
    props = {"replicas": {"type": "integer"}, "limits": {"type": "object", "properties": {"cpu": {"type": "string"}}},
             "labels": {"type": "object", "additionalProperties": {"type": "string"}}}
    assert errs({}, spec_rules=spec_rules, **props) == [(expected, "FieldValueInvalid", 'Invalid value: "object": no')]


@pytest.mark.parametrize("reason, expected", [
    ("FieldValueInvalid", ("FieldValueInvalid", 'Invalid value: "array": must be unique')),
    ("FieldValueForbidden", ("FieldValueForbidden", "Forbidden: must be unique")),
    ("FieldValueRequired", ("FieldValueRequired", "Required value: must be unique")),
    ("FieldValueDuplicate", ("FieldValueDuplicate", 'Duplicate value: "array"')),
])
def test_reason(reason: str, expected: tuple[str, str]) -> None:
    rule = {"rule": "self.all(x, self.exists_one(y, x == y))", "message": "must be unique", "reason": reason}
    assert one({"tags": ["a", "a"]}, tags={**LIST, **rules(rule)})[1:] == expected


# -- oldSelf -------------------------------------------------------------------------------------------------

IMMUTABLE = {"type": "string", **rules({"rule": "self == oldSelf", "message": "Value is immutable"})}


def test_transition_rules_skip_creates() -> None:
    assert errs({"mode": "a"}, mode=IMMUTABLE) == []


def test_transition_rules_run_on_updates() -> None:
    assert errs({"mode": "b"}, {"mode": "a"}, mode=IMMUTABLE) == [
        ("spec.mode", "FieldValueInvalid", 'Invalid value: "string": Value is immutable')]
    assert errs({"mode": "a"}, {"mode": "a"}, mode=IMMUTABLE) == []


def test_transition_rules_skip_values_that_had_no_old_value() -> None:
    assert errs({"mode": "b"}, {}, mode=IMMUTABLE) == []


def test_transition_rule_comparing_numbers() -> None:
    replicas = {"type": "integer", **rules({"rule": "self >= oldSelf", "message": "cannot scale down"})}
    assert one({"replicas": 2}, {"replicas": 3}, replicas=replicas)[2] == 'Invalid value: "integer": cannot scale down'


def test_map_list_items_correlate_by_key() -> None:
    ports = {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
             "items": {"type": "object", "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
                       **rules({"rule": "self.port == oldSelf.port", "message": "port is immutable"})}}
    old = {"ports": [{"name": "a", "port": 1}, {"name": "b", "port": 2}]}
    new = {"ports": [{"name": "b", "port": 2}, {"name": "a", "port": 9}, {"name": "c", "port": 3}]}
    assert errs(new, old, ports=ports) == [
        ("spec.ports[1]", "FieldValueInvalid", 'Invalid value: "object": port is immutable')]


def test_atomic_list_items_do_not_correlate() -> None:
    items = {"type": "array", "items": {"type": "string", **rules("self == oldSelf")}}
    assert errs({"xs": ["b"]}, {"xs": ["a"]}, xs=items) == []


def test_optional_old_self_runs_on_create_too() -> None:
    rule = {"rule": "!oldSelf.hasValue() || self >= oldSelf.value()", "optionalOldSelf": True,
            "messageExpression": "'must not decrease'"}
    version = {"type": "integer", **rules(rule, {"rule": "oldSelf.hasValue() || self == 1", "optionalOldSelf": True})}
    assert errs({"v": 1}, v=version) == []
    assert [m for _, _, m in errs({"v": 2}, v=version)] == [
        'Invalid value: "integer": failed rule: oldSelf.hasValue() || self == 1']
    assert [m for _, _, m in errs({"v": 2}, {"v": 3}, v=version)] == ['Invalid value: "integer": must not decrease']


def test_unchanged_invalid_values_are_ratcheted_into_warnings() -> None:
    schema = spec_schema(size={"type": "string", **rules("self.size() <= 3")}, n={"type": "integer"})
    warnings: list[str] = []
    assert validate_rules(obj({"size": "large", "n": 2}), obj({"size": "large", "n": 1}), schema, warnings) == []
    assert warnings == ['spec.size: Invalid value: "string": failed rule: self.size() <= 3']
    changed = validate_rules(obj({"size": "larger"}), obj({"size": "large"}), schema, [])
    assert [c.field for c in changed] == ["spec.size"]


# -- runtime errors ----------------------------------------------------------------------------------------

def test_missing_field_is_no_such_key_with_the_message_naming_the_rule() -> None:
    rule = {"rule": "self.a == self.b", "message": "a must equal b"}
    assert errs({"a": "x"}, spec_rules=rules(rule), a={"type": "string"}, b={"type": "string"}) == [
        ("spec", "FieldValueInvalid", 'Invalid value: "object": no such key: b evaluating rule: a must equal b')]


def test_runtime_overload_error_on_dynamic_values() -> None:
    port = {"x-kubernetes-int-or-string": True, **rules("self > 1")}
    assert one({"port": "http"}, port=port) == (
        "spec.port", "FieldValueInvalid", "Invalid value: \"\": 'no such overload': call arguments did not match a "
                                          "supported operator, function or macro signature for rule: self > 1")


def test_a_rule_that_does_not_compile_is_reported_at_runtime() -> None:
    field, reason, message = one({"n": 1}, n={"type": "integer", **rules("self >")})
    assert (field, reason) == ("spec.n", "FieldValueInvalid")
    assert message.startswith('Invalid value: "integer": rule compile error: compilation failed: ERROR: <input>:1:7: '
                              "Syntax error: mismatched input '<EOF>'")


# -- compile errors for the CRD -----------------------------------------------------------------------------

def go_rule(rule: str, message_expression: str = "") -> str:
    return (f'apiextensions.ValidationRule{{Rule:"{rule}", Message:"", MessageExpression:"{message_expression}", '
            'Reason:(*apiextensions.FieldValueErrorReason)(nil), FieldPath:"", OptionalOldSelf:(*bool)(nil)}')


def test_compile_errors_are_listed_as_reasons() -> None:
    schema = spec_schema(n={"type": "integer", **rules("self >", "self + 1", "undefinedFn(self)",
                                                       {"rule": "self > 0", "messageExpression": "1"})},
                         s={"type": "string", **rules("self > 1")})
    base = "properties[spec].properties"
    assert compile_rules(schema) == [
        f"{base}[n].x-kubernetes-validations[0].rule: Invalid value: {go_rule('self >')}: compilation failed: "
        "ERROR: <input>:1:7: Syntax error: mismatched input '<EOF>' expecting {'[', '{', '(', '.', '-', '!', 'true', "
        "'false', 'null', NUM_FLOAT, NUM_INT, NUM_UINT, STRING, BYTES, IDENTIFIER}\n | self >\n | ......^",
        f"{base}[n].x-kubernetes-validations[1].rule: Invalid value: {go_rule('self + 1')}: "
        "cel expression must evaluate to a bool",
        f"{base}[n].x-kubernetes-validations[2].rule: Invalid value: {go_rule('undefinedFn(self)')}: compilation "
        "failed: ERROR: <input>:1:12: undeclared reference to 'undefinedFn' (in container '')\n"
        " | undefinedFn(self)\n | ...........^",
        f"{base}[n].x-kubernetes-validations[3].messageExpression: Invalid value: {go_rule('self > 0', '1')}: "
        "messageExpression must evaluate to a string",
        f"{base}[s].x-kubernetes-validations[0].rule: Invalid value: {go_rule('self > 1')}: compilation failed: "
        "ERROR: <input>:1:6: found no matching overload for '_>_' applied to '(string, int)'\n | self > 1\n | .....^",
    ]


def test_rule_field_checks_come_before_compilation() -> None:
    schema = spec_schema(n={"type": "integer", **rules(
        {"rule": " "}, {"rule": "self > 0", "message": " "}, {"rule": "self > 0", "reason": "Bad"},
        {"rule": "self >", "fieldPath": ".nope"}, {"rule": "self > 0\n&& self < 9"})})
    at = "properties[spec].properties[n].x-kubernetes-validations"
    assert [(c.field, c.message) for c in rule_schema_errors(schema)] == [
        (f"{at}[0].rule", "Required value: rule is not specified"),
        (f"{at}[1].message", 'Invalid value: " ": message must be non-empty if specified'),
        (f"{at}[2].reason", 'Unsupported value: "Bad": supported values: "FieldValueDuplicate", '
                            '"FieldValueForbidden", "FieldValueInvalid", "FieldValueRequired"'),
        (f"{at}[3].fieldPath", 'Invalid value: ".nope": fieldPath must be a valid path: does not refer to a valid field'),
        (f"{at}[4].message", "Required value: message must be specified if rule contains line breaks"),
    ]


def test_old_self_on_uncorrelatable_items_is_refused() -> None:
    schema = spec_schema(xs={"type": "array", "items": {"type": "string", **rules("self == oldSelf")}})
    assert compile_rules(schema) == [
        'properties[spec].properties[xs].items.x-kubernetes-validations[0].rule: Invalid value: "self == oldSelf": '
        "oldSelf cannot be used on the uncorrelatable portion of the schema within properties[spec].properties[xs]"]


def test_optional_old_self_without_old_self_is_refused() -> None:
    schema = spec_schema(n={"type": "integer", **rules({"rule": "self > 0", "optionalOldSelf": True})})
    assert compile_rules(schema) == ["properties[spec].properties[n].x-kubernetes-validations[0].optionalOldSelf: "
                                     "Invalid value: true: may not be set if oldSelf is not used in rule"]


def test_valid_rules_compile_cleanly() -> None:
    schema = spec_schema(rules("self.a.size() > 0"), a={"type": "array", "items": {"type": "string"}},
                         m={"type": "object", "additionalProperties": {"type": "integer", **rules("self >= oldSelf")}})
    assert compile_rules(schema) == []


# -- cost bound ------------------------------------------------------------------------------------------

NESTED = {"type": "array", "items": {"type": "integer"},
          **rules("self.all(x, self.all(y, x >= 0 && y >= 0))", "self.size() < 0")}


def test_nested_comprehension_over_a_large_list_is_stopped() -> None:
    started = time.monotonic()
    found = errs({"xs": list(range(1000))}, xs=NESTED)
    assert time.monotonic() - started < 5
    assert found == [("spec.xs", "FieldValueInvalid", "Invalid value: \"array\": 'operation cancelled: actual cost "
                      "limit exceeded': no further validation rules will be run due to call cost exceeds limit for "
                      "rule: self.all(x, self.all(y, x >= 0 && y >= 0))")]


def test_small_lists_pass_the_same_rule() -> None:
    assert [m for _, _, m in errs({"xs": [1, 2, 3]}, xs=NESTED)] == [
        'Invalid value: "array": failed rule: self.size() < 0']


def test_a_slow_rule_is_stopped_by_the_time_budget() -> None:
    slow = {"type": "object", "properties": {"text": {"type": "string"}, "xs": {"type": "array",
                                                                              "items": {"type": "integer"}}},
            **rules("self.xs.all(x, self.text.split('').size() > x)")}
    started = time.monotonic()
    found = errs({"data": {"text": "a" * 300_000, "xs": list(range(500))}}, data=slow)
    assert time.monotonic() - started < 5
    assert found == [("spec.data", "FieldValueInvalid", "Invalid value: \"object\": 'operation cancelled: actual cost "
                      "limit exceeded': no further validation rules will be run due to call cost exceeds limit for "
                      "rule: self.xs.all(x, self.text.split('').size() > x)")]
    # the worker comes back for the next request
    assert errs({"data": {"text": "a" * 1000, "xs": list(range(100))}}, data=slow) == []


def test_the_overall_budget_stops_further_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cel, "TOTAL_TIME_BUDGET", -1.0)
    assert errs({"n": 1}, n={"type": "integer", **rules("self > 5", "self > 6")}) == [
        ("spec.n", "FieldValueInvalid", 'Invalid value: "integer": validation failed due to running out of cost '
                                        "budget, no further validation rules will be run")]


# -- with schema validation, through the Store ------------------------------------------------------------

def test_blocking_schema_errors_skip_the_rules() -> None:
    schema = spec_schema(n={"type": "integer", **rules("self > 5")})
    blocking = errors.Cause("FieldValueTypeInvalid", "Invalid value: ...", "spec.x")
    assert validate_rules_after([blocking], obj({"n": 1}), None, schema) == [errors.Cause(
        "FieldValueInvalid", 'Invalid value: "null": some validation rules were not checked because the object was '
                             "invalid; correct the existing errors to complete validation", "<nil>")]
    other = errors.Cause("FieldValueInvalid", "Invalid value: ...", "spec.x")
    assert [c.field for c in validate_rules_after([other], obj({"n": 1}), None, schema)] == ["spec.n"]


def widget_store(schema: dict[str, Any], storage: MemoryStorage | None = None) -> Store:
    definition = ResourceDef(group="example.com", kind="Widget", plural="widgets", singular="widget",
                             namespaced=True, versions=(VersionDef(name="v1", storage=True, schema=schema),))
    return Store(strategy_for(definition), storage or MemoryStorage())


STORE_SCHEMA = spec_schema(
    rules({"rule": "self.min <= self.max", "message": "min must not exceed max"}),
    min={"type": "integer", "minimum": 0}, max={"type": "integer"},
    replicas={"type": "integer", **rules({"rule": "self >= 0", "message": "must be positive"})},
    mode={"type": "string", "default": "a", **rules({"rule": "self == oldSelf", "message": "Value is immutable"})},
)


async def test_rule_errors_join_schema_errors_in_one_422() -> None:
    store = widget_store(STORE_SCHEMA)
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", obj({"min": -3, "max": -4, "replicas": -1}), "v1", WriteOptions())
    assert exc.value.code == 422
    assert exc.value.message == (
        'Widget.example.com "w" is invalid: [spec.min: Invalid value: -3: spec.min in body should be greater than or '
        'equal to 0, spec: Invalid value: "object": min must not exceed max, '
        'spec.replicas: Invalid value: "integer": must be positive]')


async def test_type_errors_block_the_rules_through_the_store() -> None:
    store = widget_store(STORE_SCHEMA)
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", obj({"min": "x", "max": 1, "replicas": -1}), "v1", WriteOptions())
    assert [c.field for c in exc.value.causes] == ["spec.min", "<nil>"]


async def test_transition_rules_see_the_stored_object_on_update_and_patch() -> None:
    store = widget_store(STORE_SCHEMA)
    created = await store.create("default", obj({"min": 1, "max": 2}), "v1", WriteOptions())
    assert created["spec"]["mode"] == "a"  # defaulted before the rules ran
    with pytest.raises(errors.Invalid) as exc:
        await store.update("default", "w", dict(created, spec={"min": 1, "max": 2, "mode": "b"}), "v1", "",
                           WriteOptions())
    assert exc.value.message == 'Widget.example.com "w" is invalid: spec.mode: Invalid value: "string": ' \
                                "Value is immutable"

    def scale(current: dict[str, Any]) -> dict[str, Any]:
        current["spec"]["max"] = 5
        return current
    assert (await store.patch("default", "w", "v1", "", scale, WriteOptions()))["spec"]["max"] == 5


async def test_a_rule_added_later_ratchets_unchanged_values_with_a_warning() -> None:
    storage = MemoryStorage()
    loose = spec_schema(size={"type": "string"}, n={"type": "integer"})
    await widget_store(loose, storage).create("default", obj({"size": "large", "n": 1}), "v1", WriteOptions())
    strict = widget_store(spec_schema(size={"type": "string", **rules("self.size() <= 3")}, n={"type": "integer"}),
                          storage)

    def bump(current: dict[str, Any]) -> dict[str, Any]:
        current["spec"]["n"] += 1
        return current
    opts = WriteOptions()
    assert (await strict.patch("default", "w", "v1", "", bump, opts))["spec"]["n"] == 2
    assert opts.warnings == ['spec.size: Invalid value: "string": failed rule: self.size() <= 3']

    def grow(current: dict[str, Any]) -> dict[str, Any]:
        current["spec"]["size"] = "larger"
        return current
    with pytest.raises(errors.Invalid):
        await strict.patch("default", "w", "v1", "", grow, WriteOptions())


def test_backtracking_regex_in_find_is_stopped_even_on_small_values() -> None:
    name = {"type": "string", **rules("self.find('(a+)+$') == ''")}
    started = time.monotonic()
    found = errs({"name": "a" * 40 + "!"}, name=name)
    assert time.monotonic() - started < 5
    assert [f for f, _, _ in found] == ["spec.name"] and "actual cost limit exceeded" in found[0][2]
