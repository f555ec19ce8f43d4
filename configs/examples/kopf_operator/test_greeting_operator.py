"""Test the greeting operator with kapi's pytest plugin: no cluster, no binaries, just `pip install kapi`.

`kapi_server` starts kapi once per session (and points `KUBECONFIG` at it), the
`kapi_resources` marker applies this directory's CRD to it, and `kapi_namespace`
gives the test a fresh namespace. kopf's own `KopfRunner` runs the operator in a
thread for the duration of the `with` block.

    pytest configs/examples/kopf_operator
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kopf.testing import KopfRunner
from kubernetes import client

HERE = Path(__file__).parent
GROUP, VERSION, PLURAL = "examples.kapi.dev", "v1", "greetings"


def wait_for(get: Any, predicate: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = get()
        if predicate(value):
            return value
        assert time.monotonic() < deadline, f"timed out; last seen: {value}"
        time.sleep(0.1)


@pytest.mark.kapi_resources("crd.yaml")
def test_operator_greets_a_new_greeting(kapi_server: Any, kapi_namespace: str) -> None:
    operator = ["run", "--standalone", "--namespace", kapi_namespace, str(HERE / "greeting_operator.py")]
    with kapi_server.api_client() as api, KopfRunner(operator, timeout=60) as runner:
        objects = client.CustomObjectsApi(api)
        objects.create_namespaced_custom_object(GROUP, VERSION, kapi_namespace, PLURAL, {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "Greeting",
            "metadata": {"name": "world"}, "spec": {"name": "World"},
        })

        def get() -> dict[str, Any]:
            return objects.get_namespaced_custom_object(GROUP, VERSION, kapi_namespace, PLURAL, "world")

        greeting = wait_for(get, lambda obj: obj.get("status", {}).get("message"))

    assert greeting["status"]["message"] == "Hello, World!"
    assert greeting["metadata"]["labels"]["examples.kapi.dev/greeted"] == "true"
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert "Hello, World!" in runner.output
