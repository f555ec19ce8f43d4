"""Build a storage backend from configuration.

The only module that names the backends, so `memory.py`, `file.py` (and
later `etcd.py`) stay independent and callers depend on the protocol alone.
"""
from __future__ import annotations

import pathlib

from .events import DEFAULT_EVENT_WINDOW
from .interfaces import Storage

BACKENDS = ("memory", "file")


def create_storage(
    backend: str,
    file_rootpath: pathlib.Path | None,
    event_window: int = DEFAULT_EVENT_WINDOW,
) -> Storage:
    """A fresh `Storage` for `backend`; `file_rootpath` is required by "file".

    `event_window` is how many events (revisions) the backend keeps for
    watches and reads at an older revision (`Storage.oldest_revision`).

    Raises ValueError for an unknown backend or a missing file root, so a bad
    setting fails at start-up with a message instead of at the first request.
    """
    if backend == "memory":
        from .memory import MemoryStorage

        return MemoryStorage(event_window=event_window)
    if backend == "file":
        if file_rootpath is None:
            raise ValueError("storage backend 'file' needs a root directory (file_rootpath)")
        from .file import FileStorage

        return FileStorage(pathlib.Path(file_rootpath), event_window=event_window)
    raise ValueError(
        f"unknown storage backend {backend!r}; expected one of: {', '.join(BACKENDS)}"
    )
