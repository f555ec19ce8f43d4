"""The one storage protocol every backend implements (memory, file, etcd).

Modelled on k8s.io/apiserver `pkg/storage/interfaces.go`: string keys, plain
dict values, a global revision owned by the backend, and optimistic
concurrency through `guaranteed_update`, which retries a pure old-to-new
function until it applies without conflict.

Objects go in and come out as plain JSON-compatible dicts. The backend owns
`metadata.resourceVersion`: whatever the caller put there is replaced by the
revision the write was committed at, and every object read back carries the
revision of its last write. Callers must treat returned dicts as their own
copies (backends never hand out references to what they keep).

Every committed write (create, update, delete) is also an event: `watch`
streams them, in revision order, from a bounded in-memory window, and `list`
and `get` can read the state as it was at any revision still in that window
(consistent pagination). `oldest_revision()` is the lowest revision both work
from.

Errors are the storage exceptions below; the registry translates them into
Kubernetes `Status` errors once, at its boundary:

    StorageError                    (key: the object or prefix concerned)
    ├── KeyNotFoundError            404 NotFound
    ├── KeyExistsError              409 AlreadyExists
    ├── ConflictError               409 Conflict
    ├── InvalidKeyError             400/422
    ├── RevisionTooOldError         410 Gone (Expired), "too old resource version: X (Y)"
    ├── RevisionNotYetError         504 Timeout, "Too large resource version: X, current: Y"
    ├── StorageUnavailableError     503 ServiceUnavailable (etcd unreachable; retry later)
    └── WatcherOverflowError        not an HTTP error: end the watch stream (clients re-watch)
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Literal, Protocol, runtime_checkable

import orjson

Object = dict[str, Any]
EventType = Literal["ADDED", "MODIFIED", "DELETED"]


def dumps_kept(obj: Any) -> bytes:
    """JSON bytes to keep for long (index entries, event records), at their exact size.

    orjson hands back its whole growth buffer: about 8 KiB for a 1 KiB
    object. Copied to size, a stored object costs its length, not 8 KiB.
    """
    return bytes(memoryview(orjson.dumps(obj)))


class StorageError(Exception):
    """Base of every storage failure; `key` names the object concerned."""

    def __init__(self, key: str, message: str = "") -> None:
        super().__init__(message or key)
        self.key = key


class KeyNotFoundError(StorageError):
    """No object at `key`."""


class KeyExistsError(StorageError):
    """`create` of a key that already holds an object."""


class ConflictError(StorageError):
    """A precondition (uid or resourceVersion) did not hold."""


class PreconditionError(ConflictError):
    """A DeleteOptions precondition did not hold (kube names the kind, not the resource, in its 409)."""


class InvalidKeyError(StorageError):
    """A key that is malformed or would escape the backend's root."""


class RevisionTooOldError(StorageError):
    """A watch, list or get at a revision whose history was already dropped.

    `key` is the prefix (or key) asked for; `revision` the revision asked for
    and `oldest` the lowest one still served (`Storage.oldest_revision()`).
    The message is kube-apiserver's: "too old resource version: X (Y)"; the
    registry answers 410 Gone with reason Expired.
    """

    def __init__(self, key: str, revision: int, oldest: int) -> None:
        super().__init__(key, f"too old resource version: {revision} ({oldest})")
        self.revision = revision
        self.oldest = oldest


class RevisionNotYetError(StorageError):
    """A watch, list or get at a revision newer than the store's current one.

    kube-apiserver waits a few seconds for such a revision and then answers
    504 Timeout "Too large resource version"; storage raises at once and
    leaves any waiting to the caller.
    """

    def __init__(self, key: str, revision: int, current: int) -> None:
        super().__init__(key, f"Too large resource version: {revision}, current: {current}")
        self.revision = revision
        self.current = current


class StorageUnavailableError(StorageError):
    """The backend cannot be reached (etcd down or without a quorum).

    Nothing was written, or it is unknown whether the write committed, as
    with a timed-out etcd request; clients retry. The registry answers 503
    ServiceUnavailable.
    """


class WatcherOverflowError(StorageError):
    """A watcher fell too far behind (its queue filled up) and was terminated.

    Raised once by the watcher's iterator, in place of the next event; the
    events still queued are dropped. Like kube-apiserver closing a slow
    watcher, the HTTP layer should just end the stream: clients re-watch
    from the last resourceVersion they saw (or relist on 410).
    """


@dataclass(frozen=True)
class Preconditions:
    """What must be true of the stored object for a write to go ahead."""

    uid: str | None = None
    resource_version: str | None = None

    def check(self, key: str, current: Object) -> None:
        meta = current.get("metadata") or {}
        if self.uid is not None and meta.get("uid") != self.uid:
            raise PreconditionError(
                key, f"the UID in the precondition ({self.uid}) does not match the UID in record "
                     f"({meta.get('uid', '')}). The object might have been deleted and then recreated")
        if self.resource_version is not None and meta.get("resourceVersion") != self.resource_version:
            raise PreconditionError(
                key, f"the ResourceVersion in the precondition ({self.resource_version}) does not match the "
                     f"ResourceVersion in record ({meta.get('resourceVersion', '')}). The object might have been "
                     "modified")


@dataclass
class ListResult:
    """One page of a prefix listing.

    `revision` is the store revision the page was read at; `continue_key` is
    the key to resume after (empty when this is the last page) and
    `remaining` the number of items left after this page when known.
    """

    items: list[Any]  # objects; their stored JSON bytes from `RawReads.list_raw`
    revision: int
    continue_key: str = ""
    remaining: int | None = None


@dataclass(frozen=True)
class Snapshot:
    """Every object of a store at one revision: key → (revision of its last write, the bytes the backend keeps).

    The bytes are immutable and shared, never copied: a store restored from a
    snapshot holds the same bytes until it writes its own (copy-on-write), so
    forking a prepared cluster costs a dictionary copy.
    """

    revision: int
    entries: dict[str, tuple[int, bytes]]


class WatchEvent:
    """One committed write, as a watcher sees it.

    `type` is ADDED, MODIFIED or DELETED; `revision` the revision the write
    committed at; `object` the new state (for DELETED: the last state, with
    resourceVersion set to the delete's revision, as kube-apiserver sends it);
    `prev` the state before the write (None for ADDED).

    Backends build events from the JSON bytes they already hold, shared by
    every watcher; `object` and `prev` are decoded on first access, once per
    event instance, so each watcher gets its own copies (safe to mutate) and
    pays only for what it reads. `object_data` is the shared JSON encoding of
    `object`, for callers that can stream it without decoding.
    """

    __slots__ = ("type", "key", "revision", "_object", "_object_data", "_prev", "_prev_data")

    def __init__(
        self,
        type: EventType,
        key: str,
        revision: int,
        object: Object | None = None,
        prev: Object | None = None,
        *,
        object_data: bytes | None = None,
        prev_data: bytes | None = None,
    ) -> None:
        if object is None and object_data is None:
            raise TypeError("WatchEvent needs object or object_data")
        self.type: EventType = type
        self.key = key
        self.revision = revision
        self._object = object
        self._object_data = object_data
        self._prev = prev
        self._prev_data = prev_data

    @property
    def object(self) -> Object:
        if self._object is None:
            assert self._object_data is not None
            self._object = orjson.loads(self._object_data)
        return self._object

    @property
    def prev(self) -> Object | None:
        if self._prev is None and self._prev_data is not None:
            self._prev = orjson.loads(self._prev_data)
        return self._prev

    @property
    def object_data(self) -> bytes:
        if self._object_data is None:
            self._object_data = orjson.dumps(self._object)
        return self._object_data

    def __eq__(self, other: Any) -> bool:  # `object` is the property here
        if not isinstance(other, WatchEvent):
            return NotImplemented
        return (self.type, self.key, self.revision, self.object, self.prev) == (
            other.type, other.key, other.revision, other.object, other.prev,
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"WatchEvent({self.type}, {self.key!r}, revision={self.revision})"


@runtime_checkable
class Watcher(Protocol):
    """What `Storage.watch` returns: an async iterator of `WatchEvent`s.

    Iteration ends (StopAsyncIteration) after `close()`; it raises
    WatcherOverflowError once if the watcher fell too far behind. Use it as
    an async context manager (`async with storage.watch(...) as w:`) so it is
    closed however the consumer leaves, cancellation included.
    """

    def __aiter__(self) -> Watcher: ...

    async def __anext__(self) -> WatchEvent: ...

    def close(self) -> None:
        """Stop the watch and release it; idempotent, never blocks."""

    def progress(self) -> int:
        """The revision through which every event for this watcher was handed out.

        A bookmark may carry it: a client resuming from it misses nothing.
        """

    async def __aenter__(self) -> Watcher: ...

    async def __aexit__(self, *exc_info: object) -> None: ...


# try_update receives a copy of the current object (or None when absent and
# the caller allowed creation) and returns the new object. It may raise any
# exception to abort; it may be called more than once.
TryUpdate = Callable[[Object | None], Awaitable[Object] | Object]


@runtime_checkable
class RawReads(Protocol):
    """A backend that keeps each object as the JSON it is served in (the memory and file backends, whose
    stored bytes carry the object's resourceVersion): reads that hand those bytes back let a GET or a LIST
    answer without decoding and encoding every object again."""

    async def get_raw(self, key: str, revision: int = 0) -> bytes:
        """`Storage.get`, the stored bytes."""

    async def list_raw(self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0
                       ) -> ListResult:
        """`Storage.list`, each item the stored bytes."""


@runtime_checkable
class Storage(Protocol):
    async def start(self) -> None:
        """Connect and begin feeding watchers, before the server answers requests.

        Raises StorageUnavailableError when the backend cannot be reached.
        A no-op for the in-process backends.
        """

    async def health(self) -> dict[str, Any]:
        """The backend's state for `/readyz` and `kapi status`.

        Always has "backend", "ok" (False while the backend cannot serve) and
        "revision"; backends add their own details (etcd: its endpoints,
        each one's health, leader, revision and database size).
        """

    async def create(self, key: str, obj: Object) -> Object:
        """Store `obj` at `key`; raise KeyExistsError if taken. Returns the stored copy."""

    async def get(self, key: str, revision: int = 0) -> Object:
        """The object at `key`; KeyNotFoundError if none.

        `revision` 0 reads the current state; otherwise the object as it was
        at that revision (KeyNotFoundError if it did not exist then), with
        RevisionTooOldError / RevisionNotYetError as for `list`.
        """

    async def list(
        self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0
    ) -> ListResult:
        """Objects whose keys start with `prefix`, in key order.

        `limit` 0 means all. `continue_key` resumes strictly after that key.
        `revision` 0 lists the current state; otherwise the state as it was
        right after that revision committed, so the pages of one listing,
        all asked at the first page's `ListResult.revision`, are consistent
        whatever was written in between. A revision below
        `oldest_revision()` raises RevisionTooOldError; one above the current
        revision raises RevisionNotYetError. `ListResult.revision` is the
        revision the page reflects (the one asked for, when given).
        """

    async def guaranteed_update(
        self,
        key: str,
        try_update: TryUpdate,
        preconditions: Preconditions | None = None,
        ignore_not_found: bool = False,
    ) -> Object:
        """Apply `try_update` to the current object until it commits.

        KeyNotFoundError when absent unless `ignore_not_found`, in which case
        `try_update(None)` is called and its result created. If the function
        returns an object equal to the current one, nothing is written and
        the current object (same resourceVersion) is returned.
        """

    async def delete(
        self,
        key: str,
        preconditions: Preconditions | None = None,
    ) -> Object:
        """Remove the object at `key` and return its last state."""

    async def current_revision(self) -> int:
        """The newest committed revision (0 for an empty, new store)."""

    def oldest_revision(self) -> int:
        """The lowest revision that `watch`, `list` and `get` accept.

        Every event with a revision above it is still kept, so a watch from
        R replays all it missed, and a list at R can be rebuilt, exactly when
        `oldest_revision() <= R <= current revision`. Below it they raise
        RevisionTooOldError (kube-apiserver's 410 "too old resource version").
        It is the revision of the oldest kept event minus one (0 for a new
        store); after a restart, and with no events yet, it is the current
        revision. A backend with history of its own (etcd, until it
        compacts) may serve `list` and `get` below it too; past its own
        history it raises RevisionTooOldError.
        """

    def watch(self, prefix: str, from_revision: int) -> Watcher:
        """Events for keys starting with `prefix` with revision > `from_revision`.

        Events come in revision order: first those already committed (the
        replay), then new ones as they commit. `from_revision` equal to the
        current revision means only future events. Taken literally: 0 means
        "from the very start", not kube's "any"; the registry maps kube's
        resourceVersion "0"/unset semantics onto this. Raises at once (not
        on first iteration) RevisionTooOldError below `oldest_revision()`
        and RevisionNotYetError above the current revision (a backend
        whose event feed trails its writes, etcd, accepts any revision it
        has already reported, and delivers from there once the feed
        catches up).

        If the backend loses the history a running watcher still needs
        (etcd compacted past the point its feed must resume from), the
        iterator raises RevisionTooOldError: the client must relist.

        Writers never wait for watchers: each watcher has a bounded queue,
        and one that lets it fill up is terminated (its iterator raises
        WatcherOverflowError). A closed or garbage-collected watcher is
        unregistered.
        """

    async def count(self, prefix: str) -> int:
        """How many objects live under `prefix`."""

    async def close(self) -> None:
        """Release files, connections and tasks."""

    async def snapshot(self) -> Snapshot:
        """Every object, as of now (a logical cluster's saved state)."""

    async def restore(self, snapshot: Snapshot) -> None:
        """Fill this new, empty, started store with `snapshot`'s objects (a fork); history starts here."""

    async def compact(self) -> int:
        """Drop the history up to the current revision, as etcd's compaction: a watch, get, list or list
        continuation at an older revision then gets RevisionTooOldError (410). Returns that revision."""

    async def drop(self) -> None:
        """Remove every object and whatever holds them (the store's cluster is deleted); then `close()`."""
