"""`metadata.managedFields` as records: decoding, encoding, kube's bookkeeping rules and its conflict errors.

An entry is identified as kube identifies it: manager, operation, subresource,
and — for `Update` entries only — the apiVersion (so one manager updating
through two versions has two entries, while an applier has one). The rules
for when entries merge, lose their time, are capped or dropped follow
k8s.io/apimachinery `util/managedfields` (documented at
https://kubernetes.io/docs/reference/using-api/server-side-apply/).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

import orjson

from kapi.api import errors
from kapi.api.errors import go_quote
from kapi.api.fieldpath import (
    FieldPathError, FieldSet, Path, from_fields_v1, path_string, sorted_paths, to_fields_v1,
)

APPLY, UPDATE = "Apply", "Update"
MAX_UPDATE_MANAGERS = 10
ANCIENT = "ancient-changes"


class ManagedFieldsError(ValueError):
    """Entries a client wrote that kube would refuse to decode."""


@dataclass(frozen=True)
class Entry:
    manager: str
    operation: str
    api_version: str
    fields: frozenset[Any]
    time: str | None = None
    subresource: str = ""

    @property
    def applied(self) -> bool:
        return self.operation == APPLY

    @property
    def ident(self) -> str:
        """kube's manager identifier: the entry minus time and fields (and apiVersion for appliers)."""
        return identifier(self.manager, self.operation, self.api_version, self.subresource)

    def with_fields(self, fields: FieldSet | frozenset[Any]) -> "Entry":
        return replace(self, fields=frozenset(fields))

    def describe(self) -> str:
        """How kube names the manager in a conflict: `"up" using v1`, `"m" with subresource "status"`."""
        text = go_quote(self.manager)
        if self.subresource:
            text += f" with subresource {go_quote(self.subresource)}"
        if self.operation == UPDATE:
            text += f" using {self.api_version}"
        return text


@lru_cache(maxsize=1024)
def identifier(manager: str, operation: str, api_version: str, subresource: str = "") -> str:
    record: dict[str, str] = {"manager": manager, "operation": operation}
    if operation != APPLY and api_version:
        record["apiVersion"] = api_version
    if subresource:
        record["subresource"] = subresource
    return orjson.dumps(record).decode()


Managed = dict[str, Entry]


def decode(raw: Any) -> Managed:
    """The entries of an object's `managedFields`; `ManagedFieldsError` on anything kube cannot read."""
    if raw is None:
        return {}
    if not isinstance(raw, list):
        raise ManagedFieldsError("managedFields must be a list")
    out: Managed = {}
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ManagedFieldsError(f"managed fields entry {i} must be an object")
        if item.get("operation") not in (APPLY, UPDATE):
            raise ManagedFieldsError("operation must be `Apply` or `Update`")
        if not item.get("apiVersion") or not isinstance(item["apiVersion"], str):
            raise ManagedFieldsError("apiVersion must not be empty")
        if item.get("fieldsType") != "FieldsV1":
            raise ManagedFieldsError(f"invalid fieldsType in managed fields entry {i}")
        try:
            fields = from_fields_v1(item.get("fieldsV1") if item.get("fieldsV1") is not None else {})
        except FieldPathError as exc:
            raise ManagedFieldsError(f"error decoding set: {exc}") from None
        time = item.get("time") if isinstance(item.get("time"), str) else None
        entry = Entry(str(item.get("manager") or ""), item["operation"], item["apiVersion"], frozenset(fields),
                      time, str(item.get("subresource") or ""))
        out[entry.ident] = entry
    return out


def decode_or_empty(raw: Any) -> Managed:
    """`decode`, or no entries when kube could not decode them; cached, since every write reads the stored ones."""
    if not raw:
        return {}
    try:
        return dict(_decode_cached(orjson.dumps(raw)))
    except (ManagedFieldsError, TypeError, orjson.JSONEncodeError):
        return {}


@lru_cache(maxsize=2048)
def _decode_cached(raw: bytes) -> Managed:
    return decode(orjson.loads(raw))


def is_reset(raw: Any) -> bool:
    """`managedFields: []` (or one empty entry) on a write asks kube to forget every manager."""
    return isinstance(raw, list) and (not raw or (len(raw) == 1 and raw[0] == {}))


def encode(managed: Managed) -> list[dict[str, Any]]:
    """The entries as kube writes them: appliers first, then by time, manager, apiVersion, subresource."""
    entries = sorted(managed.values(), key=lambda e: (e.operation, e.time or "", e.manager, e.api_version,
                                                        e.subresource))
    out = []
    for e in entries:
        record: dict[str, Any] = {"manager": e.manager, "operation": e.operation, "apiVersion": e.api_version}
        if e.time:
            record["time"] = e.time
        record["fieldsType"] = "FieldsV1"
        record["fieldsV1"] = orjson.loads(_fields_v1_json(e.fields))
        if e.subresource:
            record["subresource"] = e.subresource
        out.append(record)
    return out


@lru_cache(maxsize=2048)
def _fields_v1_json(fields: frozenset[Any]) -> bytes:
    """Objects written by one client mostly share their field sets: encode each set once."""
    return orjson.dumps(to_fields_v1(fields))


def cap_update_managers(managed: Managed, limit: int = MAX_UPDATE_MANAGERS) -> Managed:
    """More than `limit` Update entries: the oldest fold into one `ancient-changes` entry per apiVersion."""
    if sum(1 for e in managed.values() if not e.applied) <= limit:
        return managed
    updaters = sorted((e for e in managed.values() if not e.applied), key=lambda e: (e.time or "", e.ident))
    out = dict(managed)
    first_of_version: dict[str, str] = {}
    count = len(updaters)
    for entry in updaters:
        if count <= limit:
            break
        bucket = identifier(ANCIENT, UPDATE, entry.api_version)
        first = first_of_version.get(entry.api_version)
        if first is None:
            first_of_version[entry.api_version] = entry.ident
            continue
        if bucket not in out:
            oldest = out.pop(first)
            out[bucket] = Entry(ANCIENT, UPDATE, oldest.api_version, oldest.fields, oldest.time)
        out[bucket] = replace(out[bucket], fields=out[bucket].fields | entry.fields, time=entry.time)
        del out[entry.ident]
        count -= 1
    return out


class Conflicts(Exception):
    """Fields an apply would take from other managers: kube's 409 unless forced (`conflict_error`)."""

    def __init__(self, items: list[tuple[Path, Entry]]) -> None:
        super().__init__("conflicts")
        self.items = items


def conflict_error(items: list[tuple[Path, Entry]]) -> errors.Conflict:
    """409 as kube words it: one line per conflict, grouped by manager in identifier order."""
    by_manager: dict[str, tuple[Entry, list[Path]]] = {}
    for path, entry in items:
        by_manager.setdefault(entry.ident, (entry, []))[1].append(path)
    causes: list[errors.Cause] = []
    lines: list[tuple[Entry, list[Path]]] = []
    for ident in sorted(by_manager):
        entry, paths = by_manager[ident]
        ordered = sorted_paths(paths)
        lines.append((entry, ordered))
        causes.extend(errors.Cause("FieldManagerConflict", f"conflict with {entry.describe()}", path_string(p))
                      for p in ordered)
    if len(items) == 1:
        entry, paths = lines[0]
        message = f"Apply failed with 1 conflict: conflict with {entry.describe()}: {path_string(paths[0])}"
    else:
        text = "\n".join(f"conflicts with {entry.describe()}:\n" + "\n".join(f"- {path_string(p)}" for p in paths)
                         for entry, paths in lines)
        message = f"Apply failed with {len(items)} conflicts: {text}"
    return errors.Conflict(message, causes=causes)
