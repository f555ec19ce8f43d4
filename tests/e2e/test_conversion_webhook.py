"""CRD conversion webhooks end to end: kubectl writes one version and reads another through an HTTPS webhook."""
from __future__ import annotations

import base64
import copy
import json
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import pytest
import yaml

from certs import pki

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


class ConversionServer:
    def __init__(self, tmp: Path) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        ca, ca_key = pki.make_ca("e2e-conversion-ca")
        cert, key = pki.issue_serving_cert(ca, ca_key, ["127.0.0.1"])
        (tmp / "tls.crt").write_bytes(pki.cert_pem(cert))
        (tmp / "tls.key").write_bytes(pki.key_pem(key))
        self.ca_bundle = base64.b64encode(pki.cert_pem(ca)).decode()
        self.desired: list[str] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))["request"]
                outer.desired.append(request["desiredAPIVersion"])
                converted = [convert(o, request["desiredAPIVersion"]) for o in request["objects"]]
                body = json.dumps({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview", "response": {
                    "uid": request["uid"], "convertedObjects": converted, "result": {"status": "Success"}}}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        # Clients that hang up (timeouts, refused certificates) are expected: no tracebacks on stderr.
        self.httpd.handle_error = lambda *_args: None  # type: ignore[method-assign]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.httpd.server_address[1]}/convert"


@pytest.fixture
def webhook(tmp_path: Path) -> Iterator[ConversionServer]:
    server = ConversionServer(tmp_path / "webhook")
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


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


def test_create_in_one_version_read_in_the_other(kapi_factory: Any, webhook: ConversionServer) -> None:
    kapi = kapi_factory()
    install(kapi, backend_crd({"url": webhook.url, "caBundle": webhook.ca_bundle}))
    crd = json.loads(kapi.kubectl("get", "crd", CRD_NAME, "-o", "json").stdout)
    assert crd["spec"]["conversion"]["strategy"] == "Webhook"
    assert crd["spec"]["conversion"]["webhook"]["clientConfig"]["url"] == webhook.url

    out = kapi.kubectl("apply", "-f", "-", input=backend("db", "v2", host="db.internal", port=5432))
    assert f"backend.{GROUP}/db created" in out.stdout
    assert f"{GROUP}/v1" in webhook.desired  # stored in v1 through the webhook
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


def test_an_unreachable_conversion_webhook(kapi_factory: Any, webhook: ConversionServer) -> None:
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

    fixed = backend_crd({"url": webhook.url, "caBundle": webhook.ca_bundle})  # the CRD controller picks it up
    kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(fixed))
    deadline = time.monotonic() + 10
    while kapi.kubectl("get", f"backends.v2.{GROUP}", "stored", check=False).returncode != 0:
        assert time.monotonic() < deadline, "the new conversion webhook was never used"
        time.sleep(0.1)
    assert get(kapi, "v2", "stored")["spec"] == {"host": "h", "port": 1}
