"""The bootstrap RBAC policy written at start and the ClusterRole aggregation controller, over real stores on
memory storage."""
from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

import pytest

from kapi.api import errors
from kapi.auth.factory import build_authorizer
from kapi.auth.rbac import GROUP, RbacAuthorizer, RbacIndex
from kapi.auth.rbac_bootstrap import AUTOUPDATE, load
from kapi.controllers.bootstrap import ensure_initial_namespaces
from kapi.controllers.rbac_bootstrap import ClusterRoleAggregator, RbacBootstrap, aggregated_rules
from kapi.registry.rbac_store import RbacStore
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.catalogue import builtin
from kapi.storage.memory import MemoryStorage

Object = dict[str, Any]
PLURALS = ("roles", "clusterroles", "rolebindings", "clusterrolebindings")
VIEW_LABEL = "rbac.authorization.k8s.io/aggregate-to-view"


class Cluster:
    """The RBAC stores and the namespaces store over one memory storage, as create_app builds them."""

    def __init__(self, rbac: bool = True) -> None:
        self.storage = MemoryStorage()
        index = RbacIndex()
        authorizer = build_authorizer(("RBAC",), RbacAuthorizer(index))
        self.stores: dict[tuple[str, str], Store] = {
            ("", "namespaces"): Store(strategy_for(builtin("", "namespaces")), self.storage, None, StoreOptions())}
        if rbac:
            for plural in PLURALS:
                self.stores[(GROUP, plural)] = RbacStore(strategy_for(builtin(GROUP, plural)), self.storage, None,
                                                         StoreOptions(), index=index, authorizer=authorizer)

    async def start(self, namespaces: bool = True) -> Cluster:
        await self.storage.start()
        if namespaces:
            await ensure_initial_namespaces(self.stores[("", "namespaces")])
        return self

    def store(self, plural: str) -> Store:
        return self.stores[(GROUP, plural)]

    async def get(self, plural: str, name: str, namespace: str = "") -> Object:
        return await self.store(plural).get(namespace, name, "v1")

    async def names(self, plural: str) -> set[tuple[str, str]]:
        items = (await self.store(plural).list("", "v1"))["items"]
        return {(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in items}

    async def edit(self, plural: str, name: str, change: Callable[[Object], None]) -> Object:
        obj = await self.get(plural, name)
        change(obj)
        return await self.store(plural).update("", name, obj, "v1", "", WriteOptions())


def rule(verbs: list[str], resources: list[str], group: str = "") -> Object:
    return {"apiGroups": [group], "resources": resources, "verbs": verbs}


def cluster_role(name: str, *rules: Object, labels: dict[str, str] | None = None, **extra: Any) -> Object:
    return {"apiVersion": f"{GROUP}/v1", "kind": "ClusterRole", "metadata": {"name": name, "labels": labels or {}},
            "rules": list(rules), **extra}


async def eventually(check: Callable[[], Awaitable[bool]], timeout: float = 3.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the controller did not get there in time"
        await asyncio.sleep(0.01)


# -- RbacBootstrap ------------------------------------------------------------------------------------------------
async def test_ensure_creates_every_bootstrap_object() -> None:
    cluster = await Cluster().start()
    await RbacBootstrap(cluster.stores).ensure()
    policy = load()
    for plural in PLURALS:
        wanted = {(o["metadata"].get("namespace", ""), o["metadata"]["name"]) for o in policy.by_plural[plural]}
        assert await cluster.names(plural) == wanted
    view = await cluster.get("clusterroles", "view")
    assert view["metadata"]["annotations"][AUTOUPDATE] == "true"
    assert view["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    assert view["aggregationRule"] == {"clusterRoleSelectors": [{"matchLabels": {VIEW_LABEL: "true"}}]}
    assert (await cluster.get("clusterrolebindings", "system:discovery"))["subjects"] == [
        {"apiGroup": GROUP, "kind": "Group", "name": "system:authenticated"}]
    signer = await cluster.get("roles", "system:controller:bootstrap-signer", "kube-public")
    assert signer["metadata"]["namespace"] == "kube-public" and signer["rules"]


async def test_ensure_is_idempotent() -> None:
    cluster = await Cluster().start()
    bootstrap = RbacBootstrap(cluster.stores)
    await bootstrap.ensure()
    revision = await cluster.storage.current_revision()
    await bootstrap.ensure()
    await RbacBootstrap(cluster.stores).ensure()  # another server starting on the same storage
    assert await cluster.storage.current_revision() == revision  # nothing written


async def test_ensure_keeps_what_users_added_and_restores_what_they_took() -> None:
    cluster = await Cluster().start()
    await RbacBootstrap(cluster.stores).ensure()
    widgets = rule(["get"], ["widgets"], "example.com")
    await cluster.edit("clusterroles", "view", lambda o: o.__setitem__("rules", [widgets]))
    kubes = (await cluster.get("clusterroles", "system:discovery"))["rules"]
    await cluster.edit("clusterroles", "system:discovery", lambda o: o.__setitem__("rules", [widgets]))
    await cluster.edit("clusterrolebindings", "system:discovery", lambda o: o.__setitem__(
        "subjects", [{"apiGroup": GROUP, "kind": "User", "name": "alice"}]))
    await RbacBootstrap(cluster.stores).ensure()
    assert (await cluster.get("clusterroles", "view"))["rules"] == [widgets]  # aggregated: the controller's job
    discovery = (await cluster.get("clusterroles", "system:discovery"))["rules"]
    assert discovery[0] == widgets
    assert {(r["nonResourceURLs"][0], r["verbs"][0]) for r in discovery[1:]} == {
        (url, "get") for url in kubes[0]["nonResourceURLs"]}
    subjects = (await cluster.get("clusterrolebindings", "system:discovery"))["subjects"]
    assert [s["name"] for s in subjects] == ["alice", "system:authenticated"]


async def test_autoupdate_false_is_left_alone() -> None:
    cluster = await Cluster().start()
    await RbacBootstrap(cluster.stores).ensure()

    def opt_out(obj: Object) -> None:
        obj["metadata"]["annotations"][AUTOUPDATE] = "false"
        obj["rules"] = [rule(["get"], ["widgets"], "example.com")]

    await cluster.edit("clusterroles", "system:basic-user", opt_out)
    revision = await cluster.storage.current_revision()
    await RbacBootstrap(cluster.stores).ensure()
    assert await cluster.storage.current_revision() == revision
    assert (await cluster.get("clusterroles", "system:basic-user"))["rules"] == [
        rule(["get"], ["widgets"], "example.com")]


async def test_a_deleted_object_comes_back_and_a_wrong_role_ref_is_replaced() -> None:
    cluster = await Cluster().start()
    await cluster.store("clusterrolebindings").create("", {
        "apiVersion": f"{GROUP}/v1", "kind": "ClusterRoleBinding", "metadata": {"name": "system:basic-user"},
        "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "cluster-admin"},
        "subjects": [{"apiGroup": GROUP, "kind": "Group", "name": "system:authenticated"}]}, "v1", WriteOptions())
    old_uid = (await cluster.get("clusterrolebindings", "system:basic-user"))["metadata"]["uid"]
    await RbacBootstrap(cluster.stores).ensure()
    fixed = await cluster.get("clusterrolebindings", "system:basic-user")
    assert fixed["roleRef"]["name"] == "system:basic-user" and fixed["metadata"]["uid"] != old_uid
    assert fixed["metadata"]["labels"]["kubernetes.io/bootstrapping"] == "rbac-defaults"
    await cluster.store("clusterroles").delete("", "edit", "v1", None, WriteOptions())
    await RbacBootstrap(cluster.stores).ensure()
    assert (await cluster.get("clusterroles", "edit"))["aggregationRule"]


async def test_a_roles_namespace_is_created_when_missing() -> None:
    cluster = await Cluster().start(namespaces=False)
    await RbacBootstrap(cluster.stores).ensure()
    names = {n["metadata"]["name"] for n in (await cluster.stores[("", "namespaces")].list("", "v1"))["items"]}
    assert {"kube-system", "kube-public"} <= names
    assert ("kube-system", "system:controller:cloud-provider") in await cluster.names("roles")


async def test_nothing_happens_when_rbac_is_not_served() -> None:
    cluster = await Cluster(rbac=False).start()
    revision = await cluster.storage.current_revision()
    await RbacBootstrap(cluster.stores).ensure()
    aggregator = ClusterRoleAggregator(cluster.stores, cluster.storage)
    assert await aggregator.sync() == revision
    await asyncio.wait_for(aggregator.run(), 1)  # returns at once
    assert await cluster.storage.current_revision() == revision


# -- aggregation --------------------------------------------------------------------------------------------------
def test_aggregated_rules_go_selector_by_selector_roles_by_name_each_rule_once() -> None:
    a, b, c = rule(["get"], ["a"]), rule(["get"], ["b"]), rule(["get"], ["c"])
    target = cluster_role("target", aggregationRule={"clusterRoleSelectors": [
        {"matchLabels": {"x": "1"}}, {"matchExpressions": [{"key": "y", "operator": "Exists"}]}]})
    roles = [
        target,
        cluster_role("zz", c, a, labels={"x": "1"}),
        cluster_role("aa", b, labels={"x": "1"}),
        cluster_role("mm", {**a, "resourceNames": []}, c, labels={"y": "anything"}),  # both already there
        cluster_role("00", rule(["list"], ["d"]), labels={"y": ""}),
        cluster_role("no", rule(["*"], ["*"], "*"), labels={"x": "2"}),
    ]
    target["metadata"]["labels"] = {"x": "1"}  # never its own source
    assert aggregated_rules(target, roles) == [b, c, a, rule(["list"], ["d"])]
    assert aggregated_rules(cluster_role("plain"), roles) == []


async def test_sync_fills_view_edit_and_admin() -> None:
    cluster = await Cluster().start()
    await RbacBootstrap(cluster.stores).ensure()
    revision = await ClusterRoleAggregator(cluster.stores, cluster.storage).sync()
    assert isinstance(revision, int) and revision > 0
    view, edit, admin = [(await cluster.get("clusterroles", n))["rules"] for n in ("view", "edit", "admin")]
    assert view == (await cluster.get("clusterroles", "system:aggregate-to-view"))["rules"]
    assert all(r in edit for r in view) and len(edit) > len(view)
    assert all(r in admin for r in edit) and len(admin) > len(edit)
    assert any("secrets" in r.get("resources", []) for r in edit)
    assert not any("secrets" in r.get("resources", []) for r in view)
    written = await cluster.storage.current_revision()
    assert await ClusterRoleAggregator(cluster.stores, cluster.storage).aggregate() == 0  # stable: no writes
    assert await cluster.storage.current_revision() == written


async def test_a_new_labelled_role_reaches_view_edit_and_admin() -> None:
    cluster = await Cluster().start()
    await RbacBootstrap(cluster.stores).ensure()
    aggregator = ClusterRoleAggregator(cluster.stores, cluster.storage)
    task = asyncio.create_task(aggregator.run(await aggregator.sync()))
    widgets = rule(["get", "list"], ["widgets"], "example.com")

    async def holds(name: str, present: bool = True) -> bool:
        return (widgets in ((await cluster.get("clusterroles", name)).get("rules") or [])) == present

    try:
        await cluster.store("clusterroles").create(
            "", cluster_role("widget-viewer", widgets, labels={VIEW_LABEL: "true"}), "v1", WriteOptions())
        for name in ("view", "edit", "admin"):
            await eventually(lambda name=name: holds(name))
        assert not await holds("cluster-admin")  # not aggregated: untouched
        assert widgets not in ((await cluster.get("clusterroles", "system:aggregate-to-view")).get("rules") or [])
        await cluster.store("clusterroles").delete("", "widget-viewer", "v1", None, WriteOptions())
        for name in ("view", "edit", "admin"):
            await eventually(lambda name=name: holds(name, present=False))
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_a_role_that_stops_being_aggregated_is_left_alone() -> None:
    cluster = await Cluster().start()
    await cluster.store("clusterroles").create("", cluster_role(
        "mine", aggregationRule={"clusterRoleSelectors": [{"matchLabels": {"x": "1"}}]}), "v1", WriteOptions())
    await cluster.store("clusterroles").create("", cluster_role("part", rule(["get"], ["pods"]), labels={"x": "1"}),
                                               "v1", WriteOptions())
    aggregator = ClusterRoleAggregator(cluster.stores, cluster.storage)
    await aggregator.sync()
    assert (await cluster.get("clusterroles", "mine"))["rules"] == [rule(["get"], ["pods"])]
    await cluster.edit("clusterroles", "mine", lambda o: (o.pop("aggregationRule"), o.__setitem__("rules", [])))
    await aggregator.sync()
    assert not (await cluster.get("clusterroles", "mine")).get("rules")
    with pytest.raises(errors.NotFound):
        await cluster.get("clusterroles", "view")  # no bootstrap here: nothing invented
