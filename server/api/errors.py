"""Kubernetes `Status` errors: the one exception tree every layer raises.

Every failure a client can see is one of these. The HTTP boundary
(`kapi.endpoints`) catches `StatusError` once and renders `to_status()`;
anything else escaping a handler is a bug and becomes a generic 500 Status
without a traceback.

    StatusError
    ├── BadRequest            400  malformed body, bad query parameter
    ├── Unauthorized          401
    ├── Forbidden             403
    ├── NotFound              404  object or resource type missing
    ├── MethodNotSupported    405
    ├── NotAcceptable         406
    ├── AlreadyExists         409  create of an existing name
    ├── Conflict              409  stale resourceVersion, failed precondition
    ├── Gone                  410  expired revision or continue token
    ├── RequestEntityTooLarge 413
    ├── UnsupportedMediaType  415
    ├── Invalid               422  field errors in details.causes
    ├── TooManyRequests       429
    ├── InternalError         500
    ├── ServiceUnavailable    503
    └── Timeout               504
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson


@dataclass(frozen=True)
class Cause:
    """One entry of `details.causes` (a field error for `Invalid`)."""

    reason: str
    message: str
    field: str = ""

    def to_dict(self) -> dict[str, str]:
        out = {"reason": self.reason, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


@dataclass(frozen=True)
class QualifiedKind:
    """What `details` names: the object's name, group and kind (plural for kube)."""

    name: str = ""
    group: str = ""
    kind: str = ""


class StatusError(Exception):
    """Base: an HTTP code, a machine reason and a human message."""

    code: int = 500
    reason: str = "InternalError"

    def __init__(
        self,
        message: str,
        *,
        details: QualifiedKind | None = None,
        causes: list[Cause] | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details
        self.causes = list(causes or [])
        self.retry_after = retry_after

    def to_status(self) -> dict[str, Any]:
        """Render the `meta.k8s.io/v1 Status` body kube-apiserver would send."""
        status: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        details: dict[str, Any] | None = None if self.details is None else {}  # kube's empty details: {}
        if self.details is not None:
            if self.details.name:
                details["name"] = self.details.name
            if self.details.group:
                details["group"] = self.details.group
            if self.details.kind:
                details["kind"] = self.details.kind
        if self.causes or self.retry_after is not None:
            details = details or {}
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details is not None:
            status["details"] = details
        return status


def no_such_resource() -> "NotFound":
    """kube's 404 for a path it routes but does not serve (an unknown resource, version or subresource)."""
    return NotFound("the server could not find the requested resource", details=QualifiedKind())


def method_not_allowed() -> "MethodNotSupported":
    """kube's 405 for a verb the path does not serve."""
    return MethodNotSupported("the server does not allow this method on the requested resource",
                              details=QualifiedKind())


class BadRequest(StatusError):
    code, reason = 400, "BadRequest"


class Unauthorized(StatusError):
    code, reason = 401, "Unauthorized"


class Forbidden(StatusError):
    code, reason = 403, "Forbidden"


class NotFound(StatusError):
    code, reason = 404, "NotFound"


class MethodNotSupported(StatusError):
    code, reason = 405, "MethodNotAllowed"


class NotAcceptable(StatusError):
    code, reason = 406, "NotAcceptable"


class AlreadyExists(StatusError):
    code, reason = 409, "AlreadyExists"


class Conflict(StatusError):
    code, reason = 409, "Conflict"


class Gone(StatusError):
    code, reason = 410, "Expired"


class RequestEntityTooLarge(StatusError):
    code, reason = 413, "RequestEntityTooLarge"


class UnsupportedMediaType(StatusError):
    code, reason = 415, "UnsupportedMediaType"


class Invalid(StatusError):
    code, reason = 422, "Invalid"


class TooManyRequests(StatusError):
    code, reason = 429, "TooManyRequests"


class InternalError(StatusError):
    code, reason = 500, "InternalError"


class ServiceUnavailable(StatusError):
    code, reason = 503, "ServiceUnavailable"


class Timeout(StatusError):
    code, reason = 504, "Timeout"


def resource_label(group: str, plural: str) -> str:
    """`foos.hello.zeng.dev` or `namespaces`: how kube names a resource in messages."""
    return f"{plural}.{group}" if group else plural


def not_found(group: str, plural: str, name: str) -> NotFound:
    return NotFound(
        f'{resource_label(group, plural)} "{name}" not found',
        details=QualifiedKind(name=name, group=group, kind=plural),
    )


def already_exists(group: str, plural: str, name: str) -> AlreadyExists:
    return AlreadyExists(
        f'{resource_label(group, plural)} "{name}" already exists',
        details=QualifiedKind(name=name, group=group, kind=plural),
    )


def conflict(group: str, plural: str, name: str, why: str) -> Conflict:
    return Conflict(
        f'Operation cannot be fulfilled on {resource_label(group, plural)} "{name}": {why}',
        details=QualifiedKind(name=name, group=group, kind=plural),
    )


def invalid(group: str, kind: str, name: str, causes: list[Cause]) -> Invalid:
    """422 with every field error listed, worded like kube-apiserver's."""
    label = f"{kind}.{group}" if group else kind
    summary = ", ".join(
        f"{c.field}: {c.message}" if c.field else c.message for c in causes
    )
    msg = f'{label} "{name}" is invalid: '
    msg += f"[{summary}]" if len(causes) > 1 else summary
    return Invalid(msg, details=QualifiedKind(name=name, group=group, kind=kind), causes=causes)


def field_invalid(path: str, value: Any, detail: str) -> Cause:
    """`Invalid value: "x": detail` in kube's wording."""
    try:
        shown = orjson.dumps(value).decode()
    except TypeError:
        shown = repr(value)
    return Cause("FieldValueInvalid", f"Invalid value: {shown}: {detail}", path)


def field_required(path: str, detail: str = "Required value") -> Cause:
    return Cause("FieldValueRequired", detail, path)


def required(path: str, detail: str = "") -> Cause:
    """kube's `field.Required`: `Required value`, then `: detail` when there is one."""
    return field_required(path, f"Required value: {detail}" if detail else "Required value")


def field_forbidden(path: str, detail: str = "") -> Cause:
    """`Forbidden: detail`, as kube's `field.Forbidden` renders it."""
    return Cause("FieldValueForbidden", f"Forbidden: {detail}" if detail else "Forbidden", path)


# -- field errors as k8s.io/apimachinery `field.Error.ErrorBody()` renders them ----------------

_GO_ESCAPES = {'"': '\\"', "\\": "\\\\", "\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n",
               "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(text: str) -> str:
    """Go's `%q` / `strconv.Quote`: printable characters kept, the rest escaped."""
    out = []
    for ch in text:
        if ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) <= 0xFFFF:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    return '"' + "".join(out) + '"'


def _float_digits(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of a finite non-zero |value|, and where the decimal point goes."""
    mantissa, _, exp = repr(abs(value)).partition("e")
    whole, _, frac = mantissa.partition(".")
    digits = whole + frac
    significant = digits.lstrip("0")
    point = len(whole) + int(exp or 0) - (len(digits) - len(significant))
    return significant.rstrip("0"), point


def go_float(value: float, *, json: bool = False) -> str:
    """A float64 as Go prints it: `%v` (`1e+06`, `0.5`, `3`) or, with `json`, `encoding/json` (`1e+21`)."""
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if repr(value).startswith("-") else ""
    if value == 0:
        return sign + "0"
    digits, point = _float_digits(value)
    exp = point - 1
    if json:
        use_exp = abs(value) < 1e-6 or abs(value) >= 1e21
    else:
        use_exp = exp < -4 or exp >= 6  # strconv 'g' with the shortest precision
    if use_exp:
        mant = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        width = 1 if json else 2
        return f"{sign}{mant}e{'-' if exp < 0 else '+'}{abs(exp):0{width}d}"
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return sign + digits + "0" * (point - len(digits))
    return f"{sign}{digits[:point]}.{digits[point:]}"


def go_json(value: Any) -> str:
    """Go's `json.Marshal` of decoded JSON: compact, sorted keys, HTML characters escaped."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{go_json(str(k))}:{go_json(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, float):
        return go_float(value, json=True)
    text = orjson.dumps(value).decode() if value is None or isinstance(value, (bool, int, str)) else repr(value)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def _go_sharp_v(value: Any) -> str:
    """Go's `%#v` of a decoded JSON map, as kube 1.32's field errors print one."""
    if isinstance(value, dict):
        return "map[string]interface {}{" + ", ".join(
            f"{go_quote(str(k))}:{_go_sharp_v(value[k])}" for k in sorted(value)) + "}"
    if isinstance(value, list):
        return "[]interface {}{" + ", ".join(_go_sharp_v(v) for v in value) + "}"
    if value is None:
        return "interface {}(nil)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return go_float(value)
    return go_quote(value) if isinstance(value, str) else str(value)


def render_value(value: Any) -> str:
    """A bad value inside a field error as kube 1.32 prints it: `5`, `1e+06`, `"x"`, `"null"`,
    `map[string]interface {}{"a":1}`."""
    if value is None:
        return '"null"'
    if isinstance(value, dict):
        return _go_sharp_v(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float(value)
    if isinstance(value, str):
        return go_quote(value)
    return go_json(value)


def field_value_invalid(path: str, value: Any, detail: str) -> Cause:
    """`field.Invalid` with Go's rendering of the value (floats as `1e+06`, maps with sorted keys)."""
    return Cause("FieldValueInvalid", f"Invalid value: {render_value(value)}: {detail}", path)


def field_type_invalid(path: str, value: Any, detail: str) -> Cause:
    """`field.TypeInvalid`: reads `Invalid value: ...` like `Invalid`, reason `FieldValueTypeInvalid`."""
    return Cause("FieldValueTypeInvalid", f"Invalid value: {render_value(value)}: {detail}", path)


def field_not_supported(path: str, value: Any, supported: list[str]) -> Cause:
    """`Unsupported value: "huge": supported values: "small", "medium", "large"`."""
    msg = f"Unsupported value: {render_value(value)}"
    if supported:
        msg += ": supported values: " + ", ".join(go_quote(s) for s in supported)
    return Cause("FieldValueNotSupported", msg, path)


def field_duplicate(path: str, value: Any) -> Cause:
    """`Duplicate value: map[string]interface {}{"name":"cheese"}` (kube 1.32 prints maps with %#v)."""
    return Cause("FieldValueDuplicate", f"Duplicate value: {render_value(value)}", path)


def field_too_long(path: str, max_length: int) -> Cause:
    """`Too long: may not be more than 5 bytes` (the value itself is never shown)."""
    if max_length < 0:
        return Cause("FieldValueTooLong", "Too long: value is too long", path)
    unit = "byte" if max_length == 1 else "bytes"
    return Cause("FieldValueTooLong", f"Too long: may not be more than {max_length} {unit}", path)


def field_too_many(path: str, actual: int, maximum: int) -> Cause:
    """`Too many: 4: must have at most 3 items`."""
    detail = f"must have at most {maximum} {'item' if maximum == 1 else 'items'}" if maximum >= 0 \
        else "has too many items"
    shown = f"{actual}: " if actual >= 0 else ""
    return Cause("FieldValueTooMany", f"Too many: {shown}{detail}", path)
