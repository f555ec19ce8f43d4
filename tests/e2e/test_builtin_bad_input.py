"""Invalid built-in objects over raw HTTP (and kubectl): kube's 422 wording, and nothing stored changes."""
from __future__ import annotations

import copy
import json
from typing import Iterator

import httpx
import pytest

PODS = "/api/v1/namespaces/default/pods"
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
MERGE = {"Content-Type": "application/merge-patch+json"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}


@pytest.fixture
def http(kapi) -> Iterator[httpx.Client]:
    with kapi.client() as client:
        yield client


def pod(name: str, *containers: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": {"containers": list(containers)}}


def deployment(name: str, selector: dict | None = None, labels: dict | None = None, **pod_spec: object) -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": selector or {"app": name}},
                     "template": {"metadata": {"labels": labels or {"app": name}},
                                  "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], **pod_spec}}}}


def job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"template": {"spec": {"restartPolicy": "Never",
                                           "containers": [{"name": "c", "image": "busybox:1"}]}}}}


def assert_invalid(resp: httpx.Response, kind: str, name: str, message: str, group: str | None = None) -> dict:
    """A 422 Invalid Status for this object whose message holds `message` (kube's field error)."""
    assert resp.status_code == 422, resp.text
    assert "Traceback" not in resp.text, resp.text
    status = resp.json()
    assert status["kind"] == "Status" and status["status"] == "Failure", status
    assert status["reason"] == "Invalid" and status["code"] == 422, status
    qualified = f"{kind}.{group}" if group else kind
    assert status["message"].startswith(f'{qualified} "{name}" is invalid: '), status["message"]
    assert message in status["message"], status["message"]
    assert status["details"]["name"] == name and status["details"]["kind"] == kind, status
    assert status["details"].get("group", "") == (group or ""), status
    return status


def created(http: httpx.Client, path: str, obj: dict) -> dict:
    resp = http.post(path, json=obj)
    assert resp.status_code == 201, resp.text
    return resp.json()


def stored(http: httpx.Client, path: str) -> dict:
    resp = http.get(path)
    assert resp.status_code == 200, resp.text
    return resp.json()


def assert_absent(http: httpx.Client, path: str) -> None:
    resp = http.get(path)
    assert resp.status_code == 404, resp.text


# ---------------------------------------------------------------- pods


def test_pod_without_containers(http: httpx.Client) -> None:
    resp = http.post(PODS, json=pod("empty"))
    status = assert_invalid(resp, "Pod", "empty", "spec.containers: Required value")
    assert {"reason": "FieldValueRequired", "message": "Required value",
            "field": "spec.containers"} in status["details"]["causes"]
    assert_absent(http, f"{PODS}/empty")


def test_pod_with_duplicate_container_names(http: httpx.Client) -> None:
    resp = http.post(PODS, json=pod("twins", {"name": "c", "image": "a"}, {"name": "c", "image": "b"}))
    status = assert_invalid(resp, "Pod", "twins", 'spec.containers[1].name: Duplicate value: "c"')
    assert {"reason": "FieldValueDuplicate", "message": 'Duplicate value: "c"',
            "field": "spec.containers[1].name"} in status["details"]["causes"]
    assert_absent(http, f"{PODS}/twins")


# ---------------------------------------------------------------- deployments


def test_deployment_selector_must_match_template_labels(http: httpx.Client) -> None:
    resp = http.post(DEPLOYMENTS, json=deployment("mismatch", selector={"app": "a"}, labels={"app": "b"}))
    status = assert_invalid(resp, "Deployment", "mismatch",
                            "spec.template.metadata.labels: Invalid value: ", group="apps")
    assert status["message"].endswith(": `selector` does not match template `labels`"), status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.template.metadata.labels"]
    assert_absent(http, f"{DEPLOYMENTS}/mismatch")


def test_deployment_selector_mismatch_through_kubectl(kapi) -> None:
    manifest = deployment("mismatch-k", selector={"app": "a"}, labels={"app": "b"})
    out = kapi.kubectl("apply", "-f", "-", input=json.dumps(manifest), check=False)
    assert out.returncode != 0
    assert 'The Deployment "mismatch-k" is invalid: spec.template.metadata.labels: Invalid value: ' in out.stderr
    assert "`selector` does not match template `labels`" in out.stderr
    gone = kapi.kubectl("get", "deploy", "mismatch-k", check=False)
    assert gone.returncode != 0 and 'deployments.apps "mismatch-k" not found' in gone.stderr


def test_deployment_selector_is_immutable(http: httpx.Client) -> None:
    path = f"{DEPLOYMENTS}/{created(http, DEPLOYMENTS, deployment('fixed-sel'))['metadata']['name']}"
    before = stored(http, path)
    change = {"spec": {"selector": {"matchLabels": {"app": "other"}},
                       "template": {"metadata": {"labels": {"app": "other"}}}}}
    resp = http.patch(path, content=json.dumps(change), headers=MERGE)
    status = assert_invalid(resp, "Deployment", "fixed-sel", "spec.selector: Invalid value: ", group="apps")
    assert status["message"].endswith(": field is immutable"), status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.selector"]
    assert stored(http, path) == before


def test_deployment_restart_policy_must_be_always(http: httpx.Client) -> None:
    resp = http.post(DEPLOYMENTS, json=deployment("never", restartPolicy="Never"))
    message = 'spec.template.spec.restartPolicy: Unsupported value: "Never": supported values: "Always"'
    status = assert_invalid(resp, "Deployment", "never", message, group="apps")
    assert status["details"]["causes"] == [{"reason": "FieldValueNotSupported",
                                            "message": 'Unsupported value: "Never": supported values: "Always"',
                                            "field": "spec.template.spec.restartPolicy"}]
    assert_absent(http, f"{DEPLOYMENTS}/never")

    path = f"{DEPLOYMENTS}/{created(http, DEPLOYMENTS, deployment('always'))['metadata']['name']}"
    before = stored(http, path)
    resp = http.patch(path, content=json.dumps({"spec": {"template": {"spec": {"restartPolicy": "OnFailure"}}}}),
                      headers=STRATEGIC)
    assert_invalid(resp, "Deployment", "always", 'spec.template.spec.restartPolicy: Unsupported value: "OnFailure"',
                   group="apps")
    assert stored(http, path) == before


def test_deployment_update_with_duplicate_container_names(http: httpx.Client) -> None:
    path = f"{DEPLOYMENTS}/{created(http, DEPLOYMENTS, deployment('twins'))['metadata']['name']}"
    before = stored(http, path)
    doubled = copy.deepcopy(before)
    doubled["spec"]["template"]["spec"]["containers"].append({"name": "c", "image": "busybox:1"})
    resp = http.put(path, json=doubled)
    assert_invalid(resp, "Deployment", "twins", 'spec.template.spec.containers[1].name: Duplicate value: "c"',
                   group="apps")
    assert stored(http, path) == before


# ---------------------------------------------------------------- jobs


def test_job_template_is_immutable(http: httpx.Client) -> None:
    path = f"{JOBS}/{created(http, JOBS, job('frozen'))['metadata']['name']}"
    before = stored(http, path)
    change = {"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}}}}
    resp = http.patch(path, content=json.dumps(change), headers=STRATEGIC)
    status = assert_invalid(resp, "Job", "frozen", "spec.template: Invalid value: ", group="batch")
    assert status["message"].endswith(": field is immutable"), status["message"]
    assert [c["field"] for c in status["details"]["causes"]] == ["spec.template"]
    assert stored(http, path) == before


def test_job_selector_is_immutable(http: httpx.Client) -> None:
    path = f"{JOBS}/{created(http, JOBS, job('pinned'))['metadata']['name']}"
    before = stored(http, path)
    change = {"spec": {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "other"}}}}
    resp = http.patch(path, content=json.dumps(change), headers=MERGE)
    status = assert_invalid(resp, "Job", "pinned", "spec.selector: Invalid value: ", group="batch")
    assert "field is immutable" in status["message"], status["message"]
    assert stored(http, path) == before
