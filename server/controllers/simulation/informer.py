"""The simulation's shared informer: every kind the simulated controllers read, kept current from one watch.

As kube's shared informers: controllers read this cache instead of storage,
and are told of each change (`listen`) so they can queue the keys that
change concerns. Dependents are indexed by their owners' uids and pods by
node, so a reconcile costs lookups, not scans of every pod.
"""
from __future__ import annotations

import builtins
import logging
from typing import Any, Callable, Iterable

from kapi.controllers.watch_loop import follow
from kapi.registry.store import Store
from kapi.storage.interfaces import Storage, WatchEvent

log = logging.getLogger("kapi.simulation.informer")
Object = dict[str, Any]
Kind = tuple[str, str]  # (group, plural)
Name = tuple[str, str]  # (namespace, name)
Listener = Callable[[Kind, "Object | None", "Object | None"], None]

PODS: Kind = ("", "pods")
NODES: Kind = ("", "nodes")
SERVICES: Kind = ("", "services")
ENDPOINTS: Kind = ("", "endpoints")
LEASES: Kind = ("coordination.k8s.io", "leases")
REPLICA_SETS: Kind = ("apps", "replicasets")
DEPLOYMENTS: Kind = ("apps", "deployments")
STATEFUL_SETS: Kind = ("apps", "statefulsets")
DAEMON_SETS: Kind = ("apps", "daemonsets")
CONTROLLER_REVISIONS: Kind = ("apps", "controllerrevisions")
JOBS: Kind = ("batch", "jobs")
CRON_JOBS: Kind = ("batch", "cronjobs")
ENDPOINT_SLICES: Kind = ("discovery.k8s.io", "endpointslices")
PVCS: Kind = ("", "persistentvolumeclaims")
ALL_KINDS = (PODS, NODES, SERVICES, ENDPOINTS, REPLICA_SETS, DEPLOYMENTS, STATEFUL_SETS, DAEMON_SETS,
             CONTROLLER_REVISIONS, JOBS, CRON_JOBS, ENDPOINT_SLICES, PVCS, LEASES)


def name_of(obj: Object) -> Name:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def controller_uid(obj: Object) -> str | None:
    """The uid of the object's controlling owner, if any."""
    for ref in (obj.get("metadata") or {}).get("ownerReferences") or []:
        if isinstance(ref, dict) and ref.get("controller"):
            return str(ref.get("uid") or "")
    return None


class Informer:
    """Objects by kind and (namespace, name), as of the latest event seen."""

    def __init__(self, stores: dict[Kind, Store], storage: Storage, kinds: Iterable[Kind] = ALL_KINDS) -> None:
        self._storage = storage
        self.kinds = [k for k in kinds if k in stores]
        self._objects: dict[Kind, dict[Name, Object]] = {k: {} for k in self.kinds}
        self._prefixes = [(stores[k].collection_prefix(""), k) for k in self.kinds]
        self._owned: dict[str, set[tuple[Kind, Name]]] = {}  # controller uid -> what it controls
        self._on_node: dict[str, set[Name]] = {}  # node name -> pods bound to it
        self._listeners: list[Listener] = []

    # -- reading ---------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> Object | None:
        return self._objects.get(kind, {}).get((namespace, name))

    def list(self, kind: Kind, namespace: str | None = None) -> builtins.list[Object]:
        objects = self._objects.get(kind, {})
        if namespace is None:
            return list(objects.values())
        return [o for (ns, _), o in objects.items() if ns == namespace]

    def owned(self, kind: Kind, owner: Object) -> builtins.list[Object]:
        """The objects of `kind` whose controller is `owner`."""
        uid = str((owner.get("metadata") or {}).get("uid") or "")
        found = (self.get(k, *n) for k, n in self._owned.get(uid, ()) if k == kind)
        return [o for o in found if o is not None]

    def pods_on(self, node: str) -> builtins.list[Object]:
        found = (self.get(PODS, *n) for n in self._on_node.get(node, ()))
        return [p for p in found if p is not None]

    def serves(self, kind: Kind) -> bool:
        return kind in self._objects

    def listen(self, listener: Listener) -> None:
        self._listeners.append(listener)

    # -- feeding -----------------------------------------------------------------------------
    def _kind_of(self, key: str) -> Kind | None:
        for prefix, kind in self._prefixes:
            if key.startswith(prefix):
                return kind
        return None

    def _index(self, kind: Kind, name: Name, obj: Object, add: bool) -> None:
        uid = controller_uid(obj)
        if uid:
            owned = self._owned.setdefault(uid, set())
            (owned.add if add else owned.discard)((kind, name))
            if not owned:
                del self._owned[uid]
        if kind == PODS:
            node = str((obj.get("spec") or {}).get("nodeName") or "")
            if node:
                pods = self._on_node.setdefault(node, set())
                (pods.add if add else pods.discard)(name)
                if not pods:
                    del self._on_node[node]

    def _put(self, kind: Kind, obj: Object | None, name: Name) -> None:
        objects = self._objects[kind]
        old = objects.pop(name, None)
        if old is not None:
            self._index(kind, name, old, add=False)
        if obj is not None:
            objects[name] = obj
            self._index(kind, name, obj, add=True)
        if old is None and obj is None:
            return
        for listener in self._listeners:
            try:
                listener(kind, old, obj)
            except Exception:  # noqa: BLE001 - one controller's bug must not starve the others
                log.exception("a simulation listener failed")

    async def sync(self) -> int:
        """(Re)list every kind at one revision; changes since the last view are announced as events."""
        revision = await self._storage.current_revision()
        for prefix, kind in self._prefixes:
            listed = await self._storage.list(prefix, revision=revision)
            seen: set[Name] = set()
            for obj in listed.items:
                name = name_of(obj)
                seen.add(name)
                if self._objects[kind].get(name) != obj:
                    self._put(kind, obj, name)
            for gone in [n for n in self._objects[kind] if n not in seen]:
                self._put(kind, None, gone)
        return revision

    async def run(self, revision: int) -> None:
        await follow(self._storage, "/registry/", revision, self._handle, self.sync, log)

    async def _handle(self, event: WatchEvent) -> None:
        kind = self._kind_of(event.key)
        if kind is None:
            return
        obj = event.object
        self._put(kind, None if event.type == "DELETED" else obj, name_of(obj))
