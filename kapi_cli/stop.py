"""`kapi stop [NAME]`: SIGTERM, wait for a graceful exit (up to --timeout), then SIGKILL."""
from __future__ import annotations

import os
import signal
import time

import typer
from rich.console import Console

from kapi_cli import state as st

console = Console(stderr=True, soft_wrap=True)


def _wait_gone(state: st.InstanceState, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not state.alive():
            return True
        time.sleep(0.05)
    return not state.alive()


def stop_instance(state: st.InstanceState, timeout: float) -> str:
    """Stop a running instance; returns how ("gracefully" or "killed")."""
    how = "gracefully"
    try:
        os.kill(state.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    if not _wait_gone(state, timeout):
        how = "killed (no exit within the grace period)"
        try:
            os.kill(state.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _wait_gone(state, 5.0)
    st.remove_state(state.name, state.pid)  # the server removes it itself on a graceful exit
    return how


def stop(
    name: str = typer.Argument("default", help="Instance name."),
    timeout: float = typer.Option(10.0, help="Seconds to wait after SIGTERM before SIGKILL."),
) -> None:
    """Stop a running instance."""
    try:
        st.validate_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    found = st.read_state(name)
    if found is None:
        console.print(f"[red]error:[/red] no instance named {name!r} is running "
                      f"(no state under {st.instances_dir()})")
        raise typer.Exit(1)
    if not found.alive():
        st.remove_state(name, found.pid)
        console.print(f"instance {name!r} was not running (pid {found.pid} is gone): removed its stale state file")
        return
    how = stop_instance(found, timeout)
    console.print(f"stopped instance {name!r} (pid {found.pid}) {how}")
