"""Structural defaulting of custom resources, as k8s.io/apiextensions-apiserver `schema/defaulting` does it.

Order as kube's decoder: prune, drop non-nullable nulls without a default, default, validate.
Defaults apply on create and update, and on every read from storage.
"""
from __future__ import annotations

import copy
from typing import Any

import pytest

from kapi.api import errors
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.defaulting import apply_defaults, has_defaults
from kapi.scheme.definitions import ResourceDef, VersionDef
from kapi.scheme.validation import prune_non_nullable_nulls
from kapi.storage.memory import MemoryStorage


def spec_schema(**props: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {
        "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
        "spec": {"type": "object", "properties": props},
    }}


def defaulted(spec: Any, **props: Any) -> Any:
    """`{"spec": spec}` after kube's decode steps (null pruning, then defaulting)."""
    obj = {"spec": copy.deepcopy(spec)}
    schema = spec_schema(**props)
    prune_non_nullable_nulls(obj, schema)
    apply_defaults(obj, schema)
    return obj["spec"]


# -- the algorithm --------------------------------------------------------------------------------

def test_absent_field_gets_its_default() -> None:
    assert defaulted({}, replicas={"type": "integer", "default": 1}) == {"replicas": 1}


@pytest.mark.parametrize("value", [0, "", False, [], {}, 7])
def test_a_present_value_is_never_overwritten(value: Any) -> None:
    assert defaulted({"v": value}, v={"default": 1, "x-kubernetes-preserve-unknown-fields": True}) == {"v": value}


def test_default_null_is_no_default() -> None:
    assert defaulted({}, v={"type": "string", "nullable": True, "default": None}) == {}


def test_nested_defaults_apply_inside_a_defaulted_object() -> None:
    props = {"tls": {"type": "object", "default": {}, "properties": {
        "port": {"type": "integer", "default": 443},
        "mode": {"type": "string", "default": "strict"},
    }}}
    assert defaulted({}, **props) == {"tls": {"port": 443, "mode": "strict"}}
    assert defaulted({"tls": {"port": 8443}}, **props) == {"tls": {"port": 8443, "mode": "strict"}}


def test_a_defaulted_object_keeps_its_own_values_over_nested_defaults() -> None:
    props = {"tls": {"type": "object", "default": {"port": 1}, "properties": {
        "port": {"type": "integer", "default": 443}}}}
    assert defaulted({}, **props) == {"tls": {"port": 1}}


def test_no_default_object_no_nested_defaults() -> None:
    props = {"tls": {"type": "object", "properties": {"port": {"type": "integer", "default": 443}}}}
    assert defaulted({}, **props) == {}


def test_array_items_are_defaulted_each() -> None:
    props = {"ports": {"type": "array", "items": {"type": "object", "properties": {
        "name": {"type": "string"}, "protocol": {"type": "string", "default": "TCP"}}}}}
    assert defaulted({"ports": [{"name": "a"}, {"name": "b", "protocol": "UDP"}]}, **props) == {
        "ports": [{"name": "a", "protocol": "TCP"}, {"name": "b", "protocol": "UDP"}]}


def test_null_array_item_gets_the_items_default() -> None:
    props = {"xs": {"type": "array", "items": {"type": "string", "default": "x"}}}
    assert defaulted({"xs": ["a", None]}, **props) == {"xs": ["a", "x"]}


def test_nullable_null_array_item_stays() -> None:
    props = {"xs": {"type": "array", "items": {"type": "string", "nullable": True, "default": "x"}}}
    assert defaulted({"xs": [None]}, **props) == {"xs": [None]}


def test_map_values_are_defaulted() -> None:
    props = {"limits": {"type": "object", "additionalProperties": {"type": "object", "properties": {
        "max": {"type": "integer", "default": 10}}}}}
    assert defaulted({"limits": {"cpu": {}, "mem": {"max": 3}}}, **props) == {
        "limits": {"cpu": {"max": 10}, "mem": {"max": 3}}}


def test_null_map_value_gets_the_default() -> None:
    props = {"labels": {"type": "object", "additionalProperties": {"type": "string", "default": "on"}}}
    assert defaulted({"labels": {"a": None, "b": "off"}}, **props) == {"labels": {"a": "on", "b": "off"}}


def test_null_on_non_nullable_field_with_default_is_defaulted() -> None:
    assert defaulted({"mode": None}, mode={"type": "string", "default": "auto"}) == {"mode": "auto"}


def test_null_on_nullable_field_stays_null() -> None:
    assert defaulted({"mode": None}, mode={"type": "string", "nullable": True, "default": "auto"}) == {"mode": None}


def test_null_without_default_is_pruned_not_defaulted() -> None:
    assert defaulted({"mode": None}, mode={"type": "string"}, other={"type": "string", "default": "x"}) == {
        "other": "x"}


def test_defaults_inside_preserved_unknown_values_follow_declared_properties_only() -> None:
    props = {"cfg": {"type": "object", "x-kubernetes-preserve-unknown-fields": True, "properties": {
        "level": {"type": "string", "default": "info"}}}}
    assert defaulted({"cfg": {"extra": {"a": 1}}}, **props) == {"cfg": {"extra": {"a": 1}, "level": "info"}}


def test_defaults_are_deep_copies() -> None:
    schema = spec_schema(tags={"type": "array", "items": {"type": "string"}, "default": ["a"]},
                         conf={"type": "object", "default": {"x": {"y": 1}},
                               "x-kubernetes-preserve-unknown-fields": True})
    first: dict[str, Any] = {"spec": {}}
    second: dict[str, Any] = {"spec": {}}
    apply_defaults(first, schema)
    apply_defaults(second, schema)
    first["spec"]["tags"].append("b")
    first["spec"]["conf"]["x"]["y"] = 2
    assert second["spec"] == {"tags": ["a"], "conf": {"x": {"y": 1}}}
    assert schema["properties"]["spec"]["properties"]["tags"]["default"] == ["a"]
    assert schema["properties"]["spec"]["properties"]["conf"]["default"] == {"x": {"y": 1}}


def test_root_level_default() -> None:
    schema = {"type": "object", "properties": {"spec": {"type": "object", "default": {"on": True},
                                                        "x-kubernetes-preserve-unknown-fields": True}}}
    obj: dict[str, Any] = {"metadata": {"name": "a"}}
    apply_defaults(obj, schema)
    assert obj == {"metadata": {"name": "a"}, "spec": {"on": True}}


def test_has_defaults() -> None:
    assert not has_defaults(None)
    assert not has_defaults(spec_schema(a={"type": "string"}))
    assert has_defaults(spec_schema(a={"type": "array", "items": {"type": "object", "properties": {
        "b": {"type": "integer", "default": 0}}}}))
    assert has_defaults({"type": "object", "additionalProperties": {"type": "string", "default": ""}})


def test_without_schema_or_defaults_nothing_changes() -> None:
    obj = {"spec": {"a": None}}
    apply_defaults(obj, None)
    apply_defaults(obj, spec_schema(a={"type": "string", "nullable": True}))
    assert obj == {"spec": {"a": None}}


# -- through the Store: create, update, and read ----------------------------------------------------------

def widget_def(schema: dict[str, Any] | None) -> ResourceDef:
    return ResourceDef(group="example.com", kind="Widget", plural="widgets", singular="widget", namespaced=True,
                       versions=(VersionDef(name="v1", storage=True, schema=schema),))


SCHEMA_V1 = spec_schema(size={"type": "string"}, replicas={"type": "integer", "minimum": 1})
SCHEMA_V2 = spec_schema(size={"type": "string"}, replicas={"type": "integer", "minimum": 1, "default": 3},
                        policy={"type": "object", "default": {}, "properties": {
                            "mode": {"type": "string", "default": "Always"}}})


def widget(name: str = "w", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": spec}


async def test_create_defaults_before_validation() -> None:
    store = Store(strategy_for(widget_def(spec_schema(replicas={"type": "integer", "minimum": 1, "default": 2}))),
                  MemoryStorage())
    created = await store.create("default", widget(), "v1", WriteOptions())
    assert created["spec"] == {"replicas": 2}
    # a default never hides a bad value
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", widget("bad", replicas=0), "v1", WriteOptions())
    assert [c.field for c in exc.value.causes] == ["spec.replicas"]


async def test_create_defaults_a_required_field() -> None:
    schema = spec_schema(mode={"type": "string", "default": "auto"})
    schema["properties"]["spec"]["required"] = ["mode"]
    store = Store(strategy_for(widget_def(schema)), MemoryStorage())
    assert (await store.create("default", widget(), "v1", WriteOptions()))["spec"] == {"mode": "auto"}


async def test_update_and_patch_default_the_new_object() -> None:
    store = Store(strategy_for(widget_def(SCHEMA_V2)), MemoryStorage())
    created = await store.create("default", widget(replicas=5), "v1", WriteOptions())
    assert created["spec"] == {"replicas": 5, "policy": {"mode": "Always"}}
    replaced = dict(created, spec={"size": "L"})
    updated = await store.update("default", "w", replaced, "v1", "", WriteOptions())
    assert updated["spec"] == {"size": "L", "replicas": 3, "policy": {"mode": "Always"}}

    def drop_policy(current: dict[str, Any]) -> dict[str, Any]:
        current["spec"]["policy"] = {"mode": None}
        return current
    patched = await store.patch("default", "w", "v1", "", drop_policy, WriteOptions())
    assert patched["spec"]["policy"] == {"mode": "Always"}


async def test_read_applies_defaults_added_after_the_object_was_stored() -> None:
    storage = MemoryStorage()
    before = Store(strategy_for(widget_def(SCHEMA_V1)), storage)
    await before.create("default", widget("old", size="S"), "v1", WriteOptions())
    after = Store(strategy_for(widget_def(SCHEMA_V2)), storage)  # the CRD gained defaults

    got = await after.get("default", "old", "v1")
    assert got["spec"] == {"size": "S", "replicas": 3, "policy": {"mode": "Always"}}
    listed = await after.list("default", "v1")
    assert listed["items"][0]["spec"] == got["spec"]
    # read-time defaults are not written back
    assert (await before.get("default", "old", "v1"))["spec"] == {"size": "S"}
    assert (await storage.get("/registry/example.com/widgets/default/old"))["spec"] == {"size": "S"}


async def test_patch_starts_from_the_defaulted_object() -> None:
    storage = MemoryStorage()
    await Store(strategy_for(widget_def(SCHEMA_V1)), storage).create("default", widget(size="S"), "v1",
                                                                      WriteOptions())
    after = Store(strategy_for(widget_def(SCHEMA_V2)), storage)
    seen: list[dict[str, Any]] = []

    def bump(current: dict[str, Any]) -> dict[str, Any]:
        seen.append(copy.deepcopy(current["spec"]))
        current["spec"]["replicas"] += 1
        return current
    patched = await after.patch("default", "w", "v1", "", bump, WriteOptions())
    assert seen == [{"size": "S", "replicas": 3, "policy": {"mode": "Always"}}]
    assert patched["spec"]["replicas"] == 4
    assert (await storage.get("/registry/example.com/widgets/default/w"))["spec"]["replicas"] == 4


async def test_watch_events_are_defaulted() -> None:
    storage = MemoryStorage()
    await Store(strategy_for(widget_def(SCHEMA_V1)), storage).create("default", widget(size="S"), "v1",
                                                                      WriteOptions())
    after = Store(strategy_for(widget_def(SCHEMA_V2)), storage)
    raw = await storage.get("/registry/example.com/widgets/default/w")
    assert (await after.output(raw, "v1"))["spec"]["replicas"] == 3
