"""Typed Python resources: the schema made from a pydantic model, conversion through the hub
(the shipped hello.zeng.dev Foo round-trips through v1 and v2), defaulting and validation written in
Python (TypedStrategy through a Store), pydantic errors as kube field causes, and private in-memory
storage (`storage="memory"`).
"""
from __future__ import annotations

import copy
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any, Iterator, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError, field_validator

from kapi_configs.examples import hello_zeng_dev
from kapi.api import errors
from kapi.plugins import FieldError, KubeObject, Resource, Version, schema_from_model
from kapi.plugins.typed import TypedConverter, TypedStrategy, causes_of, definition_of
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.storage.memory import MemoryStorage
from kapi.testing import start_server

Object = dict[str, Any]


# -- schema_from_model ----------------------------------------------------------------------------------------
class Item(BaseModel):
    name: str = Field(description="the item's name")
    count: int = 1


class Spec(BaseModel):
    """What a thing wants."""

    items: list[Item] = Field(default_factory=list, description="the items")
    primary: Item | None = Field(None, description="the main item")
    mode: Literal["fast", "slow"] = "fast"
    only: Literal["x"] | None = None
    extra: dict[str, Any] | None = None
    anything: Any = None
    labels: dict[str, str] = Field(default_factory=dict)
    replicas: int | None = None


class Thing(KubeObject):
    """A thing for schema tests."""

    spec: Spec | None = None


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any, Any]]:
    """Every (path, key, value) of a nested JSON document."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield path, key, value
            yield from walk(value, f"{path}.{key}")
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from walk(value, f"{path}[{i}]")


@pytest.fixture(scope="module")
def thing_schema() -> Object:
    return schema_from_model(Thing)


def test_schema_is_an_object_with_kube_envelope(thing_schema: Object) -> None:
    assert thing_schema["type"] == "object"
    assert thing_schema["description"] == "A thing for schema tests."
    props = thing_schema["properties"]
    assert props["apiVersion"]["type"] == "string" and props["kind"]["type"] == "string"
    assert props["metadata"] == {"type": "object"}
    assert props["spec"]["type"] == "object"


def test_schema_inlines_references(thing_schema: Object) -> None:
    keys = {key for _, key, _ in walk(thing_schema)}
    assert "$ref" not in keys and "$defs" not in keys and "definitions" not in keys
    spec = thing_schema["properties"]["spec"]
    item = spec["properties"]["items"]["items"]
    assert item["type"] == "object"
    assert item["properties"]["name"] == {"type": "string", "description": "the item's name"}
    assert item["required"] == ["name"]
    assert item["properties"]["count"] == {"type": "integer", "default": 1}
    # the wrapper's own description is kept next to the inlined schema
    primary = spec["properties"]["primary"]
    assert primary["description"] == "the main item"
    assert primary["properties"]["name"]["type"] == "string"


def test_optional_fields_are_not_nullable(thing_schema: Object) -> None:
    props = thing_schema["properties"]["spec"]["properties"]
    assert props["replicas"] == {"type": "integer"}
    assert props["primary"]["type"] == "object"
    for path, key, value in walk(thing_schema):
        assert key != "nullable", path
        assert key != "anyOf", f"{path}: {value}"
        if key == "type":
            assert value != "null", path


def test_schema_has_no_titles(thing_schema: Object) -> None:
    for path, key, value in walk(thing_schema):
        # "title" may be a property name, never a schema keyword
        if key == "title":
            assert path.endswith(".properties"), f"{path}: {value}"


def test_free_form_fields_preserve_unknown_fields(thing_schema: Object) -> None:
    props = thing_schema["properties"]["spec"]["properties"]
    assert props["extra"]["x-kubernetes-preserve-unknown-fields"] is True
    assert props["extra"]["type"] == "object"
    assert props["anything"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "type" not in props["anything"]
    # a typed map is a map, not free-form
    assert props["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}


def test_literals_become_enums(thing_schema: Object) -> None:
    props = thing_schema["properties"]["spec"]["properties"]
    assert props["mode"]["enum"] == ["fast", "slow"] and props["mode"]["type"] == "string"
    assert props["mode"]["default"] == "fast"
    assert props["only"]["enum"] == ["x"] and props["only"]["type"] == "string"
    assert "const" not in {key for _, key, _ in walk(thing_schema)}


def test_every_schema_node_is_structural(thing_schema: Object) -> None:
    """kube's structural rule: every property and item schema has a type or preserves unknown fields."""
    def check(node: Object, path: str) -> None:
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields") is True, path
        for name, sub in (node.get("properties") or {}).items():
            check(sub, f"{path}.{name}")
        if isinstance(node.get("items"), dict):
            check(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            check(node["additionalProperties"], f"{path}{{}}")

    check(thing_schema, "")


def test_foo_schemas_describe_both_versions() -> None:
    v2 = schema_from_model(hello_zeng_dev.FooV2)["properties"]["spec"]["properties"]
    v1 = schema_from_model(hello_zeng_dev.FooV1)["properties"]["spec"]["properties"]
    assert set(v2) == {"image", "config"}
    assert set(v2["config"]["properties"]) == {"msg", "msg1"}
    assert v2["config"]["description"] == "what the image says"
    assert set(v1) == {"msg", "msg1"}


# -- the Foo example: conversion through the hub ----------------------------------------------------------------
FOO_DEF = definition_of("hello.zeng.dev", hello_zeng_dev.FOO)
ANNOTATION = hello_zeng_dev.V2_FIELDS


def foo(version: str, *, spec: Any = None, status: Any = None, annotations: dict[str, str] | None = None) -> Object:
    obj: Object = {"apiVersion": f"hello.zeng.dev/{version}", "kind": "Foo",
                   "metadata": {"name": "x", "namespace": "default", "uid": "u-1", "resourceVersion": "7"}}
    if annotations is not None:
        obj["metadata"]["annotations"] = annotations
    if spec is not None:
        obj["spec"] = spec
    if status is not None:
        obj["status"] = status
    return obj


async def convert(obj: Object, to_version: str) -> Object:
    converter = FOO_DEF.converter
    assert isinstance(converter, TypedConverter)
    (out,) = await converter.convert([copy.deepcopy(obj)], to_version)
    return out


def test_foo_definition() -> None:
    assert isinstance(FOO_DEF.converter, TypedConverter)
    assert FOO_DEF.storage_version.name == "v2"
    assert [v.name for v in FOO_DEF.versions] == ["v2", "v1"]
    assert FOO_DEF.short_names == ("fo",) and FOO_DEF.categories == ("all",)
    assert FOO_DEF.has_status  # FooV2 has a status: it is a subresource
    v2_columns = [c.name for c in FOO_DEF.version("v2").printer_columns]  # type: ignore[union-attr]
    assert v2_columns == ["Image", "Message", "Message1", "Phase"]


V1_OBJECTS = {
    "spec absent": foo("v1"),
    "empty spec": foo("v1", spec={}),
    "only msg": foo("v1", spec={"msg": "hello"}),
    "only msg1": foo("v1", spec={"msg1": "again"}),
    "both messages": foo("v1", spec={"msg": "hello", "msg1": "again"}),
    "status set": foo("v1", spec={"msg": "hello"}, status={"phase": "Running"}),
    "status without spec": foo("v1", status={"phase": "Pending"}),
    "other annotations": foo("v1", spec={"msg": "hello"}, annotations={"team": "a", "x.io/y": "z"}),
}

V2_OBJECTS = {
    "spec absent": foo("v2"),
    "empty spec": foo("v2", spec={}),
    "only image": foo("v2", spec={"image": "nginx:1.25"}),
    "only msg": foo("v2", spec={"config": {"msg": "hello"}}),
    "only msg1": foo("v2", spec={"config": {"msg1": "again"}}),
    "image and config": foo("v2", spec={"image": "nginx:1.25", "config": {"msg": "hello", "msg1": "again"}}),
    "empty config": foo("v2", spec={"config": {}}),
    "image and empty config": foo("v2", spec={"image": "busybox", "config": {}}),
    "status set": foo("v2", spec={"image": "nginx", "config": {"msg": "hi"}}, status={"phase": "Running"}),
    "status without spec": foo("v2", status={"phase": "Pending"}),
    "empty status": foo("v2", spec={"image": "nginx"}, status={}),
    "other annotations": foo("v2", spec={"image": "nginx", "config": {"msg": "hi"}},
                             annotations={"team": "a", "x.io/y": "z"}),
}


@pytest.mark.parametrize("case", list(V1_OBJECTS))
async def test_foo_v1_to_v2_to_v1_is_lossless(case: str) -> None:
    original = V1_OBJECTS[case]
    hub = await convert(original, "v2")
    assert hub["apiVersion"] == "hello.zeng.dev/v2" and hub["kind"] == "Foo"
    assert ANNOTATION not in (hub["metadata"].get("annotations") or {})
    back = await convert(hub, "v1")
    assert back == original


@pytest.mark.parametrize("case", list(V2_OBJECTS))
async def test_foo_v2_to_v1_to_v2_is_lossless(case: str) -> None:
    original = V2_OBJECTS[case]
    v1 = await convert(original, "v1")
    assert v1["apiVersion"] == "hello.zeng.dev/v1" and v1["kind"] == "Foo"
    back = await convert(v1, "v2")
    assert back == original, f"lost on the way through v1 {v1}"


@pytest.mark.parametrize("version", ["v1", "v2"])
async def test_foo_conversion_to_its_own_version_is_identity(version: str) -> None:
    table = V1_OBJECTS if version == "v1" else V2_OBJECTS
    for case, original in table.items():
        assert await convert(original, version) == original, case


async def test_foo_v2_reads_in_v1_with_the_image_in_an_annotation() -> None:
    v1 = await convert(foo("v2", spec={"image": "nginx", "config": {"msg": "hi", "msg1": "yo"}},
                           annotations={"team": "a"}), "v1")
    assert v1["spec"] == {"msg": "hi", "msg1": "yo"}
    assert v1["metadata"]["annotations"]["team"] == "a"
    assert v1["metadata"]["annotations"][ANNOTATION] == '{"image": "nginx"}'
    assert v1["metadata"]["uid"] == "u-1" and v1["metadata"]["resourceVersion"] == "7"


async def test_foo_v1_messages_land_in_v2_config() -> None:
    v2 = await convert(foo("v1", spec={"msg": "hello", "msg1": "again"}), "v2")
    assert v2["spec"] == {"config": {"msg": "hello", "msg1": "again"}}
    assert "annotations" not in v2["metadata"]


async def test_foo_edit_in_v1_keeps_the_v2_only_image() -> None:
    v1 = await convert(foo("v2", spec={"image": "nginx", "config": {"msg": "old"}}), "v1")
    v1["spec"]["msg"] = "new"
    v2 = await convert(v1, "v2")
    assert v2["spec"] == {"image": "nginx", "config": {"msg": "new"}}


async def test_conversion_of_a_malformed_object_is_invalid_with_field_paths() -> None:
    bad = foo("v2", spec={"config": {"msg": ["not", "a", "string"]}})
    with pytest.raises(errors.Invalid) as caught:
        await convert(bad, "v1")
    assert [c.field for c in caught.value.causes] == ["spec.config.msg"]
    assert caught.value.to_status()["details"]["name"] == "x"


# -- TypedStrategy through a Store: Python defaulting and validation ------------------------------------------------
class Part(BaseModel):
    name: str = Field(description="a lower-case name")
    size: int = 1

    @field_validator("name")
    @classmethod
    def lower_case(cls, value: str) -> str:
        if value != value.lower():
            raise ValueError("must be lower case")
        return value


class WidgetSpec(BaseModel):
    replicas: int | None = None
    color: str | None = None
    items: list[Part] = Field(default_factory=list)


class Widget(KubeObject):
    """The hub and storage version."""

    spec: WidgetSpec | None = None


class WidgetSpecV1Beta1(BaseModel):
    count: int | None = None  # v1's replicas
    colour: str | None = None
    items: list[Part] = Field(default_factory=list)


class WidgetV1Beta1(KubeObject):
    spec: WidgetSpecV1Beta1 | None = None


def beta_to_hub(w: WidgetV1Beta1) -> Widget:
    spec = None if w.spec is None else WidgetSpec(replicas=w.spec.count, color=w.spec.colour, items=w.spec.items)
    return Widget(metadata=w.metadata, spec=spec)


def hub_to_beta(w: Widget) -> WidgetV1Beta1:
    spec = None if w.spec is None else WidgetSpecV1Beta1(count=w.spec.replicas, colour=w.spec.color,
                                                         items=w.spec.items)
    return WidgetV1Beta1(metadata=w.metadata, spec=spec)


def default_widget(w: Widget) -> None:
    if w.spec is None:
        w.spec = WidgetSpec()
    if w.spec.replicas is None:
        w.spec.replicas = 1
    if w.spec.color is None:
        w.spec.color = "blue"


def validate_widget(w: Widget, old: Widget | None) -> list[FieldError]:
    out = []
    assert w.spec is not None  # defaulting ran first
    if w.spec.replicas is not None and w.spec.replicas < 0:
        out.append(FieldError("spec.replicas", "must be greater than or equal to 0", w.spec.replicas))
    if w.spec.color == "":
        out.append(FieldError("spec.color", "", required=True))
    if old is not None and old.spec is not None and old.spec.color != w.spec.color:
        out.append(FieldError("spec.color", "field is immutable", w.spec.color))
    return out


WIDGETS = Resource(
    kind="Widget", plural="widgets", short_names=("wd",), default=default_widget, validate=validate_widget,
    versions=[Version("v1", Widget, storage=True),
              Version("v1beta1", WidgetV1Beta1, to_hub=beta_to_hub, from_hub=hub_to_beta)],
)
GROUP = "widgets.example.com"


@pytest.fixture
def widget_store() -> tuple[Store, MemoryStorage]:
    storage = MemoryStorage()
    definition = definition_of(GROUP, WIDGETS)
    return Store(TypedStrategy(definition), storage, None, StoreOptions()), storage


def widget(version: str = "v1", name: str = "w", **spec: Any) -> Object:
    obj: Object = {"apiVersion": f"{GROUP}/{version}", "kind": "Widget", "metadata": {"name": name}}
    if spec:
        obj["spec"] = spec
    return obj


async def test_python_defaulting_applies_on_create(widget_store: tuple[Store, MemoryStorage]) -> None:
    store, _ = widget_store
    created = await store.create("default", widget(), "v1", WriteOptions())
    assert created["spec"] == {"replicas": 1, "color": "blue", "items": []}
    explicit = await store.create("default", widget(name="w2", replicas=3, color="red"), "v1", WriteOptions())
    assert explicit["spec"]["replicas"] == 3 and explicit["spec"]["color"] == "red"


async def test_defaulting_works_in_a_non_hub_version_and_stores_the_hub(
        widget_store: tuple[Store, MemoryStorage]) -> None:
    store, storage = widget_store
    created = await store.create("default", widget("v1beta1", colour="green"), "v1beta1", WriteOptions())
    assert created["apiVersion"] == f"{GROUP}/v1beta1"
    assert created["spec"] == {"count": 1, "colour": "green", "items": []}
    stored = await storage.get(f"/registry/{GROUP}/widgets/default/w")
    assert stored["apiVersion"] == f"{GROUP}/v1"
    assert stored["spec"] == {"replicas": 1, "color": "green", "items": []}
    assert (await store.get("default", "w", "v1"))["spec"]["replicas"] == 1


async def test_python_validation_is_422_invalid_with_causes(widget_store: tuple[Store, MemoryStorage]) -> None:
    store, _ = widget_store
    with pytest.raises(errors.Invalid) as caught:
        await store.create("default", widget(replicas=-2, color=""), "v1", WriteOptions())
    exc = caught.value
    assert exc.code == 422 and exc.reason == "Invalid"
    causes = {c.field: c for c in exc.causes}
    assert set(causes) == {"spec.replicas", "spec.color"}
    assert causes["spec.replicas"].reason == "FieldValueInvalid"
    assert causes["spec.replicas"].message == "Invalid value: -2: must be greater than or equal to 0"
    assert causes["spec.color"].reason == "FieldValueRequired"
    status = exc.to_status()
    assert status["code"] == 422 and status["details"]["kind"] == "Widget"
    assert status["details"]["group"] == GROUP and status["details"]["name"] == "w"
    assert status["message"].startswith(f'Widget.{GROUP} "w" is invalid: [')
    with pytest.raises(errors.NotFound):
        await store.get("default", "w", "v1")


async def test_validation_causes_are_hub_paths_in_any_version(widget_store: tuple[Store, MemoryStorage]) -> None:
    """Validation runs on the hub: a v1beta1 request hears about the hub's field (as kube's internal version)."""
    store, _ = widget_store
    with pytest.raises(errors.Invalid) as caught:
        await store.create("default", widget("v1beta1", count=-1), "v1beta1", WriteOptions())
    assert [c.field for c in caught.value.causes] == ["spec.replicas"]


async def test_validation_receives_the_old_object_on_update(widget_store: tuple[Store, MemoryStorage]) -> None:
    store, _ = widget_store
    created = await store.create("default", widget(color="red"), "v1", WriteOptions())
    scaled = {**created, "spec": {**created["spec"], "replicas": 5}}
    updated = await store.update("default", "w", scaled, "v1", "", WriteOptions())
    assert updated["spec"]["replicas"] == 5 and updated["metadata"]["generation"] == 2
    recolored = {**updated, "spec": {**updated["spec"], "color": "green"}}
    with pytest.raises(errors.Invalid) as caught:
        await store.update("default", "w", recolored, "v1", "", WriteOptions())
    assert [(c.field, c.message) for c in caught.value.causes] == [
        ("spec.color", 'Invalid value: "green": field is immutable')]
    # the old object reaches the validator in the hub even when the update comes in another version
    beta = await store.get("default", "w", "v1beta1")
    with pytest.raises(errors.Invalid, match="field is immutable"):
        await store.update("default", "w", {**beta, "spec": {**beta["spec"], "colour": "pink"}}, "v1beta1", "",
                           WriteOptions())
    assert (await store.get("default", "w", "v1"))["spec"]["color"] == "red"


async def test_dry_run_defaults_and_validates_without_storing(widget_store: tuple[Store, MemoryStorage]) -> None:
    store, _ = widget_store
    out = await store.create("default", widget(), "v1", WriteOptions(dry_run=True))
    assert out["spec"]["replicas"] == 1
    with pytest.raises(errors.NotFound):
        await store.get("default", "w", "v1")
    with pytest.raises(errors.Invalid):
        await store.create("default", widget(replicas=-1), "v1", WriteOptions(dry_run=True))


# -- pydantic errors as kube causes ---------------------------------------------------------------------------------
async def test_pydantic_errors_become_causes_at_kube_field_paths(widget_store: tuple[Store, MemoryStorage]) -> None:
    store, _ = widget_store
    bad = widget(items=[{"name": "Bolt"}, {"name": "nut"}, {"name": "Washer"}])
    with pytest.raises(errors.Invalid) as caught:
        await store.create("default", bad, "v1", WriteOptions())
    causes = caught.value.causes
    assert [c.field for c in causes] == ["spec.items[0].name", "spec.items[2].name"]
    assert all(c.reason == "FieldValueInvalid" for c in causes)
    assert causes[0].message.startswith('Invalid value: "Bolt": ')
    assert "must be lower case" in causes[0].message


def test_causes_of_names_list_indexes_and_missing_fields() -> None:
    with pytest.raises(ValidationError) as caught:
        Widget.model_validate({"spec": {"replicas": "many", "items": [{"name": "a"}, {"size": 2}]}})
    causes = {c.field: c for c in causes_of(caught.value)}
    assert set(causes) == {"spec.replicas", "spec.items[1].name"}
    assert causes["spec.items[1].name"].reason == "FieldValueRequired"
    assert causes["spec.items[1].name"].message == "Required value"
    assert causes["spec.replicas"].reason == "FieldValueInvalid"
    assert causes["spec.replicas"].message.startswith('Invalid value: "many": ')


def test_causes_of_nested_lists() -> None:
    class Grid(BaseModel):
        rows: list[list[int]]

    with pytest.raises(ValidationError) as caught:
        Grid.model_validate({"rows": [[1, 2], [3, "x"]]})
    assert [c.field for c in causes_of(caught.value)] == ["rows[1][1]"]


async def test_schema_rejects_what_the_schema_knows_before_python_runs(
        widget_store: tuple[Store, MemoryStorage]) -> None:
    """A type error is a schema error (kube's wording), found before the model is ever built."""
    store, _ = widget_store
    with pytest.raises(errors.Invalid) as caught:
        await store.create("default", widget(replicas="many"), "v1", WriteOptions())
    assert [c.field for c in caught.value.causes] == ["spec.replicas"]
    assert caught.value.causes[0].message.startswith('Invalid value: "string": spec.replicas in body must be of type')


# -- storage="memory" through a running server ----------------------------------------------------------------------
MEMORY_PLUGIN = '''
from pydantic import BaseModel
from kapi.plugins import APIGroup, KubeObject, Plugin, Resource, Version


class NoteSpec(BaseModel):
    text: str | None = None


class Note(KubeObject):
    spec: NoteSpec | None = None


plugin = Plugin(groups=[APIGroup("notes.example.com", [
    Resource(kind="Scratch", plural="scratches", storage="memory", versions=[Version("v1", Note, storage=True)]),
    Resource(kind="Note", plural="notes", versions=[Version("v1", Note, storage=True)]),
])])
'''


@pytest.fixture
def memory_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    name = f"kapi_test_memory_{uuid.uuid4().hex[:8]}"
    src = tmp_path / "plugins"
    src.mkdir()
    (src / f"{name}.py").write_text(textwrap.dedent(MEMORY_PLUGIN))
    monkeypatch.syspath_prepend(str(src))
    yield name
    sys.modules.pop(name, None)


def note(kind: str, name: str, text: str) -> Object:
    return {"apiVersion": "notes.example.com/v1", "kind": kind, "metadata": {"name": name}, "spec": {"text": text}}


def test_memory_storage_resource_is_served_but_not_persisted(memory_plugin: str, tmp_path: Path) -> None:
    root = tmp_path / "root"
    base = "/apis/notes.example.com/v1/namespaces/default"
    with start_server(backend="file", root=root, plugins=(memory_plugin,)) as kapi:
        status, body = kapi.request("POST", f"{base}/scratches", note("Scratch", "s1", "gone at restart"))
        assert status == 201, body
        status, body = kapi.request("POST", f"{base}/notes", note("Note", "n1", "kept"))
        assert status == 201, body
        status, body = kapi.request("GET", f"{base}/scratches/s1")
        assert status == 200 and body["spec"] == {"text": "gone at restart"}
        status, listed = kapi.request("GET", "/apis/notes.example.com/v1/scratches")
        assert status == 200 and [i["metadata"]["name"] for i in listed["items"]] == ["s1"]
    on_disk = "\n".join(str(p) for p in root.rglob("*"))
    assert "n1" in on_disk or "notes" in on_disk
    assert "scratches" not in on_disk and "s1" not in on_disk
    with start_server(backend="file", root=root, plugins=(memory_plugin,)) as kapi:
        assert kapi.request("GET", f"{base}/notes/n1")[0] == 200
        status, body = kapi.request("GET", f"{base}/scratches/s1")
        assert status == 404 and body["reason"] == "NotFound"
        # the private store still works after the restart
        assert kapi.request("POST", f"{base}/scratches", note("Scratch", "s2", "new"))[0] == 201
        assert kapi.request("GET", f"{base}/scratches/s2")[0] == 200


def test_typed_resource_defaulting_and_validation_over_http(tmp_path: Path) -> None:
    """The shipped Foo's Python validation answers 422 with the cause; v2 defaults nothing it was not given."""
    base = "/apis/hello.zeng.dev/v2/namespaces/default/foos"
    with start_server(examples=True) as kapi:
        status, body = kapi.request("POST", base, {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                                                   "metadata": {"name": "bad"}, "spec": {"image": "has space"}})
        assert status == 422 and body["reason"] == "Invalid", body
        assert body["details"]["causes"] == [{
            "reason": "FieldValueInvalid", "field": "spec.image",
            "message": 'Invalid value: "has space": must be a non-empty image reference without spaces'}]
        status, body = kapi.request("POST", base, {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                                                   "metadata": {"name": "ok"}, "spec": {"image": "nginx"},
                                                   "status": {"phase": "Running"}})
        assert status == 201 and body["spec"] == {"image": "nginx"}
        assert "status" not in body  # status is a subresource: a create does not set it


@pytest.mark.parametrize("annotation", ["not json", "[1]", '"a string"'])
def test_foo_v1_with_a_malformed_v2_fields_annotation_is_not_a_500(annotation: str) -> None:
    """A client's bad annotation is bad input: 422 (or the annotation ignored), never 500 InternalError."""
    with start_server(examples=True) as kapi:
        status, body = kapi.request("POST", "/apis/hello.zeng.dev/v1/namespaces/default/foos", {
            "apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
            "metadata": {"name": "m", "annotations": {ANNOTATION: annotation}}, "spec": {"msg": "hi"}})
        assert status in (201, 422), body
        if status == 422:
            assert body["reason"] == "Invalid"


def test_foo_empty_config_survives_a_v1_read_modify_write() -> None:
    """`kubectl get -o json` in v1 then `kubectl replace` must not change a v2 object (here: `config: {}`)."""
    base = "/apis/hello.zeng.dev/{}/namespaces/default/foos"
    with start_server(examples=True) as kapi:
        status, _ = kapi.request("POST", base.format("v2"), {"apiVersion": "hello.zeng.dev/v2", "kind": "Foo",
                                                             "metadata": {"name": "e"},
                                                             "spec": {"image": "nginx", "config": {}}})
        assert status == 201
        _, v1 = kapi.request("GET", base.format("v1") + "/e")
        status, body = kapi.request("PUT", base.format("v1") + "/e", v1)
        assert status == 200, body
        _, v2 = kapi.request("GET", base.format("v2") + "/e")
        assert v2["spec"] == {"image": "nginx", "config": {}}
