"""kube-controller-manager's ReplicaSet controller: keep `spec.replicas` pods of the template, report status.

Extra pods go in kube's order of least value first: unscheduled, then
pending, then not ready, then the youngest. Status counts what kube counts:
replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (ready for
minReadySeconds on the simulated clock), observedGeneration.
"""
from __future__ import annotations

from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import PODS, REPLICA_SETS, Kind, Name, controller_uid, name_of
from kapi.controllers.simulation.pods import (
    is_active,
    is_available,
    is_ready,
    phase,
    pod_from_template,
    ready_since,
)
from kapi.controllers.simulation.runtime import Controller

Object = dict[str, Any]
BURST = 500  # kube's burstReplicas: at most this many creates or deletes per reconcile


def owner_key(informer: Any, kind: Kind, obj: Object, owner_kind: Kind) -> Name | None:
    """The (namespace, name) of the `owner_kind` object controlling `obj`, if it is one we know."""
    uid = controller_uid(obj)
    if not uid:
        return None
    namespace = name_of(obj)[0]
    for ref in obj["metadata"].get("ownerReferences") or []:
        if ref.get("uid") == uid:
            owner = informer.get(owner_kind, namespace, ref.get("name", ""))
            if owner is not None and owner["metadata"].get("uid") == uid:
                return namespace, ref["name"]
    return None


def deletion_rank(pod: Object) -> tuple[int, int, int, float]:
    """Lower goes first (kube's ActivePods ordering, simplified)."""
    spec, created = pod.get("spec") or {}, parse_rfc3339(str(pod["metadata"].get("creationTimestamp") or ""))
    return (0 if not spec.get("nodeName") else 1, 0 if phase(pod) == "Pending" else 1, 1 if is_ready(pod) else 0,
            -(created.timestamp() if created else 0.0))


class ReplicaSetController(Controller):
    name = "replicaset-controller"
    workers = 4

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == REPLICA_SETS:
            self.enqueue(name_of(new or old or {}))
        elif kind == PODS:
            for obj in (old, new):
                key = owner_key(self.informer, PODS, obj, REPLICA_SETS) if obj else None
                if key is not None:
                    self.enqueue_soon(key)

    def start_keys(self) -> list[Any]:
        return [name_of(rs) for rs in self.informer.list(REPLICA_SETS)]

    async def reconcile(self, key: Name) -> None:
        rs = self.informer.get(REPLICA_SETS, *key)
        if rs is None or rs["metadata"].get("deletionTimestamp"):
            return
        spec = rs.get("spec") or {}
        pods = [p for p in self.informer.owned(PODS, rs) if is_active(p)]
        wanted = int(spec.get("replicas", 1) or 0)
        if len(pods) < wanted:
            for _ in range(min(wanted - len(pods), BURST)):
                await self.cluster.create(PODS, key[0], pod_from_template(rs, spec.get("template") or {}))
        elif len(pods) > wanted:
            for pod in sorted(pods, key=deletion_rank)[:min(len(pods) - wanted, BURST)]:
                await self.cluster.delete(PODS, pod)
        await self.cluster.set_status(REPLICA_SETS, rs, self.status(rs))

    def status(self, rs: Object) -> Object:
        spec = rs.get("spec") or {}
        pods = [p for p in self.informer.owned(PODS, rs) if is_active(p)]
        labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
        min_ready, now = int(spec.get("minReadySeconds") or 0), self.clock.now()
        available = [p for p in pods if is_available(p, min_ready, now)]
        if min_ready:
            waiting = [s + min_ready for p in pods if (s := ready_since(p)) is not None and s + min_ready > now]
            if waiting:
                self.enqueue_at(min(waiting), name_of(rs))
        status: Object = {
            "replicas": len(pods),
            "fullyLabeledReplicas": sum(1 for p in pods if labels.items() <= (p["metadata"].get("labels") or {}).items()),
            "readyReplicas": sum(1 for p in pods if is_ready(p)),
            "availableReplicas": len(available),
            "observedGeneration": int(rs["metadata"].get("generation") or 1),
        }
        for key in ("fullyLabeledReplicas", "readyReplicas", "availableReplicas"):
            if not status[key]:
                del status[key]  # kube omits zero counts (omitempty)
        return status
