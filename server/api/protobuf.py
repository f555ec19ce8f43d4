"""Decode the Kubernetes protobuf bodies kubectl sends for built-in types.

kubectl posts `create namespace|configmap|secret`, `auth can-i` and
`auth whoami` as `application/vnd.kubernetes.protobuf` and never retries
with JSON on 415, so the server must read them (it may answer in JSON).

A body is the magic `k8s\\x00` followed by a `runtime.Unknown`: field 1 a
TypeMeta (apiVersion = 1, kind = 2), field 2 the object's own message,
3 content encoding, 4 content type. Object field numbers come from the
public `generated.proto` files of k8s.io/api and k8s.io/apimachinery.

The wire decoder is hand-written (varint, 64-bit, length-delimited, 32-bit)
to avoid a protobuf dependency for five small messages. Any malformed input
becomes `BadRequest`; nothing else escapes.
"""
from __future__ import annotations

import base64
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Union

from server.api.errors import BadRequest, UnsupportedMediaType

MAGIC = b"k8s\x00"

_VARINT, _FIXED64, _LENGTH, _START_GROUP, _END_GROUP, _FIXED32 = 0, 1, 2, 3, 4, 5

# A message spec maps field numbers to (JSON name, kind); kind is a string
# for scalars and maps, or ("message", spec) / ("messages", spec) for nested.
_Kind = Union[str, tuple[str, "dict[int, tuple[str, Any]]"]]
_Spec = dict[int, tuple[str, _Kind]]


def _bad(detail: str) -> BadRequest:
    return BadRequest(f"unable to decode the protobuf request body: {detail}")


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise _bad("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise _bad("varint longer than 10 bytes")


def _fields(data: bytes) -> Iterator[tuple[int, int, Union[int, bytes]]]:
    """(field number, wire type, value) for each field of one message."""
    pos = 0
    while pos < len(data):
        tag, pos = _varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise _bad("field number 0")
        if wire == _VARINT:
            value, pos = _varint(data, pos)
            yield number, wire, value
        elif wire in (_FIXED64, _FIXED32):
            size = 8 if wire == _FIXED64 else 4
            if pos + size > len(data):
                raise _bad("truncated fixed-width field")
            yield number, wire, int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire == _LENGTH:
            size, pos = _varint(data, pos)
            if pos + size > len(data):
                raise _bad(f"field {number} runs past the end of the message")
            yield number, wire, data[pos : pos + size]
            pos += size
        else:
            raise _bad(f"unsupported wire type {wire}")


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise _bad("string field is not valid UTF-8") from None


def _expect(wire: int, wanted: int, name: str) -> None:
    if wire != wanted:
        raise _bad(f"field {name!r} has wire type {wire}, expected {wanted}")


def _map_entry(raw: bytes, binary: bool) -> tuple[str, Any]:
    key, value = "", b""
    for number, wire, item in _fields(raw):
        if number in (1, 2):
            _expect(wire, _LENGTH, "map entry")
            assert isinstance(item, bytes)
            if number == 1:
                key = _text(item)
            else:
                value = item
    if binary:
        return key, base64.b64encode(value).decode("ascii")
    return key, _text(value)


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Go's zero time.Time (year 1) as Unix seconds: what kubectl sends for "unset".
_GO_ZERO_SECONDS = -62135596800


def _time(raw: bytes) -> str:
    """metav1.Time {seconds, nanos} as kube's JSON writes it (RFC 3339, UTC,
    whole seconds); "" for the zero time, which JSON shows as null."""
    seconds = nanos = 0
    for number, wire, item in _fields(raw):
        if number in (1, 2):
            _expect(wire, _VARINT, "time")
            assert isinstance(item, int)
            if number == 1:
                seconds = _signed(item)
            else:
                nanos = _signed(item)
    if (seconds == 0 and nanos == 0) or seconds == _GO_ZERO_SECONDS:
        return ""
    try:
        moment = _EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        raise _bad("timestamp out of range") from None
    return f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}Z"


def _decode(raw: bytes, spec: _Spec) -> dict[str, Any]:
    """One message as its JSON form; empty values are left out, as JSON would."""
    out: dict[str, Any] = {}
    for number, wire, item in _fields(raw):
        if number not in spec:
            continue
        name, kind = spec[number]
        if isinstance(kind, tuple):
            _expect(wire, _LENGTH, name)
            assert isinstance(item, bytes)
            value = _decode(item, kind[1])
            if kind[0] == "messages":
                out.setdefault(name, []).append(value)
            else:
                out[name] = value
        elif kind in ("int", "opt_int", "bool"):
            _expect(wire, _VARINT, name)
            assert isinstance(item, int)
            out[name] = bool(item) if kind == "bool" else _signed(item)
        else:
            _expect(wire, _LENGTH, name)
            assert isinstance(item, bytes)
            if kind == "string":
                out[name] = _text(item)
            elif kind == "strings":
                out.setdefault(name, []).append(_text(item))
            elif kind == "time":
                out[name] = _time(item)
            else:  # "map" or "bytes_map"
                key, value = _map_entry(item, kind == "bytes_map")
                out.setdefault(name, {})[key] = value
    kinds = dict(spec.values())
    return {
        k: v
        for k, v in out.items()
        if not (isinstance(v, (str, dict, list)) and not v) and not (kinds[k] == "int" and v == 0)
    }


_OWNER_REFERENCE: _Spec = {
    1: ("kind", "string"),
    3: ("name", "string"),
    4: ("uid", "string"),
    5: ("apiVersion", "string"),
    6: ("controller", "bool"),
    7: ("blockOwnerDeletion", "bool"),
}
_OBJECT_META: _Spec = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    5: ("uid", "string"),
    6: ("resourceVersion", "string"),
    7: ("generation", "int"),
    8: ("creationTimestamp", "time"),
    9: ("deletionTimestamp", "time"),
    10: ("deletionGracePeriodSeconds", "opt_int"),
    11: ("labels", "map"),
    12: ("annotations", "map"),
    13: ("ownerReferences", ("messages", _OWNER_REFERENCE)),
    14: ("finalizers", "strings"),
}
_METADATA = (1, ("metadata", ("message", _OBJECT_META)))

_KINDS: dict[str, _Spec] = {
    "Namespace": dict(
        [
            _METADATA,
            (2, ("spec", ("message", {1: ("finalizers", "strings")}))),
            (3, ("status", ("message", {1: ("phase", "string")}))),
        ]
    ),
    "ConfigMap": dict(
        [
            _METADATA,
            (2, ("data", "map")),
            (3, ("binaryData", "bytes_map")),
            (4, ("immutable", "bool")),
        ]
    ),
    "Secret": dict(
        [
            _METADATA,
            (2, ("data", "bytes_map")),
            (3, ("type", "string")),
            (4, ("stringData", "map")),
            (5, ("immutable", "bool")),
        ]
    ),
    "ServiceAccount": dict(
        [
            _METADATA,
            (2, ("secrets", ("messages", {1: ("kind", "string"), 2: ("namespace", "string"), 3: ("name", "string"),
                                          4: ("uid", "string"), 5: ("apiVersion", "string")}))),
            (3, ("imagePullSecrets", ("messages", {1: ("name", "string")}))),
            (4, ("automountServiceAccountToken", "bool")),
        ]
    ),
    "SelfSubjectAccessReview": dict(
        [
            _METADATA,
            (
                2,
                (
                    "spec",
                    (
                        "message",
                        {
                            1: (
                                "resourceAttributes",
                                (
                                    "message",
                                    {
                                        1: ("namespace", "string"),
                                        2: ("verb", "string"),
                                        3: ("group", "string"),
                                        4: ("version", "string"),
                                        5: ("resource", "string"),
                                        6: ("subresource", "string"),
                                        7: ("name", "string"),
                                    },
                                ),
                            ),
                            2: (
                                "nonResourceAttributes",
                                ("message", {1: ("path", "string"), 2: ("verb", "string")}),
                            ),
                        },
                    ),
                ),
            ),
        ]
    ),
    "SelfSubjectReview": dict([_METADATA]),
}


def decode_unknown(body: bytes) -> tuple[str, str, bytes]:
    """Check the magic and unwrap `runtime.Unknown`: (apiVersion, kind, raw)."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise _bad("body is not bytes")
    data = bytes(body)
    if not data.startswith(MAGIC):
        raise _bad("missing the 'k8s\\x00' prefix of the Kubernetes protobuf encoding")
    api_version = kind = ""
    raw = b""
    for number, wire, item in _fields(data[len(MAGIC) :]):
        if number == 1:
            _expect(wire, _LENGTH, "typeMeta")
            assert isinstance(item, bytes)
            for sub, sub_wire, value in _fields(item):
                if sub in (1, 2):
                    _expect(sub_wire, _LENGTH, "typeMeta")
                    assert isinstance(value, bytes)
                    if sub == 1:
                        api_version = _text(value)
                    else:
                        kind = _text(value)
        elif number == 2:
            _expect(wire, _LENGTH, "raw")
            assert isinstance(item, bytes)
            raw = item
    if not kind:
        raise _bad("the object has no kind")
    return api_version, kind, raw


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Namespace, ConfigMap, Secret,
    SelfSubjectAccessReview or SelfSubjectReview; 415 for any other kind."""
    api_version, kind, raw = decode_unknown(body)
    spec = _KINDS.get(kind)
    if spec is None:
        raise UnsupportedMediaType(
            f"the protobuf encoding is not supported for kind {kind!r}; "
            "send application/json or application/yaml"
        )
    decoded = _decode(raw, spec)
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    obj["metadata"] = decoded.pop("metadata", {})
    obj.update(decoded)
    if not api_version:
        del obj["apiVersion"]
    return obj
