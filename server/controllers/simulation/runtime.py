"""What every simulated controller shares: a work queue of keys, and writes through the registry.

A controller is told of cache changes (`changed`), queues the keys they
concern, and reconciles one key at a time from the informer's view, as kube's
controllers do. kube's workqueue rules hold: a key is queued once however
often it is added, and never reconciled by two workers at once (added while
in progress, it runs again afterwards). A failing reconcile is retried with
backoff; a controller never dies of one bad object.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Callable, Hashable

from kapi.api import errors
from kapi.controllers.simulation.clock import SimClock
from kapi.controllers.simulation.informer import Informer, Kind
from kapi.registry.store import Store, WriteOptions
from kapi.registry.write_steps import CONTROLLER_MANAGER, copy_object
from kapi.storage.interfaces import Preconditions

log = logging.getLogger("kapi.simulation")
Object = dict[str, Any]
Key = Hashable
# Writes that lose a race or find the object gone: the next event queues the key again.
EXPECTED = (errors.NotFound, errors.Conflict, errors.AlreadyExists)


@dataclass(frozen=True)
class SimulationSettings:
    """What `--simulate*` chose."""

    nodes: int = 3
    speed: float = 1.0
    manual_clock: bool = False
    node_capacity: tuple[tuple[str, str], ...] = (("cpu", "32"), ("memory", "256Gi"), ("pods", "110"))


class Cluster:
    """The simulation's view and hands: informer, clock, and writes through the stores as one manager."""

    def __init__(self, stores: dict[Kind, Store], informer: Informer, clock: SimClock,
                 settings: SimulationSettings) -> None:
        self.stores, self.informer, self.clock, self.settings = stores, informer, clock, settings

    def store(self, kind: Kind) -> Store | None:
        return self.stores.get(kind)

    async def create(self, kind: Kind, namespace: str, obj: Object, manager: str = CONTROLLER_MANAGER) -> Object | None:
        """Create `obj`; None when the kind is not served or the namespace is going away."""
        store = self.stores.get(kind)
        if store is None:
            return None
        try:
            return await store.create(namespace, copy_object(obj), "v1", WriteOptions(manager=manager))
        except (errors.Forbidden, errors.NotFound):
            return None  # the namespace is terminating or gone

    async def change(self, kind: Kind, namespace: str, name: str, change: Callable[[Object], None],
                     subresource: str = "", manager: str = CONTROLLER_MANAGER) -> Object | None:
        """Apply `change` (in place) to the current object and write it; None when it is gone."""
        store = self.stores[kind]

        def wanted(current: Object) -> Object:
            new = copy_object(current)
            change(new)
            return new

        try:
            return await store.patch(namespace, name, "v1", subresource, wanted, WriteOptions(manager=manager))
        except errors.NotFound:
            return None

    async def set_status(self, kind: Kind, obj: Object, status: Object, manager: str = CONTROLLER_MANAGER) -> None:
        """Write `status` unless the cached object already has it."""
        if obj.get("status") == status:
            return
        meta = obj["metadata"]
        await self.change(kind, meta.get("namespace", ""), meta["name"],
                          lambda o: o.__setitem__("status", copy_object(status)), "status", manager)

    async def delete(self, kind: Kind, obj: Object, manager: str = CONTROLLER_MANAGER, propagation: str = "",
                     grace_period: int | None = None) -> None:
        """Delete this very object (uid precondition); gone already is fine."""
        store, meta = self.stores[kind], obj["metadata"]
        with contextlib.suppress(errors.NotFound, errors.Conflict):
            await store.delete(meta.get("namespace", ""), meta["name"], "v1", Preconditions(uid=meta.get("uid")),
                               WriteOptions(manager=manager), propagation, **(
                                   {} if grace_period is None else {"grace_period": grace_period}))


class Controller:
    """A control loop over keys; subclasses say which keys a change concerns and how to reconcile one."""

    name = "controller"
    workers = 1

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.informer, self.clock = cluster.informer, cluster.clock
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._queued: set[Key] = set()
        self._busy: set[Key] = set()
        self._again: set[Key] = set()
        self._failures: dict[Key, int] = {}
        self._soon: set[Key] = set()
        informer = cluster.informer
        informer.listen(self.changed)

    # -- what subclasses give -------------------------------------------------------------
    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        """Queue the keys a change concerns."""

    async def reconcile(self, key: Any) -> None:
        """Bring the world one step closer to what `key`'s object asks for."""

    def start_keys(self) -> list[Key]:
        """Keys to reconcile once at start (after the informer's first sync)."""
        return []

    # -- the queue -------------------------------------------------------------------------
    def enqueue(self, key: Key) -> None:
        if key in self._busy:
            self._again.add(key)
        elif key not in self._queued:
            self._queued.add(key)
            self._queue.put_nowait(key)

    def enqueue_soon(self, key: Key, delay: float = 0.05) -> None:
        """Queue `key` after `delay` real seconds, once however often asked meanwhile: a burst of pod events
        becomes one status write, as kube's controllers batch what arrives while a key waits."""
        if key in self._soon:
            return
        self._soon.add(key)

        def due() -> None:
            self._soon.discard(key)
            self.enqueue(key)
        asyncio.get_running_loop().call_later(delay, due)

    def enqueue_at(self, when: float, key: Key) -> None:
        """Reconcile `key` again at simulated time `when`."""
        self.clock.call_at(when, lambda: self.enqueue(key))

    async def run(self) -> None:
        for key in self.start_keys():
            self.enqueue(key)
        workers = [asyncio.create_task(self._work()) for _ in range(self.workers)]
        try:
            await asyncio.gather(*workers)
        finally:
            for worker in workers:
                worker.cancel()

    async def _work(self) -> None:
        while True:
            key = await self._queue.get()
            self._queued.discard(key)
            self._busy.add(key)
            try:
                await self.reconcile(key)
                self._failures.pop(key, None)
            except asyncio.CancelledError:
                raise
            except EXPECTED:  # a race with another writer: look again once the informer has the news
                asyncio.get_running_loop().call_later(0.02, self.enqueue, key)
            except Exception:  # noqa: BLE001 - one bad object must not stop the loop
                failures = self._failures[key] = self._failures.get(key, 0) + 1
                log.exception("%s: reconciling %s failed (%d)", self.name, key, failures)
                asyncio.get_running_loop().call_later(min(0.05 * 2 ** failures, 30.0), self.enqueue, key)
            finally:
                self._busy.discard(key)
                if key in self._again:
                    self._again.discard(key)
                    self.enqueue(key)
            await asyncio.sleep(0)  # writes to memory never suspend: let the informer and the clients in
