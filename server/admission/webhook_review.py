"""The `admission.k8s.io` AdmissionReview a webhook receives, and the checks on what it sends back.

Shaped like kube-apiserver's `CreateV1AdmissionReview` and
`VerifyAdmissionResponse`: the request names the kind, resource, user and
both objects in the request's version; a response must echo the request's
uid, may carry a JSONPatch only when it comes from a mutating webhook, and
a refusal becomes the webhook's own Status, as kube's `ToStatusErr` builds it.
"""
from __future__ import annotations

import base64
import binascii
import copy
from typing import Any

import orjson

from kapi.admission.webhook_match import request_namespace
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import go_quote
from kapi.webhook import RawStatusError

_OPTIONS_KIND = {"CREATE": "CreateOptions", "UPDATE": "UpdateOptions", "DELETE": "DeleteOptions"}


class InvalidResponse(Exception):
    """The webhook answered, but not with a usable AdmissionReview (kube: `received invalid webhook response`)."""


def _in_request_version(obj: dict[str, Any] | None, attrs: AdmissionAttributes) -> dict[str, Any] | None:
    """A copy of `obj` naming the request's apiVersion (a DELETE's old object may still name the storage one)."""
    if obj is None:
        return None
    out = copy.deepcopy(obj)
    if out.get("apiVersion") != attrs.api_version:
        out["apiVersion"] = attrs.api_version
    return out


def _options(attrs: AdmissionAttributes) -> dict[str, Any] | None:
    kind = _OPTIONS_KIND.get(attrs.operation)
    if kind is None:
        return None
    options: dict[str, Any] = {"kind": kind, "apiVersion": "meta.k8s.io/v1"}
    if attrs.dry_run:
        options["dryRun"] = ["All"]
    return options


def review_request(attrs: AdmissionAttributes) -> dict[str, Any]:
    """The AdmissionRequest without uid and objects (kube leaves empty strings out)."""
    kind = {"group": attrs.group, "version": attrs.version, "kind": attrs.kind}
    resource = {"group": attrs.group, "version": attrs.version, "resource": attrs.resource}
    request: dict[str, Any] = {"kind": kind, "resource": resource}
    if attrs.subresource:
        request["subResource"] = attrs.subresource
    requested = attrs.request_version or attrs.version  # differs when an equivalent version was matched
    request.update(requestKind={**kind, "version": requested}, requestResource={**resource, "version": requested})
    if attrs.subresource:
        request["requestSubResource"] = attrs.subresource
    if attrs.name:
        request["name"] = attrs.name
    namespace = request_namespace(attrs)
    if namespace:
        request["namespace"] = namespace
    request["operation"] = attrs.operation
    request["userInfo"] = attrs.user.to_dict() if attrs.user is not None else {}
    request["dryRun"] = attrs.dry_run
    options = _options(attrs)
    if options is not None:
        request["options"] = options
    return request


def admission_review(attrs: AdmissionAttributes, uid: str, review_version: str) -> dict[str, Any]:
    """The AdmissionReview for one webhook call: the request, its uid and both objects (null when absent)."""
    request = {"uid": uid, **review_request(attrs), "object": _in_request_version(attrs.obj, attrs),
               "oldObject": _in_request_version(attrs.old_obj, attrs)}
    return {"kind": "AdmissionReview", "apiVersion": f"admission.k8s.io/{review_version}", "request": request}


def _gvk(body: dict[str, Any]) -> str:
    """Go's `GroupVersionKind.String()` of what a body claims to be."""
    group, _, version = str(body.get("apiVersion") or "").rpartition("/")
    return f"{group}/{version}, Kind={body.get('kind') or ''}"


def verify_response(body: Any, uid: str, review_version: str, mutating: bool) -> dict[str, Any]:
    """The `response` of a webhook's answer, or InvalidResponse in kube's words."""
    if not isinstance(body, dict):
        raise InvalidResponse("expected an AdmissionReview object")
    expected = f"admission.k8s.io/{review_version}"
    if review_version == "v1" and (body.get("apiVersion"), body.get("kind")) != (expected, "AdmissionReview"):
        raise InvalidResponse(f"expected webhook response of {expected}, Kind=AdmissionReview, got {_gvk(body)}")
    response = body.get("response")
    if not isinstance(response, dict):
        raise InvalidResponse("webhook response was absent")
    got = response.get("uid")
    if review_version == "v1" and got != uid:
        raise InvalidResponse(f"expected response.uid={go_quote(uid)}, got {go_quote(str(got or ''))}")
    patch, patch_type = response.get("patch"), response.get("patchType")
    if mutating:
        if patch and patch_type is None:
            raise InvalidResponse("webhook returned response.patch but not response.patchType")
        if patch_type is not None and patch_type != "JSONPatch":
            raise InvalidResponse(f"webhook returned invalid response.patchType of {go_quote(str(patch_type))}")
    else:
        if patch:
            raise InvalidResponse("validating webhook may not return response.patch")
        if patch_type is not None:
            raise InvalidResponse("validating webhook may not return response.patchType")
    return response


def decode_patch(response: dict[str, Any]) -> list[Any]:
    """The JSONPatch operations of a mutating response (base64 of a JSON array); [] when there is none."""
    raw = response.get("patch")
    if not raw:
        return []
    try:
        operations = orjson.loads(base64.b64decode(str(raw), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise InvalidResponse(f"received undecodable patch in webhook response: {exc}") from None
    if not isinstance(operations, list):
        raise InvalidResponse("received undecodable patch in webhook response: a JSON patch must be an array")
    return operations


def warnings_of(response: dict[str, Any]) -> list[str]:
    warnings = response.get("warnings")
    return [str(w) for w in warnings if str(w)] if isinstance(warnings, list) else []


def denied(hook_name: str, result: Any) -> RawStatusError:
    """kube's `ToStatusErr`: the webhook's Status, at least 400 (else 403), its message prefixed."""
    status: dict[str, Any] = dict(result) if isinstance(result, dict) else {}
    code = status.get("code")
    if not isinstance(code, int) or isinstance(code, bool) or code < 400:
        status["code"] = 403
    denied_by = f"admission webhook {go_quote(hook_name)} denied the request"
    if status.get("message"):
        status["message"] = f"{denied_by}: {status['message']}"
    elif status.get("reason"):
        status["message"] = f"{denied_by}: {status['reason']}"
    else:
        status["message"] = f"{denied_by} without explanation"
    return RawStatusError(status)
