"""The event source of the in-memory backends: a bounded event log plus watchers.

`IndexedStorage` appends one `Record` per committed write to an `EventLog`,
synchronously, inside its write lock and right after the index changes. A
record holds the JSON bytes the index already keeps (the new state, and the
previous state as `prev`), so each revision is encoded once, whatever the
number of watchers; watchers queue references to the same immutable records
and decode them only when their consumer asks (see `WatchEvent`).

The log is a ring of the last `window` records, in increasing revision
order (contiguous for the in-process backends, where every commit is one
revision and one record; with gaps for the etcd backend, whose revisions
are shared with other key prefixes). `oldest` is the lowest revision from
which the history is complete: every record with a revision above it is in
the ring. With no record ever dropped it is the revision the log started at
(0 for a new store, the loaded revision after a restart); once the ring
wraps it is the revision of the last dropped record (`newest - window` when
revisions are contiguous), the same boundary kube-apiserver's watch cache
uses ("too old resource version: X (oldest-1)").

Fan-out (`publish`) never awaits and never blocks: a watcher whose queue of
live events is full is terminated on the spot (`WatcherOverflowError` for its
consumer) and dropped from the log, like kube-apiserver's cacher closing a
watcher that cannot keep up. Watchers are held weakly, so one that its
consumer dropped without closing is released by the garbage collector.
"""
from __future__ import annotations

import asyncio
import weakref
from collections import deque
from dataclasses import dataclass
from typing import Iterator

from .interfaces import (
    EventType,
    RevisionNotYetError,
    RevisionTooOldError,
    StorageError,
    WatcherOverflowError,
    WatchEvent,
)

__all__ = ["DEFAULT_EVENT_WINDOW", "DEFAULT_WATCH_QUEUE", "EventLog", "LogWatcher", "Record"]

DEFAULT_EVENT_WINDOW = 10000
DEFAULT_WATCH_QUEUE = 1000


@dataclass(frozen=True, slots=True)
class Record:
    """One committed write, kept serialized; shared by the log and every watcher."""

    type: EventType
    key: str
    revision: int
    data: bytes  # the new state (DELETED: the last state stamped with the delete revision)
    prev: bytes | None  # the state before the write; None for ADDED

    def event(self) -> WatchEvent:
        """A fresh event whose dicts are decoded lazily, on first access."""
        return WatchEvent(
            self.type, self.key, self.revision, object_data=self.data, prev_data=self.prev
        )


class EventLog:
    """A bounded ring of `Record`s in increasing revision order, and its watchers.

    Revisions need not be contiguous: an etcd-fed log sees only the revisions
    of its key prefix (other writers share etcd's revision counter), so a
    record is found by binary search over the kept ones, not by `R % window`.
    """

    def __init__(self, window: int = DEFAULT_EVENT_WINDOW, queue_size: int = DEFAULT_WATCH_QUEUE) -> None:
        if window < 0:
            raise ValueError(f"event_window must be >= 0, got {window}")
        if queue_size < 1:
            raise ValueError(f"watch queue size must be >= 1, got {queue_size}")
        self._window = window
        self._queue_size = queue_size
        self._ring: list[Record | None] = [None] * window
        self._count = 0  # records ever published since the last reset
        self._oldest = 0
        self._newest = 0
        self._watchers: weakref.WeakSet[LogWatcher] = weakref.WeakSet()

    # ----- the log -----------------------------------------------------------

    @property
    def oldest(self) -> int:
        return self._oldest

    @property
    def newest(self) -> int:
        return self._newest

    def reset(self, revision: int) -> None:
        """Start over at `revision` with no history (a freshly loaded store)."""
        self._ring = [None] * self._window
        self._count = 0
        self._oldest = self._newest = revision

    def forget(self) -> None:
        """Drop the kept records (a compaction): only what comes after the newest revision is served."""
        self.reset(self._newest)

    def publish(self, record: Record) -> None:
        """Append the record of the newest revision and hand it to every watcher.

        Revisions increase, except that one etcd transaction writing several
        keys gives them all the same revision.

        Synchronous and non-blocking: called by writers under their lock.
        """
        if record.revision < self._newest:
            raise AssertionError(f"event log revisions must not go back: {self._newest} -> {record.revision}")
        self._newest = record.revision
        if self._window:
            slot = self._count % self._window
            dropped = self._ring[slot]
            if dropped is not None:
                self._oldest = dropped.revision  # everything after it is still kept
            self._ring[slot] = record
        else:
            self._oldest = record.revision
        self._count += 1
        overflowed: list[LogWatcher] = []
        for watcher in self._watchers:
            if record.key.startswith(watcher.prefix) and not watcher._push(record):
                overflowed.append(watcher)
        for watcher in overflowed:
            self._watchers.discard(watcher)

    def advance(self, revision: int) -> None:
        """Everything up to `revision` has been seen, with no record for this log.

        An etcd progress notification: the revision moved on through writes
        outside this log's prefix. Watchers' `progress()` follows, so their
        bookmarks can carry it.
        """
        if revision > self._newest:
            self._newest = revision
            if not self._window:
                self._oldest = revision

    def _kept(self) -> int:
        return min(self._count, self._window)

    def _record(self, index: int) -> Record:
        """The `index`-th kept record, oldest first."""
        slot = (self._count - self._kept() + index) % self._window
        record = self._ring[slot]
        assert record is not None
        return record

    def since(self, revision: int) -> Iterator[Record]:
        """The kept records with revision > `revision`, oldest first.

        The caller has checked `oldest <= revision <= newest`. Lazy, so a
        caller must consume it before the log changes (no await in between).
        """
        low, high = 0, self._kept()
        while low < high:  # first kept record with a revision above `revision`
            mid = (low + high) // 2
            if self._record(mid).revision <= revision:
                low = mid + 1
            else:
                high = mid
        for index in range(low, self._kept()):
            yield self._record(index)

    def check(self, key: str, revision: int) -> None:
        """Raise unless the history needed to serve `revision` is all kept."""
        if revision < 0:
            raise ValueError(f"revision must be >= 0, got {revision}")
        if revision < self._oldest:
            raise RevisionTooOldError(key, revision, self._oldest)
        if revision > self._newest:
            raise RevisionNotYetError(key, revision, self._newest)

    def changed_since(self, prefix: str, revision: int) -> dict[str, bytes | None]:
        """For each key under `prefix` written after `revision`: its state at `revision`.

        That is the `prev` of the first record after `revision` for the key
        (None when the key did not exist then). Keys absent from the result
        have not changed since, so their current state is their state then.
        """
        self.check(prefix, revision)
        state: dict[str, bytes | None] = {}
        for record in self.since(revision):
            if record.key.startswith(prefix) and record.key not in state:
                state[record.key] = record.prev
        return state

    def state_at(self, key: str, revision: int) -> tuple[bool, bytes | None]:
        """(changed, state): whether `key` was written after `revision`, and if so its state then."""
        self.check(key, revision)
        for record in self.since(revision):
            if record.key == key:
                return True, record.prev
        return False, None

    # ----- watchers --------------------------------------------------------------

    def watch(self, prefix: str, from_revision: int, future_until: int = 0) -> LogWatcher:
        """A registered watcher, its replay of the kept records already queued.

        `from_revision` above `newest` is refused (RevisionNotYetError) unless
        it is at most `future_until`: a revision the caller knows was
        committed but this log has not received yet (etcd's feed lags its
        writes by a moment). Such a watcher ignores records up to it.
        """
        if from_revision > self._newest and from_revision <= future_until:
            watcher = LogWatcher(self, prefix, deque(), self._queue_size, skip_through=from_revision)
        else:
            self.check(prefix, from_revision)
            backlog = deque(r for r in self.since(from_revision) if r.key.startswith(prefix))
            watcher = LogWatcher(self, prefix, backlog, self._queue_size)
        self._watchers.add(watcher)
        return watcher

    def unregister(self, watcher: LogWatcher) -> None:
        self._watchers.discard(watcher)

    def watcher_count(self) -> int:
        return len(self._watchers)

    def close_all(self) -> None:
        """Close every watcher (the store is closing): their iterators end."""
        for watcher in list(self._watchers):
            watcher.close()

    def expire_all(self, revision: int) -> None:
        """End every watcher with RevisionTooOldError and start over at `revision`.

        For a feed that lost its history (etcd compacted past where it must
        resume): watchers cannot be continued, so their clients get 410 and
        relist, as kube-apiserver's cacher does.
        """
        for watcher in list(self._watchers):
            watcher._fail(RevisionTooOldError(watcher.prefix, watcher.progress(), revision))
        self._watchers = weakref.WeakSet()
        self.reset(revision)


class LogWatcher:
    """A watcher fed by an `EventLog`: replayed backlog first, then live events.

    The backlog (events committed before the watch started) is unbounded,
    being references into the log's records; only live events count against
    `queue_size`. When they would exceed it the watcher is terminated: the
    queued events are dropped and the next `__anext__` raises
    WatcherOverflowError, after which iteration ends.

    Cancelling a pending `__anext__` does not close the watcher (so callers
    can time it out to send bookmarks); leaving an `async with` block does,
    and so does garbage collection of a watcher nobody references.
    """

    def __init__(self, log: EventLog, prefix: str, backlog: deque[Record], queue_size: int,
                 skip_through: int = 0) -> None:
        self.prefix = prefix
        self._log: EventLog | None = log
        self._backlog = backlog
        self._live: deque[Record] = deque()
        self._queue_size = queue_size
        self._skip_through = skip_through  # records up to this revision are not for this watcher
        self._waiter: asyncio.Future[None] | None = None
        self._closed = False
        self._error: StorageError | None = None
        self._last_revision = skip_through  # progress once the log is closed

    def progress(self) -> int:
        """The revision up to which every event for this watcher has been handed to its consumer.

        What a bookmark may carry: everything at or below it was delivered,
        so a client resuming from it misses nothing.
        """
        queued = self._backlog or self._live
        if queued:
            return queued[0].revision - 1
        if self._log is None:
            return self._last_revision
        return max(self._log.newest, self._skip_through)

    @property
    def closed(self) -> bool:
        """True once closed or terminated for overflow."""
        return self._closed

    def _push(self, record: Record) -> bool:
        """Queue a live record; False (and terminated) if the queue was full."""
        if self._closed:
            return False
        if record.revision <= self._skip_through:
            return True
        if len(self._live) >= self._queue_size:
            self._error = WatcherOverflowError(
                self.prefix,
                f"watcher on {self.prefix!r} fell behind by more than {self._queue_size} "
                f"events at revision {record.revision}",
            )
            self._shut(unregister=False)  # the log drops it after its fan-out loop
            return False
        self._live.append(record)
        self._wake()
        return True

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _fail(self, error: StorageError) -> None:
        """Terminate with `error`, raised to the consumer in place of the next event."""
        if not self._closed:
            self._error = error
            self._shut(unregister=False)

    def _shut(self, unregister: bool = True) -> None:
        if self._log is not None:
            self._last_revision = self.progress()
        self._closed = True
        self._backlog.clear()
        self._live.clear()
        if self._log is not None and unregister:
            self._log.unregister(self)
        self._log = None
        self._wake()

    def close(self) -> None:
        self._error = None  # a consumer that closes wants nothing more, not even the overflow
        if not self._closed:
            self._shut()

    def __aiter__(self) -> LogWatcher:
        return self

    async def __anext__(self) -> WatchEvent:
        while True:
            if self._backlog:
                return self._backlog.popleft().event()
            if self._live:
                return self._live.popleft().event()
            if self._error is not None:
                error, self._error = self._error, None
                raise error
            if self._closed:
                raise StopAsyncIteration
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def __aenter__(self) -> LogWatcher:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<LogWatcher {self.prefix!r} {state} queued={len(self._backlog) + len(self._live)}>"
