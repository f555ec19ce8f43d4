"""Reads answered with stored bytes: exactly the bytes the object path gives, and the object path
whenever serving changes the object (another version, a defaulting schema, a backend without raw reads)."""
from __future__ import annotations

from typing import Any

import orjson
import pytest

from kapi.api.selectors import parse_label_selector
from kapi.registry.listing import ListOptions
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.crd import definition_from_crd
from kapi.storage.memory import MemoryStorage

SCHEMA = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
    "msg": {"type": "string"}, "size": {"type": "integer"}}}}}


def crd(versions: list[tuple[str, bool]], schema: dict[str, Any] = SCHEMA) -> dict[str, Any]:
    """A Bar CRD whose versions are (name, is the storage version)."""
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": "bars.json.example.com"},
            "spec": {"group": "json.example.com", "scope": "Namespaced",
                     "names": {"plural": "bars", "singular": "bar", "kind": "Bar", "listKind": "BarList"},
                     "versions": [{"name": name, "served": True, "storage": stored,
                                   "schema": {"openAPIV3Schema": schema}} for name, stored in versions]}}


def store_of(manifest: dict[str, Any]) -> Store:
    definition = definition_from_crd(manifest)
    return Store(strategy_for(definition), MemoryStorage(), None, StoreOptions())


async def fill(store: Store, version: str, count: int = 3) -> None:
    for i in range(count):
        body = {"apiVersion": f"json.example.com/{version}", "kind": "Bar",
                "metadata": {"name": f"b{i}", "labels": {"n": str(i)}}, "spec": {"msg": "héllo", "size": i}}
        await store.create("default", body, version, WriteOptions())


# (CRD, version written, version served, served as stored, lists from stored bytes)
CASES = {
    "stored as served": (crd([("v1", True)]), "v1", "v1", True, True),
    "served in another version": (crd([("v1", False), ("v2", True)]), "v2", "v1", False, True),
    "a schema that defaults": (crd([("v1", True)], {**SCHEMA, "properties": {"spec": {
        "type": "object", "properties": {"size": {"type": "integer", "default": 7}}}}}), "v1", "v1", False, False),
}


@pytest.mark.parametrize("case", list(CASES))
async def test_get_json_is_the_object_path_bytes(case: str) -> None:
    manifest, written, served, raw, _lists = CASES[case]
    store = store_of(manifest)
    await fill(store, written)
    for name in ("b0", "b2"):
        got = await store.get_json("default", name, served)
        assert got == orjson.dumps(await store.get("default", name, served))
        stored = await MemoryStorage.get_raw(store._storage, store._key("default", name))  # type: ignore[arg-type]
        assert (got is stored) is raw


@pytest.mark.parametrize("case", list(CASES))
async def test_list_json_items_are_the_object_path_items(case: str) -> None:
    manifest, written, served, _raw, lists = CASES[case]
    store = store_of(manifest)
    await fill(store, written, 5)
    if not lists:  # the endpoint lists objects
        assert await store.list_json("default", served, ListOptions()) is None
        return
    token = ""
    for _ in range(3):  # pages of two
        opts = ListOptions(limit=2, continue_token=token)
        found = await store.list_json("default", served, opts)
        assert found is not None
        items, list_meta = found
        listed = await store.list("default", served, opts)
        assert items == [orjson.dumps(item) for item in listed["items"]]
        assert list_meta == listed["metadata"]
        token = list_meta.get("continue", "")
    assert not token


async def test_selectors_and_backends_without_raw_reads_take_the_object_path() -> None:
    store = store_of(crd([("v1", True)]))
    await fill(store, "v1")
    assert await store.list_json("default", "v1", ListOptions(label_selector=parse_label_selector("n=1"))) is None
    plain = store_of(crd([("v1", True)]))
    plain._raw = None  # as a backend without raw reads (etcd)
    await fill(plain, "v1")
    assert await plain.list_json("default", "v1", ListOptions()) is None
    assert await plain.get_json("default", "b1", "v1") == orjson.dumps(await plain.get("default", "b1", "v1"))
