"""Deletion, as a mixin of `Store`: at once, or graceful while finalizers hold the object; one or a collection.

Kept apart from the other verbs because deletion has its own rules: preconditions,
propagation policies that become finalizers the garbage collector honours, and
dry runs that must not touch storage.
"""
from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

from kapi.admission.interfaces import AdmissionPlugin
from kapi.api import errors
from kapi.api.attributes import AdmissionAttributes
from kapi.api.meta import now_rfc3339, parse_rfc3339
from kapi.registry.listing import ListOptions
from kapi.registry.strategy import Strategy
from kapi.registry.write_steps import WriteOptions, copy_object
from kapi.scheme.definitions import ResourceDef
from kapi.storage.interfaces import KeyNotFoundError, Preconditions, Storage

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
        _options: Any

        async def _select(self, namespace: str, opts: ListOptions) -> tuple[list[Object], dict[str, Any]]: ...
        def _list_of(self, version: str, list_meta: dict[str, Any], items: list[Object]) -> Object: ...

    async def delete(self, namespace: str, name: str, version: str, preconditions: Preconditions | None,
                     opts: WriteOptions, propagation: str = "", grace_period: int | None = None,
                     current: Object | None = None) -> Object:
        """Delete, or start a graceful deletion while finalizers or a grace period remain.

        `Foreground` and `Orphan` propagation add kube's `foregroundDeletion` / `orphan`
        finalizer, which the garbage collector removes once dependents are gone or freed;
        `Background` (the default) deletes at once and leaves dependents to the collector.
        `grace_period` (DeleteOptions.gracePeriodSeconds) matters only to kinds with graceful
        deletion (pods): they are kept with a deletionTimestamp that far ahead, which a later
        delete may only bring closer; 0 removes them at once. `current` is the object as stored, when the
        caller has just read it (a collection's delete): no read of its own then, and `preconditions` should
        pin its resourceVersion, so a change since surfaces as a conflict.
        """
        key = self._key(namespace, name)
        if grace_period is not None and grace_period < 0:
            grace_period = 1  # kube: a negative grace period means 1s on the delete path
        with self._translated(name):
            if current is None:
                current = await self._storage.get(key)
            if preconditions is not None:
                preconditions.check(key, current)
            if self._admission is not None:
                old_view = await self._out(copy_object(current), version) if self.definition.converter else current
                attributes = self._attributes("DELETE", version, None, old_view, namespace, name, "", opts)
                await self._admission.admit(attributes)
                await self._admission.validate(attributes)
            extra = PROPAGATION_FINALIZERS.get(propagation, "")
            outcome, _ = before_delete(self.strategy, copy_object(current), grace_period, _now())
            if outcome == PENDING:
                return await self._out(current, version)  # already on its way out, no sooner than asked
            if outcome == GRACEFUL or extra or self.strategy.pending_finalizers(current):
                kept, remove = await self._mark_deleted(key, current, preconditions, opts, extra, grace_period)
                if not remove or opts.dry_run:
                    return await self._out(kept, version)
                if preconditions is not None and preconditions.resource_version is not None:
                    preconditions = replace(preconditions, resource_version=kept["metadata"].get("resourceVersion"))
                try:
                    return await self._out(await self._storage.delete(key, preconditions), version)
                except KeyNotFoundError:
                    return await self._out(kept, version)  # another deleter won the race: gone is what was asked
            if opts.dry_run:
                return await self._out(current, version)
            return await self._out(await self._storage.delete(key, preconditions), version)

    async def _mark_deleted(self, key: str, current: Object, preconditions: Preconditions | None,
                            opts: WriteOptions, extra_finalizer: str = "",
                            grace_period: int | None = None) -> tuple[Object, bool]:
        """Write the deletion marks (kube's updateForGracefulDeletionAndFinalizers).

        Answers the object as written and whether it should now be removed: nothing holds
        it (no finalizer) and its grace period is spent.
        """
        decided: dict[str, bool] = {}

        def mark(obj: Object | None) -> Object:
            assert obj is not None
            before = copy_object(obj)
            outcome, period = before_delete(self.strategy, obj, grace_period, _now())
            if outcome == PENDING:
                raise _Unchanged
            meta = obj["metadata"]
            if extra_finalizer and extra_finalizer not in (meta.get("finalizers") or []):
                meta["finalizers"] = [*(meta.get("finalizers") or []), extra_finalizer]
            held = bool(self.strategy.pending_finalizers(obj))
            decided["remove"] = not held and (outcome != GRACEFUL or period == 0)
            if outcome == AT_ONCE:
                if not held:
                    raise _Unchanged  # nothing to wait for: removed as it is
                _mark_deleting(self.strategy, obj)
            if obj == before:
                raise _Unchanged
            return obj

        try:
            if opts.dry_run:
                return mark(copy_object(current)), decided["remove"]
            return await self._storage.guaranteed_update(key, mark, preconditions), decided["remove"]
        except _Unchanged:
            return current, decided.get("remove", False)

    async def delete_collection(self, namespace: str, version: str, opts: WriteOptions,
                                list_opts: ListOptions = ListOptions(), grace_period: int | None = None) -> Object:
        """Delete every (selected) object of the collection; answer the list of what was deleted, in list order.

        kube's DeleteCollection: `delete_collection_workers` deletes in flight at once (on file they share
        group commits, on etcd their round trips overlap). Each starts from the object as listed, pinned to its
        resourceVersion; one changed since the listing is deleted from its new state, as a single DELETE would
        be. The first error ends the call once the deletes in flight are done (those stay done, as in kube)."""
        items, list_meta = await self._select(namespace, list_opts)
        deleted: list[Object | None] = [None] * len(items)
        queue = iter(enumerate(items))
        failed: list[BaseException] = []

        async def worker() -> None:
            for i, item in queue:
                if failed:
                    return
                meta = item["metadata"]
                ns, name, rv = meta.get("namespace", ""), meta["name"], meta.get("resourceVersion")
                try:
                    try:
                        deleted[i] = await self.delete(ns, name, version, Preconditions(resource_version=rv), opts,
                                                       grace_period=grace_period, current=item)
                    except errors.Conflict:  # changed since the listing: from its new state
                        deleted[i] = await self.delete(ns, name, version, None, opts, grace_period=grace_period)
                except errors.NotFound:
                    continue  # deleted meanwhile: that is what was asked
                except Exception as exc:  # noqa: BLE001 - raised below, once the other workers are done
                    failed.append(exc)
                    return

        workers = max(1, min(self._options.delete_collection_workers, len(items)))
        await asyncio.gather(*(worker() for _ in range(workers)))
        if failed:
            raise failed[0]
        return self._list_of(version, list_meta, [obj for obj in deleted if obj is not None])


# What a delete request does to an object (kube's rest.BeforeDelete outcomes).
GRACEFUL, PENDING, AT_ONCE = "graceful", "pending", "at-once"


class _Unchanged(Exception):
    """Raised inside a storage update that would write nothing new."""


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def before_delete(strategy: Strategy, obj: Object, requested: int | None, now: datetime) -> tuple[str, int]:
    """Decide a delete's outcome and, when graceful, set the deletion marks on `obj` in place.

    kube's rules: a kind without graceful deletion goes at once (finalizers aside);
    an object already being deleted with time left may only have that time shortened
    (a longer or no request leaves it PENDING); a first delete asks the strategy for
    its grace period (pods: CheckGracefulDelete) and puts deletionTimestamp that far
    ahead, bumping a set generation. Returns the outcome and the grace period.
    """
    if not strategy.graceful_deletion:
        return AT_ONCE, 0
    meta = obj["metadata"]
    if meta.get("deletionTimestamp"):
        current = meta.get("deletionGracePeriodSeconds")
        if not isinstance(current, int) or current <= 0:
            return AT_ONCE, 0  # marked with no time left: removal is all that remains
        if requested is None or requested >= current:
            return PENDING, current
        at = parse_rfc3339(str(meta["deletionTimestamp"])) or now
        meta.update(deletionTimestamp=_stamp(at + timedelta(seconds=requested - current)),
                    deletionGracePeriodSeconds=requested)
        return GRACEFUL, requested
    period = strategy.graceful_delete_period(obj, requested)
    if period is None:
        return AT_ONCE, 0
    meta.update(deletionTimestamp=_stamp(now + timedelta(seconds=period)), deletionGracePeriodSeconds=period)
    if int(meta.get("generation") or 0) > 0:
        meta["generation"] = int(meta["generation"]) + 1
    strategy.mark_deleted(obj)
    return GRACEFUL, period


def _mark_deleting(strategy: Strategy, obj: Object) -> None:
    """kube's markAsDeleting, for an object its finalizers hold: deletionTimestamp now, no grace left."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp"):
        meta.update(deletionTimestamp=now_rfc3339(), deletionGracePeriodSeconds=0)
        if int(meta.get("generation") or 0) > 0:
            meta["generation"] = int(meta["generation"]) + 1
        strategy.mark_deleted(obj)
