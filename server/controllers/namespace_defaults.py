"""What every cluster has in its namespaces: the `default` ServiceAccount, `kube-root-ca.crt`, and the
`kubernetes` Service in `default`.

kube-controller-manager's service-account and root-CA publisher controllers
create the first two in every namespace (envtest users miss them, operators
and `kubectl create token default` expect them); kube-apiserver creates the
third. Here one loop does all three: at start for every namespace, then for
each namespace added. Creates are idempotent, so servers sharing an etcd race
harmlessly.
"""
from __future__ import annotations

import logging
from typing import Any

from kapi.api import errors
from kapi.controllers.watch_loop import follow
from kapi.registry.store import Store, WriteOptions
from kapi.registry.write_steps import CONTROLLER_MANAGER
from kapi.storage.interfaces import Storage, WatchEvent

log = logging.getLogger("kapi.controllers.namespace_defaults")
Object = dict[str, Any]
ROOT_CA_CONFIG_MAP = "kube-root-ca.crt"


class NamespaceDefaults:
    """Creates the per-namespace defaults; `root_ca` is the PEM to publish ("" publishes none)."""

    def __init__(self, stores: dict[tuple[str, str], Store], storage: Storage, root_ca: str = "",
                 kubernetes_service: Object | None = None) -> None:
        self._stores, self._storage = stores, storage
        self._root_ca = root_ca
        self._kubernetes_service = kubernetes_service

    async def _create(self, key: tuple[str, str], namespace: str, obj: Object) -> None:
        store = self._stores.get(key)
        if store is None:
            return  # the kind is not served (--api-groups)
        try:
            await store.get(namespace, obj["metadata"]["name"], "v1")
            return
        except errors.NotFound:
            pass
        try:
            await store.create(namespace, obj, "v1", WriteOptions(manager=CONTROLLER_MANAGER))
        except (errors.AlreadyExists, errors.Forbidden, errors.NotFound, errors.Invalid):
            pass  # there already, or the namespace is going away

    async def ensure(self, namespace: str) -> None:
        await self._create(("", "serviceaccounts"), namespace,
                           {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}})
        if self._root_ca:
            await self._create(("", "configmaps"), namespace, {
                "apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": ROOT_CA_CONFIG_MAP,
                             "annotations": {"kubernetes.io/description": _ROOT_CA_DESCRIPTION}},
                "data": {"ca.crt": self._root_ca}})
        if namespace == "default" and self._kubernetes_service is not None:
            await self._create(("", "services"), namespace, dict(self._kubernetes_service))

    async def sync(self) -> int:
        revision = await self._storage.current_revision()
        listed = await self._stores[("", "namespaces")].list("", "v1")
        for ns in listed["items"]:
            if not (ns.get("metadata") or {}).get("deletionTimestamp"):
                await self.ensure(ns["metadata"]["name"])
        return revision

    async def run(self, revision: int | None = None) -> None:
        """Watch for new namespaces from `revision` (a sync's result; None syncs first)."""
        prefix = self._stores[("", "namespaces")].collection_prefix("")
        await follow(self._storage, prefix, await self.sync() if revision is None else revision, self._added,
                     self.sync, log)

    async def _added(self, event: WatchEvent) -> None:
        if event.type == "ADDED":
            await self.ensure(event.object["metadata"]["name"])


_ROOT_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as "
    "the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of "
    "Kubernetes clusters."
)


def kubernetes_service(cluster_ip: str, port: int) -> Object:
    """The `kubernetes` Service kube-apiserver keeps in `default`, pointing at its secure port."""
    return {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kubernetes", "labels": {"component": "apiserver", "provider": "kubernetes"}},
        "spec": {"type": "ClusterIP", "clusterIP": cluster_ip, "sessionAffinity": "None",
                 "ports": [{"name": "https", "port": 443, "protocol": "TCP", "targetPort": port}]},
    }
