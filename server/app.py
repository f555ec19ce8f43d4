"""`create_app(config)`: wire storage, scheme, registry, admission and HTTP into one ASGI app.

Everything is built here from the config; nothing lives in module globals, so
tests can create as many independent servers as they like.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from kapi_certs.layout import CertPaths
from kapi.api import errors
from kapi.api.metrics import ServerMetrics
from kapi.audit.auditor import AuditConfigError, build_auditor
from kapi.auth import kubectl_token
from kapi.auth.delegated import SubjectAccessReviewAuthorizer, check_always_allow_paths
from kapi.auth.factory import Delegation, build_authenticator, request_header_settings, resolve_delegation
from kapi.auth.service_account import ServiceAccountAuthenticator, TokenIssuer
from kapi.auth.union import UnionAuthenticator
from kapi.clusters.admin import AdminApi
from kapi.clusters.clusterset import ROOT, ClusterSet
from kapi.clusters.runtime import (  # noqa: F401 - build_scheme and build_admission are part of this API
    Cluster,
    ConfigError,
    Shared,
    build_admission,
    build_scheme,
    published_authentication,
    service_account_authenticator,
)
from kapi.config import ServerConfig
from kapi.endpoints.filters import status_response
from kapi.endpoints.websocket_watch import serve_websocket
from kapi.plugins.apiexts import prefix_problem
from kapi.plugins.loader import PluginSet, installed_plugin_modules
from kapi.scheme.crd import crd_files, load_crd_manifests
from kapi.storage.factory import cluster_location, create_storage, kept_cluster_names
from kapi.storage.interfaces import Storage

DOCS_URL = "/kapi/docs"
OPENAPI_URL = "/kapi/openapi.json"
_STARLETTE_PATHS = frozenset({DOCS_URL, OPENAPI_URL})
CLUSTER_PATHS = "/clusters/"


def startup_manifests(config: ServerConfig) -> list[dict[str, Any]]:
    """The CRD manifests `kapi start` applies: shipped examples, then `--resources` directories.

    Read and checked before anything is served, so a bad manifest stops the start with its reason.
    """
    return [m for d in config.definition_dirs for path in crd_files(d) for m in load_crd_manifests(path)]


def build_storage(config: ServerConfig, metrics: ServerMetrics | None = None) -> Storage:
    """The configured backend, not yet started (`Storage.start()` connects); etcd requests are timed into
    `metrics`."""
    return create_storage(
        config.backend, config.file_rootpath, event_window=config.event_window, metrics=metrics,
        etcd_servers=config.etcd_servers, etcd_prefix=config.etcd_prefix, etcd_cafile=config.etcd_cafile,
        etcd_certfile=config.etcd_certfile, etcd_keyfile=config.etcd_keyfile,
    )


def build_delegation(config: ServerConfig) -> Delegation:
    """The front proxy to trust and the main server to ask (`--requestheader-*`, `--authentication-kubeconfig`,
    `--authorization-kubeconfig`); a ConfigError when a file is unusable or the main server unreachable."""
    try:
        settings = request_header_settings(
            config.requestheader_client_ca_file, config.requestheader_allowed_names,
            config.requestheader_username_headers, config.requestheader_group_headers,
            config.requestheader_extra_headers_prefix)
        return resolve_delegation(request_header=settings, authentication_kubeconfig=config.authentication_kubeconfig,
                                  authorization_kubeconfig=config.authorization_kubeconfig)
    except OSError as exc:
        raise ConfigError(f"--requestheader-client-ca-file: {exc}") from None
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


def build_authentication(config: ServerConfig, service_accounts: ServiceAccountAuthenticator | None = None,
                         delegation: Delegation = Delegation()) -> UnionAuthenticator:
    """The authenticator chain from the config; loads (or mints) the kubectl token into its 0600 file.

    With kubectl disabled any stored kubectl token is removed. The token itself
    is kept nowhere but that file (`config.kubectl_token_path`).
    """
    token: str | None = None
    if config.kubectl_disabled:
        kubectl_token.discard(config.kubectl_token_path)
    else:
        token = kubectl_token.load_or_mint(config.kubectl_token_path, config.kubectl_ephemeral_token)
    ca_crt = CertPaths(config.cert_dir).ca_crt
    return build_authenticator(
        token_auth_file=config.token_auth_file,
        kubectl_token=token,
        client_ca_file=ca_crt if ca_crt.is_file() else None,
        allow_localhost=config.authn_allow_localhost,
        service_accounts=service_accounts,
        delegation=delegation,
        token_cache_ttl=config.authentication_token_webhook_cache_ttl,
    )


def cluster_storage(config: ServerConfig, name: str, metrics: ServerMetrics | None = None) -> Storage:
    """Logical cluster `name`'s own storage: fresh memory, `<root>/clusters/<name>` or an etcd prefix of its own."""
    root, prefix = cluster_location(config.file_rootpath, config.etcd_prefix, name)
    return create_storage(
        config.backend, root, event_window=config.event_window, metrics=metrics, etcd_servers=config.etcd_servers,
        etcd_prefix=prefix, etcd_cafile=config.etcd_cafile, etcd_certfile=config.etcd_certfile,
        etcd_keyfile=config.etcd_keyfile,
    )


async def kept_clusters(config: ServerConfig) -> list[str]:
    """The logical clusters the backend kept from an earlier run (file and etcd)."""
    return await kept_cluster_names(
        config.backend, config.file_rootpath, etcd_servers=config.etcd_servers, etcd_prefix=config.etcd_prefix,
        etcd_cafile=config.etcd_cafile, etcd_certfile=config.etcd_certfile, etcd_keyfile=config.etcd_keyfile)


def create_app(config: ServerConfig) -> KapiApp:
    issuer = TokenIssuer.load_or_create(config.service_account_key_path, config.service_account_issuer)
    service_accounts = service_account_authenticator(issuer, config.api_audiences, lambda: root.reader)
    delegation = build_delegation(config)
    authenticator = build_authentication(config, service_accounts, delegation)  # before storage opens
    try:
        always_allow = check_always_allow_paths(config.authorization_always_allow_paths)
    except ValueError as exc:
        raise ConfigError(f"--authorization-always-allow-paths: {exc}") from None
    if prefix_problem(config.apiexts_prefix):
        raise ConfigError(f"--apiexts-prefix: {prefix_problem(config.apiexts_prefix)}")
    delegated = None if delegation.authorization is None else SubjectAccessReviewAuthorizer(
        delegation.authorization, config.authorization_webhook_cache_authorized_ttl,
        config.authorization_webhook_cache_unauthorized_ttl)
    try:
        auditor = build_auditor(config)  # the policy read and the log file created before anything is served
    except AuditConfigError as exc:
        raise ConfigError(str(exc)) from None
    shared = Shared(
        config=config, issuer=issuer, authenticator=authenticator, service_accounts=service_accounts,
        delegation=delegation, manifests=startup_manifests(config),
        plugins=PluginSet(config.plugin_modules + installed_plugin_modules()),
        always_allow=tuple(always_allow), delegated=delegated,
        authentication_data=published_authentication(config, delegation), auditor=auditor)
    clusters = ClusterSet(shared, lambda name: cluster_storage(config, name, shared.metrics))
    root = clusters.root = Cluster(ROOT, shared, build_storage(config, shared.metrics), root=True,
                                   mount=AdminApi(clusters))
    shared.metrics.object_counts = clusters.object_counts  # apiserver_storage_objects, read when scraped

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        if auditor is not None:
            await auditor.start()
        try:
            await root.start()
            try:
                await clusters.reopen(await kept_clusters(config))
                yield
            finally:
                await clusters.close()
                await root.close()
        finally:
            if auditor is not None:  # after the clusters: the last watches' ResponseComplete is written too
                await auditor.close()

    docs = LazyDocs()
    app = Starlette(routes=[Route(DOCS_URL, docs), Route(OPENAPI_URL, docs)], lifespan=lifespan)
    app.state.api = root.ctx
    app.state.clusters = clusters
    app.state.config = config
    app.state.trusted_client_ca_pem = delegation.trusted_client_ca_pem  # the TLS layer accepts these too
    return KapiApp(app, clusters)


class KapiApp:
    """The ASGI app: API requests go straight to a cluster's handler chain (WebSocket watches too), the rest
    through Starlette.

    `/clusters/<name>/<path>` is `<path>` of logical cluster `<name>`; every
    other path is the root cluster's. The chain already turns every error
    into a Status, so Starlette's routing and exception middleware would
    only add cost (about a tenth of a GET); lifespan events and the docs
    pages still go through Starlette.
    """

    def __init__(self, starlette: Starlette, clusters: ClusterSet) -> None:
        self.starlette, self.state, self.router = starlette, starlette.state, starlette.router
        self._clusters = clusters
        self._handler = clusters.root.handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket") or scope["path"] in _STARLETTE_PATHS:
            await self.starlette(scope, receive, send)
            return
        handler = self._handler
        if scope["path"].startswith(CLUSTER_PATHS):
            scope, handler = self._logical(scope)
        if kind == "websocket":
            await serve_websocket(scope, receive, send, handler)
        else:
            response = await handler(Request(scope, receive, send))
            await response(scope, receive, send)

    def _logical(self, scope: Any) -> tuple[Any, Callable[[Request], Awaitable[Response]]]:
        """The scope as cluster `<name>` sees it (its path without `/clusters/<name>`) and that cluster's
        handler; an unknown cluster's requests get a 404 Status."""
        name, _, rest = scope["path"][len(CLUSTER_PATHS):].partition("/")
        cluster = self._clusters.get(name)
        if cluster is None:
            return scope, _no_such_cluster(name)
        prefix = f"{CLUSTER_PATHS}{name}"
        rest = "/" + rest
        return {**scope, "path": rest, "raw_path": rest.encode(), "root_path": scope.get("root_path", "") + prefix}, \
            cluster.handler


def _no_such_cluster(name: str) -> Callable[[Request], Awaitable[Response]]:
    async def answer(_request: Request) -> Response:
        return status_response(errors.NotFound(f'clusters "{name}" not found',
                                               details=errors.QualifiedKind(name=name, kind="clusters")))
    return answer


class LazyDocs:
    """FastAPI's documentation pages for kapi's own routes, built on first request.

    The Kubernetes paths are plain Starlette endpoints (FastAPI's routing
    would halve their throughput); FastAPI serves the interactive docs and
    friendly routers. Importing it costs about 120 ms, a quarter of kapi's
    start-up, so it is imported when someone first opens the docs.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            from fastapi import FastAPI

            self._app = FastAPI(title="kapi", version="0.1.0", docs_url=DOCS_URL, redoc_url=None,
                                openapi_url=OPENAPI_URL)
        await self._app(scope, receive, send)
