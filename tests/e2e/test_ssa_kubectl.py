"""Server-side apply, managedFields and server-side dry-run, driven by the real kubectl.

Every expected output line, exit code and managedFields entry here was first observed with the same
kubectl against a real kube-apiserver: kapi must be indistinguishable. Each test takes a `Target`
(anything with `kubectl()` and `client()`, as `KapiProcess` has) and a namespace, so that the very
same functions can be run against kube-apiserver from a scratch script.
"""
from __future__ import annotations

import json
import subprocess
import threading
import time
import uuid
from typing import Any, Callable, Iterator, Protocol

import httpx
import pytest


class Target(Protocol):
    """A server that kubectl and an HTTP client can reach: `KapiProcess`, or a kube-apiserver."""

    def kubectl(self, *args: str, input: str | None = None,
                check: bool = True) -> subprocess.CompletedProcess[str]: ...

    def client(self) -> httpx.Client: ...


# ---------------------------------------------------------------- helpers

@pytest.fixture
def ns(kapi: Target) -> str:
    return new_namespace(kapi)


def new_namespace(target: Target) -> str:
    name = f"e2e-kc-{uuid.uuid4().hex[:6]}"
    target.kubectl("create", "namespace", name)
    return name


def configmap(ns: str, name: str, data: dict[str, str]) -> str:
    """A manifest as JSON (which is YAML): no YAML 1.1 surprises such as a name `n` read as false."""
    return json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns},
                       "data": data})


def ssa(target: Target, manifest: str, *flags: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return target.kubectl("apply", "--server-side", "-f", "-", *flags, input=manifest, check=check)


def get(target: Target, kind: str, name: str, ns: str) -> dict[str, Any]:
    out = target.kubectl("get", kind, name, "-n", ns, "-o", "json", "--show-managed-fields").stdout
    return dict(json.loads(out))


def managers(obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """managedFields by manager name (`name/subresource` for a subresource's entry)."""
    entries = obj["metadata"].get("managedFields") or []
    return {e["manager"] + (f"/{e['subresource']}" if e.get("subresource") else ""): e for e in entries}


def first_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0, f"kubectl succeeded: {result.stdout}"
    return result.stderr.splitlines()[0]


def not_found(target: Target, kind: str, name: str, ns: str) -> bool:
    result = target.kubectl("get", kind, name, "-n", ns, check=False)
    return result.returncode == 1 and "(NotFound)" in result.stderr


# ---------------------------------------------------------------- apply, conflicts, removal

def test_apply_creates_then_updates_and_records_the_manager(kapi: Target, ns: str) -> None:
    """kubectl's default manager `kubectl` owns exactly the keys it applied, as an Apply entry."""
    out = ssa(kapi, configmap(ns, "x", {"a": "1", "b": "2"})).stdout
    assert out == "configmap/x serverside-applied\n"
    out = ssa(kapi, configmap(ns, "x", {"a": "10", "b": "2"})).stdout
    assert out == "configmap/x serverside-applied\n"
    obj = get(kapi, "configmap", "x", ns)
    assert obj["data"] == {"a": "10", "b": "2"}
    entry = managers(obj)["kubectl"]
    assert list(managers(obj)) == ["kubectl"]
    assert (entry["operation"], entry["apiVersion"], entry["fieldsType"]) == ("Apply", "v1", "FieldsV1")
    assert entry["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}}}
    assert "time" in entry
    # without --show-managed-fields kubectl hides them
    plain = json.loads(kapi.kubectl("get", "configmap", "x", "-n", ns, "-o", "json").stdout)
    assert "managedFields" not in plain["metadata"]


def test_conflict_names_field_and_manager_then_force_moves_ownership(kapi: Target, ns: str) -> None:
    """Equal values are co-owned silently; a different value conflicts until --force-conflicts."""
    ssa(kapi, configmap(ns, "x", {"a": "1", "b": "2"}))
    rv = get(kapi, "configmap", "x", ns)["metadata"]["resourceVersion"]
    other = configmap(ns, "x", {"a": "99", "b": "2"})
    result = ssa(kapi, other, "--field-manager", "other", check=False)
    assert result.returncode == 1
    assert first_error_line(result) == 'error: Apply failed with 1 conflict: conflict with "kubectl": .data.a'
    assert "--force-conflicts" in result.stderr
    assert "server-side-apply/#conflicts" in result.stderr
    obj = get(kapi, "configmap", "x", ns)
    assert (obj["data"]["a"], obj["metadata"]["resourceVersion"]) == ("1", rv)
    assert list(managers(obj)) == ["kubectl"]

    out = ssa(kapi, other, "--field-manager", "other", "--force-conflicts").stdout
    assert out == "configmap/x serverside-applied\n"
    obj = get(kapi, "configmap", "x", ns)
    assert obj["data"] == {"a": "99", "b": "2"}
    owned = {name: e["fieldsV1"] for name, e in managers(obj).items()}
    assert owned == {"kubectl": {"f:data": {"f:b": {}}}, "other": {"f:data": {"f:a": {}, "f:b": {}}}}
    assert managers(obj)["other"]["operation"] == "Apply"


def test_a_key_dropped_from_the_manifest_is_removed_unless_someone_else_owns_it(kapi: Target, ns: str) -> None:
    """Apply removes what its manager alone stopped applying; a co-owned key stays until both drop it."""
    ssa(kapi, configmap(ns, "x", {"a": "1", "b": "2", "c": "3"}))
    ssa(kapi, configmap(ns, "x", {"a": "1", "b": "2"}))
    assert get(kapi, "configmap", "x", ns)["data"] == {"a": "1", "b": "2"}

    ssa(kapi, configmap(ns, "x", {"b": "2"}), "--field-manager", "other")  # co-owns b
    ssa(kapi, configmap(ns, "x", {"a": "1"}))
    assert get(kapi, "configmap", "x", ns)["data"] == {"a": "1", "b": "2"}
    ssa(kapi, configmap(ns, "x", {}), "--field-manager", "other")
    obj = get(kapi, "configmap", "x", ns)
    assert obj["data"] == {"a": "1"}
    assert managers(obj)["kubectl"]["fieldsV1"] == {"f:data": {"f:a": {}}}
    ssa(kapi, configmap(ns, "x", {}))
    obj = get(kapi, "configmap", "x", ns)
    assert "data" not in obj  # an empty data map is not serialized
    assert managers(obj)["kubectl"]["fieldsV1"] == {"f:data": {}}  # yet kube keeps the emptied map owned
    bare = json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x", "namespace": ns}})
    ssa(kapi, bare)
    assert list(managers(get(kapi, "configmap", "x", ns))) == ["other"]  # an entry owning nothing is dropped
    ssa(kapi, bare, "--field-manager", "other")
    assert "managedFields" not in get(kapi, "configmap", "x", ns)["metadata"]


# ---------------------------------------------------------------- kubectl diff

def changed_lines(diff: str) -> list[str]:
    return [line for line in diff.splitlines()
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_diff_uses_server_dry_run_and_changes_nothing(kapi: Target, ns: str) -> None:
    """diff exits 1 with exactly the changed value (no resourceVersion bump), 0 when equal; nothing is stored."""
    ssa(kapi, configmap(ns, "d", {"k": "one"}))
    rv = get(kapi, "configmap", "d", ns)["metadata"]["resourceVersion"]
    same = kapi.kubectl("diff", "-f", "-", input=configmap(ns, "d", {"k": "one"}), check=False)
    assert (same.returncode, same.stdout, same.stderr) == (0, "", "")
    for flags in ((), ("--server-side",)):
        changed = kapi.kubectl("diff", *flags, "-f", "-", input=configmap(ns, "d", {"k": "two"}), check=False)
        assert changed.returncode == 1, changed.stderr
        assert f"v1.ConfigMap.{ns}.d" in changed.stdout
        assert changed_lines(changed.stdout) == ["-  k: one", "+  k: two"]
    created = kapi.kubectl("diff", "-f", "-", input=configmap(ns, "brand-new", {"k": "v"}), check=False)
    assert created.returncode == 1, created.stderr
    assert {"+  k: v", "+  name: brand-new", f"+  namespace: {ns}"} <= set(changed_lines(created.stdout))
    assert not [line for line in changed_lines(created.stdout) if line.startswith("-")]

    obj = get(kapi, "configmap", "d", ns)
    assert (obj["data"], obj["metadata"]["resourceVersion"]) == ({"k": "one"}, rv)
    assert not_found(kapi, "configmap", "brand-new", ns)


# ---------------------------------------------------------------- --dry-run=server and watch

class Watcher:
    """A namespace's ConfigMap watch events from a resourceVersion on, read by a thread over streaming HTTP."""

    def __init__(self, target: Target, ns: str, resource_version: str) -> None:
        self.events: list[tuple[str, str]] = []
        self.error: BaseException | None = None
        self._client = target.client()
        self._path = f"/api/v1/namespaces/{ns}/configmaps"
        self._params = {"watch": "1", "resourceVersion": resource_version, "timeoutSeconds": "60"}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with self._client.stream("GET", self._path, params=self._params,
                                     timeout=httpx.Timeout(10.0, read=None)) as response:
                response.raise_for_status()
                for line in response.iter_lines():
                    if line.strip():
                        event = json.loads(line)
                        self.events.append((event["type"], event["object"]["metadata"].get("name", "")))
        except BaseException as exc:  # reported by wait_for; closing the client ends the read here
            self.error = exc

    def wait_for(self, predicate: Callable[[tuple[str, str]], bool], timeout: float = 20.0) -> list[tuple[str, str]]:
        """All events seen up to the first one matching, which must come within `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, event in enumerate(self.events):
                if predicate(event):
                    return self.events[:i + 1]
            if self.error is not None or not self._thread.is_alive():
                raise AssertionError(f"watch ended ({self.error!r}); events {self.events}")
            time.sleep(0.02)
        raise AssertionError(f"no matching event within {timeout}s; events {self.events}")

    def close(self) -> None:
        self._client.close()


@pytest.fixture
def watch_from() -> Iterator[Callable[[Target, str, str], Watcher]]:
    started: list[Watcher] = []

    def start(target: Target, ns: str, resource_version: str) -> Watcher:
        started.append(Watcher(target, ns, resource_version))
        return started[-1]

    yield start
    for watcher in started:
        watcher.close()


def test_dry_run_server_writes_report_success_store_nothing_and_emit_no_event(
        kapi: Target, ns: str, watch_from: Callable[[Target, str, str], Watcher]) -> None:
    """Every kubectl write verb with --dry-run=server answers as if done, yet the store and watchers never see it."""
    ssa(kapi, configmap(ns, "live", {"k": "one"}))
    with kapi.client() as c:
        listed = c.get(f"/api/v1/namespaces/{ns}/configmaps")
    assert listed.status_code == 200, listed.text
    rv = listed.json()["metadata"]["resourceVersion"]
    watcher = watch_from(kapi, ns, rv)

    dry = ("--dry-run=server",)
    k = kapi.kubectl
    ghost, changed = configmap(ns, "ghost", {"k": "boo"}), configmap(ns, "live", {"k": "two"})
    assert k("create", "-f", "-", *dry, input=ghost).stdout == "configmap/ghost created (server dry run)\n"
    assert ssa(kapi, ghost, *dry).stdout == "configmap/ghost serverside-applied (server dry run)\n"
    assert k("create", "configmap", "ghost2", "-n", ns, "--from-literal", "a=b", *dry).stdout == \
        "configmap/ghost2 created (server dry run)\n"
    assert ssa(kapi, changed, *dry).stdout == "configmap/live serverside-applied (server dry run)\n"
    assert k("replace", "-f", "-", *dry, input=changed).stdout == "configmap/live replaced (server dry run)\n"
    # kubectl patch prints no "(server dry run)" suffix, even though it sends dryRun=All
    assert k("patch", "configmap", "live", "-n", ns, "--type", "merge", "-p", '{"data":{"k":"p"}}',
             *dry).stdout == "configmap/live patched\n"
    assert k("label", "configmap", "live", "-n", ns, "x=y", *dry).stdout == \
        "configmap/live labeled (server dry run)\n"
    assert k("delete", "configmap", "live", "-n", ns, *dry).stdout == 'configmap "live" deleted (server dry run)\n'

    live = get(kapi, "configmap", "live", ns)
    assert (live["data"], live["metadata"]["resourceVersion"]) == ({"k": "one"}, rv)
    assert "labels" not in live["metadata"]
    assert not_found(kapi, "configmap", "ghost", ns) and not_found(kapi, "configmap", "ghost2", ns)

    k("create", "configmap", "sentinel", "-n", ns)
    seen = watcher.wait_for(lambda event: event[1] == "sentinel")
    assert seen == [("ADDED", "sentinel")], "a dry-run write reached the watch"
    k("delete", "configmap", "live", "-n", ns)
    assert watcher.wait_for(lambda event: event == ("DELETED", "live"))[-2:] == [
        ("ADDED", "sentinel"), ("DELETED", "live")]


# ---------------------------------------------------------------- client-side apply → server-side apply

def test_server_side_apply_takes_over_from_client_side_apply(kapi: Target, ns: str) -> None:
    """Manager `kubectl` takes fields from kubectl-client-side-apply without a conflict; other managers may not."""
    manifest = configmap(ns, "mig", {"k": "one", "j": "x"})
    assert kapi.kubectl("apply", "-f", "-", input=manifest).stdout == "configmap/mig created\n"
    obj = get(kapi, "configmap", "mig", ns)
    assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]
    csa = managers(obj)["kubectl-client-side-apply"]
    assert csa["operation"] == "Update"
    assert csa["fieldsV1"]["f:data"] == {".": {}, "f:j": {}, "f:k": {}}

    bumped = configmap(ns, "mig", {"k": "two", "j": "x"})
    result = ssa(kapi, bumped, "--field-manager", "other", check=False)
    assert first_error_line(result) == ('error: Apply failed with 1 conflict: conflict with '
                                        '"kubectl-client-side-apply" using v1: .data.k')

    assert ssa(kapi, bumped).stdout == "configmap/mig serverside-applied\n"
    obj = get(kapi, "configmap", "mig", ns)
    assert obj["data"] == {"k": "two", "j": "x"}
    last = json.loads(obj["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"])
    assert last["data"] == {"k": "two", "j": "x"}
    owners = managers(obj)
    assert set(owners) == {"kubectl", "kubectl-last-applied"}
    assert (owners["kubectl"]["operation"], owners["kubectl"]["fieldsV1"]) == (
        "Apply", {"f:data": {"f:j": {}, "f:k": {}}})
    assert owners["kubectl-last-applied"]["operation"] == "Apply"
    assert owners["kubectl-last-applied"]["fieldsV1"] == {
        "f:metadata": {"f:annotations": {"f:kubectl.kubernetes.io/last-applied-configuration": {}}}}


# ---------------------------------------------------------------- Deployment: create, apply, scale

def deployment(ns: str, replicas: int) -> str:
    return json.dumps({
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": ns},
        "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": "web"}},
                 "template": {"metadata": {"labels": {"app": "web"}},
                              "spec": {"containers": [{"name": "nginx", "image": "nginx"}]}}}})


def test_deployment_replicas_conflict_with_kubectl_create_and_kubectl_scale(kapi: Target, ns: str) -> None:
    """`kubectl create` owns every defaulted field via an Update; `kubectl scale` owns replicas via /scale."""
    k = kapi.kubectl
    assert k("create", "deployment", "web", "--image", "nginx", "-n", ns).stdout == "deployment.apps/web created\n"
    created = managers(get(kapi, "deployment", "web", ns))["kubectl-create"]
    assert created["operation"] == "Update"
    assert {"f:replicas", "f:selector", "f:strategy", "f:template"} <= set(created["fieldsV1"]["f:spec"])

    result = ssa(kapi, deployment(ns, 3), "--field-manager", "deployer", check=False)
    assert first_error_line(result) == ('error: Apply failed with 1 conflict: conflict with "kubectl-create" '
                                        'using apps/v1: .spec.replicas')
    assert get(kapi, "deployment", "web", ns)["spec"]["replicas"] == 1

    out = ssa(kapi, deployment(ns, 3), "--field-manager", "deployer", "--force-conflicts").stdout
    assert out == "deployment.apps/web serverside-applied\n"
    obj = get(kapi, "deployment", "web", ns)
    assert obj["spec"]["replicas"] == 3
    owners = managers(obj)
    assert "f:replicas" in owners["deployer"]["fieldsV1"]["f:spec"]
    assert "f:replicas" not in owners["kubectl-create"]["fieldsV1"]["f:spec"]
    assert owners["deployer"]["fieldsV1"]["f:spec"]["f:template"]["f:spec"]["f:containers"] == {
        'k:{"name":"nginx"}': {".": {}, "f:image": {}, "f:name": {}}}

    assert k("scale", "deployment", "web", "-n", ns, "--replicas", "5").stdout == "deployment.apps/web scaled\n"
    obj = get(kapi, "deployment", "web", ns)
    assert obj["spec"]["replicas"] == 5
    scaled = managers(obj)["kubectl/scale"]
    assert (scaled["operation"], scaled["fieldsV1"]) == ("Update", {"f:spec": {"f:replicas": {}}})
    assert "f:replicas" not in managers(obj)["deployer"]["fieldsV1"]["f:spec"]

    result = ssa(kapi, deployment(ns, 3), "--field-manager", "deployer", check=False)
    assert first_error_line(result) == ('error: Apply failed with 1 conflict: conflict with "kubectl" with '
                                        'subresource "scale" using apps/v1: .spec.replicas')


# ---------------------------------------------------------------- a custom resource with a list-type map

CRD_NAME = "gateways.e2essa.kapi.test"
CRD = json.dumps({
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD_NAME},
    "spec": {"group": "e2essa.kapi.test", "scope": "Namespaced",
             "names": {"plural": "gateways", "singular": "gateway", "kind": "Gateway", "listKind": "GatewayList"},
             "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {"spec": {"type": "object", "properties": {
                     "owner": {"type": "string"},
                     "listeners": {"type": "array", "x-kubernetes-list-type": "map",
                                   "x-kubernetes-list-map-keys": ["name"],
                                   "items": {"type": "object", "required": ["name"], "properties": {
                                       "name": {"type": "string"}, "port": {"type": "integer"}}}}}}}}}}]}})


def gateway(ns: str, spec: dict[str, Any]) -> str:
    return json.dumps({"apiVersion": "e2essa.kapi.test/v1", "kind": "Gateway",
                       "metadata": {"name": "gw", "namespace": ns}, "spec": spec})


def test_custom_resource_list_map_items_are_owned_per_key(kapi: Target, ns: str) -> None:
    """Two managers each apply one listener: both kept, each owns its `k:{"name":...}` item and conflicts name it."""
    out = ssa(kapi, CRD).stdout
    assert out == f"customresourcedefinition.apiextensions.k8s.io/{CRD_NAME} serverside-applied\n"
    kapi.kubectl("wait", "--for", "condition=established", f"crd/{CRD_NAME}", "--timeout=30s")

    http = {"name": "http", "port": 80}
    out = ssa(kapi, gateway(ns, {"owner": "team-a", "listeners": [http]})).stdout
    assert out == "gateway.e2essa.kapi.test/gw serverside-applied\n"
    https = {"name": "https", "port": 443}
    ssa(kapi, gateway(ns, {"listeners": [https]}), "--field-manager", "team-b")
    obj = get(kapi, "gateway", "gw", ns)
    assert obj["spec"] == {"owner": "team-a", "listeners": [http, https]}
    item: dict[str, Any] = {".": {}, "f:name": {}, "f:port": {}}
    owned = {name: e["fieldsV1"] for name, e in managers(obj).items()}
    assert owned == {
        "kubectl": {"f:spec": {"f:owner": {}, "f:listeners": {'k:{"name":"http"}': item}}},
        "team-b": {"f:spec": {"f:listeners": {'k:{"name":"https"}': item}}}}

    result = ssa(kapi, gateway(ns, {"listeners": [https, {"name": "http", "port": 8080}]}),
                 "--field-manager", "team-b", check=False)
    assert first_error_line(result) == ('error: Apply failed with 1 conflict: conflict with "kubectl": '
                                        '.spec.listeners[name="http"].port')

    ssa(kapi, gateway(ns, {"owner": "team-a"}))
    obj = get(kapi, "gateway", "gw", ns)
    assert obj["spec"] == {"owner": "team-a", "listeners": [https]}
    assert managers(obj)["kubectl"]["fieldsV1"] == {"f:spec": {"f:owner": {}}}
