"""Issue 7 item 1: configmaps, secrets, serviceaccounts, events and leases driven by real kubectl."""
from __future__ import annotations

import base64
import json

import yaml


def get_json(kapi, *args: str) -> dict:
    return json.loads(kapi.kubectl("get", *args, "-o", "json").stdout)


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_discovery_lists_core_resources(kapi) -> None:
    rows = {line.split()[0]: line.split() for line in kapi.kubectl("api-resources").stdout.splitlines()[1:]}
    assert rows["configmaps"] == ["configmaps", "cm", "v1", "true", "ConfigMap"]
    assert rows["secrets"] == ["secrets", "v1", "true", "Secret"]
    assert rows["serviceaccounts"] == ["serviceaccounts", "sa", "v1", "true", "ServiceAccount"]
    assert rows["leases"] == ["leases", "coordination.k8s.io/v1", "true", "Lease"]
    groups = kapi.kubectl("api-resources", "--api-group", "events.k8s.io", "-o", "name").stdout.split()
    assert groups == ["events.events.k8s.io"]


def test_create_configmap_and_secret_protobuf(kapi) -> None:
    assert "configmap/x created" in kapi.kubectl("create", "configmap", "x", "--from-literal=a=b").stdout
    assert get_json(kapi, "cm", "x")["data"] == {"a": "b"}
    assert "secret/s created" in kapi.kubectl("create", "secret", "generic", "s", "--from-literal=p=q").stdout
    stored = get_json(kapi, "secret", "s")
    assert stored["data"] == {"p": b64("q")} and stored["type"] == "Opaque"
    assert "generation" not in stored["metadata"]  # as kube-apiserver: core types carry none
    out = kapi.kubectl("create", "secret", "tls", "t", "--cert=/dev/null", "--key=/dev/null", check=False)
    assert out.returncode != 0  # kubectl itself refuses empty PEM files; nothing reaches the server


def test_create_serviceaccount_protobuf(kapi) -> None:
    assert "serviceaccount/robot created" in kapi.kubectl("create", "serviceaccount", "robot").stdout
    assert get_json(kapi, "sa", "robot")["metadata"]["name"] == "robot"


def test_get_many_kinds_as_tables(kapi) -> None:
    sa = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "robot2", "namespace": "default"}}
    kapi.kubectl("apply", "-f", "-", input=json.dumps(sa))
    out = kapi.kubectl("get", "cm,secret,sa,leases").stdout
    assert "configmap/x" in out and "secret/s" in out and "serviceaccount/robot2" in out
    secrets = kapi.kubectl("get", "secrets").stdout.splitlines()
    assert secrets[0].split() == ["NAME", "TYPE", "DATA", "AGE"]
    assert secrets[1].split()[:3] == ["s", "Opaque", "1"]
    configmaps = kapi.kubectl("get", "configmaps", "x").stdout.splitlines()
    assert configmaps[0].split() == ["NAME", "DATA", "AGE"] and configmaps[1].split()[:2] == ["x", "1"]


def test_apply_secret_with_string_data(kapi) -> None:
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "applied", "namespace": "default"},
                "stringData": {"user": "admin"}, "data": {"token": b64("abc")}}
    assert "secret/applied created" in kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest)).stdout
    stored = get_json(kapi, "secret", "applied")
    assert stored["data"] == {"user": b64("admin"), "token": b64("abc")} and "stringData" not in stored
    manifest["stringData"] = {"user": "root"}
    assert "secret/applied configured" in kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(manifest)).stdout
    assert get_json(kapi, "secret", "applied")["data"]["user"] == b64("root")


def test_bad_base64_is_a_bad_request(kapi) -> None:
    manifest = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "bad"}, "data": {"u": "billy"}}
    out = kapi.kubectl("create", "-f", "-", input=json.dumps(manifest), check=False)
    assert out.returncode != 0
    assert "Error from server (BadRequest)" in out.stderr
    assert 'cannot be handled as a Secret: illegal base64 data at input byte 4' in out.stderr


def test_lease_create_and_update(kapi) -> None:
    lease = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
             "metadata": {"name": "leader", "namespace": "kube-system"},
             "spec": {"holderIdentity": "one", "leaseDurationSeconds": 15,
                      "renewTime": "2024-01-01T00:00:00.000000Z"}}
    kapi.kubectl("create", "-f", "-", input=json.dumps(lease))
    created = get_json(kapi, "lease", "leader", "-n", "kube-system")
    created["spec"]["holderIdentity"] = "two"
    created["spec"]["leaseTransitions"] = 1
    kapi.kubectl("replace", "-f", "-", input=json.dumps(created))
    rows = kapi.kubectl("get", "leases", "-n", "kube-system").stdout.splitlines()
    assert rows[0].split() == ["NAME", "HOLDER", "AGE"] and rows[1].split()[:2] == ["leader", "two"]
    stale = dict(created, spec={**created["spec"], "holderIdentity": "three"})
    out = kapi.kubectl("replace", "-f", "-", input=json.dumps(stale), check=False)
    assert out.returncode != 0 and "Conflict" in out.stderr


def test_configmap_in_missing_namespace_is_not_found(kapi) -> None:
    out = kapi.kubectl("create", "configmap", "y", "-n", "nowhere", "--from-literal=a=b", check=False)
    assert out.returncode != 0
    assert 'namespaces "nowhere" not found' in out.stderr


def test_events_k8s_io(kapi) -> None:
    event = {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1", "namespace": "default"},
             "eventTime": "2024-01-01T00:00:00.000000Z", "action": "Start", "reason": "Started", "note": "hi",
             "type": "Normal", "regarding": {"kind": "ConfigMap", "name": "x", "namespace": "default"},
             "reportingController": "test", "reportingInstance": "test-1"}
    kapi.kubectl("create", "-f", "-", input=json.dumps(event))
    assert get_json(kapi, "events.v1.events.k8s.io", "e1")["note"] == "hi"


def test_without_core_resources(kapi_factory) -> None:
    bare = kapi_factory("--core-resources=false", name="bare")
    names = bare.kubectl("api-resources", "-o", "name").stdout.split()
    assert "namespaces" in names
    for gone in ("configmaps", "secrets", "serviceaccounts", "leases.coordination.k8s.io", "events"):
        assert gone not in names
    assert "namespace/here created" in bare.kubectl("create", "namespace", "here").stdout
    out = bare.kubectl("get", "configmaps", check=False)
    assert out.returncode != 0 and "the server doesn't have a resource type" in out.stderr
