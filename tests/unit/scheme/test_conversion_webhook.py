"""CRD conversion webhooks: the CRD's `spec.conversion`, and a Store converting through a real HTTPS webhook."""
from __future__ import annotations

import copy
import socket
from typing import Any, Callable

import pytest

from kapi.api import errors
from kapi.registry.crd_strategy import CRDStrategy
from kapi.registry.store import Store, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.builtin_crd import CUSTOM_RESOURCE_DEFINITIONS
from kapi.scheme.conversion_webhook import WebhookConverter
from kapi.scheme.crd import CRDError, definition_from_crd
from kapi.storage import keys
from kapi.storage.memory import MemoryStorage
from kapi.webhook import ClientConfig
from kapi.webhook.client import close_clients

GROUP = "net.example.com"
Review = dict[str, Any]
Server = Any  # tests/conftest.py's HttpsJsonServer (conftest modules cannot be imported)


def to_version(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """The test webhook's conversion: v1 `spec.hostPort: "h:p"` <-> v2 `spec.host` + `spec.port`."""
    obj = copy.deepcopy(obj)
    spec = obj.setdefault("spec", {})
    if desired.endswith("/v2") and "hostPort" in spec:
        host, _, port = spec.pop("hostPort").partition(":")
        spec.update(host=host, port=int(port))
    elif desired.endswith("/v1") and "host" in spec:
        spec["hostPort"] = f"{spec.pop('host')}:{spec.pop('port')}"
    obj["apiVersion"] = desired
    return obj


def converting(review: Review, tweak: Callable[[dict[str, Any]], None] = lambda _o: None) -> Review:
    request = review["request"]
    converted = [to_version(o, request["desiredAPIVersion"]) for o in request["objects"]]
    for obj in converted:
        tweak(obj)
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "response": {"uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}}


def answer_with(webhook: Server, answer: Callable[[Review], Any]) -> None:
    """The webhook answers POSTs to /convert with `answer(review)` (status 200)."""
    webhook.routes["/convert"] = lambda review: (200, answer(review))


def crd(conversion: dict[str, Any] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "group": GROUP, "scope": "Namespaced",
        "names": {"plural": "endpoints", "singular": "endpoint", "kind": "Endpoint"},
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "hostPort": {"type": "string"}}}}}}},
            {"name": "v2", "served": True, "storage": False, "schema": {"openAPIV3Schema": {
                "type": "object", "properties": {"spec": {"type": "object", "properties": {
                    "host": {"type": "string"}, "port": {"type": "integer"}}}}}}},
        ],
    }
    if conversion is not None:
        spec["conversion"] = conversion
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"endpoints.{GROUP}"}, "spec": spec}


def webhook_conversion(client_config: dict[str, Any], versions: Any = ("v1",)) -> dict[str, Any]:
    return {"strategy": "Webhook", "webhook": {"clientConfig": client_config,
                                               "conversionReviewVersions": list(versions)}}


@pytest.fixture
def webhook(https_json_server: Callable[..., Server]) -> Server:
    server = https_json_server()
    answer_with(server, converting)
    return server


@pytest.fixture(autouse=True)
async def _close_clients() -> Any:
    yield
    await close_clients()


def make_store(conversion: dict[str, Any]) -> tuple[Store, MemoryStorage]:
    storage = MemoryStorage()
    return Store(strategy_for(definition_from_crd(crd(conversion))), storage), storage


def v2(name: str = "db", **labels: str) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v2", "kind": "Endpoint", "metadata": {"name": name, "labels": labels},
            "spec": {"host": "db.local", "port": 5432}}


def test_strategy_webhook_attaches_a_converter_and_none_does_not() -> None:
    config = {"url": "https://conv.example.com/convert", "caBundle": "Zm9v"}
    definition = definition_from_crd(crd(webhook_conversion(config)))
    assert definition.converter == WebhookConverter(GROUP, "Endpoint", "v1",
                                                     ClientConfig("https://conv.example.com/convert", "Zm9v"))
    assert definition_from_crd(crd({"strategy": "None"})).converter is None
    assert definition_from_crd(crd(None)).converter is None
    service = definition_from_crd(crd(webhook_conversion({"service": {"namespace": "ns", "name": "conv"}},
                                                         ["v1beta1", "v1"])))
    assert service.converter.client.url == "https://conv.ns.svc:443"
    assert service.converter.review_version == "v1beta1"


@pytest.mark.parametrize(("conversion", "field", "message"), [
    ({"strategy": "Webhook"}, "spec.conversion.webhookClientConfig",
     "Required value: required when strategy is set to Webhook"),
    ({"strategy": "Webhook", "webhook": {"clientConfig": {"url": "https://x.example.com"}}},
     "spec.conversion.conversionReviewVersions", "Required value"),
    ({"webhook": {}}, "spec.conversion.strategy", "Required value"),
    (webhook_conversion({}), "spec.conversion.webhookClientConfig",
     "Required value: exactly one of url or service is required"),
    (webhook_conversion({"url": "https://x.example.com/?a=b"}), "spec.conversion.webhookClientConfig.url",
     'Invalid value: "a=b": query parameters are not permitted in the URL'),
    (webhook_conversion({"url": "https://x.example.com"}, ["v2"]), "spec.conversion.conversionReviewVersions",
     'Invalid value: []string{"v2"}: must include at least one of v1, v1beta1'),
    ({"strategy": "Magic"}, "spec.conversion.strategy",
     'Unsupported value: "Magic": supported values: "None", "Webhook"'),
    ({"strategy": "None", "webhook": {"clientConfig": {"url": "https://x.example.com"}}},
     "spec.conversion.webhookClientConfig", "Forbidden: should not be set when strategy is not set to Webhook"),
])
def test_conversion_is_validated_in_kubes_words(conversion: dict[str, Any], field: str, message: str) -> None:
    with pytest.raises(CRDError) as exc:
        definition_from_crd(crd(conversion))
    assert (field, message) in {(c.field, c.message) for c in exc.value.causes}


def test_the_crd_strategy_keeps_and_defaults_conversion() -> None:
    strategy = CRDStrategy(CUSTOM_RESOURCE_DEFINITIONS)
    plain = crd(None)
    strategy.default(plain)
    assert plain["spec"]["conversion"] == {"strategy": "None"}
    hooked = crd(webhook_conversion({"service": {"namespace": "ns", "name": "conv", "path": "/convert"}}))
    strategy.default(hooked)
    assert hooked["spec"]["conversion"]["webhook"]["clientConfig"]["service"]["port"] == 443
    assert not [c for c in strategy.validate(hooked, creating=True) if c.field.startswith("spec.conversion")]


async def test_create_in_one_version_read_in_both(webhook: Server) -> None:
    store, storage = make_store(webhook_conversion(webhook.client_config("/convert")))
    created = await store.create("default", v2(), "v2", WriteOptions())
    assert created["apiVersion"] == f"{GROUP}/v2" and created["spec"] == {"host": "db.local", "port": 5432}
    raw = await storage.get(keys.object_key(GROUP, "endpoints", "default", "db"))
    assert raw["apiVersion"] == f"{GROUP}/v1" and raw["spec"] == {"hostPort": "db.local:5432"}
    assert (await store.get("default", "db", "v1"))["spec"] == {"hostPort": "db.local:5432"}
    listed = await store.list("default", "v2")
    assert [o["spec"] for o in listed["items"]] == [{"host": "db.local", "port": 5432}]
    request = webhook.requests[0].body["request"]
    assert webhook.requests[0].body["apiVersion"] == "apiextensions.k8s.io/v1"
    assert request["desiredAPIVersion"] == f"{GROUP}/v1" and request["objects"][0]["apiVersion"] == f"{GROUP}/v2"
    before = len(webhook.requests)
    await store.get("default", "db", "v1")  # already in the storage version: no call
    assert len(webhook.requests) == before


async def test_only_labels_and_annotations_may_change_in_metadata(webhook: Server) -> None:
    store, _ = make_store(webhook_conversion(webhook.client_config("/convert")))
    await store.create("default", v2(app="db"), "v2", WriteOptions())

    def tweak(obj: dict[str, Any]) -> None:
        obj["metadata"].update(labels={"app": "db", "converted": "yes"}, generation=99,
                               annotations={"note": "hi"})

    answer_with(webhook, lambda review: converting(review, tweak))
    got = await store.get("default", "db", "v2")
    assert got["metadata"]["labels"] == {"app": "db", "converted": "yes"}
    assert got["metadata"]["annotations"] == {"note": "hi"} and got["metadata"]["generation"] == 1


@pytest.mark.parametrize(("answer", "reason"), [
    (lambda r: converting(r, lambda o: o["metadata"].update(name="other")),
     "returned invalid converted object at index 0: must have the same name: db != other"),
    (lambda r: converting(r, lambda o: o.update(apiVersion=f"{GROUP}/v9")),
     f"returned invalid converted object at index 0: invalid groupVersion (expected {GROUP}/v2, received "
     f"{GROUP}/v9)"),
    (lambda r: {**converting(r), "response": {**converting(r)["response"], "convertedObjects": []}},
     "returned 0 objects, expected 1"),
    (lambda r: {**converting(r), "response": {"uid": "nope", "result": {"status": "Success"}}},
     'failed: expected response.uid="'),
    (lambda r: {**converting(r), "response": {"uid": r["request"]["uid"],
                                              "result": {"status": "Failure", "message": "cannot convert"}}},
     "failed: cannot convert"),
])
async def test_bad_answers_are_500s_naming_the_source_kind(webhook: Server, answer: Any,
                                                           reason: str) -> None:
    store, _ = make_store(webhook_conversion(webhook.client_config("/convert")))
    await store.create("default", v2(), "v2", WriteOptions())
    answer_with(webhook, answer)
    with pytest.raises(errors.StatusError) as exc:
        await store.get("default", "db", "v2")
    assert exc.value.code == 500 and exc.value.reason == ""  # a read: kube's Status has no reason
    assert exc.value.message.startswith(f"conversion webhook for {GROUP}/v1, Kind=Endpoint ")
    assert reason in exc.value.message


async def test_an_unreachable_webhook_fails_reads_and_writes(webhook: Server) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    store, _ = make_store(webhook_conversion({"url": f"https://127.0.0.1:{port}/convert"}))
    with pytest.raises(errors.StatusError) as exc:
        await store.create("default", v2(), "v2", WriteOptions())
    assert (exc.value.code, exc.value.reason) == (500, "InternalError")
    assert exc.value.message == (
        f"Internal error occurred: conversion webhook for {GROUP}/v2, Kind=Endpoint failed: "
        f'Post "https://127.0.0.1:{port}/convert?timeout=30s": dial tcp 127.0.0.1:{port}: connect: '
        "connection refused")
    stored = await store.create("default", {**v2(), "apiVersion": f"{GROUP}/v1", "spec": {"hostPort": "h:1"}},
                                "v1", WriteOptions())  # the storage version needs no webhook
    assert stored["spec"] == {"hostPort": "h:1"}
    with pytest.raises(errors.StatusError) as exc:
        await store.list("default", "v2")
    assert exc.value.to_status()["message"].startswith(f"conversion webhook for {GROUP}/v1, Kind=Endpoint failed")
    assert "reason" not in exc.value.to_status()
