"""The file backend: one YAML file per object under a root directory.

Layout: the key `/registry/<group>/<resource>/<ns>/<name>` lives at
`<root>/registry/<group>/<resource>/<ns>/<name>.yaml`, and the revision
counter at `<root>/revision`. Each file holds the whole object including its
`metadata.resourceVersion`, so a restart restores objects exactly.

`FileStorage(root)` loads every object synchronously in `__init__` into the
shared in-memory index (`IndexedStorage`), so reads never touch the disk;
writes go to disk first (atomically: temp file, fsync, rename, fsync of the
directory, in a worker thread, for a whole batch of concurrent writes at
once: group commit, see `IndexedStorage`) and only then into the index. The
revision file is written after each batch; on load the counter is the larger
of the file and the newest resourceVersion found, so revisions never go
backwards, even after the newest object was deleted. Watch events are not persisted:
after a restart `oldest_revision()` is the loaded revision.

Keys are refused (InvalidKeyError) unless `keys.is_safe_key` accepts them,
and the resolved path must stay inside the root (symlinks included).
Unreadable files found at load are skipped with a warning, never fatal.
"""
from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import pathlib
import shutil
import sys
from typing import Any

import orjson
import yaml

from kapi_certs.files import PRIVATE_MODE, fsync_dir, write_temp

from .events import DEFAULT_EVENT_WINDOW, DEFAULT_WATCH_QUEUE
from .commit import DiskDiverged
from .index import IndexedStorage
from .interfaces import InvalidKeyError, Snapshot, dumps_kept
from .keys import ROOT, is_safe_key

__all__ = ["FileStorage"]

log = logging.getLogger(__name__)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_Dumper: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

def _load_syncfs() -> Any:
    """Linux's syncfs(2): one call makes every file written in a batch durable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.syncfs if sys.platform.startswith("linux") and hasattr(libc, "syncfs") else None
    except OSError:  # pragma: no cover - no C library to load
        return None


_syncfs = _load_syncfs()

SUFFIX = ".yaml"
TEMP_SUFFIX = ".tmp"
REVISION_FILE = "revision"


class FileStorage(IndexedStorage):
    """`Storage` persisted as YAML files under `root`, served from memory.

    The constructor creates `root` if needed and loads what is there; there
    is no separate open step.
    """

    persistent = True
    backend_name = "file"

    def __init__(
        self,
        root: pathlib.Path,
        event_window: int = DEFAULT_EVENT_WINDOW,
        watch_queue_size: int = DEFAULT_WATCH_QUEUE,
    ) -> None:
        super().__init__(event_window=event_window, watch_queue_size=watch_queue_size)
        root.mkdir(parents=True, exist_ok=True)
        self._root = pathlib.Path(os.path.realpath(root))
        self._safe_dirs: set[pathlib.Path] = set()  # directories `_check_write` has proven safe
        self._load()

    @property
    def root(self) -> pathlib.Path:
        return self._root

    # ----- keys and paths ---------------------------------------------------

    def _check_key(self, key: str) -> None:
        if not isinstance(key, str) or key.endswith("/") or not is_safe_key(key):
            raise InvalidKeyError(str(key), f"invalid storage key: {key!r}")

    def _path_for(self, key: str) -> pathlib.Path:
        """The file for `key`, after proving it cannot land outside the root."""
        self._check_key(key)
        path = self._root / (key.lstrip("/") + SUFFIX)
        if path.parent in self._safe_dirs:  # its directory was resolved inside the root already
            return path
        resolved = pathlib.Path(os.path.realpath(path))
        if resolved == self._root or not resolved.is_relative_to(self._root):
            raise InvalidKeyError(key, f"storage key escapes the root directory: {key!r}")
        return path

    # ----- persistence hooks ----------------------------------------------------

    def _check_write(self, key: str) -> None:
        """Refuse, before the write is staged, a key whose file would clash with another key's.

        A path component that is a file (or a file name that is a directory)
        cannot be written; finding it now fails this write alone instead of a
        whole batch. Directories already proven safe are remembered: this runs
        on the event loop for every write.
        """
        path = self._root / (key.lstrip("/") + SUFFIX)
        if path.parent not in self._safe_dirs:
            path = self._path_for(key)
            for parent in path.parents:
                if not parent.is_relative_to(self._root) or parent in self._safe_dirs:
                    break
                if parent.exists() and not parent.is_dir():
                    raise InvalidKeyError(key, f"storage key clashes with another key's file: {key!r}")
            if path.parent.is_dir():
                self._safe_dirs.add(path.parent)
        if path.is_dir():
            raise InvalidKeyError(key, f"storage key clashes with another key's file: {key!r}")

    def _persist_batch(self, writes: list[tuple[str, bytes | None, int]]) -> None:
        """Runs in a worker thread: YAML encoding and syncing stay off the event loop.

        First every new state, and the batch's last revision for the revision
        file (what keeps revisions from going back after the newest object is
        deleted), go to temporary files, made durable together (a failure here
        leaves the disk untouched); then they are renamed into place and
        deletions unlinked, in order, and that is made durable too. With
        Linux's syncfs each of the two steps is one call for the whole batch;
        elsewhere every file and directory is fsync-ed.
        """
        batched = _syncfs is not None
        staged: list[tuple[pathlib.Path, pathlib.Path | None]] = []
        try:
            for key, data, _revision in writes:
                path = self._path_for(key)
                tmp = None if data is None else write_temp(path, self._yaml(data), PRIVATE_MODE, fsync=not batched)
                staged.append((path, tmp))
            revision_path = self._root / REVISION_FILE
            staged.append((revision_path, write_temp(revision_path, f"{writes[-1][2]}\n".encode(),
                                                     PRIVATE_MODE, fsync=not batched)))
            self._sync()
        except BaseException:
            for _path, tmp in staged:
                if tmp is not None:
                    tmp.unlink(missing_ok=True)
            raise
        try:
            for path, tmp in staged:
                if tmp is None:
                    path.unlink(missing_ok=True)
                else:
                    os.replace(tmp, path)
            if batched:
                self._sync()
            else:
                for directory in {path.parent for path, _tmp in staged}:
                    fsync_dir(directory)
            for directory in {path.parent for path, tmp in staged if tmp is None}:
                self._prune(directory)
        except BaseException as exc:
            raise DiskDiverged(f"writing {len(writes)} objects: {exc}") from exc

    async def restore(self, snapshot: Snapshot) -> None:
        await super().restore(snapshot)
        writes = [(key, data, snapshot.revision) for key, (_revision, data) in sorted(snapshot.entries.items())]
        if writes:
            await asyncio.to_thread(self._persist_batch, writes)

    async def drop(self) -> None:
        await super().drop()
        await asyncio.to_thread(shutil.rmtree, self._root, True)

    def _sync(self) -> None:
        """Flush the file system holding the root (syncfs), where that call exists."""
        if _syncfs is None:
            return
        fd = os.open(self._root, os.O_RDONLY)
        try:
            if _syncfs(fd) != 0:
                error = ctypes.get_errno()
                raise OSError(error, os.strerror(error))
        finally:
            os.close(fd)

    def _reload(self) -> None:
        self._safe_dirs.clear()
        self._entries.clear()
        self._keys.clear()
        self._load()

    @staticmethod
    def _yaml(data: bytes) -> bytes:
        text = yaml.dump(orjson.loads(data), Dumper=_Dumper, default_flow_style=False,
                         sort_keys=False, allow_unicode=True)
        return text.encode("utf-8")

    def _prune(self, directory: pathlib.Path) -> None:
        """Remove now-empty directories up to (not including) `<root>/registry`."""
        stop = self._root / ROOT.lstrip("/")
        while directory != stop and directory.is_relative_to(stop):
            self._safe_dirs.discard(directory)  # may come back as anything: check it again
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    # ----- loading ----------------------------------------------------------

    def _load(self) -> None:
        """Fill the index from disk; skip (and log) anything unreadable."""
        newest = 0
        base = self._root / ROOT.lstrip("/")
        for dirpath, _dirs, files in os.walk(base):
            for name in files:
                path = pathlib.Path(dirpath) / name
                if name.startswith(".") and name.endswith(TEMP_SUFFIX):
                    self._discard_temp(path)
                    continue
                loaded = self._load_file(path)
                if loaded is not None:
                    key, data, revision = loaded
                    self._index_put(key, data, revision)
                    newest = max(newest, revision)
        # The event window is memory only: after a restart history starts
        # here, so a watch or list from an older revision gets 410 Gone.
        self._set_loaded_revision(max(newest, self._read_revision_file()))

    def _discard_temp(self, path: pathlib.Path) -> None:
        """A temp file left by a crash mid-write; the old object file is intact."""
        log.warning("removing leftover temporary file %s", path)
        try:
            path.unlink()
        except OSError as exc:
            log.warning("cannot remove %s: %s", path, exc)

    def _load_file(self, path: pathlib.Path) -> tuple[str, bytes, int] | None:
        rel = path.relative_to(self._root).as_posix()
        if not rel.endswith(SUFFIX):
            log.warning("skipping %s: not a %s object file", path, SUFFIX)
            return None
        key = "/" + rel[: -len(SUFFIX)]
        if not is_safe_key(key):
            log.warning("skipping %s: %r is not a valid storage key", path, key)
            return None
        try:
            obj = yaml.load(path.read_bytes(), Loader=_Loader)
            rv = obj["metadata"]["resourceVersion"]
            revision = int(rv)
            if not isinstance(rv, str) or revision <= 0:
                raise ValueError(f"bad resourceVersion {rv!r}")
            data = dumps_kept(obj)
        except Exception as exc:  # any parse or shape problem: skip, never crash
            log.warning("skipping unreadable storage file %s: %s", path, exc)
            return None
        return key, data, revision

    def _read_revision_file(self) -> int:
        path = self._root / REVISION_FILE
        try:
            return max(0, int(path.read_text().strip()))
        except FileNotFoundError:
            return 0
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable revision file %s: %s", path, exc)
            return 0
