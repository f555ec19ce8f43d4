"""OpenAPI v3 and v2 documents: what kubectl apply, create and explain look for."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest

import kapi_configs
from kapi_configs.examples import hello_zeng_dev
from kapi.endpoints import openapi
from kapi.plugins.typed import definition_of
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.crd import load_crd_dir, load_crd_file
from kapi.scheme.definitions import ResourceDef, VersionDef
from kapi.scheme.registry import Scheme

RESOURCES = Path(kapi_configs.__file__).parent / "resources"
FOO_CRD = Path(__file__).resolve().parents[2] / "data" / "foos.hello.zeng.dev.yaml"
# the typed Foo (hello.zeng.dev v2, the storage version, and v1) that kapi serves with its examples
TYPED_FOO = [definition_of(g.name, r) for g in hello_zeng_dev.plugin.groups for r in g.resources]
META = "io.k8s.apimachinery.pkg.apis.meta.v1"
METHODS = ("get", "put", "post", "patch", "delete")

WIDGETS = ResourceDef(
    group="example.kapi.dev",
    kind="Widget",
    plural="widgets",
    singular="widget",
    namespaced=False,
    versions=(
        VersionDef(name="v1", storage=True, status_subresource=True),
        VersionDef(
            name="v1beta1",
            schema={
                "type": "object",
                "properties": {
                    "spec": {
                        "type": "object",
                        "nullable": True,
                        "properties": {"size": {"type": "integer"}},
                    },
                    "extra": {
                        "type": "object",
                        "x-kubernetes-preserve-unknown-fields": True,
                        "properties": {"a": {"type": "string"}},
                    },
                    "port": {
                        "x-kubernetes-int-or-string": True,
                        "anyOf": [{"type": "integer"}, {"type": "string"}],
                    },
                },
            },
        ),
    ),
)


@pytest.fixture
def scheme() -> Scheme:
    """What kapi serves with its examples (CRD manifests and the typed Foo), plus Widgets."""
    return Scheme([NAMESPACES, *load_crd_dir(RESOURCES), *TYPED_FOO, WIDGETS])


def _doc(scheme: Scheme, group: str, version: str) -> dict[str, Any]:
    doc = openapi.openapi_v3_group_version(scheme, group, version)
    assert doc is not None
    return doc


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in doc["paths"].items():
        for method, op in item.items():
            assert method in METHODS
            yield path, method, op


def _params(op: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {p["name"]: p for p in op.get("parameters", [])}


# --- v3 index -----------------------------------------------------------------

def test_index_lists_every_group_version_with_its_hash(scheme: Scheme) -> None:
    index = openapi.openapi_v3_index(scheme)
    assert set(index["paths"]) == {
        "api/v1",
        "apis/hello.zeng.dev/v1",
        "apis/hello.zeng.dev/v2",
        "apis/autobusi.group.cicd/v1alpha",
        "apis/restaurant.wukong.com/v1alpha1",
        "apis/example.kapi.dev/v1",
        "apis/example.kapi.dev/v1beta1",
    }
    url = index["paths"]["apis/hello.zeng.dev/v1"]["serverRelativeURL"]
    doc = _doc(scheme, "hello.zeng.dev", "v1")
    expected = hashlib.sha512(orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)).hexdigest().upper()
    assert url == f"/openapi/v3/apis/hello.zeng.dev/v1?hash={expected}"
    assert index["paths"]["api/v1"]["serverRelativeURL"].startswith("/openapi/v3/api/v1?hash=")


def test_hash_changes_when_the_scheme_changes(scheme: Scheme) -> None:
    before = openapi.openapi_v3_index(scheme)["paths"]
    assert openapi.openapi_v3_index(scheme)["paths"] == before  # deterministic
    scheme.add(ResourceDef(group="hello.zeng.dev", kind="Bar", plural="bars", singular="bar", namespaced=True,
                           versions=(VersionDef(name="v1", storage=True),)))
    after = openapi.openapi_v3_index(scheme)["paths"]
    assert after["apis/hello.zeng.dev/v1"] != before["apis/hello.zeng.dev/v1"]
    assert after["apis/hello.zeng.dev/v2"] == before["apis/hello.zeng.dev/v2"]  # Bar has no v2
    assert after["api/v1"] == before["api/v1"]
    scheme.remove("hello.zeng.dev", "bars")
    assert openapi.openapi_v3_index(scheme)["paths"] == before


def test_unknown_group_version_is_none(scheme: Scheme) -> None:
    assert openapi.openapi_v3_group_version(scheme, "hello.zeng.dev", "v3") is None
    assert openapi.openapi_v3_group_version(scheme, "example.kapi.dev", "v2alpha1") is None
    assert openapi.openapi_v3_group_version(scheme, "nope.example.com", "v1") is None
    assert openapi.openapi_v3_group_version(scheme, "", "v2") is None


# --- v3 group-version documents --------------------------------------------------

def test_namespaced_paths(scheme: Scheme) -> None:
    doc = _doc(scheme, "hello.zeng.dev", "v1")
    assert doc["openapi"].startswith("3.0")
    base = "/apis/hello.zeng.dev/v1"
    assert set(doc["paths"]) == {
        f"{base}/",
        f"{base}/foos",
        f"{base}/namespaces/{{namespace}}/foos",
        f"{base}/namespaces/{{namespace}}/foos/{{name}}",
        f"{base}/namespaces/{{namespace}}/foos/{{name}}/status",
        f"{base}/namespaces/{{namespace}}/foos/{{name}}/greeting",  # a connect subresource
    }
    collection = doc["paths"][f"{base}/namespaces/{{namespace}}/foos"]
    item = doc["paths"][f"{base}/namespaces/{{namespace}}/foos/{{name}}"]
    actions = {m: op["x-kubernetes-action"] for m, op in collection.items()}
    assert actions == {"get": "list", "post": "post", "delete": "deletecollection"}
    assert {m: op["x-kubernetes-action"] for m, op in item.items()} == {
        "get": "get", "put": "put", "patch": "patch", "delete": "delete"
    }
    assert doc["paths"][f"{base}/foos"]["get"]["x-kubernetes-action"] == "list"
    assert "namespace" not in _params(doc["paths"][f"{base}/foos"]["get"])
    assert _params(item["get"])["namespace"] == {
        "name": "namespace",
        "in": "path",
        "description": "object name and auth scope, such as for teams and projects",
        "required": True,
        "schema": {"type": "string", "uniqueItems": True},
    }
    assert _params(item["get"])["name"]["required"] is True
    assert collection["get"]["operationId"] == "listHelloZengDevV1NamespacedFoo"
    assert item["patch"]["operationId"] == "patchHelloZengDevV1NamespacedFoo"
    # the preferred version, v2, has the same paths under its own prefix and operation ids
    v2 = _doc(scheme, "hello.zeng.dev", "v2")
    assert set(v2["paths"]) == {p.replace(base, "/apis/hello.zeng.dev/v2") for p in doc["paths"]}
    v2_collection = v2["paths"]["/apis/hello.zeng.dev/v2/namespaces/{namespace}/foos"]
    assert v2_collection["get"]["operationId"] == "listHelloZengDevV2NamespacedFoo"


def test_namespaced_crd_paths() -> None:
    """A CRD-defined namespaced resource without subresources: collection and item paths only."""
    scheme = Scheme([NAMESPACES, *load_crd_dir(RESOURCES), *load_crd_file(FOO_CRD)])
    doc = _doc(scheme, "hello.zeng.dev", "v1")
    base = "/apis/hello.zeng.dev/v1"
    assert set(doc["paths"]) == {
        f"{base}/",
        f"{base}/foos",
        f"{base}/namespaces/{{namespace}}/foos",
        f"{base}/namespaces/{{namespace}}/foos/{{name}}",
    }
    assert doc["paths"][f"{base}/namespaces/{{namespace}}/foos"]["get"]["operationId"] == (
        "listHelloZengDevV1NamespacedFoo")


def test_every_resource_operation_carries_id_action_and_gvk(scheme: Scheme) -> None:
    for gv in [("", "v1"), ("hello.zeng.dev", "v1"), ("hello.zeng.dev", "v2"), ("restaurant.wukong.com", "v1alpha1"), ("example.kapi.dev", "v1")]:
        doc = _doc(scheme, *gv)
        ids = []
        for path, method, op in _operations(doc):
            ids.append(op["operationId"])
            assert op["x-kubernetes-action"] in ("get", "list", "post", "put", "patch", "delete", "deletecollection",
                                                 "connect")
            # kube gives connect operations (pods/exec) their options' parameters, not `pretty`
            assert "pretty" in _params(op) or path.endswith("/") or op["x-kubernetes-action"] == "connect"
            if path.endswith("/"):
                continue  # the group-version's resource list
            gvk = op["x-kubernetes-group-version-kind"]
            assert (gvk["group"], gvk["version"]) == gv and set(gvk) == {"group", "version", "kind"}
            for name in ("{namespace}", "{name}"):
                if name in path:
                    assert _params(op)[name.strip("{}")]["in"] == "path"
        assert len(ids) == len(set(ids))


def test_patch_operation_has_field_validation_and_gvk(scheme: Scheme) -> None:
    """kubectl apply/create only validate server-side when this is present."""
    doc = _doc(scheme, "hello.zeng.dev", "v1")
    patches = [(p, op) for p, m, op in _operations(doc) if m == "patch"]
    assert patches
    for _, op in patches:
        assert op["x-kubernetes-group-version-kind"] == {"group": "hello.zeng.dev", "version": "v1", "kind": "Foo"}
        params = _params(op)
        assert params["fieldValidation"]["in"] == "query"
        assert {"dryRun", "fieldManager", "force", "pretty"} <= set(params)
        assert op["requestBody"]["required"] is True


def test_write_and_list_parameters(scheme: Scheme) -> None:
    doc = _doc(scheme, "hello.zeng.dev", "v1")
    collection = doc["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos"]
    item = doc["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}"]
    for op in (collection["post"], item["put"]):
        assert {"pretty", "dryRun", "fieldManager", "fieldValidation"} <= set(_params(op))
        assert set(op["requestBody"]["content"]) == {"application/json", "application/yaml"}
        assert "force" not in _params(op)
    assert {"limit", "continue", "labelSelector", "fieldSelector", "resourceVersion", "resourceVersionMatch",
            "timeoutSeconds", "watch", "allowWatchBookmarks", "sendInitialEvents"} <= set(_params(collection["get"]))
    assert _params(collection["get"])["limit"]["schema"]["type"] == "integer"
    assert set(collection["post"]["responses"]) >= {"200", "201"}
    ref = collection["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/dev.zeng.hello.v1.Foo"
    list_ref = collection["get"]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert list_ref == "#/components/schemas/dev.zeng.hello.v1.FooList"


def test_patch_content_types_custom_vs_builtin(scheme: Scheme) -> None:
    pizza = _doc(scheme, "restaurant.wukong.com", "v1alpha1")["paths"][
        "/apis/restaurant.wukong.com/v1alpha1/namespaces/{namespace}/pizzas/{name}"]
    assert set(pizza["patch"]["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml"
    }
    ns = _doc(scheme, "", "v1")["paths"]["/api/v1/namespaces/{name}"]
    assert "application/strategic-merge-patch+json" in ns["patch"]["requestBody"]["content"]
    # a typed plugin resource is compiled in, as an aggregated server's types: strategic merge patch too
    foo = _doc(scheme, "hello.zeng.dev", "v1")["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}"]
    assert set(foo["patch"]["requestBody"]["content"]) == {
        "application/json-patch+json", "application/merge-patch+json", "application/apply-patch+yaml",
        "application/strategic-merge-patch+json",
    }


def test_status_paths_only_with_status_subresource(scheme: Scheme) -> None:
    pizzas = _doc(scheme, "restaurant.wukong.com", "v1alpha1")
    status = pizzas["paths"]["/apis/restaurant.wukong.com/v1alpha1/namespaces/{namespace}/pizzas/{name}/status"]
    assert set(status) == {"get", "put", "patch"}
    assert status["patch"]["operationId"] == "patchRestaurantWukongComV1alpha1NamespacedPizzaStatus"
    assert "fieldValidation" in _params(status["patch"])
    foos = _doc(scheme, "hello.zeng.dev", "v1")
    foo_status = foos["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}/status"]
    assert set(foo_status) == {"get", "put", "patch"}
    assert foo_status["put"]["operationId"] == "replaceHelloZengDevV1NamespacedFooStatus"
    # the status subresource is per version: Widget v1 has one, v1beta1 none
    assert "/apis/example.kapi.dev/v1/widgets/{name}/status" in _doc(scheme, "example.kapi.dev", "v1")["paths"]
    beta = _doc(scheme, "example.kapi.dev", "v1beta1")
    assert not [p for p in beta["paths"] if p.endswith("/status")]


def test_cluster_scoped_paths_have_no_namespace(scheme: Scheme) -> None:
    doc = _doc(scheme, "example.kapi.dev", "v1")
    assert set(doc["paths"]) == {
        "/apis/example.kapi.dev/v1/",
        "/apis/example.kapi.dev/v1/widgets",
        "/apis/example.kapi.dev/v1/widgets/{name}",
        "/apis/example.kapi.dev/v1/widgets/{name}/status",
    }
    for _, _, op in _operations(doc):
        assert "namespace" not in _params(op)
    assert doc["paths"]["/apis/example.kapi.dev/v1/widgets"]["get"]["operationId"] == "listExampleKapiDevV1Widget"
    core = _doc(scheme, "", "v1")
    assert {"/api/v1/namespaces", "/api/v1/namespaces/{name}", "/api/v1/namespaces/{name}/status"} <= set(core["paths"])
    assert core["paths"]["/api/v1/namespaces/{name}"]["get"]["operationId"] == "readCoreV1Namespace"


def test_kind_schema_for_explain(scheme: Scheme) -> None:
    schemas = _doc(scheme, "hello.zeng.dev", "v1")["components"]["schemas"]
    foo = schemas["dev.zeng.hello.v1.Foo"]
    assert foo["x-kubernetes-group-version-kind"] == [{"group": "hello.zeng.dev", "version": "v1", "kind": "Foo"}]
    assert foo["description"] == "Foo is a sample resource with a message."
    assert foo["properties"]["metadata"]["$ref"] == f"#/components/schemas/{META}.ObjectMeta"
    assert foo["properties"]["apiVersion"]["description"].startswith("APIVersion defines")
    assert foo["properties"]["kind"]["description"].startswith("Kind is a string value")
    assert foo["properties"]["spec"]["properties"]["msg"]["description"] == "msg says hello"
    assert set(foo["properties"]["spec"]["properties"]) == {"msg", "msg1"}
    v2 = _doc(scheme, "hello.zeng.dev", "v2")["components"]["schemas"]["dev.zeng.hello.v2.Foo"]
    assert v2["x-kubernetes-group-version-kind"] == [{"group": "hello.zeng.dev", "version": "v2", "kind": "Foo"}]
    assert v2["description"] == "Foo is a sample resource with an image and its messages."
    v2_spec = v2["properties"]["spec"]["properties"]
    assert set(v2_spec) == {"image", "config"}
    assert v2_spec["config"]["properties"]["msg"]["description"] == "msg says hello"
    assert v2["properties"]["status"]["properties"]["phase"]["type"] == "string"
    foo_list = schemas["dev.zeng.hello.v1.FooList"]
    assert foo_list["x-kubernetes-group-version-kind"][0]["kind"] == "FooList"
    assert foo_list["properties"]["items"]["items"]["$ref"] == "#/components/schemas/dev.zeng.hello.v1.Foo"
    assert foo_list["properties"]["metadata"]["$ref"] == f"#/components/schemas/{META}.ListMeta"
    meta = schemas[f"{META}.ObjectMeta"]
    assert {"name", "namespace", "labels", "annotations", "uid", "resourceVersion", "creationTimestamp",
            "finalizers", "ownerReferences", "managedFields"} <= set(meta["properties"])
    assert all(p.get("description") for p in meta["properties"].values())
    for name in ("ListMeta", "Status", "DeleteOptions", "Patch"):
        assert f"{META}.{name}" in schemas
    ns = _doc(scheme, "", "v1")["components"]["schemas"]["io.k8s.api.core.v1.Namespace"]
    assert ns["x-kubernetes-group-version-kind"] == [{"group": "", "version": "v1", "kind": "Namespace"}]


def test_version_without_schema_preserves_unknown_fields(scheme: Scheme) -> None:
    widget = _doc(scheme, "example.kapi.dev", "v1")["components"]["schemas"]["dev.kapi.example.v1.Widget"]
    assert widget["type"] == "object" and widget["x-kubernetes-preserve-unknown-fields"] is True
    assert widget["x-kubernetes-group-version-kind"][0]["kind"] == "Widget"


def test_schemas_do_not_alias_the_definition(scheme: Scheme) -> None:
    foos = scheme.resource("hello.zeng.dev", "foos")
    assert foos is not None
    for version in foos.versions:
        _doc(scheme, "hello.zeng.dev", version.name)
    for version in foos.versions:
        assert version.schema["properties"]["metadata"] == {"type": "object"}  # type: ignore[index]


@pytest.mark.parametrize("gv", [("", "v1"), ("hello.zeng.dev", "v1"), ("hello.zeng.dev", "v2"), ("restaurant.wukong.com", "v1alpha1"),
                                ("autobusi.group.cicd", "v1alpha"), ("example.kapi.dev", "v1"),
                                ("example.kapi.dev", "v1beta1")])
def test_v3_refs_resolve(scheme: Scheme, gv: tuple[str, str]) -> None:
    doc = _doc(scheme, *gv)
    schemas = doc["components"]["schemas"]
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith("#/components/schemas/")
        assert ref.removeprefix("#/components/schemas/") in schemas, ref


# --- v2 ------------------------------------------------------------------------

def test_v2_document(scheme: Scheme) -> None:
    doc = openapi.openapi_v2(scheme)
    assert doc["swagger"] == "2.0"
    patch = doc["paths"]["/apis/hello.zeng.dev/v1/namespaces/{namespace}/foos/{name}"]["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {"group": "hello.zeng.dev", "version": "v1", "kind": "Foo"}
    assert "application/merge-patch+json" in patch["consumes"]
    assert "application/strategic-merge-patch+json" in patch["consumes"]  # typed: compiled in
    pizza = doc["paths"]["/apis/restaurant.wukong.com/v1alpha1/namespaces/{namespace}/pizzas/{name}"]["patch"]
    assert "application/merge-patch+json" in pizza["consumes"]
    assert "application/strategic-merge-patch+json" not in pizza["consumes"]  # a CRD's custom resource
    params = {p["name"]: p for p in patch["parameters"]}
    assert params["fieldValidation"] == {**params["fieldValidation"], "in": "query", "type": "string"}
    assert params["body"]["in"] == "body" and params["body"]["schema"]["$ref"] == f"#/definitions/{META}.Patch"
    assert patch["responses"]["200"]["schema"]["$ref"] == "#/definitions/dev.zeng.hello.v1.Foo"
    assert "application/json" in patch["produces"]
    assert "/api/v1/namespaces/{name}/status" in doc["paths"]
    # every served version is in the one document, not only the preferred one
    assert "/apis/hello.zeng.dev/v2/namespaces/{namespace}/foos/{name}" in doc["paths"]
    assert {"dev.zeng.hello.v1.Foo", "dev.zeng.hello.v2.Foo"} <= set(doc["definitions"])
    assert "/apis/example.kapi.dev/v1beta1/widgets" in doc["paths"]
    for item in doc["paths"].values():
        for op in item.values():
            for p in op.get("parameters", []):
                assert p["in"] in ("path", "query", "body")
                assert ("schema" in p) == (p["in"] == "body")


def test_v2_refs_resolve(scheme: Scheme) -> None:
    doc = openapi.openapi_v2(scheme)
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        assert ref.startswith("#/definitions/"), ref
        assert ref.removeprefix("#/definitions/") in doc["definitions"], ref


def test_v2_drops_v3_only_keywords(scheme: Scheme) -> None:
    definitions = openapi.openapi_v2(scheme)["definitions"]
    widget = definitions["dev.kapi.example.v1beta1.Widget"]
    props = widget["properties"]
    assert "nullable" not in props["spec"] and "type" not in props["spec"] and "properties" not in props["spec"]
    assert "properties" not in props["extra"] and props["extra"]["x-kubernetes-preserve-unknown-fields"] is True
    assert "anyOf" not in props["port"]
    assert widget["x-kubernetes-group-version-kind"][0] == {"group": "example.kapi.dev", "version": "v1beta1",
                                                            "kind": "Widget"}
    # a schemaless version keeps its typed metadata even though its root preserves unknown fields
    assert definitions["dev.kapi.example.v1.Widget"]["properties"]["metadata"]["$ref"] == (
        f"#/definitions/{META}.ObjectMeta"
    )
    text = orjson.dumps(definitions).decode()
    assert "nullable" not in text and "anyOf" not in text and "#/components/" not in text
    # the v3 document keeps them
    v3 = _doc(scheme, "example.kapi.dev", "v1beta1")["components"]["schemas"]["dev.kapi.example.v1beta1.Widget"]
    assert v3["properties"]["spec"]["nullable"] is True and "anyOf" in v3["properties"]["port"]
