"""Kubernetes `Status` errors: the one exception tree every layer raises.

Every failure a client can see is one of these. The HTTP boundary
(`server.endpoints`) catches `StatusError` once and renders `to_status()`;
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
        details: dict[str, Any] = {}
        if self.details is not None:
            if self.details.name:
                details["name"] = self.details.name
            if self.details.group:
                details["group"] = self.details.group
            if self.details.kind:
                details["kind"] = self.details.kind
        if self.causes:
            details["causes"] = [c.to_dict() for c in self.causes]
        if self.retry_after is not None:
            details["retryAfterSeconds"] = self.retry_after
        if details:
            status["details"] = details
        return status


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


def field_forbidden(path: str, detail: str = "") -> Cause:
    """`Forbidden: detail`, as kube's `field.Forbidden` renders it."""
    return Cause("FieldValueForbidden", f"Forbidden: {detail}" if detail else "Forbidden", path)
