"""`kapi logs [NAME] [--follow]`: the output of an instance started with `kapi start --detach`.

The server rotates its log (`--log-file-max-size`, `--log-file-max-backups`:
NAME.log.N … NAME.log.1, then NAME.log), so the log is read across its
files, oldest first, and `--follow` keeps up with the current file when it
is rotated.
"""
from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import BinaryIO, Optional

import typer
from rich.console import Console

from kapi_cli import state as st
from kapi.logsetup import rotated_files

console = Console(stderr=True, soft_wrap=True)
POLL = 0.2


def _tail_bytes(data: bytes, lines: int) -> bytes:
    if lines <= 0:
        return b""
    parts = data.splitlines(keepends=True)
    return b"".join(parts[-lines:])


def _write(data: bytes) -> None:
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()


def read_logs(path: Path) -> "tuple[bytes, BinaryIO | None]":
    """The log's rotated files oldest first, then the current one, and that current file left open at its
    end (to follow it). FileNotFoundError when there is no log at all."""
    files = rotated_files(path)
    if not files:
        raise FileNotFoundError(path)
    parts: list[bytes] = []
    for old in files[:-1] if files[-1] == path else files:
        with contextlib.suppress(FileNotFoundError):  # rotated away meanwhile: its lines moved up one name
            parts.append(old.read_bytes())
    current: "BinaryIO | None" = None
    with contextlib.suppress(FileNotFoundError):
        current = open(path, "rb")
        parts.append(current.read())
    return b"".join(parts), current


def _same_file(path: Path, fh: BinaryIO) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
    except FileNotFoundError:
        return True  # between the rename and the new file: keep reading the old one


def _next_file(path: Path, inode: int) -> "BinaryIO | None":
    """The file written after the one with `inode` (several rotations may have passed between two polls), or
    the oldest one kept if that one is gone too; None when there is none yet. Names move while the server
    rotates, so a file is kept only if it is the one a consistent listing named."""
    for _ in range(100):
        files = rotated_files(path)
        try:
            inodes = [os.stat(f).st_ino for f in files]
        except FileNotFoundError:
            continue  # renamed while listed: list again
        if inode in inodes:
            index = inodes.index(inode) + 1
            if index == len(files):
                return None
        elif files:
            index = 0
        else:
            return None
        try:
            fh = open(files[index], "rb")
        except FileNotFoundError:
            continue
        if os.fstat(fh.fileno()).st_ino == inodes[index]:
            return fh
        fh.close()
    return None


def follow(path: Path, fh: "BinaryIO | None", running: "st.InstanceState | None") -> None:
    """Print what is appended to the log until the instance exits (or Ctrl-C), across rotations: once the
    file being read has been rotated away, the rest of it is printed, then each newer file in turn."""
    while True:
        if fh is None:
            with contextlib.suppress(FileNotFoundError):
                fh = open(path, "rb")
        chunk = fh.read() if fh is not None else b""
        if chunk:
            _write(chunk)
            continue
        if fh is not None and not _same_file(path, fh):  # rotated: the writer has moved on to a newer file
            _write(fh.read())
            inode = os.fstat(fh.fileno()).st_ino
            fh.close()
            fh = _next_file(path, inode)
            continue
        if fh is not None and os.fstat(fh.fileno()).st_size < fh.tell():  # truncated: a new detached start
            fh.seek(0)
            continue
        if running is None or not running.alive():
            if fh is not None:
                fh.close()
            return
        time.sleep(POLL)


def logs(
    name: str = typer.Argument("default", help="Instance name."),
    follow_: bool = typer.Option(False, "--follow", "-f", help="Keep printing new output until the instance exits."),
    tail: Optional[int] = typer.Option(None, "--tail", "-n", help="Only the last N lines."),
) -> None:
    """Show the log of an instance started with `kapi start --detach`."""
    try:
        st.validate_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    found = st.read_state(name)
    running = found if found is not None and found.alive() else None
    if found is not None and found.log_file is None and running is not None:
        console.print(f"[red]error:[/red] instance {name!r} runs in the foreground (pid {found.pid}): "
                      "its output goes to the terminal that started it")
        raise typer.Exit(1)
    path = Path(found.log_file) if found is not None and found.log_file else st.log_path(name)
    try:
        data, current = read_logs(path)
    except FileNotFoundError:
        console.print(f"[red]error:[/red] no log for instance {name!r} ({path} does not exist)")
        raise typer.Exit(1) from None
    _write(_tail_bytes(data, tail) if tail is not None else data)
    if not follow_:
        if current is not None:
            current.close()
        return
    try:
        follow(path, current, running)
    except KeyboardInterrupt:
        pass
