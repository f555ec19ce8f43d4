"""Deletion, as a mixin of `Store`: at once, or graceful while finalizers hold the object; one or a collection.

Kept apart from the other verbs because deletion has its own rules: preconditions,
propagation policies that become finalizers the garbage collector honours, and
dry runs that must not touch storage.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from server.admission.interfaces import AdmissionPlugin
from server.api import errors
from server.api.attributes import AdmissionAttributes
from server.api.meta import now_rfc3339
from server.registry.listing import ListOptions
from server.registry.strategy import Strategy
from server.registry.write_steps import WriteOptions, copy_object
from server.scheme.definitions import ResourceDef
from server.storage.interfaces import Preconditions, Storage

Object = dict[str, Any]
# DeleteOptions.propagationPolicy → the finalizer the garbage collector honours (kube's names).
PROPAGATION_FINALIZERS = {"Foreground": "foregroundDeletion", "Orphan": "orphan"}


class DeleteSteps:
    """Needs the keys, storage, admission and reads of the Store it is mixed into."""

    definition: ResourceDef
    strategy: Strategy
    _storage: Storage
    _admission: AdmissionPlugin | None

    if TYPE_CHECKING:  # provided by Store and WriteSteps; declared for the type checker only
        def _key(self, namespace: str, name: str) -> str: ...
        def _translated(self, name: str) -> AbstractContextManager[None]: ...
        async def _out(self, obj: Object, version: str) -> Object: ...
        def _attributes(self, operation: str, version: str, obj: Object | None, old: Object | None,
                        namespace: str, name: str, subresource: str, opts: WriteOptions) -> AdmissionAttributes: ...
        async def list(self, namespace: str, version: str, opts: ListOptions = ListOptions()) -> Object: ...

    async def delete(self, namespace: str, name: str, version: str, preconditions: Preconditions | None,
                     opts: WriteOptions, propagation: str = "") -> Object:
        """Delete, or start a graceful deletion while finalizers remain.

        `Foreground` and `Orphan` propagation add kube's `foregroundDeletion` / `orphan`
        finalizer, which the garbage collector removes once dependents are gone or freed;
        `Background` (the default) deletes at once and leaves dependents to the collector.
        """
        key = self._key(namespace, name)
        with self._translated(name):
            current = await self._storage.get(key)
            if preconditions is not None:
                preconditions.check(key, current)
            if self._admission is not None:
                old_view = await self._out(copy_object(current), version) if self.definition.converter else current
                attributes = self._attributes("DELETE", version, None, old_view, namespace, name, "", opts)
                await self._admission.admit(attributes)
                await self._admission.validate(attributes)
            extra = PROPAGATION_FINALIZERS.get(propagation, "")
            if extra or self.strategy.pending_finalizers(current):
                return await self._out(await self._mark_deleted(key, current, preconditions, opts, extra), version)
            if opts.dry_run:
                return await self._out(current, version)
            return await self._out(await self._storage.delete(key, preconditions), version)

    async def _mark_deleted(self, key: str, current: Object, preconditions: Preconditions | None,
                            opts: WriteOptions, extra_finalizer: str = "") -> Object:
        """Graceful deletion: an object with finalizers gets a deletionTimestamp and waits for them."""
        if current["metadata"].get("deletionTimestamp") and not extra_finalizer:
            return current

        def mark(obj: Object | None) -> Object:
            assert obj is not None
            meta = obj["metadata"]
            if not meta.get("deletionTimestamp"):
                meta.update(deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0)
                self.strategy.mark_deleted(obj)
            if extra_finalizer and extra_finalizer not in (meta.get("finalizers") or []):
                meta["finalizers"] = [*(meta.get("finalizers") or []), extra_finalizer]
            return obj

        if opts.dry_run:
            return mark(current)
        return await self._storage.guaranteed_update(key, mark, preconditions)

    async def delete_collection(self, namespace: str, version: str, opts: WriteOptions,
                                list_opts: ListOptions = ListOptions()) -> Object:
        """Delete every (selected) object of the collection; answer the list of what was deleted."""
        listed = await self.list(namespace, version, list_opts)
        deleted = []
        for item in listed["items"]:
            meta = item["metadata"]
            try:
                deleted.append(await self.delete(meta.get("namespace", ""), meta["name"], version, None, opts))
            except errors.NotFound:
                continue  # deleted meanwhile: that is what was asked
        listed["items"] = deleted
        return listed
