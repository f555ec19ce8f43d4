"""The `scale` subresource: an `autoscaling/v1 Scale` view of a custom resource's replicas.

Reading builds the Scale from the object (specReplicasPath, statusReplicasPath,
labelSelectorPath); writing sets only specReplicasPath on the object, through
the ordinary update path (so resourceVersion, generation and admission apply).
"""
from __future__ import annotations

from typing import Any

from kapi.admission.webhook_match import parse_selector
from kapi.api import errors
from kapi.scheme.definitions import ScaleDef

Object = dict[str, Any]


def _parts(path: str) -> list[str]:
    return [p for p in path.strip().lstrip(".").split(".") if p]


def read_path(obj: Object, path: str) -> Any:
    node: Any = obj
    for part in _parts(path):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def write_path(obj: Object, path: str, value: Any) -> None:
    parts = _parts(path)
    node = obj
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def to_scale(obj: Object, scale: ScaleDef) -> Object:
    meta = obj.get("metadata") or {}
    status: Object = {"replicas": read_path(obj, scale.status_replicas_path) or 0}
    if scale.label_selector_path:
        selector = read_path(obj, scale.label_selector_path)
        if isinstance(selector, dict):  # a built-in's LabelSelector (or an RC's label map) as kube's string
            selector = str(parse_selector(selector if "matchLabels" in selector or "matchExpressions" in selector
                                          else {"matchLabels": selector}))
        if isinstance(selector, str) and selector:
            status["selector"] = selector
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {k: meta[k] for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                     if k in meta},
        "spec": {"replicas": read_path(obj, scale.spec_replicas_path) or 0},
        "status": status,
    }


def replicas_of(scale_obj: Any, name: str) -> int:
    """The wanted replicas of a Scale body; 422 in kube's words when it is not a count."""
    if not isinstance(scale_obj, dict):
        raise errors.BadRequest("the body of the request must be an autoscaling/v1 Scale object")
    replicas = (scale_obj.get("spec") or {}).get("replicas", 0) if isinstance(scale_obj.get("spec"), dict) else 0
    if not isinstance(replicas, int) or isinstance(replicas, bool):
        raise errors.invalid("autoscaling", "Scale", name, [errors.field_invalid(
            "spec.replicas", replicas, "must be an integer")])
    if replicas < 0:
        raise errors.invalid("autoscaling", "Scale", name, [errors.field_invalid(
            "spec.replicas", replicas, "must be greater than or equal to 0")])
    return replicas


def with_replicas(obj: Object, replicas: int, scale: ScaleDef) -> Object:
    write_path(obj, scale.spec_replicas_path, replicas)
    return obj
