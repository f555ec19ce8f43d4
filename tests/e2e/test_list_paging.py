"""Consistent pagination, continue tokens, resourceVersion semantics and selectors, over raw HTTP."""
from __future__ import annotations

import base64
import uuid
from typing import Any, Iterator

import httpx
import orjson
import pytest

API = "hello.zeng.dev/v1"
PIZZAS = "/apis/restaurant.wukong.com/v1alpha1/namespaces/default/pizzas"
MERGE = {"Content-Type": "application/merge-patch+json"}


def foos(namespace: str = "", name: str = "") -> str:
    where = f"namespaces/{namespace}/" if namespace else ""
    return f"/apis/{API}/{where}foos" + (f"/{name}" if name else "")


def new_namespace(c: httpx.Client) -> str:
    name = f"pg-{uuid.uuid4().hex[:6]}"
    r = c.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    assert r.status_code == 201, r.text
    return name


def create(c: httpx.Client, ns: str, name: str, msg: str = "m", labels: dict[str, str] | None = None) -> dict:
    r = c.post(foos(ns), json={"apiVersion": API, "kind": "Foo",
                               "metadata": {"name": name, "labels": labels or {}}, "spec": {"msg": msg}})
    assert r.status_code == 201, r.text
    return r.json()


def set_msg(c: httpx.Client, ns: str, name: str, msg: str) -> dict:
    r = c.patch(foos(ns, name), content=orjson.dumps({"spec": {"msg": msg}}), headers=MERGE)
    assert r.status_code == 200, r.text
    return r.json()


def delete(c: httpx.Client, ns: str, name: str) -> None:
    r = c.delete(foos(ns, name))
    assert r.status_code == 200, r.text


def state(items: list[dict]) -> dict[str, tuple[str, str]]:
    return {o["metadata"]["name"]: (o["metadata"]["resourceVersion"], o["spec"]["msg"]) for o in items}


def assert_status(r: httpx.Response, code: int, reason: str) -> dict:
    assert r.status_code == code, r.text
    body = r.json()
    assert (body["kind"], body["apiVersion"], body["status"], body["code"], body["reason"]) == (
        "Status", "v1", "Failure", code, reason), body
    return body


@pytest.fixture
def c(kapi: Any) -> Iterator[httpx.Client]:
    with kapi.client() as client:
        yield client


# ---------------------------------------------------------------- pagination

def test_pages_of_7_over_100_objects_stay_consistent_under_writes(c: httpx.Client) -> None:
    ns = new_namespace(c)
    for i in range(100):
        create(c, ns, f"p{i:03d}", msg=f"v{i}")
    first = c.get(foos(ns), params={"limit": "7"})
    assert first.status_code == 200
    rv = first.json()["metadata"]["resourceVersion"]
    snapshot = state(c.get(foos(ns), params={"resourceVersion": rv, "resourceVersionMatch": "Exact"}).json()["items"])
    assert len(snapshot) == 100

    pages, page, expected_now = [], first.json(), 100
    while True:
        pages.append(page)
        meta = page["metadata"]
        assert meta["resourceVersion"] == rv  # every page is read at the first page's revision
        seen = sum(len(p["items"]) for p in pages)
        if not meta.get("continue"):
            assert "remainingItemCount" not in meta
            break
        assert len(page["items"]) == 7
        assert meta["remainingItemCount"] == 100 - seen
        # Writes between pages: none of them may show up in later pages.
        k = len(pages)
        create(c, ns, f"p{7 * k + 3:03d}x", msg="created-later")  # sorts into a page still to come
        create(c, ns, f"zz-{k}", msg="created-later")
        expected_now += 2
        if 7 * k + 5 < 100:
            set_msg(c, ns, f"p{7 * k + 5:03d}", "updated-later")  # not listed yet
        if 7 * k + 6 < 100:
            delete(c, ns, f"p{7 * k + 6:03d}")  # not listed yet
            expected_now -= 1
        set_msg(c, ns, f"p{7 * k - 2:03d}", "updated-after-listing")  # already listed
        page = c.get(foos(ns), params={"limit": "7", "continue": meta["continue"]}).json()

    names = [o["metadata"]["name"] for p in pages for o in p["items"]]
    assert len(pages) == 15 and len(names) == 100
    assert names == sorted(set(names))  # key order, no duplicates
    assert state([o for p in pages for o in p["items"]]) == snapshot  # exactly the state at the first revision

    now = c.get(foos(ns)).json()
    assert int(now["metadata"]["resourceVersion"]) > int(rv)
    assert len(now["items"]) == expected_now


def test_remaining_item_count_and_limits(c: httpx.Client) -> None:
    ns = new_namespace(c)
    for i in range(10):
        create(c, ns, f"r{i}", labels={"even": str(i % 2 == 0).lower()})
    r = c.get(foos(ns), params={"limit": "3"}).json()
    assert [o["metadata"]["name"] for o in r["items"]] == ["r0", "r1", "r2"]
    assert r["metadata"]["remainingItemCount"] == 7
    exact = c.get(foos(ns), params={"limit": "10"}).json()  # exactly all: no continue
    assert len(exact["items"]) == 10 and "continue" not in exact["metadata"]
    assert "remainingItemCount" not in exact["metadata"]
    assert len(c.get(foos(ns), params={"limit": "0"}).json()["items"]) == 10  # 0 = no limit

    # With a selector the count is unknown (kube omits it); pages still hold `limit` matches.
    filtered = c.get(foos(ns), params={"limit": "2", "labelSelector": "even=true"}).json()
    assert [o["metadata"]["name"] for o in filtered["items"]] == ["r0", "r2"]
    assert filtered["metadata"]["continue"] and "remainingItemCount" not in filtered["metadata"]
    names = []
    while True:
        names += [o["metadata"]["name"] for o in filtered["items"]]
        if not filtered["metadata"].get("continue"):
            break
        filtered = c.get(foos(ns), params={"limit": "2", "labelSelector": "even=true",
                                           "continue": filtered["metadata"]["continue"]}).json()
    assert names == ["r0", "r2", "r4", "r6", "r8"]
    assert_status(c.get(foos(ns), params={"limit": "many"}), 400, "BadRequest")


# ---------------------------------------------------------------- continue tokens

def _flip(token: str, at: int) -> str:
    ch = token[at]
    return token[:at] + ("A" if ch != "A" else "B") + token[at + 1:]


def test_forged_garbled_and_foreign_continue_tokens_are_400(c: httpx.Client) -> None:
    ns, other = new_namespace(c), new_namespace(c)
    for i in range(5):
        create(c, ns, f"t{i}")
        create(c, other, f"t{i}")
    token = c.get(foos(ns), params={"limit": "2"}).json()["metadata"]["continue"]
    assert c.get(foos(ns), params={"limit": "2", "continue": token}).status_code == 200

    # Flipping characters anywhere breaks the token or its signature.
    for at in (0, len(token) // 3, len(token) // 2, len(token) - 2):
        forged = _flip(token, at)
        assert_status(c.get(foos(ns), params={"limit": "2", "continue": forged}), 400, "BadRequest")
    # A payload rewritten by hand (another start key, an older revision) keeps a now-wrong signature.
    outer = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    payload = orjson.loads(outer["p"])
    for change in ({"start": payload["start"].replace("t1", "t3")}, {"rv": 1}):
        outer["p"] = orjson.dumps({**payload, **change}).decode()
        forged = base64.urlsafe_b64encode(orjson.dumps(outer)).decode().rstrip("=")
        assert_status(c.get(foos(ns), params={"limit": "2", "continue": forged}), 400, "BadRequest")
    # Garbage of every shape.
    for garbled in ("not-a-token", "%%%", "e30", base64.urlsafe_b64encode(b'{"p": 1, "s": 2}').decode(), "a" * 5000):
        assert_status(c.get(foos(ns), params={"limit": "2", "continue": garbled}), 400, "BadRequest")
    # A genuine token belongs to its collection: not another namespace's, not another resource's.
    assert_status(c.get(foos(other), params={"limit": "2", "continue": token}), 400, "BadRequest")
    pizza = {"apiVersion": "restaurant.wukong.com/v1alpha1", "kind": "Pizza", "spec": {"toppings": [{"name": "cheese"}]}}
    for i in range(3):
        r = c.post(PIZZAS, json={**pizza, "metadata": {"name": f"pz-{ns}-{i}"}})
        assert r.status_code == 201, r.text
    pizza_token = c.get(PIZZAS, params={"limit": "1"}).json()["metadata"]["continue"]
    assert_status(c.get(foos(ns), params={"limit": "2", "continue": pizza_token}), 400, "BadRequest")
    # A continue token cannot be combined with an explicit revision.
    assert_status(c.get(foos(ns), params={"limit": "2", "continue": token, "resourceVersion": "5"}), 422, "Invalid")


def test_expired_continue_token_and_revision_are_410(kapi_factory: Any) -> None:
    server = kapi_factory("--watch-event-window", "10", "--backend", "memory", name="expiring")
    with server.client() as c:
        for i in range(20):
            create(c, "default", f"e{i:02d}")
        first = c.get(foos("default"), params={"limit": "5"}).json()
        rv = first["metadata"]["resourceVersion"]
        fresh = c.get(foos("default"), params={"limit": "5", "continue": first["metadata"]["continue"]})
        assert fresh.status_code == 200 and fresh.json()["metadata"]["resourceVersion"] == rv
        for i in range(12):  # more writes than the window keeps
            set_msg(c, "default", "e19", f"w{i}")
        body = assert_status(c.get(foos("default"), params={"limit": "5", "continue": first["metadata"]["continue"]}),
                             410, "Expired")
        assert "too old" in body["message"]
        body = assert_status(c.get(foos("default"), params={"resourceVersion": rv, "resourceVersionMatch": "Exact"}),
                             410, "Expired")
        # A new list (no token) works and starts a fresh, valid chain.
        again = c.get(foos("default"), params={"limit": "5"}).json()
        assert int(again["metadata"]["resourceVersion"]) > int(rv)
        assert c.get(foos("default"), params={"limit": "5", "continue": again["metadata"]["continue"]}).status_code == 200


# ---------------------------------------------------------------- resourceVersion semantics

def test_resource_version_semantics_for_list_and_get(c: httpx.Client) -> None:
    ns = new_namespace(c)
    create(c, ns, "a", msg="old")
    create(c, ns, "b", msg="old")
    old_rv = c.get(foos(ns)).json()["metadata"]["resourceVersion"]
    set_msg(c, ns, "a", "new")
    delete(c, ns, "b")
    create(c, ns, "c", msg="new")

    exact = c.get(foos(ns), params={"resourceVersion": old_rv, "resourceVersionMatch": "Exact"}).json()
    assert exact["metadata"]["resourceVersion"] == old_rv
    assert {n: m for n, (_, m) in state(exact["items"]).items()} == {"a": "old", "b": "old"}
    # limit with a revision and no match: exact too (kube's table), and later pages follow it.
    paged = c.get(foos(ns), params={"resourceVersion": old_rv, "limit": "1"}).json()
    assert [o["spec"]["msg"] for o in paged["items"]] == ["old"] and paged["metadata"]["resourceVersion"] == old_rv
    rest = c.get(foos(ns), params={"limit": "5", "continue": paged["metadata"]["continue"]}).json()
    assert [o["metadata"]["name"] for o in rest["items"]] == ["b"]

    for params in ({"resourceVersion": old_rv}, {"resourceVersion": old_rv, "resourceVersionMatch": "NotOlderThan"},
                   {"resourceVersion": "0"}, {}):
        latest = c.get(foos(ns), params=params).json()
        assert int(latest["metadata"]["resourceVersion"]) >= int(old_rv), params
        assert {n: m for n, (_, m) in state(latest["items"]).items()} == {"a": "new", "c": "new"}, params

    future = str(int(old_rv) + 100000)
    for params in ({"resourceVersion": future}, {"resourceVersion": future, "resourceVersionMatch": "Exact"},
                   {"resourceVersion": future, "resourceVersionMatch": "NotOlderThan"},
                   {"resourceVersion": future, "watch": "true"}):
        r = c.get(foos(ns), params=params)
        body = assert_status(r, 504, "Timeout")
        assert "Too large resource version" in body["message"], params
    assert c.get(foos(ns, "a"), params={"resourceVersion": "0"}).json()["spec"]["msg"] == "new"


@pytest.mark.parametrize(("params", "field"), [
    ({"resourceVersionMatch": "Exact"}, "resourceVersionMatch"),
    ({"resourceVersionMatch": "NotOlderThan"}, "resourceVersionMatch"),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "0"}, "resourceVersionMatch"),
    ({"resourceVersionMatch": "Newest", "resourceVersion": "1"}, "resourceVersionMatch"),
    ({"resourceVersionMatch": "Exact", "resourceVersion": "1", "continue": "x"}, "resourceVersionMatch"),
    ({"sendInitialEvents": "true"}, "sendInitialEvents"),
    ({"watch": "true", "resourceVersionMatch": "Exact", "resourceVersion": "1"}, "resourceVersionMatch"),
    ({"watch": "true", "sendInitialEvents": "true", "allowWatchBookmarks": "true"}, "resourceVersionMatch"),
])
def test_invalid_resource_version_combinations_are_422(c: httpx.Client, params: dict, field: str) -> None:
    body = assert_status(c.get(foos("default"), params=params), 422, "Invalid")
    assert field in [cause["field"] for cause in body["details"]["causes"]], body


# ---------------------------------------------------------------- selectors

LABELS = {
    "s1": {"app": "web", "tier": "front", "env": "prod"},
    "s2": {"app": "web", "tier": "back"},
    "s3": {"app": "db", "env": "dev"},
    "s4": {"app": "cache", "env": "prod", "tier": "front"},
    "s5": {},
}


def names(r: httpx.Response) -> list[str]:
    assert r.status_code == 200, r.text
    return sorted(o["metadata"]["name"] for o in r.json()["items"])


@pytest.fixture
def labelled(c: httpx.Client) -> str:
    ns = new_namespace(c)
    for name, labels in LABELS.items():
        create(c, ns, name, labels=labels)
    return ns


LABEL_CASES = [
    ("app=web", ["s1", "s2"]),
    ("app==web", ["s1", "s2"]),
    ("app!=web", ["s3", "s4", "s5"]),  # also objects without the key
    ("app in (web,db)", ["s1", "s2", "s3"]),
    ("app in ( web , db )", ["s1", "s2", "s3"]),
    ("app in ()", []),  # kube reads "()" as the one empty value
    ("app notin (web,db)", ["s4", "s5"]),
    ("env", ["s1", "s3", "s4"]),
    ("!env", ["s2", "s5"]),
    ("app=web,tier=front", ["s1"]),
    ("env=prod,tier!=back", ["s1", "s4"]),
    ("tier in (front),!env", []),
    ("app,!tier,env notin (prod)", ["s3"]),
    ("", ["s1", "s2", "s3", "s4", "s5"]),
]


@pytest.mark.parametrize(("selector", "expected"), LABEL_CASES)
def test_label_selector_grammar_on_list(c: httpx.Client, labelled: str, selector: str, expected: list[str]) -> None:
    assert names(c.get(foos(labelled), params={"labelSelector": selector})) == expected


def test_field_selectors_on_list(c: httpx.Client, labelled: str) -> None:
    ns = labelled
    assert names(c.get(foos(ns), params={"fieldSelector": "metadata.name=s1"})) == ["s1"]
    assert names(c.get(foos(ns), params={"fieldSelector": "metadata.name==s2"})) == ["s2"]
    assert names(c.get(foos(ns), params={"fieldSelector": "metadata.name!=s1"})) == ["s2", "s3", "s4", "s5"]
    assert names(c.get(foos(ns), params={"fieldSelector": "metadata.name!=s1,metadata.name!=s2"})) == [
        "s3", "s4", "s5"]
    assert names(c.get(foos(ns), params={"fieldSelector": f"metadata.namespace={ns}"})) == list(LABELS)
    # Across namespaces, metadata.namespace picks one namespace or leaves it out.
    assert names(c.get(foos(), params={"fieldSelector": f"metadata.namespace={ns}"})) == list(LABELS)
    everywhere = c.get(foos(), params={"fieldSelector": f"metadata.namespace!={ns}"}).json()["items"]
    assert all(o["metadata"]["namespace"] != ns for o in everywhere)
    both = c.get(foos(ns), params={"labelSelector": "app=web", "fieldSelector": "metadata.name!=s1"})
    assert names(both) == ["s2"]


@pytest.mark.parametrize("selector", ["app in web", "=web", "app in (web", "app in (,", "a,,b", "!", "app=web!",
                                      "-app=web", "key with space=x", "app notin", "app=(web)", "!app=web"])
def test_bad_label_selectors_are_400(c: httpx.Client, selector: str) -> None:
    for params in ({}, {"watch": "true"}):
        assert_status(c.get(foos("default"), params={**params, "labelSelector": selector}), 400, "BadRequest")


@pytest.mark.parametrize("selector", ["metadata.name", "=x", "metadata.name in (a)", "spec.msg=hello",
                                      "metadata.labels=x", "status.phase=Running"])
def test_bad_field_selectors_are_400(c: httpx.Client, selector: str) -> None:
    for params in ({}, {"watch": "true"}):
        assert_status(c.get(foos("default"), params={**params, "fieldSelector": selector}), 400, "BadRequest")


def test_deletecollection_honours_selectors(c: httpx.Client, labelled: str) -> None:
    ns = labelled
    assert_status(c.delete(foos(ns), params={"labelSelector": "app in (web"}), 400, "BadRequest")
    assert_status(c.delete(foos(ns), params={"fieldSelector": "spec.msg=m"}), 400, "BadRequest")
    assert names(c.get(foos(ns))) == list(LABELS)  # nothing deleted by a rejected request

    r = c.delete(foos(ns), params={"labelSelector": "app in (web,db),tier!=back"})
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "FooList" and names(r) == ["s1", "s3"]
    assert names(c.get(foos(ns))) == ["s2", "s4", "s5"]

    assert names(c.delete(foos(ns), params={"labelSelector": "!env"})) == ["s2", "s5"]
    assert names(c.get(foos(ns))) == ["s4"]
    assert names(c.delete(foos(ns), params={"fieldSelector": "metadata.name!=s4"})) == []
    assert names(c.delete(foos(ns), params={"fieldSelector": "metadata.name=s4", "labelSelector": "env=prod"})) == [
        "s4"]
    assert names(c.get(foos(ns))) == []
