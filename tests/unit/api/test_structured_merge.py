"""The structured-merge algebra: each case names the structured-merge-diff behaviour it mirrors."""
from __future__ import annotations

from typing import Any

import pytest

from kapi.api.fieldpath import field, key_element, to_fields_v1, value_element
from kapi.api.structured_merge import compare, merge, remove_items, to_field_set, with_named_fields
from kapi.api.structured_schema import ABSENT, StructureError, zero_value

PORTS: dict[str, Any] = {
    "type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["port", "protocol"],
    "items": {"type": "object", "properties": {"port": {"type": "integer"},
                                               "protocol": {"type": "string", "default": "TCP"},
                                               "name": {"type": "string"}}}}
SCHEMA: dict[str, Any] = {"type": "object", "properties": {
    "spec": {"type": "object", "properties": {
        "replicas": {"type": "integer"},
        "tags": {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        "args": {"type": "array", "items": {"type": "string"}},
        "ports": PORTS,
        "selector": {"type": "object", "x-kubernetes-map-type": "atomic", "additionalProperties": {"type": "string"}},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        "merged": {"type": "array", "x-kubernetes-patch-strategy": "merge", "x-kubernetes-patch-merge-key": "name",
                   "items": {"type": "object", "properties": {"name": {"type": "string"}, "v": {"type": "string"}}}},
    }},
}}


def fields_of(value: Any) -> dict[str, Any]:
    return to_fields_v1(to_field_set(value, SCHEMA))


def test_an_applier_owns_leaves_list_items_and_map_keys_but_not_struct_fields() -> None:
    """typed/tofieldset: struct fields of non-empty maps are not members; granular map keys and list items are."""
    config = {"spec": {"replicas": 1, "labels": {"a": "1"}, "tags": ["x"], "ports": [{"port": 80}],
                       "selector": {"app": "web"}, "args": ["--v"]}}
    assert fields_of(config) == {"f:spec": {
        "f:args": {}, "f:labels": {"f:a": {}}, "f:ports": {'k:{"port":80,"protocol":"TCP"}': {".": {}, "f:port": {}}},
        "f:replicas": {}, "f:selector": {}, "f:tags": {'v:"x"': {}}}}


def test_empty_maps_and_nulls_are_leaves_and_empty_lists_own_nothing() -> None:
    assert fields_of({"spec": {"labels": {}, "free": None, "tags": []}}) == {"f:spec": {"f:free": {}, "f:labels": {}}}


def test_deduced_children_are_granular_maps_and_atomic_lists() -> None:
    """x-kubernetes-preserve-unknown-fields: schemaconv's deduced type."""
    assert fields_of({"spec": {"free": {"a": {"b": 1}, "l": [1, 2]}}}) == {"f:spec": {"f:free": {
        "f:a": {".": {}, "f:b": {}}, "f:l": {}}}}


def test_patch_merge_key_without_a_list_type_makes_an_associative_list() -> None:
    assert fields_of({"spec": {"merged": [{"name": "a", "v": "1"}]}}) == {"f:spec": {"f:merged": {
        'k:{"name":"a"}': {".": {}, "f:name": {}, "f:v": {}}}}}


@pytest.mark.parametrize("config, message", [
    ({"spec": {"nope": 1}}, ".spec.nope: field not declared in schema"),
    ({"spec": {"tags": ["a", "a"]}}, '.spec.tags: duplicate entries for key [="a"]'),
    ({"spec": {"merged": [{"v": "x"}]}}, "associative list with keys has an element that omits all key fields"),
])
def test_a_strict_read_refuses_what_kube_cannot_type(config: Any, message: str) -> None:
    with pytest.raises(StructureError, match=message.replace("[", r"\[").replace(".", r"\.")):
        to_field_set(config, SCHEMA, strict=True)


def test_compare_reports_added_modified_and_removed_paths() -> None:
    old = {"spec": {"replicas": 1, "labels": {"a": "1", "b": "2"}, "tags": ["x"]}}
    new = {"spec": {"replicas": 2, "labels": {"a": "1", "c": "3"}, "tags": ["x", "y"], "args": ["z"]}}
    diff = compare(old, new, SCHEMA)
    spec = field("spec")
    assert diff.modified == {(spec, field("replicas"))}
    assert diff.added == {(spec, field("labels"), field("c")), (spec, field("tags"), value_element("y")),
                          (spec, field("args"))}
    assert diff.removed == {(spec, field("labels"), field("b"))}


def test_a_new_map_is_added_itself_but_a_map_that_was_null_is_not() -> None:
    """compareWalker: the post-item hook marks containers whose lhs is absent; null counts as present."""
    spec = field("spec")
    assert compare({}, {"spec": {"labels": {"a": "1"}}}, SCHEMA).added == {
        (spec,), (spec, field("labels")), (spec, field("labels"), field("a"))}
    assert compare({"spec": {"labels": None}}, {"spec": {"labels": {"a": "1"}}}, SCHEMA).added == {
        (spec, field("labels"), field("a"))}


def test_merge_keeps_live_items_and_lets_the_configuration_win_leaves() -> None:
    live = {"spec": {"replicas": 1, "ports": [{"port": 80, "name": "http"}, {"port": 443}],
                     "selector": {"a": "1", "b": "2"}, "args": ["x", "y"]}}
    config = {"spec": {"replicas": 3, "ports": [{"port": 8080}, {"port": 80, "name": "web"}],
                       "selector": {"c": "3"}, "args": ["z"]}}
    assert merge(live, config, SCHEMA) == {"spec": {
        "replicas": 3, "ports": [{"port": 8080}, {"port": 80, "name": "web"}, {"port": 443}],
        "selector": {"c": "3"}, "args": ["z"]}}


def test_merge_into_nothing_is_the_configuration() -> None:
    assert merge(ABSENT, {"a": 1}, SCHEMA) == {"a": 1}
    assert merge({"spec": {"tags": ["a"]}}, {"spec": {"tags": ["b", "a"]}}, SCHEMA) == {"spec": {"tags": ["b", "a"]}}


def test_removal_drops_items_and_leaves_null_for_an_emptied_container() -> None:
    """typed/remove: an emptied list or map becomes null, which pruning of nulls then drops."""
    spec = field("spec")
    value = {"spec": {"tags": ["a", "b"], "ports": [{"port": 80}], "replicas": 1}}
    removed = remove_items(value, {(spec, field("tags"), value_element("a")),
                                   (spec, field("ports"), key_element({"port": 80, "protocol": "TCP"}))}, SCHEMA)
    assert removed == {"spec": {"tags": ["b"], "ports": None, "replicas": 1}}
    assert remove_items(value, {(spec,)}, SCHEMA) is None


def test_named_fields_on_the_way_become_members() -> None:
    spec = field("spec")
    paths = {(spec, field("labels"), field("a"))}
    assert with_named_fields(paths, SCHEMA) == paths | {(spec,), (spec, field("labels"))}


def test_the_zero_value_holds_nested_structs_and_required_fields() -> None:
    schema = {"type": "object", "required": ["name", "items"], "properties": {
        "name": {"type": "string"}, "items": {"type": "array"}, "opt": {"type": "string"},
        "spec": {"type": "object", "default": {}, "properties": {"x": {"type": "integer"}}}}}
    assert zero_value(schema) == {"name": "", "items": None, "spec": {}}
