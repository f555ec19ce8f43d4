"""StoreReader: what admission plugins read, from the stores or from a watch-fed view of a collection."""
from __future__ import annotations

from typing import Any

from kapi.registry.reader import StoreReader
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin_admission import ADMISSION_REGISTRATION
from kapi.storage.memory import MemoryStorage

VALIDATING = next(d for d in ADMISSION_REGISTRATION if d.plural == "validatingwebhookconfigurations")
KEY = (VALIDATING.group, VALIDATING.plural)


def config(name: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name}, "webhooks": []}


async def test_reads_go_to_the_store_without_a_view() -> None:
    store = Store(strategy_for(VALIDATING), MemoryStorage())
    await store.create("", config("a"), "v1", WriteOptions())
    reader = StoreReader({KEY: store})
    assert await reader.count(*KEY) == 1
    assert [c["metadata"]["name"] for c in await reader.list(*KEY)] == ["a"]
    assert (await reader.get(*KEY, "", "a"))["metadata"]["name"] == "a"
    assert await reader.get(*KEY, "", "missing") is None
    assert await reader.count("nosuch.example.com", "things") == 0
    assert await reader.list("nosuch.example.com", "things") == []


async def test_a_view_answers_whole_collection_reads_and_none_falls_back() -> None:
    store = Store(strategy_for(VALIDATING), MemoryStorage())
    await store.create("", config("stored"), "v1", WriteOptions())
    views: dict[tuple[str, str], list[dict[str, Any]] | None] = {KEY: [config("seen-1"), config("seen-2")]}
    reader = StoreReader({KEY: store}, lambda group, resource: views.get((group, resource)))
    assert await reader.count(*KEY) == 2
    assert [c["metadata"]["name"] for c in await reader.list(*KEY)] == ["seen-1", "seen-2"]
    views[KEY] = None  # not synced yet: the store answers
    assert await reader.count(*KEY) == 1
    assert [c["metadata"]["name"] for c in await reader.list(*KEY)] == ["stored"]
