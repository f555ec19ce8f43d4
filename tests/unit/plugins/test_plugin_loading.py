"""Loading plugin modules (errors name the module), serving a plugin's group, and the admission chain:
the order `build_admission` builds, a plugin's reader, and the two phases around validation.
"""
from __future__ import annotations

import sys
import textwrap
import types
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from pydantic import BaseModel

from kapi.admission.chain import AdmissionChain
from kapi.api import errors
from kapi.app import ConfigError, build_admission
from kapi.plugins import (
    AdmissionAttributes,
    AdmissionPlugin,
    APIGroup,
    Column,
    FieldError,
    KubeObject,
    ObjectReader,
    Plugin,
    Resource,
    Version,
)
from kapi.plugins.loader import PluginError, load_module_plugin, load_plugins
from kapi.testing import start_server

Object = dict[str, Any]


def unique(prefix: str = "kapi_test_plugin") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], str]]:
    """Write `source` as a module under tmp_path (on sys.path); returns its name."""
    src = tmp_path / "plugins"
    src.mkdir()
    monkeypatch.syspath_prepend(str(src))
    written: list[str] = []

    def write(source: str, name: str = "") -> str:
        name = name or unique()
        (src / f"{name}.py").write_text(textwrap.dedent(source))
        written.append(name)
        return name

    yield write
    for name in written:
        sys.modules.pop(name, None)


@pytest.fixture
def install(monkeypatch: pytest.MonkeyPatch) -> Callable[..., str]:
    """Put a module made in the test into sys.modules (so plugins can close over test state)."""
    def put(**attrs: Any) -> str:
        name = unique("kapi_test_inline")
        module = types.ModuleType(name)
        for key, value in attrs.items():
            setattr(module, key, value)
        monkeypatch.setitem(sys.modules, name, module)
        return name

    return put


# -- loader errors ----------------------------------------------------------------------------------------------
def test_missing_module_names_it() -> None:
    with pytest.raises(PluginError, match=r"^plugin nosuch\.module: cannot import: ModuleNotFoundError"):
        load_module_plugin("nosuch.module")


def test_module_without_plugin_attribute(module_dir: Callable[..., str]) -> None:
    name = module_dir("x = 1\n")
    with pytest.raises(PluginError) as caught:
        load_module_plugin(name)
    assert str(caught.value).startswith(f"plugin {name}: ")
    assert "no `plugin = Plugin(...)`" in str(caught.value)


@pytest.mark.parametrize("value", ["'a string'", "None", "{'groups': []}", "[]"])
def test_plugin_attribute_of_the_wrong_type(module_dir: Callable[..., str], value: str) -> None:
    name = module_dir(f"plugin = {value}\n")
    with pytest.raises(PluginError, match=f"^plugin {name}: "):
        load_module_plugin(name)


def test_module_that_fails_on_import(module_dir: Callable[..., str]) -> None:
    name = module_dir("raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError) as caught:
        load_module_plugin(name)
    assert str(caught.value) == f"plugin {name}: cannot import: RuntimeError: boom at import"


def test_module_with_a_syntax_error(module_dir: Callable[..., str]) -> None:
    name = module_dir("def broken(:\n")
    with pytest.raises(PluginError, match=f"^plugin {name}: cannot import: SyntaxError"):
        load_module_plugin(name)


def test_plugin_error_is_a_value_error() -> None:
    """`kapi start` turns ValueErrors into `error: ...` and exit 1."""
    assert issubclass(PluginError, ValueError)


def test_load_plugins_keeps_order_and_loads_each_module_once(install: Callable[..., str]) -> None:
    a, b = Plugin(), Plugin()
    first, second = install(plugin=a), install(plugin=b)
    loaded = load_plugins((second, first, second))
    assert [name for name, _ in loaded] == [second, first]
    assert loaded[0][1] is b and loaded[1][1] is a


def test_start_server_with_a_missing_plugin_fails_before_serving() -> None:
    with pytest.raises(PluginError, match="plugin nosuch_kapi_plugin: cannot import"):
        start_server(plugins=("nosuch_kapi_plugin",))


# -- a plugin module from a file serves its group --------------------------------------------------------------
GADGETS = '''
from pydantic import BaseModel, Field
from kapi.plugins import APIGroup, Column, KubeObject, Plugin, Resource, Version


class GadgetSpec(BaseModel):
    size: int | None = Field(None, description="how big")
    color: str | None = None


class Gadget(KubeObject):
    """A gadget."""

    spec: GadgetSpec | None = None


plugin = Plugin(groups=[APIGroup("gadgets.example.com", [
    Resource(kind="Gadget", plural="gadgets", short_names=("gd",), categories=("all",), versions=[
        Version("v1", Gadget, storage=True, columns=[Column("Size", ".spec.size", type="integer")]),
    ]),
    Resource(kind="Rack", plural="racks", namespaced=False, verbs=("get", "list", "create"),
             versions=[Version("v1", Gadget, storage=True)]),
])])
'''


def test_plugin_from_a_file_serves_discovery_and_crud(module_dir: Callable[..., str]) -> None:
    name = module_dir(GADGETS)
    with start_server(plugins=(name,)) as kapi, httpx.Client(base_url=kapi.url, timeout=10) as http:
        groups = http.get("/apis").json()
        assert "gadgets.example.com" in [g["name"] for g in groups["groups"]]
        group = http.get("/apis/gadgets.example.com").json()
        assert group["preferredVersion"]["groupVersion"] == "gadgets.example.com/v1"
        resources = {r["name"]: r for r in http.get("/apis/gadgets.example.com/v1").json()["resources"]}
        assert set(resources) == {"gadgets", "racks"}
        assert resources["gadgets"]["kind"] == "Gadget" and resources["gadgets"]["namespaced"] is True
        assert resources["gadgets"]["shortNames"] == ["gd"] and resources["gadgets"]["categories"] == ["all"]
        assert "watch" in resources["gadgets"]["verbs"]
        assert resources["racks"]["namespaced"] is False
        assert sorted(resources["racks"]["verbs"]) == ["create", "get", "list"]

        base = "/apis/gadgets.example.com/v1/namespaces/default/gadgets"
        made = http.post(base, json={"apiVersion": "gadgets.example.com/v1", "kind": "Gadget",
                                     "metadata": {"name": "g1"}, "spec": {"size": 3, "unknown": 1}})
        assert made.status_code == 201, made.text
        assert made.json()["spec"] == {"size": 3}  # pruned by the model's schema
        got = http.get(f"{base}/g1")
        assert got.status_code == 200 and got.json()["metadata"]["uid"] == made.json()["metadata"]["uid"]
        patched = http.patch(f"{base}/g1", json={"spec": {"color": "red"}},
                             headers={"Content-Type": "application/merge-patch+json"})
        assert patched.status_code == 200 and patched.json()["spec"] == {"size": 3, "color": "red"}
        table = http.get(base, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}).json()
        assert [c["name"] for c in table["columnDefinitions"]][:2] == ["Name", "Size"]
        assert table["rows"][0]["cells"][:2] == ["g1", 3]
        bad = http.post(base, json={"apiVersion": "gadgets.example.com/v1", "kind": "Gadget",
                                    "metadata": {"name": "g2"}, "spec": {"size": "big"}})
        assert bad.status_code == 422 and bad.json()["details"]["causes"][0]["field"] == "spec.size"
        assert http.delete(f"{base}/g1").status_code == 200
        assert http.get(f"{base}/g1").status_code == 404

        rack = http.post("/apis/gadgets.example.com/v1/racks", json={"apiVersion": "gadgets.example.com/v1",
                                                                     "kind": "Rack", "metadata": {"name": "r"}})
        assert rack.status_code == 201, rack.text
        refused = http.delete("/apis/gadgets.example.com/v1/racks/r")
        assert refused.status_code == 405 and refused.json()["reason"] == "MethodNotAllowed"


def test_plugin_group_is_in_the_openapi_documents(module_dir: Callable[..., str]) -> None:
    name = module_dir(GADGETS)
    with start_server(plugins=(name,)) as kapi:
        status, index = kapi.request("GET", "/openapi/v3")
        assert status == 200 and "apis/gadgets.example.com/v1" in index["paths"]
        status, doc = kapi.request("GET", "/openapi/v3/apis/gadgets.example.com/v1")
        assert status == 200
        schemas = doc["components"]["schemas"]
        (gadget,) = [s for key, s in schemas.items() if key.endswith(".Gadget")]
        assert gadget["properties"]["spec"]["properties"]["size"]["description"] == "how big"


# -- plugins that clash or are malformed ------------------------------------------------------------------------
class Simple(KubeObject):
    spec: dict[str, Any] | None = None


def simple_plugin(group: str = "clash.example.com", plural: str = "things", kind: str = "Thing") -> Plugin:
    return Plugin(groups=[APIGroup(group, [Resource(kind, plural, [Version("v1", Simple, storage=True)])])])


def test_two_plugins_defining_the_same_resource(install: Callable[..., str]) -> None:
    first, second = install(plugin=simple_plugin()), install(plugin=simple_plugin())
    with pytest.raises(PluginError, match=r"things\.clash\.example\.com is defined twice"):
        start_server(plugins=(first, second))


def test_plugin_defining_a_resource_a_shipped_crd_serves(install: Callable[..., str]) -> None:
    name = install(plugin=simple_plugin("restaurant.wukong.com", "pizzas", "Pizza"))
    with pytest.raises(PluginError, match=r"pizzas\.restaurant\.wukong\.com is defined twice"):
        start_server(examples=True, plugins=(name,))


class Other(KubeObject):
    spec: dict[str, Any] | None = None


BAD_DEFINITIONS = {
    "two storage versions": [Version("v1", Simple, storage=True), Version("v2", Other, storage=True)],
    "no storage version": [Version("v1", Simple), Version("v2", Other)],
    "no versions": [],
    "a version named twice": [Version("v1", Simple, storage=True), Version("v1", Other)],
    "a model that is not a pydantic model": [Version("v1", dict, storage=True)],  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(BAD_DEFINITIONS))
def test_malformed_definition_stops_the_start_naming_the_module(install: Callable[..., str], case: str) -> None:
    """The loader promises: a bad definition stops the start with a message naming the module."""
    name = install(plugin=Plugin(groups=[APIGroup("bad.example.com", [
        Resource("Thing", "things", BAD_DEFINITIONS[case])])]))
    with pytest.raises(PluginError, match=f"plugin {name}"):
        start_server(plugins=(name,)).stop()


@pytest.mark.parametrize(("group", "plural"), [("bad.example.com", "Things!"), ("Not A Group", "things")])
def test_invalid_names_stop_the_start(install: Callable[..., str], group: str, plural: str) -> None:
    name = install(plugin=simple_plugin(group, plural))
    with pytest.raises(PluginError, match=f"plugin {name}"):
        start_server(plugins=(name,)).stop()


# -- build_admission ----------------------------------------------------------------------------------------------
class NullReader:
    async def get(self, group: str, resource: str, namespace: str, name: str) -> Object | None:
        return None

    async def list(self, group: str, resource: str, namespace: str = "") -> list[Object]:
        return []

    async def count(self, group: str, resource: str, namespace: str = "") -> int:
        return 0


async def no_namespace(name: str) -> Object | None:
    return None


class Named:
    def __init__(self, name: str, reader: ObjectReader) -> None:
        self.name, self.reader = name, reader

    async def admit(self, attributes: AdmissionAttributes) -> None: ...

    async def validate(self, attributes: AdmissionAttributes) -> None: ...


def named(name: str) -> Callable[[ObjectReader], AdmissionPlugin]:
    return lambda reader: Named(name, reader)


def names_of(chain: AdmissionChain) -> list[str]:
    return [p.name for p in chain.plugins]  # type: ignore[attr-defined]


def test_default_admission_order_puts_plugin_modules_before_the_webhooks() -> None:
    chain = build_admission(None, NullReader(), no_namespace, {"Quota": named("Quota"), "Audit": named("Audit")})
    assert names_of(chain) == ["NamespaceLifecycle", "JenkinsServiceLimit", "Quota", "Audit",
                               "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"]


def test_default_admission_without_plugin_modules() -> None:
    assert names_of(build_admission(None, NullReader(), no_namespace)) == [
        "NamespaceLifecycle", "JenkinsServiceLimit", "MutatingAdmissionWebhook", "ValidatingAdmissionWebhook"]


def test_named_admission_plugins_run_exactly_in_the_given_order() -> None:
    chain = build_admission(("Audit", "ValidatingAdmissionWebhook", "NamespaceLifecycle"), NullReader(),
                            no_namespace, {"Audit": named("Audit"), "Quota": named("Quota")})
    assert names_of(chain) == ["Audit", "ValidatingAdmissionWebhook", "NamespaceLifecycle"]
    assert names_of(build_admission((), NullReader(), no_namespace)) == []


def test_unknown_admission_plugins_are_a_config_error() -> None:
    with pytest.raises(ConfigError) as caught:
        build_admission(("NamespaceLifecycle", "Nope", "AlsoNope"), NullReader(), no_namespace,
                        {"Quota": named("Quota")})
    message = str(caught.value)
    assert message.startswith("unknown admission plugin(s) Nope, AlsoNope; known: NamespaceLifecycle")
    assert "Quota" in message and "JenkinsServiceLimit" in message
    assert issubclass(ConfigError, ValueError)


def test_plugin_factories_get_the_reader() -> None:
    reader = NullReader()
    (plugin,) = build_admission(("Quota",), reader, no_namespace, {"Quota": named("Quota")}).plugins
    assert plugin.reader is reader  # type: ignore[attr-defined]


def test_start_server_with_an_unknown_admission_plugin() -> None:
    with pytest.raises(ConfigError, match="unknown admission plugin"):
        start_server(admission_plugins=("NamespaceLifecycle", "Nope"))


# -- admission plugins from plugin modules, end to end in a server --------------------------------------------------
class BoxSpec(BaseModel):
    size: int | None = None
    label: str | None = None


class Box(KubeObject):
    spec: BoxSpec | None = None


def default_box(box: Box) -> None:
    if box.spec is None:
        box.spec = BoxSpec()
    if box.spec.size is None:
        box.spec.size = 1


def validate_box(box: Box, _old: Box | None) -> list[FieldError]:
    if box.spec is not None and box.spec.size is not None and box.spec.size > 100:
        return [FieldError("spec.size", "too big", box.spec.size)]
    return []


BOXES = Resource("Box", "boxes", [Version("v1", Box, storage=True, columns=[Column("Size", ".spec.size")])],
                 default=default_box, validate=validate_box)
BOX_BASE = "/apis/boxes.example.com/v1/namespaces/default/boxes"


def box(name: str, **spec: Any) -> Object:
    obj: Object = {"apiVersion": "boxes.example.com/v1", "kind": "Box", "metadata": {"name": name}}
    if spec:
        obj["spec"] = spec
    return obj


class Recorder(AdmissionPlugin):  # type: ignore[misc]
    """Records both phases; optionally mutates (admit) or refuses (validate)."""

    def __init__(self, name: str, log: list[tuple[str, str, Object | None]], *,
                 mutate: Callable[[Object], None] | None = None,
                 refuse: Callable[[Object], errors.StatusError | None] | None = None) -> None:
        self.name, self.log, self.mutate, self.refuse = name, log, mutate, refuse

    async def admit(self, attributes: AdmissionAttributes) -> None:
        if attributes.resource != "boxes":
            return
        self.log.append((self.name, "admit", _snapshot(attributes.obj)))
        if self.mutate is not None and attributes.obj is not None:
            self.mutate(attributes.obj)

    async def validate(self, attributes: AdmissionAttributes) -> None:
        if attributes.resource != "boxes":
            return
        self.log.append((self.name, "validate", _snapshot(attributes.obj)))
        if self.refuse is not None and attributes.obj is not None:
            refusal = self.refuse(attributes.obj)
            if refusal is not None:
                raise refusal


def _snapshot(obj: Object | None) -> Object | None:
    import copy

    return copy.deepcopy(obj)


def test_admission_reader_counts_gets_and_lists_other_objects(install: Callable[..., str]) -> None:
    seen: list[dict[str, Any]] = []

    class Inventory(AdmissionPlugin):  # type: ignore[misc]
        name = "Inventory"

        def __init__(self, reader: ObjectReader) -> None:
            self.reader = reader

        async def admit(self, attributes: AdmissionAttributes) -> None:
            if attributes.resource != "boxes" or attributes.operation != "CREATE":
                return
            r = self.reader
            found = {
                "count": await r.count("", "configmaps", "default"),
                "count_all": await r.count("", "configmaps"),
                "names": sorted(o["metadata"]["name"] for o in await r.list("", "configmaps", "default")),
                "get": await r.get("", "configmaps", "default", "shelf"),
                "missing": await r.get("", "configmaps", "default", "nope"),
                "unserved": await r.list("nowhere.example.com", "things"),
                "boxes": await r.count("boxes.example.com", "boxes"),
            }
            seen.append(found)
            assert attributes.obj is not None
            attributes.obj["metadata"].setdefault("annotations", {})["inventory/configmaps"] = str(found["count"])

    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])],
                                 admission={"Inventory": Inventory}))
    with start_server(plugins=(name,)) as kapi:
        other = kapi.create_namespace()
        for ns, cm in (("default", "shelf"), ("default", "drawer"), (other, "attic")):
            status, body = kapi.request("POST", f"/api/v1/namespaces/{ns}/configmaps",
                                        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": cm},
                                         "data": {"k": "v"}})
            assert status == 201, body
        status, body = kapi.request("POST", BOX_BASE, box("b1"))
        assert status == 201, body
        assert body["metadata"]["annotations"] == {"inventory/configmaps": "2"}
        status, body = kapi.request("POST", BOX_BASE, box("b2"))
        assert status == 201, body
    first, second = seen
    assert first["count"] == 2 and first["count_all"] == 3
    assert first["names"] == ["drawer", "shelf"]
    assert first["get"]["metadata"]["name"] == "shelf" and first["get"]["data"] == {"k": "v"}
    assert first["missing"] is None and first["unserved"] == []
    assert (first["boxes"], second["boxes"]) == (0, 1)


def test_mutating_phase_change_is_stored(install: Callable[..., str]) -> None:
    log: list[tuple[str, str, Object | None]] = []

    def label(obj: Object) -> None:
        obj["metadata"].setdefault("labels", {})["admitted"] = "yes"
        obj.setdefault("spec", {})["label"] = "from-admission"

    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])],
                                 admission={"Labeler": lambda _r: Recorder("Labeler", log, mutate=label)}))
    with start_server(plugins=(name,)) as kapi:
        status, body = kapi.request("POST", BOX_BASE, box("b", size=2))
        assert status == 201, body
        status, stored = kapi.request("GET", f"{BOX_BASE}/b")
        assert stored["metadata"]["labels"] == {"admitted": "yes"}
        assert stored["spec"] == {"size": 2, "label": "from-admission"}
        # an update goes through admission as well
        stored["metadata"]["labels"] = {}
        status, updated = kapi.request("PUT", f"{BOX_BASE}/b", stored)
        assert status == 200 and updated["metadata"]["labels"] == {"admitted": "yes"}


def test_mutation_that_breaks_the_object_is_caught_by_validation(install: Callable[..., str]) -> None:
    log: list[tuple[str, str, Object | None]] = []

    def grow(obj: Object) -> None:
        obj.setdefault("spec", {})["size"] = 1000

    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])],
                                 admission={"Grower": lambda _r: Recorder("Grower", log, mutate=grow)}))
    with start_server(plugins=(name,)) as kapi:
        status, body = kapi.request("POST", BOX_BASE, box("b", size=2))
        assert status == 422 and body["details"]["causes"][0]["field"] == "spec.size", body
        assert kapi.request("GET", f"{BOX_BASE}/b")[0] == 404


@pytest.mark.parametrize(("refusal", "code", "reason"), [
    (errors.Forbidden('boxes.boxes.example.com "b" is forbidden: no more boxes'), 403, "Forbidden"),
    (errors.invalid("boxes.example.com", "Box", "b", [errors.field_value_invalid("spec.size", 7, "odd")]),
     422, "Invalid"),
    (errors.Conflict("try again later"), 409, "Conflict"),
])
def test_validating_refusal_is_the_status_error_raised(install: Callable[..., str], refusal: errors.StatusError,
                                                        code: int, reason: str) -> None:
    log: list[tuple[str, str, Object | None]] = []
    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])], admission={
        "Gate": lambda _r: Recorder("Gate", log, refuse=lambda obj: refusal if obj["metadata"]["name"] == "b"
                                    else None)}))
    with start_server(plugins=(name,)) as kapi:
        status, body = kapi.request("POST", BOX_BASE, box("b", size=7))
        assert status == code, body
        assert body["kind"] == "Status" and body["reason"] == reason and body["code"] == code
        assert body["message"] == refusal.message
        if refusal.causes:
            assert body["details"]["causes"] == [c.to_dict() for c in refusal.causes]
        assert kapi.request("GET", f"{BOX_BASE}/b")[0] == 404
        assert kapi.request("POST", BOX_BASE, box("other"))[0] == 201
        # a dry run is refused the same way and stores nothing either
        status, _ = kapi.request("POST", f"{BOX_BASE}?dryRun=All", box("b", size=7))
        assert status == code


def test_mutating_phases_run_before_validation_and_validating_phases_see_the_final_object(
        install: Callable[..., str]) -> None:
    log: list[tuple[str, str, Object | None]] = []

    def first_mutation(obj: Object) -> None:
        obj["metadata"].setdefault("labels", {})["first"] = "1"

    def second_mutation(obj: Object) -> None:
        obj["metadata"].setdefault("labels", {})["second"] = "2"

    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])], admission={
        "First": lambda _r: Recorder("First", log, mutate=first_mutation),
        "Second": lambda _r: Recorder("Second", log, mutate=second_mutation),
    }))
    with start_server(plugins=(name,), admission_plugins=("First", "Second")) as kapi:
        status, body = kapi.request("POST", BOX_BASE, {**box("b"), "spec": {"unknownField": 1}})
        assert status == 201, body
    assert [(who, phase) for who, phase, _ in log] == [
        ("First", "admit"), ("Second", "admit"), ("First", "validate"), ("Second", "validate")]
    first_admit, second_admit, first_validate, second_validate = (obj for _, _, obj in log)
    assert first_admit is not None and second_admit is not None
    # mutating plugins see the request as kube decodes it (defaulted: a typed resource keeps only its fields),
    # and each other's changes in order
    assert first_admit["spec"] == {"size": 1}
    assert "labels" not in first_admit["metadata"]
    assert second_admit["metadata"]["labels"] == {"first": "1"}
    # validating plugins see the final object: pruned, defaulted in Python, every mutation applied
    assert first_validate == second_validate
    assert first_validate is not None
    assert first_validate["spec"] == {"size": 1}
    assert first_validate["metadata"]["labels"] == {"first": "1", "second": "2"}
    assert body["spec"] == {"size": 1} and body["metadata"]["labels"] == {"first": "1", "second": "2"}


def test_admission_plugins_limited_by_name_leave_others_out(install: Callable[..., str]) -> None:
    log: list[tuple[str, str, Object | None]] = []
    name = install(plugin=Plugin(groups=[APIGroup("boxes.example.com", [BOXES])], admission={
        "Gate": lambda _r: Recorder("Gate", log, refuse=lambda obj: errors.Forbidden("no"))}))
    with start_server(plugins=(name,), admission_plugins=("NamespaceLifecycle",)) as kapi:
        assert kapi.request("POST", BOX_BASE, box("b"))[0] == 201
        # NamespaceLifecycle still runs
        status, body = kapi.request("POST", BOX_BASE.replace("/default/", "/nosuch/"), box("c"))
        assert status == 404 and body["details"]["kind"] == "namespaces"
    assert log == []
