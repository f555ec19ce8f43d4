"""Start a Kubernetes-style API server (HTTPS with generated certificates, and/or HTTP).

In the foreground the server records itself under `$KAPI_HOME/instances/<name>.json`
while it runs (so `kapi list/status/stop/logs` find it) and writes
`<root>/kubeconfig` (0600) for its kubectl token. `--detach` re-runs the same
command line in the background, logging to `$KAPI_HOME/logs/<name>.log`, and
returns once `/readyz` answers (kapi_cli/detached.py).
"""
from __future__ import annotations

import logging
import os
import signal
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import List, Optional

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from kapi_certs.bundle import CertError, ensure_certs
from kapi_certs.files import write_private
from kapi_cli import state as st
from kapi_cli.backend import BackendUnreachable, EtcdFlags, reach_backend
from kapi_cli.kubeconfig import KubeconfigError, Target, kubeconfig_for, to_yaml
from kapi_cli.api_flags import ApiFlags
from kapi_cli.aggregation_flags import AggregationFlags
from kapi_cli.audit_flags import DEFAULT_BATCH_MAX_SIZE as AUDIT_BATCH_SIZE, AuditFlags
from kapi_cli.authz_flags import AuthorizationFlags
from kapi_cli.plugin_flags import PluginFlags
from kapi_cli.detached import child_argv, start_detached, urls
from kapi_cli.logging_flags import LoggingFlags
from kapi_cli.service_account_flags import DEFAULT_ISSUER as DEFAULT_SA_ISSUER, ServiceAccountFlags
from kapi_cli.simulate_flags import DEFAULT_CAPACITY_TEXT, DEFAULT_NODES, SimulateFlags
from kapi.auth.modes import DEFAULT_MODES
from kapi.api.duration import parse_duration
from kapi.api.klog import KV_ATTR
from kapi.config import DEFAULT_DELETE_COLLECTION_WORKERS, ServerConfig
from kapi.logsetup import configure_logging, log_startup
from kapi.storage.factory import BACKENDS, DEFAULT_ETCD_PREFIX as ETCD_PREFIX

DEFAULT_ROOT = Path.home() / ".kapi" / "data"
DEFAULT_READY_TIMEOUT = 30.0
console = Console(stderr=True, soft_wrap=True)


def _banner_rows(config: ServerConfig, resources: int, kubeconfig: Optional[Path]) -> list[tuple[str, Text]]:
    """What the banner says, as (label, value) rows: values are Text (never markup), commands green."""
    where = config.backend + (f" at {config.file_rootpath}" if config.backend == "file" else "")
    if config.backend == "etcd":
        where += f" (prefix {config.etcd_prefix}) at\n" + "\n".join(config.etcd_servers)
    rows = [("serving", Text("\n".join(urls(config)))), ("storage", Text(where)),
            ("resources", Text(str(resources))), ("request timeout", Text(f"{config.request_timeout:g}s"))]
    if kubeconfig is not None and config.secure_port:
        rows.append(("kubeconfig", Text(f"{kubeconfig} (kubectl token over HTTPS)")))
        rows.append(("try", Text.assemble((f"kubectl --kubeconfig {kubeconfig} get foos -A", "green"), "\n",
                                          (f"export KUBECONFIG={kubeconfig}", "green"), "\n",
                                          (f"kapi kubeconfig --name {config.name} --merge", "green"),
                                          " (adds it to ~/.kube/config)")))
    elif config.insecure_port and config.authn_allow_localhost:
        rows.append(("try", Text(f"kubectl --server {urls(config)[-1]} api-resources", "green")))
    elif config.secure_port:
        rows.append(("kubectl", Text.assemble((f"kapi kubeconfig --name {config.name} --client-cert --output FILE",
                                               "green"), " (no kubectl token: --kubectl-disabled)")))
    else:
        rows.append(("kubectl", Text("plain HTTP sends no credentials: use HTTPS, or --authn-allow-localhost=true")))
    return rows


def _banner(config: ServerConfig, resources: int, kubeconfig: Optional[Path]) -> Panel:
    """The start-up panel, within 80 columns: labels never wrap; values wrap under themselves (a long path
    folds), so no value, and no number such as the request timeout, is ever cut."""
    grid = Table.grid(padding=(0, 2, 0, 0))
    grid.add_column(no_wrap=True, style="bold")
    grid.add_column(overflow="fold")
    for label, value in _banner_rows(config, resources, kubeconfig):
        grid.add_row(label, value)
    return Panel(grid, title=f"[bold]kapi start[/bold]: [cyan]{config.name}[/cyan]", expand=False)


def _log_banner(config: ServerConfig, resources: int, kubeconfig: Optional[Path]) -> None:
    """With --logging-format=json every line is JSON: the banner is one structured log line instead."""
    fields = {label.replace(" ", "_"): value.plain for label, value in _banner_rows(config, resources, kubeconfig)}
    logging.getLogger("kapi.server").info("Serving", extra={KV_ATTR: {
        "name": config.name, "urls": urls(config), "storage": fields["storage"].replace("\n", " "),
        "resources": resources, "requestTimeout": fields["request_timeout"],
        "kubeconfig": str(kubeconfig) if kubeconfig is not None else ""}})


def _positive_duration(text: str, hint: str) -> float:
    """Seconds in a Go-style duration flag (`30s`, `60m`); a usage error unless positive."""
    try:
        seconds = parse_duration(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint=hint) from None
    if seconds <= 0:
        raise typer.BadParameter(f"{text!r} is not a positive duration", param_hint=hint)
    return seconds


def build_config(
    name: str, backend: str, etcd_servers: str, file_rootpath: Path, bind_address: str, secure_port: int,
    insecure_port: int, resources: list[Path], examples: bool, request_timeout: str, unrestricted_update: bool,
    token_auth_file: Optional[Path], kubectl_disabled: bool, kubectl_ephemeral_token: bool,
    authn_allow_localhost: bool, san: list[str], watch_event_window: int = 10000,
    watch_bookmark_interval: str = "10s", core_resources: bool = True, etcd: EtcdFlags = EtcdFlags(),
    extensions: PluginFlags = PluginFlags(), api: ApiFlags = ApiFlags(),
    service_accounts: ServiceAccountFlags = ServiceAccountFlags(),
    authorization: AuthorizationFlags = AuthorizationFlags(),
    aggregation: AggregationFlags = AggregationFlags(), simulation: SimulateFlags = SimulateFlags(),
    audit: AuditFlags = AuditFlags(),
    log_flags: LoggingFlags = LoggingFlags(),
    metrics: bool = True,
    delete_collection_workers: int = DEFAULT_DELETE_COLLECTION_WORKERS,
) -> ServerConfig:
    """Validate flags and turn them into the one ServerConfig."""
    try:
        st.validate_name(name)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--name") from None
    if backend not in BACKENDS:
        raise typer.BadParameter(f"unknown backend {backend!r}; available here: {', '.join(BACKENDS)}",
                                 param_hint="--backend")
    for hint, port in (("--secure-port", secure_port), ("--insecure-port", insecure_port)):
        if not 0 <= port <= 65535:
            raise typer.BadParameter(f"{port} is not a port (0-65535; 0 = off)", param_hint=hint)
    if not secure_port and not insecure_port:
        raise typer.BadParameter("both --secure-port and --insecure-port are 0: nothing to serve",
                                 param_hint="--secure-port")
    if secure_port and secure_port == insecure_port:
        raise typer.BadParameter(f"--secure-port and --insecure-port are both {secure_port}",
                                 param_hint="--insecure-port")
    timeout = _positive_duration(request_timeout, "--request-timeout")
    if watch_event_window < 1:
        raise typer.BadParameter(f"{watch_event_window} is not a positive number of events",
                                 param_hint="--watch-event-window")
    bookmark_interval = _positive_duration(watch_bookmark_interval, "--watch-bookmark-interval")
    if delete_collection_workers < 1:
        raise typer.BadParameter(f"{delete_collection_workers} is not a positive number of workers",
                                 param_hint="--delete-collection-workers")
    if token_auth_file is not None and not token_auth_file.is_file():
        raise typer.BadParameter(f"{token_auth_file} is not a file", param_hint="--token-auth-file")
    servers = tuple(s for s in etcd_servers.split(",") if s)
    etcd.check(backend, servers)
    return ServerConfig(
        name=name,
        backend=backend,
        etcd_servers=servers,
        etcd_prefix=etcd.prefix,
        etcd_cafile=etcd.resolved(etcd.cafile),
        etcd_certfile=etcd.resolved(etcd.certfile),
        etcd_keyfile=etcd.resolved(etcd.keyfile),
        etcd_wait=etcd.wait,
        file_rootpath=file_rootpath.expanduser().resolve(),
        bind_address=bind_address,
        secure_port=secure_port,
        insecure_port=insecure_port,
        resource_dirs=tuple(p.expanduser().resolve() for p in resources),
        load_examples=examples,
        core_resources=core_resources,
        request_timeout=timeout,
        event_window=watch_event_window,
        bookmark_interval=bookmark_interval,
        unrestricted_update=unrestricted_update,
        delete_collection_workers=delete_collection_workers,
        token_auth_file=token_auth_file.resolve() if token_auth_file else None,
        kubectl_disabled=kubectl_disabled,
        kubectl_ephemeral_token=kubectl_ephemeral_token,
        authn_allow_localhost=authn_allow_localhost,
        extra_sans=tuple(san),
        **extensions.checked(),  # type: ignore[arg-type]
        **api.checked(),  # type: ignore[arg-type]
        **service_accounts.checked(),  # type: ignore[arg-type]
        **authorization.checked(),  # type: ignore[arg-type]
        **aggregation.checked(),  # type: ignore[arg-type]
        **simulation.checked(),  # type: ignore[arg-type]
        **audit.checked(),  # type: ignore[arg-type]
        **log_flags.checked(),  # type: ignore[arg-type]
        metrics=metrics,
    )


def _serving_sans(config: ServerConfig) -> tuple[str, ...]:
    """The extra SANs, plus a specific bind address (clients reach it by that address)."""
    extra = tuple(config.extra_sans)
    if config.bind_address not in ("", "0.0.0.0", "::", "127.0.0.1", "::1", "localhost"):
        extra += (config.bind_address.strip("[]"),)
    return extra


def _fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(1)


# -- foreground ---------------------------------------------------------------------------------------------
def write_start_kubeconfig(config: ServerConfig) -> Optional[Path]:
    """Write `<root>/kubeconfig` (0600) for the kubectl token; with --kubectl-disabled remove any old one."""
    path = config.kubeconfig_path
    if config.kubectl_disabled:
        if path.exists():
            path.unlink()
            console.print(f"removed {path}: kubectl access is disabled")
        return None
    target = Target(config.name, config.file_rootpath, config.bind_address, config.secure_port,
                    config.insecure_port, kubectl_disabled=False)
    try:
        kubeconfig = kubeconfig_for(target, insecure_http=not config.secure_port)
    except KubeconfigError as exc:
        console.print(f"[yellow]warning:[/yellow] no kubeconfig written: {exc}")
        return None
    write_private(path, to_yaml(kubeconfig).encode("utf-8"))
    return path


def _certificates_in_background(config: ServerConfig) -> "Optional[Future[object]]":
    """Create or check the certificates in a thread, so key generation overlaps the server's imports."""
    if not config.secure_port:
        return None
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="kapi-certs")
    future: Future[object] = pool.submit(ensure_certs, config.cert_dir, extra_sans=_serving_sans(config))
    pool.shutdown(wait=False)
    return future


def _exit_on_sigterm(signum: int, _frame: Optional[FrameType]) -> None:
    raise SystemExit(128 + signum)  # runs the `finally` that removes the state file


def serve_foreground(config: ServerConfig, log_level: str, log_file: Optional[Path]) -> None:
    try:  # first: with a log file, everything from here on (notes, banner, records) goes into it
        configure_logging(log_level, config.verbosity, config.logging_format, log_file, config.log_file_max_size,
                          config.log_file_max_backups)
    except (ValueError, OSError) as exc:
        raise _fail(f"logging: {exc}") from None
    try:
        notes = st.check_can_start(config.name, config.bind_address, (config.secure_port, config.insecure_port),
                                   config.file_rootpath, config.backend)
    except st.ConflictError as exc:
        raise _fail(str(exc)) from None
    for note in notes:
        console.print(f"note: {note}")
    # Until uvicorn installs its handlers, SIGTERM must still remove the state file.
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    record = st.new_state(
        name=config.name, bind_address=config.bind_address, secure_port=config.secure_port,
        insecure_port=config.insecure_port, backend=config.backend, file_rootpath=config.file_rootpath,
        log_file=log_file, kubeconfig=None if config.kubectl_disabled else config.kubeconfig_path,
        kubectl_disabled=config.kubectl_disabled)
    try:
        st.claim_state(record)
    except st.ConflictError as exc:
        raise _fail(str(exc)) from None
    except OSError as exc:
        raise _fail(f"cannot write instance state under {st.kapi_home()}: {exc.strerror or exc}") from None
    try:
        try:
            certs = _certificates_in_background(config)
            from kapi.app import create_app  # imported while the keys are generated
            from kapi.serving import run

            if certs is not None:
                certs.result()
            reach_backend(config, console)
            if config.plugins and os.getcwd() not in sys.path:
                sys.path.insert(0, os.getcwd())  # `--plugin mod` finds mod.py here, as uvicorn's --app-dir "."
            app = create_app(config)
            kubeconfig = write_start_kubeconfig(config)
        except CertError as exc:
            raise _fail(f"certificates in {config.cert_dir}: {exc} "
                        f"(`kapi gen-certs --file-rootpath {config.file_rootpath} --force` regenerates them)") from None
        except (ValueError, OSError, BackendUnreachable) as exc:  # CRDError is a ValueError
            raise _fail(str(exc)) from None
        if kubeconfig != config.kubeconfig_path and record.kubeconfig is not None:
            record.kubeconfig = None  # not written (no token): do not point `kapi status` at it
            st.write_state(record)
        if config.logging_format == "json":
            _log_banner(config, len(app.state.api.scheme.definitions), kubeconfig)
        else:
            console.print(_banner(config, len(app.state.api.scheme.definitions), kubeconfig))
        log_startup(config, len(app.state.api.scheme.definitions))
        try:
            run(app, config, log_level)
        except OSError as exc:
            raise _fail(str(exc)) from None
    finally:
        st.remove_state(config.name, os.getpid())


def start(
    name: str = typer.Option("default", help="Instance name (for list, status, stop, logs, kubeconfig)."),
    backend: str = typer.Option("file", help=f"Storage backend: {', '.join(BACKENDS)}."),
    etcd_servers: str = typer.Option("", help="Comma-separated etcd URLs (etcd backend)."),
    etcd_prefix: str = typer.Option(ETCD_PREFIX, help="Key prefix in etcd (kube-apiserver's layout under it)."),
    etcd_cafile: Optional[Path] = typer.Option(None, help="CA bundle to verify etcd's serving certificate."),
    etcd_certfile: Optional[Path] = typer.Option(None, help="Client certificate for etcd (with --etcd-keyfile)."),
    etcd_keyfile: Optional[Path] = typer.Option(None, help="Client key for etcd."),
    etcd_wait: bool = typer.Option(False, "--etcd-wait/--no-etcd-wait",
                                   help="Wait for an unreachable etcd at start-up instead of exiting."),
    file_rootpath: Path = typer.Option(DEFAULT_ROOT, help="Root for data, cert/ and the kubeconfig."),
    bind_address: str = typer.Option("127.0.0.1", help="Address to listen on."),
    secure_port: int = typer.Option(8443, help="HTTPS port (0 = off)."),
    insecure_port: int = typer.Option(6080, help="HTTP port (0 = off)."),
    resources: Optional[List[Path]] = typer.Option(
        None, "--resources", help="A directory of CRD manifests to serve as well (repeatable)."),
    examples: bool = typer.Option(True, "--examples/--no-examples", help="Serve the shipped example resources."),
    core_resources: bool = typer.Option(
        True, "--core-resources/--no-core-resources",
        help="Serve the built-in catalogue (pods, deployments, …; namespaces are always served)."),
    request_timeout: str = typer.Option("60s", help="Longest a non-watch request may take (e.g. 30s, 60m)."),
    token_auth_file: Optional[Path] = typer.Option(None, help="Static tokens CSV: token,user,uid,\"g1,g2\"."),
    unrestricted_update: bool = typer.Option(False, "--unrestricted-update/--no-unrestricted-update",
                                             help="Allow PUT without metadata.resourceVersion."),
    kubectl_disabled: bool = typer.Option(False, "--kubectl-disabled/--no-kubectl-disabled",
                                          help="No kubectl token and no kubeconfig."),
    kubectl_ephemeral_token: bool = typer.Option(False, "--kubectl-ephemeral-token/--no-kubectl-ephemeral-token",
                                                 help="Mint a new kubectl token at every start."),
    authn_allow_localhost: bool = typer.Option(False, "--authn-allow-localhost/--no-authn-allow-localhost",
                                               help="Loopback requests without credentials are an administrator."),
    san: Optional[List[str]] = typer.Option(None, "--san", help="Extra serving-certificate SAN (repeatable)."),
    watch_event_window: int = typer.Option(
        10000, help="Past events kept for watch resumption and paging; older revisions get 410 Gone."),
    watch_bookmark_interval: str = typer.Option("10s", help="How often an idle watch gets a bookmark (e.g. 1s, 10s)."),
    delete_collection_workers: int = typer.Option(
        DEFAULT_DELETE_COLLECTION_WORKERS,
        help="Deletes of one DELETE of a collection in flight at once (kube's flag; its default is 1)."),
    log_level: str = typer.Option(
        "info", help="Python log level of kapi's and uvicorn's loggers: critical, error, warning, info, debug."),
    verbosity: str = typer.Option(
        "0", "-v", "--v", metavar="N", help="klog verbosity as kube's: 2 logs start-up details and requests slower "
                                           "than 1s, 3+ every request (kube's httplog line); 0-1 no request lines."),
    logging_format: str = typer.Option("text", help="Log line format: text (klog's) or json (kube's JSON lines)."),
    log_file_max_size: float = typer.Option(
        LoggingFlags.log_file_max_size, help="With --detach: rotate the log file past this many MB (0 = never)."),
    log_file_max_backups: int = typer.Option(
        LoggingFlags.log_file_max_backups, help="With --detach: rotated log files kept (NAME.log.1 newest)."),
    metrics: bool = typer.Option(True, "--metrics/--no-metrics",
                                 help="Count requests and serve /metrics (off only to measure what counting costs)."),
    detach: bool = typer.Option(False, "--detach/--no-detach",
                                help="Run in the background (log in $KAPI_HOME/logs/NAME.log); return once ready."),
    ready_timeout: float = typer.Option(DEFAULT_READY_TIMEOUT, help="With --detach: seconds to wait for /readyz."),
    plugin: Optional[List[str]] = typer.Option(
        None, "--plugin", help="Python module with `plugin = Plugin(...)`: API groups, admission, routers (repeatable)."),
    admission_plugins: Optional[str] = typer.Option(
        None, help="Admission plugins to run, comma-separated, in order (default: all known, kube's order)."),
    apiexts_prefix: str = typer.Option("/wukong", help="Where plugin routers are mounted (with docs at <prefix>/docs)."),
    api_groups: Optional[str] = typer.Option(
        None, help="Serve only these built-in API groups, comma-separated (`core,apps,batch`; default: all)."),
    service_cluster_ip_range: str = typer.Option("10.0.0.0/24", help="CIDR from which Service ClusterIPs come."),
    service_node_port_range: str = typer.Option("30000-32767", help="Range from which NodePorts come."),
    service_account_issuer: str = typer.Option(
        DEFAULT_SA_ISSUER, help="The `iss` of service-account tokens, and the audience the API accepts them for."),
    service_account_key_file: Optional[Path] = typer.Option(
        None, help="RSA private key (PEM) that signs service-account tokens; created when missing "
                   "(default: <file-rootpath>/cert/sa.key)."),
    authorization_mode: str = typer.Option(
        ",".join(DEFAULT_MODES), help="Authorizers in order, comma-separated: AlwaysAllow, AlwaysDeny, RBAC "
                                      "(system:masters may always do anything)."),
    tls_cert_file: Optional[Path] = typer.Option(
        None, help="Serving certificate (PEM), e.g. from a mounted Secret, instead of <file-rootpath>/cert/server.crt."),
    tls_private_key_file: Optional[Path] = typer.Option(None, help="The serving certificate's key (PEM)."),
    requestheader_client_ca_file: Optional[Path] = typer.Option(
        None, help="CA of front proxies whose X-Remote-* identity headers are believed (request-header authn)."),
    requestheader_allowed_names: str = typer.Option(
        "", help="Front-proxy client certificate CNs allowed, comma-separated (empty: any of that CA)."),
    requestheader_username_headers: str = typer.Option("X-Remote-User", help="Headers that carry the user name."),
    requestheader_group_headers: str = typer.Option("X-Remote-Group", help="Headers that carry the groups."),
    requestheader_extra_headers_prefix: str = typer.Option(
        "X-Remote-Extra-", help="Header prefixes that carry extra user attributes."),
    authentication_kubeconfig: str = typer.Option(
        "", help="Delegate token checks (TokenReview) to the server of this kubeconfig, or `in-cluster`; also reads "
                 "its kube-system/extension-apiserver-authentication for the request-header settings."),
    authorization_kubeconfig: str = typer.Option(
        "", help="Ask the server of this kubeconfig (or `in-cluster`) what local authorizers do not allow "
                 "(SubjectAccessReview)."),
    authentication_token_webhook_cache_ttl: str = typer.Option("10s", help="How long TokenReview answers are cached."),
    authorization_webhook_cache_authorized_ttl: str = typer.Option(
        "10s", help="How long allowing SubjectAccessReview answers are cached."),
    authorization_webhook_cache_unauthorized_ttl: str = typer.Option(
        "10s", help="How long denying SubjectAccessReview answers are cached."),
    authorization_always_allow_paths: str = typer.Option(
        "/healthz,/readyz,/livez", help="Paths anyone authenticated may use without authorization (`/x/*` prefixes)."),
    proxy_client_cert_file: Optional[Path] = typer.Option(
        None, help="Client certificate presented to aggregated servers (default: <file-rootpath>/cert/front-proxy-client.crt)."),
    proxy_client_key_file: Optional[Path] = typer.Option(None, help="Its key."),
    apiservice_check_interval: str = typer.Option("10s", help="How often APIService backends are checked."),
    simulate: bool = typer.Option(False, "--simulate/--no-simulate",
                                  help="Simulate nodes, a scheduler, kubelets and kube-controller-manager: "
                                       "Deployments roll out, Jobs complete, pods get IPs."),
    simulate_nodes: int = typer.Option(DEFAULT_NODES, help="With --simulate: how many nodes."),
    simulate_speed: float = typer.Option(1.0, help="With --simulate: simulated seconds per real second."),
    simulate_manual_clock: bool = typer.Option(
        False, "--simulate-manual-clock/--no-simulate-manual-clock",
        help="With --simulate: the clock moves only on POST /kapi/simulation/clock {\"advance\": \"90s\"}."),
    simulate_node_capacity: str = typer.Option(
        DEFAULT_CAPACITY_TEXT, help="With --simulate: each node's capacity, NAME=QUANTITY comma-separated "
                                    "(unnamed resources keep their default)."),
    audit_policy_file: Optional[Path] = typer.Option(
        None, help="Audit policy (audit.k8s.io/v1 Policy, as kube-apiserver's): which requests are recorded, at "
                   "which level (None, Metadata, Request, RequestResponse). Needs a backend below."),
    audit_log_path: str = typer.Option("", help="Write audit events here as JSON lines ('-' = stdout)."),
    audit_log_maxage: int = typer.Option(0, help="Days to keep rotated audit logs (0 = any age)."),
    audit_log_maxbackup: int = typer.Option(0, help="Rotated audit logs kept (0 = all)."),
    audit_log_maxsize: int = typer.Option(0, help="MB before the audit log is rotated (0 = 100, as kube)."),
    audit_webhook_config_file: Optional[Path] = typer.Option(
        None, help="A kubeconfig naming the server that receives audit events (batched audit.k8s.io/v1 EventLists)."),
    audit_webhook_batch_max_size: int = typer.Option(AUDIT_BATCH_SIZE, help="Most events in one webhook batch."),
    audit_webhook_batch_max_wait: str = typer.Option("30s", help="Longest a webhook batch waits before it is sent."),
    log_file: Optional[Path] = typer.Option(None, hidden=True, help="Where this process's output goes (recorded)."),
) -> None:
    """Start a Kubernetes-style API server (HTTPS with generated certificates, and/or HTTP)."""
    log_flags = LoggingFlags(verbosity, logging_format, log_file_max_size, log_file_max_backups, log_level)
    log_flags.check_rotation_has_a_file(detach or log_file is not None)
    config = build_config(name, backend, etcd_servers, file_rootpath, bind_address, secure_port, insecure_port,
                          resources or [], examples, request_timeout, unrestricted_update, token_auth_file,
                          kubectl_disabled, kubectl_ephemeral_token, authn_allow_localhost, san or [],
                          watch_event_window, watch_bookmark_interval, core_resources,
                          EtcdFlags(etcd_prefix, etcd_cafile, etcd_certfile, etcd_keyfile, etcd_wait),
                          PluginFlags(tuple(plugin or ()), admission_plugins, apiexts_prefix),
                          ApiFlags(api_groups, service_cluster_ip_range, service_node_port_range),
                          ServiceAccountFlags(service_account_issuer, service_account_key_file),
                          AuthorizationFlags(authorization_mode),
                          AggregationFlags(tls_cert_file, tls_private_key_file, requestheader_client_ca_file,
                                           requestheader_allowed_names, requestheader_username_headers,
                                           requestheader_group_headers, requestheader_extra_headers_prefix,
                                           authentication_kubeconfig, authorization_kubeconfig,
                                           authentication_token_webhook_cache_ttl,
                                           authorization_webhook_cache_authorized_ttl,
                                           authorization_webhook_cache_unauthorized_ttl,
                                           authorization_always_allow_paths, proxy_client_cert_file,
                                           proxy_client_key_file, apiservice_check_interval),
                          SimulateFlags(simulate, simulate_nodes, simulate_speed, simulate_manual_clock,
                                        simulate_node_capacity),
                          audit=AuditFlags(audit_policy_file, audit_log_path, audit_log_maxage, audit_log_maxbackup,
                                           audit_log_maxsize, audit_webhook_config_file, audit_webhook_batch_max_size,
                                           audit_webhook_batch_max_wait),
                          log_flags=log_flags, metrics=metrics, delete_collection_workers=delete_collection_workers)
    if detach:
        raise typer.Exit(start_detached(config, child_argv(config, request_timeout, log_level), ready_timeout))
    serve_foreground(config, log_level, log_file)
