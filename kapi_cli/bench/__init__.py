"""`kapi bench` / `scripts/bench.py`: kapi measured beside its ceilings (see `kapi_cli.bench.cli`).

This module stays import-light: `kapi_cli.main` may import it, and every
`kapi start` (whose start-up the benchmark measures) imports `kapi_cli.main`.
The options are argparse's (`kapi_cli.bench.cli`), so the Typer command
passes its arguments through untouched, `--help` included.
"""
from __future__ import annotations

from typing import Any, Sequence

import typer

__all__ = ["COMMAND_SETTINGS", "command", "main"]

#: `app.command("bench", **COMMAND_SETTINGS)(command)`: every argument, --help too, goes to argparse.
COMMAND_SETTINGS: dict[str, Any] = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
}


def main(argv: Sequence[str] | None = None, prog: str | None = None) -> int:
    """Run the benchmark with `argv` (default: sys.argv[1:]); the exit code."""
    from kapi_cli.bench.cli import main as cli_main

    return cli_main(argv, prog)


def command(ctx: typer.Context) -> None:
    """Measure kapi beside its ceilings: start-up, rates, lists, watch, memory (kapi bench --help)."""
    raise typer.Exit(main(ctx.args, prog="kapi bench"))
