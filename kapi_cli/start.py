"""Start a Kubernetes-style API server in the foreground."""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
import uvicorn
from rich.console import Console
from rich.panel import Panel

from server.api.duration import parse_duration
from server.app import create_app
from server.config import ServerConfig
from server.scheme.crd import CRDError
from server.storage.factory import BACKENDS

DEFAULT_ROOT = Path.home() / ".kapi" / "data"
console = Console(stderr=True)


def _banner(config: ServerConfig, resources: int) -> Panel:
    url = f"http://{config.bind_address}:{config.insecure_port}"
    where = f"{config.backend}" + (f" at {config.file_rootpath}" if config.backend == "file" else "")
    text = (
        f"[bold]kapi[/bold] serving [cyan]{url}[/cyan]\n"
        f"storage: {where}   resources: {resources}   request timeout: {config.request_timeout:g}s\n\n"
        f"try:  [green]kubectl --server {url} api-resources[/green]\n"
        f"      [green]kubectl --server {url} get foos -A[/green]"
    )
    return Panel(text, title="kapi start", expand=False)


def start(
    backend: str = typer.Option("file", help=f"Storage backend: {', '.join(BACKENDS)}."),
    file_rootpath: Path = typer.Option(DEFAULT_ROOT, help="Root directory for the file backend's data."),
    bind_address: str = typer.Option("127.0.0.1", help="Address to listen on."),
    insecure_port: int = typer.Option(6080, help="HTTP port."),
    resources: Optional[List[Path]] = typer.Option(
        None, "--resources", help="A directory of CRD manifests to serve as well (repeatable)."),
    examples: bool = typer.Option(True, "--examples/--no-examples", help="Serve the shipped example resources."),
    request_timeout: str = typer.Option("60s", help="Longest a non-watch request may take (e.g. 30s, 60m)."),
    unrestricted_update: bool = typer.Option(
        False, "--unrestricted-update", help="Allow PUT without metadata.resourceVersion."),
    log_level: str = typer.Option("info", help="uvicorn log level."),
) -> None:
    """Start a Kubernetes-style API server in the foreground."""
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}",
                                 param_hint="--backend")
    try:
        timeout = parse_duration(request_timeout)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--request-timeout") from None
    config = ServerConfig(
        backend=backend,
        file_rootpath=file_rootpath.expanduser().resolve(),
        bind_address=bind_address,
        insecure_port=insecure_port,
        resource_dirs=tuple(p.expanduser().resolve() for p in resources or ()),
        load_examples=examples,
        request_timeout=timeout,
        unrestricted_update=unrestricted_update,
    )
    try:
        app = create_app(config)
    except (CRDError, ValueError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(_banner(config, len(app.state.api.scheme.definitions)))
    uvicorn.run(app, host=bind_address, port=insecure_port, log_level=log_level,
                http="httptools", loop="uvloop", timeout_graceful_shutdown=5)
