"""Watch streams: a storage watcher turned into the events a Kubernetes client expects.

`WatchStream.open()` decides where the stream starts (kube's documented
semantics: resourceVersion unset or "0" starts with synthetic ADDED events
for what exists; "N" replays what happened after N; `sendInitialEvents`
ends the initial state with a bookmark annotated `k8s.io/initial-events-end`),
then yields `(type, object)` pairs:

- selectors are applied to both sides of a change, so an object that starts
  matching arrives as ADDED and one that stops matching as DELETED;
- with `allowWatchBookmarks`, an idle stream sends a BOOKMARK every
  `bookmark_interval` seconds carrying the newest revision it has covered;
- a start revision older than the kept event window yields one ERROR event
  (410 Expired), as kube-apiserver's watch cache does, so clients relist;
  so does a backend that loses the history while the stream runs (etcd
  compacted past where its feed had to resume);
- a watcher that falls too far behind ends its stream (clients re-watch),
  so a slow client never stalls writers.
"""
from __future__ import annotations

import asyncio
import copy
import math
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from kapi.api import errors
from kapi.registry.listing import ListOptions
from kapi.storage.interfaces import (
    RevisionNotYetError,
    RevisionTooOldError,
    Storage,
    WatchEvent,
    Watcher,
    WatcherOverflowError,
)

if TYPE_CHECKING:
    from kapi.registry.store import Store

Object = dict[str, Any]
Event = tuple[str, Object]


class _Expired(Exception):
    """The stream reached its lifetime."""
INITIAL_EVENTS_END = "k8s.io/initial-events-end"


def _transition(event: WatchEvent, matches: Callable[[Object | None], bool]) -> str | None:
    """The event type a selecting client sees, or None when the change is invisible to it."""
    if event.type == "MODIFIED":
        now, before = matches(event.object), matches(event.prev)
        if now and before:
            return "MODIFIED"
        if now:
            return "ADDED"
        return "DELETED" if before else None
    return event.type if matches(event.object) else None


def _shown(kind: str, event: WatchEvent) -> Object:
    """The object an event carries: one that left the selection is shown as it was while it matched, at
    the event's resourceVersion (kube's watchers do the same)."""
    if kind == "DELETED" and event.type == "MODIFIED" and event.prev is not None:
        prev = copy.deepcopy(event.prev)
        prev.setdefault("metadata", {})["resourceVersion"] = (event.object.get("metadata") or {}).get(
            "resourceVersion")
        return prev
    return event.object


class WatchStream:
    """One client's watch on one collection."""

    def __init__(self, store: Store, storage: Storage, prefix: str, version: str, opts: ListOptions,
                 bookmark_interval: float) -> None:
        self._store, self._storage, self._prefix = store, storage, prefix
        self._version, self._opts = version, opts
        self._bookmark_interval = bookmark_interval
        self._matches = store.matcher(opts)
        self._initial: list[Object] = []
        self._watcher: Watcher | None = None
        self._error: errors.StatusError | None = None
        self._revision = 0
        self._deadline = math.inf
        self._expired = False

    @property
    def resource(self) -> tuple[str, str]:
        """(group, plural) of the collection watched."""
        return self._store.definition.group, self._store.definition.plural

    async def open(self) -> None:
        """Read the initial state and register the watcher; 504 for a revision not reached yet."""
        opts = self._opts
        rv = opts.resource_version
        send_initial = opts.send_initial_events if opts.send_initial_events is not None else rv in ("", "0")
        if send_initial:
            listing = await self._storage.list(self._prefix)
            self._initial = [o for o in listing.items if self._matches(o)]
            self._revision = listing.revision
        else:
            self._revision = int(rv) if rv else await self._storage.current_revision()
        try:
            self._watcher = self._open_watcher()
        except RevisionTooOldError as exc:
            self._error = errors.Gone(str(exc))
        except RevisionNotYetError:
            # A shared backend (etcd) may hold a revision this server has not seen
            # yet (written through another server): ask it once, then decide.
            await self._storage.current_revision()
            try:
                self._watcher = self._open_watcher()
            except RevisionNotYetError as exc:
                raise errors.Timeout(str(exc), retry_after=1) from None

    def _open_watcher(self) -> Watcher:
        return self._storage.watch(self._prefix, self._revision)

    def _bookmark(self, initial_end: bool = False) -> Event:
        d = self._store.definition
        meta: Object = {"resourceVersion": str(self._revision)}
        if initial_end:
            meta["annotations"] = {INITIAL_EVENTS_END: "true"}
        return "BOOKMARK", {"kind": d.kind, "apiVersion": d.api_version(self._version), "metadata": meta}

    async def events(self, lifetime: float = math.inf) -> AsyncIterator[Event]:
        """The stream itself; ends after `lifetime` seconds, or when the watcher is closed or overflows."""
        loop = asyncio.get_running_loop()
        self._deadline = loop.time() + lifetime
        if self._error is not None:
            yield "ERROR", self._error.to_status()
            return
        for obj in self._initial:
            yield "ADDED", await self._store.output(obj, self._version)
        self._initial = []
        if self._opts.send_initial_events:
            yield self._bookmark(initial_end=True)
        assert self._watcher is not None
        async with self._watcher as watcher:
            while True:
                try:
                    event = await self._next(watcher)
                except (StopAsyncIteration, WatcherOverflowError, _Expired):
                    if self._expired:
                        yield "ERROR", errors.Gone(self._too_old()).to_status()
                    return
                except RevisionTooOldError as exc:  # the backend lost the history (etcd compaction)
                    yield "ERROR", errors.Gone(str(exc)).to_status()
                    return
                if event is None:
                    self._revision = max(self._revision, watcher.progress())
                    yield self._bookmark()
                    continue
                self._revision = event.revision
                kind = _transition(event, self._matches)
                if kind is not None:
                    yield kind, await self._store.output(_shown(kind, event), self._version)

    async def _next(self, watcher: Watcher) -> WatchEvent | None:
        """The next event; None when bookmarks are wanted and the stream was idle for an interval.

        Raises `_Expired` at the stream's deadline. Waiting with a timeout on the
        watcher (a plain coroutine) never loses an event: the storage watcher
        keeps what a cancelled wait did not take.
        """
        remaining = self._deadline - asyncio.get_running_loop().time()
        if remaining <= 0:
            raise _Expired
        wait = min(remaining, self._bookmark_interval) if self._opts.allow_bookmarks else remaining
        try:
            return await asyncio.wait_for(watcher.__anext__(), timeout=None if math.isinf(wait) else wait)
        except asyncio.TimeoutError:
            if wait >= remaining:
                raise _Expired from None
            return None

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.close()

    def expire(self) -> None:
        """End the stream with 410 Expired, as when the history it follows is gone (an injected fault)."""
        self._expired = True
        self.close()

    def _too_old(self) -> str:
        return str(RevisionTooOldError(self._prefix, self._revision, self._revision + 1))
