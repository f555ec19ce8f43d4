"""CRD conversion webhooks end to end: kubectl writes one version and reads another through an HTTPS webhook."""
from __future__ import annotations

import copy
import json
import time
from typing import Any, Callable

import pytest
import yaml

Server = Any  # tests/conftest.py's HttpsJsonServer (conftest modules cannot be imported)
GROUP = "net.kapi.test"
CRD_NAME = f"backends.{GROUP}"


def convert(obj: dict[str, Any], desired: str) -> dict[str, Any]:
    """v1 `spec.hostPort: "host:port"` <-> v2 `spec.host` + `spec.port`."""
    obj = copy.deepcopy(obj)
    spec = obj.setdefault("spec", {})
    if desired.endswith("/v2") and "hostPort" in spec:
        host, _, port = spec.pop("hostPort").rpartition(":")
        spec.update(host=host, port=int(port))
    elif desired.endswith("/v1") and "host" in spec:
        spec["hostPort"] = f"{spec.pop('host')}:{spec.pop('port')}"
    obj["apiVersion"] = desired
    return obj


def conversion_review(review: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """The webhook's /convert route: a ConversionReview answer with every object `convert`ed."""
    request = review["request"]
    converted = [convert(o, request["desiredAPIVersion"]) for o in request["objects"]]
    return 200, {"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": {
        "uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}}


@pytest.fixture
def webhook(https_json_server: Callable[..., Server]) -> Server:
    return https_json_server(routes={"/convert": conversion_review})


def schema(**properties: dict[str, Any]) -> dict[str, Any]:
    return {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object", "properties": properties}}}}


def backend_crd(client_config: dict[str, Any]) -> dict[str, Any]:
    columns = [{"name": "Host-Port", "type": "string", "jsonPath": ".spec.hostPort"}]
    return {
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": CRD_NAME},
        "spec": {
            "group": GROUP, "scope": "Namespaced",
            "names": {"plural": "backends", "singular": "backend", "kind": "Backend"},
            "versions": [
                {"name": "v1", "served": True, "storage": True, "schema": schema(hostPort={"type": "string"}),
                 "additionalPrinterColumns": columns},
                {"name": "v2", "served": True, "storage": False,
                 "schema": schema(host={"type": "string"}, port={"type": "integer"})},
            ],
            "conversion": {"strategy": "Webhook", "webhook": {
                "clientConfig": client_config, "conversionReviewVersions": ["v1"]}},
        },
    }


def backend(name: str, version: str, **spec: Any) -> str:
    return yaml.safe_dump({"apiVersion": f"{GROUP}/{version}", "kind": "Backend",
                           "metadata": {"name": name}, "spec": spec})


def get(kapi: Any, version: str, name: str) -> dict[str, Any]:
    return json.loads(kapi.kubectl("get", f"backends.{version}.{GROUP}", name, "-o", "json").stdout)


def install(kapi: Any, crd: dict[str, Any]) -> None:
    kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(crd))
    kapi.kubectl("wait", "--for", "condition=established", f"crd/{CRD_NAME}", "--timeout=10s")


def test_create_in_one_version_read_in_the_other(kapi_factory: Any, webhook: Server) -> None:
    kapi = kapi_factory()
    install(kapi, backend_crd(webhook.client_config("/convert")))
    crd = json.loads(kapi.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["url"] == webhook.url("/convert")

    out = kapi.kubectl("apply", "-f", "-", input=backend("db", "v2", host="db.internal", port=5432))
    assert f"backend.{GROUP}/db created" in out.stdout
    desired = [r.body["request"]["desiredAPIVersion"] for r in webhook.requests]
    assert f"{GROUP}/v1" in desired  # stored in v1 through the webhook
    assert get(kapi, "v1", "db")["spec"] == {"hostPort": "db.internal:5432"}
    as_v2 = get(kapi, "v2", "db")
    assert as_v2["apiVersion"] == f"{GROUP}/v2" and as_v2["spec"] == {"host": "db.internal", "port": 5432}
    assert "kubectl.kubernetes.io/last-applied-configuration" in as_v2["metadata"]["annotations"]

    kapi.kubectl("apply", "-f", "-", input=backend("cache", "v1", hostPort="cache.internal:6379"))
    listed = json.loads(kapi.kubectl("get", f"backends.v2.{GROUP}", "-o", "json").stdout)
    assert {o["metadata"]["name"]: o["spec"] for o in listed["items"]} == {
        "cache": {"host": "cache.internal", "port": 6379}, "db": {"host": "db.internal", "port": 5432}}
    rows = kapi.kubectl("get", f"backends.v1.{GROUP}").stdout.split()
    assert "db.internal:5432" in rows and "cache.internal:6379" in rows

    kapi.kubectl("apply", "-f", "-", input=backend("db", "v2", host="db.internal", port=6543))  # a v2 patch
    assert get(kapi, "v1", "db")["spec"] == {"hostPort": "db.internal:6543"}


def test_an_unreachable_conversion_webhook(kapi_factory: Any, webhook: Server) -> None:
    kapi = kapi_factory()
    install(kapi, backend_crd({"service": {"namespace": "default", "name": "converter", "path": "/convert"}}))
    kapi.kubectl("apply", "-f", "-", input=backend("stored", "v1", hostPort="h:1"))  # storage version: no call
    read = kapi.kubectl("get", f"backends.v2.{GROUP}", "stored", check=False)
    assert read.returncode != 0
    assert (f"Error from server: conversion webhook for {GROUP}/v1, Kind=Backend failed: "
            'Post "https://converter.default.svc:443/convert?timeout=30s": ') in read.stderr
    write = kapi.kubectl("apply", "-f", "-", input=backend("new", "v2", host="h", port=2), check=False)
    assert write.returncode != 0
    assert f"Internal error occurred: conversion webhook for {GROUP}/v2, Kind=Backend failed: " in write.stderr

    broken = json.loads(kapi.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    broken["spec"]["conversion"]["webhook"].pop("conversionReviewVersions")
    refused = kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(broken), check=False)
    assert refused.returncode != 0
    assert "spec.conversion.conversionReviewVersions: Required value" in refused.stderr

    fixed = backend_crd(webhook.client_config("/convert"))  # the CRD controller picks it up
    kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(fixed))
    deadline = time.monotonic() + 10
    while kapi.kubectl("get", f"backends.v2.{GROUP}", "stored", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the new conversion webhook was never used"
        time.sleep(0.1)
    assert get(kapi, "v2", "stored")["spec"] == {"host": "h", "port": 1}
