"""`pods/binding` and `pods/eviction`: what a scheduler and `kubectl drain` post, answered as kube does
(and `pods/log`, from `pod_log`).

- binding sets `spec.nodeName` (and the PodScheduled condition) once; a pod
  already bound, or being deleted, is a 409;
- eviction deletes the pod unless a PodDisruptionBudget selecting it forbids
  it (429, kube's wording). Without a disruption controller no budget ever
  allows a disruption, so, as in kube, a budget not yet processed refuses; a
  pod that is not running (Pending, Succeeded, Failed) is evicted anyway.

Both answer kube's `Status` of success with code 201.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from kapi.admission.webhook_match import parse_selector
from kapi.api import errors
from kapi.api.errors import Cause
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints import negotiation as neg
from kapi.endpoints.context import ActionHandler, ApiContext
from kapi.endpoints.filters import request_user
from kapi.endpoints.pod_log import read_log
from kapi.endpoints.params import check_dry_run, parse_query
from kapi.endpoints.resources import grace_period_from, read_body, respond
from kapi.registry.builtin_strategy import as_dict, as_list
from kapi.registry.store import Store, WriteOptions

Object = dict[str, Any]
_SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def _body(request: Request, ctx: ApiContext, kind: str) -> Object:
    body = neg.decode_body(request.headers.get("content-type"), await read_body(request, ctx.max_body_bytes))
    if not isinstance(body, dict):
        raise errors.BadRequest(f"the body of the request must be a {kind} object")
    if body.get("kind") not in (None, "", kind):
        raise errors.BadRequest(f"the body of the request must be a {kind}, not {body.get('kind')}")
    return body


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


async def bind_pod(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str,
                   namespace: str) -> Response:
    binding = await _body(request, ctx, "Binding")
    target = as_dict(binding.get("target"))
    node = target.get("name")
    if not node:
        raise errors.invalid("", "Binding", info.name, [errors.field_required("target.name")])
    if target.get("kind") not in (None, "", "Node"):
        raise errors.invalid("", "Binding", info.name, [errors.field_not_supported(
            "target.kind", target.get("kind"), ["Node", "<empty>"])])
    annotations = (binding.get("metadata") or {}).get("annotations") or {}

    def assign(pod: Object | None) -> Object:
        assert pod is not None
        meta, spec = pod.setdefault("metadata", {}), pod.setdefault("spec", {})
        why = ""
        if meta.get("deletionTimestamp"):
            why = f"pod {info.name} is being deleted, cannot be assigned to a host"
        elif spec.get("nodeName"):
            why = f'pod {info.name} is already assigned to node "{spec["nodeName"]}"'
        if why:
            raise errors.conflict("", "pods/binding", info.name, why)
        spec["nodeName"] = node
        if annotations:
            meta["annotations"] = {**(meta.get("annotations") or {}), **annotations}
        status = pod.setdefault("status", {})
        conditions = [c for c in as_list(status.get("conditions")) if c.get("type") != "PodScheduled"]
        status["conditions"] = conditions + [{"type": "PodScheduled", "status": "True",
                                              "lastProbeTime": None, "lastTransitionTime": _now()}]
        return pod

    q = parse_query(request.query_params, request.method)
    check_dry_run(q.dry_run_values, request.method)
    await store.assign(namespace, info.name, version, assign, dry_run=q.dry_run)
    return respond(request, _SUCCESS, status=201)


async def evict_pod(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str,
                    namespace: str) -> Response:
    eviction = await _body(request, ctx, "Eviction")
    q = parse_query(request.query_params, request.method)
    check_dry_run(q.dry_run_values, request.method)
    pod = await store.get(namespace, info.name, version)
    phase = (pod.get("status") or {}).get("phase")
    if phase == "Running" and not (pod.get("metadata") or {}).get("deletionTimestamp"):
        await _check_budgets(ctx, namespace, pod)
    options = as_dict(eviction.get("deleteOptions"))
    opts = WriteOptions(dry_run=q.dry_run or bool(options.get("dryRun")), user=request_user(request))
    await store.delete(namespace, info.name, version, None, opts, str(options.get("propagationPolicy") or ""),
                       grace_period=grace_period_from(options.get("gracePeriodSeconds"), False))
    return respond(request, _SUCCESS, status=201)


async def _check_budgets(ctx: ApiContext, namespace: str, pod: Object) -> None:
    budgets = ctx.store("policy", "poddisruptionbudgets")
    if budgets is None:
        return
    labels = (pod.get("metadata") or {}).get("labels") or {}
    listed = await budgets.list(namespace, "v1")
    for pdb in listed["items"]:
        selector = (pdb.get("spec") or {}).get("selector")
        if selector is None or not parse_selector(selector).matches(labels):
            continue
        status, meta = pdb.get("status") or {}, pdb.get("metadata") or {}
        name = meta.get("name", "")
        if int(status.get("observedGeneration") or 0) < int(meta.get("generation") or 1):
            detail = f"The disruption budget {name} is still being processed by the server."
        elif int(status.get("disruptionsAllowed") or 0) < 1:
            detail = (f"The disruption budget {name} needs {status.get('desiredHealthy', 0)} healthy pods and has "
                      f"{status.get('currentHealthy', 0)} currently")
        else:
            continue
        raise errors.TooManyRequests("Cannot evict pod as it would violate the pod's disruption budget.",
                                     causes=[Cause("DisruptionBudget", detail)])


POD_ACTIONS: dict[tuple[str, str, str], ActionHandler] = {
    ("", "pods", "binding"): bind_pod,
    ("", "pods", "eviction"): evict_pod,
    ("", "pods", "log"): read_log,
}
