"""`kapi list`: every recorded instance with its URLs, uptime, readiness and object counts.

Stale state files (their process is gone) are shown once and removed.
"""
from __future__ import annotations

import json

import typer
from rich.console import Console

from kapi_cli import state as st
from kapi_cli.status import check_output
from kapi_cli.view import RUNNING, STALE, describe, probe_all, table

console = Console()


def list_instances(
    output: str = typer.Option("table", "--output", "-o", help="table or json."),
) -> None:
    """List kapi instances (running, and stale ones, which are cleaned)."""
    check_output(output)
    found = st.scan(clean=True)
    records = [describe(s, RUNNING, p) for s, p in zip(found.running, probe_all(found.running))]
    records += [describe(s, STALE, None) for s in found.stale]
    records.sort(key=lambda r: r["name"])
    if output == "json":
        typer.echo(json.dumps(records, indent=2))
        return
    if not records:
        console.print(f"no kapi instances (state directory {st.instances_dir()})", highlight=False)
        return
    console.print(table(records))
