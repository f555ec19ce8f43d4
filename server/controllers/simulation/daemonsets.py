"""kube-controller-manager's DaemonSet controller: one pod on every eligible node, rolled as kube rolls them.

A node is eligible when the pod (with the tolerations kube gives every daemon
pod) tolerates its NoSchedule/NoExecute taints and matches the template's
nodeSelector and required node affinity; a pod may stay on a node whose new
taint is only NoSchedule. Each pod is made for one node (generateName
`<ds>-`, a required node affinity on `metadata.name`, for the scheduler to
bind), labelled `controller-revision-hash` and `pod-template-generation`.
RollingUpdate replaces old pods up to maxUnavailable at a time (new ones come
once the old are gone), or with maxSurge starts the new pod first; OnDelete
waits for deletions. As kube's controller does, it acts only once the cache
has seen its previous creates and deletes (expectations), so a lagging cache
never doubles a pod.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from kapi.controllers.simulation.daemonpods import (
    GENERATION_LABEL,
    daemon_pod_spec,
    is_updated,
    node_affinity,
    oldest_first,
    scaled,
    should_run,
    target_node,
    template_generation,
    updated_and_old,
)
from kapi.controllers.simulation.informer import (
    CONTROLLER_REVISIONS,
    DAEMON_SETS,
    NODES,
    PODS,
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
    number,
    owned_revisions,
    renumber,
    revision_hash,
    revision_name,
    template_patch,
    truncate,
)
from kapi.controllers.simulation.runtime import Controller

Object = dict[str, Any]
EXPECTATION_TTL = 10.0  # real seconds before unseen creates/deletes are forgotten (kube: 5 minutes)


class DaemonSetController(Controller):
    name = "daemonset-controller"
    workers = 2

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        self._creates: dict[Name, dict[str, float]] = {}  # ds -> names of pods created, not yet seen
        self._deletes: dict[Name, dict[str, float]] = {}  # ds -> uids of pods deleted, not yet seen going

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == DAEMON_SETS:
            self.enqueue(name_of(new or old or {}))
        elif kind == NODES:
            for ds in self.informer.list(DAEMON_SETS):
                self.enqueue(name_of(ds))
        elif kind in (PODS, CONTROLLER_REVISIONS):
            for obj in (old, new):
                key = owner_key(self.informer, kind, obj, DAEMON_SETS) if obj else None
                if key is not None and obj is not None:
                    self.enqueue(key)
                    if kind == PODS:
                        self._observe(key, obj, new)

    def _observe(self, key: Name, obj: Object, new: Object | None) -> None:
        """Tick off expectations: a created pod seen, a deleted pod seen terminating or gone."""
        meta = obj["metadata"]
        self._creates.get(key, {}).pop(meta["name"], None)
        if new is None or is_terminating(new):
            self._deletes.get(key, {}).pop(str(meta.get("uid")), None)

    def _satisfied(self, key: Name) -> bool:
        now = time.monotonic()
        for pending in (self._creates.get(key, {}), self._deletes.get(key, {})):
            for item in [i for i, deadline in pending.items() if deadline < now]:
                del pending[item]
            if pending:
                return False
        return True

    def start_keys(self) -> list[Any]:
        return [name_of(d) for d in self.informer.list(DAEMON_SETS)]

    async def reconcile(self, key: Name) -> None:
        ds = self.informer.get(DAEMON_SETS, *key)
        if ds is None:
            self._creates.pop(key, None)
            self._deletes.pop(key, None)
            return
        if is_terminating(ds):
            return
        found = await self._history(ds)
        if found is None:
            return
        current, old, collisions = found
        hash_ = str((current["metadata"].get("labels") or {}).get(HASH_LABEL) or "")
        nodes = sorted(self.informer.list(NODES), key=lambda n: name_of(n)[1])
        satisfied = self._satisfied(key)
        if satisfied:
            await self._manage(ds, nodes, hash_)
            strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
            if strategy.get("type", "RollingUpdate") == "RollingUpdate" and self._satisfied(key):
                await self._rolling_update(ds, nodes, hash_)
            live = {str((p["metadata"].get("labels") or {}).get(HASH_LABEL) or "")
                    for p in self.informer.owned(PODS, ds)}
            await truncate(self.cluster, old, {r["metadata"]["name"] for r in old if (
                r["metadata"].get("labels") or {}).get(HASH_LABEL) in live},
                int((ds.get("spec") or {}).get("revisionHistoryLimit", 10)), live_counts=True)
        else:  # the cache will tell us; should it never, look again once the expectations expire
            asyncio.get_running_loop().call_later(EXPECTATION_TTL, self.enqueue, key)
        await self.cluster.set_status(DAEMON_SETS, ds, self.status(ds, nodes, hash_, satisfied, collisions))

    # -- revisions -------------------------------------------------------------------------------------------
    async def _history(self, ds: Object) -> tuple[Object, list[Object], int | None] | None:
        """(current revision, old ones, collision count): kube's constructHistory."""
        data = template_patch((ds.get("spec") or {}).get("template") or {})
        revisions = owned_revisions(self.informer, ds)
        current = [r for r in revisions if r.get("data") == data]
        old = [r for r in revisions if r.get("data") != data]
        next_revision = max((number(r) for r in old), default=0) + 1
        collisions = (ds.get("status") or {}).get("collisionCount")
        if not current:
            found = await self._snapshot(ds, data, next_revision, collisions)
            if found is None:
                return None
            return found[0], old, found[1]
        keep = current[-1]
        for duplicate in current[:-1]:
            await self.cluster.delete(CONTROLLER_REVISIONS, duplicate)
        if number(keep) < next_revision:
            keep = await renumber(self.cluster, keep, next_revision) or keep
        return keep, old, collisions

    async def _snapshot(self, ds: Object, data: Object, revision: int,
                        collisions: int | None) -> tuple[Object, int | None] | None:
        namespace = ds["metadata"].get("namespace", "")
        while True:
            hash_ = revision_hash(data, collisions)
            existing = self.informer.get(CONTROLLER_REVISIONS, namespace, revision_name(ds["metadata"]["name"], hash_))
            if existing is not None and existing.get("data") != data:
                collisions = (collisions or 0) + 1
                continue
            created = existing or await self.cluster.create(CONTROLLER_REVISIONS, namespace,
                                                            new_revision(ds, data, revision, hash_))
            return None if created is None else (created, collisions)

    # -- pods ---------------------------------------------------------------------------------------------------
    def _node_pods(self, ds: Object) -> dict[str, list[Object]]:
        """The daemon's pods by the node they are for, finished pods already being deleted left out."""
        out: dict[str, list[Object]] = {}
        for pod in self.informer.owned(PODS, ds):
            if phase(pod) in TERMINAL_PHASES and is_terminating(pod):
                continue
            out.setdefault(target_node(pod), []).append(pod)
        for pods in out.values():
            pods.sort(key=oldest_first)
        return out

    def _surge(self, ds: Object) -> Any:
        strategy = (ds.get("spec") or {}).get("updateStrategy") or {}
        if strategy.get("type", "RollingUpdate") != "RollingUpdate":
            return 0
        return (strategy.get("rollingUpdate") or {}).get("maxSurge") or 0

    async def _manage(self, ds: Object, nodes: list[Object], hash_: str) -> None:
        """Pods where they should run, none where they should not (kube's manage / podsShouldBeOnNode)."""
        node_pods, now = self._node_pods(ds), self.clock.now()
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        surge = bool(self._surge(ds))
        create: list[str] = []
        delete: list[Object] = []
        for node in nodes:
            node_name = name_of(node)[1]
            run, keep = should_run(node, ds)
            pods = node_pods.get(node_name, [])
            if run and not pods:
                create.append(node_name)
            elif keep:
                running: list[Object] = []
                for pod in pods:
                    if is_terminating(pod):
                        continue
                    (delete if phase(pod) in TERMINAL_PHASES else running).append(pod)
                if not surge:
                    delete += running[1:]  # only the oldest stays
                    continue
                newest = [p for p in running if (p["metadata"].get("labels") or {}).get(HASH_LABEL) == hash_]
                oldest = [p for p in running if (p["metadata"].get("labels") or {}).get(HASH_LABEL) != hash_]
                delete += newest[1:] + oldest[1:]
                if newest and oldest:
                    if not is_ready(oldest[0]) or is_available(newest[0], min_ready, now):
                        delete.append(oldest[0])
            else:
                delete += [p for p in pods if not is_terminating(p)]
        known = {name_of(n)[1] for n in nodes}
        for node_name, pods in node_pods.items():
            if node_name not in known:  # a pod for a node that is gone and never bound (getUnscheduledPodsWithoutNode)
                delete += [p for p in pods if not (p.get("spec") or {}).get("nodeName") and not is_terminating(p)]
        await self._sync_nodes(ds, delete, create, hash_)

    async def _rolling_update(self, ds: Object, nodes: list[Object], hash_: str) -> None:
        """Replace old pods within maxUnavailable / maxSurge (kube's rollingUpdate)."""
        node_pods, now, generation = self._node_pods(ds), self.clock.now(), template_generation(ds)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        wanted = [name_of(n)[1] for n in nodes if should_run(n, ds)[0]]
        for node_name in wanted:
            node_pods.setdefault(node_name, [])
        rolling = ((ds.get("spec") or {}).get("updateStrategy") or {}).get("rollingUpdate") or {}
        max_surge = scaled(self._surge(ds), len(wanted))
        max_unavailable = scaled(rolling.get("maxUnavailable", 1), len(wanted))
        if wanted and not max_surge and not max_unavailable:
            max_unavailable = 1

        def available(pod: Object) -> bool:
            return is_available(pod, min_ready, now)

        delete: list[Object] = []
        create: list[str] = []
        if not max_surge:
            unavailable, candidates = 0, []  # type: tuple[int, list[Object]]
            for node_name in sorted(node_pods):
                new, old, single = updated_and_old(node_pods[node_name], hash_, generation)
                if not single or (new is None) == (old is None) or new is not None and not available(new):
                    unavailable += 1
                elif old is not None and not available(old):
                    delete.append(old)  # not available anyway: replacing it costs nothing
                elif old is not None and unavailable < max_unavailable:
                    candidates.append(old)
            delete += candidates[:max(min(max_unavailable - unavailable, len(candidates)), 0)]
        else:
            surged, surge_nodes = 0, []
            for node_name in sorted(node_pods):
                new, old, single = updated_and_old(node_pods[node_name], hash_, generation)
                if not single:
                    surged += 1
                elif old is not None and new is None:
                    if not available(old):
                        create.append(node_name)
                    elif surged < max_surge:
                        surge_nodes.append(node_name)
                elif old is not None and new is not None:
                    if available(new):
                        delete.append(old)
                    else:
                        surged += 1
            create += surge_nodes[:max(min(max_surge - surged, len(surge_nodes)), 0)]
        await self._sync_nodes(ds, delete, create, hash_)

    async def _sync_nodes(self, ds: Object, delete: list[Object], create: list[str], hash_: str) -> None:
        """Create a pod for each node in `create`, delete `delete`, remembering both until the cache sees them."""
        key, namespace = name_of(ds), ds["metadata"].get("namespace", "")
        deadline = time.monotonic() + EXPECTATION_TTL
        for pod in delete:
            uid = str(pod["metadata"].get("uid"))
            self._deletes.setdefault(key, {})[uid] = deadline
            await self.cluster.delete(PODS, pod)
            current = self.informer.get(PODS, *name_of(pod))
            if current is None or current["metadata"].get("uid") != uid or is_terminating(current):
                self._deletes.get(key, {}).pop(uid, None)
        template = (ds.get("spec") or {}).get("template") or {}
        generation = template_generation(ds) or str(ds["metadata"].get("generation") or 1)
        for node_name in create:
            pod = pod_from_template(ds, template, generate_name=f"{ds['metadata']['name']}-",
                                    labels={GENERATION_LABEL: generation, HASH_LABEL: hash_})
            pod["spec"] = daemon_pod_spec(pod["spec"])
            pod["spec"]["affinity"] = node_affinity(pod["spec"].get("affinity"), node_name)
            created = await self.cluster.create(PODS, namespace, pod)
            if created is not None and self.informer.get(PODS, *name_of(created)) is None:
                self._creates.setdefault(key, {})[created["metadata"]["name"]] = deadline

    # -- status -------------------------------------------------------------------------------------------------
    def status(self, ds: Object, nodes: list[Object], hash_: str, observed: bool, collisions: int | None) -> Object:
        """kube's DaemonSetStatus (updateDaemonSetStatus), zero counts omitted where kube's JSON omits them."""
        node_pods, now, generation = self._node_pods(ds), self.clock.now(), template_generation(ds)
        min_ready = int((ds.get("spec") or {}).get("minReadySeconds") or 0)
        desired = current = misscheduled = ready = available = updated = 0
        for node in nodes:
            pods = node_pods.get(name_of(node)[1], [])
            if not should_run(node, ds)[0]:
                misscheduled += 1 if pods else 0
                continue
            desired += 1
            if not pods:
                continue
            current += 1
            pod = pods[0]
            if is_ready(pod):
                ready += 1
                if is_available(pod, min_ready, now):
                    available += 1
                elif (since := ready_since(pod)) is not None:
                    self.enqueue_at(since + min_ready, name_of(ds))
            updated += 1 if is_updated(pod, hash_, generation) else 0
        old = ds.get("status") or {}
        status: Object = {"currentNumberScheduled": current, "numberMisscheduled": misscheduled,
                          "desiredNumberScheduled": desired, "numberReady": ready}
        optional = {"observedGeneration": int(ds["metadata"].get("generation") or 1) if observed else
                    old.get("observedGeneration"), "updatedNumberScheduled": updated,
                    "numberAvailable": available, "numberUnavailable": desired - available,
                    "collisionCount": collisions, "conditions": old.get("conditions")}
        status.update({k: v for k, v in optional.items() if v or (k == "collisionCount" and v is not None)})
        return status
