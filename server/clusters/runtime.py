"""One cluster's whole stack over one storage: scheme, stores, admission, controllers and the handler chain.

A kapi server holds one root cluster and any number of logical clusters
(`/clusters/<name>/…`); each is a `Cluster` built here from what the server's
clusters share (`Shared`: settings, the service-account issuer, the
authenticators, plugins). Nothing here is global, so two clusters never see
each other's objects, CRDs, RBAC or revisions.
"""
from __future__ import annotations

import asyncio
import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any, Callable

from kapi_certs.layout import FRONT_PROXY_CLIENT_CN
from kapi.admission.chain import AdmissionChain
from kapi.admission.interfaces import ObjectReader
from kapi.admission.jenkins_service_limit import JenkinsServiceLimit
from kapi.admission.namespace_lifecycle import NamespaceGetter, NamespaceLifecycle
from kapi.admission.webhook import MutatingAdmissionWebhook, ValidatingAdmissionWebhook
from kapi.admission.webhook_conditions import Authorize
from kapi.api import errors
from kapi.api.faults import Faults
from kapi.api.metrics import ServerMetrics
from kapi.audit.auditor import Auditor
from kapi.auth.delegated import SubjectAccessReviewAuthorizer, authentication_configmap_data
from kapi.auth.factory import Delegation, build_authorizer
from kapi.auth.interfaces import Authenticator
from kapi.auth.rbac import GROUP as RBAC_GROUP, RbacAuthorizer, RbacIndex
from kapi.auth.request_header import RequestHeaderSettings
from kapi.auth.service_account import ServiceAccountAuthenticator, TokenIssuer
from kapi.auth.union import UnionAuthenticator
from kapi.config import ServerConfig
from kapi.controllers.apiservices import APIServiceController
from kapi.controllers.bootstrap import apply_crd_manifests, ensure_initial_namespaces, publish_authentication_configmap
from kapi.controllers.crd import CRDController
from kapi.controllers.lifecycle import LifecycleController
from kapi.controllers.namespace_defaults import NamespaceDefaults, kubernetes_service
from kapi.controllers.rbac_bootstrap import ClusterRoleAggregator, RbacBootstrap
from kapi.controllers.rbac_index import RbacIndexFeed
from kapi.controllers.simulation.runtime import SimulationSettings
from kapi.controllers.simulation.simulator import Simulation
from kapi.endpoints.context import ApiContext
from kapi.endpoints.filters import Handler
from kapi.endpoints.pod_actions import POD_ACTIONS
from kapi.endpoints.router import Mount, make_api_handler
from kapi.endpoints.token_request import register_token_action
from kapi.plugins.api import AdmissionFactory
from kapi.plugins.apiexts import ApiextsApp
from kapi.plugins.loader import PluginSet
from kapi.plugins.typed import TypedConverter, TypedStrategy
from kapi.registry.aggregated import AggregatedApis
from kapi.registry.rbac_store import RbacStore
from kapi.registry.reader import StoreReader
from kapi.registry.service_alloc import ServiceRanges
from kapi.registry.service_store import ServiceStore
from kapi.registry.store import Store, StoreOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme import catalogue
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.builtin_admission import ADMISSION_REGISTRATION
from kapi.scheme.builtin_apiregistration import API_SERVICES
from kapi.scheme.builtin_auth import AUTH_REVIEWS
from kapi.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from kapi.scheme.crd import definition_from_crd
from kapi.scheme.definitions import ResourceDef
from kapi.scheme.registry import Scheme
from kapi.storage.interfaces import Snapshot, Storage
from kapi.storage.keys import ROOT

CRD_KEY = (CUSTOM_RESOURCE_DEFINITIONS.group, CUSTOM_RESOURCE_DEFINITIONS.plural)


class ConfigError(ValueError):
    """A setting the server cannot start with (the CLI prints it and exits 1)."""


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


def build_admission(names: tuple[str, ...] | None, reader: ObjectReader, get_namespace: NamespaceGetter,
                    extra: dict[str, AdmissionFactory] | None = None,
                    authorize: Authorize | None = None, faults: Faults | None = None,
                    metrics: ServerMetrics | None = None) -> AdmissionChain:
    """The admission chain: the named plugins in that order, or all of them in kube's order.

    Plugin modules' own plugins (`extra`) run after the built-in ones and before the webhooks,
    as kube runs its compiled-in plugins before MutatingAdmissionWebhook.
    """
    known: dict[str, AdmissionFactory] = {
        NamespaceLifecycle.name: lambda _reader: NamespaceLifecycle(get_namespace),
        JenkinsServiceLimit.name: JenkinsServiceLimit,
        **(extra or {}),
        MutatingAdmissionWebhook.name: lambda reader: MutatingAdmissionWebhook(reader, authorize, faults, metrics),
        ValidatingAdmissionWebhook.name: lambda reader: ValidatingAdmissionWebhook(reader, authorize, faults, metrics),
    }
    chosen = list(known) if names is None else list(names)
    unknown = [n for n in chosen if n not in known]
    if unknown:
        raise ConfigError(f"unknown admission plugin(s) {', '.join(unknown)}; known: {', '.join(known)}")
    return AdmissionChain([known[name](reader) for name in chosen])


def published_authentication(config: ServerConfig, delegation: Delegation) -> dict[str, str]:
    """What this server tells extension servers in kube-system/extension-apiserver-authentication: its client
    CA, and the front proxy they should believe (the configured one, else this server's own front proxy)."""
    paths = config.cert_paths
    client_ca = paths.ca_crt.read_text() if paths.ca_crt.is_file() else ""
    settings = delegation.request_header
    if settings is None and paths.front_proxy_ca_crt.is_file() and config.proxy_client_cert_file is None:
        settings = RequestHeaderSettings(paths.front_proxy_ca_crt.read_text(), allowed_names=(FRONT_PROXY_CLIENT_CN,))
    return authentication_configmap_data(client_ca, settings)


@dataclass
class Shared:
    """What every cluster of one server shares: the settings, who may call, and what plugins add.

    `authenticator` is the root cluster's chain; a logical cluster swaps its
    `service_accounts` part for one that reads that cluster's ServiceAccounts.
    """

    config: ServerConfig
    issuer: TokenIssuer
    authenticator: UnionAuthenticator
    service_accounts: ServiceAccountAuthenticator
    delegation: Delegation
    manifests: list[dict[str, Any]]
    plugins: PluginSet
    always_allow: tuple[str, ...] = ()
    delegated: SubjectAccessReviewAuthorizer | None = None
    authentication_data: dict[str, str] = field(default_factory=dict)
    metrics: ServerMetrics = field(default_factory=ServerMetrics)  # one registry for every cluster of the server
    auditor: Auditor | None = None  # one audit log (or webhook) for every cluster of the server


def service_account_authenticator(issuer: TokenIssuer, audiences: tuple[str, ...],
                                  reader: Callable[[], StoreReader], cluster: str = "") -> ServiceAccountAuthenticator:
    """Tokens of `issuer` for logical cluster `cluster` ("" the root) whose ServiceAccount (and bound object)
    `reader()`'s cluster holds."""
    return ServiceAccountAuthenticator(
        issuer, lambda ns, name: reader().get("", "serviceaccounts", ns, name), lambda *ref: reader().get(*ref),
        audiences, cluster)


class Cluster:
    """One cluster: its scheme, stores, controllers and handler chain over its own `storage`.

    `start()` bootstraps (namespaces, start-up CRDs, RBAC defaults) and starts
    the controllers; `close()` stops them and closes the storage. `root` says
    whether this is the server's own cluster, which also runs the plugins'
    storages and routers.
    """

    def __init__(self, name: str, shared: Shared, storage: Storage, *, root: bool = False,
                 mount: Mount | None = None) -> None:
        config, plugins = shared.config, shared.plugins
        self.name, self.storage, self.root = name, storage, root
        self.faults = Faults()
        self._shared = shared
        self._tasks: list[asyncio.Task[Any]] = []
        self.scheme = scheme = build_scheme(shared.manifests, config.core_resources, config.api_groups)
        plugins.add_to(scheme)
        self.stores = stores = {}  # type: dict[tuple[str, str], Store]

        async def get_namespace(name: str) -> dict[str, Any] | None:
            known = self._lifecycle.namespace(name)  # the controller's watch-fed view, as kube's informer
            if known is not None:
                return known
            try:
                return await stores[("", "namespaces")].get("", name, "v1")
            except errors.NotFound:
                return None

        self.reader = reader = StoreReader(stores, lambda group, resource: self._lifecycle.collection(group, resource))
        service_accounts = shared.service_accounts if root else service_account_authenticator(
            shared.issuer, config.api_audiences, lambda: reader, name)
        self.authenticator: Authenticator = UnionAuthenticator(
            [service_accounts if part is shared.service_accounts else part
             for part in shared.authenticator.authenticators])
        rbac_index = RbacIndex()
        try:
            authorizer = build_authorizer(config.authorization_modes, RbacAuthorizer(rbac_index),
                                          always_allow_paths=shared.always_allow, delegated=shared.delegated)
        except ValueError as exc:
            raise ConfigError(f"--authorization-mode: {exc}") from None
        admission = build_admission(config.admission_plugins, reader, get_namespace, plugins.admission,
                                    authorizer.authorize, self.faults, shared.metrics)
        options = StoreOptions(
            unrestricted_update=config.unrestricted_update,
            continue_key=secrets.token_bytes(32),  # continue tokens are valid for this process only
            bookmark_interval=config.bookmark_interval,
            delete_collection_workers=config.delete_collection_workers,
        )
        service_ranges = ServiceRanges(config.service_cluster_ip_range, config.service_node_port_range)
        own_storages = plugins.storages if root else {}

        def make_store(definition: ResourceDef) -> Store:
            key = (definition.group, definition.plural)
            typed = isinstance(definition.converter, TypedConverter)
            strategy = TypedStrategy(definition) if typed else strategy_for(definition)
            if key == ("", "services") and definition.builtin:
                return ServiceStore(strategy, storage, admission, options, ranges=service_ranges)
            if definition.group == RBAC_GROUP and definition.builtin:
                return RbacStore(strategy, storage, admission, options, index=rbac_index, authorizer=authorizer)
            return Store(strategy, own_storages.get(key, storage), admission, options)

        for definition in scheme.definitions:
            if not definition.virtual:  # virtual ones are answered by a custom handler, nothing to store
                stores[(definition.group, definition.plural)] = make_store(definition)
        self._crd_controller = CRDController(scheme, stores, stores[CRD_KEY], make_store)
        self._rbac_feed = RbacIndexFeed(stores, storage, rbac_index)
        self._rbac_bootstrap, self._aggregator = RbacBootstrap(stores), ClusterRoleAggregator(stores, storage)
        self._lifecycle = LifecycleController(scheme, stores, storage,
                                              kept=[(d.group, d.plural) for d in ADMISSION_REGISTRATION])
        ca_file = config.cert_paths.ca_crt
        self._namespace_defaults = NamespaceDefaults(
            stores, storage, root_ca=ca_file.read_text() if ca_file.is_file() else "",
            kubernetes_service=kubernetes_service(service_ranges.kubernetes_ip, config.secure_port or 6443))
        self.ctx = ctx = ApiContext(
            scheme=scheme,
            stores=stores,
            request_timeout=config.request_timeout,
            max_body_bytes=config.max_body_bytes,
            server_address=config.server_address,
            storage_health=self._health,
            storage=storage,
            faults=self.faults,
            log_verbosity=config.verbosity,
            auditor=shared.auditor,
            metrics=shared.metrics if config.metrics else None,
            serves_metrics=root,
        )
        ctx.aggregated = AggregatedApis(config.proxy_client_pair, config.request_timeout)
        self._apiservices = APIServiceController(stores, storage, ctx.aggregated, scheme,
                                                 config.apiservice_check_interval)
        self._simulation = Simulation(stores, storage, SimulationSettings(
            config.simulate_nodes, config.simulate_speed, config.simulate_manual_clock,
            config.simulate_node_capacity)) if config.simulate else None
        ctx.simulation = self._simulation
        ctx.actions.update(POD_ACTIONS)
        ctx.token_issuer, ctx.api_audiences = shared.issuer, config.api_audiences
        register_token_action(ctx.actions, shared.issuer, config.api_audiences, "" if root else name)
        apiexts = ApiextsApp(config.apiexts_prefix, plugins.routers, stores) if root else None
        mounts = [m for m in (mount, apiexts) if m]
        self.handler: Handler = make_api_handler(ctx, self.authenticator, authorizer, mounts)

    async def object_counts(self) -> dict[str, int]:
        """Objects stored per resource, labelled as kube's apiserver_storage_objects ("pods", "deployments.apps");
        a resource whose storage cannot answer is left out."""
        stores = list(self.stores.items())  # CRDs come and go while the counts are read
        counts = await asyncio.gather(*(store.count() for _, store in stores), return_exceptions=True)
        return {f"{plural}.{group}" if group else plural: count for ((group, plural), _), count in zip(stores, counts)
                if isinstance(count, int)}

    async def _health(self) -> dict[str, Any]:
        report = await self.storage.health()
        if self.faults.paused:
            return {**report, "ok": False, "error": "the storage is paused (a PauseStorage fault)"}
        return report

    async def start(self, seed: Snapshot | None = None) -> None:
        """Connect the storage, fill it from `seed` unless it holds objects already (a cluster a persistent
        backend kept), bootstrap what a fresh cluster holds (a no-op on a seeded one), start the controllers."""
        stores, storage = self.stores, self.storage
        await storage.start()
        seeded = seed is not None and not await storage.count(ROOT + "/")
        if seeded:
            await storage.restore(seed)  # type: ignore[arg-type]
        else:  # a seed is a bootstrapped cluster's state already: no need to check it object by object
            await ensure_initial_namespaces(stores[("", "namespaces")])
            await apply_crd_manifests(stores[CRD_KEY], self._shared.manifests)
        await self._crd_controller.sync()
        defaults_from = await self._namespace_defaults.sync()
        if not seeded:
            await self._rbac_bootstrap.ensure()
        aggregate_from = await self._aggregator.sync()  # view, edit and admin hold their rules before serving
        rbac_from = await self._rbac_feed.sync()
        data = self._shared.authentication_data
        if not seeded and ("", "configmaps") in stores and data:
            await publish_authentication_configmap(stores[("", "configmaps")], data)
        if not seeded:
            await self._apiservices.register_local()
        apiservices_from = await storage.current_revision()
        self._tasks = [asyncio.create_task(coro) for coro in (
            self._apiservices.run(apiservices_from), self._crd_controller.run(), self._lifecycle.run(),
            self._namespace_defaults.run(defaults_from), self._rbac_feed.run(rbac_from),
            self._aggregator.run(aggregate_from))]
        if self._simulation is not None:
            self._tasks += await self._simulation.start()

    async def close(self, drop: bool = False) -> None:
        """End its watches and controllers, then close the storage; its data stays unless `drop`."""
        self.ctx.end_watches()
        self.faults.clear()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self.root:
            for own in self._shared.plugins.storages.values():
                await own.close()
        if drop:
            await self.storage.drop()
        await self.storage.close()

