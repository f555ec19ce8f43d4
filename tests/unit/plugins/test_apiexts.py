"""Plugin routers ("apiexts"): the shipped pizza router under /wukong, its docs, errors that pass through
as Status, authentication in front of it, acting as the calling user, and `apiexts_prefix` moving it.
"""
from __future__ import annotations

import sys
import types
import uuid
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from kapi.plugins import AdmissionAttributes, AdmissionPlugin, Plugin
from kapi.testing import RunningServer, start_server

PIZZAS = "/apis/restaurant.wukong.com/v1alpha1/namespaces/{ns}/pizzas"
TOKEN = "apiexts-test-token"


@pytest.fixture(scope="module")
def kapi() -> Iterator[RunningServer]:
    with start_server(examples=True) as server:
        yield server


@pytest.fixture
def http(kapi: RunningServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=kapi.url, timeout=10) as client:
        yield client


def name() -> str:
    return f"p-{uuid.uuid4().hex[:8]}"


def test_post_creates_a_pizza_visible_at_the_rest_path(http: httpx.Client) -> None:
    pizza = name()
    made = http.post("/wukong/pizzas/", json={"name": pizza, "size": "large", "toppings": ["basil", "mozzarella"]})
    assert made.status_code == 201, made.text
    assert made.json() == {"name": pizza, "size": "large", "toppings": ["basil", "mozzarella"], "cost": None}
    stored = http.get(f"{PIZZAS.format(ns='default')}/{pizza}")
    assert stored.status_code == 200
    body = stored.json()
    assert body["apiVersion"] == "restaurant.wukong.com/v1alpha1" and body["kind"] == "Pizza"
    assert body["metadata"]["namespace"] == "default" and body["metadata"]["uid"]
    assert body["spec"] == {"size": "large", "toppings": [{"name": "basil"}, {"name": "mozzarella"}]}


def test_defaults_of_the_friendly_form(http: httpx.Client) -> None:
    pizza = name()
    made = http.post("/wukong/pizzas/", json={"name": pizza})
    assert made.status_code == 201, made.text
    assert made.json() == {"name": pizza, "size": "medium", "toppings": [], "cost": None}


def test_get_list_and_one_translate_back(kapi: RunningServer, http: httpx.Client) -> None:
    ns = kapi.create_namespace(prefix="menu-")
    pizza = name()
    # created the Kubernetes way, read the friendly way
    status, body = kapi.request("POST", PIZZAS.format(ns=ns), {
        "apiVersion": "restaurant.wukong.com/v1alpha1", "kind": "Pizza", "metadata": {"name": pizza},
        "spec": {"size": "small", "toppings": [{"name": "ham"}]}})
    assert status == 201, body
    listed = http.get("/wukong/pizzas/", params={"namespace": ns})
    assert listed.status_code == 200
    assert listed.json() == [{"name": pizza, "size": "small", "toppings": ["ham"], "cost": None}]
    one = http.get(f"/wukong/pizzas/{pizza}", params={"namespace": ns})
    assert one.status_code == 200 and one.json()["toppings"] == ["ham"]
    # another namespace does not see it
    assert pizza not in [p["name"] for p in http.get("/wukong/pizzas/").json()]


def test_status_cost_reaches_the_friendly_form(kapi: RunningServer, http: httpx.Client) -> None:
    pizza = name()
    assert http.post("/wukong/pizzas/", json={"name": pizza}).status_code == 201
    status, current = kapi.request("GET", f"{PIZZAS.format(ns='default')}/{pizza}")
    current["status"] = {"cost": 12.5}
    status, body = kapi.request("PUT", f"{PIZZAS.format(ns='default')}/{pizza}/status", current)
    assert status == 200, body
    assert http.get(f"/wukong/pizzas/{pizza}").json()["cost"] == 12.5


def test_delete_removes_the_pizza(http: httpx.Client) -> None:
    pizza = name()
    assert http.post("/wukong/pizzas/", json={"name": pizza, "size": "small"}).status_code == 201
    gone = http.delete(f"/wukong/pizzas/{pizza}")
    assert gone.status_code == 200 and gone.json()["name"] == pizza
    assert http.get(f"{PIZZAS.format(ns='default')}/{pizza}").status_code == 404
    assert pizza not in [p["name"] for p in http.get("/wukong/pizzas/").json()]


@pytest.mark.parametrize("body", [
    {"size": "large"},  # no name
    {"name": "x", "toppings": "basil"},  # not a list
    {"name": "x", "size": ["large"]},
    [],
])
def test_bad_body_is_fastapis_422(http: httpx.Client, body: Any) -> None:
    answer = http.post("/wukong/pizzas/", json=body)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert isinstance(detail, list) and detail and all("loc" in d and "msg" in d for d in detail)


def test_malformed_json_is_422(http: httpx.Client) -> None:
    answer = http.post("/wukong/pizzas/", content=b"{not json", headers={"Content-Type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_invalid_size_is_the_stores_invalid_status(http: httpx.Client) -> None:
    answer = http.post("/wukong/pizzas/", json={"name": "huge-one", "size": "huge"})
    assert answer.status_code == 422
    status = answer.json()
    assert status["kind"] == "Status" and status["apiVersion"] == "v1"
    assert status["reason"] == "Invalid" and status["code"] == 422
    assert status["details"]["kind"] == "Pizza" and status["details"]["name"] == "huge-one"
    assert status["details"]["causes"] == [{
        "reason": "FieldValueNotSupported", "field": "spec.size",
        "message": 'Unsupported value: "huge": supported values: "small", "medium", "large"'}]
    assert http.get(f"{PIZZAS.format(ns='default')}/huge-one").status_code == 404


def test_store_errors_pass_through_as_status(http: httpx.Client) -> None:
    pizza = name()
    assert http.post("/wukong/pizzas/", json={"name": pizza}).status_code == 201
    again = http.post("/wukong/pizzas/", json={"name": pizza})
    assert again.status_code == 409 and again.json()["reason"] == "AlreadyExists"
    missing = http.get("/wukong/pizzas/nope-not-here")
    assert missing.status_code == 404 and missing.json()["reason"] == "NotFound"
    assert missing.json()["details"] == {"name": "nope-not-here", "group": "restaurant.wukong.com",
                                         "kind": "pizzas"}
    assert http.delete("/wukong/pizzas/nope-not-here").status_code == 404
    no_ns = http.post("/wukong/pizzas/", params={"namespace": "no-such-ns"}, json={"name": "p"})
    assert no_ns.status_code == 404 and no_ns.json()["details"]["kind"] == "namespaces"
    bad_name = http.post("/wukong/pizzas/", json={"name": "Not_A_Name"})
    assert bad_name.status_code == 422 and bad_name.json()["reason"] == "Invalid"


def test_docs_and_openapi(http: httpx.Client) -> None:
    docs = http.get("/wukong/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert "/wukong/openapi.json" in docs.text
    spec = http.get("/wukong/openapi.json")
    assert spec.status_code == 200
    doc = spec.json()
    assert doc["info"]["title"] == "kapi apiexts"
    assert set(doc["paths"]) == {"/wukong/pizzas/", "/wukong/pizzas/{name}"}
    assert set(doc["paths"]["/wukong/pizzas/"]) == {"get", "post"}
    assert set(doc["paths"]["/wukong/pizzas/{name}"]) == {"get", "delete"}
    assert "PizzaOrder" in doc["components"]["schemas"]


def test_kubernetes_paths_are_untouched(http: httpx.Client) -> None:
    assert http.get("/apis/restaurant.wukong.com/v1alpha1").status_code == 200
    assert http.get("/readyz").status_code == 200
    assert http.get("/kapi/docs").status_code == 200
    # a path that merely starts with the prefix's letters is not under it
    other = http.get("/wukongs/pizzas/")
    assert other.status_code == 404 and other.json()["kind"] == "Status"


# -- authentication and the calling user ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningServer, list[str]]]:
    """Loopback trust off, one static token; an admission plugin records who writes pizzas."""
    tokens = tmp_path_factory.mktemp("tokens") / "tokens.csv"
    tokens.write_text(f'{TOKEN},alice,1001,"developers"\n')
    users: list[str] = []

    class WhoOrders(AdmissionPlugin):  # type: ignore[misc]
        name = "WhoOrders"

        async def validate(self, attributes: AdmissionAttributes) -> None:
            if attributes.resource == "pizzas" and attributes.user is not None:
                users.append(attributes.user.name)
            if attributes.name == "explode":
                raise RuntimeError("a bug in a plugin")

    module = types.ModuleType(f"kapi_test_who_{uuid.uuid4().hex[:8]}")
    module.plugin = Plugin(admission={"WhoOrders": lambda _reader: WhoOrders()})  # type: ignore[attr-defined]
    sys.modules[module.__name__] = module
    try:
        with start_server(examples=True, authn_allow_localhost=False, token_auth_file=tokens,
                          authorization_modes=("AlwaysAllow",),
                          plugins=(module.__name__,)) as server:
            yield server, users
    finally:
        sys.modules.pop(module.__name__, None)


def test_without_credentials_the_router_answers_401_status(secured: tuple[RunningServer, list[str]]) -> None:
    server, _ = secured
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for method, path in (("GET", "/wukong/pizzas/"), ("POST", "/wukong/pizzas/"), ("GET", "/wukong/docs"),
                             ("GET", "/wukong/openapi.json"), ("DELETE", "/wukong/pizzas/x")):
            answer = http.request(method, path, json={"name": "x"} if method == "POST" else None)
            assert answer.status_code == 401, (method, path, answer.text)
            status = answer.json()
            assert status["kind"] == "Status" and status["reason"] == "Unauthorized" and status["code"] == 401
        wrong = http.get("/wukong/pizzas/", headers={"Authorization": "Bearer wrong-token"})
        assert wrong.status_code == 401 and wrong.json()["reason"] == "Unauthorized"
        assert http.get(PIZZAS.format(ns="default")).status_code == 401  # same as the REST path


def test_with_a_token_the_router_acts_as_that_user(secured: tuple[RunningServer, list[str]]) -> None:
    server, users = secured
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pizza = name()
    with httpx.Client(base_url=server.url, timeout=10, headers=auth) as http:
        made = http.post("/wukong/pizzas/", json={"name": pizza, "size": "small"})
        assert made.status_code == 201, made.text
        assert users == ["alice"]
        assert pizza in [p["name"] for p in http.get("/wukong/pizzas/").json()]
        assert http.get("/wukong/docs").status_code == 200
        assert http.delete(f"/wukong/pizzas/{pizza}").status_code == 200
        assert users == ["alice", "alice"]


def test_an_unexpected_error_behind_the_router_is_a_500_status(secured: tuple[RunningServer, list[str]]) -> None:
    """errors.py: anything but a StatusError escaping a handler becomes a generic 500 *Status*, as on the REST path."""
    server, _ = secured
    auth = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=server.url, timeout=10, headers=auth) as http:
        rest = http.post(PIZZAS.format(ns="default"), json={
            "apiVersion": "restaurant.wukong.com/v1alpha1", "kind": "Pizza", "metadata": {"name": "explode"}})
        assert rest.status_code == 500 and rest.json()["reason"] == "InternalError"
        routed = http.post("/wukong/pizzas/", json={"name": "explode"})
        assert routed.status_code == 500
        assert routed.headers["content-type"].startswith("application/json"), routed.text
        assert routed.json()["kind"] == "Status" and routed.json()["reason"] == "InternalError"
        assert "a bug in a plugin" not in routed.text


# -- the prefix -----------------------------------------------------------------------------------------------
def test_apiexts_prefix_moves_the_routes() -> None:
    with start_server(examples=True, apiexts_prefix="/shop") as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        made = http.post("/shop/pizzas/", json={"name": "moved", "size": "small"})
        assert made.status_code == 201, made.text
        assert http.get("/shop/pizzas/moved").json()["size"] == "small"
        assert http.get(f"{PIZZAS.format(ns='default')}/moved").status_code == 200
        assert http.get("/shop/docs").status_code == 200
        spec = http.get("/shop/openapi.json").json()
        assert set(spec["paths"]) == {"/shop/pizzas/", "/shop/pizzas/{name}"}
        for old in ("/wukong/pizzas/", "/wukong/docs", "/wukong/openapi.json"):
            answer = http.get(old)
            assert answer.status_code == 404 and answer.json()["kind"] == "Status", old


def test_nested_prefix() -> None:
    with start_server(examples=True, apiexts_prefix="/ext/v1") as server, \
            httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.post("/ext/v1/pizzas/", json={"name": "deep"}).status_code == 201
        assert http.get("/ext/v1/pizzas/deep").status_code == 200
        assert http.get("/ext/v1/docs").status_code == 200


def test_without_routers_nothing_is_mounted(tmp_path: Path) -> None:
    with start_server(examples=False) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        answer = http.get("/wukong/pizzas/")
        assert answer.status_code == 404 and answer.json()["kind"] == "Status"
        assert http.get("/wukong/docs").status_code == 404
