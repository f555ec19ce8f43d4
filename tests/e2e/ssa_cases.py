"""Runner for the table-driven server-side apply cases in tests/data/ssa/cases.yaml.

The same code drives the real kube-apiserver (scripts/record_ssa_cases.py records its answers into
tests/data/ssa/recorded.json) and kapi (tests/e2e/test_ssa_cases.py replays them), so the two are compared
through one normalisation: whatever differs between two runs of one server (uids, resourceVersions,
timestamps) is dropped or masked here, and everything else must match. This is a helper module, not tests.
"""
from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Any

import httpx
import yaml

DATA = Path(__file__).resolve().parent.parent / "data" / "ssa"
CASES_FILE = DATA / "cases.yaml"
RECORDED_FILE = DATA / "recorded.json"
CRD_FILE = DATA / "widgets-crd.yaml"

# Collection paths per resource; `{ns}` is the case's namespace.
COLLECTIONS = {
    "configmaps": "/api/v1/namespaces/{ns}/configmaps",
    "secrets": "/api/v1/namespaces/{ns}/secrets",
    "deployments": "/apis/apps/v1/namespaces/{ns}/deployments",
    "widgets": "/apis/ssa.example.com/v1/namespaces/{ns}/widgets",
}
PATCH_TYPES = {
    "apply": "application/apply-patch+yaml",
    "merge-patch": "application/merge-patch+json",
    "strategic-patch": "application/strategic-merge-patch+json",
    "json-patch": "application/json-patch+json",
}
OPS = {"apply", "merge-patch", "strategic-patch", "json-patch", "create", "update", "get", "delete"}
# Every request carries this User-Agent unless a step sets `user_agent`: without a fieldManager kube derives the
# manager from it, and httpx's default ("python-httpx/<version>") must not leak into recordings.
DEFAULT_USER_AGENT = "ssa-cases/1.0"
# Metadata kept from an object: the rest (uid, resourceVersion, creationTimestamp, generation, ...) varies per run.
KEPT_METADATA = ("name", "labels", "annotations", "managedFields")
KEPT_ENTRY = ("manager", "operation", "apiVersion", "fieldsType", "fieldsV1", "subresource")
RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)")


def load_cases(path: Path = CASES_FILE) -> list[dict[str, Any]]:
    """The cases, in file order; names are checked unique because they key the recording and namespaces."""
    cases = yaml.safe_load(path.read_text())
    names = [c["name"] for c in cases]
    duplicates = {n for n in names if names.count(n) > 1}
    if duplicates:
        raise ValueError(f"duplicate case names: {sorted(duplicates)}")
    for case in cases:
        if case["resource"] not in COLLECTIONS:
            raise ValueError(f"{case['name']}: unknown resource {case['resource']!r}")
        for step in case["steps"]:
            if step["op"] not in OPS:
                raise ValueError(f"{case['name']}: unknown op {step['op']!r}")
    return cases


def load_recorded(path: Path = RECORDED_FILE) -> dict[str, list[dict[str, Any]]]:
    """Recorded answers per case name; keys starting with `_` (like `_recorded_from`) are provenance, not cases."""
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


def namespace_for(case: dict[str, Any]) -> str:
    """Each case gets a namespace of its own, so cases never see each other's objects."""
    return f"ssa-{case['name']}"


def ensure_namespace(client: httpx.Client, namespace: str) -> None:
    """Create the namespace; one that already exists is fine."""
    response = client.post("/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace",
                                                       "metadata": {"name": namespace}},
                           headers={"User-Agent": DEFAULT_USER_AGENT})
    if response.status_code not in (201, 409):
        raise RuntimeError(f"creating namespace {namespace} failed ({response.status_code}): {response.text}")


def run_case(client: httpx.Client, case: dict[str, Any], namespace: str) -> list[dict[str, Any]]:
    """Run every step of `case` in `namespace` and return one normalised `{"code", "body"}` per step.

    Steps run even after an unexpected answer: the recording, not the runner, decides what is expected.
    """
    ensure_namespace(client, namespace)
    collection = COLLECTIONS[case["resource"]].format(ns=namespace)
    name = None
    results = []
    for step in case["steps"]:
        body = step.get("body")
        if isinstance(body, dict):
            name = body.get("metadata", {}).get("name", name)
        name = step.get("name", name)
        response = _send(client, collection, name, step)
        results.append(normalize_response(step, response, case["resource"]))
    return results


def _send(client: httpx.Client, collection: str, name: str | None, step: dict[str, Any]) -> httpx.Response:
    """One HTTP request for a step: apply and the patches PATCH, create POSTs, update GETs then PUTs."""
    op = step["op"]
    params = {k: str(v) for k, v in (step.get("params") or {}).items()}
    if "manager" in step:
        params["fieldManager"] = str(step["manager"])
    headers = {"User-Agent": step.get("user_agent", DEFAULT_USER_AGENT), "Accept": "application/json"}
    suffix = f"/{step['subresource']}" if step.get("subresource") else ""
    item = f"{collection}/{name}{suffix}"
    if op == "get":
        return client.get(item, headers=headers)
    if op == "delete":
        return client.delete(item, headers=headers)
    if op == "create":
        return client.post(collection, params=params, content=json.dumps(step["body"]),
                           headers={**headers, "Content-Type": "application/json"})
    if op == "update":
        body = json.loads(json.dumps(step["body"]))
        if not step.get("keep_rv"):
            current = client.get(f"{collection}/{name}", headers=headers)
            if current.status_code == 200:
                body.setdefault("metadata", {})["resourceVersion"] = current.json()["metadata"]["resourceVersion"]
        return client.put(item, params=params, content=json.dumps(body),
                          headers={**headers, "Content-Type": "application/json"})
    body = step["body"]
    if step.get("current_rv") and isinstance(body, dict):
        # The object's resourceVersion at this moment, which a static case file cannot spell.
        current = client.get(f"{collection}/{name}", headers=headers)
        if current.status_code == 200:
            body = {**body, "metadata": {**body.get("metadata", {}),
                                         "resourceVersion": current.json()["metadata"]["resourceVersion"]}}
    content = body if isinstance(body, str) else json.dumps(body)
    return client.patch(item, params=params, content=content,
                        headers={**headers, "Content-Type": PATCH_TYPES[op]})


def normalize_response(step: dict[str, Any], response: httpx.Response, resource: str) -> dict[str, Any]:
    """`{"code": status, "body": normalised body}`; a missing object read by `get` keeps just its code."""
    try:
        body = response.json()
    except ValueError:
        body = response.text
    if step["op"] == "get" and response.status_code == 404:
        return {"code": 404, "body": None}
    return {"code": response.status_code, "body": normalize_body(body, resource)}


def normalize_body(body: Any, resource: str) -> Any:
    """A Status keeps code/reason/message/causes; an object keeps what both servers must agree on."""
    if not isinstance(body, dict):
        return body
    if body.get("kind") == "Status":
        return normalize_status(body)
    if "metadata" not in body:
        return body
    out: dict[str, Any] = {"apiVersion": body.get("apiVersion"), "kind": body.get("kind"),
                           "metadata": normalize_metadata(body["metadata"])}
    if resource == "deployments":
        # Only what the cases set: the rest of a Deployment is defaulting, which other suites cover.
        spec = body.get("spec") or {}
        containers = ((spec.get("template") or {}).get("spec") or {}).get("containers") or []
        out["spec"] = {"replicas": spec.get("replicas"), "template": {"spec": {
            "containers": [{"name": c.get("name"), "image": c.get("image")} for c in containers]}}}
        return out
    for key, value in body.items():
        if key not in ("apiVersion", "kind", "metadata"):
            out[key] = value
    return out


def normalize_metadata(metadata: dict[str, Any]) -> dict[str, Any]:
    """name, labels, annotations and managedFields (sorted; `time` masked to `<time>` so presence still counts)."""
    out: dict[str, Any] = {k: metadata[k] for k in KEPT_METADATA if k in metadata}
    if "managedFields" in out:
        entries = []
        for entry in out["managedFields"]:
            kept = {k: entry[k] for k in KEPT_ENTRY if k in entry}
            if "time" in entry:
                kept["time"] = "<time>"
            entries.append(kept)
        # kube orders entries by time (second granularity), then operation and manager: ties vary per run.
        out["managedFields"] = sorted(entries, key=lambda e: (e.get("operation", ""), e.get("manager", ""),
                                                                e.get("subresource", "")))
    return out


def normalize_status(body: dict[str, Any]) -> dict[str, Any]:
    """code, reason, message (timestamps masked) and details.causes sorted by (field, message)."""
    out: dict[str, Any] = {k: body[k] for k in ("code", "reason", "message") if k in body}
    if "message" in out:
        out["message"] = RFC3339.sub("<time>", out["message"])
    causes = (body.get("details") or {}).get("causes")
    if causes is not None:
        masked = [{k: RFC3339.sub("<time>", v) if isinstance(v, str) else v for k, v in c.items()} for c in causes]
        out["details"] = {"causes": sorted(masked, key=lambda c: (c.get("field", ""), c.get("message", "")))}
    return out


def diff_steps(case: dict[str, Any], got: list[dict[str, Any]], want: list[dict[str, Any]]) -> str:
    """The first differing step (index, op, manager) as a unified diff of kube's answer against the one got."""
    for index, (step, g, w) in enumerate(zip(case["steps"], got, want)):
        if g != w:
            label = f"step {index} ({step['op']}" + (f", manager {step['manager']}" if "manager" in step else "")
            label += f", subresource {step['subresource']})" if step.get("subresource") else ")"
            lines = difflib.unified_diff(json.dumps(w, indent=1, sort_keys=True).splitlines(),
                                         json.dumps(g, indent=1, sort_keys=True).splitlines(),
                                         "kube-apiserver", "got", lineterm="", n=6)
            return f"{case['name']}: {label} differs\n" + "\n".join(lines)
    return f"{case['name']}: {len(got)} results, {len(want)} recorded"
