"""Decode the Kubernetes protobuf bodies kubectl sends for built-in types.

kubectl posts the objects of its typed commands (`create deployment|job|
cronjob|token|service|role|quota|...`, `auth can-i`, `auth whoami`) as
`application/vnd.kubernetes.protobuf` and never retries with JSON on 415, so
the server must read them (it may answer in JSON).

A body is the magic `k8s\\x00` followed by a `runtime.Unknown`: field 1 a
TypeMeta (apiVersion = 1, kind = 2), field 2 the object's own message,
3 content encoding, 4 content type. Every message of the stable Kubernetes
1.32 API is described by the index `kapi.api.protobuf_index` loads on the
first protobuf body (not at start-up), generated from the public
`generated.proto` files by `scripts/gen_kube_proto.py`; the wire reader is
`kapi.api.protobuf_wire` (hand-written: no protobuf dependency).

Messages with their own JSON form map to it: Time and MicroTime to RFC 3339
strings, Duration to Go's duration string, Quantity to its string,
IntOrString to an int or a string, RawExtension and FieldsV1 to the JSON they
carry, ExtraValue-like wrappers to lists; bytes become base64 strings; a
struct Go inlines (Volume's volume source, Probe's handler) joins its parent.

Zero values, so the result reads like the JSON of the object kubectl meant
(`kubectl create ... --dry-run=client -o json`). Go writes every non-pointer
field, so the wire is full of empty strings, zeros and empty structs:

- empty strings, empty bytes, empty lists and empty maps are dropped (list
  elements and map values are kept as sent, `apiGroups: [""]` included);
- a 0, false or IntOrString 0 is dropped unless the index marks the field
  `keep_zero`: required fields (Go's JSON prints their zero: PriorityClass
  `value: 0`), IntOrString fields (`minAvailable: 0`), and fields whose
  .proto comment says pointer, nil or null or documents a non-zero default
  (`replicas: 0`: "pointer ... Defaults to 1"). The .proto cannot tell
  pointers apart, so a pointer documented as defaulting to false/0 loses an
  explicit false/0 (which means the same), and a pointer whose comment says
  none of this (`automountServiceAccountToken`, JobSpec `parallelism`) loses
  one too: the known limit of this rule;
- a nested message present on the wire is kept, `{}` included (`emptyDir:
  {}`, `podSelector: {}` mean something, and Go's JSON prints them), but an
  empty top-level field (`spec: {}`, `status: {}`) is dropped;
- a zero Time (Unix 0, or Go's year 1) is dropped, as JSON's `null` would be.

Any malformed input becomes `BadRequest`, a kind the index does not know
`UnsupportedMediaType`; nothing else escapes.
"""
from __future__ import annotations

import struct
from typing import Any, Callable, Union

import orjson

from kapi.api.errors import BadRequest, UnsupportedMediaType
from kapi.api.protobuf_index import ENUM, MESSAGE, FieldSpec, ProtoIndex, load_index
from kapi.api.protobuf_wire import (
    LENGTH, VARINT, WIRE, bad, duration, expect, fields, int_or_string, packed, scalar, signed, sub, text, timestamp,
)

MAGIC = b"k8s\x00"

_MAX_DEPTH = 100

_META = "k8s.io.apimachinery.pkg.apis.meta.v1."
TIME, MICRO_TIME, DURATION, FIELDS_V1 = _META + "Time", _META + "MicroTime", _META + "Duration", _META + "FieldsV1"
INT_OR_STRING = "k8s.io.apimachinery.pkg.util.intstr.IntOrString"
RAW_EXTENSION = "k8s.io.apimachinery.pkg.runtime.RawExtension"


class _Decoder:
    """Messages to their JSON forms, driven by one loaded index."""

    def __init__(self, index: ProtoIndex) -> None:
        self.index = index
        self.special: dict[str, Callable[[bytes, int], Any]] = {
            TIME: lambda raw, _: timestamp(raw, micro=False),
            MICRO_TIME: lambda raw, _: timestamp(raw, micro=True),
            DURATION: lambda raw, _: duration(raw),
            INT_OR_STRING: lambda raw, _: int_or_string(raw),
            RAW_EXTENSION: self.raw_json,
            FIELDS_V1: self.raw_json,
        }

    def raw_json(self, raw: bytes, depth: int) -> Any:
        """RawExtension / FieldsV1: the embedded JSON (or a nested protobuf object)."""
        payload = b""
        for number, wire, item in fields(raw):
            if number == 1:
                expect(wire, LENGTH, "raw")
                assert isinstance(item, bytes)
                payload = item
        if not payload:
            return None
        if payload.startswith(MAGIC):
            return self.top(payload, depth + 1)
        try:
            return orjson.loads(payload)
        except orjson.JSONDecodeError:
            raise bad("an embedded object is not JSON") from None

    def top(self, body: bytes, depth: int = 0) -> dict[str, Any]:
        """A whole body (magic + runtime.Unknown) as the object's JSON form."""
        api_version, kind, raw = decode_unknown(body)
        name = self.index.message_for(api_version, kind)
        if name is None:
            raise UnsupportedMediaType(
                f"the protobuf encoding is not supported for kind {kind!r} in {api_version!r}; "
                "send application/json or application/yaml"
            )
        decoded = self.object(raw, name, depth)
        obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind, "metadata": decoded.pop("metadata", {})}
        obj.update((k, v) for k, v in decoded.items() if v != {})
        if not api_version:
            del obj["apiVersion"]
        return obj

    def message(self, raw: bytes, name: str, depth: int) -> Any:
        """One message's JSON form: a special form, or an object."""
        if depth > _MAX_DEPTH:
            raise bad("messages nested too deeply")
        special = self.special.get(name)
        if special is not None:
            return special(raw, depth)
        form = self.index.forms.get(name)
        if form == "timestamp":
            return timestamp(raw, micro=False)
        if form == "string":
            return sub(raw, 1, "string") or ""
        if form == "list":
            return [text(item) for number, wire, item in fields(raw) if number == 1 and isinstance(item, bytes)]
        return self.object(raw, name, depth)

    def value(self, spec: FieldSpec, wire: int, item: Union[int, bytes], depth: int) -> Any:
        """A non-map field's value (one list element when repeated)."""
        if spec.kind == MESSAGE:
            expect(wire, LENGTH, spec.name)
            assert isinstance(item, bytes)
            return self.message(item, spec.type, depth + 1)
        if spec.kind == ENUM:
            expect(wire, VARINT, spec.name)
            assert isinstance(item, int)
            return self.index.enums[spec.type].get(signed(item, 32), signed(item, 32))
        expect(wire, WIRE[spec.type], spec.name)
        return scalar(spec.type, item)

    def map_entry(self, spec: FieldSpec, raw: bytes, depth: int) -> tuple[str, Any]:
        """One map entry: key = 1, value = 2 (a missing one is its type's zero)."""
        key: Any = ""
        value: Any = None
        for number, wire, item in fields(raw):
            if number == 1:
                expect(wire, WIRE[spec.map_key or "string"], "map key")
                key = scalar(spec.map_key or "string", item)
            elif number == 2:
                value = self.value(spec, wire, item, depth)
        if value is None:
            value = self.message(b"", spec.type, depth + 1) if spec.kind == MESSAGE else (
                "" if spec.type in ("string", "bytes") else False if spec.type == "bool" else 0)
        return str(key), value

    def object(self, raw: bytes, name: str, depth: int) -> dict[str, Any]:
        """A message as a JSON object, with the zero-value rules of the module docstring."""
        specs = self.index.messages[name]
        values: dict[int, Any] = {}
        merged: dict[int, bytearray] = {}  # a singular message sent twice is merged, as protobuf says
        for number, wire, item in fields(raw):
            spec = specs.get(number)
            if spec is None:
                continue
            if spec.map_key is not None:
                expect(wire, LENGTH, spec.name)
                assert isinstance(item, bytes)
                key, value = self.map_entry(spec, item, depth)
                values.setdefault(number, {})[key] = value
            elif spec.repeated:
                if wire == LENGTH and spec.kind != MESSAGE and spec.type not in ("string", "bytes"):
                    assert isinstance(item, bytes)
                    items = packed("int32" if spec.kind == ENUM else spec.type, item)
                    if spec.kind == ENUM:
                        items = [self.index.enums[spec.type].get(v, v) for v in items]
                    values.setdefault(number, []).extend(items)
                else:
                    values.setdefault(number, []).append(self.value(spec, wire, item, depth))
            elif spec.kind == MESSAGE:
                expect(wire, LENGTH, spec.name)
                assert isinstance(item, bytes)
                merged.setdefault(number, bytearray()).extend(item)
            else:
                values[number] = self.value(spec, wire, item, depth)
        for number, buffer in merged.items():
            values[number] = self.message(bytes(buffer), specs[number].type, depth + 1)
        out: dict[str, Any] = {}
        for number in sorted(values):
            spec, value = specs[number], values[number]
            if spec.inline and isinstance(value, dict):
                out.update(value)
                continue
            if spec.repeated and spec.kind == MESSAGE:
                value = [v for v in value if v is not None]
            if _keep(spec, value):
                out[spec.name] = value
        return out


def _keep(spec: FieldSpec, value: Any) -> bool:
    """Whether a decoded field stays in its object (the rules of the module docstring)."""
    if value is None or (isinstance(value, (str, list)) and not value):
        return False
    if isinstance(value, dict):
        return bool(value) or spec.map_key is None  # an empty map goes, an empty message stays
    if spec.repeated or spec.map_key is not None or spec.keep_zero:
        return True
    return not (value is False or value == 0 or (spec.type == DURATION and value == "0s"))


def decode_unknown(body: bytes) -> tuple[str, str, bytes]:
    """Check the magic and unwrap `runtime.Unknown`: (apiVersion, kind, raw)."""
    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise bad("body is not bytes")
    data = bytes(body)
    if not data.startswith(MAGIC):
        raise bad("missing the 'k8s\\x00' prefix of the Kubernetes protobuf encoding")
    api_version = kind = ""
    raw = b""
    for number, wire, item in fields(data[len(MAGIC) :]):
        if number == 1:
            expect(wire, LENGTH, "typeMeta")
            assert isinstance(item, bytes)
            for inner, inner_wire, value in fields(item):
                if inner in (1, 2):
                    expect(inner_wire, LENGTH, "typeMeta")
                    assert isinstance(value, bytes)
                    if inner == 1:
                        api_version = text(value)
                    else:
                        kind = text(value)
        elif number == 2:
            expect(wire, LENGTH, "raw")
            assert isinstance(item, bytes)
            raw = item
    if not kind:
        raise bad("the object has no kind")
    return api_version, kind, raw


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object of any kind of the stable
    Kubernetes 1.32 API; 415 for a kind the index does not know."""
    try:
        index = load_index()
    except (OSError, ValueError):  # a broken installation, not a bad body: the client can still send JSON
        raise UnsupportedMediaType(
            "the protobuf encoding is not available on this server (its message index is missing); "
            "send application/json or application/yaml"
        ) from None
    try:
        return _Decoder(index).top(body)
    except (BadRequest, UnsupportedMediaType):
        raise
    except (ValueError, OverflowError, RecursionError, struct.error) as exc:
        raise bad(str(exc) or type(exc).__name__) from None
