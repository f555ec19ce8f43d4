"""Admission webhooks end to end: kubectl applies webhook configurations, kapi calls HTTPS webhooks in this test."""
from __future__ import annotations

import base64
import json
import socket
from typing import Any, Callable

import pytest
import yaml

Review = dict[str, Any]
Server = Any  # tests/conftest.py's HttpsJsonServer (conftest modules cannot be imported)


def admission(answer: Callable[[Review], dict[str, Any]]) -> Callable[[Review], tuple[int, Review]]:
    """An AdmissionReview route: `answer(request)` gives the response's fields; uid and allowed: true filled in."""
    def route(review: Review) -> tuple[int, Review]:
        request = review["request"]
        return 200, {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                     "response": {"uid": request["uid"], "allowed": True, **answer(request)}}
    return route


@pytest.fixture
def hooks(https_json_server: Callable[..., Server]) -> Server:
    return https_json_server()


def webhook(name: str, client_config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": name, "clientConfig": client_config, "sideEffects": "None", "admissionReviewVersions": ["v1"],
            "rules": [{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"]}], **extra}


def configuration(kind: str, name: str, *hooks_: dict[str, Any]) -> str:
    return yaml.safe_dump({"apiVersion": "admissionregistration.k8s.io/v1", "kind": kind,
                           "metadata": {"name": name}, "webhooks": list(hooks_)})


def json_patch(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"patchType": "JSONPatch", "patch": base64.b64encode(json.dumps(list(operations)).encode()).decode()}


def test_mutating_webhook_changes_what_kubectl_stores(kapi_factory: Any, hooks: Server) -> None:
    kapi = kapi_factory()
    hooks.routes["/mutate"] = admission(lambda _request: json_patch(
        {"op": "add", "path": "/metadata/labels", "value": {"injected-by": "webhook"}},
        {"op": "replace", "path": "/data/color", "value": "blue"}))
    out = kapi.kubectl("apply", "-f", "-", input=configuration(
        "MutatingWebhookConfiguration", "injector", webhook("inject.kapi.test", hooks.client_config("/mutate"))))
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/injector created" in out.stdout
    table = kapi.kubectl("get", "mutatingwebhookconfigurations").stdout.split()
    assert table[:3] == ["NAME", "WEBHOOKS", "AGE"] and table[3:5] == ["injector", "1"]

    kapi.kubectl("create", "configmap", "paint", "--from-literal=color=red")
    stored = json.loads(kapi.kubectl("get", "configmap", "paint", "-o", "json").stdout)
    assert stored["metadata"]["labels"] == {"injected-by": "webhook"}
    assert stored["data"] == {"color": "blue"}
    request = hooks.requests[-1].body["request"]
    assert (request["operation"], request["namespace"], request["name"]) == ("CREATE", "default", "paint")
    assert request["object"]["data"] == {"color": "red"} and request["userInfo"]["username"]

    hook = json.loads(kapi.kubectl("get", "mutatingwebhookconfiguration", "injector", "-o", "json").stdout)
    assert {k: hook["webhooks"][0][k] for k in ("failurePolicy", "matchPolicy", "timeoutSeconds",
                                                "reinvocationPolicy")} == \
        {"failurePolicy": "Fail", "matchPolicy": "Equivalent", "timeoutSeconds": 10, "reinvocationPolicy": "Never"}

    again = kapi.kubectl("apply", "-f", "-", input=configuration(  # a three-way merge keyed by webhook name
        "MutatingWebhookConfiguration", "injector",
        webhook("inject.kapi.test", hooks.client_config("/mutate"), timeoutSeconds=5)))
    assert "mutatingwebhookconfiguration.admissionregistration.k8s.io/injector configured" in again.stdout
    hook = json.loads(kapi.kubectl("get", "mutatingwebhookconfiguration", "injector", "-o", "json").stdout)
    assert len(hook["webhooks"]) == 1 and hook["webhooks"][0]["timeoutSeconds"] == 5


def test_validating_webhook_refuses_with_its_message(kapi_factory: Any, hooks: Server) -> None:
    kapi = kapi_factory()

    def judge(request: Review) -> dict[str, Any]:
        if request["name"].startswith("bad"):
            return {"allowed": False, "status": {"code": 403, "message": "names starting with bad are refused"}}
        return {"warnings": ["checked by judge.kapi.test"]}

    hooks.routes["/judge"] = admission(judge)
    kapi.kubectl("apply", "-f", "-", input=configuration(
        "ValidatingWebhookConfiguration", "judge", webhook("judge.kapi.test", hooks.client_config("/judge"))))
    refused = kapi.kubectl("create", "configmap", "bad-one", "--from-literal=a=b", check=False)
    assert refused.returncode != 0
    assert 'admission webhook "judge.kapi.test" denied the request: names starting with bad are refused' \
        in refused.stderr
    assert kapi.kubectl("get", "configmap", "bad-one", check=False).returncode != 0

    allowed = kapi.kubectl("create", "configmap", "good-one", "--from-literal=a=b")
    assert "configmap/good-one created" in allowed.stdout
    assert "Warning: checked by judge.kapi.test" in allowed.stderr

    dry = kapi.kubectl("create", "configmap", "bad-dry", "--from-literal=a=b", "--dry-run=server", check=False)
    assert dry.returncode != 0 and "denied the request" in dry.stderr  # sideEffects None: called on dry runs too
    assert hooks.requests[-1].body["request"]["dryRun"] is True

    broken = kapi.kubectl("apply", "-f", "-", check=False, input=configuration(
        "ValidatingWebhookConfiguration", "broken", {"name": "broken.kapi.test", "rules": []}))
    assert broken.returncode != 0
    for text in ("webhooks[0].clientConfig: Required value: exactly one of url or service is required",
                 "webhooks[0].sideEffects: Required value: must specify one of None, NoneOnDryRun",
                 "webhooks[0].admissionReviewVersions: Required value: must specify one of v1, v1beta1"):
        assert text in broken.stderr


def test_failure_policy_decides_when_the_webhook_is_down(kapi_factory: Any, hooks: Server) -> None:
    kapi = kapi_factory()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    down = {"url": f"https://127.0.0.1:{port}/validate", "caBundle": hooks.ca_bundle}
    kapi.kubectl("apply", "-f", "-", input=configuration(
        "ValidatingWebhookConfiguration", "down", webhook("down.kapi.test", down, timeoutSeconds=3)))
    refused = kapi.kubectl("create", "configmap", "blocked", "--from-literal=a=b", check=False)
    assert refused.returncode != 0
    assert (f'Internal error occurred: failed calling webhook "down.kapi.test": failed to call webhook: '
            f'Post "https://127.0.0.1:{port}/validate?timeout=3s": dial tcp 127.0.0.1:{port}: connect: '
            "connection refused") in refused.stderr

    kapi.kubectl("patch", "validatingwebhookconfiguration", "down", "--type=json",
                 "-p", '[{"op": "replace", "path": "/webhooks/0/failurePolicy", "value": "Ignore"}]')
    assert "configmap/blocked created" in kapi.kubectl("create", "configmap", "blocked", "--from-literal=a=b").stdout

    # A service reference: kapi has no cluster network, so it cannot be reached and Ignore lets writes through.
    service = {"service": {"namespace": "default", "name": "nowhere", "path": "/mutate"}}
    kapi.kubectl("apply", "-f", "-", input=configuration(
        "MutatingWebhookConfiguration", "svc", webhook("svc.kapi.test", service, failurePolicy="Ignore",
                                                       timeoutSeconds=2)))
    assert "configmap/through created" in kapi.kubectl("create", "configmap", "through", "--from-literal=a=b").stdout


def test_match_conditions_choose_which_writes_reach_the_webhook(kapi_factory: Any, hooks: Server) -> None:
    kapi = kapi_factory()
    hooks.routes["/guard"] = admission(lambda request: {
        "allowed": False, "status": {"code": 403, "message": f"{request['name']} is guarded"}})
    guarded = webhook("guard.kapi.test", hooks.client_config("/guard"), matchConditions=[
        {"name": "labelled", "expression": "has(object.metadata.labels) && 'guard' in object.metadata.labels"},
        {"name": "not-breakglass", "expression": "!authorizer.group('').resource('configmaps')"
                                                 ".check('breakglass').allowed()"}])
    kapi.kubectl("apply", "-f", "-", input=configuration("ValidatingWebhookConfiguration", "guard", guarded))

    assert "configmap/free created" in kapi.kubectl("create", "configmap", "free", "--from-literal=a=b").stdout
    assert hooks.requests == []  # the condition was false: the webhook was not even called
    labelled = kapi.kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held", "labels": {"guard": "on"}}}))
    # kapi's authorizer allows everything, breakglass included, so the second condition is false too
    assert "configmap/held created" in labelled.stdout and hooks.requests == []

    kapi.kubectl("patch", "validatingwebhookconfiguration", "guard", "--type=json", "-p", json.dumps([
        {"op": "replace", "path": "/webhooks/0/matchConditions/1/expression",
         "value": "request.userInfo.username != '' && object.metadata.labels.guard == 'on'"}]))
    refused = kapi.kubectl("apply", "-f", "-", check=False, input=yaml.safe_dump({
        "apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "held2", "labels": {"guard": "on"}}}))
    assert 'admission webhook "guard.kapi.test" denied the request: held2 is guarded' in refused.stderr
    assert [r.body["request"]["name"] for r in hooks.requests] == ["held2"]

    not_bool = json.dumps([{"op": "replace", "path": "/webhooks/0/matchConditions/0/expression",
                            "value": "size(object.metadata.name)"}])
    bad = kapi.kubectl("patch", "validatingwebhookconfiguration", "guard", "--type=json", "-p", not_bool, check=False)
    assert bad.returncode != 0
    assert ('webhooks[0].matchConditions[0].expression: Invalid value: "size(object.metadata.name)": '
            "must evaluate to bool") in bad.stderr
