"""The protobuf wire format, and the Kubernetes messages whose JSON form is a scalar.

A hand-written reader (varint, 64-bit, length-delimited, 32-bit; no groups)
keeps kapi free of a protobuf dependency for what is only ever a request
body. `kapi.api.protobuf` walks messages with it; this module also turns
metav1.Time/MicroTime, Duration and IntOrString into their JSON forms. Every
malformed input raises `BadRequest` through `bad()`.
"""
from __future__ import annotations

import base64
import struct
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Union

from kapi.api.errors import BadRequest

VARINT, FIXED64, LENGTH, START_GROUP, END_GROUP, FIXED32 = 0, 1, 2, 3, 4, 5

# The wire type each scalar travels as.
WIRE = {
    "int32": VARINT, "int64": VARINT, "uint32": VARINT, "uint64": VARINT, "sint32": VARINT,
    "sint64": VARINT, "bool": VARINT, "fixed32": FIXED32, "sfixed32": FIXED32, "float": FIXED32,
    "fixed64": FIXED64, "sfixed64": FIXED64, "double": FIXED64, "string": LENGTH, "bytes": LENGTH,
}


def bad(detail: str) -> BadRequest:
    """The one error a malformed body produces."""
    return BadRequest(f"unable to decode the protobuf request body: {detail}")


def varint(data: bytes, pos: int) -> tuple[int, int]:
    """(value, next position) of the varint at `pos`, as an unsigned 64-bit int."""
    result = shift = 0
    for _ in range(10):
        if pos >= len(data):
            raise bad("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
    raise bad("varint longer than 10 bytes")


def fields(data: bytes) -> Iterator[tuple[int, int, Union[int, bytes]]]:
    """(field number, wire type, value) for each field of one message; fixed-width
    values come as unsigned little-endian ints."""
    pos = 0
    while pos < len(data):
        tag, pos = varint(data, pos)
        number, wire = tag >> 3, tag & 7
        if number == 0:
            raise bad("field number 0")
        if wire == VARINT:
            value, pos = varint(data, pos)
            yield number, wire, value
        elif wire in (FIXED64, FIXED32):
            size = 8 if wire == FIXED64 else 4
            if pos + size > len(data):
                raise bad("truncated fixed-width field")
            yield number, wire, int.from_bytes(data[pos : pos + size], "little")
            pos += size
        elif wire == LENGTH:
            size, pos = varint(data, pos)
            if pos + size > len(data):
                raise bad(f"field {number} runs past the end of the message")
            yield number, wire, data[pos : pos + size]
            pos += size
        else:
            raise bad(f"unsupported wire type {wire}")


def signed(value: int, bits: int = 64) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >= 1 << (bits - 1) else value


def text(raw: bytes) -> str:
    """A string field's UTF-8 text."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise bad("string field is not valid UTF-8") from None


def expect(wire: int, wanted: int, name: str) -> None:
    """A known field must come with the wire type of its type."""
    if wire != wanted:
        raise bad(f"field {name!r} has wire type {wire}, expected {wanted}")


def scalar(type_: str, value: Union[int, bytes]) -> Any:
    """One scalar's JSON value from its wire value (already checked for wire type)."""
    if isinstance(value, bytes):
        return text(value) if type_ == "string" else base64.b64encode(value).decode("ascii")
    if type_ == "bool":
        return value != 0
    if type_ in ("int32", "sfixed32"):
        return signed(value, 32)
    if type_ in ("int64", "sfixed64"):
        return signed(value)
    if type_ == "uint32":
        return value & 0xFFFFFFFF
    if type_ in ("sint32", "sint64"):
        return (value >> 1) ^ -(value & 1)
    if type_ == "float":
        return struct.unpack("<f", value.to_bytes(4, "little"))[0]
    if type_ == "double":
        return struct.unpack("<d", value.to_bytes(8, "little"))[0]
    return value  # uint64, fixed32, fixed64


def packed(type_: str, raw: bytes) -> list[Any]:
    """A packed repeated scalar: varints or fixed-width values back to back."""
    wire, out, pos = WIRE[type_], [], 0
    size = {FIXED32: 4, FIXED64: 8}.get(wire)
    while pos < len(raw):
        if size is None:
            value, pos = varint(raw, pos)
        else:
            if pos + size > len(raw):
                raise bad("truncated packed field")
            value, pos = int.from_bytes(raw[pos : pos + size], "little"), pos + size
        out.append(scalar(type_, value))
    return out


_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
# Go's zero time.Time (year 1) as Unix seconds: what kubectl sends for "unset".
_GO_ZERO_SECONDS = -62135596800


def timestamp(raw: bytes, micro: bool) -> Any:
    """metav1.Time / MicroTime {seconds, nanos} as kube's JSON writes them (RFC 3339,
    UTC; whole seconds, or 6 fractional digits for MicroTime); None when zero."""
    seconds = nanos = 0
    for number, wire, item in fields(raw):
        if number in (1, 2):
            expect(wire, VARINT, "time")
            assert isinstance(item, int)
            if number == 1:
                seconds = signed(item)
            else:
                nanos = signed(item, 32)
    if (seconds == 0 and nanos == 0) or seconds == _GO_ZERO_SECONDS:
        return None
    try:
        moment = _EPOCH + timedelta(seconds=seconds, microseconds=nanos // 1000 if micro else 0)
    except OverflowError:
        raise bad("timestamp out of range") from None
    stamp = f"{moment.year:04d}-{moment:%m-%dT%H:%M:%S}"
    return f"{stamp}.{moment.microsecond:06d}Z" if micro else f"{stamp}Z"


def go_duration(nanos: int) -> str:
    """A Go time.Duration as its String(): 1h0m0s, 1m30s, 1.5s, 300ms, 0s."""
    if nanos == 0:
        return "0s"
    sign, u = ("-" if nanos < 0 else ""), abs(nanos)

    def fraction(value: int, digits: int) -> str:
        whole, rest = divmod(value, 10**digits)
        tail = str(rest).rjust(digits, "0").rstrip("0")
        return f"{whole}.{tail}" if tail else str(whole)

    if u < 1000:
        return f"{sign}{u}ns"
    if u < 1_000_000:
        return f"{sign}{fraction(u, 3)}µs"
    if u < 1_000_000_000:
        return f"{sign}{fraction(u, 6)}ms"
    seconds, rest = divmod(u, 1_000_000_000)
    out = fraction((seconds % 60) * 1_000_000_000 + rest, 9) + "s"
    if seconds >= 60:
        out = f"{seconds // 60 % 60}m{out}"
    if seconds >= 3600:
        out = f"{seconds // 3600}h{out}"
    return sign + out


def sub(raw: bytes, number: int, type_: str) -> Any:
    """Field `number` of a small message as a scalar (the last occurrence wins)."""
    value: Any = None
    for field_number, wire, item in fields(raw):
        if field_number == number:
            expect(wire, WIRE[type_], type_)
            value = scalar(type_, item)
    return value


def duration(raw: bytes) -> str:
    """metav1.Duration {duration: nanoseconds} as its JSON string."""
    return go_duration(sub(raw, 1, "int64") or 0)


def int_or_string(raw: bytes) -> Union[int, str]:
    """intstr.IntOrString {type, intVal, strVal} as the int or string JSON holds."""
    kind = sub(raw, 1, "int64") or 0
    if kind == 0:
        return int(sub(raw, 2, "int32") or 0)
    if kind == 1:
        return str(sub(raw, 3, "string") or "")
    raise bad(f"IntOrString has an unknown type {kind}")
