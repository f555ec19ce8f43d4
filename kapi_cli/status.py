"""`kapi status [NAME]`: is an instance running and ready, where, since when, and how many objects it holds.

Exits 0 when the instance runs and answers `/readyz`, 1 otherwise. A state
file left by a process that is gone (killed, crashed) is reported and removed.
"""
from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from kapi_cli import state as st
from kapi_cli.probe import probe
from kapi_cli.view import NOT_RUNNING, RUNNING, STALE, describe, table

console = Console()
err = Console(stderr=True, soft_wrap=True)
OUTPUTS = ("table", "json")


def check_output(output: str) -> str:
    if output not in OUTPUTS:
        raise typer.BadParameter(f"{output!r}: use one of {', '.join(OUTPUTS)}", param_hint="--output")
    return output


def not_running(name: str) -> dict[str, Any]:
    return {"name": name, "status": NOT_RUNNING, "ready": False, "pid": None, "urls": [], "objects": None}


def _row(label: str, value: Text) -> Table:
    """`label value`, the value wrapping under itself (a grid per row: labels are not padded to one width,
    so `storage: etcd ok` reads as one phrase)."""
    grid = Table.grid(padding=(0, 1, 0, 0))
    grid.add_column(no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row(label, value)
    return grid


def details(record: dict[str, Any]) -> Group:
    """The lines under `kapi status`'s table, within 80 columns: paths fold, lists wrap at their commas,
    numbers stay whole; values are Text, never markup."""
    rows = []
    for label, key in (("root", "file_rootpath"), ("kubeconfig", "kubeconfig"), ("log", "log_file"),
                       ("started", "started_at"), ("version", "kapi_version")):
        if record.get(key):
            rows.append(_row(f"  {label}:", Text(str(record[key]))))
    objects = record.get("objects")
    if objects:
        rows.append(_row("  objects:", Text(", ".join(f"{k} {v}" for k, v in objects.items()))))
    rows += [_row(label, value) for label, value in storage_rows(record.get("storage"))]
    return Group(*rows)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024
    return str(n)


def storage_rows(report: Any) -> list[tuple[str, Text]]:
    """The backend's health as `kapi status` shows it: one row, plus one per etcd endpoint."""
    if not isinstance(report, dict):
        return []
    head = Text(f"{report.get('backend')} ")
    head.append("ok" if report.get("ok") else "unavailable", "green" if report.get("ok") else "red")
    head.append(f", revision {report.get('revision')}")
    if report.get("prefix"):
        head.append(f", prefix {report['prefix']}")
    if report.get("error"):
        head.append(f" ({report['error']})")
    rows = [("  storage:", head)]  # endpoints indented under it
    for member in report.get("endpoints") or []:
        line = Text(f"{member.get('endpoint')}: ")
        if not member.get("ok"):
            line.append("unreachable", "red")
            line.append(f" ({member.get('error')})")
        else:
            role = "leader" if member.get("isLeader") else "follower"
            line.append(f"ok, {role}, etcd {member.get('version')}, revision {member.get('revision')}, "
                        f"db {_size(int(member.get('dbSize') or 0))}")
        rows.append(("   ", line))
    return rows


def status(
    name: str = typer.Argument("default", help="Instance name."),
    output: str = typer.Option("table", "--output", "-o", help="table or json."),
) -> None:
    """Show whether an instance is running and ready; exit 1 when it is not."""
    check_output(output)
    try:
        st.validate_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="NAME") from None
    found = st.read_state(name)
    if found is None:
        record = not_running(name)
    elif not found.alive():
        st.remove_state(name, found.pid)
        record = describe(found, STALE, None)
        err.print(f"[yellow]instance {name!r} is not running:[/yellow] pid {found.pid} is gone; "
                  f"removed its stale state file")
    else:
        record = describe(found, RUNNING, probe(found))
    if output == "json":
        typer.echo(json.dumps(record, indent=2))
    elif record["status"] == NOT_RUNNING:
        err.print(f"instance {name!r} is not running (no state under {st.instances_dir()})")
    else:
        console.print(table([record]))
        console.print(details(record), highlight=False)
    if record["status"] != RUNNING or not record["ready"]:
        raise typer.Exit(1)
