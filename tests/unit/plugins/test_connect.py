"""Connect subresources of a plugin's resource: options from the query, admission CONNECT (a Python plugin that
reads and changes the options), what handlers may return, and the errors kube would give."""
from __future__ import annotations

import sys
import types
import uuid
from typing import Any, Iterator

import httpx
import pytest
from starlette.responses import PlainTextResponse

from kapi.plugins import (
    APIGroup, AdmissionAttributes, AdmissionPlugin, Connect, ConnectRequest, Forbidden, KubeObject, Plugin, Resource,
    Version,
)
from kapi.plugins.typed import resource_problems
from kapi.testing import RunningServer, start_server

BASE = "/apis/gadgets.kapi.test/v1/namespaces/default/gadgets"
seen: list[AdmissionAttributes] = []


class Gadget(KubeObject):
    spec: dict[str, Any] | None = None


async def echo(call: ConnectRequest) -> Any:
    """Answers with what it was given, in the form `?as=` asks for."""
    shape = call.options.get("as", "json")
    if shape == "boom":
        raise RuntimeError("a bug in a connect handler")
    if shape == "text":
        return f"{call.request.method} {call.name} {call.options.get('word')}"
    if shape == "bytes":
        return b"\x00\x01"
    if shape == "response":
        return PlainTextResponse("teapot", status_code=418)
    return {"options": call.options, "user": call.user.name if call.user else "", "obj": call.obj["metadata"]["name"],
            "body": (await call.request.body()).decode()}


class Gatekeeper(AdmissionPlugin):  # type: ignore[misc]
    """Records CONNECT requests, stamps the options in the mutating phase and refuses `word=forbidden`."""

    name = "Gatekeeper"

    async def admit(self, attributes: AdmissionAttributes) -> None:
        if attributes.operation == "CONNECT" and attributes.obj is not None:
            attributes.obj["stamped"] = "yes"

    async def validate(self, attributes: AdmissionAttributes) -> None:
        if attributes.operation != "CONNECT":
            return
        seen.append(attributes)
        if attributes.obj and attributes.obj.get("word") == "forbidden":
            raise Forbidden("that word is forbidden")


GADGETS = Resource(kind="Gadget", plural="gadgets", versions=[Version("v1", Gadget, storage=True)],
                   connect=[Connect("echo", echo, methods=("GET", "POST")),
                            Connect("remote-shell", echo, methods=("POST",), options_kind="GadgetShellOptions")])


@pytest.fixture(scope="module")
def kapi() -> Iterator[RunningServer]:
    module = types.ModuleType(f"kapi_test_gadgets_{uuid.uuid4().hex[:8]}")
    module.plugin = Plugin(groups=[APIGroup("gadgets.kapi.test", [GADGETS])],  # type: ignore[attr-defined]
                           admission={"Gatekeeper": lambda _reader: Gatekeeper()})
    sys.modules[module.__name__] = module
    try:
        with start_server(plugins=(module.__name__,)) as server:
            with httpx.Client(base_url=server.url, timeout=10) as http:
                made = http.post(BASE, json={"apiVersion": "gadgets.kapi.test/v1", "kind": "Gadget",
                                             "metadata": {"name": "g1"}})
                assert made.status_code == 201, made.text
            yield server
    finally:
        sys.modules.pop(module.__name__, None)


@pytest.fixture
def http(kapi: RunningServer) -> Iterator[httpx.Client]:
    seen.clear()
    with httpx.Client(base_url=kapi.url, timeout=10) as client:
        yield client


def test_options_come_from_the_query_and_admission_may_change_them(http: httpx.Client) -> None:
    answer = http.post(f"{BASE}/g1/echo", params=[("word", "hi"), ("tag", "a"), ("tag", "b")], content=b"payload")
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/json"
    assert answer.json() == {"options": {"kind": "GadgetEchoOptions", "apiVersion": "gadgets.kapi.test/v1",
                                         "word": "hi", "tag": ["a", "b"], "stamped": "yes"},
                             "user": seen[0].user.name if seen[0].user else "", "obj": "g1", "body": "payload"}
    (attrs,) = seen
    assert (attrs.operation, attrs.group, attrs.version, attrs.resource, attrs.subresource, attrs.kind,
            attrs.namespace, attrs.name, attrs.old_obj) == (
        "CONNECT", "gadgets.kapi.test", "v1", "gadgets", "echo", "GadgetEchoOptions", "default", "g1", None)


@pytest.mark.parametrize("shape, status, content_type, body", [
    ("text", 200, "text/plain; charset=utf-8", b"GET g1 hello"),
    ("bytes", 200, "application/octet-stream", b"\x00\x01"),
    ("response", 418, "text/plain; charset=utf-8", b"teapot"),
])
def test_what_a_handler_returns_is_the_answer(http: httpx.Client, shape: str, status: int, content_type: str,
                                               body: bytes) -> None:
    answer = http.get(f"{BASE}/g1/echo", params={"as": shape, "word": "hello"})
    assert (answer.status_code, answer.headers["content-type"], answer.content) == (status, content_type, body)


def test_admission_refuses_before_the_handler_runs(http: httpx.Client) -> None:
    refused = http.get(f"{BASE}/g1/echo", params={"word": "forbidden"})
    assert refused.status_code == 403
    assert refused.json()["message"] == "that word is forbidden"


@pytest.mark.parametrize("method, path, code, reason", [
    ("DELETE", "/g1/echo", 405, "MethodNotAllowed"),
    ("GET", "/g1/remote-shell", 405, "MethodNotAllowed"),
    ("GET", "/missing/echo", 404, "NotFound"),
    ("GET", "/g1/nosuch", 404, "NotFound"),
    ("GET", "/g1/echo?as=boom", 500, "InternalError"),
])
def test_errors_are_status_objects(http: httpx.Client, method: str, path: str, code: int, reason: str) -> None:
    answer = http.request(method, BASE + path)
    assert (answer.status_code, answer.json()["kind"], answer.json()["reason"]) == (code, "Status", reason)


def test_the_named_options_kind_discovery_and_openapi(http: httpx.Client) -> None:
    shell = http.post(f"{BASE}/g1/remote-shell", params={"word": "x"})
    assert shell.json()["options"]["kind"] == "GadgetShellOptions"
    resources = {r["name"]: r for r in http.get("/apis/gadgets.kapi.test/v1").json()["resources"]}
    assert resources["gadgets/echo"]["verbs"] == ["create", "get"] and \
        resources["gadgets/echo"]["kind"] == "GadgetEchoOptions"
    assert resources["gadgets/remote-shell"]["verbs"] == ["create"]
    aggregated = http.get("/apis", headers={
        "Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"}).json()
    group = next(g for g in aggregated["items"] if g["metadata"]["name"] == "gadgets.kapi.test")
    (resource,) = group["versions"][0]["resources"]
    assert {s["subresource"]: s["verbs"] for s in resource["subresources"]} == {
        "echo": ["create", "get"], "remote-shell": ["create"]}
    paths = http.get("/openapi/v2").json()["paths"]
    echo_ops = paths["/apis/gadgets.kapi.test/v1/namespaces/{namespace}/gadgets/{name}/echo"]
    assert {m: (op["operationId"], op["x-kubernetes-action"], op["x-kubernetes-group-version-kind"]["kind"])
            for m, op in echo_ops.items()} == {
        "get": ("connectGadgetsKapiTestV1GetNamespacedGadgetEcho", "connect", "GadgetEchoOptions"),
        "post": ("connectGadgetsKapiTestV1PostNamespacedGadgetEcho", "connect", "GadgetEchoOptions")}
    shell_ops = paths["/apis/gadgets.kapi.test/v1/namespaces/{namespace}/gadgets/{name}/remote-shell"]
    assert [op["operationId"] for op in shell_ops.values()] == ["connectGadgetsKapiTestV1PostNamespacedGadgetRemoteShell"]


@pytest.mark.parametrize("connect, problem", [
    ([Connect("status", echo)], "connect: names must be unique and neither status nor scale"),
    ([Connect("echo", echo), Connect("echo", echo)], "connect: names must be unique"),
    ([Connect("Bad_Name", echo)], "connect 'Bad_Name': a lowercase RFC 1123 label"),
    ([Connect("echo", echo, methods=("FETCH",))], "connect 'echo': methods must be some of GET"),
    ([Connect("echo", echo, methods=())], "connect 'echo': methods must be some of GET"),
    ([Connect("echo", "not callable")], "connect 'echo': handler must be an async callable"),  # type: ignore[arg-type]
    ([Connect("echo", echo, options_kind="lower")], "connect 'echo': options_kind must be CamelCase"),
])
def test_bad_connect_definitions_are_named(connect: list[Connect], problem: str) -> None:
    resource = Resource(kind="Gadget", plural="gadgets", versions=[Version("v1", Gadget, storage=True)],
                        connect=connect)
    assert any(p.startswith(problem) for p in resource_problems("gadgets.kapi.test", resource)), \
        resource_problems("gadgets.kapi.test", resource)
