"""kube-scheduler, simulated: each unbound pod goes to a Ready node that fits it, or is marked Unschedulable.

Filters are kube's that operators rely on: node Ready and schedulable,
taints tolerated (NoSchedule, NoExecute), nodeSelector and required node
affinity (matchExpressions on labels, matchFields on metadata.name, as
DaemonSet pods use), and resources (requests of containers, init containers
and overhead against allocatable, `pods` included). Among fitting nodes the
least allocated wins (kube's default score), ties by name, so placements are
deterministic. A pod that fits nowhere gets kube's PodScheduled=False
Unschedulable condition and message, and is retried when a pod leaves or a
node changes.
"""
from __future__ import annotations

from collections import Counter
from fractions import Fraction
from typing import Any

from kapi.api import errors
from kapi.controllers.simulation.informer import NODES, PODS, Kind, name_of
from kapi.controllers.simulation.pods import TERMINAL_PHASES, condition, is_terminating, phase
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object
from kapi.scheme.quantity import QuantityError, amount

Object = dict[str, Any]
Resources = dict[str, Fraction]
SCHEDULER = "default-scheduler"


def _quantities(raw: Any) -> Resources:
    out: Resources = {}
    for name, value in (raw or {}).items() if isinstance(raw, dict) else ():
        try:
            out[str(name)] = amount(value)
        except QuantityError:
            continue
    return out


def _add(total: Resources, more: Resources) -> None:
    for name, value in more.items():
        total[name] = total.get(name, Fraction(0)) + value


def pod_requests(pod: Object) -> Resources:
    """kube's effective request: max(sum of containers, each init container) + overhead, plus one `pods`."""
    spec = pod.get("spec") or {}
    total: Resources = {}
    for container in spec.get("containers") or []:
        _add(total, _quantities((container.get("resources") or {}).get("requests")))
    for container in spec.get("initContainers") or []:
        for name, value in _quantities((container.get("resources") or {}).get("requests")).items():
            total[name] = max(total.get(name, Fraction(0)), value)
    _add(total, _quantities(spec.get("overhead")))
    total["pods"] = total.get("pods", Fraction(0)) + 1
    return total


def _tolerates(tolerations: list[Object], taint: Object) -> bool:
    for tol in tolerations:
        if tol.get("effect") and tol.get("effect") != taint.get("effect"):
            continue
        if tol.get("key") and tol.get("key") != taint.get("key"):
            continue
        if not tol.get("key") and tol.get("operator") != "Exists":
            continue
        if tol.get("operator") == "Exists" or tol.get("value", "") == taint.get("value", ""):
            return True
    return False


def _expression_matches(expr: Object, value: str | None) -> bool:
    op, values = expr.get("operator"), [str(v) for v in expr.get("values") or []]
    if op == "In":
        return value is not None and value in values
    if op == "NotIn":
        return value is None or value not in values
    if op == "Exists":
        return value is not None
    if op == "DoesNotExist":
        return value is None
    if op in ("Gt", "Lt") and value is not None and values:
        try:
            return int(value) > int(values[0]) if op == "Gt" else int(value) < int(values[0])
        except ValueError:
            return False
    return False


def affinity_matches(pod: Object, node: Object) -> bool:
    """nodeSelector and requiredDuringSchedulingIgnoredDuringExecution (terms OR'ed, expressions AND'ed)."""
    spec, meta = pod.get("spec") or {}, node.get("metadata") or {}
    labels = meta.get("labels") or {}
    if any(labels.get(k) != v for k, v in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution") or {})
    terms = required.get("nodeSelectorTerms") or []
    if not required or not terms:
        return True
    fields = {"metadata.name": meta.get("name")}
    return any(
        (t.get("matchExpressions") or t.get("matchFields"))
        and all(_expression_matches(e, labels.get(e.get("key", ""))) for e in t.get("matchExpressions") or [])
        and all(_expression_matches(e, fields.get(e.get("key", ""))) for e in t.get("matchFields") or [])
        for t in terms)


class Scheduler(Controller):
    name = SCHEDULER
    workers = 1  # one at a time, as kube's scheduling cycle: each decision sees the previous ones

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        self._usage: dict[str, Resources] = {}  # node -> requests of the pods on it (dropped when they change)
        self._assumed: dict[tuple[str, str], tuple[str, Resources]] = {}  # bound by us, not yet seen bound
        self._waiting: set[tuple[str, str]] = set()  # found no node: retried when capacity may have freed

    def _wants(self, pod: Object | None) -> bool:
        if pod is None or is_terminating(pod) or phase(pod) in TERMINAL_PHASES:
            return False
        spec = pod.get("spec") or {}
        return not spec.get("nodeName") and spec.get("schedulerName", SCHEDULER) in (SCHEDULER, "")

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == NODES:
            self._retry_waiting()
        if kind != PODS:
            return
        for pod in (old, new):
            node = ((pod or {}).get("spec") or {}).get("nodeName")
            if node:
                self._usage.pop(node, None)
        key = name_of(new or old or {})
        if new is not None and (new.get("spec") or {}).get("nodeName"):
            self._assumed.pop(key, None)
        if self._wants(new):
            self.enqueue(key)
        elif new is None or old is not None and (old.get("spec") or {}).get("nodeName") and not self._counts(new):
            self._assumed.pop(key, None)
            self._waiting.discard(key)
            self._retry_waiting()  # a pod left a node: room may have freed

    def _retry_waiting(self) -> None:
        for key in list(self._waiting):
            self.enqueue(key)

    def start_keys(self) -> list[Any]:
        return [name_of(p) for p in self.informer.list(PODS) if self._wants(p)]

    @staticmethod
    def _counts(pod: Object | None) -> bool:
        return pod is not None and phase(pod) not in TERMINAL_PHASES

    def _used(self, node: str) -> Resources:
        used = self._usage.get(node)
        if used is None:
            used = {}
            for pod in self.informer.pods_on(node):
                if self._counts(pod):
                    _add(used, pod_requests(pod))
            self._usage[node] = used
        extra = dict(used)
        for bound_to, requests in self._assumed.values():
            if bound_to == node:
                _add(extra, requests)
        return extra

    def _why_not(self, pod: Object, node: Object, requests: Resources) -> list[str]:
        spec, status = node.get("spec") or {}, node.get("status") or {}
        tolerations = (pod.get("spec") or {}).get("tolerations") or []
        ready = condition(node, "Ready")
        if ready is None or ready.get("status") != "True":
            return ["node(s) were not ready"]
        if spec.get("unschedulable") and not _tolerates(tolerations, {
                "key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}):
            return ["node(s) were unschedulable"]
        for taint in spec.get("taints") or []:
            if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerates(tolerations, taint):
                value = f": {taint['value']}" if taint.get("value") else ""
                return [f"node(s) had untolerated taint {{{taint.get('key')}{value}}}"]
        if not affinity_matches(pod, node):
            return ["node(s) didn't match Pod's node affinity/selector"]
        allocatable, used = _quantities(status.get("allocatable")), self._used(name_of(node)[1])
        short = [name for name, wanted in requests.items()
                 if wanted > 0 and used.get(name, Fraction(0)) + wanted > allocatable.get(name, Fraction(0))]
        return ["Too many pods" if name == "pods" else f"Insufficient {name}" for name in sorted(short)]

    def _score(self, node: Object) -> tuple[Fraction, str]:
        allocatable, used = _quantities((node.get("status") or {}).get("allocatable")), self._used(name_of(node)[1])
        shares = [used.get(r, Fraction(0)) / allocatable[r] for r in ("cpu", "memory", "pods") if allocatable.get(r)]
        return (sum(shares, Fraction(0)), name_of(node)[1])

    async def reconcile(self, key: tuple[str, str]) -> None:
        pod = self.informer.get(PODS, *key)
        if not self._wants(pod) or key in self._assumed:
            self._waiting.discard(key)
            return
        assert pod is not None
        requests, reasons, fitting = pod_requests(pod), Counter[str](), []
        nodes = sorted(self.informer.list(NODES), key=lambda n: name_of(n)[1])
        for node in nodes:
            why = self._why_not(pod, node, requests)
            reasons.update(why)
            if not why:
                fitting.append(node)
        if not fitting:
            self._waiting.add(key)
            await self._unschedulable(pod, len(nodes), reasons)
            return
        self._waiting.discard(key)
        chosen = name_of(min(fitting, key=self._score))[1]
        self._assumed[key] = (chosen, requests)
        try:
            await self._bind(key, chosen)
        except BaseException:
            self._assumed.pop(key, None)
            raise

    async def _bind(self, key: tuple[str, str], node: str) -> None:
        now = self.clock.rfc3339()

        def bind(pod: Object | None) -> Object:
            if pod is None or (pod.get("spec") or {}).get("nodeName") or is_terminating(pod):
                raise errors.conflict("", "pods/binding", key[1], "the pod is already assigned or going away")
            pod["spec"]["nodeName"] = node
            status = pod.setdefault("status", {})
            status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [
                {"type": "PodScheduled", "status": "True", "lastProbeTime": None, "lastTransitionTime": now}]
            return pod

        store = self.cluster.store(PODS)
        assert store is not None
        await store.assign(key[0], key[1], "v1", bind)

    async def _unschedulable(self, pod: Object, node_count: int, reasons: Counter[str]) -> None:
        if not node_count:
            message = "no nodes available to schedule pods"
        else:
            counted = ", ".join(sorted(f"{n} {reason}" for reason, n in reasons.items()))
            message = (f"0/{node_count} nodes are available: {counted}. preemption: 0/{node_count} nodes are "
                       f"available: {node_count} No preemption victims found for incoming pod.")
        current = condition(pod, "PodScheduled")
        if current is not None and current.get("reason") == "Unschedulable" and current.get("message") == message:
            return
        status = copy_object(pod.get("status") or {})
        status.setdefault("phase", "Pending")
        status["conditions"] = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"] + [{
            "type": "PodScheduled", "status": "False", "lastProbeTime": None,
            "lastTransitionTime": self.clock.rfc3339(), "reason": "Unschedulable", "message": message}]
        await self.cluster.set_status(PODS, pod, status, SCHEDULER)
