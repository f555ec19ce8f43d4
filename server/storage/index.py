"""The in-memory core shared by the memory and file backends.

Both backends serve every read from the same structure: a dict
`key -> (revision, orjson bytes)` plus a sorted key list for prefix listing
with bisect. Keeping serialized bytes (not dicts) means every read decodes a
fresh copy, so callers can never mutate what the store keeps, and a write
cannot be half-visible.

`IndexedStorage` implements the whole `Storage` protocol on top of that
index; how a write is staged, made durable in batches (the file backend's
group commit) and then applied is `commit.py`'s `GroupCommit`. The memory
backend overrides nothing. Keeping this logic in shared modules is what lets
the backends stay independent of each other (import-linter contract)
without duplicating it.

Every commit point also publishes one event to the store's `EventLog`
(`events.py`), right after the index changes and before the lock is
released, so events come out in revision order with no gaps. The log is the
one event source for watchers, and the history `list`/`get` undo to read an
older revision: the state at revision R is the current index with, for each
key written after R, the `prev` of its first such event.
"""
from __future__ import annotations

import asyncio
import bisect
import heapq
import inspect
from typing import Any, Callable, ClassVar, Iterator

import orjson

from .commit import Entry, GroupCommit
from .events import DEFAULT_EVENT_WINDOW, DEFAULT_WATCH_QUEUE, EventLog, LogWatcher, Record
from .interfaces import (
    KeyExistsError,
    KeyNotFoundError,
    ListResult,
    Object,
    Preconditions,
    Snapshot,
    TryUpdate,
    dumps_kept,
)



def stamp(obj: Object, revision: int) -> Object:
    """A shallow copy of `obj` whose metadata.resourceVersion is `revision`.

    Shallow on purpose: only the top level and `metadata` are rebuilt, so the
    caller's dict is never mutated and the cost stays independent of size.
    """
    if not isinstance(obj, dict):
        raise TypeError(f"storage objects must be dicts, got {type(obj).__name__}")
    out = dict(obj)
    meta: dict[str, Any] = dict(obj.get("metadata") or {})
    meta["resourceVersion"] = str(revision)
    out["metadata"] = meta
    return out


def prefix_end(prefix: str) -> str | None:
    """The smallest string greater than every string starting with `prefix`.

    None for the empty prefix (every key matches). Used as the exclusive
    upper bound of a bisect range so a listing of `/registry/foos/` never
    spills into `/registry/foosx/`.
    """
    if not prefix:
        return None
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def _revision_of(entry: Entry | None) -> int | None:
    return None if entry is None else entry[0]


class IndexedStorage(GroupCommit):
    """`Storage` over a sorted in-memory index, with persistence hooks.

    The global revision starts at 0 and every create, update and delete
    increments it by one; an object's resourceVersion is the revision of its
    last write. `delete` returns the last state stamped with the deletion's
    revision, as kube-apiserver (1.27+) does, so a later watch can report
    the DELETED event at that revision.
    """

    #: The name `kapi status` and `/readyz` report.
    backend_name: ClassVar[str] = "memory"

    def __init__(
        self,
        event_window: int = DEFAULT_EVENT_WINDOW,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        """`event_window`: how many events (revisions) are kept for watch and
        list-at-revision; `watch_queue_size`: how many live events one
        watcher may fall behind before it is terminated."""
        self._entries: dict[str, Entry] = {}
        self._keys: list[str] = []
        self._revision = 0  # the newest revision readers see (durable, applied)
        self._lock = asyncio.Lock()
        self._events = EventLog(event_window, watch_queue_size)
        self._init_commit()

    def _set_loaded_revision(self, revision: int) -> None:
        """After loading persisted state: the revision, with no event history."""
        self._revision = self._staged_revision = revision
        self._events.reset(revision)

    # ----- hooks for persistent subclasses ---------------------------------

    def _check_key(self, key: str) -> None:
        """Raise InvalidKeyError for keys this backend cannot hold (none here)."""

    def _check_write(self, key: str) -> None:
        """Raise InvalidKeyError for a write this backend cannot make; checked before staging."""

    def _encode(self, key: str, obj: Object) -> bytes:
        """The stored bytes of `obj` written at the next revision (the caller holds the lock)."""
        self._check_write(key)
        return dumps_kept(stamp(obj, self._staged_revision + 1))

    # ----- index primitives (no awaits: atomic with respect to the loop) ----

    def _index_put(self, key: str, data: bytes, revision: int) -> None:
        if key not in self._entries:
            bisect.insort(self._keys, key)
        self._entries[key] = (revision, data)

    def _index_remove(self, key: str) -> None:
        del self._entries[key]
        i = bisect.bisect_left(self._keys, key)
        del self._keys[i]

    def _range(self, prefix: str) -> tuple[int, int]:
        start = bisect.bisect_left(self._keys, prefix)
        end_key = prefix_end(prefix)
        end = len(self._keys) if end_key is None else bisect.bisect_left(self._keys, end_key)
        return start, end

    def _apply(self, record: Record) -> None:
        """Make a committed write visible: index, revision and its event, together."""
        if record.type == "DELETED":
            self._index_remove(record.key)
        else:
            self._index_put(record.key, record.data, record.revision)
        self._revision = record.revision
        self._events.publish(record)

    # ----- the Storage protocol --------------------------------------------

    async def create(self, key: str, obj: Object) -> Object:
        self._check_key(key)
        async with self._lock:
            if self._current(key) is not None:
                raise KeyExistsError(key, f"key already exists: {key}")
            data = self._encode(key, obj)
            write = self._stage(key, data, data, None)
        await self._commit(write)
        result: Object = orjson.loads(data)
        return result

    async def get(self, key: str, revision: int = 0) -> Object:
        result: Object = orjson.loads(await self.get_raw(key, revision))
        return result

    async def get_raw(self, key: str, revision: int = 0) -> bytes:
        self._check_key(key)
        data: bytes | None
        entry = self._entries.get(key)
        data = None if entry is None else entry[1]
        if revision and revision != self._revision:
            changed, then = self._events.state_at(key, revision)
            if changed:
                data = then
        if data is None:
            raise KeyNotFoundError(key, f"key not found: {key}")
        return data

    async def list(
        self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0
    ) -> ListResult:
        return self._page(prefix, limit, continue_key, revision, orjson.loads)

    async def list_raw(
        self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0
    ) -> ListResult:
        return self._page(prefix, limit, continue_key, revision, None)

    def _page(self, prefix: str, limit: int, continue_key: str, revision: int,
              decode: Callable[[bytes], Any] | None) -> ListResult:
        """A page of `list` (`decode` None: the stored bytes as they are)."""
        if revision and revision != self._revision:
            return self._list_at(prefix, limit, continue_key, revision, decode)
        start, end = self._range(prefix)
        if continue_key:
            start = max(start, bisect.bisect_right(self._keys, continue_key))
        stop = end if limit <= 0 else min(end, start + limit)
        keys = self._keys[start:stop]
        entries = self._entries
        items = [entries[k][1] for k in keys] if decode is None else [decode(entries[k][1]) for k in keys]
        remaining = max(0, end - stop)
        return ListResult(
            items=items,
            revision=self._revision,
            continue_key=keys[-1] if remaining and keys else "",
            remaining=remaining,
        )

    async def guaranteed_update(
        self,
        key: str,
        try_update: TryUpdate,
        preconditions: Preconditions | None = None,
        ignore_not_found: bool = False,
    ) -> Object:
        self._check_key(key)
        while True:
            entry = self._current(key)
            current: Object | None = None
            if entry is None:
                if not ignore_not_found:
                    raise KeyNotFoundError(key, f"key not found: {key}")
            else:
                current = orjson.loads(entry[1])
            if preconditions is not None:
                # Like the etcd3 store: an absent object is checked as an empty one.
                preconditions.check(key, current if current is not None else {})
            # try_update gets its own copy so `current` stays pristine for the
            # no-op comparison and the return value.
            arg: Object | None = None if entry is None else orjson.loads(entry[1])
            result = try_update(arg)
            new: Object = await result if inspect.isawaitable(result) else result
            async with self._lock:
                now = self._current(key)
                if _revision_of(now) != _revision_of(entry):
                    continue  # modified while try_update ran: retry on the new state
                if entry is not None and current is not None and stamp(new, entry[0]) == current:
                    return current  # no-op: nothing written, revision unchanged
                data = self._encode(key, new)
                write = self._stage(key, data, data, entry)
            await self._commit(write)
            result: Object = orjson.loads(data)
            return result

    async def delete(self, key: str, preconditions: Preconditions | None = None) -> Object:
        self._check_key(key)
        async with self._lock:
            entry = self._current(key)
            if entry is None:
                raise KeyNotFoundError(key, f"key not found: {key}")
            last: Object = orjson.loads(entry[1])
            if preconditions is not None:
                preconditions.check(key, last)
            gone = stamp(last, self._staged_revision + 1)  # no _check_write: an existing key's file cannot clash
            write = self._stage(key, None, dumps_kept(gone), entry)
        await self._commit(write)
        return gone

    async def start(self) -> None:
        """Nothing to connect to: the index is loaded when the store is built."""

    async def health(self) -> dict[str, Any]:
        return {"backend": self.backend_name, "ok": True, "revision": self._revision,
                "objects": len(self._entries)}

    async def current_revision(self) -> int:
        return self._revision

    async def count(self, prefix: str) -> int:
        start, end = self._range(prefix)
        return end - start

    def oldest_revision(self) -> int:
        return self._events.oldest

    def watch(self, prefix: str, from_revision: int) -> LogWatcher:
        return self._events.watch(prefix, from_revision)

    def watcher_count(self) -> int:
        """How many watchers are registered (not part of the protocol: for tests and metrics)."""
        return self._events.watcher_count()

    async def close(self) -> None:
        """Finish the writes in flight, then end every watch; the index itself is plain memory."""
        await self._finish_writes()
        self._events.close_all()

    async def snapshot(self) -> Snapshot:
        await self._finish_writes()
        return Snapshot(self._revision, dict(self._entries))

    async def restore(self, snapshot: Snapshot) -> None:
        if self._entries or self._revision:
            raise ValueError("only a new, empty store can be restored from a snapshot")
        self._entries = dict(snapshot.entries)
        self._keys = sorted(self._entries)
        self._set_loaded_revision(snapshot.revision)

    async def compact(self) -> int:
        await self._finish_writes()
        self._events.forget()
        return self._revision

    async def drop(self) -> None:
        await self._finish_writes()
        self._entries, self._keys = {}, []

    # ----- reading an older revision -----------------------------------------

    def _list_at(self, prefix: str, limit: int, continue_key: str, revision: int,
                 decode: Callable[[bytes], Any] | None) -> ListResult:
        """`list` as of `revision`: the current index with later writes undone.

        Synchronous (no await), so the index and the log cannot move under it.
        """
        then = self._events.changed_since(prefix, revision)  # key -> state at revision
        start, end = self._range(prefix)
        if continue_key:
            start = max(start, bisect.bisect_right(self._keys, continue_key))
        unchanged: Iterator[str] = (
            k for k in (self._keys[i] for i in range(start, end)) if k not in then
        )
        restored = sorted(k for k, v in then.items() if v is not None and k > continue_key)
        page: list[str] = []
        merged = heapq.merge(unchanged, restored)
        for k in merged:
            if limit > 0 and len(page) == limit:
                break
            page.append(k)
        stored = [then.get(k) or self._entries[k][1] for k in page]
        items = stored if decode is None else [decode(data) for data in stored]
        remaining = 0
        if page:
            last = page[-1]
            now_after = end - bisect.bisect_right(self._keys, last, start, end)
            remaining = (
                now_after
                - sum(1 for k in then if k > last and k in self._entries)
                + sum(1 for k, v in then.items() if k > last and v is not None)
            )
        return ListResult(
            items=items,
            revision=revision,
            continue_key=page[-1] if remaining and page else "",
            remaining=remaining,
        )
