"""The etcd backend: the `Storage` protocol on etcd v3, as kube-apiserver's etcd3 store does it.

- Keys are kube-apiserver's: `<etcd-prefix>/<group>/<resource>/<namespace>/<name>`
  (`--etcd-prefix`, default `/registry`, replaces the `/registry` that
  storage keys start with), so several kapi servers with the same prefix
  share their objects, and different prefixes keep servers apart on one etcd.
- Values are the objects' JSON without `resourceVersion`, which is etcd's
  `mod_revision` and is set on every read.
- Creates are transactions "create_revision == 0 then put"; updates and
  deletes compare `mod_revision` with the revision read, and retry on the
  new state when another writer won, so no update is lost.
- Lists page at one revision: the first page reads the current one, later
  pages ask etcd for that same revision; a compacted revision is 410.
- Watches read from one `EventLog` fed by one etcd watch (`etcd_feed.py`).
- An unreachable etcd is `StorageUnavailableError` (503) for each request;
  nothing is cached, so every answer is etcd's own.
- Every request of a store operation is timed into the server's metrics
  (kube's etcd_request_duration_seconds: operation get, list, listWithCount,
  create, update or delete; type the resource, "deployments.apps").
"""
from __future__ import annotations

import asyncio
import inspect
import logging
from typing import Any

import orjson
from aetcd import rpc

from .etcd_client import EtcdClient, EtcdCompacted, EtcdFutureRevision
from .etcd_feed import PROGRESS_INTERVAL, EtcdFeed
from .events import DEFAULT_EVENT_WINDOW, DEFAULT_WATCH_QUEUE, EventLog, LogWatcher, Record
from .index import prefix_end, stamp
from .keys import ROOT, group_resource
from .interfaces import (
    InvalidKeyError,
    KeyExistsError,
    KeyNotFoundError,
    ListResult,
    Object,
    Preconditions,
    RevisionNotYetError,
    RevisionTooOldError,
    Snapshot,
    StorageUnavailableError,
    TryUpdate,
    dumps_kept,
)

__all__ = ["EtcdStorage"]

log = logging.getLogger("kapi.storage.etcd")
_KEY_ROOT = ROOT  # what every storage key starts with
_MAX_TXN_OPS = 128  # etcd's default --max-txn-ops
_CREATE = rpc.Compare.CompareTarget.Value("CREATE")
_MOD = rpc.Compare.CompareTarget.Value("MOD")
_EQUAL = rpc.Compare.CompareResult.Value("EQUAL")
_PUT = rpc.Event.EventType.Value("PUT")


def _encode(obj: Object) -> bytes:
    """The stored form: the object without resourceVersion (etcd's revision is the truth)."""
    if not isinstance(obj, dict):
        raise TypeError(f"storage objects must be dicts, got {type(obj).__name__}")
    meta = obj.get("metadata")
    if isinstance(meta, dict) and "resourceVersion" in meta:
        obj = dict(obj)
        obj["metadata"] = {k: v for k, v in meta.items() if k != "resourceVersion"}
    return orjson.dumps(obj)


def _range_end(root: bytes) -> bytes:
    """The end of etcd's range of keys starting with a non-empty `root`."""
    return str(prefix_end(root.decode())).encode()


def _decode(value: bytes, revision: int) -> Object:
    obj: Object = orjson.loads(value)
    if not isinstance(obj, dict):
        raise ValueError("not a JSON object")
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = obj["metadata"] = {}
    meta["resourceVersion"] = str(revision)
    return obj


class EtcdStorage:
    """`Storage` on etcd; `start()` connects and starts the watch feed."""

    backend_name = "etcd"

    def __init__(self, client: EtcdClient, prefix: str = ROOT,
                 event_window: int = DEFAULT_EVENT_WINDOW, watch_queue_size: int = DEFAULT_WATCH_QUEUE,
                 progress_interval: float = PROGRESS_INTERVAL) -> None:
        prefix = "/" + prefix.strip("/") if prefix.strip("/") else ""
        self._client = client
        self._prefix = prefix
        self._events = EventLog(event_window, watch_queue_size)
        root = (prefix + "/").encode()
        self._feed = EtcdFeed(client, root, _range_end(root),
                              self._events, self._record, self.current_revision, progress_interval)
        self._seen = 0  # the newest revision any etcd answer showed this server

    @property
    def prefix(self) -> str:
        return self._prefix or "/"

    # ----- keys and values ----------------------------------------------------

    def _etcd_key(self, key: str) -> bytes:
        if not key.startswith(_KEY_ROOT + "/"):
            raise InvalidKeyError(key, f"storage keys start with {_KEY_ROOT}/: {key!r}")
        return (self._prefix + key[len(_KEY_ROOT):]).encode()

    def _etcd_range(self, prefix: str) -> tuple[bytes, bytes]:
        """[start, end) in etcd of every key under a storage prefix (never empty: keys start with /registry/)."""
        root = self._etcd_key(prefix)
        return root, _range_end(root)

    def _storage_key(self, etcd_key: bytes) -> str:
        return _KEY_ROOT + etcd_key.decode()[len(self._prefix):]

    def _saw(self, header: Any) -> int:
        self._seen = max(self._seen, header.revision)
        return int(header.revision)

    def _record(self, event: Any) -> Record | None:
        """One etcd watch event as a log record, encoded once for every watcher.

        None for what no watcher can be told: a value that is not kapi's JSON
        (another program writing under the prefix), or a deletion whose last
        state etcd no longer has.
        """
        try:
            return self._to_record(event)
        except ValueError:  # orjson.JSONDecodeError and UnicodeDecodeError are ValueErrors
            log.warning("etcd key %r does not hold a JSON object; its event is skipped", event.kv.key)
            return None

    def _to_record(self, event: Any) -> Record | None:
        kv, prev = event.kv, event.prev_kv
        key = self._storage_key(kv.key)
        before = dumps_kept(_decode(prev.value, prev.mod_revision)) if prev.value else None
        if event.type == _PUT:
            data = dumps_kept(_decode(kv.value, kv.mod_revision))
            modified = kv.create_revision != kv.mod_revision  # else: created (again) by this put
            return Record("MODIFIED" if modified else "ADDED", key, kv.mod_revision, data,
                          before if modified else None)
        if before is None:  # the last state was compacted away: nothing to tell a watcher
            return None
        return Record("DELETED", key, kv.mod_revision,
                      dumps_kept(_decode(prev.value, kv.mod_revision)), before)

    def _revision_error(self, exc: Exception, key: str, revision: int) -> Exception:
        if isinstance(exc, EtcdCompacted):
            # etcd does not say where its history now starts: past `revision`, at least.
            return RevisionTooOldError(key, revision, max(self._events.oldest, exc.compact_revision, revision + 1))
        return RevisionNotYetError(key, revision, self._seen)

    async def _range(self, key: str, etcd_key: bytes, range_end: bytes = b"", **kwargs: Any) -> Any:
        try:
            response = await self._client.range(etcd_key, range_end, **kwargs)
        except (EtcdCompacted, EtcdFutureRevision) as exc:
            raise self._revision_error(exc, key, kwargs.get("revision", 0)) from None
        self._saw(response.header)
        return response

    async def _get_kv(self, key: str, etcd_key: bytes) -> Any | None:
        response = await self._range(key, etcd_key, operation="get", kind=group_resource(key))
        return response.kvs[0] if response.kvs else None

    # ----- life cycle ---------------------------------------------------------

    async def start(self) -> None:
        """Reach etcd (StorageUnavailableError if it cannot be) and follow it from now on."""
        revision = await self.current_revision()
        self._feed.start(revision)
        await self._feed.wait_created(self._client.timeout)

    async def close(self) -> None:
        await self._feed.stop()
        self._events.close_all()
        await self._client.close()

    async def health(self) -> dict[str, Any]:
        members = await asyncio.gather(*(self._client.member_status(e) for e in self._client.endpoints))
        try:
            revision, error = await self.current_revision(), ""
        except StorageUnavailableError as exc:
            revision, error = self._seen, str(exc)
        return {
            "backend": self.backend_name, "ok": not error and self._feed.connected,
            "revision": revision, "prefix": self.prefix, "endpoints": list(members),
            "watch": {"connected": self._feed.connected, "revision": self._events.newest,
                      "oldest": self._events.oldest, "watchers": self._events.watcher_count(),
                      "restarts": self._feed.restarts},
            **({"error": error or self._feed.last_error} if error or not self._feed.connected else {}),
        }

    # ----- the Storage protocol ---------------------------------------------

    async def current_revision(self) -> int:
        """etcd's current revision (one small read: any answer's header carries it)."""
        response = await self._client.range(self._prefix.encode() or b"/", limit=1, keys_only=True)
        return self._saw(response.header)

    def oldest_revision(self) -> int:
        return self._events.oldest

    async def create(self, key: str, obj: Object) -> Object:
        etcd_key = self._etcd_key(key)
        data = _encode(obj)
        response = await self._client.txn(
            compare=[rpc.Compare(key=etcd_key, target=_CREATE, result=_EQUAL, create_revision=0)],
            success=[rpc.RequestOp(request_put=rpc.PutRequest(key=etcd_key, value=data))],
            failure=[], operation="create", kind=group_resource(key),
        )
        if not response.succeeded:
            raise KeyExistsError(key, f"key already exists: {key}")
        return _decode(data, self._saw(response.header))

    async def get(self, key: str, revision: int = 0) -> Object:
        kv = (await self._range(key, self._etcd_key(key), revision=revision, operation="get",
                                kind=group_resource(key))).kvs
        if not kv:
            raise KeyNotFoundError(key, f"key not found: {key}")
        return _decode(kv[0].value, kv[0].mod_revision)

    async def list(self, prefix: str, limit: int = 0, continue_key: str = "", revision: int = 0) -> ListResult:
        root, end = self._etcd_range(prefix)
        start = self._etcd_key(continue_key) + b"\0" if continue_key else root
        response = await self._range(prefix, start, end, limit=max(limit, 0), revision=revision, operation="list",
                                     kind=group_resource(prefix))
        items = [_decode(kv.value, kv.mod_revision) for kv in response.kvs]
        more = bool(response.more) and bool(items)
        return ListResult(
            items=items,
            revision=revision or response.header.revision,
            continue_key=self._storage_key(response.kvs[-1].key) if more else "",
            remaining=max(0, response.count - len(items)) if more else 0,
        )

    async def count(self, prefix: str) -> int:
        root, end = self._etcd_range(prefix)
        response = await self._range(prefix, root, end, count_only=True, operation="listWithCount",
                                     kind=group_resource(prefix))
        return int(response.count)

    async def guaranteed_update(self, key: str, try_update: TryUpdate,
                                preconditions: Preconditions | None = None,
                                ignore_not_found: bool = False) -> Object:
        etcd_key = self._etcd_key(key)
        kv = await self._get_kv(key, etcd_key)
        while True:
            current = None if kv is None else _decode(kv.value, kv.mod_revision)
            if current is None and not ignore_not_found:
                raise KeyNotFoundError(key, f"key not found: {key}")
            if preconditions is not None:
                preconditions.check(key, current if current is not None else {})
            result = try_update(None if kv is None else _decode(kv.value, kv.mod_revision))
            new: Object = await result if inspect.isawaitable(result) else result
            if kv is not None and stamp(new, kv.mod_revision) == current:
                return current  # no-op: nothing written, revision unchanged
            data = _encode(new)
            compare = (rpc.Compare(key=etcd_key, target=_CREATE, result=_EQUAL, create_revision=0)
                       if kv is None else
                       rpc.Compare(key=etcd_key, target=_MOD, result=_EQUAL, mod_revision=kv.mod_revision))
            response = await self._client.txn(
                compare=[compare],
                success=[rpc.RequestOp(request_put=rpc.PutRequest(key=etcd_key, value=data))],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=etcd_key))],
                operation="update", kind=group_resource(key),
            )
            revision = self._saw(response.header)
            if response.succeeded:
                return _decode(data, revision)
            kvs = response.responses[0].response_range.kvs  # another writer won: retry on its state
            kv = kvs[0] if kvs else None

    async def delete(self, key: str, preconditions: Preconditions | None = None) -> Object:
        etcd_key = self._etcd_key(key)
        pinned = preconditions is not None and preconditions.uid is None and preconditions.resource_version
        if pinned and str(pinned).isdigit():  # the revision to delete is known: one round trip, no read first
            response = await self._client.txn(
                compare=[rpc.Compare(key=etcd_key, target=_MOD, result=_EQUAL, mod_revision=int(pinned))],
                success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=etcd_key, prev_kv=True))],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=etcd_key))],
                operation="delete", kind=group_resource(key),
            )
            revision = self._saw(response.header)
            if response.succeeded:
                prev = response.responses[0].response_delete_range.prev_kvs
                if prev:
                    return stamp(_decode(prev[0].value, prev[0].mod_revision), revision)
                raise KeyNotFoundError(key, f"key not found: {key}")  # pragma: no cover - compared, so present
            kvs = response.responses[0].response_range.kvs
            kv = kvs[0] if kvs else None  # changed or gone: checked below as any delete would be
        else:
            kv = await self._get_kv(key, etcd_key)
        while True:
            if kv is None:
                raise KeyNotFoundError(key, f"key not found: {key}")
            last = _decode(kv.value, kv.mod_revision)
            if preconditions is not None:
                preconditions.check(key, last)
            response = await self._client.txn(
                compare=[rpc.Compare(key=etcd_key, target=_MOD, result=_EQUAL, mod_revision=kv.mod_revision)],
                success=[rpc.RequestOp(request_delete_range=rpc.DeleteRangeRequest(key=etcd_key))],
                failure=[rpc.RequestOp(request_range=rpc.RangeRequest(key=etcd_key))],
                operation="delete", kind=group_resource(key),
            )
            revision = self._saw(response.header)
            if response.succeeded:
                return stamp(last, revision)
            kvs = response.responses[0].response_range.kvs
            kv = kvs[0] if kvs else None

    def watch(self, prefix: str, from_revision: int) -> LogWatcher:
        """From the log; a revision etcd has shown this server but the feed has not reached yet waits for it."""
        self._etcd_key(prefix)  # the same keys as every other call, or InvalidKeyError
        return self._events.watch(prefix, from_revision, future_until=self._seen)

    def watcher_count(self) -> int:
        return self._events.watcher_count()

    # ----- whole-store operations (logical clusters) -------------------------------------------------------

    async def snapshot(self) -> Snapshot:
        root, end = self._etcd_range(_KEY_ROOT + "/")
        response = await self._range(_KEY_ROOT + "/", root, end)
        entries = {self._storage_key(kv.key): (kv.mod_revision, bytes(kv.value)) for kv in response.kvs}
        return Snapshot(response.header.revision, entries)

    async def restore(self, snapshot: Snapshot) -> None:
        """Put the snapshot's objects in transactions of etcd's default limit (128 operations each)."""
        puts = [rpc.RequestOp(request_put=rpc.PutRequest(key=self._etcd_key(key), value=data))
                for key, (_revision, data) in sorted(snapshot.entries.items())]
        for start in range(0, len(puts), _MAX_TXN_OPS):
            response = await self._client.txn(compare=[], success=puts[start:start + _MAX_TXN_OPS], failure=[])
            self._saw(response.header)

    async def compact(self) -> int:
        """Compact etcd itself (its history is global: every prefix's) and this server's event log."""
        revision = await self.current_revision()
        await self._client.compact(revision)
        self._events.forget()
        return revision

    async def drop(self) -> None:
        root, end = self._etcd_range(_KEY_ROOT + "/")
        await self._client.delete_range(root, end)
