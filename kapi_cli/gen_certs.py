"""Create or refresh kapi's CA, serving and client certificates and client.p12."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from kapi_certs.bundle import CertReport, ensure_certs
from kapi_certs.layout import DEFAULT_CLIENT_GROUPS, DEFAULT_CLIENT_USER
from kapi_certs.pki import cert_info

# Same default as `kapi start --file-rootpath`; kept here so this command does not import the server.
DEFAULT_ROOT = Path.home() / ".kapi" / "data"
CERT_SUBDIR = "cert"

_STYLE = {"created": "green", "renewed": "yellow", "kept": "dim"}


def _table(report: CertReport) -> Table:
    table = Table(title=f"certificates in {report.paths.dir}", title_justify="left")
    table.add_column("file", no_wrap=True)
    table.add_column("action", no_wrap=True)
    table.add_column("why")
    for entry in report.entries:
        style = _STYLE[entry.action]
        table.add_row(entry.name, f"[{style}]{entry.action}[/{style}]", entry.reason)
    return table


def gen_certs(
    file_rootpath: Path = typer.Option(
        DEFAULT_ROOT, help="Root directory of the instance; certificates go to <root>/cert/."),
    san: Optional[List[str]] = typer.Option(
        None, "--san", help="Extra DNS name or IP for the serving certificate (repeatable)."),
    client_user: str = typer.Option(DEFAULT_CLIENT_USER, help="User name (CN) of the client certificate."),
    client_group: Optional[List[str]] = typer.Option(
        None, "--client-group",
        help=f"Group (O) of the client certificate (repeatable; default {', '.join(DEFAULT_CLIENT_GROUPS)})."),
    p12_password: Optional[str] = typer.Option(
        None, "--p12-password", envvar="KAPI_P12_PASSWORD", show_envvar=True,
        help="Password for client.p12 (default: the stored one, or a new random one)."),
    force: bool = typer.Option(False, "--force", help="Regenerate the CA and every certificate."),
    show_password: bool = typer.Option(False, "--show-password", help="Print the p12 password."),
) -> None:
    """Create or refresh kapi's CA, serving and client certificates and client.p12.

    Safe to re-run: valid certificates are kept byte for byte; ones that expire
    within 30 days, lack a requested SAN or name another user/groups are renewed;
    --force regenerates everything. Private keys are written mode 0600.
    """
    root = file_rootpath.expanduser().resolve()
    try:
        report = ensure_certs(
            root / CERT_SUBDIR, extra_sans=tuple(san or ()), client_user=client_user,
            client_groups=tuple(client_group) if client_group else DEFAULT_CLIENT_GROUPS,
            p12_password=p12_password, force=force,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None
    except OSError as exc:
        Console(stderr=True).print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None

    console = Console()
    console.print(_table(report))
    paths = report.paths
    info = cert_info(paths.server_crt)
    console.print(f"serving SANs: {', '.join(info.sans)}", highlight=False)
    if show_password:
        console.print(f"p12 password: {report.p12_password}", highlight=False)
    else:
        console.print(f"p12 password: stored in {report.password_path} (--show-password prints it)",
                      highlight=False)
    console.print(
        "try:  curl --cert-type P12 "
        f"--cert {paths.client_p12}:\"$(cat {report.password_path})\" "
        f"--cacert {paths.ca_crt} https://127.0.0.1:8443/version",
        highlight=False, soft_wrap=True,
    )
