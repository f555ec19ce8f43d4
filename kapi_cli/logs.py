"""`kapi logs [NAME] [--follow]`: the output of an instance started with `kapi start --detach`."""
from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kapi_cli import state as st

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


def follow(path: Path, position: int, running: "st.InstanceState | None") -> None:
    """Print what is appended to `path` until the instance exits (or Ctrl-C)."""
    while True:
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = 0
        if size < position:  # truncated: a new `kapi start --detach` of this name
            position = 0
        if size > position:
            with open(path, "rb") as fh:
                fh.seek(position)
                chunk = fh.read()
            position += len(chunk)
            _write(chunk)
            continue
        if running is None or not running.alive():
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
        data = path.read_bytes()
    except FileNotFoundError:
        console.print(f"[red]error:[/red] no log for instance {name!r} ({path} does not exist)")
        raise typer.Exit(1) from None
    _write(_tail_bytes(data, tail) if tail is not None else data)
    if follow_:
        try:
            follow(path, len(data), running)
        except KeyboardInterrupt:
            pass
