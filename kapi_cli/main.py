"""The `kapi` command: one Typer app per command module, joined here."""
from __future__ import annotations

import sys

import typer

from kapi_cli import bench, gen_certs, kubeconfig, list_cmd, logs, manifests, start, status, stop
from kapi_cli.flags import FlagError, normalize_bool_flags

app = typer.Typer(
    name="kapi",
    help="Spin up and manage local Kubernetes-style API servers.",
    no_args_is_help=True,
    add_completion=False,
    # A traceback must never print local variables: they may hold a token or a key.
    pretty_exceptions_show_locals=False,
)
app.command("start")(start.start)
app.command("stop")(stop.stop)
app.command("status")(status.status)
app.command("list")(list_cmd.list_instances)
app.command("logs")(logs.logs)
app.command("kubeconfig")(kubeconfig.kubeconfig)
app.command("gen-certs")(gen_certs.gen_certs)
app.command("manifests")(manifests.manifests)
app.command("bench", **bench.COMMAND_SETTINGS)(bench.command)


@app.callback()
def main() -> None:
    """kapi: local Kubernetes-style API servers."""


def run() -> None:
    """Console-script entry: accept Go-style `--flag=true|false`, then hand over to Typer."""
    try:
        args = normalize_bool_flags(sys.argv[1:])
    except FlagError as exc:
        typer.echo(f"Error: {exc}", err=True)
        raise SystemExit(2) from None
    app(args=args, prog_name="kapi")


if __name__ == "__main__":  # pragma: no cover
    run()
