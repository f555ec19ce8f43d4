"""matchPolicy: a webhook for foos in v2 sees a v1 request in v2 (Equivalent), or not at all (Exact)."""
from __future__ import annotations

import base64
import json
from typing import Any, Callable

import httpx
import pytest

from kapi.testing import start_server

CONFIGS = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
FOOS = "/apis/hello.zeng.dev/{version}/namespaces/default/foos"


def add_image(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    patch = [{"op": "add", "path": "/spec/image", "value": "injected:1"}]
    return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "response": {
        "uid": body["request"]["uid"], "allowed": True, "patchType": "JSONPatch",
        "patch": base64.b64encode(json.dumps(patch).encode()).decode()}}


def configuration(client_config: dict[str, Any], match_policy: str) -> dict[str, Any]:
    return {"apiVersion": "admissionregistration.k8s.io/v1", "kind": "MutatingWebhookConfiguration",
            "metadata": {"name": "images"}, "webhooks": [{
                "name": "images.kapi.test", "clientConfig": client_config, "sideEffects": "None",
                "admissionReviewVersions": ["v1"], "matchPolicy": match_policy,
                "rules": [{"operations": ["CREATE"], "apiGroups": ["hello.zeng.dev"], "apiVersions": ["v2"],
                           "resources": ["foos"]}]}]}


def v1_foo(name: str) -> dict[str, Any]:
    return {"apiVersion": "hello.zeng.dev/v1", "kind": "Foo", "metadata": {"name": name},
            "spec": {"msg": "hi"}}


@pytest.mark.parametrize("match_policy", ["Equivalent", "Exact"])
def test_a_v2_webhook_and_a_v1_request(https_json_server: Callable[..., Any], match_policy: str) -> None:
    hooks = https_json_server(routes={"/mutate": add_image})
    with start_server(examples=True) as server, httpx.Client(base_url=server.url) as http:
        made = http.post(CONFIGS, json=configuration(hooks.client_config("/mutate"), match_policy))
        assert made.status_code == 201, made.text
        created = http.post(FOOS.format(version="v1"), json=v1_foo("a"))
        assert created.status_code == 201, created.text
        assert created.json()["spec"] == {"msg": "hi"}  # answered in v1: the image rides in the annotation
        stored = http.get(FOOS.format(version="v2") + "/a").json()
        if match_policy == "Exact":
            assert hooks.requests == []
            assert "image" not in stored["spec"]
            return
        request = hooks.requests[-1].body["request"]
        assert request["kind"] == {"group": "hello.zeng.dev", "version": "v2", "kind": "Foo"}
        assert request["requestKind"]["version"] == "v1"
        assert request["resource"]["version"] == "v2" and request["requestResource"]["version"] == "v1"
        assert request["object"]["apiVersion"] == "hello.zeng.dev/v2"
        assert request["object"]["spec"] == {"config": {"msg": "hi"}}
        assert stored["spec"] == {"image": "injected:1", "config": {"msg": "hi"}}
