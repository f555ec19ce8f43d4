"""Keeps the RBAC authorizer's index current from storage, as kube's RBAC informers do.

The RBAC stores already tell the index of their own writes; this loop brings in
everything else (another server on the same etcd, objects written before a
restart) and starts over from a full listing whenever the watch cannot go on.
"""
from __future__ import annotations

import logging

from kapi.auth.rbac import GROUP, RESOURCES, RbacIndex
from kapi.controllers.watch_loop import follow
from kapi.registry.store import Store
from kapi.storage import keys
from kapi.storage.interfaces import Storage, WatchEvent

log = logging.getLogger("kapi.controllers.rbac_index")
PREFIX = f"{keys.ROOT}/{GROUP}/"


class RbacIndexFeed:
    def __init__(self, stores: dict[tuple[str, str], Store], storage: Storage, index: RbacIndex) -> None:
        self._stores = {r: stores[(GROUP, r)] for r in RESOURCES if (GROUP, r) in stores}
        self._storage, self._index = storage, index

    async def sync(self) -> int:
        """Load every Role, ClusterRole and binding; the revision to watch from."""
        revision = await self._storage.current_revision()
        objects = [(resource, obj) for resource, store in self._stores.items()
                   for obj in (await store.list("", "v1"))["items"]]
        self._index.replace(objects, revision)
        return revision

    async def run(self, revision: int | None = None) -> None:
        if not self._stores:
            return  # the RBAC group is not served: nothing can be bound
        await follow(self._storage, PREFIX, await self.sync() if revision is None else revision, self._handle,
                     self.sync, log)

    async def _handle(self, event: WatchEvent) -> None:
        parts = event.key[len(PREFIX):].split("/")
        resource, name = parts[0], parts[-1]
        namespace = parts[1] if len(parts) == 3 else ""
        self._index.observe(resource, namespace, name, None if event.type == "DELETED" else event.object,
                            event.revision)
