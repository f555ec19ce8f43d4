"""`kapi status [NAME]`: is an instance running and ready, where, since when, and how many objects it holds.

Exits 0 when the instance runs and answers `/readyz`, 1 otherwise. A state
file left by a process that is gone (killed, crashed) is reported and removed.
"""
from __future__ import annotations

import json
from typing import Any

import typer
from rich.console import Console

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


def _details(record: dict[str, Any]) -> None:
    for label, key in (("root", "file_rootpath"), ("kubeconfig", "kubeconfig"), ("log", "log_file"),
                       ("started", "started_at"), ("version", "kapi_version")):
        if record.get(key):
            console.print(f"  {label}: {record[key]}", highlight=False, soft_wrap=True)
    objects = record.get("objects")
    if objects:
        console.print("  objects: " + ", ".join(f"{k} {v}" for k, v in objects.items()), highlight=False, soft_wrap=True)
    for line in storage_lines(record.get("storage")):
        console.print(line, highlight=False, soft_wrap=True)


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n = n / 1024
    return str(n)


def storage_lines(report: Any) -> list[str]:
    """The backend's health as `kapi status` prints it: one line, plus one per etcd endpoint."""
    if not isinstance(report, dict):
        return []
    state = "[green]ok[/green]" if report.get("ok") else "[red]unavailable[/red]"
    head = f"  storage: {report.get('backend')} {state}, revision {report.get('revision')}"
    if report.get("prefix"):
        head += f", prefix {report['prefix']}"
    if report.get("error"):
        head += f" ({report['error']})"
    lines = [head]
    for member in report.get("endpoints") or []:
        if not member.get("ok"):
            lines.append(f"    {member.get('endpoint')}: [red]unreachable[/red] ({member.get('error')})")
            continue
        role = "leader" if member.get("isLeader") else "follower"
        lines.append(f"    {member.get('endpoint')}: ok, {role}, etcd {member.get('version')}, "
                     f"revision {member.get('revision')}, db {_size(int(member.get('dbSize') or 0))}")
    return lines


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
        _details(record)
    if record["status"] != RUNNING or not record["ready"]:
        raise typer.Exit(1)
