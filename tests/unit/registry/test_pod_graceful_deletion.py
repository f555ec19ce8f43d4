"""Pod graceful deletion as kube-apiserver does it, with or without a simulation: a pod a node runs is kept
with a deletionTimestamp for its grace period; unscheduled or finished pods, and grace 0, go at once."""
from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from kapi.app import create_app
from kapi.config import ServerConfig
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.catalogue import builtin
from kapi.storage.memory import MemoryStorage

PODS = "/api/v1/namespaces/default/pods"
MERGE = {"Content-Type": "application/merge-patch+json"}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(backend="memory", file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


def pod(name: str, node: str = "n1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"containers": [{"name": "c", "image": "busybox"}], **({"nodeName": node} if node else {}),
                     **spec}}


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


async def test_an_unscheduled_pod_goes_at_once(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("p", node=""))
        gone = await http.delete(f"{PODS}/p")
        assert gone.status_code == 200 and gone.json()["kind"] == "Pod"
        assert (await http.get(f"{PODS}/p")).status_code == 404


async def test_a_bound_pod_waits_its_termination_grace_period(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("p"))
        before = datetime.now(timezone.utc).replace(microsecond=0)
        answer = await http.delete(f"{PODS}/p")
        assert answer.status_code == 200
        meta = answer.json()["metadata"]
        assert meta["deletionGracePeriodSeconds"] == 30
        assert before + timedelta(seconds=30) <= when(meta["deletionTimestamp"]) <= before + timedelta(seconds=32)
        kept = (await http.get(f"{PODS}/p")).json()
        assert kept["metadata"]["deletionTimestamp"] == meta["deletionTimestamp"]
        # a second delete with no (or a longer) grace changes nothing
        again = await http.delete(f"{PODS}/p", params={"gracePeriodSeconds": "60"})
        assert again.json()["metadata"] == kept["metadata"]
        assert (await http.delete(f"{PODS}/p")).json()["metadata"] == kept["metadata"]
        # a shorter one brings the deadline closer by the difference
        shorter = (await http.delete(f"{PODS}/p", params={"gracePeriodSeconds": "10"})).json()["metadata"]
        assert shorter["deletionGracePeriodSeconds"] == 10
        assert when(shorter["deletionTimestamp"]) == when(meta["deletionTimestamp"]) - timedelta(seconds=20)
        # grace 0 (kubectl delete --grace-period=0 --force, a kubelet's last word) removes it
        assert (await http.delete(f"{PODS}/p", params={"gracePeriodSeconds": "0"})).status_code == 200
        assert (await http.get(f"{PODS}/p")).status_code == 404


async def test_grace_comes_from_the_spec_or_the_delete_options_body(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("spec", terminationGracePeriodSeconds=7))
        assert (await http.delete(f"{PODS}/spec")).json()["metadata"]["deletionGracePeriodSeconds"] == 7
        await http.post(PODS, json=pod("body"))
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 5}
        answer = await http.request("DELETE", f"{PODS}/body", json=options)
        assert answer.json()["metadata"]["deletionGracePeriodSeconds"] == 5
        await http.post(PODS, json=pod("negative"))
        negative = await http.delete(f"{PODS}/negative", params={"gracePeriodSeconds": "-5"})
        assert negative.json()["metadata"]["deletionGracePeriodSeconds"] == 1  # kube: negative means 1s
        await http.post(PODS, json=pod("force"))
        forced = {"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                  "propagationPolicy": "Background"}
        assert (await http.request("DELETE", f"{PODS}/force", json=forced)).status_code == 200
        assert (await http.get(f"{PODS}/force")).status_code == 404
        bad = await http.delete(f"{PODS}/spec", params={"gracePeriodSeconds": "soon"})
        assert bad.status_code == 400


async def test_a_finished_pod_goes_at_once(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json=pod("done"))
        await http.patch(f"{PODS}/done/status", json={"status": {"phase": "Succeeded"}}, headers=MERGE)
        await http.delete(f"{PODS}/done")
        assert (await http.get(f"{PODS}/done")).status_code == 404


async def test_status_writes_and_finalizers_do_not_cut_the_grace_period_short(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json={**pod("p"), "metadata": {"name": "p", "finalizers": ["example.com/hold"]}})
        await http.delete(f"{PODS}/p")
        await http.patch(f"{PODS}/p/status", json={"status": {"phase": "Running"}}, headers=MERGE)
        await http.patch(f"{PODS}/p", json={"metadata": {"finalizers": None}}, headers=MERGE)
        kept = await http.get(f"{PODS}/p")
        assert kept.status_code == 200 and kept.json()["metadata"]["deletionGracePeriodSeconds"] == 30
        await http.delete(f"{PODS}/p", params={"gracePeriodSeconds": "0"})
        assert (await http.get(f"{PODS}/p")).status_code == 404


async def test_grace_zero_with_a_finalizer_waits_for_the_finalizer(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        await http.post(PODS, json={**pod("p"), "metadata": {"name": "p", "finalizers": ["example.com/hold"]}})
        held = (await http.delete(f"{PODS}/p", params={"gracePeriodSeconds": "0"})).json()["metadata"]
        assert held["deletionGracePeriodSeconds"] == 0 and held["deletionTimestamp"]
        assert (await http.get(f"{PODS}/p")).status_code == 200
        await http.patch(f"{PODS}/p", json={"metadata": {"finalizers": None}}, headers=MERGE)
        assert (await http.get(f"{PODS}/p")).status_code == 404


async def test_dry_run_and_collections(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        for name in ("a", "b"):
            await http.post(PODS, json=pod(name))
        dry = await http.delete(f"{PODS}/a", params={"dryRun": "All"})
        assert dry.json()["metadata"]["deletionGracePeriodSeconds"] == 30
        assert "deletionTimestamp" not in (await http.get(f"{PODS}/a")).json()["metadata"]
        listed = await http.delete(PODS)
        assert {i["metadata"]["deletionGracePeriodSeconds"] for i in listed.json()["items"]} == {30}
        assert len((await http.get(PODS)).json()["items"]) == 2
        await http.delete(PODS, params={"gracePeriodSeconds": "0"})
        assert (await http.get(PODS)).json()["items"] == []


async def test_other_kinds_accept_and_ignore_a_grace_period(tmp_path: Path) -> None:
    async with serve(tmp_path) as http:
        cm = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        await http.post("/api/v1/namespaces/default/configmaps", json=cm)
        answer = await http.delete("/api/v1/namespaces/default/configmaps/c", params={"gracePeriodSeconds": "30"})
        assert answer.status_code == 200 and answer.json()["kind"] == "Status"
        assert (await http.get("/api/v1/namespaces/default/configmaps/c")).status_code == 404


@pytest.mark.parametrize("grace, stays", [(None, True), (0, False), (3, True)])
async def test_store_delete_takes_a_grace_period_keyword(grace: int | None, stays: bool) -> None:
    store = Store(strategy_for(builtin("", "pods")), MemoryStorage(), None, StoreOptions())
    await store.create("default", pod("p"), "v1", WriteOptions())
    if grace is None:
        answer = await store.delete("default", "p", "v1", None, WriteOptions())
    else:
        answer = await store.delete("default", "p", "v1", None, WriteOptions(), grace_period=grace)
    assert bool(answer["metadata"].get("deletionTimestamp"))
    listed = await store.list("default", "v1")
    assert len(listed["items"]) == (1 if stays else 0)
    if stays:
        assert listed["items"][0]["metadata"]["deletionGracePeriodSeconds"] == (30 if grace is None else grace)
