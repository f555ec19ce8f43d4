"""kube-controller-manager's Deployment controller: ReplicaSets per template, rolling updates, revisions, status.

As kube's: the ReplicaSet whose template equals the Deployment's (ignoring
`pod-template-hash`) is the new one, named `<deployment>-<hash>`; each
rollout gives it the next `deployment.kubernetes.io/revision` (so
`kubectl rollout undo`, which puts an old template back, makes that old
ReplicaSet new again under a new revision). RollingUpdate scales the new set
up within maxSurge and the old ones down within maxUnavailable, first
removing old pods that are not available; Recreate scales the old sets to
zero and waits for their pods to go. Status and the Available / Progressing
conditions use kube's reasons and messages, which `kubectl rollout status`
reads; progressDeadlineSeconds runs on the simulated clock. Old sets beyond
revisionHistoryLimit are deleted.
"""
from __future__ import annotations

import math
from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import DEPLOYMENTS, PODS, REPLICA_SETS, Kind, Name, name_of
from kapi.controllers.simulation.pods import is_active, owner_reference, template_hash
from kapi.controllers.simulation.replicasets import owner_key
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"
REVISION_HISTORY = "deployment.kubernetes.io/revision-history"
DESIRED, MAX_REPLICAS = "deployment.kubernetes.io/desired-replicas", "deployment.kubernetes.io/max-replicas"
_NOT_COPIED = {REVISION, REVISION_HISTORY, DESIRED, MAX_REPLICAS,
               "kubectl.kubernetes.io/last-applied-configuration", "deprecated.deployment.rollback.to"}


def _int(value: Any, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def resolve(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString (3 or "25%") against `total`, as kube's GetScaledValueFromIntOrPercent."""
    if isinstance(value, str) and value.endswith("%"):
        scaled = _int(value[:-1]) * total / 100
        return math.ceil(scaled) if round_up else math.floor(scaled)
    return _int(value)


def surge_and_unavailable(deployment: Object) -> tuple[int, int]:
    spec = deployment.get("spec") or {}
    replicas = _int(spec.get("replicas"), 1)
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return 0, replicas
    rolling = strategy.get("rollingUpdate") or {}
    surge = resolve(rolling.get("maxSurge", "25%"), replicas, True)
    unavailable = resolve(rolling.get("maxUnavailable", "25%"), replicas, False)
    if surge == 0 and unavailable == 0:
        unavailable = 1  # kube's rule: a rollout must be able to move
    return surge, min(unavailable, replicas)


def without_hash(template: Object) -> Object:
    out = copy_object(template or {})
    labels = (out.get("metadata") or {}).get("labels")
    if isinstance(labels, dict):
        labels.pop(HASH_LABEL, None)
    return out


def revision_of(rs: Object) -> int:
    return _int(((rs.get("metadata") or {}).get("annotations") or {}).get(REVISION))


def _created(obj: Object) -> tuple[float, str]:
    moment = parse_rfc3339(str(obj["metadata"].get("creationTimestamp") or ""))
    return (moment.timestamp() if moment else 0.0, obj["metadata"]["name"])


def _replicas(rs: Object) -> int:
    return _int((rs.get("spec") or {}).get("replicas"))


def _status(rs: Object | None, field: str) -> int:
    return _int(((rs or {}).get("status") or {}).get(field))


class DeploymentController(Controller):
    name = "deployment-controller"
    workers = 4

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == DEPLOYMENTS:
            self.enqueue(name_of(new or old or {}))
        elif kind == REPLICA_SETS:
            for obj in (old, new):
                key = owner_key(self.informer, REPLICA_SETS, obj, DEPLOYMENTS) if obj else None
                if key is not None:
                    self.enqueue(key)
        elif kind == PODS and new is None and old is not None:  # Recreate waits for old pods to be gone
            rs_key = owner_key(self.informer, PODS, old, REPLICA_SETS)
            rs = self.informer.get(REPLICA_SETS, *rs_key) if rs_key else None
            key = owner_key(self.informer, REPLICA_SETS, rs, DEPLOYMENTS) if rs else None
            if key is not None:
                self.enqueue(key)

    def start_keys(self) -> list[Any]:
        return [name_of(d) for d in self.informer.list(DEPLOYMENTS)]

    # -- reconcile -----------------------------------------------------------------------------------
    async def reconcile(self, key: Name) -> None:
        d = self.informer.get(DEPLOYMENTS, *key)
        if d is None or d["metadata"].get("deletionTimestamp"):
            return
        spec = d.get("spec") or {}
        sets = sorted(self.informer.owned(REPLICA_SETS, d), key=_created)
        template = without_hash(spec.get("template") or {})
        new_rs = next((rs for rs in sets if without_hash((rs.get("spec") or {}).get("template") or {}) == template),
                      None)
        old_sets = [rs for rs in sets if rs is not new_rs]
        if spec.get("paused"):
            await self._sync_status(d, new_rs, old_sets, progressed=False)
            return
        created = False
        if new_rs is None:
            new_rs, created = await self._create_new(d, old_sets), True
            if new_rs is None:
                return
        else:
            await self._sync_new_annotations(d, new_rs, old_sets)
        before = (_replicas(new_rs), sum(_replicas(rs) for rs in old_sets))
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            await self._recreate(d, new_rs, old_sets)
        else:
            await self._rolling(d, new_rs, old_sets)
        moved = created or before != (self._replicas_now(new_rs), sum(self._replicas_now(rs) for rs in old_sets))
        await self._sync_status(d, new_rs, old_sets, progressed=moved, created=created)
        await self._clean_up(d, old_sets)

    def _replicas_now(self, rs: Object) -> int:
        current = self.informer.get(REPLICA_SETS, *name_of(rs))
        return _replicas(current or rs)

    async def _create_new(self, d: Object, old_sets: list[Object]) -> Object | None:
        spec, meta = d.get("spec") or {}, d["metadata"]
        collisions = _int((d.get("status") or {}).get("collisionCount"))
        template = copy_object(spec.get("template") or {})
        digest = template_hash(without_hash(template), collisions)
        labels: dict[str, str] = dict(template.setdefault("metadata", {}).get("labels") or {})
        template["metadata"]["labels"] = labels
        labels[HASH_LABEL] = digest
        selector = copy_object(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = digest
        replicas, (surge, _) = _int(spec.get("replicas"), 1), surge_and_unavailable(d)
        revision = max((revision_of(rs) for rs in old_sets), default=0) + 1
        annotations = {k: v for k, v in (meta.get("annotations") or {}).items() if k not in _NOT_COPIED}
        annotations.update({REVISION: str(revision), DESIRED: str(replicas), MAX_REPLICAS: str(replicas + surge)})
        rs: Object = {"apiVersion": "apps/v1", "kind": "ReplicaSet",
              "metadata": {"name": f"{meta['name']}-{digest}", "namespace": meta.get("namespace", ""),
                           "labels": dict(labels), "annotations": annotations,
                           "ownerReferences": [owner_reference(d)]},
              "spec": {"replicas": self._first_replicas(d, old_sets), "minReadySeconds": _int(spec.get("minReadySeconds")),
                       "selector": selector, "template": template}}
        existing = self.informer.get(REPLICA_SETS, meta.get("namespace", ""), rs["metadata"]["name"])
        if existing is not None:  # a ReplicaSet of that name with another template: kube's hash collision
            await self.cluster.change(DEPLOYMENTS, meta.get("namespace", ""), meta["name"], lambda o: o.setdefault(
                "status", {}).__setitem__("collisionCount", collisions + 1), "status")
            return None
        made = await self.cluster.create(REPLICA_SETS, meta.get("namespace", ""), rs)
        if made is not None:
            await self._set_revision(d, revision)
        return made

    def _first_replicas(self, d: Object, old_sets: list[Object]) -> int:
        """How many pods the new set starts with (kube's NewRSNewReplicas for a new set)."""
        spec = d.get("spec") or {}
        replicas = _int(spec.get("replicas"), 1)
        if (spec.get("strategy") or {}).get("type") == "Recreate":
            return replicas if not any(_replicas(rs) for rs in old_sets) else 0
        surge, _ = surge_and_unavailable(d)
        current = sum(_replicas(rs) for rs in old_sets)
        return max(0, min(replicas, replicas + surge - current))

    async def _set_revision(self, d: Object, revision: int) -> None:
        if ((d["metadata"].get("annotations") or {}).get(REVISION)) == str(revision):
            return
        meta = d["metadata"]
        await self.cluster.change(DEPLOYMENTS, meta.get("namespace", ""), meta["name"], lambda o: o["metadata"]
                                  .setdefault("annotations", {}).__setitem__(REVISION, str(revision)))

    async def _sync_new_annotations(self, d: Object, new_rs: Object, old_sets: list[Object]) -> None:
        """A set that becomes new again (rollout undo) takes the next revision; deployment annotations follow."""
        latest = max((revision_of(rs) for rs in old_sets), default=0)
        revision = revision_of(new_rs)
        wanted_revision = revision if revision > latest else latest + 1
        copied = {k: v for k, v in (d["metadata"].get("annotations") or {}).items() if k not in _NOT_COPIED}
        current = new_rs["metadata"].get("annotations") or {}
        min_ready = _int((d.get("spec") or {}).get("minReadySeconds"))
        if (revision != wanted_revision or any(current.get(k) != v for k, v in copied.items())
                or _int((new_rs.get("spec") or {}).get("minReadySeconds")) != min_ready):
            def update(rs: Object) -> None:
                notes = rs["metadata"].setdefault("annotations", {})
                if revision and revision != wanted_revision:
                    history = [h for h in str(notes.get(REVISION_HISTORY, "")).split(",") if h]
                    notes[REVISION_HISTORY] = ",".join([*history, str(revision)])
                notes.update(copied)
                notes[REVISION] = str(wanted_revision)
                rs.setdefault("spec", {})["minReadySeconds"] = min_ready
            await self.cluster.change(REPLICA_SETS, *name_of(new_rs), update)
        await self._set_revision(d, wanted_revision)

    async def _scale(self, d: Object, rs: Object, replicas: int) -> None:
        if _replicas(rs) == replicas and (rs["metadata"].get("annotations") or {}).get(DESIRED) == str(
                _int((d.get("spec") or {}).get("replicas"), 1)):
            return
        desired = _int((d.get("spec") or {}).get("replicas"), 1)
        surge, _ = surge_and_unavailable(d)

        def update(obj: Object) -> None:
            obj.setdefault("spec", {})["replicas"] = replicas
            notes = obj["metadata"].setdefault("annotations", {})
            notes.update({DESIRED: str(desired), MAX_REPLICAS: str(desired + surge)})
        await self.cluster.change(REPLICA_SETS, *name_of(rs), update)

    # -- strategies ----------------------------------------------------------------------------------
    async def _rolling(self, d: Object, new_rs: Object, old_sets: list[Object]) -> None:
        replicas = _int((d.get("spec") or {}).get("replicas"), 1)
        surge, unavailable = surge_and_unavailable(d)
        new_count = _replicas(new_rs)
        if new_count > replicas:
            await self._scale(d, new_rs, replicas)
            return
        if new_count < replicas:
            total = new_count + sum(_replicas(rs) for rs in old_sets)
            room = replicas + surge - total
            if room > 0:
                await self._scale(d, new_rs, new_count + min(room, replicas - new_count))
                return
        old_count = sum(_replicas(rs) for rs in old_sets)
        if not old_count:
            await self._scale(d, new_rs, new_count)  # keeps the desired-replicas annotation current
            return
        all_count = new_count + old_count
        min_available = replicas - unavailable
        new_unavailable = new_count - _status(new_rs, "availableReplicas")
        budget = all_count - min_available - new_unavailable
        if budget <= 0:
            return
        cleaned, counts = 0, {name_of(rs): _replicas(rs) for rs in old_sets}
        for rs in old_sets:  # old pods that are not available go first
            unhealthy = _replicas(rs) - _status(rs, "availableReplicas")
            if cleaned >= budget or unhealthy <= 0:
                continue
            down = min(budget - cleaned, unhealthy)
            counts[name_of(rs)] -= down
            await self._scale(d, rs, counts[name_of(rs)])
            cleaned += down
        available = sum(_status(rs, "availableReplicas") for rs in [new_rs, *old_sets])
        allowed = min(budget - cleaned, available - min_available)
        for rs in old_sets:
            down = min(counts[name_of(rs)], allowed)
            if down > 0:
                await self._scale(d, rs, counts[name_of(rs)] - down)
                allowed -= down

    async def _recreate(self, d: Object, new_rs: Object, old_sets: list[Object]) -> None:
        for rs in old_sets:
            if _replicas(rs):
                await self._scale(d, rs, 0)
        if any(is_active(p) or p["metadata"].get("deletionTimestamp")
               for rs in old_sets for p in self.informer.owned(PODS, rs)):
            return  # Recreate: the new pods wait until every old one is gone
        await self._scale(d, new_rs, _int((d.get("spec") or {}).get("replicas"), 1))

    async def _clean_up(self, d: Object, old_sets: list[Object]) -> None:
        limit = _int((d.get("spec") or {}).get("revisionHistoryLimit"), 10)
        idle = [rs for rs in old_sets if not _replicas(rs) and not _status(rs, "replicas")
                and not rs["metadata"].get("deletionTimestamp")]
        for rs in sorted(idle, key=revision_of)[:max(len(idle) - limit, 0)]:
            await self.cluster.delete(REPLICA_SETS, rs)

    # -- status --------------------------------------------------------------------------------------
    async def _sync_status(self, d: Object, new_rs: Object | None, old_sets: list[Object], progressed: bool,
                           created: bool = False) -> None:
        spec, previous = d.get("spec") or {}, d.get("status") or {}
        replicas = _int(spec.get("replicas"), 1)
        _, unavailable = surge_and_unavailable(d)
        every = [rs for rs in [new_rs, *old_sets] if rs is not None]
        available = sum(_status(rs, "availableReplicas") for rs in every)
        status: Object = {
            "observedGeneration": _int(d["metadata"].get("generation"), 1),
            "replicas": sum(_status(rs, "replicas") for rs in every),
            "updatedReplicas": _status(new_rs, "replicas"),
            "readyReplicas": sum(_status(rs, "readyReplicas") for rs in every),
            "availableReplicas": available,
            "unavailableReplicas": max(replicas - available, 0),
        }
        if previous.get("collisionCount") is not None:
            status["collisionCount"] = previous["collisionCount"]
        now = self.clock.rfc3339()
        old_conditions = {c.get("type"): c for c in previous.get("conditions") or []}

        def cond(kind: str, ok: bool, reason: str, message: str, touch: bool = True) -> Object:
            before = old_conditions.get(kind) or {}
            value = "True" if ok else "False"
            same = before.get("status") == value
            if same and before.get("reason") == reason and not touch:
                return before
            return {"type": kind, "status": value,
                    "lastUpdateTime": now if touch or not same else before.get("lastUpdateTime", now),
                    "lastTransitionTime": before.get("lastTransitionTime", now) if same else now,
                    "reason": reason, "message": message}

        if available >= replicas - unavailable:
            available_cond = cond("Available", True, "MinimumReplicasAvailable", "Deployment has minimum availability.",
                                  touch=False)
        else:
            available_cond = cond("Available", False, "MinimumReplicasUnavailable",
                                  "Deployment does not have minimum availability.", touch=False)
        rs_name = new_rs["metadata"]["name"] if new_rs is not None else ""
        complete = (new_rs is not None and status["updatedReplicas"] == replicas and status["replicas"] == replicas
                    and available == replicas)
        progress = old_conditions.get("Progressing")
        deadline = spec.get("progressDeadlineSeconds")
        if spec.get("paused"):
            progressing = cond("Progressing", True if progress is None else progress.get("status") == "True",
                               "DeploymentPaused", "Deployment is paused", touch=False)
        elif complete:
            progressing = cond("Progressing", True, "NewReplicaSetAvailable",
                               f'ReplicaSet "{rs_name}" has successfully progressed.',
                               touch=(progress or {}).get("reason") != "NewReplicaSetAvailable")
        elif created:
            progressing = cond("Progressing", True, "NewReplicaSetCreated", f'Created new replica set "{rs_name}"')
        elif progressed or progress is None or _moved(previous, status):
            progressing = cond("Progressing", True, "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        else:
            progressing = progress
            since = parse_rfc3339(str(progress.get("lastUpdateTime") or ""))
            if deadline is not None and since is not None and progress.get("reason") != "ProgressDeadlineExceeded":
                expires = since.timestamp() + _int(deadline)
                if self.clock.now() >= expires:
                    progressing = cond("Progressing", False, "ProgressDeadlineExceeded",
                                       f'ReplicaSet "{rs_name}" has timed out progressing.')
                else:
                    self.enqueue_at(expires, name_of(d))
        status["conditions"] = [available_cond, progressing]
        for zero in ("readyReplicas", "availableReplicas", "unavailableReplicas", "updatedReplicas", "replicas"):
            if not status[zero]:
                del status[zero]  # kube omits zero counts
        await self.cluster.set_status(DEPLOYMENTS, d, status)


def _moved(before: Object, after: Object) -> bool:
    """kube's DeploymentProgressing: more updated, ready or available pods, or fewer old ones."""
    def old(s: Object) -> int:
        return _int(s.get("replicas")) - _int(s.get("updatedReplicas"))
    return (_int(after.get("updatedReplicas")) > _int(before.get("updatedReplicas"))
            or old(after) < old(before)
            or _int(after.get("readyReplicas")) > _int(before.get("readyReplicas"))
            or _int(after.get("availableReplicas")) > _int(before.get("availableReplicas")))
