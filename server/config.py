"""`ServerConfig`: every server setting's one home, frozen once the server starts."""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from kapi_certs.layout import CertPaths

DEFAULT_MAX_BODY_BYTES = 3 * 1024 * 1024
# Shipped example plugins, loaded with the example CRDs: hello.zeng.dev v1/v2 and the pizza router.
EXAMPLE_PLUGINS: tuple[str, ...] = ("kapi_configs.examples.hello_zeng_dev", "kapi_configs.examples.wukong_pizzas")


def shipped_resources_dir() -> Path:
    """The example CRD manifests shipped in the `configs` package."""
    return Path(str(resources.files("kapi_configs") / "resources"))


DEFAULT_DELETE_COLLECTION_WORKERS = 64  # ServerConfig.delete_collection_workers (kube's default: 1)

@dataclass(frozen=True)
class ServerConfig:
    """Everything `kapi start` can set. Paths under `file_rootpath` are derived, never configured twice."""

    name: str = "default"
    backend: str = "file"
    # The etcd backend (issue 6): endpoints, key prefix (kube-apiserver's --etcd-prefix),
    # TLS material, and whether start-up waits for an unreachable etcd instead of failing.
    etcd_servers: tuple[str, ...] = ()
    etcd_prefix: str = "/registry"
    etcd_cafile: Path | None = None
    etcd_certfile: Path | None = None
    etcd_keyfile: Path | None = None
    etcd_wait: bool = False
    file_rootpath: Path = field(default_factory=lambda: Path("/tmp/kapi"))
    bind_address: str = "127.0.0.1"
    insecure_port: int = 6080  # HTTP; 0 = off
    secure_port: int = 0  # HTTPS; 0 = off
    resource_dirs: tuple[Path, ...] = ()
    load_examples: bool = True
    # The built-in catalogue (Kubernetes 1.32's stable kinds): False serves namespaces only;
    # `api_groups` narrows it to those groups ("" for core), None serves every group.
    core_resources: bool = True
    api_groups: tuple[str, ...] | None = None
    # kube-apiserver's --service-cluster-ip-range and --service-node-port-range.
    service_cluster_ip_range: str = "10.0.0.0/24"
    service_node_port_range: str = "30000-32767"
    request_timeout: float = 60.0
    unrestricted_update: bool = False
    # kube-apiserver's --delete-collection-workers (its default is 1): deletes of one DELETE of a collection in
    # flight at once. kapi's are coroutines of one event loop, so many cost little, and let a file backend's
    # group commit take them together and an etcd backend overlap their round trips.
    delete_collection_workers: int = DEFAULT_DELETE_COLLECTION_WORKERS
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    # Watch: how many past events are kept for watch resumption and consistent paging
    # (older revisions answer 410 Gone), and how often an idle watch gets a bookmark.
    event_window: int = 10000
    bookmark_interval: float = 10.0
    # Authentication (issue 3): a static token CSV, kapi's own kubectl token, loopback trust.
    token_auth_file: Path | None = None
    kubectl_disabled: bool = False
    kubectl_ephemeral_token: bool = False
    authn_allow_localhost: bool = False
    # Authorization (issue 17): kube-apiserver's --authorization-mode, asked in order after
    # system:masters (AlwaysAllow, AlwaysDeny, RBAC).
    authorization_modes: tuple[str, ...] = ("RBAC",)
    # Service-account tokens: kube-apiserver's --service-account-issuer (also the API audience)
    # and the RSA key that signs them (None: <file_rootpath>/cert/sa.key, created when missing).
    service_account_issuer: str = "https://kubernetes.default.svc.cluster.local"
    service_account_key_file: Path | None = None
    # Issue 8: Python modules that define API groups, admission plugins and routers (`--plugin`),
    # the admission plugins to run in their order (None: every known one, kube's order), and
    # where plugin routers are mounted.
    plugins: tuple[str, ...] = ()
    admission_plugins: tuple[str, ...] | None = None
    apiexts_prefix: str = "/wukong"
    # Extra subject alternative names for the serving certificate.
    extra_sans: tuple[str, ...] = ()
    # A serving certificate and key from files (a mounted Secret) instead of <root>/cert/server.*.
    tls_cert_file: Path | None = None
    tls_private_key_file: Path | None = None
    # Aggregation (issue 19). Request-header authentication: X-Remote-* identity headers believed
    # only from a client certificate of this CA (with one of these CNs, when any are listed).
    requestheader_client_ca_file: Path | None = None
    requestheader_allowed_names: tuple[str, ...] = ()
    requestheader_username_headers: tuple[str, ...] = ("X-Remote-User",)
    requestheader_group_headers: tuple[str, ...] = ("X-Remote-Group",)
    requestheader_extra_headers_prefix: tuple[str, ...] = ("X-Remote-Extra-",)
    # Delegation to a main server: a kubeconfig path, or "in-cluster" (the Pod's service account);
    # "" = none. Answers are cached for kube's delegating defaults (10 s each).
    authentication_kubeconfig: str = ""
    authorization_kubeconfig: str = ""
    authentication_token_webhook_cache_ttl: float = 10.0
    authorization_webhook_cache_authorized_ttl: float = 10.0
    authorization_webhook_cache_unauthorized_ttl: float = 10.0
    authorization_always_allow_paths: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    # As the aggregator: the client certificate presented to the servers APIServices name
    # (None: <root>/cert/front-proxy-client.*), and how often their availability is checked.
    proxy_client_cert_file: Path | None = None
    proxy_client_key_file: Path | None = None
    apiservice_check_interval: float = 10.0
    # Issue 20: simulated nodes, kubelets and controllers (off: kube-apiserver alone). The clock runs
    # `simulate_speed` times real time, or, with `simulate_manual_clock`, only when a test advances it.
    simulate: bool = False
    simulate_nodes: int = 3
    simulate_speed: float = 1.0
    simulate_manual_clock: bool = False
    simulate_node_capacity: tuple[tuple[str, str], ...] = (("cpu", "32"), ("memory", "256Gi"), ("pods", "110"))
    # Issue 23, logging as kube's: klog's -v (2: start-up details and requests slower than 1 s, 3+: every
    # request, as kube's httplog), text or JSON lines (--logging-format), and for a server writing its own
    # log file (`kapi start --detach`) rotation past `log_file_max_size` MB keeping `log_file_max_backups`
    # older files (0 MB: never rotated).
    verbosity: int = 0
    logging_format: str = "text"
    log_file_max_size: float = 100.0
    log_file_max_backups: int = 5
    # Count requests and serve /metrics (kube-apiserver always does); off only to measure what counting costs.
    metrics: bool = True
    # Issue 23, audit as kube's (kube-apiserver's --audit-* flags): nothing is recorded without a policy
    # and a backend. The log ("-" = stdout) rotates past `audit_log_maxsize` MB (0: lumberjack's 100),
    # keeping `audit_log_maxbackup` files (0: all) no older than `audit_log_maxage` days (0: any age);
    # the webhook (a kubeconfig) gets EventLists of up to `batch_max_size` events, `batch_max_wait` s apart.
    audit_policy_file: Path | None = None
    audit_log_path: str = ""
    audit_log_maxage: int = 0
    audit_log_maxbackup: int = 0
    audit_log_maxsize: int = 0
    audit_webhook_config_file: Path | None = None
    audit_webhook_batch_max_size: int = 400
    audit_webhook_batch_max_wait: float = 30.0

    @property
    def definition_dirs(self) -> tuple[Path, ...]:
        """Where CRD manifests are read from at start-up, shipped examples first."""
        return ((shipped_resources_dir(),) if self.load_examples else ()) + self.resource_dirs

    @property
    def plugin_modules(self) -> tuple[str, ...]:
        """Plugin modules to load, shipped examples first, then `--plugin` ones in order."""
        return (EXAMPLE_PLUGINS if self.load_examples else ()) + self.plugins

    @property
    def server_address(self) -> str:
        port = self.secure_port or self.insecure_port
        return f"{self.bind_address}:{port}"

    @property
    def cert_dir(self) -> Path:
        return self.file_rootpath / "cert"

    @property
    def cert_paths(self) -> CertPaths:
        return CertPaths(self.cert_dir)

    @property
    def serving_cert_pair(self) -> tuple[Path, Path]:
        """The serving certificate and key: `--tls-cert-file`/`--tls-private-key-file`, else generated."""
        if self.tls_cert_file is not None and self.tls_private_key_file is not None:
            return self.tls_cert_file, self.tls_private_key_file
        return self.cert_paths.server_crt, self.cert_paths.server_key

    @property
    def proxy_client_pair(self) -> tuple[Path, Path]:
        """The aggregator's client certificate and key towards aggregated servers."""
        if self.proxy_client_cert_file is not None and self.proxy_client_key_file is not None:
            return self.proxy_client_cert_file, self.proxy_client_key_file
        return self.cert_paths.front_proxy_client_crt, self.cert_paths.front_proxy_client_key

    @property
    def kubectl_token_path(self) -> Path:
        return self.file_rootpath / "kubectl.token"

    @property
    def service_account_key_path(self) -> Path:
        return self.service_account_key_file or self.cert_dir / "sa.key"

    @property
    def api_audiences(self) -> tuple[str, ...]:
        """What the API accepts tokens for: kube's --api-audiences default, the issuer."""
        return (self.service_account_issuer,)

    @property
    def kubeconfig_path(self) -> Path:
        return self.file_rootpath / "kubeconfig"

    @property
    def data_dir(self) -> Path:
        """Where the file backend keeps objects (its `registry/` tree)."""
        return self.file_rootpath
