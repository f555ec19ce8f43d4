"""One conformance suite for every storage backend (memory, file, etcd).

Modelled on k8s.io/apiserver `pkg/storage/testing/store_tests.go`: the same
tests run against each backend through the `Storage` protocol only, so the
backends cannot drift apart. File-only behaviour (restart, key safety,
atomic writes) lives in `test_file_backend.py`, etcd-only behaviour in
`test_etcd_backend.py`.

etcd's revision is global to the etcd (the session shares one, each store
under its own prefix), so tests assert revisions relative to `base`, the
revision when the test started; a new in-process store starts at 0, which
`test_implements_protocol` checks. Each write still adds exactly one, as
tests run one at a time and nothing else writes to that etcd meanwhile.
"""
from __future__ import annotations

import asyncio
import pathlib
import uuid
from typing import Any, Callable

import pytest

from kapi.storage.factory import create_storage
from kapi.storage.interfaces import (
    ConflictError,
    KeyExistsError,
    KeyNotFoundError,
    Object,
    Preconditions,
    Storage,
)

PREFIX = "/registry/hello.zeng.dev/foos/default/"


def foo(name: str, uid: str = "", **spec: Any) -> Object:
    return {
        "apiVersion": "hello.zeng.dev/v1",
        "kind": "Foo",
        "metadata": {"name": name, "namespace": "default", "uid": uid or f"uid-{name}"},
        "spec": dict(spec),
    }


def rv(obj: Object) -> str:
    return str(obj["metadata"]["resourceVersion"])


@pytest.fixture(params=["memory", "file", "etcd"])
async def storage(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> Any:
    if request.param == "etcd":
        endpoints = request.getfixturevalue("etcd_endpoints")  # the session's etcd
        store = create_storage("etcd", None, etcd_servers=[endpoints], etcd_prefix=f"/t-{uuid.uuid4().hex}")
    else:
        store = create_storage(request.param, tmp_path / "data")
    try:
        await store.start()
        yield store
    finally:
        await store.close()


def in_process(storage: Storage) -> bool:
    """memory and file: a new store starts at revision 0."""
    return getattr(storage, "backend_name", "") != "etcd"


# ----- create / get ---------------------------------------------------------


async def test_implements_protocol(storage: Storage) -> None:
    assert isinstance(storage, Storage)
    base = await storage.current_revision()
    if in_process(storage):
        assert base == 0
    else:
        assert base >= 0


async def test_create_get_roundtrip(storage: Storage) -> None:
    base = await storage.current_revision()
    src = foo("a", size=1)
    src["metadata"]["resourceVersion"] = "999"
    created = await storage.create(PREFIX + "a", src)
    assert rv(created) == str(base + 1) == str(await storage.current_revision())
    assert src["metadata"]["resourceVersion"] == "999"  # input not mutated
    got = await storage.get(PREFIX + "a")
    assert got == created
    assert got["spec"] == {"size": 1}
    second = await storage.create(PREFIX + "b", foo("b"))
    assert rv(second) == str(base + 2)


async def test_create_existing(storage: Storage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a", size=1))
    with pytest.raises(KeyExistsError) as info:
        await storage.create(PREFIX + "a", foo("a", size=2))
    assert info.value.key == PREFIX + "a"
    assert (await storage.get(PREFIX + "a"))["spec"] == {"size": 1}
    assert await storage.current_revision() == base + 1


async def test_get_missing(storage: Storage) -> None:
    with pytest.raises(KeyNotFoundError):
        await storage.get(PREFIX + "nope")


async def test_returned_objects_are_copies(storage: Storage) -> None:
    created = await storage.create(PREFIX + "a", foo("a", items=[1]))
    created["spec"]["items"].append(2)
    got = await storage.get(PREFIX + "a")
    got["metadata"]["name"] = "changed"
    got["spec"]["items"].append(3)
    listed = (await storage.list(PREFIX)).items[0]
    listed["spec"]["items"].append(4)
    def mutate(cur: Object | None) -> Object:
        assert cur is not None
        cur["spec"]["items"].append(5)
        raise RuntimeError("abort after mutating the argument")

    with pytest.raises(RuntimeError):
        await storage.guaranteed_update(PREFIX + "a", mutate)
    fresh = await storage.get(PREFIX + "a")
    assert fresh["spec"]["items"] == [1] and fresh["metadata"]["name"] == "a"


# ----- list / count -----------------------------------------------------------


async def test_list_order_pagination_and_isolation(storage: Storage) -> None:
    base = await storage.current_revision()
    for name in ["c", "a", "e", "b", "d"]:
        await storage.create(PREFIX + name, foo(name))
    await storage.create("/registry/hello.zeng.dev/foosx/default/z", foo("z"))
    await storage.create("/registry/hello.zeng.dev/foos/other/y", foo("y"))
    await storage.create("/registry/hello.zeng.dev/foo/default/w", foo("w"))

    full = await storage.list(PREFIX)
    assert [o["metadata"]["name"] for o in full.items] == ["a", "b", "c", "d", "e"]
    assert full.continue_key == "" and full.remaining == 0
    assert full.revision == await storage.current_revision() == base + 8

    names: list[str] = []
    cont = ""
    pages = 0
    remaining: list[int | None] = []
    while True:
        page = await storage.list(PREFIX, limit=2, continue_key=cont)
        names += [o["metadata"]["name"] for o in page.items]
        remaining.append(page.remaining)
        pages += 1
        if not page.continue_key:
            break
        cont = page.continue_key
    assert names == ["a", "b", "c", "d", "e"] and pages == 3
    assert remaining == [3, 1, 0]

    foos = await storage.list("/registry/hello.zeng.dev/foos/")
    assert [o["metadata"]["name"] for o in foos.items] == ["a", "b", "c", "d", "e", "y"]
    assert len((await storage.list("/registry/")).items) == 8
    assert (await storage.list("/registry/nothing/")).items == []


async def test_list_exact_limit_has_no_continue(storage: Storage) -> None:
    for name in ["a", "b"]:
        await storage.create(PREFIX + name, foo(name))
    page = await storage.list(PREFIX, limit=2)
    assert len(page.items) == 2 and page.continue_key == "" and page.remaining == 0


async def test_count(storage: Storage) -> None:
    assert await storage.count(PREFIX) == 0
    for name in ["a", "b", "c"]:
        await storage.create(PREFIX + name, foo(name))
    await storage.create("/registry/hello.zeng.dev/foosx/default/a", foo("a"))
    assert await storage.count(PREFIX) == 3
    assert await storage.count("/registry/hello.zeng.dev/foos/") == 3
    assert await storage.count("/registry/") == 4
    await storage.delete(PREFIX + "b")
    assert await storage.count(PREFIX) == 2


# ----- guaranteed_update -------------------------------------------------------


def set_size(size: int) -> Callable[[Object | None], Object]:
    def update(cur: Object | None) -> Object:
        assert cur is not None
        cur["spec"]["size"] = size
        return cur

    return update


async def test_update_applies_and_bumps_revision(storage: Storage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a", size=1))
    await storage.create(PREFIX + "b", foo("b"))
    updated = await storage.guaranteed_update(PREFIX + "a", set_size(2))
    assert updated["spec"]["size"] == 2 and rv(updated) == str(base + 3)
    assert await storage.get(PREFIX + "a") == updated
    assert await storage.current_revision() == base + 3


async def test_async_try_update(storage: Storage) -> None:
    await storage.create(PREFIX + "a", foo("a", size=1))

    async def update(cur: Object | None) -> Object:
        await asyncio.sleep(0)
        assert cur is not None
        cur["spec"]["size"] = 7
        return cur

    assert (await storage.guaranteed_update(PREFIX + "a", update))["spec"]["size"] == 7


async def test_noop_update_does_not_write(storage: Storage) -> None:
    base = await storage.current_revision()
    created = await storage.create(PREFIX + "a", foo("a", size=1))

    def same_but_stale_rv(cur: Object | None) -> Object:
        assert cur is not None
        cur["metadata"]["resourceVersion"] = "12345"
        return cur

    result = await storage.guaranteed_update(PREFIX + "a", same_but_stale_rv)
    assert result == created and rv(result) == str(base + 1)
    assert await storage.guaranteed_update(PREFIX + "a", set_size(1)) == created
    assert await storage.current_revision() == base + 1


@pytest.mark.parametrize(
    "pre",
    # the resourceVersion is relative to the base revision: an absolute "99" could be right on etcd
    [lambda base: Preconditions(uid="other"), lambda base: Preconditions(resource_version=str(base + 99))],
    ids=["uid", "resourceVersion"],
)
async def test_update_precondition_mismatch(
    storage: Storage, pre: Callable[[int], Preconditions]
) -> None:
    base = await storage.current_revision()
    created = await storage.create(PREFIX + "a", foo("a", size=1))
    called = False

    def update(cur: Object | None) -> Object:
        nonlocal called
        called = True
        return set_size(2)(cur)

    with pytest.raises(ConflictError):
        await storage.guaranteed_update(PREFIX + "a", update, preconditions=pre(base))
    assert not called
    assert await storage.get(PREFIX + "a") == created
    assert await storage.current_revision() == base + 1


async def test_update_preconditions_match(storage: Storage) -> None:
    created = await storage.create(PREFIX + "a", foo("a", size=1))
    pre = Preconditions(uid="uid-a", resource_version=rv(created))
    updated = await storage.guaranteed_update(PREFIX + "a", set_size(2), preconditions=pre)
    assert updated["spec"]["size"] == 2


async def test_update_missing(storage: Storage) -> None:
    base = await storage.current_revision()
    with pytest.raises(KeyNotFoundError):
        await storage.guaranteed_update(PREFIX + "a", set_size(1))
    assert await storage.current_revision() == base


async def test_update_ignore_not_found_creates(storage: Storage) -> None:
    base = await storage.current_revision()

    def create(cur: Object | None) -> Object:
        assert cur is None
        return foo("a", size=1)

    created = await storage.guaranteed_update(PREFIX + "a", create, ignore_not_found=True)
    assert rv(created) == str(base + 1) and await storage.get(PREFIX + "a") == created


async def test_try_update_raising_aborts(storage: Storage) -> None:
    base = await storage.current_revision()
    created = await storage.create(PREFIX + "a", foo("a", size=1))

    def boom(cur: Object | None) -> Object:
        raise ValueError("invalid")

    with pytest.raises(ValueError, match="invalid"):
        await storage.guaranteed_update(PREFIX + "a", boom)
    assert await storage.get(PREFIX + "a") == created
    assert await storage.current_revision() == base + 1


async def test_concurrent_updates_all_apply(storage: Storage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a", counter=0))
    calls = 0

    async def increment(cur: Object | None) -> Object:
        nonlocal calls
        calls += 1
        assert cur is not None
        value = cur["spec"]["counter"]
        await asyncio.sleep(0)  # let the other tasks read the same state
        cur["spec"]["counter"] = value + 1
        return cur

    await asyncio.gather(*(storage.guaranteed_update(PREFIX + "a", increment) for _ in range(20)))
    final = await storage.get(PREFIX + "a")
    assert final["spec"]["counter"] == 20
    assert rv(final) == str(base + 21) == str(await storage.current_revision())
    assert calls > 20  # conflicts really happened and were retried


# ----- delete ---------------------------------------------------------------------


async def test_delete_returns_last_state(storage: Storage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a", size=1))
    await storage.guaranteed_update(PREFIX + "a", set_size(2))
    deleted = await storage.delete(PREFIX + "a")
    assert deleted["spec"] == {"size": 2} and deleted["metadata"]["uid"] == "uid-a"
    assert await storage.current_revision() == base + 3
    assert rv(deleted) == str(base + 3)  # stamped with the deletion revision, like kube-apiserver
    with pytest.raises(KeyNotFoundError):
        await storage.get(PREFIX + "a")
    assert await storage.count(PREFIX) == 0


async def test_delete_missing(storage: Storage) -> None:
    base = await storage.current_revision()
    with pytest.raises(KeyNotFoundError):
        await storage.delete(PREFIX + "a")
    assert await storage.current_revision() == base


async def test_delete_precondition_mismatch_keeps_object(storage: Storage) -> None:
    base = await storage.current_revision()
    created = await storage.create(PREFIX + "a", foo("a"))
    for pre in (Preconditions(uid="x"), Preconditions(resource_version=str(base + 7))):
        with pytest.raises(ConflictError):
            await storage.delete(PREFIX + "a", preconditions=pre)
    assert await storage.get(PREFIX + "a") == created
    await storage.delete(PREFIX + "a", Preconditions(uid="uid-a", resource_version=str(base + 1)))


async def test_delete_pinned_to_its_resource_version(storage: Storage) -> None:
    """A delete that names the revision it expects (a collection's delete from its listing; one round trip on
    etcd) answers the last state at the deletion's revision; a newer or missing object is refused as any is."""
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a"))
    await storage.create(PREFIX + "b", foo("b"))
    await storage.guaranteed_update(PREFIX + "b", set_size(2))
    gone = await storage.delete(PREFIX + "a", Preconditions(resource_version=str(base + 1)))
    assert gone["metadata"]["name"] == "a" and rv(gone) == str(base + 4)
    with pytest.raises(ConflictError):  # b was updated since revision base + 2
        await storage.delete(PREFIX + "b", Preconditions(resource_version=str(base + 2)))
    with pytest.raises(KeyNotFoundError):
        await storage.delete(PREFIX + "a", Preconditions(resource_version=str(base + 1)))
    assert [o["metadata"]["name"] for o in (await storage.list(PREFIX)).items] == ["b"]


async def test_recreate_after_delete(storage: Storage) -> None:
    base = await storage.current_revision()
    await storage.create(PREFIX + "a", foo("a", uid="1"))
    await storage.delete(PREFIX + "a")
    again = await storage.create(PREFIX + "a", foo("a", uid="2"))
    assert rv(again) == str(base + 3) and again["metadata"]["uid"] == "2"


async def test_revision_is_monotonic(storage: Storage) -> None:
    seen = [await storage.current_revision()]
    await storage.create(PREFIX + "a", foo("a"))
    seen.append(await storage.current_revision())
    await storage.guaranteed_update(PREFIX + "a", set_size(3))
    seen.append(await storage.current_revision())
    await storage.guaranteed_update(PREFIX + "a", set_size(3))  # no-op
    seen.append(await storage.current_revision())
    await storage.delete(PREFIX + "a")
    seen.append(await storage.current_revision())
    await storage.create(PREFIX + "b", foo("b"))
    seen.append(await storage.current_revision())
    base = seen[0]
    assert seen == [base + r for r in (0, 1, 2, 2, 3, 4)]


# ----- factory ----------------------------------------------------------------------


def test_factory_errors() -> None:
    with pytest.raises(ValueError, match="unknown storage backend 'nope'"):
        create_storage("nope", None)
    with pytest.raises(ValueError, match="root"):
        create_storage("file", None)
