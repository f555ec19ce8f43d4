"""Faults a test asks one cluster for on purpose: failing, slow or conflicting requests, webhook timeouts, a
paused storage.

Operators break in production on events a test cannot easily provoke; a
cluster's `Faults` holds the ones in force, each matched against requests by
verb, resource and user. The request path asks `for_request` (fail, delay,
conflict), the admission webhooks ask `webhook_times_out`, the watch
streams wait on `resumed()` while the storage is paused. One-shot actions
(ending watches with 410, compacting history) are carried out by the
endpoint that receives them and are not kept here.

A fault spec is plain JSON (see `FAULT_TYPES`):

    {"type": "Fail", "verbs": ["create"], "resource": "configmaps", "code": 500, "count": 2}
    {"type": "Delay", "resource": "pods", "user": "bob", "delaySeconds": 0.5}
    {"type": "Conflict", "resource": "deployments.apps", "count": 3}
    {"type": "WebhookTimeout", "webhook": "check.example.com"}
    {"type": "PauseStorage"}
"""
from __future__ import annotations

import asyncio
import itertools
from dataclasses import dataclass, field
from typing import Any

from kapi.api import errors

FAULT_TYPES = ("Fail", "Delay", "Conflict", "WebhookTimeout", "PauseStorage")
ACTIONS = ("ExpireWatches", "Compact")  # done once when posted, never kept
WRITE_VERBS = frozenset({"create", "update", "patch", "delete", "deletecollection"})
_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound", 405: "MethodNotAllowed",
            409: "Conflict", 410: "Expired", 422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
            503: "ServiceUnavailable", 504: "Timeout"}
_KNOWN_FIELDS = frozenset({"type", "verbs", "resource", "user", "code", "message", "delaySeconds", "count",
                           "webhook"})


@dataclass
class Fault:
    """One fault in force; `count` left (None: until removed)."""

    id: str
    type: str
    verbs: frozenset[str] = frozenset()
    resource: str = ""  # "plural" or "plural.group"; "" matches every request
    user: str = ""
    code: int = 0
    message: str = ""
    delay: float = 0.0
    count: int | None = None
    webhook: str = ""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "type": self.type}
        if self.verbs:
            out["verbs"] = sorted(self.verbs)
        for key, value in (("resource", self.resource), ("user", self.user), ("code", self.code),
                           ("message", self.message), ("delaySeconds", self.delay), ("webhook", self.webhook)):
            if value:
                out[key] = value
        if self.count is not None:
            out["count"] = self.count
        return out

    def matches(self, verb: str, group: str, resource: str, user: str) -> bool:
        if self.verbs and verb not in self.verbs:
            return False
        if self.user and user != self.user:
            return False
        if not self.resource:
            return True
        plural, _, wanted_group = self.resource.partition(".")
        return plural == resource and wanted_group == group

    def error(self, group: str, resource: str, name: str) -> errors.StatusError:
        """The Status this fault answers with."""
        if self.type == "Conflict":
            return errors.conflict(group, resource, name, self.message or (
                "the object has been modified; please apply your changes to the latest version and try again"))
        error = errors.StatusError(self.message or f"injected fault {self.id}: the server answered {self.code}")
        error.code, error.reason = self.code, _REASONS.get(self.code, "Unknown" if self.code >= 400 else "")
        if self.code in (429, 503, 504):
            error.retry_after = 1
        return error


def _field(spec: dict[str, Any], name: str, kind: type | tuple[type, ...], default: Any) -> Any:
    value = spec.get(name, default)
    if value is default:
        return default
    if isinstance(value, bool) or not isinstance(value, kind):  # no fault field is a boolean
        raise errors.BadRequest(f"fault field {name!r} has the wrong type: {value!r}")
    return value


def parse_fault(spec: Any, fault_id: str) -> Fault:
    """A `Fault` from its JSON spec; 400 naming the problem for anything malformed."""
    if not isinstance(spec, dict):
        raise errors.BadRequest('a fault is a JSON object such as {"type": "Fail", "code": 500}')
    kind = spec.get("type")
    if kind not in FAULT_TYPES:
        raise errors.BadRequest(f"fault type {kind!r} is not one of {', '.join(FAULT_TYPES + ACTIONS)}")
    unknown = sorted(set(spec) - _KNOWN_FIELDS)
    if unknown:
        raise errors.BadRequest(f"unknown fault field(s): {', '.join(unknown)}")
    verbs = _field(spec, "verbs", list, [])
    if not all(isinstance(v, str) and v for v in verbs):
        raise errors.BadRequest("fault field 'verbs' must be a list of verb names")
    count = _field(spec, "count", int, None)
    if count is not None and count < 1:
        raise errors.BadRequest("fault field 'count' must be 1 or more")
    delay = float(_field(spec, "delaySeconds", (int, float), 0.0))
    if not 0 <= delay <= 300:
        raise errors.BadRequest("fault field 'delaySeconds' must be between 0 and 300")
    code = _field(spec, "code", int, 0)
    fault = Fault(fault_id, kind, frozenset(verbs), _field(spec, "resource", str, ""), _field(spec, "user", str, ""),
                  code, _field(spec, "message", str, ""), delay, count, _field(spec, "webhook", str, ""))
    if kind == "Fail" and not 400 <= code <= 599:
        raise errors.BadRequest("a Fail fault needs a 'code' between 400 and 599")
    if kind == "Delay" and not delay:
        raise errors.BadRequest("a Delay fault needs 'delaySeconds' above 0")
    if kind == "Conflict" and not fault.verbs:
        fault.verbs = WRITE_VERBS
    if kind == "Conflict" and not fault.verbs <= WRITE_VERBS:
        raise errors.BadRequest(f"a Conflict fault applies to writes only: {', '.join(sorted(WRITE_VERBS))}")
    return fault


@dataclass
class Faults:
    """The faults in force in one cluster."""

    _faults: dict[str, Fault] = field(default_factory=dict)
    _ids: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _resumed: asyncio.Event | None = None

    def add(self, spec: Any) -> Fault:
        fault = parse_fault(spec, f"fault-{next(self._ids)}")
        self._faults[fault.id] = fault
        return fault

    def remove(self, fault_id: str) -> bool:
        found = self._faults.pop(fault_id, None) is not None
        self._wake_if_resumed()
        return found

    def clear(self) -> None:
        self._faults.clear()
        self._wake_if_resumed()

    def describe(self) -> list[dict[str, Any]]:
        return [f.to_dict() for f in self._faults.values()]

    def __bool__(self) -> bool:
        return bool(self._faults)

    # ----- questions the request path asks ---------------------------------------------------------------------

    def for_request(self, verb: str, group: str, resource: str, user: str) -> list[Fault]:
        """The Fail, Delay and Conflict faults this request meets, each counted once."""
        met = [f for f in self._faults.values()
               if f.type in ("Fail", "Delay", "Conflict") and f.matches(verb, group, resource, user)]
        self._consume(met)
        return met

    def webhook_times_out(self, name: str) -> bool:
        """Whether a call to the webhook `name` must fail as timed out."""
        met = [f for f in self._faults.values() if f.type == "WebhookTimeout" and f.webhook in ("", name)]
        self._consume(met)
        return bool(met)

    def _consume(self, met: list[Fault]) -> None:
        for fault in met:
            if fault.count is not None:
                fault.count -= 1
                if fault.count == 0:
                    self._faults.pop(fault.id, None)

    @property
    def paused(self) -> bool:
        return any(f.type == "PauseStorage" for f in self._faults.values())

    async def resumed(self) -> None:
        """Return once the storage is no longer paused."""
        while self.paused:
            if self._resumed is None or self._resumed.is_set():
                self._resumed = asyncio.Event()
            await self._resumed.wait()

    def _wake_if_resumed(self) -> None:
        if self._resumed is not None and not self.paused:
            self._resumed.set()
