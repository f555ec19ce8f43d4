"""`kapi start --detach`: the same command line re-run in the background, and the wait for its `/readyz`.

The child gets every option back from the validated ServerConfig (`child_argv`), so it
starts exactly the server the foreground would have, with its output in
`$KAPI_HOME/logs/<name>.log`.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import typer
from rich.console import Console

from kapi_certs.files import ensure_dir
from kapi_cli import state as st
from kapi_cli.aggregation_flags import aggregation_flags_of
from kapi_cli.api_flags import api_flags_of
from kapi_cli.audit_flags import audit_flags_of
from kapi_cli.authz_flags import AuthorizationFlags
from kapi_cli.logging_flags import logging_flags_of
from kapi_cli.plugin_flags import PluginFlags
from kapi_cli.probe import is_ready
from kapi_cli.process import stop_process
from kapi_cli.service_account_flags import ServiceAccountFlags
from kapi_cli.simulate_flags import simulate_flags_of
from kapi.config import ServerConfig
from kapi.logsetup import remove_backups

LOG_TAIL_LINES = 40
console = Console(stderr=True, soft_wrap=True)


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


def urls(config: ServerConfig) -> list[str]:
    urls = []
    if config.secure_port:
        urls.append(st.https_url(config.bind_address, config.secure_port))
    if config.insecure_port:
        urls.append(st.http_url(config.bind_address, config.insecure_port))
    return urls


def child_argv(config: ServerConfig, request_timeout: str, log_level: str) -> list[str]:
    """The `kapi start` options that rebuild `config` (paths absolute): what the detached server runs with."""
    def flag(name: str, on: bool) -> str:
        return f"--{name}" if on else f"--no-{name}"

    args = ["--name", config.name, "--backend", config.backend, "--file-rootpath", str(config.file_rootpath),
            "--bind-address", config.bind_address, "--secure-port", str(config.secure_port),
            "--insecure-port", str(config.insecure_port), "--request-timeout", request_timeout,
            flag("examples", config.load_examples), flag("core-resources", config.core_resources),
            flag("unrestricted-update", config.unrestricted_update),
            flag("kubectl-disabled", config.kubectl_disabled),
            flag("kubectl-ephemeral-token", config.kubectl_ephemeral_token),
            flag("authn-allow-localhost", config.authn_allow_localhost), flag("metrics", config.metrics),
            "--log-level", log_level,
            "--watch-event-window", str(config.event_window),
            "--watch-bookmark-interval", repr(config.bookmark_interval),
            "--delete-collection-workers", str(config.delete_collection_workers)]
    if config.etcd_servers:
        args += ["--etcd-servers", ",".join(config.etcd_servers), "--etcd-prefix", config.etcd_prefix,
                 flag("etcd-wait", config.etcd_wait)]
    for option, path in (("--etcd-cafile", config.etcd_cafile), ("--etcd-certfile", config.etcd_certfile),
                         ("--etcd-keyfile", config.etcd_keyfile)):
        if path is not None:
            args += [option, str(path)]
    if config.token_auth_file is not None:
        args += ["--token-auth-file", str(config.token_auth_file)]
    for directory in config.resource_dirs:
        args += ["--resources", str(directory)]
    for name in config.extra_sans:
        args += ["--san", name]
    admission = ",".join(config.admission_plugins) if config.admission_plugins is not None else None
    return args + PluginFlags(config.plugins, admission, config.apiexts_prefix).args() + api_flags_of(
        config.api_groups, config.service_cluster_ip_range, config.service_node_port_range).args() + \
        ServiceAccountFlags(config.service_account_issuer, config.service_account_key_file).args() + \
        AuthorizationFlags(",".join(config.authorization_modes)).args() + aggregation_flags_of(config).args() + \
        simulate_flags_of(config).args() + logging_flags_of(config).args() + audit_flags_of(config).args()


def log_tail(path: Path, lines: int = LOG_TAIL_LINES, start: int = 0) -> str:
    try:
        with open(path, "rb") as fh:
            fh.seek(start)
            data = fh.read()
    except OSError:
        return ""
    return "\n".join(data.decode("utf-8", "replace").splitlines()[-lines:])


def start_detached(config: ServerConfig, args: list[str], ready_timeout: float) -> int:
    """Run `kapi start ARGS` in the background; 0 once it is ready, 1 (with its log tail) if not."""
    try:
        notes = st.check_can_start(config.name, config.bind_address, (config.secure_port, config.insecure_port),
                                   config.file_rootpath, config.backend)
    except st.ConflictError as exc:
        raise fail(str(exc)) from None
    for note in notes:
        console.print(f"note: {note}")
    log = st.log_path(config.name)
    ensure_dir(log.parent)
    remove_backups(log)  # the log starts afresh below: so does its rotation history
    cmd = [sys.executable, "-m", "kapi_cli.main", "start", *args, "--log-file", str(log)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, env=env, close_fds=True)
    try:
        return _wait_ready(config, proc, log, ready_timeout)
    except KeyboardInterrupt:
        console.print(f"interrupted: stopping kapi instance {config.name!r}")
        stop_process(proc)
        return 130


def _wait_ready(config: ServerConfig, proc: "subprocess.Popen[bytes]", log: Path, ready_timeout: float) -> int:
    https = st.https_url(config.bind_address, config.secure_port) if config.secure_port else None
    http = st.http_url(config.bind_address, config.insecure_port) if config.insecure_port else None
    deadline = time.monotonic() + ready_timeout
    while True:
        code = proc.poll()
        if code is not None:
            console.print(f"[red]error:[/red] kapi instance {config.name!r} exited with code {code} "
                          f"before it was ready; last lines of {log}:")
            console.print(log_tail(log), markup=False, highlight=False)
            return 1
        recorded = st.read_state(config.name)
        if recorded is not None and recorded.pid == proc.pid and is_ready(config.file_rootpath, https, http, 1.0):
            break
        if time.monotonic() > deadline:
            console.print(f"[red]error:[/red] kapi instance {config.name!r} was not ready within "
                          f"{ready_timeout:g}s; stopping it. Last lines of {log}:")
            stop_process(proc)
            console.print(log_tail(log), markup=False, highlight=False)
            return 1
        time.sleep(0.1)
    typer.echo(f"kapi instance {config.name!r} is ready (pid {proc.pid})")
    for url in urls(config):
        typer.echo(f"  {url}")
    kubeconfig = config.kubeconfig_path
    if not config.kubectl_disabled and kubeconfig.is_file():
        typer.echo(f"  kubeconfig: {kubeconfig}   (kubectl --kubeconfig {kubeconfig} get namespaces)")
    typer.echo(f"  logs: kapi logs {config.name}   status: kapi status {config.name}   stop: kapi stop {config.name}")
    return 0
