"""Bad input over raw HTTP: every failure is a JSON Status, and nothing stored changes."""
from __future__ import annotations

import hashlib
import re

import json
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import pytest

FOOS = "/apis/hello.zeng.dev/v1/namespaces/default/foos"
ALL_FOOS = "/apis/hello.zeng.dev/v1/foos"
NAMESPACES = "/api/v1/namespaces"
JSON = {"Content-Type": "application/json"}


def foo(name: str | None, msg: str = "hi", **meta: object) -> dict:
    metadata: dict[str, object] = dict(meta)
    if name is not None:
        metadata["name"] = name
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": metadata, "spec": {"msg": msg}}


def assert_status(resp: httpx.Response, code: int, reason: str) -> dict:
    """The response is a JSON `Status` with this code and reason, and shows no traceback."""
    assert resp.status_code == code, resp.text
    assert "Traceback" not in resp.text and 'File "' not in resp.text, resp.text
    assert resp.headers["content-type"].startswith("application/json"), resp.headers
    status = resp.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1", status
    assert status["status"] == "Failure", status
    assert status["code"] == code, status
    assert status["reason"] == reason, status
    assert status.get("message"), status
    return status


def cause_fields(status: dict) -> list[str]:
    return [cause.get("field") for cause in status["details"]["causes"]]


@pytest.fixture
def http(kapi) -> Iterator[httpx.Client]:
    with kapi.client() as client:
        yield client


def snapshot(http: httpx.Client) -> dict[str, list[dict]]:
    """Every stored foo and namespace, to compare before and after a failed request."""
    state = {}
    for path in (ALL_FOOS, NAMESPACES):
        resp = http.get(path)
        assert resp.status_code == 200, resp.text
        state[path] = sorted(resp.json()["items"], key=lambda o: (o["metadata"].get("namespace", ""),
                                                                  o["metadata"]["name"]))
    return state


@pytest.fixture
def unchanged(http: httpx.Client) -> Iterator[None]:
    """Fails the test if the stored foos or namespaces differ after it from before it."""
    before = snapshot(http)
    yield
    assert snapshot(http) == before


@pytest.fixture
def existing(http: httpx.Client, request: pytest.FixtureRequest) -> dict:
    """A stored Foo whose name is unique to the test; made before `unchanged` takes its snapshot."""
    readable = re.sub(r"[^a-z0-9-]+", "-", request.node.originalname.replace("_", "-").lower())[:40].strip("-")
    name = f"bad-{readable}-{hashlib.sha1(request.node.name.encode()).hexdigest()[:8]}"
    resp = http.post(FOOS, json=foo(name, "original"))
    assert resp.status_code == 201, resp.text
    return resp.json()


def get_foo(http: httpx.Client, name: str) -> dict:
    resp = http.get(f"{FOOS}/{name}")
    assert resp.status_code == 200, resp.text
    return resp.json()


# ---------------------------------------------------------------- 400


def test_malformed_json_is_400(http, unchanged) -> None:
    resp = http.post(FOOS, content=b'{"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {',
                     headers=JSON)
    assert_status(resp, 400, "BadRequest")


def test_malformed_yaml_is_400(http, unchanged) -> None:
    body = b"apiVersion: hello.zeng.dev/v1\nkind: Foo\nmetadata: [\n  name: : x\n"
    resp = http.post(FOOS, content=body, headers={"Content-Type": "application/yaml"})
    assert_status(resp, 400, "BadRequest")


def test_body_not_an_object_is_400(http, unchanged) -> None:
    resp = http.post(FOOS, content=b'["a", "list"]', headers=JSON)
    assert_status(resp, 400, "BadRequest")


def test_malformed_patch_bodies_are_400(http, existing, unchanged) -> None:
    url = f"{FOOS}/{existing['metadata']['name']}"
    for ctype, body in [("application/merge-patch+json", b"{not json"),
                        ("application/json-patch+json", b"[{"),
                        ("application/strategic-merge-patch+json", b"{\"spec\": ")]:
        resp = http.patch(url, content=body, headers={"Content-Type": ctype})
        assert_status(resp, 400, "BadRequest")
    assert get_foo(http, existing["metadata"]["name"]) == existing


# ---------------------------------------------------------------- 404


def test_an_unserved_group_is_a_plain_404_page(http, unchanged) -> None:
    """kube's mux answers a group nobody serves with text, not a Status."""
    for resp in (http.get("/apis/nope.example.com/v1/namespaces/default/things"),
                 http.post("/apis/nope.example.com/v1/namespaces/default/things", json=foo("x"))):
        assert resp.status_code == 404 and resp.text == "404 page not found\n"
        assert resp.headers["content-type"].startswith("text/plain")


@pytest.mark.parametrize("path", [
    "/apis/hello.zeng.dev/v9/namespaces/default/foos",
    "/apis/hello.zeng.dev/v1/namespaces/default/bars",
    "/apis/hello.zeng.dev/v1/bars",
    "/api/v1/namespaces/default/widgets",
])
def test_unknown_resource_is_404(http, unchanged, path: str) -> None:
    assert_status(http.get(path), 404, "NotFound")
    assert_status(http.post(path, json=foo("x")), 404, "NotFound")


def test_missing_object_is_404(http, unchanged) -> None:
    status = assert_status(http.get(f"{FOOS}/does-not-exist"), 404, "NotFound")
    assert status["details"]["name"] == "does-not-exist"
    assert_status(http.delete(f"{FOOS}/does-not-exist"), 404, "NotFound")
    body = foo("does-not-exist", resourceVersion="1")
    assert_status(http.put(f"{FOOS}/does-not-exist", json=body), 404, "NotFound")
    assert_status(http.patch(f"{FOOS}/does-not-exist", json={"spec": {"msg": "x"}},
                             headers={"Content-Type": "application/merge-patch+json"}), 404, "NotFound")


def test_create_in_missing_namespace_is_404(http, unchanged) -> None:
    resp = http.post("/apis/hello.zeng.dev/v1/namespaces/no-such-ns/foos", json=foo("orphan"))
    status = assert_status(resp, 404, "NotFound")
    assert "no-such-ns" in status["message"]
    listed = http.get("/apis/hello.zeng.dev/v1/namespaces/no-such-ns/foos")
    assert listed.status_code in (200, 404)
    if listed.status_code == 200:
        assert listed.json()["items"] == []


# ---------------------------------------------------------------- 405


def test_wrong_method_is_405(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    assert_status(http.post(f"{FOOS}/{name}", json=foo(name)), 405, "MethodNotAllowed")
    assert_status(http.put(FOOS, json=foo(name)), 405, "MethodNotAllowed")
    assert_status(http.patch(FOOS, json={"spec": {"msg": "x"}},
                             headers={"Content-Type": "application/merge-patch+json"}), 405, "MethodNotAllowed")
    assert get_foo(http, name) == existing


# ---------------------------------------------------------------- 409


def test_create_existing_is_409_already_exists(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    status = assert_status(http.post(FOOS, json=foo(name, "second")), 409, "AlreadyExists")
    assert status["details"]["name"] == name
    assert get_foo(http, name) == existing


def test_stale_resource_version_put_is_409_conflict(http, existing) -> None:
    name = existing["metadata"]["name"]
    patched = http.patch(f"{FOOS}/{name}", json={"spec": {"msg": "newer"}},
                         headers={"Content-Type": "application/merge-patch+json"})
    assert patched.status_code == 200, patched.text
    current = patched.json()
    assert current["metadata"]["resourceVersion"] != existing["metadata"]["resourceVersion"]
    before = snapshot(http)

    stale = {**existing, "spec": {"msg": "stale write"}}
    status = assert_status(http.put(f"{FOOS}/{name}", json=stale), 409, "Conflict")
    assert "the object has been modified" in status["message"]
    assert get_foo(http, name) == current
    assert snapshot(http) == before


def test_delete_precondition_mismatch_is_409(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    resp = http.request("DELETE", f"{FOOS}/{name}", json={"preconditions": {"uid": "not-the-uid"}})
    assert_status(resp, 409, "Conflict")
    assert get_foo(http, name) == existing


# ---------------------------------------------------------------- 413 / 415


def test_body_over_3mib_is_413(http, unchanged) -> None:
    body = json.dumps(foo("too-big", "a" * (3 * 1024 * 1024 + 10))).encode()
    assert_status(http.post(FOOS, content=body, headers=JSON), 413, "RequestEntityTooLarge")


def test_chunked_body_over_3mib_is_413(http, unchanged) -> None:
    body = json.dumps(foo("too-big-chunked", "a" * (3 * 1024 * 1024 + 10))).encode()

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i:i + 64 * 1024]

    assert_status(http.post(FOOS, content=chunks(), headers=JSON), 413, "RequestEntityTooLarge")


def test_unsupported_patch_type_is_415(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    for ctype in ("text/plain", "application/xml"):
        resp = http.patch(f"{FOOS}/{name}", content=b'{"spec": {"msg": "x"}}', headers={"Content-Type": ctype})
        assert_status(resp, 415, "UnsupportedMediaType")
    assert get_foo(http, name) == existing


# ---------------------------------------------------------------- 422


def test_put_without_resource_version_is_422(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    body = foo(name, "no rv")
    status = assert_status(http.put(f"{FOOS}/{name}", json=body), 422, "Invalid")
    assert "metadata.resourceVersion" in cause_fields(status)
    assert get_foo(http, name) == existing


def test_unrestricted_update_allows_put_without_resource_version(kapi_factory, tmp_path: Path) -> None:
    server = kapi_factory("--unrestricted-update",
                          name="unrestricted")
    with server.client() as client:
        created = client.post(FOOS, json=foo("free", "one"))
        assert created.status_code == 201, created.text
        resp = client.put(f"{FOOS}/free", json=foo("free", "two"))
        assert resp.status_code == 200, resp.text
        updated = resp.json()
        assert updated["spec"]["msg"] == "two"
        assert updated["metadata"]["uid"] == created.json()["metadata"]["uid"]
        assert int(updated["metadata"]["resourceVersion"]) > int(created.json()["metadata"]["resourceVersion"])
        # a stale resourceVersion still conflicts
        stale = client.put(f"{FOOS}/free", json=created.json())
        assert_status(stale, 409, "Conflict")
        assert client.get(f"{FOOS}/free").json() == updated


@pytest.mark.parametrize("bad_name", ["Bad_Name", "UPPER", "-leading", "a/b", "x" * 254])
def test_invalid_name_is_422(http, unchanged, bad_name: str) -> None:
    status = assert_status(http.post(FOOS, json=foo(bad_name)), 422, "Invalid")
    assert "metadata.name" in cause_fields(status)


def test_missing_name_is_422(http, unchanged) -> None:
    status = assert_status(http.post(FOOS, json=foo(None)), 422, "Invalid")
    assert "metadata.name" in cause_fields(status)


NS_MISMATCH = "the namespace of the provided object does not match the namespace sent on the request"


def test_invalid_namespace_in_body_is_a_mismatch(http, unchanged) -> None:
    status = assert_status(http.post(FOOS, json=foo("ns-bad", namespace="Bad_NS")), 400, "BadRequest")
    assert status["message"] == NS_MISMATCH


def test_namespace_mismatch_is_400(http, existing, unchanged) -> None:
    status = assert_status(http.post(FOOS, json=foo("ns-mismatch", namespace="kube-system")), 400, "BadRequest")
    assert status["message"] == NS_MISMATCH
    name = existing["metadata"]["name"]
    body = {**existing, "metadata": {**existing["metadata"], "namespace": "kube-system"}}
    status = assert_status(http.put(f"{FOOS}/{name}", json=body), 400, "BadRequest")
    assert status["message"] == NS_MISMATCH
    assert get_foo(http, name) == existing


@pytest.mark.parametrize(("field", "value", "message"), [
    ("apiVersion", "hello.zeng.dev/v2", "no kind \"Foo\" is registered for version \"hello.zeng.dev/v2\""),
    ("apiVersion", "other.group/v1", "no kind \"Foo\" is registered for version \"other.group/v1\""),
    ("kind", "Bar", "converting (v1.Bar) to (hello.Foo): unknown conversion"),
])
def test_api_version_kind_mismatch_is_400(http, existing, unchanged, field: str, value: str, message: str) -> None:
    """A compiled kind's decoder refuses a body of another kind or version, in Go's words."""
    body = {**foo("mismatch"), field: value}
    status = assert_status(http.post(FOOS, json=body), 400, "BadRequest")
    assert message in status["message"]
    name = existing["metadata"]["name"]
    body = {**existing, field: value}
    status = assert_status(http.put(f"{FOOS}/{name}", json=body), 400, "BadRequest")
    assert message in status["message"]
    assert get_foo(http, name) == existing


def test_name_mismatch_between_url_and_body_is_rejected(http, existing, unchanged) -> None:
    name = existing["metadata"]["name"]
    body = {**existing, "metadata": {**existing["metadata"], "name": "someone-else"}}
    resp = http.put(f"{FOOS}/{name}", json=body)
    assert resp.status_code in (400, 422), resp.text
    assert_status(resp, resp.status_code, "BadRequest" if resp.status_code == 400 else "Invalid")
    assert get_foo(http, name) == existing


def test_invalid_namespace_object_is_422(http, unchanged) -> None:
    body = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "Bad_Namespace"}}
    status = assert_status(http.post(NAMESPACES, json=body), 422, "Invalid")
    assert "metadata.name" in cause_fields(status)


def test_invalid_label_is_422(http, unchanged) -> None:
    body = foo("bad-label", labels={"app": "not a valid value!"})
    status = assert_status(http.post(FOOS, json=body), 422, "Invalid")
    assert any(field and field.startswith("metadata.labels") for field in cause_fields(status))


@pytest.mark.parametrize(("path", "spec", "field"), [
    (FOOS, {"msg": 5}, "spec.msg"),
    ("/apis/restaurant.wukong.com/v1alpha1/namespaces/default/pizzas", {"size": "huge"}, "spec.size"),
    ("/apis/restaurant.wukong.com/v1alpha1/namespaces/default/pizzas", {"toppings": [{"quantity": 1}]},
     "spec.toppings[0].name"),
])
def test_schema_violation_is_422(http, unchanged, path: str, spec: dict, field: str) -> None:
    kind = "Foo" if "foos" in path else "Pizza"
    api = path.split("/namespaces/")[0].removeprefix("/apis/")
    name = f"schema-bad-{uuid.uuid4().hex[:8]}"
    body = {"apiVersion": api, "kind": kind, "metadata": {"name": name}, "spec": spec}
    status = assert_status(http.post(path, json=body), 422, "Invalid")
    assert field in cause_fields(status)
    assert http.get(f"{path}/{name}").status_code == 404


def test_strict_unknown_field_is_400(http, unchanged) -> None:
    body = foo("strict-unknown")
    body["spec"]["bogus"] = 1
    resp = http.post(FOOS, params={"fieldValidation": "Strict"}, json=body)
    status = assert_status(resp, 400, "BadRequest")
    assert "spec.bogus" in status["message"]


def test_unknown_field_is_pruned_by_default(http) -> None:
    body = foo("prune-unknown")
    body["spec"]["bogus"] = 1
    resp = http.post(FOOS, json=body)
    assert resp.status_code == 201, resp.text
    assert resp.json()["spec"] == {"msg": "hi"}
    assert get_foo(http, "prune-unknown")["spec"] == {"msg": "hi"}


def test_unsupported_body_type_on_create_is_415(http, unchanged) -> None:
    resp = http.post(FOOS, content=json.dumps(foo("plain-text")).encode(), headers={"Content-Type": "text/plain"})
    assert_status(resp, 415, "UnsupportedMediaType")


def test_failed_json_patch_is_422(http, existing, unchanged) -> None:
    url = f"{FOOS}/{existing['metadata']['name']}"
    for ops in ([{"op": "test", "path": "/spec/msg", "value": "not this"}],
                [{"op": "remove", "path": "/spec/nothere"}]):
        resp = http.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
        assert_status(resp, 422, "Invalid")
    assert get_foo(http, existing["metadata"]["name"]) == existing


@pytest.mark.parametrize("name", ["..", "%2E%2E", "..%2F..%2Fescape", "a%2Fb"])
def test_path_like_names_never_escape(kapi, http, unchanged, name: str) -> None:
    url = f"{FOOS}/{name}"
    body = foo("..")
    for resp in (http.get(url), http.put(url, json=body), http.delete(url), http.post(FOOS, json=body)):
        assert 400 <= resp.status_code < 500, resp.text
        assert_status(resp, resp.status_code, resp.json()["reason"])
    assert not (kapi.root.parent / "escape").exists()
