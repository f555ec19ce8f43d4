"""List options, resourceVersion semantics and continue tokens, as kube-apiserver documents them.

Which revision a list or watch reads is decided here, once, from
`resourceVersion`, `resourceVersionMatch`, `limit` and `continue`
(https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-get-and-list).
Continue tokens are opaque to clients and signed with a per-server key, so
a forged or garbled one is a 400 and never reaches storage.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Any, Callable

import orjson

from kapi.api import errors
from kapi.api.errors import Cause, go_quote
from kapi.api.field_selectors import FieldSelector, fields_of, parse_field_selector
from kapi.api.selectors import LabelSelector, parse_label_selector

NOT_OLDER_THAN, EXACT = "NotOlderThan", "Exact"
_TOKEN_VERSION = "meta.k8s.io/v1"


@dataclass(frozen=True)
class ListOptions:
    """Everything that shapes a list or watch; parsed from the query by the HTTP layer."""

    label_selector: LabelSelector = field(default_factory=lambda: parse_label_selector(""))
    field_selector: FieldSelector = field(default_factory=lambda: parse_field_selector(""))
    limit: int = 0
    continue_token: str = ""
    resource_version: str = ""
    resource_version_match: str = ""
    timeout_seconds: float | None = None
    allow_bookmarks: bool = False
    send_initial_events: bool | None = None

    @property
    def filtered(self) -> bool:
        return not (self.label_selector.empty and self.field_selector.empty)


def selector_matcher(opts: ListOptions) -> Callable[[dict[str, Any] | None], bool]:
    """A predicate for the selectors in `opts` (every object matches when there are none)."""
    if not opts.filtered:
        return lambda obj: obj is not None
    labels, fields = opts.label_selector, opts.field_selector

    def matches(obj: dict[str, Any] | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return labels.matches(meta.get("labels")) and fields.matches(fields_of(obj, fields.fields))
    return matches


def _invalid(causes: list[Cause]) -> errors.Invalid:
    return errors.invalid("meta.k8s.io", "ListOptions", "", causes)


def validate_list_options(opts: ListOptions, watch: bool) -> None:
    """kube's ValidateListOptions: impossible combinations are a 422 before anything is read."""
    causes: list[Cause] = []
    match, rv = opts.resource_version_match, opts.resource_version
    if match not in ("", NOT_OLDER_THAN, EXACT):
        causes.append(errors.field_not_supported("resourceVersionMatch", match, [NOT_OLDER_THAN, EXACT]))
    if opts.send_initial_events is not None:
        if not watch:
            causes.append(errors.field_forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list"))
        elif opts.send_initial_events and not opts.allow_bookmarks:
            causes.append(errors.field_forbidden(
                "allowWatchBookmarks", "allowWatchBookmarks must be set to true when sendInitialEvents is true"))
        if watch and match != NOT_OLDER_THAN:
            causes.append(errors.field_forbidden(
                "resourceVersionMatch", "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
    elif match:
        if watch:
            causes.append(errors.field_forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden for watch"))
        elif not rv:
            causes.append(errors.field_forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"))
        elif match == EXACT and rv == "0":
            causes.append(errors.field_forbidden(
                "resourceVersionMatch",
                "resourceVersionMatch \"exact\" is forbidden for resourceVersion \"0\""))
        if opts.continue_token:
            causes.append(errors.field_forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"))
    if opts.continue_token and rv and rv != "0" and not watch:
        causes.append(errors.field_forbidden(
            "resourceVersion", "specifying resource version is not allowed when using continue"))
    if causes:
        raise _invalid(causes)
    if rv and not _is_revision(rv):  # the storage's ParseResourceVersion, after option validation
        why = "value out of range" if rv.isdigit() else "invalid syntax"
        raise errors.BadRequest(f"invalid resource version: resourceVersion: Invalid value: {go_quote(rv)}: "
                                f"strconv.ParseUint: parsing {go_quote(rv)}: {why}")


def _is_revision(text: str) -> bool:
    return text.isdigit() and len(text) < 20


@dataclass(frozen=True)
class ReadAt:
    """The revision a list reads: `exact` pins it (0 = current); `not_older_than` bounds it from below."""

    exact: int = 0
    not_older_than: int = 0


def list_revision(opts: ListOptions) -> ReadAt:
    """The documented table for list: unset → most recent, "0" → any, N → not older than or exact."""
    rv = opts.resource_version
    if not rv or rv == "0":
        return ReadAt()
    revision = int(rv)
    if opts.resource_version_match == EXACT or (not opts.resource_version_match and opts.limit > 0):
        return ReadAt(exact=revision)
    return ReadAt(not_older_than=revision)


class ContinueCodec:
    """Signs and checks continue tokens: `{rv, start}` plus an HMAC under this server's key."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self._key, payload, hashlib.sha256).hexdigest()[:32]

    def encode(self, revision: int, start_key: str) -> str:
        payload = orjson.dumps({"v": _TOKEN_VERSION, "rv": revision, "start": start_key})
        token = orjson.dumps({"p": payload.decode(), "s": self._mac(payload)})
        return base64.urlsafe_b64encode(token).decode().rstrip("=")

    def decode(self, token: str, prefix: str) -> tuple[int, str]:
        """(revision, key to resume after); 400 for anything forged, garbled or from another collection."""
        try:
            outer = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
            payload = outer["p"].encode()
            if not hmac.compare_digest(self._mac(payload), str(outer["s"])):
                raise ValueError("signature")
            data = orjson.loads(payload)
            revision, start = int(data["rv"]), data["start"]
        except (binascii.Error, ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError):
            raise errors.BadRequest("continue key is not valid: the token is malformed or was not issued "
                                    "by this server") from None
        if data.get("v") != _TOKEN_VERSION or not isinstance(start, str) or not start.startswith(prefix):
            raise errors.BadRequest("continue key is not valid: it does not belong to this collection")
        return revision, start


def expired_continue() -> errors.Gone:
    return errors.Gone(
        "The provided continue parameter is too old to display a consistent list result. You can start a new "
        "list without the continue parameter, or use the continue token in this response to retrieve the "
        "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
        "that were created, modified, or deleted between the time the first chunk was returned and now may "
        "show up in the list."
    )
