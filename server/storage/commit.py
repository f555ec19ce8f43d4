"""Group commit: how a staged write of a persistent backend becomes durable, then visible.

Writes are ordered by the store's lock, held only to check and stage a
write, never across disk I/O. A non-persistent store (memory) applies a
staged write at once. A persistent one (file) implements `_persist_batch`:
staged writes queue up, and one flusher task makes every write queued so far
durable in one go (one worker-thread hop and one sync per batch instead of a
serialized round per write), then applies them to the index in revision
order and acknowledges them. Until then a write is visible to other writers
(`_current`: a later update or create is ordered after it) but not to
readers, so nothing is ever read that is not on disk. A batch that fails
leaves memory at the disk's state: every write not yet durable fails, and if
the disk changed half way the index is reloaded from it. A cancelled caller
does not undo its write: it waits for the outcome, then is cancelled.
"""
from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import ClassVar

from .events import EventLog, Record
from .interfaces import EventType

Entry = tuple[int, bytes]
log = logging.getLogger(__name__)
_NONE = object()  # no staged state for a key


@dataclass(eq=False)
class PendingWrite:
    """A staged write, waiting for its batch to be durable.

    `data` is the new state (None for a delete); `record` the event it
    becomes once applied; `done` resolves when it is applied (or failed).
    """

    key: str
    data: bytes | None
    revision: int
    record: Record
    done: asyncio.Future[None]


class DiskDiverged(Exception):
    """A batch failed after it had started changing the disk: memory must be reloaded from it."""


class GroupCommit:
    """The staging and batching half of `IndexedStorage` (a mixin: it owns no index)."""

    #: Subclasses that implement `_persist_batch` set this to True; the memory
    #: backend leaves it False and applies each write as it is staged.
    persistent: ClassVar[bool] = False
    _entries: dict[str, Entry]
    _revision: int
    _events: EventLog

    def _init_commit(self) -> None:
        self._staged_revision = 0  # the newest revision handed out to a write
        self._pending: dict[str, Entry | None] = {}  # staged, not yet durable (None: a delete)
        self._queue: list[PendingWrite] = []
        self._flusher: asyncio.Task[None] | None = None

    def _persist_batch(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        """Make `(key, data or None for a delete, revision)` writes durable, in order.

        Runs in a worker thread. Raises to fail the whole batch: DiskDiverged
        if the disk may already hold part of it, anything else if not.
        """

    def _reload(self) -> None:
        """Rebuild the index from what is persisted (after a batch failed half way)."""

    def _current(self, key: str) -> Entry | None:
        """The key's newest state as writers see it: staged if a write is pending, else the index."""
        if key in self._pending:
            return self._pending[key]
        return self._entries.get(key)

    def _apply(self, record: Record) -> None:
        """Make a committed write visible (the index's job)."""
        raise NotImplementedError

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
        write = PendingWrite(key, data, revision, record, asyncio.get_running_loop().create_future())
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
                if self._pending.get(write.key, _NONE) == (
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

    async def _finish_writes(self) -> None:
        """Wait for the writes in flight (closing)."""
        if self._flusher is not None:
            await asyncio.gather(self._flusher, return_exceptions=True)
