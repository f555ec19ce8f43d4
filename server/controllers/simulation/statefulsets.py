"""kube-controller-manager's StatefulSet controller: ordered pods with stable names and storage, and revisions.

Pod `<set>-<ordinal>` (from `spec.ordinals.start`) gets its hostname, the
service's subdomain, the labels `statefulset.kubernetes.io/pod-name`,
`apps.kubernetes.io/pod-index` and `controller-revision-hash: <set>-<hash>`,
and its claims `<template>-<set>-<ordinal>`, created before it and never
deleted. With OrderedReady a pod is created only once every lower one is
Running and Ready (and available for minReadySeconds), and surplus pods go
from the highest ordinal, one at a time; Parallel does all at once. A
RollingUpdate replaces, from the highest ordinal down to the partition, one
pod at a time once the others are healthy; OnDelete only when a pod is
deleted. The template of every version is kept as a ControllerRevision, so
`kubectl rollout history/undo/status statefulset` work as against kube.
"""
from __future__ import annotations

import contextlib
import re
from typing import Any

from kapi.api import errors
from kapi.controllers.simulation.informer import (
    CONTROLLER_REVISIONS,
    PODS,
    PVCS,
    STATEFUL_SETS,
    Kind,
    Name,
    name_of,
)
from kapi.controllers.simulation.pods import (
    TERMINAL_PHASES,
    is_available,
    is_ready,
    is_terminating,
    phase,
    pod_from_template,
    ready_since,
)
from kapi.controllers.simulation.replicasets import owner_key
from kapi.controllers.simulation.revisions import (
    HASH_LABEL,
    new_revision,
    next_number,
    owned_revisions,
    renumber,
    revision_hash,
    revision_name,
    revision_template,
    template_patch,
    truncate,
)
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
_ORDINAL = re.compile(r"^(.*)-([0-9]+)$")


def parent_and_ordinal(pod_name: str) -> tuple[str, int]:
    """kube's getParentNameAndOrdinal: (`web`, 3) for `web-3`; ("", -1) when the name has no ordinal."""
    found = _ORDINAL.match(pod_name)
    return (found.group(1), int(found.group(2))) if found else ("", -1)


def start_ordinal(sts: Object) -> int:
    ordinals = (sts.get("spec") or {}).get("ordinals") or {}
    return int(ordinals.get("start") or 0) if isinstance(ordinals, dict) else 0


def claim_name(template_name: str, sts_name: str, ordinal: int) -> str:
    return f"{template_name}-{sts_name}-{ordinal}"


def claims_for(sts: Object, ordinal: int) -> list[Object]:
    """The PersistentVolumeClaims of pod `ordinal`, from `volumeClaimTemplates` (kube's getPersistentVolumeClaims)."""
    meta, spec = sts["metadata"], sts.get("spec") or {}
    selector_labels = (spec.get("selector") or {}).get("matchLabels") or {}
    claims = []
    for template in spec.get("volumeClaimTemplates") or []:
        tmeta = template.get("metadata") or {}
        claim_meta: Object = {"name": claim_name(str(tmeta.get("name") or ""), meta["name"], ordinal),
                              "namespace": meta.get("namespace", ""),
                              "labels": {**(tmeta.get("labels") or {}), **selector_labels}}
        if tmeta.get("annotations"):
            claim_meta["annotations"] = dict(tmeta["annotations"])
        claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": claim_meta,
                       "spec": copy_object(template.get("spec") or {})})
    return claims


def stateful_pod(sts: Object, template: Object, ordinal: int, revision: str) -> Object:
    """Pod `ordinal` of `sts` from `template` at `revision` (kube's newVersionedStatefulSetPod)."""
    name = f"{sts['metadata']['name']}-{ordinal}"
    pod = pod_from_template(sts, template, name=name, labels={
        HASH_LABEL: revision, POD_NAME_LABEL: name, POD_INDEX_LABEL: str(ordinal)})
    pod["metadata"]["generateName"] = f"{sts['metadata']['name']}-"
    spec = pod["spec"]
    spec["hostname"] = name
    service = (sts.get("spec") or {}).get("serviceName")
    if service:
        spec["subdomain"] = service
    templates = [(t.get("metadata") or {}).get("name") for t in (sts.get("spec") or {}).get("volumeClaimTemplates")
                 or []]
    if templates:  # the claims' volumes first, then the template's others (kube's updateStorage)
        volumes: list[Object] = [{"name": t, "persistentVolumeClaim": {
            "claimName": claim_name(str(t), sts["metadata"]["name"], ordinal)}} for t in templates]
        spec["volumes"] = volumes + [v for v in spec.get("volumes") or [] if v.get("name") not in templates]
    return pod


def running_and_ready(pod: Object) -> bool:
    return phase(pod) == "Running" and is_ready(pod)


def healthy(pod: Object | None) -> bool:
    return pod is not None and running_and_ready(pod) and not is_terminating(pod)


def revision_of(pod: Object) -> str:
    return str((pod["metadata"].get("labels") or {}).get(HASH_LABEL) or "")


class StatefulSetController(Controller):
    name = "statefulset-controller"
    workers = 4

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == STATEFUL_SETS:
            self.enqueue(name_of(new or old or {}))
        elif kind in (PODS, CONTROLLER_REVISIONS):
            for obj in (old, new):
                key = owner_key(self.informer, kind, obj, STATEFUL_SETS) if obj else None
                if key is not None:
                    self.enqueue(key)

    def start_keys(self) -> list[Any]:
        return [name_of(s) for s in self.informer.list(STATEFUL_SETS)]

    async def reconcile(self, key: Name) -> None:
        sts = self.informer.get(STATEFUL_SETS, *key)
        if sts is None or is_terminating(sts):
            return
        status = sts.get("status") or {}
        revisions = owned_revisions(self.informer, sts)
        found = await self._revisions(sts, revisions, int(status.get("collisionCount") or 0))
        if found is None:
            return
        current, update, collisions = found
        pods = [p for p in self.informer.owned(PODS, sts)
                if parent_and_ordinal(p["metadata"]["name"])[0] == sts["metadata"]["name"]]
        await self._sync(sts, current, update, pods)
        live = {current["metadata"]["name"], update["metadata"]["name"], *(revision_of(p) for p in pods)}
        await truncate(self.cluster, revisions, live, int((sts.get("spec") or {}).get("revisionHistoryLimit", 10)))
        pods = [p for p in self.informer.owned(PODS, sts)
                if parent_and_ordinal(p["metadata"]["name"])[0] == sts["metadata"]["name"]]
        await self.cluster.set_status(STATEFUL_SETS, sts, self.status(sts, pods, current, update, collisions))

    # -- revisions --------------------------------------------------------------------------------
    async def _revisions(self, sts: Object, revisions: list[Object],
                         collisions: int) -> tuple[Object, Object, int] | None:
        """(current, update, collision count), creating or re-numbering the update revision (kube's
        getStatefulSetRevisions)."""
        data = template_patch((sts.get("spec") or {}).get("template") or {})
        equal = [r for r in revisions if r.get("data") == data]
        update: Object | None
        if equal and revisions[-1] is equal[-1]:
            update = equal[-1]
        elif equal:
            update = await renumber(self.cluster, equal[-1], next_number(revisions))
        else:
            update, collisions = await self._create_revision(sts, data, next_number(revisions), collisions)
        if update is None:
            return None
        wanted = str((sts.get("status") or {}).get("currentRevision") or "")
        current = next((r for r in revisions if r["metadata"]["name"] == wanted), update)
        return current, update, collisions

    async def _create_revision(self, sts: Object, data: Object, number: int,
                               collisions: int) -> tuple[Object | None, int]:
        namespace = sts["metadata"].get("namespace", "")
        while True:
            hash_ = revision_hash(data, collisions)
            existing = self.informer.get(CONTROLLER_REVISIONS, namespace, revision_name(sts["metadata"]["name"], hash_))
            if existing is not None and existing.get("data") != data:
                collisions += 1  # a different template hashed to this name: kube's collision avoidance
                continue
            revision = existing or await self.cluster.create(CONTROLLER_REVISIONS, namespace,
                                                             new_revision(sts, data, number, hash_))
            return revision, collisions

    # -- pods -----------------------------------------------------------------------------------------
    async def _sync(self, sts: Object, current: Object, update: Object, pods: list[Object]) -> None:
        """One pass of kube's updateStatefulSet: replicas, then condemned pods, then the rolling update."""
        spec = sts.get("spec") or {}
        start, count = start_ordinal(sts), int(spec.get("replicas", 1) or 0)
        monotonic = spec.get("podManagementPolicy") != "Parallel"
        min_ready = int(spec.get("minReadySeconds") or 0)
        slots: list[Object | None] = [None] * count
        condemned: list[Object] = []
        for pod in pods:
            ordinal = parent_and_ordinal(pod["metadata"]["name"])[1]
            if start <= ordinal < start + count:
                slots[ordinal - start] = pod
            elif ordinal >= 0:
                condemned.append(pod)
        condemned.sort(key=lambda p: -parent_and_ordinal(p["metadata"]["name"])[1])
        unhealthy = [p for p in [*slots, *condemned] if not healthy(p)]
        first_unhealthy = unhealthy[0] if unhealthy else None
        for index, slot in enumerate(slots):
            if await self._replica(sts, current, update, index, slot, monotonic, min_ready) and monotonic:
                return
        for doomed in condemned:
            if is_terminating(doomed):
                if monotonic:
                    return
                continue
            if monotonic and doomed is not first_unhealthy and not self._available(sts, doomed, min_ready):
                return
            await self.cluster.delete(PODS, doomed)
            if monotonic:
                return
        strategy = spec.get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return  # OnDelete: a pod is replaced only when someone deletes it
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        for target in range(count - 1, partition - 1, -1):
            target_pod = slots[target]
            if target_pod is None:
                return
            if revision_of(target_pod) != update["metadata"]["name"] and not is_terminating(target_pod):
                await self.cluster.delete(PODS, target_pod)
                return
            if not healthy(target_pod):
                return

    async def _replica(self, sts: Object, current: Object, update: Object, index: int, pod: Object | None,
                       monotonic: bool, min_ready: int) -> bool:
        """kube's processReplica; True when this replica blocks the ones after it."""
        ordinal = start_ordinal(sts) + index
        if pod is None:
            revision = self._versioned(sts, current, update, index)
            await self._create(sts, revision, ordinal)
            return True
        if phase(pod) in TERMINAL_PHASES:
            if not is_terminating(pod):
                await self.cluster.delete(PODS, pod)  # recreated once it is gone
            return True
        if phase(pod) == "Pending":
            await self._create_claims(sts, ordinal)
        if is_terminating(pod):
            return True
        return not self._available(sts, pod, min_ready)

    def _available(self, sts: Object, pod: Object, min_ready: int) -> bool:
        """Running, Ready, and Ready for minReadySeconds (a reconcile is queued for when it will be)."""
        if not running_and_ready(pod):
            return False
        if is_available(pod, min_ready, self.clock.now()):
            return True
        since = ready_since(pod)
        if since is not None:
            self.enqueue_at(since + min_ready, name_of(sts))
        return False

    @staticmethod
    def _versioned(sts: Object, current: Object, update: Object, index: int) -> Object:
        """Which revision a new pod gets: the current one below the partition, else the update one."""
        strategy = (sts.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate")
            below = int((sts.get("status") or {}).get("currentReplicas") or 0) if rolling is None else int(
                rolling.get("partition") or 0)
            if index < below:
                return current
        return update

    async def _create(self, sts: Object, revision: Object, ordinal: int) -> None:
        if not await self._create_claims(sts, ordinal):
            return
        pod = stateful_pod(sts, revision_template(revision), ordinal, revision["metadata"]["name"])
        with contextlib.suppress(errors.AlreadyExists):  # the informer has not seen our last create yet
            await self.cluster.create(PODS, sts["metadata"].get("namespace", ""), pod)

    async def _create_claims(self, sts: Object, ordinal: int) -> bool:
        """Create the pod's missing claims; False while one is being deleted (the pod must wait)."""
        for claim in claims_for(sts, ordinal):
            namespace, name = claim["metadata"]["namespace"], claim["metadata"]["name"]
            existing = self.informer.get(PVCS, namespace, name)
            if existing is not None:
                if is_terminating(existing):
                    return False
                continue
            with contextlib.suppress(errors.AlreadyExists):
                await self.cluster.create(PVCS, namespace, claim)
        return True

    # -- status ----------------------------------------------------------------------------------------
    def status(self, sts: Object, pods: list[Object], current: Object, update: Object, collisions: int) -> Object:
        """kube's StatefulSetStatus, zero counts omitted where kube's JSON omits them."""
        spec = sts.get("spec") or {}
        min_ready, now = int(spec.get("minReadySeconds") or 0), self.clock.now()
        current_name, update_name = current["metadata"]["name"], update["metadata"]["name"]
        live = [p for p in pods if not is_terminating(p)]
        status: Object = {
            "observedGeneration": int(sts["metadata"].get("generation") or 1),
            "replicas": len(pods),
            "readyReplicas": sum(1 for p in pods if running_and_ready(p)),
            "currentReplicas": sum(1 for p in live if revision_of(p) == current_name),
            "updatedReplicas": sum(1 for p in live if revision_of(p) == update_name),
            "currentRevision": current_name,
            "updateRevision": update_name,
            "collisionCount": collisions,
            "availableReplicas": sum(1 for p in pods if running_and_ready(p) and is_available(p, min_ready, now)),
        }
        rolling = ((spec.get("updateStrategy") or {}).get("type", "RollingUpdate")) == "RollingUpdate"
        if rolling and status["updatedReplicas"] == status["replicas"] == status["readyReplicas"]:
            status["currentReplicas"], status["currentRevision"] = status["updatedReplicas"], update_name
        for key in ("readyReplicas", "currentReplicas", "updatedReplicas"):
            if not status[key]:
                del status[key]
        conditions = (sts.get("status") or {}).get("conditions")
        if conditions:
            status["conditions"] = conditions
        return status
