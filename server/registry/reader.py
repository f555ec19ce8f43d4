"""`StoreReader`: what admission plugins read of other objects, straight from the stores.

It implements `kapi.admission.interfaces.ObjectReader` (kube's listers);
objects come back in their storage version, and a resource the server does
not serve reads as empty rather than failing the write that asked.
"""
from __future__ import annotations

from typing import Any, Callable, Mapping

from kapi.api import errors
from kapi.registry.store import Store

Object = dict[str, Any]
CollectionView = Callable[[str, str], "list[Object] | None"]


class StoreReader:
    """`views(group, resource)` may answer whole-collection reads from a watch-fed copy (None: ask the store)."""

    def __init__(self, stores: Mapping[tuple[str, str], Store], views: CollectionView | None = None) -> None:
        self._stores = stores  # the live mapping: CRDs served later are found too
        self._views = views

    def _view(self, group: str, resource: str, namespace: str) -> list[Object] | None:
        return self._views(group, resource) if self._views is not None and not namespace else None

    async def get(self, group: str, resource: str, namespace: str, name: str) -> Object | None:
        store = self._stores.get((group, resource))
        if store is None:
            return None
        try:
            return await store.get(namespace, name, store.definition.storage_version.name)
        except errors.NotFound:
            return None

    async def list(self, group: str, resource: str, namespace: str = "") -> list[Object]:
        viewed = self._view(group, resource, namespace)
        if viewed is not None:
            return viewed
        store = self._stores.get((group, resource))
        if store is None:
            return []
        listed = await store.list(namespace, store.definition.storage_version.name)
        return list(listed["items"])

    async def count(self, group: str, resource: str, namespace: str = "") -> int:
        viewed = self._view(group, resource, namespace)
        if viewed is not None:
            return len(viewed)
        store = self._stores.get((group, resource))
        return 0 if store is None else await store.count(namespace)
