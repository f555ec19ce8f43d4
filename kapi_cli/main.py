"""The `kapi` command: one Typer app per command module, joined here."""
from __future__ import annotations

import typer

from kapi_cli import start

app = typer.Typer(
    name="kapi",
    help="Spin up and manage local Kubernetes-style API servers.",
    no_args_is_help=True,
    add_completion=False,
)
app.command("start", help=start.__doc__)(start.start)


@app.callback()
def main() -> None:
    """kapi: local Kubernetes-style API servers."""

if __name__ == "__main__":  # pragma: no cover
    app()
