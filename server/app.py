"""`create_app(config)`: wire storage, scheme, registry, admission and HTTP into one ASGI app.

Everything is built here from the config; nothing lives in module globals, so
tests can create as many independent servers as they like.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from certs.layout import FRONT_PROXY_CLIENT_CN, CertPaths
from server.admission.chain import AdmissionChain
from server.admission.interfaces import ObjectReader
from server.admission.jenkins_service_limit import JenkinsServiceLimit
from server.admission.namespace_lifecycle import NamespaceGetter, NamespaceLifecycle
from server.admission.webhook import MutatingAdmissionWebhook, ValidatingAdmissionWebhook
from server.admission.webhook_conditions import Authorize
from server.api import errors
from server.auth import kubectl_token
from server.auth.delegated import (
    SubjectAccessReviewAuthorizer,
    authentication_configmap_data,
    check_always_allow_paths,
)
from server.auth.request_header import RequestHeaderSettings
from server.auth.factory import (
    Delegation,
    build_authenticator,
    build_authorizer,
    request_header_settings,
    resolve_delegation,
)
from server.auth.rbac import GROUP as RBAC_GROUP, RbacAuthorizer, RbacIndex
from server.auth.service_account import ServiceAccountAuthenticator, TokenIssuer
from server.auth.union import UnionAuthenticator
from server.config import ServerConfig
from server.controllers.apiservices import APIServiceController
from server.controllers.bootstrap import apply_crd_manifests, ensure_initial_namespaces, publish_authentication_configmap
from server.controllers.crd import CRDController
from server.controllers.lifecycle import LifecycleController
from server.controllers.namespace_defaults import NamespaceDefaults, kubernetes_service
from server.controllers.rbac_bootstrap import ClusterRoleAggregator, RbacBootstrap
from server.controllers.rbac_index import RbacIndexFeed
from server.controllers.simulation.runtime import SimulationSettings
from server.controllers.simulation.simulator import Simulation
from server.endpoints.context import ApiContext
from server.endpoints.pod_actions import POD_ACTIONS
from server.endpoints.router import make_api_handler
from server.endpoints.websocket_watch import serve_websocket
from server.endpoints.token_request import register_token_action
from server.plugins.apiexts import ApiextsApp, prefix_problem
from server.plugins.api import AdmissionFactory
from server.plugins.loader import PluginSet, installed_plugin_modules
from server.plugins.typed import TypedConverter, TypedStrategy
from server.registry.aggregated import AggregatedApis
from server.registry.rbac_store import RbacStore
from server.registry.reader import StoreReader
from server.registry.service_alloc import ServiceRanges
from server.registry.service_store import ServiceStore
from server.registry.store import Store, StoreOptions
from server.registry.strategies import strategy_for
from server.scheme.builtin import NAMESPACES
from server.scheme.builtin_admission import ADMISSION_REGISTRATION
from server.scheme.builtin_apiregistration import API_SERVICES
from server.scheme import catalogue
from server.scheme.builtin_auth import AUTH_REVIEWS
from server.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from server.scheme.crd import crd_files, definition_from_crd, load_crd_manifests
from server.scheme.definitions import ResourceDef
from server.scheme.registry import Scheme
from server.storage.factory import create_storage
from server.storage.interfaces import Storage

DOCS_URL = "/kapi/docs"
OPENAPI_URL = "/kapi/openapi.json"
_STARLETTE_PATHS = frozenset({DOCS_URL, OPENAPI_URL})


def startup_manifests(config: ServerConfig) -> list[dict[str, Any]]:
    """The CRD manifests `kapi start` applies: shipped examples, then `--resources` directories.

    Read and checked before anything is served, so a bad manifest stops the start with its reason.
    """
    return [m for d in config.definition_dirs for path in crd_files(d) for m in load_crd_manifests(path)]


def build_scheme(manifests: list[dict[str, Any]], core_resources: bool = True,
                 api_groups: tuple[str, ...] | None = None) -> Scheme:
    """Built-in types plus the start-up CRDs (the CRD controller keeps it current afterwards).

    `api_groups` narrows the built-in catalogue to those groups ("" is core); namespaces stay.
    `core_resources=False` leaves the whole catalogue out but namespaces.
    """
    groups = frozenset(api_groups) if api_groups is not None else None
    builtins = [d for d in catalogue.definitions(groups) if core_resources and d is not NAMESPACES]
    scheme = Scheme([NAMESPACES, *builtins, CUSTOM_RESOURCE_DEFINITIONS, *AUTH_REVIEWS, *ADMISSION_REGISTRATION,
                     API_SERVICES])
    for manifest in manifests:
        scheme.replace(definition_from_crd(manifest))
    return scheme


def build_storage(config: ServerConfig) -> Storage:
    """The configured backend, not yet started (`Storage.start()` connects)."""
    return create_storage(
        config.backend, config.file_rootpath, event_window=config.event_window,
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


def published_authentication(config: ServerConfig, delegation: Delegation) -> dict[str, str]:
    """What this server tells extension servers in kube-system/extension-apiserver-authentication: its client
    CA, and the front proxy they should believe (the configured one, else this server's own front proxy)."""
    paths = config.cert_paths
    client_ca = paths.ca_crt.read_text() if paths.ca_crt.is_file() else ""
    settings = delegation.request_header
    if settings is None and paths.front_proxy_ca_crt.is_file() and config.proxy_client_cert_file is None:
        settings = RequestHeaderSettings(paths.front_proxy_ca_crt.read_text(), allowed_names=(FRONT_PROXY_CLIENT_CN,))
    return authentication_configmap_data(client_ca, settings)


class ConfigError(ValueError):
    """A setting the server cannot start with (the CLI prints it and exits 1)."""


def build_admission(names: tuple[str, ...] | None, reader: ObjectReader, get_namespace: NamespaceGetter,
                    extra: dict[str, AdmissionFactory] | None = None,
                    authorize: Authorize | None = None) -> AdmissionChain:
    """The admission chain: the named plugins in that order, or all of them in kube's order.

    Plugin modules' own plugins (`extra`) run after the built-in ones and before the webhooks,
    as kube runs its compiled-in plugins before MutatingAdmissionWebhook.
    """
    known: dict[str, AdmissionFactory] = {
        NamespaceLifecycle.name: lambda _reader: NamespaceLifecycle(get_namespace),
        JenkinsServiceLimit.name: JenkinsServiceLimit,
        **(extra or {}),
        MutatingAdmissionWebhook.name: lambda reader: MutatingAdmissionWebhook(reader, authorize),
        ValidatingAdmissionWebhook.name: lambda reader: ValidatingAdmissionWebhook(reader, authorize),
    }
    chosen = list(known) if names is None else list(names)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ConfigError(f"unknown admission plugin(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return AdmissionChain([known[name](reader) for name in chosen])


def create_app(config: ServerConfig) -> KapiApp:
    issuer = TokenIssuer.load_or_create(config.service_account_key_path, config.service_account_issuer)
    service_accounts = ServiceAccountAuthenticator(  # reads through `reader`, made below
        issuer, lambda ns, name: reader.get("", "serviceaccounts", ns, name), lambda *ref: reader.get(*ref),
        config.api_audiences)
    delegation = build_delegation(config)
    authenticator = build_authentication(config, service_accounts, delegation)  # before storage opens
    manifests = startup_manifests(config)
    scheme = build_scheme(manifests, config.core_resources, config.api_groups)
    plugins = PluginSet(config.plugin_modules + installed_plugin_modules())
    plugins.add_to(scheme)
    storage = build_storage(config)
    stores: dict[tuple[str, str], Store] = {}

    async def get_namespace(name: str) -> dict[str, Any] | None:
        known = lifecycle.namespace(name)  # the controller's watch-fed view, as kube's informer
        if known is not None:
            return known
        try:
            return await stores[("", "namespaces")].get("", name, "v1")
        except errors.NotFound:
            return None

    reader = StoreReader(stores, lambda group, resource: lifecycle.collection(group, resource))
    rbac_index = RbacIndex()
    try:
        always_allow = check_always_allow_paths(config.authorization_always_allow_paths)
    except ValueError as exc:
        raise ConfigError(f"--authorization-always-allow-paths: {exc}") from None
    delegated = None if delegation.authorization is None else SubjectAccessReviewAuthorizer(
        delegation.authorization, config.authorization_webhook_cache_authorized_ttl,
        config.authorization_webhook_cache_unauthorized_ttl)
    try:
        authorizer = build_authorizer(config.authorization_modes, RbacAuthorizer(rbac_index),
                                      always_allow_paths=always_allow, delegated=delegated)
    except ValueError as exc:
        raise ConfigError(f"--authorization-mode: {exc}") from None
    admission = build_admission(config.admission_plugins, reader, get_namespace, plugins.admission,
                                authorizer.authorize)
    options = StoreOptions(
        unrestricted_update=config.unrestricted_update,
        continue_key=secrets.token_bytes(32),  # continue tokens are valid for this process only
        bookmark_interval=config.bookmark_interval,
    )

    service_ranges = ServiceRanges(config.service_cluster_ip_range, config.service_node_port_range)

    def make_store(definition: ResourceDef) -> Store:
        key = (definition.group, definition.plural)
        typed = isinstance(definition.converter, TypedConverter)
        strategy = TypedStrategy(definition) if typed else strategy_for(definition)
        if key == ("", "services") and definition.builtin:
            return ServiceStore(strategy, storage, admission, options, ranges=service_ranges)
        if definition.group == RBAC_GROUP and definition.builtin:
            return RbacStore(strategy, storage, admission, options, index=rbac_index, authorizer=authorizer)
        return Store(strategy, plugins.storages.get(key, storage), admission, options)

    for definition in scheme.definitions:
        if not definition.virtual:  # virtual ones are answered by a custom handler, nothing to store
            stores[(definition.group, definition.plural)] = make_store(definition)
    crd_key = (CUSTOM_RESOURCE_DEFINITIONS.group, CUSTOM_RESOURCE_DEFINITIONS.plural)
    crd_controller = CRDController(scheme, stores, stores[crd_key], make_store)
    rbac_feed = RbacIndexFeed(stores, storage, rbac_index)
    rbac_bootstrap, aggregator = RbacBootstrap(stores), ClusterRoleAggregator(stores, storage)
    lifecycle = LifecycleController(scheme, stores, storage, kept=[(d.group, d.plural) for d in ADMISSION_REGISTRATION])

    ca_file = config.cert_paths.ca_crt
    namespace_defaults = NamespaceDefaults(
        stores, storage, root_ca=ca_file.read_text() if ca_file.is_file() else "",
        kubernetes_service=kubernetes_service(service_ranges.kubernetes_ip, config.secure_port or 6443))
    ctx = ApiContext(
        scheme=scheme,
        stores=stores,
        request_timeout=config.request_timeout,
        max_body_bytes=config.max_body_bytes,
        server_address=config.server_address,
        storage_health=storage.health,
    )
    ctx.aggregated = AggregatedApis(config.proxy_client_pair, config.request_timeout)
    apiservices = APIServiceController(stores, storage, ctx.aggregated, scheme,
                                       config.apiservice_check_interval)
    authentication_data = published_authentication(config, delegation)
    simulation = Simulation(stores, storage, SimulationSettings(
        config.simulate_nodes, config.simulate_speed, config.simulate_manual_clock,
        config.simulate_node_capacity)) if config.simulate else None
    ctx.simulation = simulation
    ctx.actions.update(POD_ACTIONS)
    ctx.token_issuer, ctx.api_audiences = issuer, config.api_audiences
    register_token_action(ctx.actions, issuer, config.api_audiences)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await storage.start()
        for own in plugins.storages.values():
            await own.start()
        await ensure_initial_namespaces(stores[("", "namespaces")])
        await apply_crd_manifests(stores[crd_key], manifests)
        await crd_controller.sync()
        defaults_from = await namespace_defaults.sync()
        await rbac_bootstrap.ensure()
        aggregate_from = await aggregator.sync()  # view, edit and admin hold their rules before serving
        rbac_from = await rbac_feed.sync()
        if ("", "configmaps") in stores and authentication_data:
            await publish_authentication_configmap(stores[("", "configmaps")], authentication_data)
        apiservices_from = await storage.current_revision()
        tasks = [asyncio.create_task(apiservices.run(apiservices_from)), asyncio.create_task(crd_controller.run()),
                 asyncio.create_task(lifecycle.run()), asyncio.create_task(namespace_defaults.run(defaults_from)),
                 asyncio.create_task(rbac_feed.run(rbac_from)), asyncio.create_task(aggregator.run(aggregate_from))]
        if simulation is not None:
            tasks += await simulation.start()
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            for own in plugins.storages.values():
                await own.close()
            await storage.close()

    if prefix_problem(config.apiexts_prefix):
        raise ConfigError(f"--apiexts-prefix: {prefix_problem(config.apiexts_prefix)}")
    apiexts = ApiextsApp(config.apiexts_prefix, plugins.routers, stores)
    handler = make_api_handler(ctx, authenticator, authorizer, apiexts if apiexts else None)
    docs = LazyDocs()
    app = Starlette(routes=[Route(DOCS_URL, docs), Route(OPENAPI_URL, docs)], lifespan=lifespan)
    app.state.api = ctx
    app.state.config = config
    app.state.trusted_client_ca_pem = delegation.trusted_client_ca_pem  # the TLS layer accepts these too
    return KapiApp(app, handler)


class KapiApp:
    """The ASGI app: API requests go straight to the handler chain (WebSocket watches too), the rest through
    Starlette.

    The chain already turns every error into a Status, so Starlette's
    routing and exception middleware would only add cost (about a tenth of
    a GET); lifespan events and the docs pages still go through Starlette.
    """

    def __init__(self, starlette: Starlette, handler: Callable[[Request], Awaitable[Response]]) -> None:
        self.starlette, self.state, self.router = starlette, starlette.state, starlette.router
        self._handler = handler

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] not in _STARLETTE_PATHS:
            response = await self._handler(Request(scope, receive, send))
            await response(scope, receive, send)
        elif scope["type"] == "websocket":
            await serve_websocket(scope, receive, send, self._handler)
        else:
            await self.starlette(scope, receive, send)


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
