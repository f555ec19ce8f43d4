"""`kapi.testing`: start kapi in-process, talk to it without credentials, stop it without leaks."""
from __future__ import annotations

import socket
import threading
from pathlib import Path

import pytest
import yaml

from kapi.scheme.crd import CRDError
from kapi.testing import KapiStartError, RunningServer, start_server, write_kubeconfig

SHIPPED = Path(__file__).resolve().parents[2] / "configs" / "resources"
FOO_CRD = Path(__file__).resolve().parents[1] / "data" / "foos.hello.zeng.dev.yaml"


def kapi_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("kapi-server-")]


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def test_start_serves_on_loopback_and_stop_releases_thread_port_and_root() -> None:
    server = start_server()
    try:
        assert server.running
        assert server.url == f"http://127.0.0.1:{server.port}"
        assert server.config.backend == "memory" and server.config.secure_port == 0
        assert server.config.authn_allow_localhost and server.config.kubectl_disabled
        assert server.request("GET", "/readyz")[0] == 200
        status, body = server.request("GET", "/api/v1/namespaces")  # no credentials: loopback is trusted
        assert status == 200
        assert "default" in [ns["metadata"]["name"] for ns in body["items"]]
        root = server.root
        assert root.is_dir()
    finally:
        server.stop()
    assert not server.running
    assert kapi_threads() == []
    assert port_is_free(server.port)
    assert not root.exists()  # the temporary root is removed
    server.stop()  # idempotent


def test_context_manager_stops() -> None:
    with start_server() as server:
        assert isinstance(server, RunningServer)
        assert server.running
    assert not server.running
    assert kapi_threads() == []


def test_two_servers_are_independent() -> None:
    with start_server() as a, start_server() as b:
        assert a.port != b.port
        ns = a.create_namespace()
        assert a.request("GET", f"/api/v1/namespaces/{ns}")[0] == 200
        assert b.request("GET", f"/api/v1/namespaces/{ns}")[0] == 404


def test_kubeconfig_points_at_the_server_without_credentials() -> None:
    with start_server() as server:
        doc = yaml.safe_load(server.kubeconfig.read_text())
    assert doc["kind"] == "Config"
    current = doc["current-context"]
    context = next(c["context"] for c in doc["contexts"] if c["name"] == current)
    cluster = next(c["cluster"] for c in doc["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in doc["users"] if u["name"] == context["user"])
    assert cluster == {"server": server.url}
    assert user == {}


def test_write_kubeconfig_with_namespace(tmp_path: Path) -> None:
    path = write_kubeconfig(tmp_path / "sub" / "kc", "http://127.0.0.1:1", name="x", namespace="ns1")
    doc = yaml.safe_load(path.read_text())
    assert doc["current-context"] == "x"
    assert doc["contexts"] == [{"name": "x", "context": {"cluster": "x", "user": "x", "namespace": "ns1"}}]


def test_resources_files_and_directories_are_loaded(tmp_path: Path) -> None:
    with start_server(resources=[FOO_CRD]) as server:
        assert server.request("GET", "/apis/hello.zeng.dev/v1")[0] == 200
        assert server.request("GET", "/apis/restaurant.wukong.com")[0] == 404  # examples are off by default
    with start_server(resources=[SHIPPED]) as server:
        assert server.request("GET", "/apis/restaurant.wukong.com")[0] == 200
    with start_server(examples=True) as server:
        assert server.request("GET", "/apis/hello.zeng.dev/v1")[0] == 200


def test_bad_manifest_fails_before_any_thread_starts(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata: {name: x}\n")
    with pytest.raises(CRDError):
        start_server(resources=[bad])
    with pytest.raises(KapiStartError):
        start_server(resources=[tmp_path / "missing"])
    assert kapi_threads() == []


def test_file_backend_keeps_objects_under_the_given_root(tmp_path: Path) -> None:
    with start_server(backend="file", root=tmp_path / "root") as server:
        server.create_namespace("kept")
    assert (tmp_path / "root").is_dir()  # a root the caller chose is not removed
    with start_server(backend="file", root=tmp_path / "root") as server:
        assert server.request("GET", "/api/v1/namespaces/kept")[0] == 200


def test_namespaces_and_late_crds() -> None:
    with start_server() as server:
        ns = server.create_namespace()
        assert ns.startswith("test-")
        assert server.apply_crds(FOO_CRD) == ["foos.hello.zeng.dev"]
        assert server.apply_crds(FOO_CRD) == ["foos.hello.zeng.dev"]  # applying again replaces
        status, _ = server.request("POST", f"/apis/hello.zeng.dev/v1/namespaces/{ns}/foos", {
            "apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": "f"}, "spec": {"msg": "hi"}})
        assert status == 201
        server.delete_namespace(ns)
        server.delete_namespace("never-existed")  # a missing namespace is fine


def test_api_client_needs_no_credentials() -> None:
    kubernetes = pytest.importorskip("kubernetes")
    with start_server() as server, server.api_client() as api:
        names = [ns.metadata.name for ns in kubernetes.client.CoreV1Api(api).list_namespace().items]
    assert "default" in names



def test_logical_clusters_snapshots_and_faults_through_the_testing_api() -> None:
    with start_server() as kapi:
        with kapi.create_cluster("base") as base:
            assert base.url == f"{kapi.url}/clusters/base" and base.kubeconfig.is_file()
            base.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "seed"}, "data": {"a": "1"}})
            assert kapi.save_snapshot("seeded", cluster="base")["cluster"] == "base"
        assert kapi.request("GET", "/kapi/clusters/base")[0] == 404  # the with block deleted it
        assert kapi.has_snapshot("seeded") and not kapi.has_snapshot("nope")
        fork = kapi.create_cluster(snapshot="seeded")
        try:
            assert fork.request("GET", "/api/v1/namespaces/default/configmaps/seed")[1]["data"] == {"a": "1"}
            assert kapi.request("GET", "/api/v1/namespaces/default/configmaps/seed")[0] == 404
            fault = fork.faults.fail(500, verbs=["get"], resource="configmaps", count=1)
            assert [f["id"] for f in fork.faults.in_force()] == [fault]
            assert fork.request("GET", "/api/v1/namespaces/default/configmaps/seed")[0] == 500
            assert fork.request("GET", "/api/v1/namespaces/default/configmaps/seed")[0] == 200  # count was 1
            fork.faults.pause_storage()
            assert fork.request("GET", "/api/v1/namespaces")[0] == 503
            assert kapi.request("GET", "/api/v1/namespaces")[0] == 200  # the fault is the fork's alone
            fork.faults.resume_storage()
            assert fork.request("GET", "/api/v1/namespaces")[0] == 200
            assert fork.faults.expire_watches() == 0 and fork.faults.compact() > 0
        finally:
            fork.delete()
        with pytest.raises(RuntimeError, match="snapshots"):
            kapi.create_cluster(snapshot="nope")
        kapi.delete_snapshot("seeded")
        assert not kapi.has_snapshot("seeded")
