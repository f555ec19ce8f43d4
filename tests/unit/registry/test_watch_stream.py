"""Registry watch streams over the memory backend: start points, selectors, bookmarks, expiry."""
from __future__ import annotations

from pathlib import Path

import asyncio
from typing import Any

import pytest

from kapi.api import errors
from kapi.api.selectors import parse_label_selector
from kapi.config import shipped_resources_dir
from kapi.registry.listing import ListOptions
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.registry.watch import INITIAL_EVENTS_END
from kapi.scheme.crd import load_crd_dir
from kapi.storage.memory import MemoryStorage

FOO = next(d for d in [*load_crd_dir(shipped_resources_dir()), *load_crd_dir(Path(__file__).resolve().parents[2] / "data")] if d.plural == "foos")


def make_store(**storage_args: Any) -> Store:
    return Store(strategy_for(FOO), MemoryStorage(**storage_args), None, StoreOptions(bookmark_interval=0.05))


def foo(name: str, **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"msg": name}}


async def take(stream: Any, n: int) -> list[tuple[str, dict[str, Any]]]:
    events = stream.events()
    out = []
    async for kind, obj in events:
        out.append((kind, obj))
        if len(out) == n:
            break
    await events.aclose()
    return out


async def test_unset_resource_version_starts_with_the_current_state() -> None:
    store = make_store()
    await store.create("default", foo("a"), "v1", WriteOptions())
    stream = store.watch("default", "v1", ListOptions())
    await stream.open()
    await store.create("default", foo("b"), "v1", WriteOptions())
    got = await take(stream, 2)
    assert [(k, o["metadata"]["name"]) for k, o in got] == [("ADDED", "a"), ("ADDED", "b")]
    assert got[0][1]["apiVersion"] == "hello.zeng.dev/v1"


async def test_exact_revision_replays_only_what_came_after() -> None:
    store = make_store()
    first = await store.create("default", foo("a"), "v1", WriteOptions())
    await store.patch("default", "a", "v1", "", lambda o: {**o, "spec": {"msg": "x"}}, WriteOptions())
    await store.delete("default", "a", "v1", None, WriteOptions())
    stream = store.watch("default", "v1", ListOptions(resource_version=first["metadata"]["resourceVersion"]))
    await stream.open()
    assert [k for k, _ in await take(stream, 2)] == ["MODIFIED", "DELETED"]


async def test_selectors_turn_relabels_into_added_and_deleted() -> None:
    store = make_store()
    created = await store.create("default", foo("a", tier="web"), "v1", WriteOptions())
    opts = ListOptions(label_selector=parse_label_selector("tier=db"),
                       resource_version=created["metadata"]["resourceVersion"])
    stream = store.watch("default", "v1", opts)
    await stream.open()
    for tier in ("db", "db", "web"):
        await store.patch("default", "a", "v1", "",
                          lambda o, t=tier: {**o, "metadata": {**o["metadata"], "labels": {"tier": t}},
                                             "spec": {"msg": o["spec"]["msg"] + "!"}}, WriteOptions())
    assert [k for k, _ in await take(stream, 3)] == ["ADDED", "MODIFIED", "DELETED"]


async def test_initial_events_end_with_an_annotated_bookmark_then_idle_bookmarks() -> None:
    store = make_store()
    await store.create("default", foo("a"), "v1", WriteOptions())
    stream = store.watch("default", "v1", ListOptions(send_initial_events=True, allow_bookmarks=True,
                                                      resource_version_match="NotOlderThan"))
    await stream.open()
    got = await asyncio.wait_for(take(stream, 3), timeout=2)
    assert [k for k, _ in got] == ["ADDED", "BOOKMARK", "BOOKMARK"]
    assert got[1][1]["metadata"]["annotations"] == {INITIAL_EVENTS_END: "true"}
    assert got[2][1]["metadata"]["resourceVersion"] == got[0][1]["metadata"]["resourceVersion"]


async def test_expired_revision_is_one_error_event() -> None:
    store = make_store(event_window=3)
    for i in range(6):
        await store.create("default", foo(f"n{i}"), "v1", WriteOptions())
    stream = store.watch("default", "v1", ListOptions(resource_version="1"))
    await stream.open()
    [(kind, status)] = await take(stream, 5)
    assert kind == "ERROR" and status["code"] == 410 and status["reason"] == "Expired"


async def test_future_revision_is_504() -> None:
    store = make_store()
    with pytest.raises(errors.Timeout):
        await store.watch("default", "v1", ListOptions(resource_version="999")).open()
