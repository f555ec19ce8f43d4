"""The generic Store's REST semantics, over the memory backend."""
from __future__ import annotations

from pathlib import Path

from typing import Any

import pytest

from kapi.api import errors
from kapi.config import shipped_resources_dir
from kapi.registry.listing import ListOptions
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin import NAMESPACES
from kapi.scheme.crd import load_crd_dir
from kapi.storage.interfaces import Preconditions
from kapi.storage.memory import MemoryStorage

DEFS = {d.plural: d for d in [*load_crd_dir(shipped_resources_dir()), *load_crd_dir(Path(__file__).resolve().parents[2] / "data")]}


def make_store(plural: str = "foos", **options: Any) -> Store:
    definition = NAMESPACES if plural == "namespaces" else DEFS[plural]
    return Store(strategy_for(definition), MemoryStorage(), None, StoreOptions(**options))


def foo(name: str = "a", msg: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name, **extra},
            "spec": {"msg": msg}}


async def test_create_sets_system_fields() -> None:
    store = make_store()
    obj = await store.create("default", foo(), "v1", WriteOptions())
    meta = obj["metadata"]
    assert meta["namespace"] == "default"
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    assert obj["apiVersion"] == "hello.zeng.dev/v1" and obj["kind"] == "Foo"


async def test_generate_name() -> None:
    store = make_store()
    obj = await store.create("default", {"metadata": {"generateName": "x-"}, "spec": {}}, "v1", WriteOptions())
    assert obj["metadata"]["name"].startswith("x-") and len(obj["metadata"]["name"]) == 7


async def test_create_twice_is_already_exists() -> None:
    store = make_store()
    await store.create("default", foo(), "v1", WriteOptions())
    with pytest.raises(errors.AlreadyExists):
        await store.create("default", foo(msg="other"), "v1", WriteOptions())
    assert (await store.get("default", "a", "v1"))["spec"]["msg"] == "hi"


@pytest.mark.parametrize(("field", "value", "message"), [
    ("kind", "Bar", "the kind in the data (Bar) does not match the expected kind (Foo)"),
    ("apiVersion", "hello.zeng.dev/v2", "the API version in the data (hello.zeng.dev/v2) does not match the "
                                        "expected API version (hello.zeng.dev/v1)"),
])
async def test_a_body_of_another_kind_is_a_bad_request(field: str, value: str, message: str) -> None:
    store = make_store()
    with pytest.raises(errors.BadRequest) as exc:
        await store.create("default", {**foo(), field: value}, "v1", WriteOptions())
    assert exc.value.message == message


async def test_a_body_in_another_namespace_is_a_bad_request() -> None:
    store = make_store()
    bad = foo()
    bad["metadata"]["namespace"] = "other"
    with pytest.raises(errors.BadRequest, match="does not match the namespace sent on the request"):
        await store.create("default", bad, "v1", WriteOptions())


async def test_update_bumps_generation_only_on_spec_change() -> None:
    store = make_store()
    created = await store.create("default", foo(), "v1", WriteOptions())
    relabeled = dict(created, metadata={**created["metadata"], "labels": {"a": "b"}})
    after_label = await store.update("default", "a", relabeled, "v1", "", WriteOptions())
    assert after_label["metadata"]["generation"] == 1
    assert after_label["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    changed = dict(after_label, spec={"msg": "new"})
    after_spec = await store.update("default", "a", changed, "v1", "", WriteOptions())
    assert after_spec["metadata"]["generation"] == 2


async def test_stale_resource_version_conflicts() -> None:
    store = make_store()
    created = await store.create("default", foo(), "v1", WriteOptions())
    await store.update("default", "a", dict(created, spec={"msg": "x"}), "v1", "", WriteOptions())
    with pytest.raises(errors.Conflict):
        await store.update("default", "a", dict(created, spec={"msg": "y"}), "v1", "", WriteOptions())
    assert (await store.get("default", "a", "v1"))["spec"]["msg"] == "x"


async def test_update_without_resource_version_needs_unrestricted() -> None:
    store = make_store()
    await store.create("default", foo(), "v1", WriteOptions())
    with pytest.raises(errors.Invalid):
        await store.update("default", "a", foo(msg="z"), "v1", "", WriteOptions())
    free = make_store(unrestricted_update=True)
    await free.create("default", foo(), "v1", WriteOptions())
    assert (await free.update("default", "a", foo(msg="z"), "v1", "", WriteOptions()))["spec"]["msg"] == "z"


async def test_status_subresource_is_kept_apart() -> None:
    store = make_store("jenkinsservices")
    obj = {"metadata": {"name": "j"}, "spec": {"instanceamount": 1}, "status": {"approvalstatus": "yes"}}
    created = await store.create("default", obj, "v1alpha", WriteOptions())
    assert "status" not in created
    with_status = await store.patch("default", "j", "v1alpha", "status",
                                    lambda cur: {**cur, "status": {"approvalstatus": "ok"}, "spec": {"x": 1}},
                                    WriteOptions())
    assert with_status["status"] == {"approvalstatus": "ok"}
    assert with_status["spec"] == {"instanceamount": 1}
    main = await store.patch("default", "j", "v1alpha", "",
                             lambda cur: {**cur, "status": {"approvalstatus": "no"}}, WriteOptions())
    assert main["status"] == {"approvalstatus": "ok"}


async def test_strict_field_validation_rejects_unknown_fields() -> None:
    store = make_store()
    bad = foo()
    bad["spec"]["nope"] = 1
    with pytest.raises(errors.BadRequest, match='unknown field "spec.nope"'):
        await store.create("default", bad, "v1", WriteOptions(field_validation="Strict"))
    opts = WriteOptions(field_validation="Warn")
    created = await store.create("default", foo() | {"spec": {"msg": "hi", "nope": 1}}, "v1", opts)
    assert "nope" not in created["spec"] and opts.warnings == ['unknown field "spec.nope"']


async def test_delete_returns_object_and_honours_preconditions() -> None:
    store = make_store()
    created = await store.create("default", foo(), "v1", WriteOptions())
    with pytest.raises(errors.Conflict):
        await store.delete("default", "a", "v1", Preconditions(uid="wrong"), WriteOptions())
    deleted = await store.delete("default", "a", "v1", Preconditions(uid=created["metadata"]["uid"]), WriteOptions())
    assert deleted["metadata"]["name"] == "a"
    with pytest.raises(errors.NotFound):
        await store.get("default", "a", "v1")


async def test_dry_run_writes_nothing() -> None:
    store = make_store()
    await store.create("default", foo("d"), "v1", WriteOptions(dry_run=True))
    with pytest.raises(errors.NotFound):
        await store.get("default", "d", "v1")
    await store.create("default", foo("d"), "v1", WriteOptions())
    await store.delete("default", "d", "v1", None, WriteOptions(dry_run=True))
    assert await store.get("default", "d", "v1")


async def test_list_pages_and_continue() -> None:
    store = make_store()
    for i in range(5):
        await store.create("default", foo(f"n{i}"), "v1", WriteOptions())
    page = await store.list("default", "v1", ListOptions(limit=2))
    assert [o["metadata"]["name"] for o in page["items"]] == ["n0", "n1"]
    assert page["metadata"]["remainingItemCount"] == 3
    rest = await store.list("default", "v1", ListOptions(continue_token=page["metadata"]["continue"]))
    assert [o["metadata"]["name"] for o in rest["items"]] == ["n2", "n3", "n4"]
    assert page["kind"] == "FooList"
    with pytest.raises(errors.BadRequest):
        await store.list("default", "v1", ListOptions(continue_token="garbage!!"))


async def test_delete_collection() -> None:
    store = make_store()
    for i in range(3):
        await store.create("default", foo(f"n{i}"), "v1", WriteOptions())
    gone = await store.delete_collection("default", "v1", WriteOptions())
    assert len(gone["items"]) == 3
    assert (await store.list("default", "v1"))["items"] == []


async def test_delete_collection_with_workers_answers_in_list_order() -> None:
    """kube's --delete-collection-workers: deletes run side by side, the answer keeps the listing's order, and an
    object its finalizer holds is answered marked (not gone)."""
    store = make_store(delete_collection_workers=4)
    for i in range(10):
        extra = {"finalizers": ["example.com/hold"]} if i == 7 else {}
        await store.create("default", foo(f"n{i}", **extra), "v1", WriteOptions())
    gone = await store.delete_collection("default", "v1", WriteOptions())
    assert [o["metadata"]["name"] for o in gone["items"]] == [f"n{i}" for i in range(10)]
    assert gone["kind"] == "FooList" and gone["metadata"]["resourceVersion"]
    left = (await store.list("default", "v1"))["items"]
    assert [(o["metadata"]["name"], bool(o["metadata"].get("deletionTimestamp"))) for o in left] == [("n7", True)]


async def test_delete_collection_deletes_an_object_changed_since_the_listing() -> None:
    """Each delete starts from the listed object pinned to its resourceVersion; a newer one is deleted from its
    new state (the conflict is not the client's)."""
    store = make_store(delete_collection_workers=2)
    for i in range(3):
        await store.create("default", foo(f"n{i}"), "v1", WriteOptions())
    listed = await store._select("default", ListOptions())
    await store.patch("default", "n1", "v1", "", lambda o: {**o, "spec": {"msg": "changed"}}, WriteOptions())

    async def stale(namespace: str, opts: ListOptions) -> Any:
        return listed
    store._select = stale  # type: ignore[method-assign]
    gone = await store.delete_collection("default", "v1", WriteOptions())
    assert [(o["metadata"]["name"], o["spec"]["msg"]) for o in gone["items"]] == [
        ("n0", "hi"), ("n1", "changed"), ("n2", "hi")]
    del store._select  # the stale listing was for delete_collection only
    assert (await store.list("default", "v1"))["items"] == []


async def test_delete_collection_stops_at_the_first_error() -> None:
    """A refused delete fails the call once the deletes in flight are done; those stay done, as in kube."""
    class Refuse:
        async def admit(self, attributes: Any) -> None:
            return None

        async def validate(self, attributes: Any) -> None:
            if attributes.operation == "DELETE" and attributes.name == "n2":
                raise errors.Forbidden("n2 is kept")

    store = Store(strategy_for(DEFS["foos"]), MemoryStorage(), Refuse(),  # type: ignore[arg-type]
                  StoreOptions(delete_collection_workers=1))
    for i in range(5):
        await store.create("default", foo(f"n{i}"), "v1", WriteOptions())
    with pytest.raises(errors.Forbidden, match="n2 is kept"):
        await store.delete_collection("default", "v1", WriteOptions())
    left = [o["metadata"]["name"] for o in (await store.list("default", "v1"))["items"]]
    assert left == ["n2", "n3", "n4"]  # one worker: n0 and n1 went, nothing after the refusal


async def test_namespace_defaults() -> None:
    store = make_store("namespaces")
    ns = await store.create("", {"metadata": {"name": "team"}}, "v1", WriteOptions())
    assert ns["status"] == {"phase": "Active"} and ns["spec"] == {"finalizers": ["kubernetes"]}
    with pytest.raises(errors.Invalid):
        await store.create("", {"metadata": {"name": "Bad.Name"}}, "v1", WriteOptions())


async def test_finalizers_hold_a_deleted_object_until_removed() -> None:
    store = make_store()
    await store.create("default", foo(finalizers=["example.com/hold"]), "v1", WriteOptions())
    marked = await store.delete("default", "a", "v1", None, WriteOptions())
    assert marked["metadata"]["deletionTimestamp"] and marked["metadata"]["finalizers"] == ["example.com/hold"]
    again = await store.delete("default", "a", "v1", None, WriteOptions())
    assert again["metadata"]["resourceVersion"] == marked["metadata"]["resourceVersion"]
    with pytest.raises(errors.Invalid, match="no new finalizers"):
        await store.patch("default", "a", "v1", "", lambda o: {**o, "metadata": {
            **o["metadata"], "finalizers": ["example.com/hold", "example.com/more"]}}, WriteOptions())
    await store.patch("default", "a", "v1", "", lambda o: {**o, "metadata": {**o["metadata"], "finalizers": []}},
                      WriteOptions())
    with pytest.raises(errors.NotFound):
        await store.get("default", "a", "v1")
