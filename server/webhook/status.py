"""Status errors whose every field is chosen at run time, as kube builds them around webhooks.

A webhook's refusal carries its own code, reason and details (kube copies the
webhook's `Status`, an empty reason staying empty, which kubectl prints as
plain `Error from server: ...`), and kube's `NewInternalError` adds a cause
with only a message. The fixed classes of `kapi.api.errors` cannot say
either, so this one renders the Status it was given.
"""
from __future__ import annotations

from typing import Any

from kapi.api.errors import StatusError


class RawStatusError(StatusError):
    """A StatusError rendered from a `meta.k8s.io/v1 Status`-shaped dict (empty fields left out)."""

    def __init__(self, status: dict[str, Any]) -> None:
        message = str(status.get("message") or "")
        super().__init__(message)
        code = status.get("code")
        self.code = code if isinstance(code, int) and not isinstance(code, bool) and code > 0 else 500
        self.reason = str(status.get("reason") or "")
        details = status.get("details")
        self._details: dict[str, Any] | None = details if isinstance(details, dict) and details else None

    def to_status(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
        if self.message:
            out["message"] = self.message
        if self.reason:
            out["reason"] = self.reason
        if self._details:
            out["details"] = self._details
        out["code"] = self.code
        return out


def internal_error(message: str) -> RawStatusError:
    """kube's `apierrors.NewInternalError(err)`: 500 `Internal error occurred: <err>`, the error as a cause."""
    return RawStatusError({
        "message": f"Internal error occurred: {message}", "reason": "InternalError", "code": 500,
        "details": {"causes": [{"message": message}]},
    })


def unknown_error(message: str) -> RawStatusError:
    """What kube answers for an error that is no Status (a failed read-side conversion): 500, no reason."""
    return RawStatusError({"message": message, "code": 500})
