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

Errors are the storage exceptions below; the registry translates them into
Kubernetes `Status` errors once, at its boundary.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Protocol, runtime_checkable

Object = dict[str, Any]


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


class InvalidKeyError(StorageError):
    """A key that is malformed or would escape the backend's root."""


@dataclass(frozen=True)
class Preconditions:
    """What must be true of the stored object for a write to go ahead."""

    uid: str | None = None
    resource_version: str | None = None

    def check(self, key: str, current: Object) -> None:
        meta = current.get("metadata") or {}
        if self.uid is not None and meta.get("uid") != self.uid:
            raise ConflictError(
                key,
                f"Precondition failed: UID in precondition: {self.uid}, "
                f"UID in object meta: {meta.get('uid', '')}",
            )
        if self.resource_version is not None and meta.get("resourceVersion") != self.resource_version:
            raise ConflictError(
                key,
                "Precondition failed: ResourceVersion in precondition: "
                f"{self.resource_version}, ResourceVersion in object meta: "
                f"{meta.get('resourceVersion', '')}",
            )


@dataclass
class ListResult:
    """One page of a prefix listing.

    `revision` is the store revision the page was read at; `continue_key` is
    the key to resume after (empty when this is the last page) and
    `remaining` the number of items left after this page when known.
    """

    items: list[Object]
    revision: int
    continue_key: str = ""
    remaining: int | None = None


# try_update receives a copy of the current object (or None when absent and
# the caller allowed creation) and returns the new object. It may raise any
# exception to abort; it may be called more than once.
TryUpdate = Callable[[Object | None], Awaitable[Object] | Object]


@runtime_checkable
class Storage(Protocol):
    async def create(self, key: str, obj: Object) -> Object:
        """Store `obj` at `key`; raise KeyExistsError if taken. Returns the stored copy."""

    async def get(self, key: str) -> Object:
        """The object at `key`; KeyNotFoundError if none."""

    async def list(self, prefix: str, limit: int = 0, continue_key: str = "") -> ListResult:
        """Objects whose keys start with `prefix`, in key order.

        `limit` 0 means all. `continue_key` resumes strictly after that key.
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

    async def count(self, prefix: str) -> int:
        """How many objects live under `prefix`."""

    async def close(self) -> None:
        """Release files, connections and tasks."""
