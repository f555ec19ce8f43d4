"""Safe writing of PKI files.

Why this exists: a private key must never be readable by anyone else, not even
for the instant between creating a file and tightening its mode, so private
files are *created* 0600 (never chmod-ed afterwards). And a reader (a server
starting, a second `kapi gen-certs`) must never see half a certificate, so
every write goes to a temporary file in the same directory, is fsync-ed, then
atomically renamed over the target with `os.replace`.
"""
from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator

PRIVATE_MODE = 0o600
PUBLIC_MODE = 0o644
DIR_MODE = 0o700

__all__ = [
    "DIR_MODE", "PRIVATE_MODE", "PUBLIC_MODE", "atomic_write", "dir_lock", "ensure_dir", "fsync_dir",
    "write_private", "write_public", "write_temp",
]


def ensure_dir(path: Path) -> None:
    """Create `path` (mode 0700) if missing; an existing directory is left as the user set it.

    Parents are created with the default mode: they are not ours (e.g. `~/.kapi`).
    """
    path = Path(path)
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.mkdir(path, DIR_MODE)
    except FileExistsError:  # lost a race with another writer: fine
        if not path.is_dir():
            raise


def fsync_dir(directory: Path) -> None:
    """Make the rename durable; some platforms cannot open a directory, which is harmless."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_temp(path: Path, data: bytes, mode: int = PUBLIC_MODE, fsync: bool = True) -> Path:
    """Write `data` to a fresh temporary file beside `path`; return it, to be renamed over `path`.

    Durable on return unless `fsync` is False (a caller that syncs a whole
    batch at once). The temporary name starts with '.' and ends in '.tmp',
    so a leftover from a crash is recognisable.
    """
    path = Path(path)
    ensure_dir(path.parent)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    # O_EXCL with a random name: we never follow a planted symlink or reuse a file.
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(tmp, flags, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            if fsync:
                fh.flush()
                os.fsync(fh.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


def atomic_write(path: Path, data: bytes, mode: int = PUBLIC_MODE) -> None:
    """Replace `path` with `data`: readers see the old file or the new one, never half of either."""
    path = Path(path)
    tmp = write_temp(path, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_private(path: Path, data: bytes) -> None:
    """Atomically write a secret (private key, p12, password) created with mode 0600."""
    atomic_write(path, data, PRIVATE_MODE)


def write_public(path: Path, data: bytes) -> None:
    """Atomically write a public file (certificate), world-readable subject to the umask."""
    atomic_write(path, data, PUBLIC_MODE)


@contextlib.contextmanager
def dir_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on `directory` (via `.lock` in it) so two writers take turns.

    Why: two `kapi start`s on one root must not both mint a CA and sign with
    different ones. Where `fcntl` does not exist this is a no-op.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - non-POSIX
        yield
        return
    ensure_dir(directory)
    fd = os.open(Path(directory) / ".lock", os.O_RDWR | os.O_CREAT, PRIVATE_MODE)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock
