"""Decoding every stable kind from protobuf, driven by the generated message index.

Three oracles:

- bodies kubectl v1.32.4 really sent (`tests/data/protobuf/<name>.pb`), each
  next to `<name>.json`, what `kubectl <same command> --dry-run=client -o json`
  prints. They were recorded once by pointing kubectl at a throwaway HTTP
  server that answered `/version` and discovery and saved each POST body (the
  commands are in `RECORDED`);
- round trips dict → bytes → dict through a small encoder below, driven by the
  same index, for objects full of Quantity, IntOrString, Time, MicroTime,
  RawExtension, FieldsV1, bytes, inlined structs and renamed fields;
- k8s.io/api v0.32.0's own `testdata/HEAD/<kind>.pb` fixtures against their `.json`
  (the module zip is fetched from Go's module proxy; `KAPI_K8S_API_DIR` names an
  unpacked copy instead).
"""
from __future__ import annotations

import base64
import gzip
import importlib.util
import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from kapi.api.errors import BadRequest, UnsupportedMediaType
from kapi.api.protobuf import (
    DURATION, FIELDS_V1, INT_OR_STRING, MAGIC, MICRO_TIME, RAW_EXTENSION, TIME, _Decoder, decode_object,
)
from kapi.api.protobuf_index import ENUM, MESSAGE, build_index, load_index
from kapi.api.protobuf_wire import go_duration, packed, scalar

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "protobuf"
INDEX = load_index()

RECORDED = {
    "deployment-replicas-0": "create deployment web --image nginx --replicas=0",
    "deployment-port": "create deployment web2 --image nginx:1.27 --replicas=3 --port 8080 -- sleep 10",
    "job": "create job hello --image busybox -- echo hi",
    "cronjob": "create cronjob tick --image busybox --schedule '*/5 * * * *' -- date",
    "service-clusterip": "create service clusterip svc --tcp 80:8080 --tcp 443",
    "priorityclass": "create priorityclass high --value 1000 --description top --preemption-policy Never",
    "priorityclass-zero": "create priorityclass zero",
    "role": "create role reader --verb get,list --resource pods,deployments.apps",
    "rolebinding": "create rolebinding rb --role reader --user alice --serviceaccount default:sa",
    "clusterrole": "create clusterrole cr --verb get --non-resource-url /healthz",
    "pdb-min-available-0": "create poddisruptionbudget pdb --selector app=web --min-available 0",
    "pdb-max-unavailable": "create poddisruptionbudget pdb2 --selector app=web --max-unavailable 50%",
    "ingress": "create ingress ing --rule foo.com/bar*=svc:8080,tls=secret --class nginx",
    "quota": "create quota q --hard cpu=1,memory=1Gi,pods=10 --scopes BestEffort",
    "secret-generic": "create secret generic s --from-literal a=b",
}  # all with `-n default`; token.pb is `create token builder --duration 1h --audience api`


# --- a tiny encoder, the decoder's mirror --------------------------------------------------------------------

def varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def tag(number: int, wire: int) -> bytes:
    return varint(number << 3 | wire)


def length(number: int, data: bytes) -> bytes:
    return tag(number, 2) + varint(len(data)) + data


def encode_value(number: int, type_: str, kind: int, value: Any) -> bytes:
    if kind == MESSAGE:
        return length(number, encode_message(value, type_))
    if type_ == "string":
        return length(number, value.encode())
    if type_ == "bytes":
        return length(number, base64.b64decode(value))
    assert type_ in ("int32", "int64", "bool"), type_
    return tag(number, 0) + varint(int(value))


def encode_time(value: str) -> bytes:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)
    seconds = int(moment.replace(microsecond=0).timestamp())
    return tag(1, 0) + varint(seconds) + tag(2, 0) + varint(moment.microsecond * 1000)


def encode_message(value: Any, name: str) -> bytes:
    if name in (TIME, MICRO_TIME):
        return encode_time(value)
    if name == INT_OR_STRING:
        if isinstance(value, int):
            return tag(1, 0) + varint(0) + tag(2, 0) + varint(value)
        return tag(1, 0) + varint(1) + length(3, value.encode())
    if name in (RAW_EXTENSION, FIELDS_V1):
        return length(1, json.dumps(value).encode())
    form = INDEX.forms.get(name)
    if form == "string":
        return length(1, value.encode())
    if form == "list":
        return b"".join(length(1, item.encode()) for item in value)
    specs = INDEX.messages[name]
    by_name = {spec.name: (number, spec) for number, spec in specs.items() if not spec.inline}
    inline = {number: spec for number, spec in specs.items() if spec.inline}
    out, rest = bytearray(), {}
    for key, item in value.items():
        if key not in by_name:
            rest[key] = item
            continue
        number, spec = by_name[key]
        if spec.map_key is not None:
            for k, v in item.items():
                entry = length(1, k.encode()) + encode_value(2, spec.type, spec.kind, v)
                out += length(number, entry)
        elif spec.repeated:
            for element in item:
                out += encode_value(number, spec.type, spec.kind, element)
        else:
            out += encode_value(number, spec.type, spec.kind, item)
    for number, spec in inline.items():  # keys this level lacks belong to its inlined structs
        names = {s.name for s in INDEX.messages[spec.type].values()} | {
            s.name for n in INDEX.messages[spec.type].values() if n.inline for s in INDEX.messages[n.type].values()}
        part = {k: rest.pop(k) for k in list(rest) if k in names}
        if part:
            out += length(number, encode_message(part, spec.type))
    assert not rest, f"{name} has no fields {sorted(rest)}"
    return bytes(out)


def encode_object(obj: dict[str, Any]) -> bytes:
    name = INDEX.message_for(obj["apiVersion"], obj["kind"])
    assert name, obj["kind"]
    body = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    type_meta = length(1, obj["apiVersion"].encode()) + length(2, obj["kind"].encode())
    return MAGIC + length(1, type_meta) + length(2, encode_message(body, name))


def body(api_version: str, kind: str, raw: bytes) -> bytes:
    """A protobuf request body around an object's raw message."""
    return MAGIC + length(1, length(1, api_version.encode()) + length(2, kind.encode())) + length(2, raw)


def roundtrip(obj: dict[str, Any]) -> None:
    assert decode_object(encode_object(obj)) == obj


# --- real kubectl bodies ---------------------------------------------------------------------------------------

def dry_run_json(value: Any, top: bool = True) -> Any:
    """kubectl's dry-run JSON without Go's nulls and, at the top, its empty structs (`status: {}`)."""
    if isinstance(value, dict):
        out = {k: dry_run_json(v, False) for k, v in value.items() if v is not None}
        return {k: v for k, v in out.items() if not (top and v == {} and k != "metadata")}
    if isinstance(value, list):
        return [dry_run_json(v, False) for v in value]
    return value


@pytest.mark.parametrize("name", sorted(RECORDED))
def test_recorded_kubectl_bodies_read_as_kubectl_prints_them(name: str) -> None:
    body = (DATA / f"{name}.pb").read_bytes()
    assert body.startswith(MAGIC)
    assert decode_object(body) == dry_run_json(json.loads((DATA / f"{name}.json").read_text()))


def test_recorded_zeros_that_mean_something_survive() -> None:
    deployment = decode_object((DATA / "deployment-replicas-0.pb").read_bytes())
    assert deployment["spec"]["replicas"] == 0
    assert "minReadySeconds" not in deployment["spec"] and "paused" not in deployment["spec"]
    assert deployment["spec"]["strategy"] == {} and "status" not in deployment
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container == {"name": "nginx", "image": "nginx", "resources": {}}  # no stdin/tty false
    assert decode_object((DATA / "pdb-min-available-0.pb").read_bytes())["spec"]["minAvailable"] == 0
    assert decode_object((DATA / "priorityclass-zero.pb").read_bytes())["value"] == 0
    role = decode_object((DATA / "role.pb").read_bytes())
    assert role["rules"][0]["apiGroups"] == [""]


def test_recorded_token_request() -> None:
    assert decode_object((DATA / "token.pb").read_bytes()) == {
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "TokenRequest",
        "metadata": {},
        "spec": {"audiences": ["api"], "expirationSeconds": 3600},
    }


# --- round trips -----------------------------------------------------------------------------------------------

META = {"name": "web", "namespace": "default", "uid": "u-1", "creationTimestamp": "2024-05-01T12:00:00Z",
        "labels": {"app": "web"}, "annotations": {"note": ""},
        "managedFields": [{"manager": "kubectl", "operation": "Update", "apiVersion": "apps/v1",
                           "time": "2024-05-01T12:00:00Z", "fieldsType": "FieldsV1",
                           "fieldsV1": {"f:spec": {"f:replicas": {}}}}]}
POD_SPEC = {
    "containers": [{
        "name": "web", "image": "nginx", "ports": [{"name": "http", "containerPort": 80, "protocol": "TCP"}],
        "env": [{"name": "A", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "a", "optional": True}}}],
        "resources": {"limits": {"cpu": "500m", "memory": "128Mi"}, "requests": {"cpu": "0"}},
        "livenessProbe": {"httpGet": {"path": "/", "port": "http"}, "periodSeconds": 10},
        "readinessProbe": {"tcpSocket": {"port": 8080}},
        "volumeMounts": [{"name": "scratch", "mountPath": "/tmp"}],
        "securityContext": {"allowPrivilegeEscalation": True, "runAsUser": 1000},
    }],
    "volumes": [{"name": "scratch", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "cfg", "defaultMode": 420}}],
    "securityContext": {"supplementalGroups": [1, 2, 3], "fsGroup": 2000},
    "terminationGracePeriodSeconds": 0,
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
}
TEMPLATE = {"metadata": {"labels": {"app": "web"}}, "spec": POD_SPEC}
OBJECTS: list[dict[str, Any]] = [
    {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": META,
     "spec": {"replicas": 0, "selector": {"matchLabels": {"app": "web"}}, "template": TEMPLATE,
              "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
              "revisionHistoryLimit": 0}},
    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
     "spec": {**POD_SPEC, "ephemeralContainers": [{"name": "debug", "image": "busybox", "targetContainerName": "web",
                                                   "stdin": True}]},
     "status": {"phase": "Running", "startTime": "2024-05-01T12:00:01Z",
                "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2024-05-01T12:00:02Z"}]}},
    {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "svc"},
     "spec": {"ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": "http"}], "clusterIP": "None",
              "type": "ClusterIP", "sessionAffinity": "ClientIP",
              "sessionAffinityConfig": {"clientIP": {"timeoutSeconds": 10800}}}},
    {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "j"},
     "spec": {"backoffLimit": 0, "completions": 3, "parallelism": 2, "suspend": True, "template": TEMPLATE}},
    {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "c"},
     "spec": {"schedule": "*/5 * * * *", "timeZone": "Etc/UTC", "successfulJobsHistoryLimit": 0,
              "jobTemplate": {"spec": {"template": TEMPLATE}}},
     "status": {"lastScheduleTime": "2024-05-01T12:05:00Z"}},
    {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "metadata": {"name": "sa"},
     "spec": {"audiences": ["api"], "expirationSeconds": 3600,
              "boundObjectRef": {"kind": "Pod", "apiVersion": "v1", "name": "p", "uid": "u-2"}},
     "status": {"token": "tok", "expirationTimestamp": "2024-05-01T13:00:00Z"}},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "r"},
     "rules": [{"verbs": ["get"], "apiGroups": [""], "resources": ["pods"]}]},
    {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "rb"},
     "subjects": [{"kind": "User", "apiGroup": "rbac.authorization.k8s.io", "name": "alice"}],
     "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "r"}},
    {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": "pdb"},
     "spec": {"selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
              "maxUnavailable": 0, "unhealthyPodEvictionPolicy": "AlwaysAllow"},
     "status": {"disruptedPods": {"p": "2024-05-01T12:00:00Z"}, "disruptionsAllowed": 0, "currentHealthy": 1,
                "desiredHealthy": 1, "expectedPods": 1}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": {"name": "ing"},
     "spec": {"ingressClassName": "nginx",
              "defaultBackend": {"resource": {"apiGroup": "example.com", "kind": "Bucket", "name": "b"}},
              "tls": [{"hosts": ["foo.com"], "secretName": "s"}],
              "rules": [{"host": "foo.com", "http": {"paths": [
                  {"path": "/", "pathType": "Prefix",
                   "backend": {"service": {"name": "svc", "port": {"number": 80}}}}]}}]}},
    {"apiVersion": "networking.k8s.io/v1", "kind": "IngressClass", "metadata": {"name": "nginx"},
     "spec": {"controller": "k8s.io/ingress-nginx",
              "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}},
    {"apiVersion": "scheduling.k8s.io/v1", "kind": "PriorityClass", "metadata": {"name": "pc"},
     "value": 0, "globalDefault": True, "description": "d"},
    {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "q"},
     "spec": {"hard": {"cpu": "1", "memory": "1Gi", "pods": "10"},
              "scopeSelector": {"matchExpressions": [{"scopeName": "BestEffort", "operator": "Exists"}]}},
     "status": {"hard": {"cpu": "1"}, "used": {"cpu": "0"}}},
    {"apiVersion": "apps/v1", "kind": "ControllerRevision", "metadata": {"name": "cr"},
     "data": {"spec": {"template": {"spec": {"containers": [{"name": "web"}]}}}}, "revision": 3},
    {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "l"},
     "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15, "acquireTime": "2024-05-01T12:00:00.123456Z",
              "renewTime": "2024-05-01T12:00:10.000001Z"}},
    {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, "data": {"a": "AP8=", "empty": ""},
     "type": "Opaque", "immutable": False},
    {"apiVersion": "certificates.k8s.io/v1", "kind": "CertificateSigningRequest", "metadata": {"name": "csr"},
     "spec": {"request": base64.b64encode(b"-----BEGIN CERTIFICATE REQUEST-----").decode(),
              "signerName": "kubernetes.io/kube-apiserver-client", "usages": ["client auth"],
              "extra": {"scopes": ["a", "b"]}, "expirationSeconds": 86400}},
    {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
     "metadata": {"name": "w"},
     "webhooks": [{"name": "w.example.com", "clientConfig": {"url": "https://x", "caBundle": "Y2E="},
                   "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                              "resources": ["pods"], "scope": "*"}],
                   "sideEffects": "None", "admissionReviewVersions": ["v1"], "timeoutSeconds": 5}]},
    {"apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e"},
     "eventTime": "2024-05-01T12:00:00.500000Z",
     "series": {"count": 2, "lastObservedTime": "2024-05-01T12:01:00.000000Z"},
     "reason": "Started", "action": "Start", "type": "Normal", "regarding": {"kind": "Pod", "name": "p"}},
]


@pytest.mark.parametrize("obj", OBJECTS, ids=[o["kind"] for o in OBJECTS])
def test_roundtrip(obj: dict[str, Any]) -> None:
    roundtrip(obj)


def test_zero_rules() -> None:
    spec = {"replicas": 0, "minReadySeconds": 0, "paused": False, "progressDeadlineSeconds": 0,
            "template": {"metadata": {}, "spec": {"containers": [{"name": "c", "stdin": False, "tty": False,
                                                                   "workingDir": "", "args": []}]}}}
    decoded = decode_object(encode_object({"apiVersion": "apps/v1", "kind": "Deployment",
                                           "metadata": {"name": "d", "generation": 0}, "spec": spec,
                                           "status": {"replicas": 0, "conditions": []}}))
    assert decoded == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"},
                       "spec": {"replicas": 0, "progressDeadlineSeconds": 0,
                                "template": {"metadata": {}, "spec": {"containers": [{"name": "c"}]}}}}


def test_times() -> None:
    unix_zero = decode_object(encode_object({"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": "n", "creationTimestamp": "1970-01-01T00:00:00Z"}}))
    assert unix_zero["metadata"] == {"name": "n"}
    nanos = decode_object(encode_object({"apiVersion": "v1", "kind": "Namespace",
                                         "metadata": {"name": "n", "creationTimestamp": "2024-05-01T12:00:00.9Z"}}))
    assert nanos["metadata"]["creationTimestamp"] == "2024-05-01T12:00:00Z"  # Time has whole seconds


def test_packed_and_unpacked_repeated_scalars_agree() -> None:
    groups = [1, 2, 300]
    unpacked = b"".join(tag(4, 0) + varint(g) for g in groups)
    packed_ = length(4, b"".join(varint(g) for g in groups))
    for groups_field in (unpacked, packed_):  # Pod spec (2) → securityContext (14) → supplementalGroups (4)
        raw = length(1, length(1, b"p")) + length(2, length(14, groups_field))
        assert decode_object(body("v1", "Pod", raw))["spec"] == {"securityContext": {"supplementalGroups": groups}}


def test_a_singular_message_sent_twice_is_merged() -> None:
    raw = length(1, length(1, b"n")) + length(1, length(3, b"ns"))
    assert decode_object(body("v1", "ConfigMap", raw))["metadata"] == {"name": "n", "namespace": "ns"}


def test_embedded_protobuf_in_a_raw_extension() -> None:
    inner = encode_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}})
    raw = length(1, length(1, b"cr")) + length(2, length(1, inner)) + tag(3, 0) + varint(1)
    assert decode_object(body("apps/v1", "ControllerRevision", raw))["data"] == {
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}}


def test_every_stable_kind_has_a_message() -> None:
    assert INDEX.release == "v0.32.0"
    expected = {"v1": {"Pod", "Service", "ConfigMap", "Secret", "Namespace", "ResourceQuota", "Binding"},
                "apps/v1": {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ControllerRevision"},
                "batch/v1": {"Job", "CronJob"}, "policy/v1": {"PodDisruptionBudget", "Eviction"},
                "authentication.k8s.io/v1": {"TokenRequest", "TokenReview", "SelfSubjectReview"},
                "authorization.k8s.io/v1": {"SelfSubjectAccessReview", "SubjectAccessReview"},
                "autoscaling/v2": {"HorizontalPodAutoscaler"}, "autoscaling/v1": {"Scale"},
                "flowcontrol.apiserver.k8s.io/v1": {"FlowSchema"}, "node.k8s.io/v1": {"RuntimeClass"}}
    for api_version, kinds in expected.items():
        assert kinds <= set(INDEX.kinds[api_version]), api_version
    for by_kind in INDEX.kinds.values():
        assert set(by_kind.values()) <= set(INDEX.messages)
    assert INDEX.message_for("", "Pod") == "k8s.io.api.core.v1.Pod"
    with pytest.raises(UnsupportedMediaType, match="v9"):
        decode_object(body("v9", "Pod", b""))


def test_the_index_is_loaded_on_first_use_not_at_import() -> None:
    code = ("import kapi.app, server.endpoints.negotiation; from kapi.api.protobuf_index import load_index; "
            "print(load_index.cache_info().currsize)")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "0"


@pytest.mark.parametrize("raw", [
    length(1, tag(1, 0) + varint(7)),  # metadata.name as a varint
    length(2, length(1, b"\x01")),  # spec.replicas length-delimited (not a packed list: not repeated)
    length(2, tag(2, 0) + varint(1)),  # spec.selector as a varint
    length(1, length(8, tag(1, 2) + varint(0))),  # metadata.creationTimestamp.seconds as bytes
])
def test_wrong_wire_types_are_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_object(body("apps/v1", "Deployment", raw))


@pytest.mark.parametrize("raw", [
    length(2, length(1, b"not json")),  # ControllerRevision data (a RawExtension)
    length(2, length(1, MAGIC + b"\x0a")),  # a truncated nested protobuf object
    length(1, length(1, b"\xff")),  # metadata.name not UTF-8
])
def test_bad_embedded_data_is_bad_request(raw: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_object(body("apps/v1", "ControllerRevision", raw))


def test_bad_int_or_string_and_deep_nesting_are_bad_request() -> None:
    pdb = length(2, length(1, tag(1, 0) + varint(7)))  # spec.minAvailable of type 7
    with pytest.raises(BadRequest, match="IntOrString"):
        decode_object(body("policy/v1", "PodDisruptionBudget", pdb))
    nested = encode_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    for _ in range(120):  # revisions holding revisions, each in the last one's data
        nested = body("apps/v1", "ControllerRevision", length(2, length(1, nested)))
    with pytest.raises(BadRequest, match="deeply"):
        decode_object(nested)


# --- the wire helpers and the generator --------------------------------------------------------------------------

def test_scalars_and_go_durations() -> None:
    assert scalar("sint32", 3) == -2 and scalar("sint64", 4) == 2
    assert scalar("int32", (1 << 64) - 5) == -5 and scalar("uint32", (1 << 32) + 7) == 7
    assert scalar("double", 0x3FF8000000000000) == 1.5 and scalar("float", 0x3FC00000) == 1.5
    assert scalar("sfixed32", 0xFFFFFFFF) == -1 and scalar("fixed64", 9) == 9
    assert scalar("bytes", b"\x00\xff") == "AP8=" and scalar("bool", 2) is True
    assert packed("fixed32", b"\x01\x00\x00\x00\x02\x00\x00\x00") == [1, 2]
    assert packed("sint64", b"\x01\x02") == [-1, 1]
    with pytest.raises(BadRequest):
        packed("fixed64", b"\x01\x02")
    cases = {0: "0s", 1: "1ns", 1500: "1.5µs", 1_000_000: "1ms", 1_500_000_000: "1.5s", 90 * 10**9: "1m30s",
             3600 * 10**9: "1h0m0s", 3661 * 10**9 + 5 * 10**8: "1h1m1.5s", -(10**9): "-1s"}
    for nanos, text in cases.items():
        assert go_duration(nanos) == text


def test_enums_and_synthetic_types_through_a_built_index() -> None:
    index = build_index({
        "release": "x", "enums": {"p.Color": {"0": "RED", "1": "BLUE"}}, "kinds": {"p/v1": {"T": "p.T"}},
        "messages": {"p.T": {"1": ["color", "p.Color", "", 0], "2": ["colors", "p.Color", "repeated", 0],
                             "3": ["d", DURATION, "", 0], "4": ["big", "uint64", "", 0]},
                     DURATION: {"1": ["duration", "int64", "", 0]}}})
    assert index.messages["p.T"][1].kind == ENUM and index.messages["p.T"][3].kind == MESSAGE
    raw = (tag(1, 0) + varint(1) + length(2, varint(0) + varint(1)) + length(3, tag(1, 0) + varint(90 * 10**9))
           + tag(4, 0) + varint(1 << 63))
    assert _Decoder(index).object(raw, "p.T", 0) == {"color": "BLUE", "colors": ["RED", "BLUE"], "d": "1m30s",
                                                     "big": 1 << 63}
    assert _Decoder(index).object(length(3, b""), "p.T", 0) == {}  # a zero Duration goes


def load_generator() -> Any:
    spec = importlib.util.spec_from_file_location("gen_kube_proto", ROOT / "scripts" / "gen_kube_proto.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["gen_kube_proto"] = module
    spec.loader.exec_module(module)
    return module


PROTO = '''
/* licence */
syntax = "proto2";
package k8s.io.api.demo.v1;
import "k8s.io/apimachinery/pkg/apis/meta/v1/generated.proto";
option go_package = "k8s.io/api/demo/v1";

// Widget is a demo kind.
message Widget {
  optional .k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta metadata = 1;

  // Number of copies. This is a pointer to distinguish between explicit zero and unset.
  // +optional
  optional int32 copies = 2;

  // Seconds to wait. Defaults to 0.
  // +optional
  optional int32 waitSeconds = 3;

  // Required count.
  optional int32 count = 4;

  map<string, string> labels = 5;

  repeated Part parts = 6;

  optional Source source = 7;

  optional Part Spare = 8;

  message Part {
    optional string name = 1;
  }
  enum Mode { OFF = 0; ON = 1 [deprecated = true]; }
}

message Source {
  optional string path = 1;
}
'''
META_PROTO = '''syntax = "proto2"; package k8s.io.apimachinery.pkg.apis.meta.v1;
// +protobuf.as=Timestamp
message Time { optional int64 seconds = 1; optional int32 nanos = 2; }
message ObjectMeta { optional string name = 1; optional Time creationTimestamp = 8; }
'''


def test_generator_parses_resolves_and_indexes() -> None:
    gen = load_generator()
    gen.API_GROUPS = {"demo/v1": "demo.example.com"}
    schemas = {"io.k8s.api.demo.v1.Widget": {
        "properties": {"metadata": {}, "copies": {}, "waitSeconds": {}, "count": {}, "labels": {}, "parts": {},
                       "spare": {}},
        "x-kubernetes-group-version-kind": [{"group": "demo.example.com", "version": "v1", "kind": "Widget"}]}}
    index = gen.build_index({"demo/v1": PROTO, "pkg/apis/meta/v1": META_PROTO}, "v0.0.1", schemas)
    widget = index["messages"]["k8s.io.api.demo.v1.Widget"]
    assert widget["1"] == ["metadata", "k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta", "", 1]
    assert widget["2"] == ["copies", "int32", "", 1]  # "pointer"
    assert widget["3"] == ["waitSeconds", "int32", "", 0]  # optional, defaults to 0
    assert widget["4"] == ["count", "int32", "", 1]  # required
    assert widget["5"] == ["labels", ["string", "string"], "map", 1]
    assert widget["6"] == ["parts", "k8s.io.api.demo.v1.Widget.Part", "repeated", 1]
    assert widget["7"] == ["source", "k8s.io.api.demo.v1.Source", "inline", 1]  # not an OpenAPI property
    assert widget["8"][0] == "spare"  # the JSON name, from OpenAPI, ignoring case
    assert index["enums"]["k8s.io.api.demo.v1.Widget.Mode"] == {"0": "OFF", "1": "ON"}
    assert index["forms"] == {"k8s.io.apimachinery.pkg.apis.meta.v1.Time": "timestamp"}
    assert index["kinds"] == {"demo.example.com/v1": {"Widget": "k8s.io.api.demo.v1.Widget"}}
    with pytest.raises(gen.ProtoSyntaxError):
        gen.build_index({"demo/v1": "message X { optional Nope n = 1; }"}, "v", {})
    with pytest.raises(gen.ProtoSyntaxError):
        gen.Parser("message X { optional int32 n = 1 }").parse()


def test_generator_output_is_reproducible(tmp_path: Path) -> None:
    gen = load_generator()
    index = {"b": 1, "a": {"z": 1, "y": 2}}
    gen.write_index(index, tmp_path / "one.json.gz")
    gen.write_index(dict(reversed(list(index.items()))), tmp_path / "two.json.gz")
    assert (tmp_path / "one.json.gz").read_bytes() == (tmp_path / "two.json.gz").read_bytes()
    assert json.loads(gzip.decompress((tmp_path / "one.json.gz").read_bytes())) == index


def test_keep_zero_reads_the_field_comment() -> None:
    gen = load_generator()
    assert gen.keep_zero("int32", "Number of desired pods. This is a pointer ... Defaults to 1.\n+optional")
    assert gen.keep_zero("bool", 'Default is "true".\n+optional')
    assert gen.keep_zero("int32", "Required value.")
    assert gen.keep_zero(INT_OR_STRING, "+optional")
    assert not gen.keep_zero("bool", "Whether to allocate a TTY. Default is false.\n+optional")
    assert not gen.keep_zero("int32", "Minimum seconds. Defaults to 0 (available when ready)\n+optional")


# --- the module's own fixtures, when an unpacked k8s.io/api is at hand ------------------------------------------

API_DIR = os.environ.get("KAPI_K8S_API_DIR", "")


def without_nulls(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None and v != "" and v != []}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


API_ZIP = "https://proxy.golang.org/k8s.io/api/@v/v0.32.0.zip"  # 3.8 MB: the module as Go's proxy serves it


def _testdata_reader(cache: Path) -> Any:
    """`read(name) -> bytes | None` over k8s.io/api's testdata/HEAD: an unpacked module from
    `KAPI_K8S_API_DIR`, else the module zip, downloaded once into pytest's cache."""
    if API_DIR:
        root = Path(API_DIR) / "testdata" / "HEAD"
        return lambda name: (root / name).read_bytes() if (root / name).exists() else None
    import urllib.request
    import zipfile

    archive = cache / "k8s-api-v0.32.0.zip"
    if not archive.exists():
        with urllib.request.urlopen(API_ZIP, timeout=60) as response:  # noqa: S310 (a fixed https URL)
            archive.write_bytes(response.read())
    module = zipfile.ZipFile(archive)
    names = set(module.namelist())
    prefix = "k8s.io/api@v0.32.0/testdata/HEAD/"
    return lambda name: module.read(prefix + name) if prefix + name in names else None


def test_k8s_api_testdata_fixtures(tmp_path_factory: pytest.TempPathFactory) -> None:
    read = _testdata_reader(tmp_path_factory.getbasetemp())
    checked = 0
    for api_version, kinds in INDEX.kinds.items():
        group, _, version = api_version.rpartition("/")
        for kind in kinds:
            name = f"{group or 'core'}.{version}.{kind}"
            pb, js = read(name + ".pb"), read(name + ".json")
            if pb is None or js is None:
                continue
            want = without_nulls(json.loads(js))
            got = without_nulls(json.loads(json.dumps(decode_object(pb))))
            assert got == want, name
            checked += 1
    assert checked >= 55

