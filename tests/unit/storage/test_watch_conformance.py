"""Watch, event window and reads at a revision: conformance over every backend.

The same tests run against memory, file and etcd through the `Storage`
protocol (plus `watcher_count()`, the backends' introspection hook for leak
tests). Backends are built directly so a test can pick a small
`event_window` or watch queue; `test_factory_passes_event_window` covers the
factory's part (for etcd: `test_etcd_backend.py`).

etcd's revision is global to the etcd the session shares, so tests assert
revisions relative to `base`, the revision the test started at (0 for the
in-process backends; each write adds exactly one, as nothing else writes to
that etcd meanwhile), and watch from `base` where they watched from 0. The
etcd backend's event log is fed by an etcd watch, a moment after each write
returned: tests that look at the log itself (`oldest_revision()`, a watch
from a revision in the past) first `await settle(storage)`.
"""
from __future__ import annotations

import asyncio
import gc
import pathlib
import time
from typing import Any, Awaitable, Callable

import pytest

from kapi.storage.factory import create_storage
from kapi.storage.interfaces import (
    KeyNotFoundError,
    Object,
    RevisionNotYetError,
    RevisionTooOldError,
    Storage,
    WatcherOverflowError,
    WatchEvent,
    Watcher,
)
from kapi.storage.memory import MemoryStorage

FOOS = "/registry/hello.zeng.dev/foos/"
PREFIX = FOOS + "default/"
FOOSX = "/registry/hello.zeng.dev/foosx/default/"

# A store with watcher_count(): IndexedStorage (memory, file) or EtcdStorage.
AnyStorage = Any
Make = Callable[..., Awaitable[AnyStorage]]
Settle = Callable[[AnyStorage], Awaitable[None]]


def foo(name: str, **spec: Any) -> Object:
    return {"kind": "Foo", "metadata": {"name": name, "uid": f"uid-{name}"}, "spec": dict(spec)}


def set_size(size: int) -> Callable[[Object | None], Object]:
    def update(cur: Object | None) -> Object:
        assert cur is not None
        cur["spec"]["size"] = size
        return cur

    return update


def names(objs: list[Object]) -> list[str]:
    return [o["metadata"]["name"] for o in objs]


@pytest.fixture
async def storage(make: Make) -> AnyStorage:
    return await make()


async def take(watcher: Watcher, n: int, timeout: float = 5.0) -> list[WatchEvent]:
    out: list[WatchEvent] = []

    async def run() -> None:
        async for ev in watcher:
            out.append(ev)
            if len(out) == n:
                return

    await asyncio.wait_for(run(), timeout)
    return out


async def nothing_queued(watcher: Watcher) -> bool:
    try:
        await asyncio.wait_for(watcher.__anext__(), 0.05)
    except asyncio.TimeoutError:
        return True
    return False


# ----- events -----------------------------------------------------------------


async def test_watch_added_modified_deleted(storage: AnyStorage) -> None:
    assert isinstance(storage, Storage)
    base = await storage.current_revision()
    async with storage.watch(PREFIX, base) as w:
        assert isinstance(w, Watcher)
        created = await storage.create(PREFIX + "a", foo("a", size=1))
        updated = await storage.guaranteed_update(PREFIX + "a", set_size(2))
        await storage.guaranteed_update(PREFIX + "a", set_size(2))  # no-op: no event
        deleted = await storage.delete(PREFIX + "a")
        events = await take(w, 3)
        assert await nothing_queued(w)
    assert [(e.type, e.key, e.revision) for e in events] == [
        ("ADDED", PREFIX + "a", base + 1), ("MODIFIED", PREFIX + "a", base + 2),
        ("DELETED", PREFIX + "a", base + 3),
    ]
    added, modified, gone = events
    assert added.object == created and added.prev is None
    assert modified.object == updated and modified.prev == created
    # DELETED carries the last state, stamped with the delete's revision.
    assert gone.object == deleted and gone.object["spec"] == {"size": 2}
    assert gone.object["metadata"]["resourceVersion"] == str(base + 3)
    assert gone.prev == updated
    assert gone.object_data and isinstance(gone.object_data, bytes)


async def test_events_are_private_copies(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    w1, w2 = storage.watch(PREFIX, base), storage.watch(PREFIX, base)
    await storage.create(PREFIX + "a", foo("a", items=[1]))
    (e1,), (e2,) = await take(w1, 1), await take(w2, 1)
    e1.object["spec"]["items"].append(2)
    assert e2.object["spec"]["items"] == [1]
    assert (await storage.get(PREFIX + "a"))["spec"]["items"] == [1]
    w1.close()
    w2.close()


async def test_prefix_filtering(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    foos, one = storage.watch(FOOS, base), storage.watch(PREFIX + "b", base)
    await storage.create(FOOSX + "x", foo("x"))
    await storage.create(PREFIX + "a", foo("a"))
    await storage.create(FOOS + "other/b", foo("b"))
    await storage.create(PREFIX + "b", foo("b"))
    await storage.create("/registry/hello.zeng.dev/foo/default/y", foo("y"))
    assert [e.key for e in await take(foos, 3)] == [PREFIX + "a", FOOS + "other/b", PREFIX + "b"]
    assert [e.revision for e in await take(one, 1)] == [base + 4]
    assert await nothing_queued(foos) and await nothing_queued(one)


@pytest.mark.parametrize("settled", [True, False], ids=["replayed", "in-flight"])
async def test_watch_replays_missed_events_then_goes_live(
    storage: AnyStorage, settle: Settle, settled: bool
) -> None:
    base = await storage.current_revision()
    for name in "abc":
        await storage.create(PREFIX + name, foo(name))
    await storage.delete(PREFIX + "a")
    if settled:  # etcd: the events are in the log (otherwise some may still be on their way)
        await settle(storage)
    w = storage.watch(PREFIX, base + 2)
    await storage.guaranteed_update(PREFIX + "b", set_size(9))
    events = await take(w, 3)
    assert [(e.type, e.revision, e.key) for e in events] == [
        ("ADDED", base + 3, PREFIX + "c"), ("DELETED", base + 4, PREFIX + "a"),
        ("MODIFIED", base + 5, PREFIX + "b"),
    ]
    assert await nothing_queued(w)
    w.close()


async def test_watch_from_current_revision_sees_only_new(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a"))
    w = storage.watch(PREFIX, await storage.current_revision())
    assert await nothing_queued(w)
    await storage.create(PREFIX + "b", foo("b"))
    assert [(e.key, e.revision) for e in await take(w, 1)] == [(PREFIX + "b", base + 2)]
    w.close()


async def test_too_old_and_too_new_revisions(make: Make, settle: Settle) -> None:
    storage = await make(event_window=3)
    base = await storage.current_revision()
    assert storage.oldest_revision() == base
    for i in range(5):
        await storage.create(PREFIX + f"o{i}", foo(f"o{i}"))
    await settle(storage)
    assert storage.oldest_revision() == base + 2  # events 3, 4, 5 kept
    with pytest.raises(RevisionTooOldError) as info:
        storage.watch(PREFIX, base + 1)  # raised by watch() itself, before any iteration
    assert info.value.key == PREFIX
    assert str(info.value) == f"too old resource version: {base + 1} ({base + 2})"
    assert (info.value.revision, info.value.oldest) == (base + 1, base + 2)
    if storage.backend_name != "etcd":
        # The in-process backends rebuild older states from the event window;
        # etcd serves a list or get at any revision it has not compacted
        # (as kube-apiserver does): that is `test_etcd_backend.py`'s part.
        with pytest.raises(RevisionTooOldError):
            await storage.list(PREFIX, revision=base + 1)
        with pytest.raises(RevisionTooOldError):
            await storage.get(PREFIX + "o0", revision=base + 1)
    w = storage.watch(PREFIX, base + 2)  # the boundary itself still works
    assert [e.revision for e in await take(w, 3)] == [base + 3, base + 4, base + 5]
    assert names((await storage.list(PREFIX, revision=base + 2)).items) == ["o0", "o1"]
    with pytest.raises(RevisionNotYetError) as future:
        storage.watch(PREFIX, base + 6)
    assert (future.value.revision, future.value.current) == (base + 6, base + 5)
    with pytest.raises(RevisionNotYetError):
        await storage.list(PREFIX, revision=base + 6)
    assert storage.watcher_count() == 1
    w.close()


# ----- back-pressure and fan-out ------------------------------------------------


async def test_slow_watcher_never_blocks_writers(make: Make, request: pytest.FixtureRequest) -> None:
    memory = "memory" in request.node.callspec.id
    writes, queue = (5000, 1000) if memory else (300, 50)  # fsync makes file and etcd writes slow
    storage = await make(watch_queue_size=queue)
    base = await storage.current_revision()
    slow = storage.watch(PREFIX, base)  # never read until the end
    fast_events: list[int] = []

    async def fast() -> None:
        async with storage.watch(PREFIX, base) as w:
            async for ev in w:
                fast_events.append(ev.revision)
                if ev.revision == base + writes:
                    return

    reader = asyncio.create_task(fast())
    await asyncio.sleep(0)

    async def writer(k: int) -> None:
        for i in range(k, writes, 5):
            await storage.create(PREFIX + f"o{i}", foo(f"o{i}"))
            await asyncio.sleep(0)  # as between requests: the fast reader gets to run

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(writer(k) for k in range(5))), 60)
    if memory:
        assert time.perf_counter() - started < 3
    await asyncio.wait_for(reader, 10)
    assert fast_events == list(range(base + 1, base + writes + 1))
    assert storage.watcher_count() == 0  # the slow one was dropped, the fast one closed
    with pytest.raises(WatcherOverflowError):
        await slow.__anext__()  # terminated: no queued event, the error instead
    with pytest.raises(StopAsyncIteration):
        await slow.__anext__()


async def test_fifty_watchers_get_every_event(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    watchers = [storage.watch(PREFIX, base) for _ in range(50)]
    results = [asyncio.create_task(take(w, 30)) for w in watchers]
    for i in range(20):
        await storage.create(PREFIX + f"o{i}", foo(f"o{i}"))
    for i in range(10):
        await storage.delete(PREFIX + f"o{i}")
    expected = [("ADDED", base + i + 1) for i in range(20)] + [("DELETED", base + 21 + i) for i in range(10)]
    for events in await asyncio.gather(*results):
        assert [(e.type, e.revision) for e in events] == expected
    assert storage.watcher_count() == 50
    for w in watchers:
        w.close()
    assert storage.watcher_count() == 0


# ----- release ------------------------------------------------------------------


async def test_close_wakes_a_waiting_consumer_and_unregisters(storage: AnyStorage) -> None:
    w = storage.watch(PREFIX, await storage.current_revision())
    waiting = asyncio.create_task(take(w, 1))
    await asyncio.sleep(0.01)
    assert storage.watcher_count() == 1
    w.close()
    w.close()  # idempotent
    await asyncio.wait_for(waiting, 1)  # iteration ended instead of waiting forever
    assert storage.watcher_count() == 0
    await storage.create(PREFIX + "a", foo("a"))
    with pytest.raises(StopAsyncIteration):
        await w.__anext__()


async def test_cancelled_consumer_releases_its_watcher(storage: AnyStorage) -> None:
    base = await storage.current_revision()

    async def with_context() -> None:
        async with storage.watch(PREFIX, base) as w:
            async for _ in w:
                pass

    async def bare() -> None:
        async for _ in storage.watch(PREFIX, base):
            pass

    for consume in (with_context, bare):
        task = asyncio.create_task(consume())
        await asyncio.sleep(0.01)
        assert storage.watcher_count() == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        del task
        await asyncio.sleep(0)  # let the loop drop its last handle on the cancelled task
        gc.collect()  # the bare watcher is released when collected
        assert storage.watcher_count() == 0

    storage.watch(PREFIX, base)  # dropped at once
    gc.collect()
    assert storage.watcher_count() == 0


async def test_timed_out_next_keeps_the_watcher(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    async with storage.watch(PREFIX, base) as w:
        assert await nothing_queued(w)  # a wait_for timeout, as for bookmarks
        await storage.create(PREFIX + "a", foo("a"))
        assert [e.revision for e in await take(w, 1)] == [base + 1]
    assert storage.watcher_count() == 0


async def test_store_close_ends_watches(make: Make) -> None:
    storage = await make()
    w = storage.watch(PREFIX, await storage.current_revision())
    waiting = asyncio.create_task(take(w, 1))
    await asyncio.sleep(0.01)
    await storage.close()
    await asyncio.wait_for(waiting, 1)
    assert storage.watcher_count() == 0


# ----- list and get at a revision ----------------------------------------------


async def test_list_at_revision_undoes_later_writes(storage: AnyStorage) -> None:
    base = await storage.current_revision()
    for name in "bdf":
        await storage.create(PREFIX + name, foo(name, size=1))
    await storage.create(FOOSX + "x", foo("x"))
    at = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a"))  # created after
    await storage.guaranteed_update(PREFIX + "b", set_size(2))  # updated after
    await storage.delete(PREFIX + "d")  # deleted after
    await storage.create(PREFIX + "e", foo("e"))
    await storage.delete(PREFIX + "e")  # created and deleted after
    await storage.delete(PREFIX + "f")
    await storage.create(PREFIX + "f", foo("f", size=3))  # deleted and re-created after
    await storage.create(FOOSX + "y", foo("y"))

    old = await storage.list(PREFIX, revision=at)
    assert old.revision == at and old.remaining == 0 and old.continue_key == ""
    assert names(old.items) == ["b", "d", "f"]
    assert [o["spec"]["size"] for o in old.items] == [1, 1, 1]
    assert [o["metadata"]["resourceVersion"] for o in old.items] == [str(base + r) for r in (1, 2, 3)]
    assert names((await storage.list(FOOSX, revision=at)).items) == ["x"]
    assert names((await storage.list(PREFIX, revision=at + 1)).items) == ["a", "b", "d", "f"]
    now = await storage.list(PREFIX)
    assert names(now.items) == ["a", "b", "f"] and now.revision == await storage.current_revision()
    same = await storage.list(PREFIX, revision=now.revision)
    assert same.items == now.items and same.revision == now.revision

    assert (await storage.get(PREFIX + "b", revision=at))["spec"]["size"] == 1
    assert (await storage.get(PREFIX + "b"))["spec"]["size"] == 2
    assert (await storage.get(PREFIX + "d", revision=at))["metadata"]["name"] == "d"
    with pytest.raises(KeyNotFoundError):
        await storage.get(PREFIX + "a", revision=at)
    with pytest.raises(KeyNotFoundError):
        await storage.get(PREFIX + "d")


async def test_paginated_list_at_a_revision_stays_consistent(storage: AnyStorage) -> None:
    for i in range(0, 40, 2):  # o00, o02, ... o38: 20 objects
        await storage.create(PREFIX + f"o{i:02}", foo(f"o{i:02}", size=0))
    expected = [f"o{i:02}" for i in range(0, 40, 2)]
    first = await storage.list(PREFIX, limit=7)
    revision, seen = first.revision, names(first.items)
    assert first.remaining == 13
    page, step = first, 0
    remaining = [page.remaining]
    while page.continue_key:
        step += 1  # writes between pages: before, at and after the cursor
        await storage.create(PREFIX + f"o{2 * step + 1:02}", foo("new"))
        await storage.delete(PREFIX + f"o{38 - 2 * step:02}")
        await storage.guaranteed_update(PREFIX + f"o{4 * step:02}", set_size(step))
        await storage.create(PREFIX + f"a{step}", foo("before"))
        page = await storage.list(PREFIX, limit=7, continue_key=page.continue_key, revision=revision)
        assert page.revision == revision
        seen += names(page.items)
        remaining.append(page.remaining)
        assert all(o["spec"]["size"] == 0 for o in page.items)
    assert seen == expected and remaining == [13, 6, 0]
    assert names((await storage.list(PREFIX, revision=revision)).items) == expected


async def test_factory_passes_event_window(tmp_path: pathlib.Path) -> None:
    for backend in ("memory", "file"):
        store = create_storage(backend, tmp_path / backend, event_window=2)
        for i in range(4):
            await store.create(PREFIX + f"o{i}", foo(f"o{i}"))
        assert store.oldest_revision() == 2
        await store.close()
    with pytest.raises(ValueError):
        MemoryStorage(event_window=-1)
