"""Structural-schema validation of custom resources, worded like kube-apiserver.

Expected messages follow k8s.io/kube-openapi `pkg/validation/errors` as mapped by
k8s.io/apiextensions-apiserver `kubeOpenAPIResultToFieldErrors`, and
k8s.io/apimachinery `field.Error.ErrorBody()`.
"""
from __future__ import annotations

from pathlib import Path

import copy
from typing import Any

import pytest

from kapi.api import errors
from kapi.api.errors import Cause, go_float, render_value
from kapi.config import shipped_resources_dir
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.crd import CRDError, definition_from_crd, load_crd_dir
from kapi.scheme.structural import is_structural, schema_causes, structural_causes
from kapi.scheme.validation import prune_non_nullable_nulls, validate
from kapi.storage.memory import MemoryStorage

DEFS = {d.plural: d for d in [*load_crd_dir(shipped_resources_dir()), *load_crd_dir(Path(__file__).resolve().parents[2] / "data")]}


def spec_schema(**props: Any) -> dict[str, Any]:
    """A root schema whose `spec` declares `props`."""
    return {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": props},
    }}


def errs(spec: Any, **props: Any) -> list[tuple[str, str, str]]:
    """(field, reason, message) of every error for `{"spec": spec}` under `spec_schema(**props)`."""
    return [(c.field, c.reason, c.message) for c in validate({"spec": spec}, spec_schema(**props))]


def one(spec: Any, **props: Any) -> tuple[str, str, str]:
    found = errs(spec, **props)
    assert len(found) == 1, found
    return found[0]


TYPE = "FieldValueTypeInvalid"
INVALID = "FieldValueInvalid"


# -- the table: (schema of spec.x, value of spec.x, expected (field, reason, message) or None) -----

CASES: list[tuple[str, dict[str, Any], Any, tuple[str, str, str] | None]] = [
    # type
    ("string ok", {"type": "string"}, "hi", None),
    ("string gets int", {"type": "string"}, 5,
     ("spec.x", TYPE, 'Invalid value: "integer": spec.x in body must be of type string: "integer"')),
    ("string gets float", {"type": "string"}, 1.5,
     ("spec.x", TYPE, 'Invalid value: "number": spec.x in body must be of type string: "number"')),
    ("string gets bool", {"type": "string"}, True,
     ("spec.x", TYPE, 'Invalid value: "boolean": spec.x in body must be of type string: "boolean"')),
    ("string gets object", {"type": "string"}, {"a": 1},
     ("spec.x", TYPE, 'Invalid value: "object": spec.x in body must be of type string: "object"')),
    ("string gets array", {"type": "string"}, [1],
     ("spec.x", TYPE, 'Invalid value: "array": spec.x in body must be of type string: "array"')),
    ("integer gets string", {"type": "integer"}, "5",
     ("spec.x", TYPE, 'Invalid value: "string": spec.x in body must be of type integer: "string"')),
    ("integer gets bool", {"type": "integer"}, False,
     ("spec.x", TYPE, 'Invalid value: "boolean": spec.x in body must be of type integer: "boolean"')),
    ("integer gets fraction", {"type": "integer"}, 2.5,
     ("spec.x", TYPE, 'Invalid value: "number": spec.x in body must be of type integer: "number"')),
    ("integer takes integral float", {"type": "integer"}, 3.0, None),
    ("number takes int", {"type": "number"}, 3, None),
    ("number takes float", {"type": "number"}, 3.25, None),
    ("number gets string", {"type": "number"}, "3",
     ("spec.x", TYPE, 'Invalid value: "string": spec.x in body must be of type number: "string"')),
    ("boolean gets string", {"type": "boolean"}, "true",
     ("spec.x", TYPE, 'Invalid value: "string": spec.x in body must be of type boolean: "string"')),
    ("object gets string", {"type": "object"}, "x",
     ("spec.x", TYPE, 'Invalid value: "string": spec.x in body must be of type object: "string"')),
    ("array gets object", {"type": "array", "items": {"type": "string"}}, {},
     ("spec.x", TYPE, 'Invalid value: "object": spec.x in body must be of type array: "object"')),
    ("no type takes anything", {"x-kubernetes-preserve-unknown-fields": True}, {"any": [1, "b"]}, None),
    # nullable
    ("null non-nullable", {"type": "string"}, None,
     ("spec.x", TYPE, 'Invalid value: "null": spec.x in body must be of type string: "null"')),
    ("null nullable", {"type": "string", "nullable": True}, None, None),
    # int-or-string
    ("int-or-string int", {"x-kubernetes-int-or-string": True}, 80, None),
    ("int-or-string string", {"x-kubernetes-int-or-string": True}, "http", None),
    ("int-or-string bool", {"x-kubernetes-int-or-string": True}, True,
     ("spec.x", TYPE, 'Invalid value: "boolean": spec.x in body must be of type integer,string: "boolean"')),
    ("int-or-string with anyOf", {"x-kubernetes-int-or-string": True,
                                  "anyOf": [{"type": "integer"}, {"type": "string"}]}, "80%", None),
    # enum
    ("enum ok", {"type": "string", "enum": ["small", "medium", "large"]}, "small", None),
    ("enum bad", {"type": "string", "enum": ["small", "medium", "large"]}, "huge",
     ("spec.x", "FieldValueNotSupported",
      'Unsupported value: "huge": supported values: "small", "medium", "large"')),
    ("enum of ints", {"type": "integer", "enum": [1, 2]}, 3,
     ("spec.x", "FieldValueNotSupported", 'Unsupported value: 3: supported values: "1", "2"')),
    ("enum int equals float", {"type": "number", "enum": [1, 2.5]}, 1.0, None),
    ("enum of objects", {"type": "object", "enum": [{"a": 1}]}, {"a": 2},
     ("spec.x", "FieldValueNotSupported", 'Unsupported value: map[string]interface {}{"a":2}: supported values: "{\\"a\\":1}"')),
    ("enum null when nullable and listed", {"type": "string", "nullable": True, "enum": ["a", None]}, None, None),
    ("enum null when nullable not listed", {"type": "string", "nullable": True, "enum": ["a"]}, None,
     ("spec.x", "FieldValueNotSupported", 'Unsupported value: "null": supported values: "a"')),
    # strings
    ("maxLength ok", {"type": "string", "maxLength": 3}, "abc", None),
    ("maxLength", {"type": "string", "maxLength": 3}, "abcd",
     ("spec.x", "FieldValueTooLong", "Too long: may not be more than 3 bytes")),
    ("maxLength 1", {"type": "string", "maxLength": 1}, "ab",
     ("spec.x", "FieldValueTooLong", "Too long: may not be more than 1 byte")),
    ("maxLength counts characters", {"type": "string", "maxLength": 3}, "ééé", None),
    ("minLength", {"type": "string", "minLength": 2}, "a",
     ("spec.x", INVALID, 'Invalid value: "a": spec.x in body should be at least 2 chars long')),
    ("pattern ok", {"type": "string", "pattern": "^[a-z]+$"}, "abc", None),
    ("pattern", {"type": "string", "pattern": "^[a-z]+$"}, "ab1",
     ("spec.x", INVALID, "Invalid value: \"ab1\": spec.x in body should match '^[a-z]+$'")),
    ("pattern is a search", {"type": "string", "pattern": "[0-9]"}, "ab1", None),
    ("pattern $ is end of text", {"type": "string", "pattern": "^a$"}, "a\n",
     ("spec.x", INVALID, "Invalid value: \"a\\n\": spec.x in body should match '^a$'")),
    ("pattern Python cannot compile is skipped", {"type": "string", "pattern": "^\\p{L}+$"}, "abc", None),
    ("length checked before pattern", {"type": "string", "maxLength": 2, "pattern": "^[0-9]+$"}, "abc",
     ("spec.x", "FieldValueTooLong", "Too long: may not be more than 2 bytes")),
    # numbers
    ("maximum ok", {"type": "integer", "maximum": 10}, 10, None),
    ("maximum", {"type": "integer", "maximum": 10}, 11,
     ("spec.x", INVALID, "Invalid value: 11: spec.x in body should be less than or equal to 10")),
    ("exclusiveMaximum", {"type": "integer", "maximum": 10, "exclusiveMaximum": True}, 10,
     ("spec.x", INVALID, "Invalid value: 10: spec.x in body should be less than 10")),
    ("minimum", {"type": "integer", "minimum": 1}, 0,
     ("spec.x", INVALID, "Invalid value: 0: spec.x in body should be greater than or equal to 1")),
    ("exclusiveMinimum", {"type": "number", "minimum": 0.5, "exclusiveMinimum": True}, 0.5,
     ("spec.x", INVALID, "Invalid value: 0.5: spec.x in body should be greater than 0.5")),
    ("float bound printed like Go", {"type": "number", "maximum": 1000000}, 2000000.5,
     ("spec.x", INVALID, "Invalid value: 2.0000005e+06: spec.x in body should be less than or equal to 1e+06")),
    ("integral float value printed like Go", {"type": "number", "maximum": 2}, 3.0,
     ("spec.x", INVALID, "Invalid value: 3: spec.x in body should be less than or equal to 2")),
    ("int data truncates a fractional bound", {"type": "integer", "maximum": 10.5}, 11,
     ("spec.x", INVALID, "Invalid value: 11: spec.x in body should be less than or equal to 10")),
    ("multipleOf ok", {"type": "integer", "multipleOf": 5}, 15, None),
    ("multipleOf", {"type": "integer", "multipleOf": 5}, 7,
     ("spec.x", INVALID, "Invalid value: 7: spec.x in body should be a multiple of 5")),
    ("multipleOf float", {"type": "number", "multipleOf": 0.5}, 0.75,
     ("spec.x", INVALID, "Invalid value: 0.75: spec.x in body should be a multiple of 0.5")),
    ("multipleOf float ok", {"type": "number", "multipleOf": 0.1}, 0.3, None),
    ("int32 is not range-checked", {"type": "integer", "format": "int32"}, 2**40, None),
    ("int32 with a fraction", {"type": "integer", "format": "int32"}, 1.5,
     ("spec.x", TYPE, 'Invalid value: "float64": spec.x in body must be of type int32: "float64"')),
    ("double takes int", {"type": "number", "format": "double"}, 3, None),
    # arrays
    ("items path", {"type": "array", "items": {"type": "string"}}, ["a", 2],
     ("spec.x[1]", TYPE, 'Invalid value: "integer": spec.x[1] in body must be of type string: "integer"')),
    ("minItems", {"type": "array", "items": {"type": "string"}, "minItems": 2}, ["a"],
     ("spec.x", INVALID, "Invalid value: 1: spec.x in body should have at least 2 items")),
    ("maxItems", {"type": "array", "items": {"type": "string"}, "maxItems": 2}, ["a", "b", "c"],
     ("spec.x", "FieldValueTooMany", "Too many: 3: must have at most 2 items")),
    ("maxItems 1", {"type": "array", "items": {"type": "string"}, "maxItems": 1}, ["a", "b"],
     ("spec.x", "FieldValueTooMany", "Too many: 2: must have at most 1 item")),
    ("uniqueItems", {"type": "array", "items": {"type": "integer"}, "uniqueItems": True}, [1, 2, 1],
     ("spec.x", INVALID, "Invalid value: \"\": spec.x in body shouldn't contain duplicates")),
    ("uniqueItems tells 1 from 1.0", {"type": "array", "items": {"type": "number"}, "uniqueItems": True},
     [1, 1.0], None),
    # objects
    ("minProperties", {"type": "object", "additionalProperties": {"type": "string"}, "minProperties": 2},
     {"a": "1"}, ("spec.x", INVALID, "Invalid value: 1: spec.x in body should have at least 2 properties")),
    ("maxProperties", {"type": "object", "additionalProperties": {"type": "string"}, "maxProperties": 1},
     {"a": "1", "b": "2"}, ("spec.x", "FieldValueTooMany", "Too many: 2: must have at most 1 item")),
    ("additionalProperties path", {"type": "object", "additionalProperties": {"type": "string"}}, {"k": 1},
     ("spec.x.k", TYPE, 'Invalid value: "integer": spec.x.k in body must be of type string: "integer"')),
    ("additionalProperties false", {"type": "object", "properties": {"a": {"type": "string"}},
                                    "additionalProperties": False}, {"a": "x", "b": 1},
     ("spec.x", INVALID, 'Invalid value: "b": spec.x.b in body is a forbidden property')),
    ("additionalProperties true", {"type": "object", "additionalProperties": True}, {"a": 1}, None),
    ("required", {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}, {},
     ("spec.x.a", "FieldValueRequired", "Required value")),
    ("required present as null still present", {"type": "object", "properties": {
        "a": {"type": "string", "nullable": True}}, "required": ["a"]}, {"a": None}, None),
    # formats
    ("date-time ok", {"type": "string", "format": "date-time"}, "2024-05-01T10:20:30Z", None),
    ("date-time offset ok", {"type": "string", "format": "date-time"}, "2024-05-01T10:20:30.5+02:00", None),
    ("date-time", {"type": "string", "format": "date-time"}, "yesterday",
     ("spec.x", TYPE, 'Invalid value: "yesterday": spec.x in body must be of type date-time: "yesterday"')),
    ("date-time needs a zone", {"type": "string", "format": "date-time"}, "2024-05-01T10:20:30",
     ("spec.x", TYPE, 'Invalid value: "2024-05-01T10:20:30": spec.x in body must be of type date-time: '
                      '"2024-05-01T10:20:30"')),
    ("date", {"type": "string", "format": "date"}, "2024-02-30",
     ("spec.x", TYPE, 'Invalid value: "2024-02-30": spec.x in body must be of type date: "2024-02-30"')),
    ("date leap day", {"type": "string", "format": "date"}, "2024-02-29", None),
    ("duration Go", {"type": "string", "format": "duration"}, "1h30m", None),
    ("duration scala", {"type": "string", "format": "duration"}, "3 days", None),
    ("duration bad", {"type": "string", "format": "duration"}, "soon",
     ("spec.x", TYPE, 'Invalid value: "soon": spec.x in body must be of type duration: "soon"')),
    ("uuid", {"type": "string", "format": "uuid"}, "123e4567-E89B-12d3-a456-426614174000", None),
    ("uuid bad", {"type": "string", "format": "uuid"}, "123",
     ("spec.x", TYPE, 'Invalid value: "123": spec.x in body must be of type uuid: "123"')),
    ("ipv4", {"type": "string", "format": "ipv4"}, "10.0.0.1", None),
    ("ipv4 leading zero", {"type": "string", "format": "ipv4"}, "10.0.0.01",
     ("spec.x", TYPE, 'Invalid value: "10.0.0.01": spec.x in body must be of type ipv4: "10.0.0.01"')),
    ("ipv4 refuses ipv6", {"type": "string", "format": "ipv4"}, "::1",
     ("spec.x", TYPE, 'Invalid value: "::1": spec.x in body must be of type ipv4: "::1"')),
    ("ipv6", {"type": "string", "format": "ipv6"}, "fe80::1", None),
    ("cidr", {"type": "string", "format": "cidr"}, "10.0.0.1/8", None),
    ("cidr needs a prefix", {"type": "string", "format": "cidr"}, "10.0.0.1",
     ("spec.x", TYPE, 'Invalid value: "10.0.0.1": spec.x in body must be of type cidr: "10.0.0.1"')),
    ("hostname", {"type": "string", "format": "hostname"}, "api.example.com", None),
    ("hostname bad", {"type": "string", "format": "hostname"}, "-bad.example.com",
     ("spec.x", TYPE, 'Invalid value: "-bad.example.com": spec.x in body must be of type hostname: '
                      '"-bad.example.com"')),
    ("email", {"type": "string", "format": "email"}, "Ann <ann@example.com>", None),
    ("email bad", {"type": "string", "format": "email"}, "ann.example.com",
     ("spec.x", TYPE, 'Invalid value: "ann.example.com": spec.x in body must be of type email: '
                      '"ann.example.com"')),
    ("byte", {"type": "string", "format": "byte"}, "aGVsbG8=", None),
    ("byte bad", {"type": "string", "format": "byte"}, "hello!",
     ("spec.x", TYPE, 'Invalid value: "hello!": spec.x in body must be of type byte: "hello!"')),
    ("quantity", {"type": "string", "format": "quantity"}, "1.5Gi", None),
    ("mac", {"type": "string", "format": "mac"}, "00:00:5e:00:53:01", None),
    ("uri", {"type": "string", "format": "uri"}, "https://example.com/x", None),
    ("uri relative", {"type": "string", "format": "uri"}, "example.com",
     ("spec.x", TYPE, 'Invalid value: "example.com": spec.x in body must be of type uri: "example.com"')),
    ("unknown format passes", {"type": "string", "format": "color-of-the-sky"}, "anything", None),
    ("format on a non-string names the format and Go's type (kube quirk)", {"type": "string", "format": "date"}, 5,
     ("spec.x", TYPE, 'Invalid value: "int64": spec.x in body must be of type date: "int64"')),
    ("format on an array passes the type check (kube quirk)", {"type": "string", "format": "date"}, [1], None),
]


@pytest.mark.parametrize(("schema", "value", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_keyword(schema: dict[str, Any], value: Any, expected: tuple[str, str, str] | None) -> None:
    found = errs({"x": value}, x=schema)
    assert found == ([expected] if expected else [])


def test_table_is_large() -> None:
    assert len(CASES) >= 60


# -- several errors, order, paths ----------------------------------------------------------------

def test_every_error_is_returned_in_a_stable_order() -> None:
    props = {"b": {"type": "integer", "maximum": 1}, "a": {"type": "string", "enum": ["x"]},
             "c": {"type": "array", "items": {"type": "object", "properties": {"n": {"type": "string"}},
                                               "required": ["n"]}}}
    spec = {"c": [{}, {"n": 1}], "b": 5, "a": "y"}
    first = errs(spec, **props)
    assert [f for f, _, _ in first] == ["spec.a", "spec.b", "spec.c[0].n", "spec.c[1].n"]
    assert errs(dict(reversed(spec.items())), **props) == first


def test_type_mismatch_still_runs_enum() -> None:
    """kube-openapi runs every validator that applies to the value: type and enum both report."""
    found = errs({"size": 5}, size={"type": "string", "enum": ["small"]})
    assert [r for _, r, _ in found] == [TYPE, "FieldValueNotSupported"]
    assert found[1][2] == 'Unsupported value: 5: supported values: "small"'


def test_required_comes_after_property_errors() -> None:
    found = errs({"a": 1}, a={"type": "string"})
    assert found == [("spec.a", TYPE, 'Invalid value: "integer": spec.a in body must be of type string: "integer"')]
    schema = spec_schema(a={"type": "string"})
    schema["properties"]["spec"]["required"] = ["b"]
    fields = [c.field for c in validate({"spec": {"a": 1}}, schema)]
    assert fields == ["spec.a", "spec.b"]


def test_root_apiversion_kind_metadata_get_type_checks_only() -> None:
    schema = spec_schema()
    schema["properties"]["metadata"] = {"type": "object", "maxProperties": 0,
                                        "properties": {"name": {"type": "string", "maxLength": 3},
                                                       "labels": {"type": "string"}}}
    schema["properties"]["kind"] = {"type": "string", "enum": ["Other"]}
    obj = {"kind": "Foo", "metadata": {"name": "long-name", "labels": {"a": "b"}}}
    assert [(c.field, c.message) for c in validate(obj, schema)] == [
        ("metadata.name", "Too long: may not be more than 3 bytes")]
    found = validate({"kind": 1, "metadata": []}, schema)
    assert [c.field for c in found] == ["kind", "metadata"]


def test_no_schema_or_non_object_validates_nothing() -> None:
    assert validate({"spec": 1}, None) == []
    assert validate({"spec": 1}, {}) == []


def test_preserve_unknown_fields_leaves_undeclared_fields_alone() -> None:
    assert errs({"x": {"deep": [1, {"a": None}]}}, x={"type": "object",
                                                      "x-kubernetes-preserve-unknown-fields": True}) == []


# -- allOf / anyOf / oneOf / not -------------------------------------------------------------------

def test_any_of_reports_at_nil_with_the_closest_alternative() -> None:
    schema = {"type": "string", "anyOf": [{"maxLength": 1}, {"pattern": "^a"}]}
    assert errs({"x": "bcd"}, x=schema) == [
        ("<nil>", INVALID, 'Invalid value: "": "spec.x" must validate at least one schema (anyOf)'),
        ("spec.x", "FieldValueTooLong", "Too long: may not be more than 1 byte"),
    ]
    assert errs({"x": "abc"}, x=schema) == []


def test_one_of() -> None:
    schema = {"type": "integer", "oneOf": [{"minimum": 0}, {"maximum": 10}]}
    assert errs({"x": 20}, x=schema) == []
    assert errs({"x": 5}, x=schema) == [
        ("<nil>", INVALID, 'Invalid value: "": "spec.x" must validate one and only one schema (oneOf). '
                           "Found 2 valid alternatives")]
    none = errs({"x": 5}, x={"type": "integer", "oneOf": [{"minimum": 6}, {"maximum": 4}]})
    assert none[0][2].endswith("(oneOf). Found none valid") and len(none) == 2


def test_all_of_and_not() -> None:
    schema = {"type": "integer", "allOf": [{"minimum": 0}, {"maximum": 10}]}
    assert errs({"x": 11}, x=schema) == [
        ("spec.x", INVALID, "Invalid value: 11: spec.x in body should be less than or equal to 10"),
        ("<nil>", INVALID, 'Invalid value: "": "spec.x" must validate all the schemas (allOf)'),
    ]
    assert errs({"x": 5}, x={"type": "integer", "not": {"minimum": 0}}) == [
        ("<nil>", INVALID, 'Invalid value: "": "spec.x" must not validate the schema (not)')]


# -- embedded resources -----------------------------------------------------------------------------

EMBEDDED = {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True}


def test_embedded_resource_needs_apiversion_and_kind() -> None:
    assert errs({"t": {"metadata": {"name": "x"}}}, t=EMBEDDED) == [
        ("spec.t.apiVersion", "FieldValueRequired", "Required value"),
        ("spec.t.kind", "FieldValueRequired", "Required value"),
    ]
    assert errs({"t": {"apiVersion": "v1", "kind": "Pod"}}, t=EMBEDDED) == []


def test_embedded_resource_checks_values_and_metadata_loosely() -> None:
    found = errs({"t": {"apiVersion": "a/b/c", "kind": "Bad_Kind",
                        "metadata": {"name": "a/b", "labels": {"ok": "bad value!"}}}}, t=EMBEDDED)
    assert [(f, m.split(":")[0]) for f, _, m in found] == [
        ("spec.t.apiVersion", "Invalid value"), ("spec.t.kind", "Invalid value"),
        ("spec.t.metadata.name", "Invalid value"), ("spec.t.metadata.labels", "Invalid value")]
    assert found[0][2] == 'Invalid value: "a/b/c": unexpected GroupVersion string: a/b/c'
    assert found[1][2].startswith('Invalid value: "Bad_Kind": may have mixed case, but should otherwise match: '
                                  "a DNS-1035 label must consist of")
    assert found[2][2] == "Invalid value: \"a/b\": may not contain '/'"


def test_embedded_resource_in_a_list_uses_index_paths() -> None:
    found = errs({"ts": [{"apiVersion": "v1", "kind": "Pod"}, {"kind": "Pod"}]},
                 ts={"type": "array", "items": EMBEDDED})
    assert found == [("spec.ts[1].apiVersion", "FieldValueRequired", "Required value")]


# -- x-kubernetes-list-type -------------------------------------------------------------------------

def set_of(item_type: str) -> dict[str, Any]:
    return {"type": "array", "items": {"type": item_type}, "x-kubernetes-list-type": "set"}


def test_list_type_set_reports_each_duplicate_once() -> None:
    assert errs({"s": ["a", "b", "a", "a", "b"]}, s=set_of("string")) == [
        ("spec.s[2]", "FieldValueDuplicate", 'Duplicate value: "a"'),
        ("spec.s[4]", "FieldValueDuplicate", 'Duplicate value: "b"'),
    ]
    assert errs({"s": [1, 1.0, True]}, s={"type": "array", "x-kubernetes-list-type": "set",
                                          "items": {"x-kubernetes-preserve-unknown-fields": True}}) == []


def test_list_type_set_of_objects_compares_json() -> None:
    schema = {"type": "array", "x-kubernetes-list-type": "set",
              "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}
    assert errs({"s": [{"a": 1, "b": 2}, {"b": 2, "a": 1}]}, s=schema) == [
        ("spec.s[1]", "FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"a":1, "b":2}')]


def list_map(keys: list[str], required: list[str]) -> dict[str, Any]:
    return {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": keys,
            "items": {"type": "object", "required": required, "properties": {
                "name": {"type": "string"}, "port": {"type": "integer"}, "note": {"type": "string"}}}}


def test_list_type_map_one_key() -> None:
    found = errs({"m": [{"name": "a"}, {"name": "b"}, {"name": "a", "note": "x"}]}, m=list_map(["name"], ["name"]))
    assert found == [("spec.m[2]", "FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"name":"a"}')]


def test_list_type_map_several_keys() -> None:
    schema = list_map(["name", "port"], ["name", "port"])
    value = [{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"port": 1, "name": "a"}]
    assert errs({"m": value}, m=schema) == [
        ("spec.m[2]", "FieldValueDuplicate", 'Duplicate value: map[string]interface {}{"name":"a", "port":1}')]


def test_list_type_map_missing_key_not_required_by_schema_is_required_here() -> None:
    found = errs({"m": [{"note": "x"}, {"note": "y"}]}, m=list_map(["name"], []))
    assert found == [("spec.m[0].name", "FieldValueRequired", "Required value"),
                     ("spec.m[1].name", "FieldValueRequired", "Required value"),
                     ("spec.m[1]", "FieldValueDuplicate", "Duplicate value: map[string]interface {}{}")]


def test_list_type_map_needs_objects() -> None:
    schema = list_map(["name"], ["name"])
    schema["items"] = {"x-kubernetes-preserve-unknown-fields": True}
    assert errs({"m": [{"name": "a"}, 5]}, m=schema) == [
        ("spec.m[1]", INVALID, "Invalid value: 5: must be an object for an array of list-type map")]


def test_list_type_atomic_allows_duplicates() -> None:
    assert errs({"s": ["a", "a"]}, s={"type": "array", "items": {"type": "string"},
                                      "x-kubernetes-list-type": "atomic"}) == []


def test_list_type_inside_a_map_uses_key_paths() -> None:
    schema = {"type": "object", "additionalProperties": set_of("string")}
    assert errs({"m": {"k": ["a", "a"]}}, m=schema) == [
        ("spec.m[k][1]", "FieldValueDuplicate", 'Duplicate value: "a"')]


def test_list_type_errors_come_after_schema_errors() -> None:
    found = errs({"m": [{"name": "a", "port": "x"}, {"name": "a"}]}, m=list_map(["name"], ["name"]))
    assert [r for _, r, _ in found] == [TYPE, "FieldValueDuplicate"]


# -- null pruning --------------------------------------------------------------------------------------

def test_prune_non_nullable_nulls() -> None:
    schema = spec_schema(a={"type": "string"}, b={"type": "string", "nullable": True},
                         c={"type": "string", "default": "x"},
                         l={"type": "array", "items": {"type": "string"}},
                         m={"type": "object", "additionalProperties": {"type": "string"}},
                         p={"type": "object", "x-kubernetes-preserve-unknown-fields": True})
    obj = {"spec": {"a": None, "b": None, "c": None, "l": [None], "m": {"k": None}, "p": {"u": None}}}
    prune_non_nullable_nulls(obj, schema)
    assert obj == {"spec": {"b": None, "c": None, "l": [None], "m": {}, "p": {"u": None}}}
    assert [c.field for c in validate(obj, schema)] == ["spec.c", "spec.l[0]"]


# -- is_structural ----------------------------------------------------------------------------------------

def test_shipped_schemas_are_structural() -> None:
    for definition in DEFS.values():
        for version in definition.versions:
            assert is_structural(version.schema) == [], definition.plural
            assert schema_causes(version.schema) == [], definition.plural


def test_not_structural_reasons() -> None:
    schema = {"type": "object", "properties": {
        "spec": {"properties": {"list": {"type": "array"}}},
        "status": {"type": "object", "anyOf": [{"type": "string", "properties": {"extra": {}}}]},
        "metadata": {"type": "object", "properties": {"labels": {"type": "object"}}},
    }, "additionalProperties": {"type": "string"}}
    path = "spec.versions[0].schema.openAPIV3Schema"
    assert is_structural(schema, path) == sorted([
        f"{path}.additionalProperties: Forbidden: must not be used at the root",
        f"{path}.properties[spec].type: Required value: must not be empty for specified object fields",
        f"{path}.properties[spec].properties[list].items: Required value: must be specified",
        f"{path}.properties[status].anyOf[0].type: Forbidden: must be empty to be structural",
        f"{path}.properties[metadata]: Forbidden: must not specify anything other than name and generateName, "
        "but metadata is implicitly specified",
    ])


def test_structural_exceptions_and_completeness() -> None:
    int_or_string = {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]}
    assert is_structural({"type": "object", "properties": {"port": int_or_string}}) == []
    assert is_structural({"type": "object", "properties": {"a": {"type": "string"}},
                          "anyOf": [{"properties": {"b": {"maxLength": 1}}}]}) == [
        "properties[b]: Required value: because it is defined in anyOf[0].properties[b]"]
    assert is_structural({"type": "string"}) == ['type: Invalid value: "string": must be object at the root']
    assert is_structural({"type": "object", "properties": {"e": {"x-kubernetes-embedded-resource": True}}}) == [
        "properties[e].properties: Required value: must not be empty if x-kubernetes-embedded-resource is true "
        "without x-kubernetes-preserve-unknown-fields",
        "properties[e].type: Required value: must be object if x-kubernetes-embedded-resource is true",
    ]


def test_structural_causes_carry_the_full_path_and_kube_reason() -> None:
    path = "spec.validation.openAPIV3Schema"
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {"a": {}}}}}
    assert structural_causes(schema, path) == [Cause(
        "FieldValueRequired", "Required value: must not be empty for specified object fields",
        f"{path}.properties[spec].properties[a].type")]
    assert structural_causes({"type": "string"}) == [
        Cause("FieldValueInvalid", 'Invalid value: "string": must be object at the root', "type")]


ARR = {"type": "array", "items": {"type": "string"}}


@pytest.mark.parametrize(("x", "field", "reason", "message"), [
    ({**ARR, "uniqueItems": True}, "uniqueItems", "FieldValueForbidden",
     "Forbidden: uniqueItems cannot be set to true since the runtime complexity becomes quadratic"),
    ({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False},
     "additionalProperties", "FieldValueForbidden",
     "Forbidden: additionalProperties and properties are mutual exclusive"),
    ({"type": "array", "x-kubernetes-list-type": "map", "items": {"type": "object", "properties": {
        "n": {"type": "string"}}}}, "x-kubernetes-list-map-keys", "FieldValueRequired",
     "Required value: must not be empty if x-kubernetes-list-type is map"),
    ({**ARR, "x-kubernetes-list-type": "bag"}, "x-kubernetes-list-type", "FieldValueNotSupported",
     'Unsupported value: "bag": supported values: "atomic", "set", "map"'),
    ({"type": "object", "x-kubernetes-preserve-unknown-fields": False}, "x-kubernetes-preserve-unknown-fields",
     "FieldValueInvalid", "Invalid value: false: must be true or undefined"),
    ({"type": "string", "x-kubernetes-list-type": "set"}, "type", "FieldValueInvalid",
     'Invalid value: "string": must be array if x-kubernetes-list-type is specified'),
])
def test_schema_causes_openapi_checks(x: dict, field: str, reason: str, message: str) -> None:
    schema = {"type": "object", "properties": {"x": x}}
    assert schema_causes(schema, "root") == [Cause(reason, message, f"root.properties[x].{field}")]


def test_additional_properties_true_beside_properties_is_allowed() -> None:
    schema = {"type": "object", "properties": {"x": {"type": "object", "properties": {"a": {"type": "string"}},
                                                     "additionalProperties": True}}}
    assert schema_causes(schema) == []


def test_crd_error_keeps_causes_and_a_readable_text() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
           "metadata": {"name": "wrong.example.com"},
           "spec": {"group": "example.com", "names": {"plural": "things", "kind": "Thing"}, "scope": "Nowhere",
                    "versions": [{"name": "v1", "served": True, "storage": True}]}}
    with pytest.raises(CRDError) as info:
        definition_from_crd(crd)
    assert info.value.causes == [
        Cause("FieldValueNotSupported", 'Unsupported value: "Nowhere": supported values: "Cluster", "Namespaced"',
              "spec.scope"),
        Cause("FieldValueInvalid", 'Invalid value: "wrong.example.com": must be spec.names.plural+"."+spec.group',
              "metadata.name"),
    ]
    assert str(info.value) == ('spec.scope: Unsupported value: "Nowhere": supported values: "Cluster", "Namespaced"; '
                               'metadata.name: Invalid value: "wrong.example.com": must be '
                               'spec.names.plural+"."+spec.group')
    assert CRDError("plain").causes == [Cause("FieldValueInvalid", "plain", "")]


# -- value rendering -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "shown"), [
    (1e6, "1e+06"), (123456.0, "123456"), (0.5, "0.5"), (3.0, "3"), (1e-5, "1e-05"), (-2.5, "-2.5"),
    (1.5e21, "1.5e+21"),
])
def test_go_float(value: float, shown: str) -> None:
    assert go_float(value) == shown


def test_render_value() -> None:
    assert render_value("a\"b\n") == '"a\\"b\\n"'
    assert render_value(None) == '"null"'  # kube 1.32's field.Error rendering
    assert render_value({"b": 1.0, "a": "<", "c": [None]}) == 'map[string]interface {}{"a":"<", "b":1, "c":[]interface {}{interface {}(nil)}}'
    assert render_value(True) == "true"


# -- through Store.create ---------------------------------------------------------------------------------

def make_store(plural: str) -> Store:
    return Store(strategy_for(DEFS[plural]), MemoryStorage(), None)


def pizza(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "restaurant.wukong.com/v1alpha1", "kind": "Pizza", "metadata": {"name": name},
            "spec": spec}


async def create_error(plural: str, obj: dict[str, Any], version: str) -> errors.Invalid:
    store = make_store(plural)
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", obj, version, WriteOptions())
    assert exc.value.code == 422
    return exc.value


async def test_store_rejects_foo_msg_of_wrong_type() -> None:
    err = await create_error("foos", {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                                      "metadata": {"name": "a"}, "spec": {"msg": 5}}, "v1")
    assert err.causes == [Cause(TYPE, 'Invalid value: "integer": spec.msg in body must be of type string: '
                                      '"integer"', "spec.msg")]
    assert err.message == ('Foo.hello.zeng.dev "a" is invalid: spec.msg: Invalid value: "integer": '
                           'spec.msg in body must be of type string: "integer"')


async def test_store_rejects_pizza_size_outside_enum() -> None:
    err = await create_error("pizzas", pizza("p", size="huge"), "v1alpha1")
    assert [(c.field, c.message) for c in err.causes] == [
        ("spec.size", 'Unsupported value: "huge": supported values: "small", "medium", "large"')]


async def test_store_rejects_topping_without_name() -> None:
    err = await create_error("pizzas", pizza("p", toppings=[{"quantity": 1}]), "v1alpha1")
    assert [(c.field, c.reason, c.message) for c in err.causes] == [
        ("spec.toppings[0].name", "FieldValueRequired", "Required value")]


async def test_store_rejects_duplicate_toppings() -> None:
    err = await create_error("pizzas", pizza("p", toppings=[{"name": "cheese"}, {"name": "cheese", "quantity": 2}]),
                             "v1alpha1")
    assert [(c.field, c.message) for c in err.causes] == [("spec.toppings[1]", 'Duplicate value: map[string]interface {}{"name":"cheese"}')]


async def test_store_lists_metadata_and_schema_errors_in_one_422() -> None:
    obj = pizza("Bad_Name", size="huge", toppings=[{"quantity": "lots"}])
    err = await create_error("pizzas", obj, "v1alpha1")
    assert [c.field for c in err.causes] == ["metadata.name", "spec.size", "spec.toppings[0].quantity",
                                             "spec.toppings[0].name"]
    assert err.message.startswith('Pizza.restaurant.wukong.com "Bad_Name" is invalid: [metadata.name: ')


async def test_store_accepts_valid_objects_and_drops_non_nullable_nulls() -> None:
    store = make_store("pizzas")
    created = await store.create("default", pizza("ok", size="small", toppings=[{"name": "ham", "quantity": 2}]),
                                 "v1alpha1", WriteOptions())
    assert created["spec"]["size"] == "small"
    foo_store = make_store("foos")
    foo = await foo_store.create("default", {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
                                             "metadata": {"name": "n"}, "spec": {"msg": None, "msg1": "x"}},
                                 "v1", WriteOptions())
    assert foo["spec"] == {"msg1": "x"}


async def test_store_validates_updates_too() -> None:
    store = make_store("pizzas")
    created = await store.create("default", pizza("u", size="small"), "v1alpha1", WriteOptions())
    bad = copy.deepcopy(created)
    bad["spec"]["size"] = "huge"
    with pytest.raises(errors.Invalid) as exc:
        await store.update("default", "u", bad, "v1alpha1", "", WriteOptions())
    assert [c.field for c in exc.value.causes] == ["spec.size"]
    assert (await store.get("default", "u", "v1alpha1"))["spec"]["size"] == "small"
