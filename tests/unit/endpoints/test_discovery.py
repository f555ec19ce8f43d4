"""Discovery documents: the shapes kubectl, client-go, kopf and the Python client read."""
from __future__ import annotations

import base64
from pathlib import Path

import pytest

import kapi_configs
from kapi_configs.examples import hello_zeng_dev
from kapi.endpoints import discovery
from kapi.plugins.typed import definition_of
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.crd import load_crd_dir, load_crd_file
from kapi.scheme.definitions import ResourceDef, VersionDef
from kapi.scheme.registry import Scheme

RESOURCES = Path(kapi_configs.__file__).parent / "resources"
FOO_CRD = Path(__file__).resolve().parents[2] / "data" / "foos.hello.zeng.dev.yaml"
# the typed Foo (hello.zeng.dev v2 and v1) that kapi serves with its examples
TYPED_FOO = [definition_of(g.name, r) for g in hello_zeng_dev.plugin.groups for r in g.resources]

WIDGETS = ResourceDef(
    group="example.kapi.dev",
    kind="Widget",
    plural="widgets",
    singular="widget",
    namespaced=False,
    versions=(
        VersionDef(name="v1beta1", served=True, storage=False),
        VersionDef(name="v1", served=True, storage=True, status_subresource=True),
        VersionDef(name="v2alpha1", served=False),
    ),
)


@pytest.fixture
def scheme() -> Scheme:
    """What kapi serves with its examples (CRD manifests and the typed Foo), plus Widgets."""
    return Scheme([NAMESPACES, *load_crd_dir(RESOURCES), *TYPED_FOO, WIDGETS])


def test_version_reports_kube_1_32_and_kapi() -> None:
    info = discovery.version_info()
    assert (info["major"], info["minor"]) == ("1", "32")
    assert info["gitVersion"].startswith("v1.32.")
    assert info["goVersion"].startswith("go1.")
    assert info["compiler"] == "gc" and info["platform"] == "linux/amd64"
    assert info["gitCommit"].startswith("kapi-")
    assert all(isinstance(v, str) for v in info.values())


def test_api_versions() -> None:
    doc = discovery.api_versions("127.0.0.1:6443")
    assert doc == {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1:6443"}],
    }


def test_group_list_has_every_named_group_preferred_first(scheme: Scheme) -> None:
    doc = discovery.api_group_list(scheme)
    assert doc["kind"] == "APIGroupList" and doc["apiVersion"] == "v1"
    names = [g["name"] for g in doc["groups"]]
    assert names == sorted(names)
    assert "" not in names
    assert set(names) == {"hello.zeng.dev", "autobusi.group.cicd", "restaurant.wukong.com", "example.kapi.dev"}
    widgets = next(g for g in doc["groups"] if g["name"] == "example.kapi.dev")
    assert widgets["versions"] == [
        {"groupVersion": "example.kapi.dev/v1", "version": "v1"},
        {"groupVersion": "example.kapi.dev/v1beta1", "version": "v1beta1"},
    ]
    assert widgets["preferredVersion"] == {"groupVersion": "example.kapi.dev/v1", "version": "v1"}
    foos = next(g for g in doc["groups"] if g["name"] == "hello.zeng.dev")
    assert foos["versions"] == [
        {"groupVersion": "hello.zeng.dev/v2", "version": "v2"},
        {"groupVersion": "hello.zeng.dev/v1", "version": "v1"},
    ]
    assert foos["preferredVersion"] == {"groupVersion": "hello.zeng.dev/v2", "version": "v2"}


def test_api_group(scheme: Scheme) -> None:
    doc = discovery.api_group(scheme, "hello.zeng.dev")
    assert doc == {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": "hello.zeng.dev",
        "versions": [
            {"groupVersion": "hello.zeng.dev/v2", "version": "v2"},
            {"groupVersion": "hello.zeng.dev/v1", "version": "v1"},
        ],
        "preferredVersion": {"groupVersion": "hello.zeng.dev/v2", "version": "v2"},
    }
    assert discovery.api_group(scheme, "nope.example.com") is None
    assert discovery.api_group(scheme, "") is None


def test_core_resource_list_lists_namespaces_with_status(scheme: Scheme) -> None:
    doc = discovery.api_resource_list(scheme, "", "v1")
    assert doc is not None
    assert doc["kind"] == "APIResourceList" and doc["apiVersion"] == "v1" and doc["groupVersion"] == "v1"
    by_name = {r["name"]: r for r in doc["resources"]}
    ns = by_name["namespaces"]
    assert ns["singularName"] == "namespace" and ns["namespaced"] is False and ns["kind"] == "Namespace"
    assert ns["shortNames"] == ["ns"]
    assert ns["verbs"] == sorted(set(discovery.RESOURCE_VERBS) - {"deletecollection"})  # as kube serves them
    assert by_name["namespaces/status"] == {
        "name": "namespaces/status",
        "singularName": "",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": ["get", "patch", "update"],
    }


def test_crd_resource_list() -> None:
    scheme = Scheme([NAMESPACES, *load_crd_dir(RESOURCES), *load_crd_file(FOO_CRD)])
    doc = discovery.api_resource_list(scheme, "hello.zeng.dev", "v1")
    assert doc is not None and doc["groupVersion"] == "hello.zeng.dev/v1"
    assert [r["name"] for r in doc["resources"]] == ["foos"]  # no status subresource
    foo = doc["resources"][0]
    assert foo["namespaced"] is True and foo["kind"] == "Foo" and foo["singularName"] == "foo"
    assert foo["shortNames"] == ["fo"] and foo["categories"] == ["all"]
    assert len(base64.b64decode(foo["storageVersionHash"])) == 8

    pizzas = discovery.api_resource_list(scheme, "restaurant.wukong.com", "v1alpha1")
    assert pizzas is not None
    assert [r["name"] for r in pizzas["resources"]] == ["pizzas", "pizzas/status"]
    assert "categories" not in pizzas["resources"][0]  # omitted when empty


def test_typed_resource_list_in_every_version(scheme: Scheme) -> None:
    hashes = set()
    for version in ("v2", "v1"):
        doc = discovery.api_resource_list(scheme, "hello.zeng.dev", version)
        assert doc is not None and doc["groupVersion"] == f"hello.zeng.dev/{version}"
        assert [r["name"] for r in doc["resources"]] == ["foos", "foos/greeting", "foos/status"]
        foo, greeting, status = doc["resources"]
        assert foo["namespaced"] is True and foo["kind"] == "Foo" and foo["singularName"] == "foo"
        assert foo["shortNames"] == ["fo"] and foo["categories"] == ["all"]
        assert foo["verbs"] == sorted(discovery.RESOURCE_VERBS)
        assert status == {"name": "foos/status", "singularName": "", "namespaced": True, "kind": "Foo",
                          "verbs": ["get", "patch", "update"]}
        assert greeting == {"name": "foos/greeting", "singularName": "", "namespaced": True,  # a connect one
                            "kind": "FooGreetingOptions", "verbs": ["create", "get"]}
        hashes.add(foo["storageVersionHash"])
    # both versions report the hash of the storage version, v2
    assert hashes == {discovery.storage_version_hash("hello.zeng.dev", "v2", "Foo")}


def test_storage_version_hash_is_stable_and_uses_the_storage_version(scheme: Scheme) -> None:
    hashes = {
        v: next(r for r in discovery.api_resource_list(scheme, "example.kapi.dev", v)["resources"]  # type: ignore[index]
                if r["name"] == "widgets")["storageVersionHash"]
        for v in ("v1", "v1beta1")
    }
    assert hashes["v1"] == hashes["v1beta1"] == discovery.storage_version_hash("example.kapi.dev", "v1", "Widget")
    assert discovery.storage_version_hash("a", "v1", "K") != discovery.storage_version_hash("a", "v1", "L")


def test_unserved_group_versions_are_none(scheme: Scheme) -> None:
    assert discovery.api_resource_list(scheme, "hello.zeng.dev", "v3") is None
    assert discovery.api_resource_list(scheme, "example.kapi.dev", "v2alpha1") is None  # served: false
    assert discovery.api_resource_list(scheme, "nope.example.com", "v1") is None
    assert discovery.api_resource_list(scheme, "", "v2") is None


def test_cluster_scoped_resource(scheme: Scheme) -> None:
    doc = discovery.api_resource_list(scheme, "example.kapi.dev", "v1")
    assert doc is not None
    widget, status = doc["resources"]
    assert widget["namespaced"] is False and "shortNames" not in widget
    assert status["name"] == "widgets/status" and status["namespaced"] is False
    # the status subresource is per version: v1beta1 has none
    beta = discovery.api_resource_list(scheme, "example.kapi.dev", "v1beta1")
    assert beta is not None and [r["name"] for r in beta["resources"]] == ["widgets"]


@pytest.mark.parametrize("version", ["v2", "v2beta1"])
def test_aggregated_core(scheme: Scheme, version: str) -> None:
    doc = discovery.aggregated_discovery(scheme, core=True, version=version)
    assert doc["kind"] == "APIGroupDiscoveryList"
    assert doc["apiVersion"] == f"apidiscovery.k8s.io/{version}"
    [core] = doc["items"]
    assert "name" not in core["metadata"]
    [v1] = core["versions"]
    assert v1["version"] == "v1" and v1["freshness"] == "Current"
    [ns] = v1["resources"]
    assert ns == {
        "resource": "namespaces",
        "responseKind": {"group": "", "version": "", "kind": "Namespace"},
        "scope": "Cluster",
        "singularResource": "namespace",
        "verbs": sorted(set(discovery.RESOURCE_VERBS) - {"deletecollection"}),
        "shortNames": ["ns"],
        "subresources": [
            {
                "subresource": "finalize",
                "responseKind": {"group": "", "version": "", "kind": "Namespace"},
                "verbs": ["update"],
            },
            {
                "subresource": "status",
                "responseKind": {"group": "", "version": "", "kind": "Namespace"},
                "verbs": ["get", "patch", "update"],
            }
        ],
    }


def test_aggregated_named_groups(scheme: Scheme) -> None:
    doc = discovery.aggregated_discovery(scheme, core=False, version="v2")
    names = [item["metadata"]["name"] for item in doc["items"]]
    assert names == [g["name"] for g in discovery.api_group_list(scheme)["groups"]]
    widgets = next(i for i in doc["items"] if i["metadata"]["name"] == "example.kapi.dev")
    assert [v["version"] for v in widgets["versions"]] == ["v1", "v1beta1"]
    v1_widget = widgets["versions"][0]["resources"][0]
    assert v1_widget["scope"] == "Cluster" and v1_widget["subresources"][0]["subresource"] == "status"
    assert "subresources" not in widgets["versions"][1]["resources"][0]
    foos = next(i for i in doc["items"] if i["metadata"]["name"] == "hello.zeng.dev")
    assert [v["version"] for v in foos["versions"]] == ["v2", "v1"]  # the preferred version first
    for served in foos["versions"]:
        [foo] = served["resources"]
        assert foo["scope"] == "Namespaced" and foo["shortNames"] == ["fo"] and foo["categories"] == ["all"]
        # a compiled kind leaves its own group and version out, as kube's installer does
        assert foo["responseKind"] == {"group": "", "version": "", "kind": "Foo"}
        assert foo["subresources"] == [{  # by name, as kube lists them
            "subresource": "greeting",
            "responseKind": {"group": "", "version": "", "kind": "FooGreetingOptions"},
            "verbs": ["create", "get"],
        }, {
            "subresource": "status",
            "responseKind": {"group": "", "version": "", "kind": "Foo"},
            "verbs": ["get", "patch", "update"],
        }]


def test_aggregated_rejects_unknown_version(scheme: Scheme) -> None:
    with pytest.raises(ValueError):
        discovery.aggregated_discovery(scheme, core=True, version="v1")


def test_content_types() -> None:
    assert discovery.AGGREGATED_CONTENT_TYPE_V2 == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    assert discovery.AGGREGATED_CONTENT_TYPE_V2BETA1 == (
        "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
    )
    assert discovery.aggregated_content_type("v2beta1") == discovery.AGGREGATED_CONTENT_TYPE_V2BETA1
