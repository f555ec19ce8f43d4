"""Whole-store operations of logical clusters: `snapshot`, `restore`, `compact` and `drop`, on every backend.

The memory and file backends keep a restored object's bytes and revisions as the snapshot had them; etcd
gives restored objects the revisions of its own puts (its revision is global), so on etcd a restored store
answers the same objects with other resourceVersions. etcd stores share the session's etcd under prefixes
of their own, except in the compaction test, which compacts an etcd of its own (`local_etcd`).
"""
from __future__ import annotations

import asyncio
import copy
import pathlib
import uuid
from typing import Any, Awaitable, Callable

import pytest

from kapi.storage.etcd import EtcdStorage
from kapi.storage.file import FileStorage
from kapi.storage.interfaces import (
    KeyNotFoundError,
    Object,
    RevisionTooOldError,
    Snapshot,
    Watcher,
    WatchEvent,
)
from kapi.storage.memory import MemoryStorage

FOOS = "/registry/hello.zeng.dev/foos/default/"
BARS = "/registry/hello.zeng.dev/bars/other/"
ALL = "/registry/"

AnyStorage = Any  # MemoryStorage | FileStorage | EtcdStorage
Make = Callable[..., Awaitable[AnyStorage]]
Settle = Callable[[Any], Awaitable[None]]


def foo(name: str, namespace: str = "default", **spec: Any) -> Object:
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo",
            "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{name}"}, "spec": dict(spec)}


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


def without_rv(obj: Object) -> Object:
    out = copy.deepcopy(obj)
    out["metadata"].pop("resourceVersion", None)
    return out


def is_etcd(store: AnyStorage) -> bool:
    return getattr(store, "backend_name", "") == "etcd"


def comparable(store: AnyStorage, objs: list[Object]) -> list[Object]:
    """What a restored store must answer the same: everything, or on etcd everything but resourceVersion."""
    return [without_rv(o) for o in objs] if is_etcd(store) else objs


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


async def filled(make: Make) -> AnyStorage:
    """A store with objects under two resources, one of them updated and one deleted."""
    store = await make()
    await store.create(FOOS + "a", foo("a", size=1))
    await store.create(FOOS + "b", foo("b", size=2))
    await store.create(FOOS + "gone", foo("gone"))
    await store.create(BARS + "x", foo("x", namespace="other", size=3))
    await store.guaranteed_update(FOOS + "a", set_size(10))
    await store.delete(FOOS + "gone")
    return store


# ----- snapshot --------------------------------------------------------------------------------------------------


async def test_a_snapshot_holds_every_object_at_the_current_revision(make: Make) -> None:
    store = await filled(make)
    snap = await store.snapshot()
    assert isinstance(snap, Snapshot)
    assert snap.revision == await store.current_revision()
    assert sorted(snap.entries) == [BARS + "x", FOOS + "a", FOOS + "b"]
    objects = {o["metadata"]["name"]: o for o in (await store.list(ALL)).items}
    for key, (revision, data) in snap.entries.items():
        assert isinstance(data, bytes)
        assert revision == rv(objects[key.rsplit("/", 1)[1]])  # the revision of the object's last write


async def test_a_snapshot_of_an_empty_store_is_empty(make: Make) -> None:
    store = await make()
    snap = await store.snapshot()
    assert snap.entries == {}
    assert snap.revision == await store.current_revision()


async def test_later_writes_do_not_change_a_snapshot(make: Make) -> None:
    store = await filled(make)
    snap = await store.snapshot()
    before = copy.deepcopy(snap.entries)
    await store.guaranteed_update(FOOS + "b", set_size(99))
    await store.delete(BARS + "x")
    await store.create(FOOS + "c", foo("c"))
    assert snap.entries == before


# ----- restore ---------------------------------------------------------------------------------------------------


async def test_a_restored_store_answers_as_the_original(make: Make) -> None:
    original = await filled(make)
    snap = await original.snapshot()
    restored = await make()
    await restored.restore(snap)

    for prefix in (ALL, FOOS, BARS):
        want = (await original.list(prefix)).items
        got = (await restored.list(prefix)).items
        assert comparable(restored, got) == comparable(restored, want), prefix
    assert names((await restored.list(FOOS)).items) == ["a", "b"]
    for key in (FOOS + "a", FOOS + "b", BARS + "x"):
        assert comparable(restored, [await restored.get(key)]) == comparable(restored, [await original.get(key)])
    assert (await restored.get(FOOS + "a"))["spec"] == {"size": 10}
    with pytest.raises(KeyNotFoundError):
        await restored.get(FOOS + "gone")
    assert await restored.count(FOOS) == 2 and await restored.count(ALL) == 3


async def test_a_restored_in_process_store_keeps_the_revisions(make: Make) -> None:
    original = await filled(make)
    snap = await original.snapshot()
    restored = await make()
    await restored.restore(snap)
    if is_etcd(restored):  # etcd's revision is global: restored objects get the revisions of their puts
        assert await restored.current_revision() > snap.revision
        return
    assert await restored.current_revision() == snap.revision
    assert [rv(o) for o in (await restored.list(ALL)).items] == [rv(o) for o in (await original.list(ALL)).items]
    created = await restored.create(FOOS + "new", foo("new"))
    assert rv(created) == snap.revision + 1


async def test_writes_to_a_restored_store_touch_neither_the_snapshot_nor_the_original(make: Make) -> None:
    original = await filled(make)
    snap = await original.snapshot()
    entries = copy.deepcopy(snap.entries)
    listed = (await original.list(ALL)).items
    revision = await original.current_revision()

    fork = await make()
    await fork.restore(snap)
    await fork.guaranteed_update(FOOS + "a", set_size(-1))
    await fork.delete(FOOS + "b")
    await fork.create(FOOS + "c", foo("c"))
    await fork.delete(BARS + "x")

    assert snap.entries == entries
    assert (await original.list(ALL)).items == listed
    if not is_etcd(original):  # on etcd the fork's writes move the shared revision
        assert await original.current_revision() == revision
    assert names((await fork.list(ALL)).items) == ["a", "c"]
    assert (await fork.get(FOOS + "a"))["spec"] == {"size": -1}

    # and a second fork of the same snapshot starts from the snapshot, not from the first fork
    second = await make()
    await second.restore(snap)
    assert comparable(second, (await second.list(ALL)).items) == comparable(second, listed)


async def test_writes_to_the_original_do_not_reach_a_fork(make: Make) -> None:
    original = await filled(make)
    snap = await original.snapshot()
    fork = await make()
    await fork.restore(snap)
    want = (await fork.list(ALL)).items
    await original.guaranteed_update(FOOS + "a", set_size(7))
    await original.delete(FOOS + "b")
    await original.create(FOOS + "z", foo("z"))
    assert (await fork.list(ALL)).items == want


async def test_an_empty_snapshot_restores_an_empty_store(make: Make) -> None:
    empty = await make()
    snap = await empty.snapshot()
    fork = await make()
    await fork.restore(snap)
    assert (await fork.list(ALL)).items == []
    await fork.create(FOOS + "a", foo("a"))
    assert names((await fork.list(ALL)).items) == ["a"]


async def test_a_restored_store_serves_watches_from_the_restore_on(make: Make, settle: Settle) -> None:
    original = await filled(make)
    snap = await original.snapshot()
    fork = await make()
    await fork.restore(snap)
    await settle(fork)
    watcher = fork.watch(FOOS, await fork.current_revision())
    try:
        updated = await fork.guaranteed_update(FOOS + "b", set_size(5))
        [event] = await take(watcher, 1)
        assert (event.type, event.key, event.revision) == ("MODIFIED", FOOS + "b", rv(updated))
        assert event.object["spec"] == {"size": 5}
    finally:
        watcher.close()


async def test_only_an_empty_memory_store_can_be_restored() -> None:
    source = MemoryStorage()
    await source.create(FOOS + "a", foo("a"))
    snap = await source.snapshot()

    holding = MemoryStorage()
    await holding.create(FOOS + "other", foo("other"))
    with pytest.raises(ValueError):
        await holding.restore(snap)
    assert names((await holding.list(ALL)).items) == ["other"]  # untouched

    emptied = MemoryStorage()  # no objects left, but it has a history
    await emptied.create(FOOS + "t", foo("t"))
    await emptied.delete(FOOS + "t")
    with pytest.raises(ValueError):
        await emptied.restore(snap)

    restored = MemoryStorage()
    await restored.restore(snap)
    with pytest.raises(ValueError):  # nor twice
        await restored.restore(snap)


async def test_a_non_empty_file_store_cannot_be_restored(tmp_path: pathlib.Path) -> None:
    source = MemoryStorage()
    await source.create(FOOS + "a", foo("a"))
    holding = FileStorage(tmp_path / "f")
    await holding.create(FOOS + "other", foo("other"))
    with pytest.raises(ValueError):
        await holding.restore(await source.snapshot())
    assert names((await FileStorage(tmp_path / "f").list(ALL)).items) == ["other"]


async def test_a_file_restore_is_on_disk(tmp_path: pathlib.Path) -> None:
    original = FileStorage(tmp_path / "original")
    await original.create(FOOS + "a", foo("a", size=1))
    await original.create(BARS + "x", foo("x", namespace="other"))
    await original.guaranteed_update(FOOS + "a", set_size(2))
    await original.create(FOOS + "gone", foo("gone"))
    await original.delete(FOOS + "gone")
    snap = await original.snapshot()

    fork = FileStorage(tmp_path / "fork")
    await fork.restore(snap)
    listed = (await fork.list(ALL)).items
    await fork.close()
    assert (tmp_path / "fork" / "registry" / "hello.zeng.dev" / "foos" / "default" / "a.yaml").is_file()

    reopened = FileStorage(tmp_path / "fork")
    assert (await reopened.list(ALL)).items == listed == (await original.list(ALL)).items
    assert await reopened.current_revision() == snap.revision  # revisions never go back after a restart
    created = await reopened.create(FOOS + "later", foo("later"))
    assert rv(created) == snap.revision + 1
    await reopened.close()
    # the fork's own write is on the fork's disk only
    assert names((await FileStorage(tmp_path / "original").list(FOOS)).items) == ["a"]


async def test_a_file_restore_from_a_memory_snapshot_survives_reopening(tmp_path: pathlib.Path) -> None:
    source = MemoryStorage()
    for i in range(5):
        await source.create(FOOS + f"m{i}", foo(f"m{i}", i=i))
    snap = await source.snapshot()
    fork = FileStorage(tmp_path / "fork")
    await fork.restore(snap)
    await fork.close()
    reopened = FileStorage(tmp_path / "fork")
    assert (await reopened.list(ALL)).items == (await source.list(ALL)).items
    assert await reopened.current_revision() == snap.revision


async def test_an_etcd_restore_takes_several_transactions(make_etcd_storage: Make) -> None:
    """More objects than one etcd transaction may hold (128 operations): all of them arrive."""
    source = MemoryStorage()
    for i in range(300):
        await source.create(FOOS + f"o{i:03}", foo(f"o{i:03}", i=i))
    snap = await source.snapshot()
    fork = await make_etcd_storage()
    await fork.restore(snap)
    got = (await fork.list(FOOS)).items
    assert [without_rv(o) for o in got] == [without_rv(o) for o in (await source.list(FOOS)).items]
    assert await fork.count(FOOS) == 300


# ----- compact ---------------------------------------------------------------------------------------------------


async def compaction_checks(store: AnyStorage, settle: Settle) -> None:
    first = await store.create(FOOS + "a", foo("a", size=1))
    await store.create(FOOS + "b", foo("b"))
    page = await store.list(FOOS, limit=1)
    assert page.continue_key
    await store.guaranteed_update(FOOS + "a", set_size(2))
    await settle(store)
    before = await store.current_revision()
    live = store.watch(FOOS, before)  # opened before the compaction
    try:
        compacted = await store.compact()
        assert compacted == before

        with pytest.raises(RevisionTooOldError):
            store.watch(FOOS, rv(first))
        with pytest.raises(RevisionTooOldError):
            await store.list(FOOS, revision=rv(first))
        with pytest.raises(RevisionTooOldError):
            await store.get(FOOS + "a", revision=rv(first))
        with pytest.raises(RevisionTooOldError):  # a list continuation at a revision before the compaction
            await store.list(FOOS, limit=1, continue_key=page.continue_key, revision=page.revision)
        at = await store.list(FOOS, revision=compacted)  # the compaction revision itself is kept
        assert names(at.items) == ["a", "b"] and at.items[0]["spec"] == {"size": 2}
        assert (await store.get(FOOS + "a"))["spec"] == {"size": 2}
        store.watch(FOOS, compacted).close()  # from the compaction revision on: served

        created = await store.create(FOOS + "c", foo("c"))
        updated = await store.guaranteed_update(FOOS + "b", set_size(3))
        events = await take(live, 2)
        assert [(e.type, e.key, e.revision) for e in events] == [
            ("ADDED", FOOS + "c", rv(created)), ("MODIFIED", FOOS + "b", rv(updated))]
        assert not live.closed
    finally:
        live.close()


@pytest.fixture(params=["memory", "file"])
def in_process(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> AnyStorage:
    """A memory or file store (etcd's compaction is global to the etcd: see test_compaction_on_etcd)."""
    return MemoryStorage() if request.param == "memory" else FileStorage(tmp_path / "data")


async def test_compaction_in_process(in_process: AnyStorage, settle: Settle) -> None:
    try:
        await compaction_checks(in_process, settle)
    finally:
        await in_process.close()


async def test_compaction_on_etcd(local_etcd: Any, new_etcd_storage: Callable[..., EtcdStorage],
                                  settle: Settle) -> None:
    etcd = local_etcd()
    store = new_etcd_storage(endpoints=etcd.endpoints)
    await store.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 5
        while not (await store.health())["watch"]["connected"]:  # else the feed could start after the compaction
            assert loop.time() < deadline, "the etcd watch feed did not connect"
            await asyncio.sleep(0.05)
        await compaction_checks(store, settle)
    finally:
        await store.close()


async def test_compaction_of_an_untouched_store(in_process: AnyStorage) -> None:
    assert await in_process.compact() == 0
    await in_process.create(FOOS + "a", foo("a"))
    assert names((await in_process.list(FOOS, revision=1)).items) == ["a"]
    await in_process.close()


# ----- drop ------------------------------------------------------------------------------------------------------


async def test_drop_empties_a_memory_store() -> None:
    store = MemoryStorage()
    await store.create(FOOS + "a", foo("a"))
    await store.create(BARS + "x", foo("x", namespace="other"))
    await store.drop()
    assert (await store.list(ALL)).items == []
    assert await store.count(ALL) == 0
    with pytest.raises(KeyNotFoundError):
        await store.get(FOOS + "a")
    assert (await store.snapshot()).entries == {}
    await store.close()


async def test_drop_removes_a_file_stores_directory(tmp_path: pathlib.Path) -> None:
    root = tmp_path / "clusters" / "a"
    store = FileStorage(root)
    await store.create(FOOS + "a", foo("a"))
    await store.create(BARS + "x", foo("x", namespace="other"))
    neighbour = FileStorage(tmp_path / "clusters" / "b")
    await neighbour.create(FOOS + "n", foo("n"))
    await neighbour.close()

    await store.drop()
    assert (await store.list(ALL)).items == [] and await store.count(ALL) == 0
    await store.close()
    assert not root.exists()
    assert (tmp_path / "clusters").is_dir()
    assert (await FileStorage(root).list(ALL)).items == []  # nothing comes back
    assert names((await FileStorage(tmp_path / "clusters" / "b").list(ALL)).items) == ["n"]


async def test_drop_removes_only_its_own_etcd_prefix(new_etcd_storage: Callable[..., EtcdStorage]) -> None:
    base = f"/t-{uuid.uuid4().hex[:12]}"
    prefixes = {"dropped": f"{base}-clusters/a", "root": base, "sibling": f"{base}-clusters/ab",
                "longer": f"{base}-clusters/a-b"}
    stores = {role: new_etcd_storage(prefix=prefix) for role, prefix in prefixes.items()}
    try:
        for role, store in stores.items():
            await store.start()
            await store.create(FOOS + role, foo(role))
            await store.create(BARS + role, foo(role, namespace="other"))
        await stores["dropped"].drop()
        assert (await stores["dropped"].list(ALL)).items == []
        for role in ("root", "sibling", "longer"):
            assert names((await stores[role].list(ALL)).items) == [role, role], role
    finally:
        for store in stores.values():
            await store.close()
    again = new_etcd_storage(prefix=prefixes["dropped"])  # a new server on the same prefix finds nothing
    await again.start()
    try:
        assert await again.count(ALL) == 0
    finally:
        await again.close()
