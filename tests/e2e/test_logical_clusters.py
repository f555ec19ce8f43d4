"""Logical clusters of one real `kapi start` (issue 22): `/clusters/<name>/…` is a cluster of its own.

Two clusters of one server hold the same names without meeting: objects, watches, RBAC and CRDs stay in
their cluster; deleting one leaves the others; a fork of a snapshot starts from the snapshot's fixed state
and its writes stay in the fork. Every test runs on the file backend, on etcd and on memory (the file
backend's restart test on file alone); kubectl reaches a cluster through `kapi kubeconfig --cluster`.

One server per backend serves the module (starting one costs about a second); each test makes clusters of
its own, with unique names, so the tests meet nothing of each other's.
"""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from kubernetes import client, watch

KUBECTL = "/usr/bin/kubectl"
ETCDCTL = "/usr/bin/etcdctl"
CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
GROUP = "isolation.kapi.dev"
WIDGETS = f"/apis/{GROUP}/v1/namespaces/default/widgets"
BOB_TOKEN = "e2e-logical-clusters-bob-token"

BACKENDS = ["file", "etcd", "memory"]

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": f"widgets.{GROUP}"},
    "spec": {
        "group": GROUP,
        "scope": "Namespaced",
        "names": {"kind": "Widget", "listKind": "WidgetList", "plural": "widgets", "singular": "widget"},
        "versions": [{"name": "v1", "served": True, "storage": True,
                      "schema": {"openAPIV3Schema": {"type": "object",
                                                     "x-kubernetes-preserve-unknown-fields": True}}}],
    },
}


# ---------------------------------------------------------------- servers

def _conftest(config: pytest.Config) -> Any:
    """tests/e2e/conftest.py as loaded by pytest (test modules cannot import it under importlib mode)."""
    for plugin in config.pluginmanager.get_plugins():
        if hasattr(plugin, "make_kapi") and hasattr(plugin, "etcd_args"):
            return plugin
    raise RuntimeError("tests/e2e/conftest.py is not loaded")


@pytest.fixture(scope="module", params=BACKENDS)
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A `kapi start` on each backend (etcd: a key prefix of its own on the session's etcd), with user bob."""
    conftest = _conftest(request.config)
    base = tmp_path_factory.mktemp(f"clusters-{request.param}")
    tokens = base / "tokens.csv"
    tokens.write_text(f"{BOB_TOKEN},bob,2001,\n")
    args = {"file": [], "memory": ["--backend", "memory"],
            "etcd": conftest.etcd_args(request.getfixturevalue("etcd"), f"/e2e-clusters-{uuid.uuid4().hex[:8]}")}
    kapi = conftest.make_kapi(base, *args[request.param], "--token-auth-file", str(tokens))
    kapi.backend = request.param
    kapi.start()
    yield kapi
    kapi.stop()


def unique(*prefixes: str) -> list[str]:
    """Cluster (or snapshot) names no other test uses: `<prefix>-<hex>`."""
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}" for prefix in prefixes]


def etcd_prefix(server: Any) -> str:
    return str(server.args[server.args.index("--etcd-prefix") + 1])


# ---------------------------------------------------------------- helpers

def wait_until(probe: Callable[[], Any], what: str, timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what} (last: {result!r})"
        time.sleep(0.05)


def new_cluster(c: httpx.Client, name: str, snapshot: str | None = None) -> dict[str, Any]:
    body = {"name": name, **({"snapshot": snapshot} if snapshot else {})}
    created = c.post("/kapi/clusters", json=body)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def configmap(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


def widget(name: str, size: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": size}}


def create(c: httpx.Client, path: str, body: dict[str, Any]) -> dict[str, Any]:
    created = c.post(path, json=body)
    assert created.status_code == 201, created.text
    return created.json()  # type: ignore[no-any-return]


def names(c: httpx.Client, path: str) -> list[str]:
    listed = c.get(path)
    assert listed.status_code == 200, listed.text
    return sorted(item["metadata"]["name"] for item in listed.json()["items"])


def add_crd(c: httpx.Client, prefix: str) -> None:
    """The Widget CRD in the cluster at `prefix`, waited for until its resource serves."""
    create(c, f"{prefix}/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    wait_until(lambda: c.get(f"{prefix}{WIDGETS}").status_code == 200, f"widgets served at {prefix or 'root'}")


def cluster_kubeconfig(server: Any, cluster: str, path: Path) -> Path:
    """`kapi kubeconfig --cluster` as a user runs it: it finds the instance by name under KAPI_HOME."""
    result = subprocess.run(
        [sys.executable, "-m", "kapi_cli.main", "kubeconfig", "--cluster", cluster, "--insecure-http",
         "-o", str(path), "--name", server.name],
        capture_output=True, text=True, timeout=30, env={**os.environ, "KAPI_HOME": str(server.kapi_home)})
    assert result.returncode == 0, result.stdout + result.stderr
    return path


def kubectl(kubeconfig: Path, cache: Path, *args: str, input: str | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    result = subprocess.run([KUBECTL, "--cache-dir", str(cache), *args], input=input, capture_output=True,
                            text=True, timeout=60, env=env)
    if check:
        assert result.returncode == 0, f"kubectl {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def api_client(server: Any, cluster: str | None = None, token: str | None = None) -> client.ApiClient:
    configuration = client.Configuration()
    configuration.host = server.url + (f"/clusters/{cluster}" if cluster else "")
    if token:
        configuration.api_key = {"authorization": f"Bearer {token}"}
    return client.ApiClient(configuration)


def cluster_names(c: httpx.Client) -> list[str]:
    listed = c.get("/kapi/clusters")
    assert listed.status_code == 200, listed.text
    return [entry["name"] for entry in listed.json()["clusters"]]


# ---------------------------------------------------------------- the same names in two clusters

def test_same_names_in_two_clusters_through_kubectl(server: Any, tmp_path: Path) -> None:
    a, b = unique("a", "b")
    with server.client() as c:
        assert new_cluster(c, a) == {"name": a, "path": f"/clusters/{a}"}
        new_cluster(c, b)
        listed = cluster_names(c)
        assert listed[0] == "root" and listed.index(a) < listed.index(b)
    configs = {name: cluster_kubeconfig(server, name, tmp_path / f"{name}.kubeconfig") for name in (a, b)}
    for name, path in configs.items():
        kubectl(path, tmp_path / f"cache-{name}", "create", "configmap", "x", f"--from-literal=owner={name}")
    for name, path in configs.items():
        got = kubectl(path, tmp_path / f"cache-{name}", "get", "configmap", "x", "-o", "jsonpath={.data.owner}")
        assert got.stdout == name
    missing = server.kubectl("get", "configmap", "x", check=False)  # the root holds none
    assert missing.returncode != 0 and 'configmaps "x" not found' in missing.stderr, missing.stderr
    with server.client() as c:
        assert "x" not in names(c, CONFIGMAPS)
        assert c.get(f"/clusters/{a}{CONFIGMAPS}/x").json()["data"] == {"owner": a}
        assert c.get(f"/clusters/{b}{CONFIGMAPS}/x").json()["data"] == {"owner": b}
        unknown = c.get(f"/clusters/nope-{a}{CONFIGMAPS}/x")
        assert unknown.status_code == 404 and unknown.json()["message"] == f'clusters "nope-{a}" not found'
        taken = c.post("/kapi/clusters", json={"name": a})
        assert taken.status_code == 409, taken.text
    # the kubeconfig's entries are named after the instance and the cluster, pointing at the cluster's path
    text = configs[a].read_text()
    assert f"server: {server.url}/clusters/{a}\n" in text and f"current-context: kapi-{server.name}-{a}\n" in text


# ---------------------------------------------------------------- watches

def test_a_watch_in_one_cluster_never_sees_another(server: Any) -> None:
    a, b = unique("a", "b")
    own = f"from-{a}"
    with server.client() as c:
        new_cluster(c, a)
        new_cluster(c, b)
    seen: list[tuple[str, str, dict[str, str]]] = []
    failure: list[BaseException] = []
    with api_client(server, a) as api_a:
        core_a = client.CoreV1Api(api_a)
        listed: Any = core_a.list_namespaced_config_map("default")
        since = listed.metadata.resource_version
        stream = watch.Watch()

        def follow() -> None:
            try:
                for event in stream.stream(core_a.list_namespaced_config_map, "default", resource_version=since,
                                           timeout_seconds=20):
                    obj = event["object"]
                    seen.append((event["type"], obj.metadata.name, obj.data or {}))
                    if obj.metadata.name == own:
                        stream.stop()
            except BaseException as exc:  # noqa: BLE001 - reported by the test thread
                failure.append(exc)

        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(0.3)  # its watch is open (and it starts at `since` anyway)
        with server.client() as c:
            for prefix, where in ((f"/clusters/{b}", b), ("", f"root-{a}")):
                create(c, prefix + CONFIGMAPS, configmap(f"from-{where}", where=where))
                create(c, prefix + CONFIGMAPS, configmap(f"shared-{a}", where=where))
                updated = c.patch(f"{prefix}{CONFIGMAPS}/shared-{a}", json={"data": {"touched": "yes"}},
                                  headers={"Content-Type": "application/merge-patch+json"})
                assert updated.status_code == 200, updated.text
                assert c.delete(f"{prefix}{CONFIGMAPS}/from-{where}").status_code == 200
                assert c.delete(f"{prefix}{CONFIGMAPS}/shared-{a}").status_code == 200
            create(c, f"/clusters/{a}{CONFIGMAPS}", configmap(own, where=a))
        follower.join(timeout=20)
        assert not follower.is_alive(), f"{a}'s watch never saw its own object; saw {seen}"
    assert not failure, failure
    assert seen == [("ADDED", own, {"where": a})]


# ---------------------------------------------------------------- RBAC

def test_rbac_in_one_cluster_does_not_apply_to_another(server: Any) -> None:
    a, b = unique("a", "b")
    bob = httpx.Client(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {BOB_TOKEN}"})
    pods = "/api/v1/namespaces/default/pods"
    with server.client() as c, bob:
        new_cluster(c, a)
        new_cluster(c, b)
        refused = bob.post("/kapi/clusters", json={"name": f"bobs-{a}"})  # the admin API is for administrators
        assert refused.status_code == 403, refused.text
        for prefix in (f"/clusters/{a}", f"/clusters/{b}", ""):
            assert bob.get(prefix + pods).status_code == 403
        create(c, f"/clusters/{a}/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings", {
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": {"name": "bob-views"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "bob"}]})
        wait_until(lambda: bob.get(f"/clusters/{a}{pods}").status_code == 200, f"bob may list pods in {a}")
        listed = bob.get(f"/clusters/{a}{pods}")
        assert listed.status_code == 200 and listed.json()["items"] == []
        assert bob.get(f"/clusters/{a}/api/v1/namespaces/kube-system/pods").status_code == 403  # default only
        assert bob.post(f"/clusters/{a}{CONFIGMAPS}", json=configmap("nope")).status_code == 403  # view: no writes
        for prefix in (f"/clusters/{b}", ""):
            denied = bob.get(prefix + pods)
            assert denied.status_code == 403, denied.text
            assert denied.json()["message"] == ('pods is forbidden: User "bob" cannot list resource "pods" '
                                                'in API group "" in the namespace "default"')
    with api_client(server, a, BOB_TOKEN) as api_a, api_client(server, b, BOB_TOKEN) as api_b:
        assert client.CoreV1Api(api_a).list_namespaced_pod("default").items == []
        with pytest.raises(client.ApiException) as caught:
            client.CoreV1Api(api_b).list_namespaced_pod("default")
        assert caught.value.status == 403


# ---------------------------------------------------------------- deleting a cluster

def etcd_keys(etcd: Any, key_prefix: str) -> list[str]:
    out = subprocess.run([ETCDCTL, "--endpoints", etcd.endpoints, "get", "--prefix", key_prefix, "--keys-only"],
                         capture_output=True, text=True, timeout=20, env={**os.environ, "ETCDCTL_API": "3"})
    assert out.returncode == 0, out.stderr
    return [line for line in out.stdout.splitlines() if line.strip()]


def test_deleting_one_cluster_leaves_the_other(server: Any, request: pytest.FixtureRequest) -> None:
    a, b = unique("a", "b")
    a2 = a + "2"  # a name that a's is a prefix of: deleting a leaves it be
    ours = (a, b, a2)
    clusters_dir = server.root / "clusters"
    with server.client() as c:
        for name in ours:
            new_cluster(c, name)
            create(c, f"/clusters/{name}{CONFIGMAPS}", configmap("x", owner=name))
        if server.backend == "file":
            assert {p.name for p in clusters_dir.iterdir()} >= set(ours)
        if server.backend == "etcd":
            etcd = request.getfixturevalue("etcd")
            keys_of = {name: f"{etcd_prefix(server)}-clusters/{name}/" for name in ours}
            assert f"{keys_of[a]}configmaps/default/x" in etcd_keys(etcd, keys_of[a])

        deleted = c.delete(f"/kapi/clusters/{a}")
        assert deleted.status_code == 200, deleted.text
        assert deleted.json()["name"] == a
        for path in (f"{CONFIGMAPS}/x", CONFIGMAPS, "/api", "/readyz", "/kapi/faults"):
            gone = c.get(f"/clusters/{a}{path}")
            assert gone.status_code == 404, (path, gone.text)
            assert gone.json()["message"] == f'clusters "{a}" not found'
        assert c.get(f"/kapi/clusters/{a}").status_code == 404
        assert c.delete(f"/kapi/clusters/{a}").status_code == 404
        listed = cluster_names(c)
        assert a not in listed and b in listed and a2 in listed
        for name in (b, a2):
            kept = c.get(f"/clusters/{name}{CONFIGMAPS}/x")
            assert kept.status_code == 200 and kept.json()["data"] == {"owner": name}
        assert c.delete("/kapi/clusters/root").status_code == 405
        if server.backend == "file":
            left = {p.name for p in clusters_dir.iterdir()}
            assert a not in left and {b, a2} <= left
        if server.backend == "etcd":
            assert etcd_keys(etcd, keys_of[a]) == []
            assert f"{keys_of[b]}configmaps/default/x" in etcd_keys(etcd, keys_of[b])
            assert f"{keys_of[a2]}configmaps/default/x" in etcd_keys(etcd, keys_of[a2])

        new_cluster(c, a)  # the name is free again, and the new cluster starts empty
        assert c.get(f"/clusters/{a}{CONFIGMAPS}/x").status_code == 404
        assert c.get(f"/clusters/{a}/api/v1/namespaces/default").status_code == 200


# ---------------------------------------------------------------- forks of a snapshot

def test_forks_of_a_snapshot_do_not_share_writes(server: Any) -> None:
    base, f1, f2, f3, f4, prepared = unique("base", "f1", "f2", "f3", "f4", "prepared")
    with server.client() as c:
        new_cluster(c, base)
        add_crd(c, f"/clusters/{base}")
        for name, size in (("keep", 1), ("change", 2), ("drop", 3)):
            create(c, f"/clusters/{base}{WIDGETS}", widget(name, size))
        create(c, f"/clusters/{base}{CONFIGMAPS}", configmap("settings", mode="base"))
        saved = c.post("/kapi/snapshots", json={"name": prepared, "cluster": base})
        assert saved.status_code == 201, saved.text
        assert saved.json()["cluster"] == base and saved.json()["objects"] > 0
        assert new_cluster(c, f1, prepared) == {"name": f1, "path": f"/clusters/{f1}", "snapshot": prepared}
        new_cluster(c, f2, prepared)

        for fork in (f1, f2):  # each starts as the snapshot: the CRD serves, the objects are there
            assert names(c, f"/clusters/{fork}{WIDGETS}") == ["change", "drop", "keep"]
            assert c.get(f"/clusters/{fork}{CONFIGMAPS}/settings").json()["data"] == {"mode": "base"}
            assert c.get(f"/clusters/{fork}/apis/{GROUP}/v1").status_code == 200

        changed = c.patch(f"/clusters/{f1}{WIDGETS}/change", json={"spec": {"size": 20}},
                          headers={"Content-Type": "application/merge-patch+json"})
        assert changed.status_code == 200, changed.text
        assert c.delete(f"/clusters/{f1}{WIDGETS}/drop").status_code == 200
        create(c, f"/clusters/{f1}{WIDGETS}", widget("new", 4))
        mode = c.patch(f"/clusters/{f2}{CONFIGMAPS}/settings", json={"data": {"mode": "f2"}},
                       headers={"Content-Type": "application/merge-patch+json"})
        assert mode.status_code == 200, mode.text

        assert names(c, f"/clusters/{f1}{WIDGETS}") == ["change", "keep", "new"]
        assert c.get(f"/clusters/{f1}{WIDGETS}/change").json()["spec"] == {"size": 20}
        for other in (base, f2):
            assert names(c, f"/clusters/{other}{WIDGETS}") == ["change", "drop", "keep"]
            assert c.get(f"/clusters/{other}{WIDGETS}/change").json()["spec"] == {"size": 2}
        assert c.get(f"/clusters/{f1}{CONFIGMAPS}/settings").json()["data"] == {"mode": "base"}
        assert c.get(f"/clusters/{base}{CONFIGMAPS}/settings").json()["data"] == {"mode": "base"}
        assert c.get(f"/clusters/{f2}{CONFIGMAPS}/settings").json()["data"] == {"mode": "f2"}
        assert c.get(f"/apis/{GROUP}/v1").status_code == 404  # the root never had the CRD

        # writes to base after the snapshot: the snapshot is a fixed state, new forks do not get them
        create(c, f"/clusters/{base}{WIDGETS}", widget("late", 5))
        assert c.delete(f"/clusters/{base}{WIDGETS}/keep").status_code == 200
        new_cluster(c, f3, prepared)
        assert names(c, f"/clusters/{f3}{WIDGETS}") == ["change", "drop", "keep"]
        assert c.get(f"/clusters/{f3}{WIDGETS}/change").json()["spec"] == {"size": 2}
        assert names(c, f"/clusters/{base}{WIDGETS}") == ["change", "drop", "late"]

        # a fork's copy of the CRD is its own: deleting it there leaves the other clusters serving widgets
        dropped = c.delete(f"/clusters/{f3}/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.{GROUP}")
        assert dropped.status_code == 200, dropped.text
        wait_until(lambda: c.get(f"/clusters/{f3}{WIDGETS}").status_code == 404, f"widgets gone from {f3}")
        for other in (base, f1, f2):
            assert c.get(f"/clusters/{other}{WIDGETS}").status_code == 200

        unknown = c.post("/kapi/clusters", json={"name": f4, "snapshot": f"missing-{prepared}"})
        assert unknown.status_code == 404, unknown.text
        assert unknown.json()["message"] == f'snapshots "missing-{prepared}" not found'


# ---------------------------------------------------------------- CRDs

def test_crds_are_per_cluster(server: Any, tmp_path: Path) -> None:
    a, b = unique("a", "b")
    with server.client() as c:
        new_cluster(c, a)
        new_cluster(c, b)
        add_crd(c, f"/clusters/{a}")
        groups = [g["name"] for g in c.get(f"/clusters/{a}/apis").json()["groups"]]
        assert GROUP in groups
        resources = c.get(f"/clusters/{a}/apis/{GROUP}/v1").json()["resources"]
        assert [r["name"] for r in resources] == ["widgets"]
        create(c, f"/clusters/{a}{WIDGETS}", widget("w", 1))
        for prefix in (f"/clusters/{b}", ""):
            assert GROUP not in [g["name"] for g in c.get(f"{prefix}/apis").json()["groups"]]
            for path in (f"/apis/{GROUP}/v1", f"/apis/{GROUP}", WIDGETS):
                assert c.get(prefix + path).status_code == 404, (prefix, path)
            crds = c.get(f"{prefix}/apis/apiextensions.k8s.io/v1/customresourcedefinitions").json()["items"]
            assert f"widgets.{GROUP}" not in [crd["metadata"]["name"] for crd in crds]
            refused = c.post(prefix + WIDGETS, json=widget("w", 1))
            assert refused.status_code == 404, refused.text
    configs = {name: cluster_kubeconfig(server, name, tmp_path / f"{name}.kubeconfig") for name in (a, b)}
    in_a = kubectl(configs[a], tmp_path / "cache-a", "api-resources", f"--api-group={GROUP}", "-o", "name")
    assert in_a.stdout.split() == [f"widgets.{GROUP}"]
    in_b = kubectl(configs[b], tmp_path / "cache-b", "api-resources", f"--api-group={GROUP}", "-o", "name")
    assert in_b.stdout.split() == []
    got = kubectl(configs[b], tmp_path / "cache-b", "get", "widgets", check=False)
    assert got.returncode != 0 and 'the server doesn\'t have a resource type "widgets"' in got.stderr, got.stderr


# ---------------------------------------------------------------- restarts

@pytest.mark.parametrize("backend", ["file", "etcd"])
def test_a_cluster_survives_a_restart(kapi_factory: Any, backend: str) -> None:
    # a server of its own: the module's is not restarted under the other tests
    server = kapi_factory(etcd_prefix=f"/kapi-restart-{uuid.uuid4().hex[:8]}") if backend == "etcd" else kapi_factory()
    with server.client() as c:
        new_cluster(c, "a")
        new_cluster(c, "b")
        add_crd(c, "/clusters/a")
        create(c, f"/clusters/a{WIDGETS}", widget("w", 7))
        create(c, f"/clusters/a{CONFIGMAPS}", configmap("x", owner="a"))
        create(c, f"/clusters/b{CONFIGMAPS}", configmap("x", owner="b"))
        before = c.get(f"/clusters/a{CONFIGMAPS}/x").json()["metadata"]
        listed_before = names(c, f"/clusters/a{CONFIGMAPS}")
    server.restart()
    with server.client() as c:
        assert cluster_names(c) == ["root", "a", "b"]
        kept = c.get(f"/clusters/a{CONFIGMAPS}/x")
        assert kept.status_code == 200, kept.text
        assert kept.json()["data"] == {"owner": "a"}
        assert kept.json()["metadata"]["uid"] == before["uid"]
        assert kept.json()["metadata"]["resourceVersion"] == before["resourceVersion"]
        taken = c.post("/kapi/clusters", json={"name": "a"})  # kept, so taken: never silently reused
        assert taken.status_code == 409, taken.text
        assert c.get(f"/clusters/b{CONFIGMAPS}/x").json()["data"] == {"owner": "b"}
        assert c.get(f"/clusters/a{WIDGETS}/w").json()["spec"] == {"size": 7}  # its CRD serves again
        assert c.get(f"/clusters/b{WIDGETS}").status_code == 404
        assert c.get(f"{CONFIGMAPS}/x").status_code == 404
        create(c, f"/clusters/a{CONFIGMAPS}", configmap("after", owner="a"))  # and it takes writes
        assert names(c, f"/clusters/a{CONFIGMAPS}") == sorted([*listed_before, "after"])
