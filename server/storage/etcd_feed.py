"""The etcd backend's event source: one etcd watch feeding every watcher of the server.

kube-apiserver puts a watch cache per resource in front of etcd; kapi puts
one `EventLog` (the same one the in-process backends use) in front of one
etcd watch on its whole key prefix. Every client watch, and the server's own
controllers (CRDs, garbage collection, which already watch every resource),
read from that log, so etcd sees one watch per server however many clients
watch, and each event is decoded and encoded once per revision.

The feed starts at the revision the server started at and follows etcd
with `prev_kv` (a DELETED event needs the last state). It survives etcd
going away: the stream is re-opened, with back-off, from the revision after
the last one it published, so nothing is lost or repeated. If etcd
compacted past that point meanwhile, the history is gone: every watcher is
ended with 410 (clients relist) and the feed starts over at etcd's current
revision. Progress notifications, asked for while the feed is idle, advance
the log without a record, so bookmarks carry a fresh revision.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any, Awaitable, Callable

import grpc
from aetcd import rpc

from .etcd_client import EtcdClient, EtcdCompacted, translate
from .events import EventLog, Record
from .interfaces import StorageUnavailableError

log = logging.getLogger("kapi.storage.etcd")

#: How long the feed may sit idle before it asks etcd for a progress notification.
PROGRESS_INTERVAL = 1.0
_BACKOFF = (0.05, 0.1, 0.2, 0.5, 1.0)

# Decodes one etcd event into (type, key, data, prev): the storage owns the value format.
Decoder = Callable[[Any], Record | None]


class FeedOutOfOrder(Exception):
    """etcd sent an event at or below a revision the log already passed."""


class EtcdFeed:
    """Keeps `log` following etcd under `[key, range_end)`; `connected` says whether it does now."""

    def __init__(self, client: EtcdClient, key: bytes, range_end: bytes, log_: EventLog,
                 decode: Decoder, current_revision: Callable[[], Awaitable[int]],
                 progress_interval: float = PROGRESS_INTERVAL) -> None:
        self._client = client
        self._key, self._range_end = key, range_end
        self._log = log_
        self._decode = decode
        self._current_revision = current_revision
        self._progress_interval = progress_interval
        self._task: asyncio.Task[None] | None = None
        self.connected = False
        self.last_error = ""
        self.restarts = 0
        self._synced_at = 0
        self._created = asyncio.Event()  # the first etcd watch exists
        self._last_event = 0
        self._quiet_since = 0.0

    def start(self, revision: int) -> None:
        """Follow etcd from the revision after `revision` (the log starts there, empty)."""
        self._log.reset(revision)
        self._task = asyncio.create_task(self._run(), name="kapi-etcd-feed")

    async def wait_created(self, timeout: float) -> None:
        """Until etcd has created the watch: from then on no write can slip past the feed."""
        try:
            await asyncio.wait_for(self._created.wait(), timeout)
        except asyncio.TimeoutError:
            raise StorageUnavailableError(self._client.urls, f"etcd did not create the watch within {timeout:g}s: "
                                          f"{self.last_error or 'no answer'}") from None

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self.connected = False

    async def _run(self) -> None:
        failures = 0
        while True:
            try:
                await self._follow(self._log.newest + 1)
                failures = 0
            except asyncio.CancelledError:
                raise
            except (EtcdCompacted, FeedOutOfOrder) as exc:
                await self._start_over(str(exc))
                failures = 0
                continue
            except StorageUnavailableError as exc:
                self._lost(str(exc))
            except grpc.aio.AioRpcError as exc:
                self._lost(str(translate(exc, self._client.urls)))
            except Exception as exc:  # noqa: BLE001 - the feed must outlive one bad response
                log.exception("etcd watch feed failed")
                self._lost(f"{type(exc).__name__}: {exc}")
            await asyncio.sleep(_BACKOFF[min(failures, len(_BACKOFF) - 1)])
            failures += 1

    def _lost(self, reason: str) -> None:
        if self.connected:
            log.warning("etcd watch lost, reconnecting: %s", reason)
        self.connected = False
        self.last_error = reason

    async def _start_over(self, reason: str) -> None:
        """The history needed to resume is gone: end every watcher with 410 and follow from now."""
        while True:
            try:
                revision = await self._current_revision()
                break
            except StorageUnavailableError as exc:
                self._lost(str(exc))
                await asyncio.sleep(_BACKOFF[-1])
        log.warning("etcd watch cannot resume (%s); watchers get 410 and the feed restarts at %d",
                    reason, revision)
        self.restarts += 1
        self._log.expire_all(revision)

    async def _follow(self, start: int) -> None:
        call = self._client.watch_call()
        pinger: asyncio.Task[None] | None = None
        try:
            await call.write(rpc.WatchRequest(create_request=rpc.WatchCreateRequest(
                key=self._key, range_end=self._range_end, start_revision=start,
                prev_kv=True, progress_notify=True)))
            async for response in call:
                if response.compact_revision or response.canceled:
                    raise EtcdCompacted(response.compact_revision)
                if response.created:
                    self.connected, self.last_error = True, ""
                    self._created.set()
                    # etcd's revision when the watch was created: the history up to it comes first.
                    self._synced_at = response.header.revision
                    pinger = asyncio.create_task(self._ask_progress(call))
                elif response.events:
                    self._quiet_since = asyncio.get_running_loop().time()
                    self._publish(response.events)
                elif self._log.newest >= self._synced_at:
                    # A progress notification: every event up to it was sent. Trusted
                    # only once the replay is over (etcd 3.4 could send one early).
                    self._log.advance(response.header.revision)
            raise StorageUnavailableError(self._client.urls, "etcd closed the watch stream")
        finally:
            if pinger is not None:
                pinger.cancel()
            call.cancel()

    async def _ask_progress(self, call: Any) -> None:
        """While nothing happens, ask etcd every interval for the revision it has reached."""
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._progress_interval)
            if loop.time() - self._quiet_since < self._progress_interval:
                continue
            if self._log.newest < self._synced_at and await self._nothing_pending():
                self._log.advance(self._synced_at)
            if self._log.newest >= self._synced_at:
                await call.write(rpc.WatchRequest(progress_request=rpc.WatchProgressRequest()))

    async def _nothing_pending(self) -> bool:
        """Whether etcd has no event under the prefix in (newest, synced_at] still to send.

        The watch was created at `synced_at`, but when only other prefixes were
        written since the log's newest record no event arrives to say the
        replay is over. Two count-only reads at `synced_at` tell: no key was
        put after `newest`, and every key that existed at `newest` still does.
        """
        newest, synced = self._log.newest, self._synced_at
        try:
            puts = await self._client.range(self._key, self._range_end, revision=synced, count_only=True,
                                            min_mod_revision=newest + 1)
            then = await self._client.range(self._key, self._range_end, revision=newest, count_only=True)
            kept = await self._client.range(self._key, self._range_end, revision=synced, count_only=True,
                                            max_mod_revision=newest)
        except (EtcdCompacted, StorageUnavailableError):
            return False  # the stream will fail too, or catch up by itself
        return puts.count == 0 and then.count == kept.count

    def _publish(self, events: Any) -> None:
        for event in events:
            revision = event.kv.mod_revision
            # One etcd transaction may write several keys at one revision (etcdctl del --prefix).
            if revision < self._log.newest or (revision == self._log.newest and revision != self._last_event):
                raise FeedOutOfOrder(f"event at revision {revision} after {self._log.newest}")
            self._last_event = revision
            record = self._decode(event)
            if record is not None:
                self._log.publish(record)
