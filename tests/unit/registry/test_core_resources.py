"""Issue 7's core resources through a Store over MemoryStorage: secrets, configmaps, serviceaccounts, leases."""
from __future__ import annotations

import base64
from typing import Any

import pytest

from kapi.api import errors
from kapi.app import build_scheme
from kapi.registry.secret_strategy import ConfigMapStrategy, SecretStrategy, base64_error
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.registry.table import to_table
from kapi.scheme.builtin_core import CONFIG_MAPS, CORE_RESOURCES, EVENTS_V1, LEASES, SECRETS, SERVICE_ACCOUNTS
from kapi.scheme.definitions import ResourceDef
from kapi.storage.memory import MemoryStorage


def store_for(definition: ResourceDef) -> Store:
    return Store(strategy_for(definition), MemoryStorage(), None, StoreOptions())


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def secret(name: str = "s", **fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, **fields}


def test_strategies_and_scheme() -> None:
    assert isinstance(strategy_for(SECRETS), SecretStrategy)
    assert isinstance(strategy_for(CONFIG_MAPS), ConfigMapStrategy)
    assert all(d.builtin and d.namespaced for d in CORE_RESOURCES)
    on = {(d.group, d.plural) for d in build_scheme([]).definitions}
    off = {(d.group, d.plural) for d in build_scheme([], core_resources=False).definitions}
    core = {(d.group, d.plural) for d in CORE_RESOURCES}
    assert core <= on and not core & off
    assert ("", "namespaces") in off and ("apiextensions.k8s.io", "customresourcedefinitions") in off
    assert ("events.k8s.io", "events") in on and ("coordination.k8s.io", "leases") in on


@pytest.mark.parametrize("text, at", [
    ("", None), ("YQ==", None), ("YWI=", None), ("YWJj", None), ("YWJj\nZGVm", None),
    ("billy", 4), ("admin", 4), ("a", 0), ("ab!c", 2), ("YQ=", 3), ("YQ=a", 2), ("Y===", 1), ("YQ==YQ==", 4), ("=", 0),
])
def test_base64_error_offsets_match_go(text: str, at: int | None) -> None:
    assert base64_error(text) == at


async def test_secret_string_data_is_folded_into_base64_data() -> None:
    store = store_for(SECRETS)
    created = await store.create("default", secret(data={"a": b64("x")}, stringData={"b": "y", "a": "z"}),
                                 "v1", WriteOptions())
    assert created["data"] == {"a": b64("z"), "b": b64("y")}
    assert "stringData" not in created and created["type"] == "Opaque"
    got = await store.get("default", "s", "v1")
    assert got["data"] == created["data"] and "stringData" not in got

    got["stringData"] = {"c": "w"}
    updated = await store.update("default", "s", got, "v1", "", WriteOptions())
    assert updated["data"] == {"a": b64("z"), "b": b64("y"), "c": b64("w")} and "stringData" not in updated


async def test_secret_string_data_passes_strict_field_validation() -> None:
    store = store_for(SECRETS)
    created = await store.create("default", secret(stringData={"k": "v"}), "v1",
                                 WriteOptions(field_validation="Strict"))
    assert created["data"] == {"k": b64("v")}
    with pytest.raises(errors.BadRequest, match='unknown field "bogus"'):
        await store.create("default", secret("t", bogus=1), "v1", WriteOptions(field_validation="Strict"))


async def test_secret_bad_base64_is_refused_like_kube() -> None:
    store = store_for(SECRETS)
    with pytest.raises(errors.BadRequest) as exc:
        await store.create("default", secret(data={"username": "billy"}), "v1", WriteOptions())
    assert exc.value.message == (
        'Secret in version "v1" cannot be handled as a Secret: illegal base64 data at input byte 4')


async def test_secret_keys_and_types_are_validated() -> None:
    store = store_for(SECRETS)
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", secret(stringData={"bad key": "v"}), "v1", WriteOptions())
    assert [c.field for c in exc.value.causes] == ["data[bad key]"]
    assert "a valid config key must consist of alphanumeric characters" in exc.value.causes[0].message
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", secret(type="kubernetes.io/tls", stringData={"tls.crt": "c"}), "v1",
                           WriteOptions())
    assert [(c.field, c.message) for c in exc.value.causes] == [("data[tls.key]", "Required value")]


async def test_secret_type_is_immutable_and_immutable_freezes_data() -> None:
    store = store_for(SECRETS)
    created = await store.create("default", secret(stringData={"a": "1"}, immutable=True), "v1", WriteOptions())
    retyped = dict(created, type="kubernetes.io/basic-auth")
    with pytest.raises(errors.Invalid) as exc:
        await store.update("default", "s", retyped, "v1", "", WriteOptions())
    assert exc.value.causes[0].field == "type" and "field is immutable" in exc.value.causes[0].message
    changed = dict(created, data={"a": b64("2")})
    with pytest.raises(errors.Invalid) as exc:
        await store.update("default", "s", changed, "v1", "", WriteOptions())
    assert [(c.field, c.message) for c in exc.value.causes] == [
        ("data", "Forbidden: field is immutable when `immutable` is set")]
    relabeled = dict(created, metadata={**created["metadata"], "labels": {"x": "y"}})
    assert (await store.update("default", "s", relabeled, "v1", "", WriteOptions()))["metadata"]["labels"]


async def test_configmap_immutable_and_duplicate_keys() -> None:
    store = store_for(CONFIG_MAPS)
    cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}, "immutable": True}
    created = await store.create("default", cm, "v1", WriteOptions())
    with pytest.raises(errors.Invalid):
        await store.update("default", "c", dict(created, data={"a": "c"}), "v1", "", WriteOptions())
    dup = {"metadata": {"name": "d"}, "data": {"k": "v"}, "binaryData": {"k": b64("v")}}
    with pytest.raises(errors.Invalid) as exc:
        await store.create("default", dup, "v1", WriteOptions())
    assert exc.value.causes[0].field == "data[k]"


async def test_serviceaccount_and_lease_round_trip() -> None:
    sa_store = store_for(SERVICE_ACCOUNTS)
    sa = await sa_store.create("default", {"metadata": {"name": "robot"}, "automountServiceAccountToken": False},
                               "v1", WriteOptions())
    assert sa["kind"] == "ServiceAccount" and sa["apiVersion"] == "v1"

    leases = store_for(LEASES)
    lease = await leases.create("kube-system", {
        "apiVersion": "coordination.k8s.io/v1", "kind": "Lease", "metadata": {"name": "leader"},
        "spec": {"holderIdentity": "a", "leaseDurationSeconds": 15, "renewTime": "2024-01-01T00:00:00.000000Z"},
    }, "v1", WriteOptions(field_validation="Strict"))
    lease["spec"]["holderIdentity"] = "b"
    lease["spec"]["leaseTransitions"] = 1
    updated = await leases.update("kube-system", "leader", lease, "v1", "", WriteOptions())
    assert updated["spec"]["holderIdentity"] == "b"
    table = to_table(LEASES.storage_version, [updated])
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Holder", "Age"]
    assert table["rows"][0]["cells"][:2] == ["leader", "b"]
    stale = dict(lease, spec={**lease["spec"], "holderIdentity": "c"})
    with pytest.raises(errors.Conflict):
        await leases.update("kube-system", "leader", stale, "v1", "", WriteOptions())


async def test_events_v1_is_its_own_group() -> None:
    store = store_for(EVENTS_V1)
    ev = await store.create("default", {
        "apiVersion": "events.k8s.io/v1", "kind": "Event", "metadata": {"name": "e1"},
        "eventTime": "2024-01-01T00:00:00.000000Z", "reason": "Started", "note": "hello", "type": "Normal",
        "regarding": {"kind": "Pod", "name": "p"}, "reportingController": "me", "reportingInstance": "me-1",
        "action": "Start",
    }, "v1", WriteOptions())
    assert ev["apiVersion"] == "events.k8s.io/v1"
    cells = to_table(EVENTS_V1.storage_version, [ev])["rows"][0]["cells"]
    # kubectl get events.events.k8s.io: LAST SEEN TYPE REASON OBJECT … MESSAGE …, the name last (wide)
    assert cells[1:4] == ["Normal", "Started", "pod/p"] and "hello" in cells and cells[-1] == "e1"


@pytest.mark.parametrize("definition", CORE_RESOURCES, ids=lambda d: f"{d.group or 'core'}.{d.plural}")
async def test_core_objects_carry_no_generation(definition: ResourceDef) -> None:
    store = store_for(definition)
    obj: dict = {"metadata": {"name": "n", "labels": {"a": "b"}}}
    if definition is EVENTS_V1:  # kube requires it of events.k8s.io events
        obj["eventTime"] = "2024-01-01T00:00:00.000000Z"
    created = await store.create("default", obj, "v1", WriteOptions())
    assert "generation" not in created["metadata"]
    created["metadata"]["labels"] = {"a": "c"}
    updated = await store.update("default", "n", created, "v1", "", WriteOptions())
    assert "generation" not in updated["metadata"]


def test_count_columns_like_kubes_builtin_tables() -> None:
    from kapi.registry.table import to_table
    from kapi.scheme.builtin_core import CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS

    cm = {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}, "binaryData": {"c": "AA=="}}
    secret = {"metadata": {"name": "s"}, "type": "Opaque", "data": {"p": "cQ=="}}
    sa = {"metadata": {"name": "robot"}, "secrets": [{"name": "x"}]}
    for definition, obj, expected in ((CONFIG_MAPS, cm, ["c", 3]), (SECRETS, secret, ["s", "Opaque", 1]),
                                      (SERVICE_ACCOUNTS, sa, ["robot", 1])):
        table = to_table(definition.versions[0], [obj])
        assert table["rows"][0]["cells"][:-1] == expected
