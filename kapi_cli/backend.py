"""`kapi start`'s etcd flags, and reaching the backend before anything is served.

An unreachable etcd at start-up is a clear one-line error and exit 1, or,
with `--etcd-wait`, a wait until it answers (for servers started alongside
their etcd, by a supervisor or a compose file).
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from kapi.config import ServerConfig
from kapi.storage.factory import DEFAULT_ETCD_PREFIX
from kapi.storage.interfaces import StorageUnavailableError

WAIT_INTERVAL = 1.0


class BackendUnreachable(Exception):
    """The storage backend could not be reached at start-up."""


@dataclass(frozen=True)
class EtcdFlags:
    """`--etcd-prefix/--etcd-cafile/--etcd-certfile/--etcd-keyfile/--etcd-wait` as given."""

    prefix: str = DEFAULT_ETCD_PREFIX
    cafile: Optional[Path] = None
    certfile: Optional[Path] = None
    keyfile: Optional[Path] = None
    wait: bool = False

    @staticmethod
    def resolved(path: Optional[Path]) -> Optional[Path]:
        return path.expanduser().resolve() if path is not None else None

    def check(self, backend: str, servers: tuple[str, ...]) -> None:
        """Usage errors that need no connection."""
        if backend == "etcd" and not servers:
            raise typer.BadParameter("the etcd backend needs --etcd-servers (e.g. http://127.0.0.1:2379)",
                                     param_hint="--etcd-servers")
        if not self.prefix.startswith("/") or "//" in self.prefix:
            raise typer.BadParameter(f"{self.prefix!r}: an etcd prefix is an absolute key path like /registry",
                                     param_hint="--etcd-prefix")
        for hint, path in (("--etcd-cafile", self.cafile), ("--etcd-certfile", self.certfile),
                           ("--etcd-keyfile", self.keyfile)):
            if path is not None and not path.expanduser().is_file():
                raise typer.BadParameter(f"{path} is not a file", param_hint=hint)
        if bool(self.certfile) != bool(self.keyfile):
            raise typer.BadParameter("--etcd-certfile and --etcd-keyfile go together", param_hint="--etcd-keyfile")


def reach_backend(config: ServerConfig, console: Console) -> None:
    """Return once the backend answers; BackendUnreachable (or wait, with --etcd-wait) if it does not."""
    if config.backend != "etcd":
        return
    asyncio.run(_reach_etcd(config, console))


async def _reach_etcd(config: ServerConfig, console: Console) -> None:
    from kapi.app import build_storage  # imported by `kapi start` anyway

    storage = build_storage(config)
    waiting = False
    try:
        while True:
            try:
                await storage.current_revision()
                if waiting:
                    console.print("etcd answered; starting")
                return
            except StorageUnavailableError as exc:
                if not config.etcd_wait:
                    raise BackendUnreachable(
                        f"cannot reach etcd: {exc} (is it running? check --etcd-servers and the "
                        "--etcd-* TLS files, or pass --etcd-wait to wait for it)") from None
                if not waiting:
                    console.print(f"waiting for etcd at {','.join(config.etcd_servers)} ({exc})")
                    waiting = True
                await asyncio.sleep(WAIT_INTERVAL)
    finally:
        await storage.close()
