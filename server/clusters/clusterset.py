"""The logical clusters of one server and their snapshots.

`/clusters/<name>/…` is cluster `<name>`: its own storage (memory; a
directory `<file-rootpath>/clusters/<name>` on file; the etcd prefix
`<etcd-prefix>-clusters/<name>` on etcd), so its own objects, CRDs,
namespaces, RBAC and (on memory and file) resourceVersions. `root` names the
server's own cluster, which the plain paths serve.

A new cluster starts from the state a fresh server bootstraps (namespaces,
start-up CRDs, RBAC defaults). That state is made once, by the first
cluster, and kept as a snapshot: every later cluster is a fork of it, which
costs a dictionary copy on memory instead of a hundred bootstrap writes. A
cluster can also start from any saved snapshot. Snapshots live in memory
for the server's lifetime; clusters on file and etcd keep their data across
restarts (a file backend server reopens them at start).
"""
from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass
from typing import Any, Callable

from kapi.api import errors
from kapi.clusters.runtime import Cluster, Shared
from kapi.storage.interfaces import Snapshot, Storage

ROOT = "root"
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")  # clusters: a path segment and a directory name
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9]([-_.A-Za-z0-9]*[A-Za-z0-9])?$")  # also a fixture's name


def check_name(name: Any, what: str) -> str:
    """A cluster's name is a DNS label (as kube's namespace names), a snapshot's may also hold '_', '.' and
    capitals; else 400/422 saying why not."""
    if not isinstance(name, str) or not name:
        raise errors.BadRequest(f"a {what} needs a name, such as 'test-1'")
    if what == "cluster" and (len(name) > 63 or not _NAME.match(name)):
        detail = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                  "and must start and end with an alphanumeric character (at most 63)")
    elif what != "cluster" and (len(name) > 253 or not _SNAPSHOT_NAME.match(name)):
        detail = ("a snapshot name must consist of alphanumeric characters, '-', '_' or '.', and must start and "
                  "end with an alphanumeric character (at most 253)")
    else:
        return name
    raise errors.invalid("kapi.dev", what, name, [errors.field_invalid("name", name, detail)])


@dataclass(frozen=True)
class SavedSnapshot:
    name: str
    cluster: str
    created: float
    state: Snapshot

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "cluster": self.cluster, "revision": self.state.revision,
                "objects": len(self.state.entries),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.created))}


class ClusterSet:
    """Create, find, fork and delete logical clusters; save and forget snapshots."""

    root: Cluster  # the server's own, set once it is built (its admin API needs this set first)

    def __init__(self, shared: Shared, make_storage: Callable[[str], Storage]) -> None:
        self._shared, self._make_storage = shared, make_storage
        self._clusters: dict[str, Cluster] = {}
        self._origins: dict[str, str] = {}  # cluster → the snapshot it was forked from
        self._snapshots: dict[str, SavedSnapshot] = {}
        self._fresh: Snapshot | None = None  # a bootstrapped empty cluster, every new cluster's seed
        self._lock = asyncio.Lock()

    def get(self, name: str) -> Cluster | None:
        return self.root if name == ROOT else self._clusters.get(name)

    def describe(self, cluster: Cluster) -> dict[str, Any]:
        out: dict[str, Any] = {"name": cluster.name, "path": "" if cluster.root else f"/clusters/{cluster.name}"}
        if cluster.name in self._origins:
            out["snapshot"] = self._origins[cluster.name]
        return out

    def describe_all(self) -> list[dict[str, Any]]:
        return [self.describe(c) for c in (self.root, *self._clusters.values())]

    async def create(self, name: str, snapshot: str = "") -> Cluster:
        """A new cluster `name`, empty or forked from the saved `snapshot`; 409 if the name is taken."""
        check_name(name, "cluster")
        async with self._lock:
            if name == ROOT or name in self._clusters:
                raise errors.AlreadyExists(f'clusters "{name}" already exists',
                                           details=errors.QualifiedKind(name=name, kind="clusters"))
            if snapshot and snapshot not in self._snapshots:
                raise errors.NotFound(f'snapshots "{snapshot}" not found',
                                      details=errors.QualifiedKind(name=snapshot, kind="snapshots"))
            seed = self._snapshots[snapshot].state if snapshot else self._fresh
            cluster = await self._open(name, seed, fresh=not snapshot)
            if snapshot:
                self._origins[name] = snapshot
            return cluster

    async def _open(self, name: str, seed: Snapshot | None, fresh: bool = False) -> Cluster:
        storage = self._make_storage(name)
        cluster = Cluster(name, self._shared, storage)
        try:
            await cluster.start(seed)
        except BaseException:
            await cluster.close()
            raise
        if fresh and self._fresh is None:
            self._fresh = await storage.snapshot()
        self._clusters[name] = cluster
        return cluster

    async def reopen(self, names: list[str]) -> None:
        """Open the clusters whose data a persistent backend kept (at server start)."""
        for name in names:
            if _NAME.match(name) and name != ROOT and name not in self._clusters:
                await self._open(name, None)

    async def delete(self, name: str) -> Cluster:
        """Close cluster `name` and remove its data; 404 if there is none, 405 for the root."""
        if name == ROOT:
            raise errors.MethodNotSupported("the root cluster is the server's own: it cannot be deleted")
        async with self._lock:  # held until the data is gone: a new cluster of that name must not see it go
            cluster = self._clusters.pop(name, None)
            if cluster is None:
                raise errors.NotFound(f'clusters "{name}" not found',
                                      details=errors.QualifiedKind(name=name, kind="clusters"))
            self._origins.pop(name, None)
            await cluster.close(drop=True)
        return cluster

    async def save(self, name: str, cluster_name: str) -> SavedSnapshot:
        """Snapshot `cluster_name`'s objects as `name`; 409 if the name is taken, 404 for no such cluster."""
        check_name(name, "snapshot")
        if name in self._snapshots:
            raise errors.AlreadyExists(f'snapshots "{name}" already exists',
                                       details=errors.QualifiedKind(name=name, kind="snapshots"))
        cluster = self.get(cluster_name)
        if cluster is None:
            raise errors.NotFound(f'clusters "{cluster_name}" not found',
                                  details=errors.QualifiedKind(name=cluster_name, kind="clusters"))
        saved = SavedSnapshot(name, cluster_name, time.time(), await cluster.storage.snapshot())
        self._snapshots[name] = saved
        return saved

    def snapshot(self, name: str) -> SavedSnapshot:
        saved = self._snapshots.get(name)
        if saved is None:
            raise errors.NotFound(f'snapshots "{name}" not found',
                                  details=errors.QualifiedKind(name=name, kind="snapshots"))
        return saved

    def snapshots(self) -> list[SavedSnapshot]:
        return list(self._snapshots.values())

    def forget(self, name: str) -> SavedSnapshot:
        saved = self.snapshot(name)
        del self._snapshots[name]
        return saved

    async def object_counts(self) -> dict[str, int]:
        """Stored objects per resource, summed over the root and every logical cluster (apiserver_storage_objects)."""
        totals: dict[str, int] = {}
        for counts in await asyncio.gather(*(c.object_counts() for c in (self.root, *self._clusters.values()))):
            for resource, count in counts.items():
                totals[resource] = totals.get(resource, 0) + count
        return totals

    def end_watches(self) -> None:
        """Shutting down: every cluster's open watches end now."""
        for cluster in (self.root, *self._clusters.values()):
            cluster.ctx.end_watches()

    async def close(self) -> None:
        """Close every logical cluster (their data stays where the backend keeps it)."""
        clusters, self._clusters = list(self._clusters.values()), {}
        await asyncio.gather(*(c.close() for c in clusters))

