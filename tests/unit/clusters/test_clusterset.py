"""Logical clusters through the whole app, in process: the admin API (`/kapi/clusters`, `/kapi/snapshots`),
`/clusters/<name>/…` kept apart from each other and from the root, forks of snapshots, a cluster's own
faults, and clusters a file backend server finds again after a restart."""
from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any, AsyncIterator

import httpx
import pytest

from kapi.app import create_app
from kapi.clusters.clusterset import check_name
from kapi.storage.factory import kept_cluster_names
from kapi.api import errors
from kapi.config import ServerConfig

CLUSTERS = "/kapi/clusters"
SNAPSHOTS = "/kapi/snapshots"
CMS = "/api/v1/namespaces/default/configmaps"


def cms(cluster: str = "") -> str:
    return f"/clusters/{cluster}{CMS}" if cluster else CMS


def cm(name: str, **data: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": data}


@contextlib.asynccontextmanager
async def serve(tmp_path: Path, backend: str = "memory") -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(ServerConfig(backend=backend, file_rootpath=tmp_path, authn_allow_localhost=True,
                                  load_examples=False))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://kapi") as http:
            yield http


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with serve(tmp_path) as client:
        yield client


async def new_cluster(http: httpx.AsyncClient, name: str, snapshot: str = "") -> dict[str, Any]:
    body = {"name": name, **({"snapshot": snapshot} if snapshot else {})}
    answer = await http.post(CLUSTERS, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()  # type: ignore[no-any-return]


def cm_names(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [i["metadata"]["name"] for i in answer.json()["items"]]


def status_of(answer: httpx.Response, code: int) -> dict[str, Any]:
    assert answer.status_code == code, answer.text
    body = answer.json()
    assert body["kind"] == "Status" and body["code"] == code, body
    return body  # type: ignore[no-any-return]


# ----- names -----------------------------------------------------------------------------------------------------


def test_check_name() -> None:
    assert check_name("test-1", "cluster") == "test-1"
    assert check_name("a" * 63, "cluster") == "a" * 63
    for bad in ("A", "a_b", "-a", "a-", "a.b", "a" * 64, "a/b"):
        with pytest.raises(errors.Invalid):
            check_name(bad, "cluster")
    for missing in ("", None, 3):
        with pytest.raises(errors.BadRequest):
            check_name(missing, "cluster")


def test_check_name_of_a_snapshot_allows_more() -> None:
    for good in ("s1", "My_Fixture.v1", "A", "x" * 253):
        assert check_name(good, "snapshot") == good
    for bad in ("-a", "a.", "_a", "a b", "a/b", "x" * 254):
        with pytest.raises(errors.Invalid):
            check_name(bad, "snapshot")
    with pytest.raises(errors.BadRequest):
        check_name("", "snapshot")


# ----- the admin API ---------------------------------------------------------------------------------------------


async def test_create_list_get_and_refusals(http: httpx.AsyncClient) -> None:
    created = await http.post(CLUSTERS, json={"name": "a"})
    assert created.status_code == 201, created.text
    assert created.json() == {"name": "a", "path": "/clusters/a"}

    listed = await http.get(CLUSTERS)
    assert listed.status_code == 200
    assert [c["name"] for c in listed.json()["clusters"]] == ["root", "a"]
    assert (await http.get(f"{CLUSTERS}/a")).json() == {"name": "a", "path": "/clusters/a"}
    status_of(await http.get(f"{CLUSTERS}/nope"), 404)

    again = status_of(await http.post(CLUSTERS, json={"name": "a"}), 409)
    assert again["reason"] == "AlreadyExists" and '"a"' in again["message"]
    status_of(await http.post(CLUSTERS, json={"name": "root"}), 409)
    for bad in ("Bad_Name", "-a", "x" * 64):
        assert status_of(await http.post(CLUSTERS, json={"name": bad}), 422)["reason"] == "Invalid"
    missing = status_of(await http.post(CLUSTERS, json={"name": "b", "snapshot": "nope"}), 404)
    assert "nope" in missing["message"]
    unknown = status_of(await http.post(CLUSTERS, json={"name": "c", "colour": "red"}), 400)
    assert "colour" in unknown["message"]
    status_of(await http.post(CLUSTERS, content=b"[1]", headers={"Content-Type": "application/json"}), 400)
    status_of(await http.post(CLUSTERS, content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    status_of(await http.post(CLUSTERS, json={"name": "d", "snapshot": 5}), 400)
    # none of the refused requests made a cluster
    assert [c["name"] for c in (await http.get(CLUSTERS)).json()["clusters"]] == ["root", "a"]
    status_of(await http.get("/clusters/b/api"), 404)


async def test_a_cluster_without_a_name_gets_one(http: httpx.AsyncClient) -> None:
    answer = await http.post(CLUSTERS, json={})
    assert answer.status_code == 201, answer.text
    name = answer.json()["name"]
    assert name.startswith("c-")
    assert (await http.get(f"/clusters/{name}/api/v1/namespaces/default")).status_code == 200


async def test_objects_are_kept_apart(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    await new_cluster(http, "b")
    made = await http.post(cms("a"), json=cm("only-in-a", k="v"))
    assert made.status_code == 201, made.text
    assert (await http.get(f"{cms('a')}/only-in-a")).json()["data"] == {"k": "v"}
    assert "only-in-a" in cm_names(await http.get(cms("a")))

    assert (await http.get(f"{cms('b')}/only-in-a")).status_code == 404
    assert (await http.get(f"{CMS}/only-in-a")).status_code == 404
    assert "only-in-a" not in cm_names(await http.get(cms("b")))
    assert "only-in-a" not in cm_names(await http.get(CMS))
    assert "only-in-a" not in cm_names(await http.get("/api/v1/configmaps"))

    rooted = await http.post(CMS, json=cm("only-in-root"))
    assert rooted.status_code == 201
    assert (await http.get(f"{cms('a')}/only-in-root")).status_code == 404
    # the same name in two clusters: two objects
    assert (await http.post(cms("b"), json=cm("only-in-a", k="b"))).status_code == 201
    assert (await http.get(f"{cms('a')}/only-in-a")).json()["data"] == {"k": "v"}


async def test_a_new_cluster_is_bootstrapped(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    namespaces = await http.get("/clusters/a/api/v1/namespaces")
    assert {"default", "kube-system", "kube-public"} <= {n["metadata"]["name"] for n in namespaces.json()["items"]}
    assert (await http.get("/clusters/a/api")).status_code == 200
    assert (await http.get("/clusters/a/readyz")).status_code == 200


async def test_an_unknown_cluster_is_404(http: httpx.AsyncClient) -> None:
    answer = status_of(await http.get("/clusters/nope/api"), 404)
    assert answer["reason"] == "NotFound"
    assert "nope" in answer["message"] and "clusters" in answer["message"]
    assert answer["details"] == {"name": "nope", "kind": "clusters"}
    status_of(await http.post(cms("nope"), json=cm("x")), 404)


async def test_a_deleted_cluster_is_gone(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    assert (await http.post(cms("a"), json=cm("x"))).status_code == 201
    deleted = await http.delete(f"{CLUSTERS}/a")
    assert deleted.status_code == 200, deleted.text
    assert deleted.json()["name"] == "a"
    gone = status_of(await http.get(f"{cms('a')}/x"), 404)
    assert gone["message"] == 'clusters "a" not found'
    status_of(await http.get("/clusters/a/api"), 404)
    status_of(await http.delete(f"{CLUSTERS}/a"), 404)
    assert [c["name"] for c in (await http.get(CLUSTERS)).json()["clusters"]] == ["root"]
    # the name is free again, and the new cluster starts empty
    await new_cluster(http, "a")
    assert (await http.get(f"{cms('a')}/x")).status_code == 404


async def test_the_root_cluster_cannot_be_deleted(http: httpx.AsyncClient) -> None:
    answer = status_of(await http.delete(f"{CLUSTERS}/root"), 405)
    assert answer["reason"] == "MethodNotAllowed"
    assert (await http.get("/api")).status_code == 200


async def test_snapshots_fork_clusters(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "src")
    assert (await http.post(cms("src"), json=cm("one", v="1"))).status_code == 201
    saved = await http.post(SNAPSHOTS, json={"name": "s1", "cluster": "src"})
    assert saved.status_code == 201, saved.text
    assert saved.json()["name"] == "s1" and saved.json()["cluster"] == "src" and saved.json()["objects"] > 0
    assert [s["name"] for s in (await http.get(SNAPSHOTS)).json()["snapshots"]] == ["s1"]
    assert (await http.get(f"{SNAPSHOTS}/s1")).json()["cluster"] == "src"
    assert (await http.post(cms("src"), json=cm("after-snapshot"))).status_code == 201

    fork = await new_cluster(http, "f1", snapshot="s1")
    assert fork == {"name": "f1", "path": "/clusters/f1", "snapshot": "s1"}
    assert (await http.get(f"{cms('f1')}/one")).json()["data"] == {"v": "1"}
    assert (await http.get(f"{cms('f1')}/after-snapshot")).status_code == 404

    one = (await http.get(f"{cms('f1')}/one")).json()
    one["data"] = {"v": "fork"}
    assert (await http.put(f"{cms('f1')}/one", json=one)).status_code == 200
    assert (await http.post(cms("f1"), json=cm("fork-only"))).status_code == 201
    assert (await http.delete(f"{cms('src')}/after-snapshot")).status_code == 200

    assert (await http.get(f"{cms('src')}/one")).json()["data"] == {"v": "1"}
    assert (await http.get(f"{cms('src')}/fork-only")).status_code == 404

    await new_cluster(http, "f2", snapshot="s1")
    assert (await http.get(f"{cms('f2')}/one")).json()["data"] == {"v": "1"}
    assert (await http.get(f"{cms('f2')}/fork-only")).status_code == 404
    assert (await http.get(f"{cms('f2')}/after-snapshot")).status_code == 404
    assert (await http.get(f"{cms('f1')}/one")).json()["data"] == {"v": "fork"}


async def test_snapshot_refusals_and_forgetting(http: httpx.AsyncClient) -> None:
    status_of(await http.post(SNAPSHOTS, json={"name": "s", "cluster": "nope"}), 404)
    status_of(await http.post(SNAPSHOTS, json={"name": "s", "cluster": "root", "x": 1}), 400)
    for bad in ("-bad", "a b", "bad_", "x" * 254):
        status_of(await http.post(SNAPSHOTS, json={"name": bad, "cluster": "root"}), 422)
    assert (await http.post(SNAPSHOTS, json={"name": "My_Fixture.v1", "cluster": "root"})).status_code == 201
    assert (await http.post(CMS, json=cm("in-root"))).status_code == 201
    assert (await http.post(SNAPSHOTS, json={"name": "s"})).status_code == 201  # the root by default
    status_of(await http.post(SNAPSHOTS, json={"name": "s"}), 409)
    await new_cluster(http, "from-root", snapshot="s")
    assert (await http.get(f"{cms('from-root')}/in-root")).status_code == 200

    assert (await http.delete(f"{SNAPSHOTS}/s")).status_code == 200
    status_of(await http.get(f"{SNAPSHOTS}/s"), 404)
    status_of(await http.post(CLUSTERS, json={"name": "late", "snapshot": "s"}), 404)
    assert (await http.get(f"{cms('from-root')}/in-root")).status_code == 200  # forks outlive their snapshot


async def test_fresh_clusters_have_their_own_resource_versions(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    await new_cluster(http, "b")
    b_before = int((await http.get(cms("b"))).json()["metadata"]["resourceVersion"])
    a_rvs = []
    for i in range(5):
        made = await http.post(cms("a"), json=cm(f"a{i}"))
        a_rvs.append(int(made.json()["metadata"]["resourceVersion"]))
    assert a_rvs == list(range(a_rvs[0], a_rvs[0] + 5))  # nothing else wrote to a meanwhile
    assert int((await http.get(cms("b"))).json()["metadata"]["resourceVersion"]) == b_before
    b_rv = int((await http.post(cms("b"), json=cm("b0"))).json()["metadata"]["resourceVersion"])
    assert b_rv == b_before + 1
    assert b_rv < a_rvs[-1]
    assert (await http.post(CMS, json=cm("r0"))).status_code == 201  # nor do the root's writes move a's
    assert int((await http.get(cms("a"))).json()["metadata"]["resourceVersion"]) == a_rvs[-1]


# ----- faults ----------------------------------------------------------------------------------------------------

FAIL_LIST = {"type": "Fail", "code": 500, "verbs": ["list"], "resource": "configmaps"}


async def test_a_fault_concerns_its_cluster_only(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    await new_cluster(http, "b")
    posted = await http.post("/clusters/a/kapi/faults", json=FAIL_LIST)
    assert posted.status_code == 201, posted.text
    fault_id = posted.json()["id"]
    assert posted.json() == {"id": fault_id, "type": "Fail", "verbs": ["list"], "resource": "configmaps",
                             "code": 500}

    failed = status_of(await http.get(cms("a")), 500)
    assert failed["reason"] == "InternalError" and fault_id in failed["message"]
    assert (await http.get(cms("b"))).status_code == 200
    assert (await http.get(CMS)).status_code == 200
    assert (await http.get("/clusters/a/api/v1/namespaces/default/secrets")).status_code == 200
    assert (await http.post(cms("a"), json=cm("x"))).status_code == 201  # create is not list
    assert (await http.get(f"{cms('a')}/x")).status_code == 200  # nor is get

    assert [f["id"] for f in (await http.get("/clusters/a/kapi/faults")).json()["faults"]] == [fault_id]
    assert (await http.get("/clusters/b/kapi/faults")).json()["faults"] == []
    assert (await http.get("/kapi/faults")).json()["faults"] == []

    cleared = await http.delete("/clusters/a/kapi/faults")
    assert cleared.status_code == 200
    assert (await http.get("/clusters/a/kapi/faults")).json()["faults"] == []
    assert (await http.get(cms("a"))).status_code == 200


async def test_one_fault_taken_back_by_id(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    fault_id = (await http.post("/clusters/a/kapi/faults", json=FAIL_LIST)).json()["id"]
    assert (await http.get(f"/clusters/a/kapi/faults/{fault_id}")).json()["id"] == fault_id
    assert (await http.delete(f"/clusters/a/kapi/faults/{fault_id}")).status_code == 200
    assert (await http.get(cms("a"))).status_code == 200
    status_of(await http.get(f"/clusters/a/kapi/faults/{fault_id}"), 404)


async def test_a_paused_storage(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    await new_cluster(http, "b")
    assert (await http.post("/clusters/a/kapi/faults", json={"type": "PauseStorage"})).status_code == 201

    paused = status_of(await http.get(cms("a")), 503)
    assert paused["reason"] == "ServiceUnavailable"
    assert paused["details"]["retryAfterSeconds"] == 1
    status_of(await http.post(cms("a"), json=cm("x")), 503)
    assert (await http.get("/clusters/a/readyz")).status_code != 200
    assert (await http.get("/clusters/b/readyz")).status_code == 200
    assert (await http.get("/readyz")).status_code == 200
    assert (await http.get(cms("b"))).status_code == 200
    assert (await http.get("/clusters/a/kapi/faults")).status_code == 200  # faults can still be taken back

    assert (await http.delete("/clusters/a/kapi/faults")).status_code == 200
    assert (await http.get("/clusters/a/readyz")).status_code == 200
    assert (await http.get(cms("a"))).status_code == 200


async def test_a_conflict_counted_once_fails_one_update(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    made = (await http.post(cms("a"), json=cm("x", v="0"))).json()
    posted = await http.post("/clusters/a/kapi/faults",
                             json={"type": "Conflict", "count": 1, "resource": "configmaps"})
    assert posted.status_code == 201, posted.text
    answers = []
    for v in ("1", "2", "3"):
        current = (await http.get(f"{cms('a')}/x")).json()
        current["data"] = {"v": v}
        answers.append(await http.put(f"{cms('a')}/x", json=current))
    assert [a.status_code for a in answers] == [409, 200, 200]
    refused = answers[0].json()
    assert refused["reason"] == "Conflict"
    assert refused["message"] == ('Operation cannot be fulfilled on configmaps "x": the object has been modified; '
                                  "please apply your changes to the latest version and try again")
    assert (await http.get(f"{cms('a')}/x")).json()["data"] == {"v": "3"}
    assert made["data"] == {"v": "0"}
    assert (await http.get("/clusters/a/kapi/faults")).json()["faults"] == []  # used up


async def test_bad_faults_are_400(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    for spec in ({"type": "Explode"}, {"type": "Fail"}, {"type": "Fail", "code": 500, "extra": 1},
                 {"type": "Conflict", "verbs": ["get"]}, {"type": "Delay"}, [1], "Fail"):
        status_of(await http.post("/clusters/a/kapi/faults", json=spec), 400)
    status_of(await http.post("/clusters/a/kapi/faults", content=b"{not json"), 400)
    expire = status_of(await http.post("/clusters/a/kapi/faults",
                                       json={"type": "ExpireWatches", "resource": "configmaps", "count": 1}), 400)
    assert "ExpireWatches" in expire["message"]
    assert (await http.get("/clusters/a/kapi/faults")).json()["faults"] == []


async def test_expire_watches_ends_only_that_clusters_watches(http: httpx.AsyncClient) -> None:
    await new_cluster(http, "a")
    await new_cluster(http, "b")

    async def watch(cluster: str) -> httpx.Response:
        return await http.get(cms(cluster), params={"watch": "1", "timeoutSeconds": "3"})

    started = asyncio.get_running_loop().time()
    in_a = asyncio.create_task(watch("a"))
    await asyncio.sleep(0.3)
    ended = await http.post("/clusters/a/kapi/faults", json={"type": "ExpireWatches", "resource": "configmaps"})
    assert ended.status_code == 200, ended.text
    assert ended.json() == {"type": "ExpireWatches", "ended": 1}
    answer = await asyncio.wait_for(in_a, 5)
    assert asyncio.get_running_loop().time() - started < 2.5  # ended by the action, not by its timeout
    assert "Expired" in answer.text or "410" in answer.text
    nothing = await http.post("/clusters/b/kapi/faults", json={"type": "ExpireWatches"})
    assert nothing.json() == {"type": "ExpireWatches", "ended": 0}


# ----- a file backend server -------------------------------------------------------------------------------------


async def test_file_backend_clusters_survive_a_restart(tmp_path: Path) -> None:
    async with serve(tmp_path, backend="file") as http:
        await new_cluster(http, "kept")
        await new_cluster(http, "dropped")
        assert (await http.post(cms("kept"), json=cm("survivor", v="1"))).status_code == 201
        assert (await http.post(cms("dropped"), json=cm("lost"))).status_code == 201
        assert (tmp_path / "clusters" / "dropped").is_dir()
        assert (await http.delete(f"{CLUSTERS}/dropped")).status_code == 200
        assert not (tmp_path / "clusters" / "dropped").exists()
    assert await kept_cluster_names("file", tmp_path) == ["kept"]

    async with serve(tmp_path, backend="file") as http:
        assert [c["name"] for c in (await http.get(CLUSTERS)).json()["clusters"]] == ["root", "kept"]
        assert (await http.get(f"{cms('kept')}/survivor")).json()["data"] == {"v": "1"}
        assert (await http.get(f"{CMS}/survivor")).status_code == 404
        status_of(await http.get(f"{cms('dropped')}/lost"), 404)
        # and it keeps working: a write, then a third start
        assert (await http.post(cms("kept"), json=cm("second"))).status_code == 201

    async with serve(tmp_path, backend="file") as http:
        assert {"survivor", "second"} <= set(cm_names(await http.get(cms("kept"))))
