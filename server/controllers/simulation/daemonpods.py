"""DaemonSet pods, purely: which nodes want one, what kube adds to each, which pods count as updated.

kube's daemon controller decides with a copy of the pod that carries the
automatic daemon tolerations (not-ready and unreachable NoExecute; disk,
memory and PID pressure, unschedulable NoSchedule; network-unavailable for
host-network pods), so those taints never keep a daemon pod off a node.
"""
from __future__ import annotations

from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import name_of
from kapi.controllers.simulation.pods import is_terminating
from kapi.controllers.simulation.revisions import HASH_LABEL
from kapi.controllers.simulation.scheduler import affinity_matches
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
GENERATION_LABEL = "pod-template-generation"
GENERATION_ANNOTATION = "deprecated.daemonset.template.generation"
DAEMON_TOLERATIONS: tuple[Object, ...] = (
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
    {"key": "node.kubernetes.io/disk-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/memory-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/pid-pressure", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"},
)
NETWORK_UNAVAILABLE = {"key": "node.kubernetes.io/network-unavailable", "operator": "Exists", "effect": "NoSchedule"}


# -- which nodes, which pods (pure) ----------------------------------------------------------------------
def daemon_pod_spec(template_spec: Object) -> Object:
    """The template's spec with kube's automatic daemon tolerations added (AddOrUpdateDaemonPodTolerations)."""
    spec = copy_object(template_spec or {})
    tolerations = list(spec.get("tolerations") or [])
    wanted = [*DAEMON_TOLERATIONS, *((NETWORK_UNAVAILABLE,) if spec.get("hostNetwork") else ())]
    same = ("key", "operator", "value", "effect")
    for toleration in wanted:
        if not any(all(t.get(f) == toleration.get(f) for f in same) for t in tolerations):
            tolerations.append(dict(toleration))
    spec["tolerations"] = tolerations
    return spec


def tolerates(tolerations: list[Object], taint: Object) -> bool:
    """kube's Toleration.ToleratesTaint for any of `tolerations`."""
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("key") and tol.get("key") != taint.get("key"):
            continue
        operator = tol.get("operator") or "Equal"
        if operator == "Exists" or (operator == "Equal" and tol.get("key") and
                                    str(tol.get("value") or "") == str(taint.get("value") or "")):
            return True
    return False


def should_run(node: Object, ds: Object) -> tuple[bool, bool]:
    """(should run a daemon pod, may keep one already there): kube's NodeShouldRunDaemonPod."""
    spec = daemon_pod_spec(((ds.get("spec") or {}).get("template") or {}).get("spec") or {})
    if spec.get("nodeName") and spec["nodeName"] != name_of(node)[1]:
        return False, False
    if not affinity_matches({"spec": spec}, node):
        return False, False
    untolerated = [t for t in (node.get("spec") or {}).get("taints") or []
                   if t.get("effect") in ("NoSchedule", "NoExecute") and not tolerates(spec["tolerations"], t)]
    if untolerated:
        return False, not any(t.get("effect") == "NoExecute" for t in untolerated)
    return True, True


def node_affinity(affinity: Object | None, node: str) -> Object:
    """The pod's affinity with its required node terms replaced by `metadata.name In [node]` (kube's
    ReplaceDaemonSetPodNodeNameNodeAffinity)."""
    out = copy_object(affinity or {})
    required = out.setdefault("nodeAffinity", {}).setdefault("requiredDuringSchedulingIgnoredDuringExecution", {})
    required["nodeSelectorTerms"] = [{"matchFields": [{"key": "metadata.name", "operator": "In", "values": [node]}]}]
    return out


def target_node(pod: Object) -> str:
    """The node a daemon pod is for: its nodeName, else its `metadata.name` node affinity."""
    spec = pod.get("spec") or {}
    if spec.get("nodeName"):
        return str(spec["nodeName"])
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    for term in required.get("nodeSelectorTerms") or []:
        for field in term.get("matchFields") or []:
            if field.get("key") == "metadata.name" and field.get("operator") == "In" and len(
                    field.get("values") or []) == 1:
                return str(field["values"][0])
    return ""


def template_generation(ds: Object) -> str | None:
    """The template generation the API server records in an annotation (None without one)."""
    value = (ds["metadata"].get("annotations") or {}).get(GENERATION_ANNOTATION)
    return str(value) if value is not None else None


def is_updated(pod: Object, hash_: str, generation: str | None) -> bool:
    """kube's IsPodUpdated: the current revision's hash, or (older pods) the current template generation."""
    labels = pod["metadata"].get("labels") or {}
    return bool(hash_) and labels.get(HASH_LABEL) == hash_ or (
        generation is not None and labels.get(GENERATION_LABEL) == generation)


def oldest_first(pod: Object) -> tuple[int, float, str]:
    """kube's podByCreationTimestampAndPhase: scheduled first, then oldest, then by name."""
    created = parse_rfc3339(str(pod["metadata"].get("creationTimestamp") or ""))
    return (0 if (pod.get("spec") or {}).get("nodeName") else 1, created.timestamp() if created else 0.0,
            pod["metadata"]["name"])


def scaled(value: Any, total: int) -> int:
    """An int-or-percent of `total`, rounded up (kube's GetScaledValueFromIntOrPercent, roundUp)."""
    if isinstance(value, str) and value.endswith("%"):
        try:
            return -(-int(value[:-1]) * total // 100)
        except ValueError:
            return 0
    try:
        return int(value or 0)
    except (TypeError, ValueError):
        return 0


def updated_and_old(pods: list[Object], hash_: str,
                    generation: str | None) -> tuple[Object | None, Object | None, bool]:
    """(new pod, old pod, at most one of each) among a node's pods not being deleted (findUpdatedPodsOnNode)."""
    new = old = None
    for pod in pods:
        if is_terminating(pod):
            continue
        if is_updated(pod, hash_, generation):
            if new is not None:
                return None, None, False
            new = pod
        else:
            if old is not None:
                return None, None, False
            old = pod
    return new, old, True
