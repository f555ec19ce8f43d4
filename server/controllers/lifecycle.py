"""Object life cycle inside the server: the garbage collector and the namespace finalizer.

One storage-wide watch feeds both (the controller-manager half of a custom
apiserver):

- **Garbage collection** of `ownerReferences`: when an owner is gone
  (Background), its dependents are deleted unless another owner remains;
  an owner deleted with `Foreground` keeps its `foregroundDeletion`
  finalizer until its dependents are deleted (waiting only for those with
  `blockOwnerDeletion`); `Orphan` strips the owner reference from the
  dependents and then lets the owner go. A namespaced dependent whose owner
  lives in another namespace is ignored, as in Kubernetes.
- **Namespace deletion**: a Terminating namespace has its contents deleted,
  then its `kubernetes` finalizer removed, and goes away.

Dependents are found through an in-memory index of owner uid → dependents,
kept current from the same events, so a delete costs a lookup, not a scan.
"""
from __future__ import annotations

import logging
from typing import Any, Iterable

from kapi.api import errors
from kapi.controllers.watch_loop import follow
from kapi.registry.store import Store, WriteOptions
from kapi.registry.write_steps import CONTROLLER_MANAGER
from kapi.scheme.registry import Scheme
from kapi.storage.interfaces import Storage, WatchEvent

log = logging.getLogger("kapi.controllers.lifecycle")
Object = dict[str, Any]
Ref = tuple[tuple[str, str], str, str]  # (store key, namespace, name)
NAMESPACES_KEY = ("", "namespaces")
FOREGROUND, ORPHAN, NAMESPACE_FINALIZER = "foregroundDeletion", "orphan", "kubernetes"


def _group_of(api_version: str) -> str:
    return api_version.split("/", 1)[0] if "/" in api_version else ""



def _options() -> WriteOptions:
    """What the collector writes is credited to kube-controller-manager, as on a cluster."""
    return WriteOptions(manager=CONTROLLER_MANAGER)

class LifecycleController:
    def __init__(self, scheme: Scheme, stores: dict[tuple[str, str], Store], storage: Storage,
                 kept: Iterable[tuple[str, str]] = ()) -> None:
        self._scheme, self._stores, self._storage = scheme, stores, storage
        self._dependents: dict[str, set[Ref]] = {}  # owner uid -> dependents
        self._owners_of: dict[Ref, set[str]] = {}
        # Whole collections as last seen in the watch (namespaces, and what admission reads on every write).
        self._kept: dict[tuple[str, str], dict[tuple[str, str], Object]] = {
            key: {} for key in (NAMESPACES_KEY, *kept)}
        self._synced = False

    def namespace(self, name: str) -> Object | None:
        """The namespace as this controller last saw it; None when unknown here (ask the store).

        The admission plugin's lister, as kube's NamespaceLifecycle uses an
        informer: creating an object costs no namespace read from storage.
        """
        return self._kept[NAMESPACES_KEY].get(("", name)) if self._synced else None

    def collection(self, group: str, resource: str) -> list[Object] | None:
        """Every object of a kept collection (read-only), or None when it is not kept or not synced yet.

        Admission webhooks read their configurations here on every write, as
        kube's do from an informer, instead of from storage.
        """
        kept = self._kept.get((group, resource))
        return list(kept.values()) if kept is not None and self._synced else None

    # -- lookups -------------------------------------------------------------------------
    def _store_for(self, obj: Object) -> Store | None:
        definition = self._scheme.by_kind(_group_of(str(obj.get("apiVersion", ""))), str(obj.get("kind", "")))
        return None if definition is None else self._stores.get((definition.group, definition.plural))

    def _ref(self, obj: Object) -> Ref | None:
        store = self._store_for(obj)
        if store is None:
            return None
        meta = obj.get("metadata") or {}
        d = store.definition
        return (d.group, d.plural), meta.get("namespace", "") if d.namespaced else "", meta.get("name", "")

    def _index(self, obj: Object, gone: bool = False) -> None:
        ref = self._ref(obj)
        if ref is None:
            return
        kept = self._kept.get(ref[0])
        if kept is not None:
            if gone:
                kept.pop(ref[1:], None)
            else:
                kept[ref[1:]] = obj
        for uid in self._owners_of.pop(ref, set()):
            self._dependents.get(uid, set()).discard(ref)
        if gone:
            return
        owners = {str(o.get("uid")) for o in (obj.get("metadata") or {}).get("ownerReferences") or []
                  if isinstance(o, dict) and o.get("uid")}
        if owners:
            self._owners_of[ref] = owners
            for uid in owners:
                self._dependents.setdefault(uid, set()).add(ref)

    async def _get(self, ref: Ref) -> Object | None:
        store = self._stores.get(ref[0])
        if store is None:
            return None
        try:
            return await store.get(ref[1], ref[2], store.definition.storage_version.name)
        except errors.NotFound:
            return None

    async def _live_dependents(self, owner: Object) -> list[tuple[Ref, Object]]:
        meta = owner.get("metadata") or {}
        owner_ns = meta.get("namespace", "")
        out = []
        for ref in sorted(self._dependents.get(str(meta.get("uid")), set())):
            if owner_ns and ref[1] != owner_ns:
                continue  # cross-namespace owners are ignored, as Kubernetes does
            dependent = await self._get(ref)
            if dependent is not None:
                out.append((ref, dependent))
        return out

    # -- actions -------------------------------------------------------------------------
    async def _delete(self, ref: Ref, propagation: str = "") -> None:
        store = self._stores.get(ref[0])
        if store is not None:
            try:
                await store.delete(ref[1], ref[2], store.definition.storage_version.name, None, _options(),
                                   propagation)
            except errors.NotFound:
                pass

    async def _patch_meta(self, ref: Ref, change: Any) -> None:
        store = self._stores.get(ref[0])
        if store is None:
            return
        try:
            await store.patch(ref[1], ref[2], store.definition.storage_version.name, "",
                              lambda cur: {**cur, "metadata": change(dict(cur["metadata"]))}, _options())
        except errors.NotFound:
            pass

    async def _drop_finalizer(self, ref: Ref, finalizer: str) -> None:
        await self._patch_meta(ref, lambda m: {**m, "finalizers": [f for f in m.get("finalizers") or []
                                                                   if f != finalizer]})

    async def _owner_gone(self, owner: Object) -> None:
        """Background: dependents with no other owner left are deleted."""
        uid = str((owner.get("metadata") or {}).get("uid"))
        for ref, dependent in await self._live_dependents(owner):
            refs = (dependent.get("metadata") or {}).get("ownerReferences") or []
            others = [r for r in refs if isinstance(r, dict) and str(r.get("uid")) != uid]
            if others:
                await self._patch_meta(ref, lambda m: {**m, "ownerReferences": others})
            else:
                await self._delete(ref)

    async def _foreground(self, owner: Object, ref: Ref) -> None:
        uid = str((owner.get("metadata") or {}).get("uid"))
        blocking = 0
        for dep_ref, dependent in await self._live_dependents(owner):
            if not (dependent.get("metadata") or {}).get("deletionTimestamp"):
                await self._delete(dep_ref, "Foreground")
            if await self._get(dep_ref) is not None and any(
                    isinstance(r, dict) and str(r.get("uid")) == uid and r.get("blockOwnerDeletion")
                    for r in (dependent.get("metadata") or {}).get("ownerReferences") or []):
                blocking += 1
        if not blocking:
            await self._drop_finalizer(ref, FOREGROUND)

    async def _orphan(self, owner: Object, ref: Ref) -> None:
        uid = str((owner.get("metadata") or {}).get("uid"))
        for dep_ref, _ in await self._live_dependents(owner):
            await self._patch_meta(dep_ref, lambda m: {**m, "ownerReferences": [
                r for r in m.get("ownerReferences") or [] if not (isinstance(r, dict) and str(r.get("uid")) == uid)]})
        await self._drop_finalizer(ref, ORPHAN)

    async def _empty_namespace(self, namespace: Object, ref: Ref) -> None:
        name = (namespace.get("metadata") or {}).get("name", "")
        remaining = 0
        for store in list(self._stores.values()):
            if not store.definition.namespaced:
                continue
            version = store.definition.storage_version.name
            listed = await store.delete_collection(name, version, _options())
            remaining += sum(1 for o in listed["items"] if (o.get("metadata") or {}).get("finalizers"))
        if not remaining:
            namespaces = self._stores[ref[0]]
            try:
                await namespaces.patch("", name, "v1", "finalize", lambda cur: {
                    **cur, "spec": {**(cur.get("spec") or {}), "finalizers": [
                        f for f in (cur.get("spec") or {}).get("finalizers") or [] if f != NAMESPACE_FINALIZER]}},
                    _options())
            except errors.NotFound:
                pass

    # -- the loop ------------------------------------------------------------------------
    async def handle(self, obj: Object, deleted: bool) -> None:
        ref = self._ref(obj)
        if ref is None:
            return
        meta = obj.get("metadata") or {}
        self._index(obj, gone=deleted)
        if deleted:
            await self._owner_gone(obj)
            for owner_ref in meta.get("ownerReferences") or []:  # a foreground owner may be waiting on this one
                await self._recheck_owner(owner_ref, ref[1])
            if ref[1]:
                await self._recheck_namespace(ref[1])
            return
        if not meta.get("deletionTimestamp"):
            return
        finalizers = meta.get("finalizers") or []
        if ORPHAN in finalizers:
            await self._orphan(obj, ref)
        if FOREGROUND in finalizers:
            await self._foreground(obj, ref)
        if ref[0] == ("", "namespaces") and NAMESPACE_FINALIZER in ((obj.get("spec") or {}).get("finalizers") or []):
            await self._empty_namespace(obj, ref)

    async def _recheck_owner(self, owner_ref: Any, namespace: str) -> None:
        if not isinstance(owner_ref, dict):
            return
        owner_like = {"apiVersion": owner_ref.get("apiVersion", ""), "kind": owner_ref.get("kind", ""),
                      "metadata": {"name": owner_ref.get("name", ""), "namespace": namespace}}
        ref = self._ref(owner_like)
        owner = await self._get(ref) if ref else None
        if ref and owner and FOREGROUND in ((owner.get("metadata") or {}).get("finalizers") or []) \
                and (owner.get("metadata") or {}).get("deletionTimestamp"):
            await self._foreground(owner, ref)

    async def _recheck_namespace(self, name: str) -> None:
        ref: Ref = (("", "namespaces"), "", name)
        namespace = await self._get(ref)
        if namespace and (namespace.get("metadata") or {}).get("deletionTimestamp"):
            await self._empty_namespace(namespace, ref)

    async def sync(self) -> int:
        """Index every object and finish deletions left half-done; the revision to watch from."""
        revision = await self._storage.current_revision()
        self._dependents.clear()
        self._owners_of.clear()
        for kept in self._kept.values():
            kept.clear()
        self._synced = False
        pending = []
        for store in list(self._stores.values()):
            listed = await store.list("", store.definition.storage_version.name)
            for obj in listed["items"]:
                self._index(obj)
                if (obj.get("metadata") or {}).get("deletionTimestamp"):
                    pending.append(obj)
        self._synced = True
        for obj in pending:
            await self.handle(obj, deleted=False)
        return revision

    async def run(self) -> None:
        await follow(self._storage, "/registry/", await self.sync(), self._handle_event, self.sync, log)

    async def _handle_event(self, event: WatchEvent) -> None:
        await self.handle(event.object, deleted=event.type == "DELETED")
