"""The in-memory core shared by the memory and file backends.

Both backends serve every read from the same structure: a dict
`key -> (revision, orjson bytes)` plus a sorted key list for prefix listing
with bisect. Keeping serialized bytes (not dicts) means every read decodes a
fresh copy, so callers can never mutate what the store keeps, and a write
cannot be half-visible.

`IndexedStorage` implements the whole `Storage` protocol on top of that
index. Writes are ordered by one `asyncio.Lock`, held only to check and
stage a write, never across disk I/O. The memory backend applies a staged
write at once. A subclass that persists (the file backend) sets
`persistent` and implements `_persist_batch`: staged writes queue up, and
one flusher task makes every write queued so far durable in one go (group
commit: one worker-thread hop and one fsync per file and per directory per
batch, instead of a serialized round per write), then applies them to the
index in revision order and acknowledges them. Until then a write is
visible to other writers (`_current`: a later update or create is ordered
after it) but not to readers, so nothing is ever read that is not on
disk. A batch that fails leaves memory at the disk's state: every write
not yet durable fails, and if the disk changed half way the index is
reloaded from it. A cancelled caller does not undo its write: the flusher
finishes it. The memory backend overrides nothing. Keeping this logic in
one module is what lets the backends stay independent of each other
(import-linter contract) without duplicating it.

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
import logging
from dataclasses import dataclass
from typing import Any, ClassVar, Iterator

import orjson

from .events import DEFAULT_EVENT_WINDOW, DEFAULT_WATCH_QUEUE, EventLog, LogWatcher, Record
from .interfaces import (
    EventType,
    KeyExistsError,
    KeyNotFoundError,
    ListResult,
    Object,
    Preconditions,
    TryUpdate,
    dumps_kept,
)

Entry = tuple[int, bytes]
log = logging.getLogger(__name__)


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


@dataclass(eq=False)
class PendingWrite:
    """A staged write of a persistent backend, waiting for its batch to be durable.

    `data` is the new state (None for a delete); `record` the event it
    becomes once applied; `before` what the writers' view (`_pending`) held
    for the key before it, restored if the write fails.
    """

    key: str
    data: bytes | None
    revision: int
    record: Record
    before: Entry | None | _Missing
    done: asyncio.Future[None]


class _Missing:
    """No staged state for a key: writers see the index."""


MISSING = _Missing()


class DiskDiverged(Exception):
    """A batch failed after it had started changing the disk: memory must be reloaded from it."""


class IndexedStorage:
    """`Storage` over a sorted in-memory index, with persistence hooks.

    The global revision starts at 0 and every create, update and delete
    increments it by one; an object's resourceVersion is the revision of its
    last write. `delete` returns the last state stamped with the deletion's
    revision, as kube-apiserver (1.27+) does, so a later watch can report
    the DELETED event at that revision.
    """

    #: Subclasses that implement the persistence hooks set this to True; the
    #: memory backend leaves it False and so skips them (and their task) entirely.
    persistent: ClassVar[bool] = False
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
        self._staged_revision = 0  # the newest revision handed out to a write
        self._lock = asyncio.Lock()
        self._events = EventLog(event_window, watch_queue_size)
        self._pending: dict[str, Entry | None] = {}  # staged, not yet durable (None: a delete)
        self._queue: list[PendingWrite] = []
        self._flusher: asyncio.Task[None] | None = None

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

    def _persist_batch(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        """Make `(key, data or None for a delete, revision)` writes durable, in order.

        Runs in a worker thread. Raises to fail the whole batch: DiskDiverged
        if the disk may already hold part of it, anything else if not.
        """

    def _reload(self) -> None:
        """Rebuild the index from what is persisted (after a batch failed half way)."""

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

    def _current(self, key: str) -> Entry | None:
        """The key's newest state as writers see it: staged if a write is pending, else the index."""
        if key in self._pending:
            return self._pending[key]
        return self._entries.get(key)

    def _apply(self, record: Record) -> None:
        """Make a committed write visible: index, revision and its event, together."""
        if record.type == "DELETED":
            self._index_remove(record.key)
        else:
            self._index_put(record.key, record.data, record.revision)
        self._revision = record.revision
        self._events.publish(record)

    def _stage(self, key: str, data: bytes | None, record_data: bytes, old: Entry | None) -> PendingWrite | None:
        """Give the write the next revision; apply it now, or queue it for the next batch.

        Caller holds the lock. Returns the pending write to wait for (None when
        already applied: the memory backend).
        """
        revision = self._staged_revision = self._staged_revision + 1
        if data is None:
            kind: EventType = "DELETED"
        else:
            kind = "ADDED" if old is None else "MODIFIED"
        record = Record(kind, key, revision, record_data, None if old is None else old[1])
        if not self.persistent:
            self._apply(record)
            return None
        write = PendingWrite(key, data, revision, record, self._pending.get(key, MISSING),
                             asyncio.get_running_loop().create_future())
        self._pending[key] = None if data is None else (revision, data)
        self._queue.append(write)
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush(), name="kapi-storage-flush")
        return write

    async def _flush(self) -> None:
        """Group commit: make everything queued durable in one batch, apply it, acknowledge it."""
        while self._queue:
            batch, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._persist_batch, [(w.key, w.data, w.revision) for w in batch])
            except BaseException as exc:  # noqa: BLE001 - every waiting writer must hear of it
                self._fail(batch, exc)
                if isinstance(exc, asyncio.CancelledError):
                    raise
                continue
            for write in batch:
                if self._pending.get(write.key, MISSING) == (
                        None if write.data is None else (write.revision, write.data)):
                    del self._pending[write.key]  # no later write of the key is staged
                self._apply(write.record)
                if not write.done.done():
                    write.done.set_result(None)

    def _fail(self, batch: list[PendingWrite], exc: BaseException) -> None:
        """A batch failed: it and every write staged after it fail, memory follows the disk."""
        failed, self._queue = batch + self._queue, []
        self._pending.clear()
        if isinstance(exc, DiskDiverged):
            log.error("storage write failed half way; reloading from disk: %s", exc.__cause__ or exc)
            self._reload()
            self._events.expire_all(self._revision)  # watchers may have missed changes: relist
        self._staged_revision = self._revision
        error = exc.__cause__ if isinstance(exc, DiskDiverged) and exc.__cause__ else exc
        for write in failed:
            if not write.done.done():
                write.done.set_exception(error if isinstance(error, Exception) else RuntimeError(str(error)))

    async def _commit(self, write: PendingWrite | None) -> None:
        """Wait until a staged write is durable and applied.

        A caller cancelled meanwhile still waits for the outcome, then is
        cancelled: its write cannot be taken back, so when the cancellation
        surfaces the write is visible (or failed), never still in flight.
        """
        if write is None:
            return
        interrupted = False
        while not write.done.done():
            try:
                await asyncio.shield(write.done)
            except asyncio.CancelledError:
                if write.done.done() and write.done.cancelled():
                    raise
                interrupted = True
            except Exception:
                break
        if interrupted:
            if not write.done.cancelled():
                write.done.exception()  # seen: its outcome is the cancellation now
            raise asyncio.CancelledError()
        write.done.result()  # raises the batch's error

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
        result: Object = orjson.loads(data)
        return result

    async def list(
        self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0
    ) -> ListResult:
        if revision and revision != self._revision:
            return self._list_at(prefix, limit, continue_key, revision)
        start, end = self._range(prefix)
        if continue_key:
            start = max(start, bisect.bisect_right(self._keys, continue_key))
        stop = end if limit <= 0 else min(end, start + limit)
        keys = self._keys[start:stop]
        items = [orjson.loads(self._entries[k][1]) for k in keys]
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
            self._check_write(key)
            gone = stamp(last, self._staged_revision + 1)
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
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
        self._events.close_all()

    # ----- reading an older revision -----------------------------------------

    def _list_at(self, prefix: str, limit: int, continue_key: str, revision: int) -> ListResult:
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
        items: list[Object] = []
        for k in page:
            data = then.get(k) or self._entries[k][1]
            items.append(orjson.loads(data))
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
