"""Pod helpers the workload controllers share: pods from templates, owner references, readiness, hashes."""
from __future__ import annotations

import hashlib
from typing import Any

import orjson

from kapi.admission.webhook_match import parse_selector
from kapi.api.meta import parse_rfc3339
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
_SAFE = "bcdfghjklmnpqrstvwxz2456789"  # kube's rand.SafeEncodeString alphabet
TERMINAL_PHASES = ("Succeeded", "Failed")


def owner_reference(owner: Object, block: bool = True) -> Object:
    """The controller reference a controller puts on what it creates."""
    meta = owner["metadata"]
    return {"apiVersion": owner.get("apiVersion", "v1"), "kind": owner.get("kind", ""), "name": meta["name"],
            "uid": meta["uid"], "controller": True, "blockOwnerDeletion": block}


def pod_from_template(owner: Object, template: Object, *, name: str = "", generate_name: str = "",
                      labels: dict[str, str] | None = None, annotations: dict[str, str] | None = None) -> Object:
    """A new Pod as kube's controllers make one: the template's metadata and spec, owned by `owner`."""
    template = copy_object(template or {})
    tmeta = template.get("metadata") or {}
    meta: Object = {"namespace": owner["metadata"].get("namespace", ""),
                    "labels": {**(tmeta.get("labels") or {}), **(labels or {})},
                    "ownerReferences": [owner_reference(owner)]}
    if tmeta.get("annotations") or annotations:
        meta["annotations"] = {**(tmeta.get("annotations") or {}), **(annotations or {})}
    if tmeta.get("finalizers"):
        meta["finalizers"] = list(tmeta["finalizers"])
    if name:
        meta["name"] = name
    else:
        meta["generateName"] = generate_name or f"{owner['metadata']['name']}-"
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": template.get("spec") or {}}


def phase(pod: Object) -> str:
    return str((pod.get("status") or {}).get("phase") or "Pending")


def is_terminating(obj: Object) -> bool:
    return bool((obj.get("metadata") or {}).get("deletionTimestamp"))


def is_active(pod: Object) -> bool:
    """Counts towards a controller's replicas: not finished and not being deleted."""
    return phase(pod) not in TERMINAL_PHASES and not is_terminating(pod)


def condition(obj: Object, kind: str) -> Object | None:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if isinstance(cond, dict) and cond.get("type") == kind:
            return cond
    return None


def is_ready(pod: Object) -> bool:
    cond = condition(pod, "Ready")
    return cond is not None and cond.get("status") == "True"


def ready_since(pod: Object) -> float | None:
    """When the pod became Ready (epoch seconds), or None when it is not ready."""
    cond = condition(pod, "Ready")
    if cond is None or cond.get("status") != "True":
        return None
    moment = parse_rfc3339(str(cond.get("lastTransitionTime") or ""))
    return moment.timestamp() if moment is not None else 0.0


def is_available(pod: Object, min_ready_seconds: int, now: float) -> bool:
    """Ready for at least `min_ready_seconds` (kube's podutil.IsPodAvailable)."""
    since = ready_since(pod)
    return since is not None and (min_ready_seconds <= 0 or since + min_ready_seconds <= now)


def safe_encode(text: str) -> str:
    """kube's SafeEncodeString: no vowels, no look-alikes, so a hash never spells a word."""
    return "".join(_SAFE[ord(c) % len(_SAFE)] for c in text)


def template_hash(template: Object, collision_count: int = 0) -> str:
    """A stable short hash of a pod template (kube's pod-template-hash / controller-revision-hash shape)."""
    data = orjson.dumps(template or {}, option=orjson.OPT_SORT_KEYS) + str(collision_count).encode()
    value = int.from_bytes(hashlib.blake2b(data, digest_size=4).digest(), "big")
    return safe_encode(str(value))


def matches(selector: Object | None, labels: dict[str, str]) -> bool:
    """A LabelSelector (matchLabels and matchExpressions) against labels; an empty or nil one matches nothing
    here, as controllers never select everything."""
    if not selector:
        return False
    return parse_selector(selector).matches(labels or {})
