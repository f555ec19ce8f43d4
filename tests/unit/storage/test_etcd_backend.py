"""What only the etcd backend promises, against real etcd processes.

Everything the backends share is in `test_conformance.py` and
`test_watch_conformance.py` (which run on etcd too). Here: kube-apiserver's
key layout and value format in etcd, several servers on one etcd, compaction,
etcd going away and coming back, a network partition (a TCP proxy the test
cuts), progress notifications, TLS, and a 3-member cluster losing a member.

Tests that only read and write under a prefix of their own use the session's
etcd (`make_etcd_storage`); tests that kill, compact or partition etcd start
their own (`local_etcd`), stopped at teardown whatever happens.
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
import uuid
from typing import Any, Awaitable, Callable, TypeVar

import orjson
import pytest

from kapi_cli.etcd_local import LocalEtcd, make_tls_files
from kapi.storage.factory import create_storage
from kapi.storage.interfaces import (
    KeyExistsError,
    KeyNotFoundError,
    Object,
    RevisionNotYetError,
    RevisionTooOldError,
    StorageUnavailableError,
    Watcher,
    WatchEvent,
)

FOOS = "/registry/hello.zeng.dev/foos/"
PREFIX = FOOS + "default/"
BARS = "/registry/hello.zeng.dev/bars/default/"
ETCDCTL = shutil.which("etcdctl") or "/usr/bin/etcdctl"

Make = Callable[..., Awaitable[Any]]  # make_etcd_storage: started EtcdStorages, closed at teardown
StartEtcd = Callable[..., LocalEtcd]
T = TypeVar("T")


def foo(name: str, **spec: Any) -> Object:
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
            "metadata": {"name": name, "namespace": "default", "uid": f"uid-{name}"}, "spec": dict(spec)}


def rv(obj: Object) -> int:
    return int(obj["metadata"]["resourceVersion"])


def names(objs: list[Object]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


def set_size(size: int) -> Callable[[Object | None], Object]:
    def update(cur: Object | None) -> Object:
        assert cur is not None
        cur["spec"]["size"] = size
        return cur

    return update


def prefix() -> str:
    return f"/t-{uuid.uuid4().hex[:12]}"


async def etcdctl(endpoints: str, *args: str) -> str:
    """Run etcdctl (v3 API) against `endpoints`, off the event loop; its stdout."""
    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run([ETCDCTL, "--endpoints", endpoints, *args], capture_output=True, text=True,
                              env={**os.environ, "ETCDCTL_API": "3"}, timeout=20)

    result = await asyncio.to_thread(run)
    assert result.returncode == 0, f"etcdctl {' '.join(args)}: {result.stderr}"
    return result.stdout


async def take(watcher: Watcher, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []

    async def run() -> None:
        async for ev in watcher:
            out.append(ev)
            if len(out) == n:
                return

    try:
        await asyncio.wait_for(run(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"wanted {n} events within {timeout}s, got {out}") from None
    return out


async def nothing_queued(watcher: Watcher, wait: float = 0.2) -> bool:
    try:
        await asyncio.wait_for(watcher.__anext__(), wait)
    except asyncio.TimeoutError:
        return True
    return False


async def eventually(call: Callable[[], Awaitable[T]], timeout: float = 5.0) -> T:
    """`call()` retried while etcd is unavailable (an election, a reconnect), for up to `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await call()
        except StorageUnavailableError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.05)


async def wait_until(check: Callable[[], Awaitable[bool]], timeout: float, what: str) -> float:
    """Poll `check` until it holds; how long that took, or AssertionError naming `what`."""
    started = time.monotonic()
    while not await check():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.05)
    return time.monotonic() - started


async def feed_connected(storage: Any) -> None:
    """Until the storage's etcd watch is up (`start()` returns before it is)."""
    async def connected() -> bool:
        return bool((await storage.health())["watch"]["connected"])

    await wait_until(connected, 5, "the etcd watch feed connecting")


class Proxy:
    """A TCP forwarder in front of one etcd member that a test can cut and restore.

    A storage pointed at the proxy loses etcd (a network partition) while
    the test, etcdctl and other storages still reach etcd directly. Cutting
    aborts every connection and refuses new ones; restoring listens again on
    the same port, so the storage's gRPC channel reconnects by itself.
    """

    def __init__(self, port: int) -> None:
        self._target = port
        self.port = 0
        self._server: asyncio.base_events.Server | None = None
        self._connections: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def restore(self) -> Proxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def cut(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for client, upstream in list(self._connections):
            client.transport.abort()
            upstream.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target)
        except OSError:
            writer.transport.abort()
            return
        pair = (writer, up_writer)
        self._connections.add(pair)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError, asyncio.CancelledError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            dst.transport.abort()

        try:
            await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        except asyncio.CancelledError:  # the loop is closing: nothing to report
            pass
        finally:
            self._connections.discard(pair)


@pytest.fixture
async def partition(local_etcd: StartEtcd) -> Any:
    """(etcd, proxy): an etcd of the test's own, and a cuttable proxy in front of it."""
    etcd = local_etcd()
    proxy = await Proxy(etcd.members[0].client_port).restore()
    try:
        yield etcd, proxy
    finally:
        await proxy.cut()


# ----- layout and values ----------------------------------------------------------


async def test_keys_and_values_follow_kube_apiserver(make_etcd_storage: Make, etcd_endpoints: str) -> None:
    root = prefix()
    storage = await make_etcd_storage(prefix=root + "/")  # a trailing slash is the same prefix
    src = foo("a", size=1)
    src["metadata"]["resourceVersion"] = "999"
    created = await storage.create(PREFIX + "a", src)
    updated = await storage.guaranteed_update(PREFIX + "a", set_size(2))
    cm = await storage.create("/registry/configmaps/default/c", {"kind": "ConfigMap", "metadata": {"name": "c"}})
    crd = await storage.create("/registry/apiextensions.k8s.io/customresourcedefinitions/foos.hello.zeng.dev",
                               {"kind": "CustomResourceDefinition", "metadata": {"name": "foos.hello.zeng.dev"}})

    # --etcd-prefix replaces /registry; the rest of the key is kube-apiserver's.
    keys = (await etcdctl(etcd_endpoints, "get", "--prefix", root + "/", "--keys-only")).split()
    assert sorted(keys) == sorted([
        f"{root}/hello.zeng.dev/foos/default/a",
        f"{root}/configmaps/default/c",
        f"{root}/apiextensions.k8s.io/customresourcedefinitions/foos.hello.zeng.dev",
    ])

    # The value is the object's JSON without resourceVersion, which is etcd's mod_revision.
    kv = (await storage._client.range(f"{root}/hello.zeng.dev/foos/default/a".encode())).kvs[0]
    value = orjson.loads(kv.value)
    assert "resourceVersion" not in value["metadata"]
    assert value == {**updated, "metadata": {k: v for k, v in updated["metadata"].items() if k != "resourceVersion"}}
    assert (kv.create_revision, kv.mod_revision) == (rv(created), rv(updated))
    assert rv(await storage.get(PREFIX + "a")) == kv.mod_revision
    listed = await storage.list("/registry/")
    assert [rv(o) for o in listed.items] == [rv(crd), rv(cm), rv(updated)]  # in key order
    assert listed.revision == await storage.current_revision() == rv(crd)

    # An object another kube-apiserver (here: etcdctl) wrote is read with its mod_revision.
    await etcdctl(etcd_endpoints, "put", f"{root}/hello.zeng.dev/foos/default/b",
                  '{"kind":"Foo","metadata":{"name":"b","resourceVersion":"5"}}')
    written = await storage.current_revision()
    assert (await storage.get(PREFIX + "b"))["metadata"] == {"name": "b", "resourceVersion": str(written)}
    await storage.delete(PREFIX + "a")
    assert (await etcdctl(etcd_endpoints, "get", f"{root}/hello.zeng.dev/foos/default/a")) == ""


async def test_default_prefix_is_registry(etcd_endpoints: str) -> None:
    storage = create_storage("etcd", None, etcd_servers=[etcd_endpoints])  # --etcd-prefix unset
    await storage.start()
    try:
        key = f"/registry/hello.zeng.dev/foos/ns-{uuid.uuid4().hex[:8]}/a"
        created = await storage.create(key, foo("a"))
        assert (await etcdctl(etcd_endpoints, "get", key, "--print-value-only")).strip() == orjson.dumps(
            {**created, "metadata": {k: v for k, v in created["metadata"].items() if k != "resourceVersion"}}
        ).decode()
        await storage.delete(key)
    finally:
        await storage.close()


# ----- several servers on one etcd --------------------------------------------------


async def test_servers_sharing_a_prefix_share_objects_and_events(make_etcd_storage: Make) -> None:
    shared = prefix()
    a = await make_etcd_storage(prefix=shared)
    b = await make_etcd_storage(prefix=shared)
    other = await make_etcd_storage()  # a prefix of its own
    base = await b.current_revision()
    async with b.watch(PREFIX, base) as on_b, other.watch(FOOS, await other.current_revision()) as on_other:
        created = await a.create(PREFIX + "x", foo("x", size=1))
        assert await b.get(PREFIX + "x") == created
        updated = await b.guaranteed_update(PREFIX + "x", set_size(2))
        assert await a.get(PREFIX + "x") == updated
        mine = await other.create(PREFIX + "x", foo("x", size=9))  # the same key, elsewhere
        deleted = await a.delete(PREFIX + "x")
        with pytest.raises(KeyNotFoundError):
            await b.get(PREFIX + "x")
        events = await take(on_b, 3)
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", rv(created)), ("MODIFIED", rv(updated)), ("DELETED", rv(deleted))]
        assert events[0].object == created and events[2].object == deleted
        assert await nothing_queued(on_b)
        assert [e.object for e in await take(on_other, 1)] == [mine]
        assert await nothing_queued(on_other)
    assert names((await other.list(PREFIX)).items) == ["x"] and await other.count("/registry/") == 1
    assert (await a.list("/registry/")).items == [] and await b.count("/registry/") == 0


async def test_concurrent_updates_from_two_servers_lose_nothing(make_etcd_storage: Make) -> None:
    shared = prefix()
    a = await make_etcd_storage(prefix=shared)
    b = await make_etcd_storage(prefix=shared)
    created = await a.create(PREFIX + "n", foo("n", counter=0))
    calls = 0

    async def increment(cur: Object | None) -> Object:
        nonlocal calls
        calls += 1
        assert cur is not None
        value = cur["spec"]["counter"]
        await asyncio.sleep(0)  # let the other server's update read the same state
        cur["spec"]["counter"] = value + 1
        return cur

    async def run(storage: Any) -> None:
        for _ in range(25):
            await storage.guaranteed_update(PREFIX + "n", increment)

    await asyncio.gather(run(a), run(b))
    final = await b.get(PREFIX + "n")
    assert final["spec"]["counter"] == 50
    assert rv(final) == rv(created) + 50 == await a.current_revision()  # one revision per increment
    assert calls > 50  # the servers did conflict, and retried on each other's state


async def test_multi_key_transaction_reaches_watchers(make_etcd_storage: Make, etcd_endpoints: str) -> None:
    """`etcdctl del --prefix` deletes several keys at one revision: one DELETED event each."""
    root = prefix()
    storage = await make_etcd_storage(prefix=root)
    created = [await storage.create(PREFIX + n, foo(n)) for n in "abc"]
    async with storage.watch(PREFIX, await storage.current_revision()) as w:
        await etcdctl(etcd_endpoints, "del", "--prefix", f"{root}/hello.zeng.dev/foos/")
        revision = await storage.current_revision()
        events = await take(w, 3)
        assert [(e.type, e.key, e.revision) for e in events] == [
            ("DELETED", PREFIX + n, revision) for n in "abc"]
        assert [e.prev for e in events] == created
        after = await storage.create(PREFIX + "d", foo("d"))
        assert [e.revision for e in await take(w, 1)] == [rv(after)]
    assert (await storage.health())["watch"]["restarts"] == 0


async def test_factory_passes_event_window(etcd_endpoints: str) -> None:
    storage = create_storage("etcd", None, 2, etcd_servers=[etcd_endpoints], etcd_prefix=prefix())
    await storage.start()
    try:
        base = await storage.current_revision()
        w = storage.watch(PREFIX, base)
        for i in range(4):
            await storage.create(PREFIX + f"o{i}", foo(f"o{i}"))
        await take(w, 4)  # the feed has published all four
        assert storage.oldest_revision() == base + 2
        with pytest.raises(RevisionTooOldError):
            storage.watch(PREFIX, base + 1)
    finally:
        await storage.close()


# ----- compaction and revisions etcd does not have -----------------------------


async def test_compacted_and_future_revisions(local_etcd: StartEtcd, make_etcd_storage: Make) -> None:
    etcd = local_etcd()
    storage = await make_etcd_storage(endpoints=etcd.endpoints)
    await feed_connected(storage)  # else the compaction below could be before its start revision
    watcher = storage.watch(PREFIX, await storage.current_revision())
    first = await storage.create(PREFIX + "a", foo("a", size=1))
    await storage.create(PREFIX + "b", foo("b", size=1))
    page = await storage.list(PREFIX, limit=1)
    assert page.continue_key
    await storage.guaranteed_update(PREFIX + "a", set_size(2))
    current = await storage.current_revision()
    await etcdctl(etcd.endpoints, "compact", str(current), "--physical")

    with pytest.raises(RevisionTooOldError) as old:
        await storage.get(PREFIX + "a", revision=rv(first))
    assert old.value.revision == rv(first) and old.value.key == PREFIX + "a"
    with pytest.raises(RevisionTooOldError):
        await storage.list(PREFIX, revision=rv(first))
    with pytest.raises(RevisionTooOldError):  # the next page of a listing at a compacted revision
        await storage.list(PREFIX, limit=1, continue_key=page.continue_key, revision=page.revision)
    at = await storage.list(PREFIX, revision=current)  # the compaction revision itself is kept
    assert names(at.items) == ["a", "b"] and at.items[0]["spec"] == {"size": 2}

    with pytest.raises(RevisionNotYetError) as future:
        await storage.list(PREFIX, revision=current + 1000)
    assert (future.value.revision, future.value.current) == (current + 1000, current)
    with pytest.raises(RevisionNotYetError):
        await storage.get(PREFIX + "a", revision=current + 1000)

    # The feed was not behind: it follows on, and its watchers with it.
    later = await storage.create(PREFIX + "c", foo("c"))
    assert [e.revision for e in await take(watcher, 4)][-1] == rv(later)
    assert (await storage.health())["watch"]["restarts"] == 0
    watcher.close()


async def test_compacted_revision_error_names_a_revision_still_served(
    local_etcd: StartEtcd, make_etcd_storage: Make
) -> None:
    """RevisionTooOldError's `oldest` is "the lowest one still served": above what was asked.

    Fails on the current backend: etcd's "required revision has been
    compacted" does not say where it compacted, so `EtcdCompacted()` has
    compact_revision 0 and `_revision_error` reports the event log's oldest
    (the revision the server started at), which is below the revision asked
    for: "too old resource version: 2 (1)".
    """
    etcd = local_etcd()
    storage = await make_etcd_storage(endpoints=etcd.endpoints)
    await feed_connected(storage)  # so the feed does not start over (which would hide the bug)
    first = await storage.create(PREFIX + "a", foo("a", size=1))
    await storage.guaranteed_update(PREFIX + "a", set_size(2))
    current = await storage.current_revision()
    await etcdctl(etcd.endpoints, "compact", str(current))
    with pytest.raises(RevisionTooOldError) as old:
        await storage.get(PREFIX + "a", revision=rv(first))
    assert rv(first) < old.value.oldest <= current, str(old.value)


# ----- etcd going away ------------------------------------------------------------


async def test_etcd_down_then_back(local_etcd: StartEtcd, make_etcd_storage: Make) -> None:
    etcd = local_etcd()
    storage = await make_etcd_storage(endpoints=etcd.endpoints)
    async with storage.watch(PREFIX, await storage.current_revision()) as w:
        written = [await storage.create(PREFIX + n, foo(n)) for n in "abc"]
        written.append(await storage.delete(PREFIX + "a"))
        (first,) = await take(w, 1)  # one delivered before the outage, the rest maybe still queued

        etcd.kill_member(0)
        calls: list[Callable[[], Awaitable[Any]]] = [
            lambda: storage.create(PREFIX + "x", foo("x")),
            lambda: storage.get(PREFIX + "b"),
            lambda: storage.list(PREFIX),
            lambda: storage.count(PREFIX),
            lambda: storage.guaranteed_update(PREFIX + "b", set_size(1)),
            lambda: storage.delete(PREFIX + "b"),
            storage.current_revision,
        ]
        for call in calls:
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                await call()
            assert time.monotonic() - started < 3  # promptly, not after the request timeout
        health = await storage.health()
        assert health["ok"] is False and health["endpoints"][0]["ok"] is False and health["error"]

        await asyncio.to_thread(etcd.restart_member, 0)  # the feed keeps retrying meanwhile
        # Nothing to do: the next requests work by themselves, once gRPC has
        # reconnected (its back-off is at most a second).
        started = time.monotonic()
        written.append(await eventually(lambda: storage.create(PREFIX + "d", foo("d"))))
        assert time.monotonic() - started < 3
        written.append(await storage.guaranteed_update(PREFIX + "d", set_size(4)))
        written.append(await storage.delete(PREFIX + "b"))
        assert names((await storage.list(PREFIX)).items) == ["c", "d"]

        # Every event, before and after the outage, exactly once and in order.
        events = [first, *await take(w, len(written) - 1)]
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", rv(written[0])), ("ADDED", rv(written[1])), ("ADDED", rv(written[2])),
            ("DELETED", rv(written[3])), ("ADDED", rv(written[4])), ("MODIFIED", rv(written[5])),
            ("DELETED", rv(written[6])),
        ]
        assert [e.object for e in events] == written
        assert await nothing_queued(w)

    async def healthy() -> bool:
        return bool((await storage.health())["ok"])

    await wait_until(healthy, 5, "health ok after etcd came back")


async def test_partition_replays_what_others_wrote_meanwhile(partition: Any, make_etcd_storage: Make) -> None:
    etcd, proxy = partition
    shared = prefix()
    cut_off = await make_etcd_storage(endpoints=proxy.url, prefix=shared)
    other = await make_etcd_storage(endpoints=etcd.endpoints, prefix=shared)
    before = await cut_off.create(PREFIX + "a", foo("a"))
    async with cut_off.watch(PREFIX, rv(before)) as w:
        await proxy.cut()
        with pytest.raises(StorageUnavailableError):
            await cut_off.get(PREFIX + "a")
        meanwhile = [
            await other.create(PREFIX + "b", foo("b")),
            await other.guaranteed_update(PREFIX + "a", set_size(3)),
            await other.delete(PREFIX + "b"),
        ]
        await proxy.restore()
        after = await eventually(lambda: cut_off.create(PREFIX + "c", foo("c")))
        events = await take(w, 4)
        assert [(e.type, e.revision) for e in events] == [
            ("ADDED", rv(meanwhile[0])), ("MODIFIED", rv(meanwhile[1])), ("DELETED", rv(meanwhile[2])),
            ("ADDED", rv(after))]
        assert await nothing_queued(w)
    assert (await cut_off.health())["watch"]["restarts"] == 0


async def test_feed_starts_over_when_etcd_compacted_what_it_missed(
    partition: Any, make_etcd_storage: Make
) -> None:
    """Cut off while others write and etcd compacts: the history to resume from is gone.

    Open watchers end with RevisionTooOldError (clients relist on 410), and
    the feed follows etcd again from its current revision.
    """
    etcd, proxy = partition
    shared = prefix()
    cut_off = await make_etcd_storage(endpoints=proxy.url, prefix=shared)
    other = await make_etcd_storage(endpoints=etcd.endpoints, prefix=shared)
    base = await cut_off.current_revision()
    w = cut_off.watch(PREFIX, base)
    bars = cut_off.watch(BARS, base)
    first = await cut_off.create(PREFIX + "a", foo("a"))
    assert [e.revision for e in await take(w, 1)] == [rv(first)]

    await proxy.cut()
    missed = await other.create(PREFIX + "b", foo("b"))
    await other.guaranteed_update(PREFIX + "a", set_size(5))
    compacted = await other.current_revision()
    await etcdctl(etcd.endpoints, "compact", str(compacted))
    await proxy.restore()

    for watcher in (w, bars):
        with pytest.raises(RevisionTooOldError):
            await asyncio.wait_for(watcher.__anext__(), 5)
        with pytest.raises(StopAsyncIteration):
            await watcher.__anext__()
    assert (await cut_off.health())["watch"]["restarts"] == 1
    assert cut_off.watcher_count() == 0
    with pytest.raises(RevisionTooOldError):  # the log starts over: the old revision is gone
        cut_off.watch(PREFIX, rv(first))

    # Reads are etcd's own, so they have what was missed; new watches work.
    assert names((await cut_off.list(PREFIX)).items) == ["a", "b"]
    assert await cut_off.get(PREFIX + "b") == missed
    async with cut_off.watch(PREFIX, await cut_off.current_revision()) as fresh:
        later = await cut_off.create(PREFIX + "c", foo("c"))
        assert [(e.type, e.revision) for e in await take(fresh, 1)] == [("ADDED", rv(later))]


# ----- progress ---------------------------------------------------------------------


async def test_progress_follows_writes_under_other_prefixes(make_etcd_storage: Make) -> None:
    quiet = await make_etcd_storage()
    busy = await make_etcd_storage()
    async with quiet.watch(PREFIX, await quiet.current_revision()) as w:
        for i in range(3):
            last = await busy.create(PREFIX + f"o{i}", foo(f"o{i}"))

        async def advanced() -> bool:
            return w.progress() >= rv(last)

        await wait_until(advanced, 4, "progress past writes under another prefix")
        assert await nothing_queued(w, 0.05)
        assert (await quiet.health())["watch"]["revision"] >= rv(last)


async def test_progress_follows_writes_elsewhere_after_a_reconnect(
    partition: Any, make_etcd_storage: Make
) -> None:
    """After the feed reconnects, progress must move on even if nothing under its prefix changed.

    Fails on the current backend: on reconnect `_synced_at` is etcd's
    revision when the new watch was created; while cut off, only other
    prefixes were written, so the replay holds no event and the log's
    `newest` stays below `_synced_at`, which is the condition for both
    asking for and trusting progress notifications (`etcd_feed.py`
    `_follow` / `_ask_progress`). Progress then stays put until the next
    write under this server's prefix.
    """
    etcd, proxy = partition
    cut_off = await make_etcd_storage(endpoints=proxy.url)
    busy = await make_etcd_storage(endpoints=etcd.endpoints)
    async with cut_off.watch(PREFIX, await cut_off.current_revision()) as w:
        await proxy.cut()
        for i in range(3):
            last = await busy.create(PREFIX + f"o{i}", foo(f"o{i}"))
        await proxy.restore()
        await eventually(cut_off.current_revision)

        async def advanced() -> bool:
            return w.progress() >= rv(last)

        await wait_until(advanced, 5, f"progress past {rv(last)} after reconnecting (stuck at {w.progress()})")


# ----- TLS --------------------------------------------------------------------------


async def test_tls_with_client_certificates(local_etcd: StartEtcd, tmp_path: Any) -> None:
    files = make_tls_files(tmp_path / "tls")
    etcd = local_etcd(tls=files)
    assert etcd.endpoints.startswith("https://")
    storage = create_storage("etcd", None, etcd_servers=[etcd.endpoints], etcd_prefix=prefix(),
                             etcd_cafile=files.ca, etcd_certfile=files.client_cert, etcd_keyfile=files.client_key)
    await storage.start()
    try:
        async with storage.watch(PREFIX, await storage.current_revision()) as w:
            created = await storage.create(PREFIX + "a", foo("a"))
            assert await storage.get(PREFIX + "a") == created
            assert [e.object for e in await take(w, 1)] == [created]
        health = await storage.health()
        assert health["ok"] is True and health["endpoints"][0]["ok"] is True
    finally:
        await storage.close()

    refused = [
        dict(etcd_cafile=files.ca),  # no client certificate
        dict(),  # nor the CA: the serving certificate is not trusted
    ]
    for settings in refused:
        other = create_storage("etcd", None, etcd_servers=[etcd.endpoints], **settings)  # type: ignore[arg-type]
        try:
            started = time.monotonic()
            with pytest.raises(StorageUnavailableError):
                await other.start()
            assert time.monotonic() - started < 5
        finally:
            await other.close()
    with pytest.raises(ValueError):  # a CA for plain http is a mistake, said at start-up
        create_storage("etcd", None, etcd_servers=[etcd.endpoints.replace("https", "http")], etcd_cafile=files.ca)


# ----- a 3-member cluster ------------------------------------------------------------


async def test_cluster_keeps_serving_without_a_member(local_etcd: StartEtcd, make_etcd_storage: Make) -> None:
    etcd = local_etcd(size=3)
    storage = await make_etcd_storage(endpoints=etcd.endpoints)
    assert len(storage._client.endpoints) == 3
    watcher = storage.watch(PREFIX, await storage.current_revision())
    written: list[str] = []

    async def write(name: str) -> None:
        """Create, retried through an election; a create whose outcome was unknown may have committed.

        A write a follower took just after the leader died is lost with it:
        etcd answers "request timed out" after its request timeout (5 s plus
        two election timeouts), so kapi's 5 s deadline ends it first, with
        StorageUnavailableError (503, as kube-apiserver's "etcdserver:
        request timed out"). The retry goes to the new leader at once.
        """
        try:
            await eventually(lambda: storage.create(PREFIX + name, foo(name)), timeout=12)
        except KeyExistsError:
            pass  # an earlier attempt did commit
        written.append(name)

    for victim in ("leader", "follower"):
        members = (await storage.health())["endpoints"]
        leaders = [i for i, m in enumerate(members) if m.get("isLeader")]
        assert len(leaders) == 1, members
        index = leaders[0] if victim == "leader" else (leaders[0] + 1) % 3
        assert members[index]["endpoint"] == etcd.members[index].client_url
        etcd.kill_member(index)
        started = time.monotonic()
        for i in range(10):
            await write(f"{victim}-{i}")
        assert time.monotonic() - started < 10  # at most one request timeout (5 s), then at full speed
        for name in written:  # reads keep working too
            assert (await eventually(lambda: storage.get(PREFIX + name)))["metadata"]["name"] == name
        members = (await storage.health())["endpoints"]
        assert members[index]["ok"] is False
        assert sum(m["ok"] for m in members) == 2, members
        await asyncio.to_thread(etcd.restart_member, index)

        async def all_members_up() -> bool:
            return all(m["ok"] for m in (await storage.health())["endpoints"])

        await wait_until(all_members_up, 5, "health reporting the restarted member")

    listing = await eventually(lambda: storage.list(PREFIX))
    assert sorted(names(listing.items)) == sorted(written)
    # The feed moved to another member with the rest: every write, once, in order.
    events = await take(watcher, len(written), timeout=10)
    assert [e.key for e in events] == [PREFIX + n for n in written]
    assert await nothing_queued(watcher)
    watcher.close()


# ----- bad data in etcd ---------------------------------------------------------------


async def test_an_undecodable_value_does_not_stop_other_watches(
    make_etcd_storage: Make, etcd_endpoints: str
) -> None:
    """One value that is not JSON (written by another tool) must not stall every watch.

    Before 8b9c449 the feed failed on that event and re-opened the watch
    from the same revision, which delivered it again, once a second,
    forever: no later event reached any watcher, of any resource.
    """
    root = prefix()
    storage = await make_etcd_storage(prefix=root)
    async with storage.watch(FOOS, await storage.current_revision()) as w:
        await etcdctl(etcd_endpoints, "put", f"{root}/hello.zeng.dev/bars/default/bad", "not json")
        created = await storage.create(PREFIX + "a", foo("a"))
        try:
            events = await take(w, 1, timeout=4)
        finally:
            await etcdctl(etcd_endpoints, "del", f"{root}/hello.zeng.dev/bars/default/bad")
        assert [e.revision for e in events] == [rv(created)]
