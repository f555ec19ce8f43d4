"""CRD conversion webhooks: a `Converter` that asks the CRD's webhook to change versions.

A CRD with `spec.conversion.strategy: Webhook` converts through a
`ConversionReview` (`apiextensions.k8s.io/v1`, or v1beta1 when that is all
the webhook speaks): one call per batch, the objects sent as they are, the
desired apiVersion named. The answer is checked as kube-apiserver checks it
(`webhook_converter.go`): the uid echoed, `result.status: Success`, as many
objects as were sent, each of the desired apiVersion and the same kind, name,
namespace and uid; metadata other than labels and annotations is restored
from the original, so a webhook cannot change it.

A failure is a 500: when the object is on its way to storage (a write) kube
reports `InternalError` (`Internal error occurred: conversion webhook for
g/v, Kind=K failed: ...`); when it is read in another version the Status has
no reason (kubectl: `Error from server: conversion webhook for ...`).
"""
from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

from kapi.api.errors import go_quote
from kapi.api.validation import label_value_errors, qualified_name_errors
from kapi.webhook import ClientConfig, WebhookCallError, post_json
from kapi.webhook.status import RawStatusError, internal_error, unknown_error

Object = dict[str, Any]
TIMEOUT_SECONDS = 30.0  # kube's conversion webhook client timeout (`?timeout=30s`)


class _Failed(Exception):
    """Why a conversion failed, already worded as kube words it."""


def _gvk(api_version: Any, kind: str) -> str:
    """Go's `GroupVersionKind.String()`: `group/version, Kind=Kind`."""
    group, _, version = str(api_version or "").rpartition("/")
    return f"{group}/{version}, Kind={kind}"


def _meta(obj: Any) -> dict[str, Any]:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return meta if isinstance(meta, dict) else {}


def _same_identity(original: Object, converted: Object) -> str:
    """kube's validateConvertedObject: kind, name, namespace and uid must not change."""
    for what, get in (("kind", lambda o: o.get("kind") or ""), ("name", lambda o: _meta(o).get("name") or ""),
                      ("namespace", lambda o: _meta(o).get("namespace") or ""),
                      ("UID", lambda o: _meta(o).get("uid") or "")):
        expected, got = get(original), get(converted)
        if expected != got:
            return f"must have the same {what}: {expected} != {got}"
    return ""


def _restore_meta(original: Object, converted: Object) -> None:
    """kube's restoreObjectMeta: the original metadata, with the webhook's labels and annotations if valid."""
    answered = converted.get("metadata")
    if not isinstance(answered, dict):
        raise _Failed("missing metadata in converted object" if answered is None
                      else f"invalid metadata of type {type(answered).__name__} in converted object")
    restored = copy.deepcopy(_meta(original))
    for field in ("labels", "annotations"):
        value = answered.get(field)
        if value is None:
            restored.pop(field, None)
            continue
        if not isinstance(value, dict):
            raise _Failed(f"invalid metadata.{field} of type {type(value).__name__} in converted object")
        for key, item in value.items():
            if not isinstance(item, str):
                raise _Failed(f"metadata.{field}[{key}] must be a string, but is {type(item).__name__} in "
                              "converted object")
        if field == "labels" and value != restored.get(field):
            problems = [f"metadata.labels: Invalid value: {go_quote(k)}: {m}" for k in value
                        for m in qualified_name_errors(k)]
            problems += [f"metadata.labels: Invalid value: {go_quote(v)}: {m}" for v in value.values()
                         for m in label_value_errors(v)]
            if problems:
                raise _Failed(problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]")
        restored[field] = value
    converted["metadata"] = restored


@dataclass(frozen=True)
class WebhookConverter:
    """Converts the objects of one custom resource through its conversion webhook.

    Value-compared (group, kind, storage version, client config, review version), so the
    CRD controller notices when a CRD's conversion settings change.
    """

    group: str
    kind: str
    storage_version: str
    client: ClientConfig
    review_version: str = "v1"
    timeout: float = TIMEOUT_SECONDS

    async def convert(self, objs: list[Object], to_version: str) -> list[Object]:
        if not objs:
            return objs
        source = _gvk(objs[0].get("apiVersion"), self.kind)
        try:
            return await self._convert(objs, f"{self.group}/{to_version}", source)
        except _Failed as exc:
            raise self._error(str(exc), to_version) from None

    def _error(self, message: str, to_version: str) -> RawStatusError:
        return internal_error(message) if to_version == self.storage_version else unknown_error(message)

    async def _convert(self, objs: list[Object], desired: str, source: str) -> list[Object]:
        uid = str(uuid.uuid4())
        review = {
            "kind": "ConversionReview", "apiVersion": f"apiextensions.k8s.io/{self.review_version}",
            "request": {"uid": uid, "desiredAPIVersion": desired, "objects": objs},
        }
        try:
            body = await post_json(self.client, review, self.timeout)
            converted = self._objects(body, uid)
        except (WebhookCallError, _Failed) as exc:
            raise _Failed(f"conversion webhook for {source} failed: {exc}") from None
        if len(converted) != len(objs):
            raise _Failed(f"conversion webhook for {source} returned {len(converted)} objects, expected {len(objs)}")
        out: list[Object] = []
        for i, (original, answer) in enumerate(zip(objs, converted)):
            if not isinstance(answer, dict):
                raise _Failed(f"conversion webhook for {source} returned invalid converted object at index {i}: "
                              "not a JSON object")
            if answer.get("apiVersion") != desired:
                got = str(answer.get("apiVersion") or "")
                raise _Failed(f"conversion webhook for {source} returned invalid converted object at index {i}: "
                              f"invalid groupVersion (expected {desired}, received {got})")
            if answer.get("kind") != original.get("kind"):
                raise _Failed(f"conversion webhook for {source} returned invalid converted object at index {i}: "
                              f"invalid kind (expected {original.get('kind')}, received {answer.get('kind') or ''})")
            problem = _same_identity(original, answer)
            if problem:
                raise _Failed(f"conversion webhook for {source} returned invalid converted object at index {i}: "
                              f"{problem}")
            try:
                _restore_meta(original, answer)
            except _Failed as exc:
                raise _Failed(f"conversion webhook for {source} returned invalid metadata in object at index {i}: "
                              f"{exc}") from None
            out.append(answer)
        return out

    def _objects(self, body: Any, uid: str) -> list[Any]:
        """kube's getConvertedObjectsFromResponse."""
        if not isinstance(body, dict):
            raise _Failed("expected a ConversionReview object")
        if self.review_version == "v1":
            if (body.get("apiVersion"), body.get("kind")) != ("apiextensions.k8s.io/v1", "ConversionReview"):
                raise _Failed("expected webhook response of apiextensions.k8s.io/v1, Kind=ConversionReview, got "
                              f"{_gvk(body.get('apiVersion'), str(body.get('kind') or ''))}")
        response = body.get("response")
        if not isinstance(response, dict):
            raise _Failed("no response provided")
        if self.review_version == "v1" and response.get("uid") != uid:
            raise _Failed(f"expected response.uid={go_quote(uid)}, got {go_quote(str(response.get('uid') or ''))}")
        result = response.get("result")
        result = result if isinstance(result, dict) else {}
        if result.get("status") != "Success":
            if result.get("message"):
                raise _Failed(str(result["message"]))
            raise _Failed(f"response.result.status was '{result.get('status') or ''}', not 'Success'")
        converted = response.get("convertedObjects")
        return converted if isinstance(converted, list) else []
