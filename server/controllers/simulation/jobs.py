"""kube-controller-manager's Job controller (k8s 1.32) and its TTL-after-finished controller.

Pods carry kube's `batch.kubernetes.io/job-tracking` finalizer, so a pod is
counted exactly once as kube counts it: a finished pod's uid first goes to
status.uncountedTerminatedPods, then its finalizer is removed, then it moves
into status.succeeded / status.failed. Status writes carry the cached
resourceVersion, so a reconcile working from an old view loses the race and
looks again instead of counting twice. As in 1.31+, the terminal condition
waits for every pod to be gone: SuccessCriteriaMet (or FailureTarget) first,
Complete (or Failed) once nothing is terminating. Times are the simulated
clock's: startTime, activeDeadlineSeconds, pod-failure backoff (10 s doubling
to 10 min after each failure since the last success) and
ttlSecondsAfterFinished.
"""
from __future__ import annotations

import time
from typing import Any

from kapi.controllers.simulation.informer import JOBS, PODS, Kind, Name, controller_uid, name_of
from kapi.controllers.simulation.jobutil import (
    INDEX,
    TRACKING,
    completion_index,
    ensure_condition,
    finish_time,
    format_indexes,
    has_tracking,
    is_finished,
    is_pod_failed,
    new_condition,
    parse_indexes,
    time_of,
    uid_of,
    write_status,
)
from kapi.controllers.simulation.pods import condition, is_active, is_ready, phase, pod_from_template
from kapi.controllers.simulation.replicasets import deletion_rank, owner_key
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
BACKOFF_START, BACKOFF_MAX = 10.0, 600.0  # kube's DefaultJobPodFailureBackOff / MaxJobPodFailureBackOff
BURST = 500  # MaxPodCreateDeletePerSync
EXPECTATION_TTL = 30.0  # real seconds an unobserved create/delete holds a job back (kube: 5 min)


class JobController(Controller):
    name = "job-controller"
    workers = 4

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        self._expected: dict[str, tuple[Name, str, float]] = {}  # pod uid -> (job key, create|delete, deadline)

    # -- events ---------------------------------------------------------------------------------------
    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == JOBS:
            self.enqueue(name_of(new or old or {}))
        elif kind == PODS:
            pod = new or old or {}
            uid = str(pod.get("metadata", {}).get("uid") or "")
            expected = self._expected.get(uid)
            if expected and (expected[1] == "create" or new is None or new["metadata"].get("deletionTimestamp")):
                del self._expected[uid]
            for obj in (old, new):
                key = owner_key(self.informer, PODS, obj, JOBS) if obj else None
                if key is not None:
                    self.enqueue(key)
            if new is not None and has_tracking(new) and owner_key(self.informer, PODS, new, JOBS) is None:
                self.enqueue(("orphan", *name_of(new)))

    def start_keys(self) -> list[Any]:
        return [name_of(j) for j in self.informer.list(JOBS)]

    def _expect(self, key: Name, pod: Object | None, what: str) -> None:
        if pod is None:
            return
        seen = self.informer.get(PODS, *name_of(pod))
        if what == "create" and seen is not None and seen["metadata"].get("uid") == pod["metadata"].get("uid"):
            return  # the informer was quicker than us
        if what == "delete" and (seen is None or seen["metadata"].get("deletionTimestamp")):
            return
        self._expected[str(pod["metadata"].get("uid"))] = (key, what, time.monotonic() + EXPECTATION_TTL)

    def _satisfied(self, key: Name) -> bool:
        now = time.monotonic()
        for uid, (job, _, deadline) in list(self._expected.items()):
            if deadline < now:
                del self._expected[uid]
            elif job == key:
                return False
        return True

    # -- reconcile --------------------------------------------------------------------------------------
    async def reconcile(self, key: Any) -> None:
        if key[0] == "orphan":
            await self._orphan(key[1], key[2])
            return
        job = self.informer.get(JOBS, *key)
        if job is None:
            return
        if is_finished(job):
            await self._expire(job)
            return
        pods: list[Object] = list(self.informer.owned(PODS, job))
        if job["metadata"].get("deletionTimestamp"):
            for pod in pods:
                if has_tracking(pod):
                    await self._release(pod)
            return
        await self._sync(key, job, pods)

    async def _orphan(self, namespace: str, name: str) -> None:
        """Free a pod whose Job is gone or finished of the tracking finalizer (kube's orphan queue)."""
        pod = self.informer.get(PODS, namespace, name)
        if pod is None or not has_tracking(pod):
            return
        if controller_uid(pod):
            refs = [r for r in pod["metadata"].get("ownerReferences") or [] if r.get("controller")]
            if refs and refs[0].get("kind") != "Job":
                return
            job = self.informer.get(JOBS, namespace, str(refs[0].get("name") or "")) if refs else None
            if job is not None and job["metadata"].get("uid") == refs[0].get("uid") and not is_finished(job):
                return
        await self._release(pod)

    async def _release(self, pod: Object) -> None:
        def drop(obj: Object) -> None:
            left = [f for f in obj["metadata"].get("finalizers") or [] if f != TRACKING]
            if left:
                obj["metadata"]["finalizers"] = left
            else:
                obj["metadata"].pop("finalizers", None)

        await self.cluster.change(PODS, *name_of(pod), drop)

    async def _expire(self, job: Object) -> None:
        """ttlSecondsAfterFinished: delete the finished Job (and, in the background, its pods) once it passes."""
        ttl = (job.get("spec") or {}).get("ttlSecondsAfterFinished")
        if ttl is None or job["metadata"].get("deletionTimestamp"):
            return
        finished = time_of((is_finished(job) or {}).get("lastTransitionTime")) or self.clock.now()
        expire = finished + int(ttl)
        if self.clock.now() >= expire:
            await self.cluster.delete(JOBS, job, propagation="Background")
        else:
            self.enqueue_at(expire, name_of(job))

    async def _sync(self, key: Name, job: Object, pods: list[Object]) -> None:
        spec, status = job.get("spec") or {}, copy_object(job.get("status") or {})
        now, at = self.clock.now(), self.clock.rfc3339()
        indexed = spec.get("completionMode") == "Indexed"
        completions = spec.get("completions")
        suspended = bool(spec.get("suspend"))
        uncounted = status.get("uncountedTerminatedPods") or {}
        unc_s, unc_f = list(uncounted.get("succeeded") or []), list(uncounted.get("failed") or [])
        active_pods = [p for p in pods if is_active(p)]
        terminating = sum(1 for p in pods if p["metadata"].get("deletionTimestamp")
                          and phase(p) not in ("Succeeded", "Failed"))
        ready = sum(1 for p in active_pods if is_ready(p))
        new_s = [p for p in pods if has_tracking(p) and phase(p) == "Succeeded" and uid_of(p) not in unc_s]
        new_f = [p for p in pods if has_tracking(p) and is_pod_failed(p, job) and uid_of(p) not in unc_f]
        succeeded = int(status.get("succeeded") or 0) + len(new_s) + len(unc_s)
        failed = int(status.get("failed") or 0) + len(new_f) + len(unc_f)
        if not status.get("startTime") and not suspended:
            status["startTime"] = at
        conditions: list[Object] = status.setdefault("conditions", [])
        finished: Object | None = None
        met, target = condition(job, "SuccessCriteriaMet"), condition(job, "FailureTarget")
        if met is not None and met.get("status") == "True":
            finished = met
        elif target is not None and target.get("status") == "True":
            finished = target
        else:
            deadline = spec.get("activeDeadlineSeconds")
            started = time_of(status.get("startTime"))
            if failed > int(spec.get("backoffLimit", 6)) or self._past_backoff_on_failure(job, pods):
                finished = new_condition("FailureTarget", "True", "BackoffLimitExceeded",
                                         "Job has reached the specified backoff limit", at)
            elif deadline is not None and started is not None and not suspended and now - started >= int(deadline):
                finished = new_condition("FailureTarget", "True", "DeadlineExceeded",
                                         "Job was active longer than specified deadline", at)
            elif deadline is not None and started is not None and not suspended:
                self.enqueue_at(started + int(deadline), key)
        prev_indexes = parse_indexes(str(status.get("completedIndexes") or "")) if indexed else set()
        done_indexes = set(prev_indexes)
        if indexed:
            done_indexes |= {i for p in pods if phase(p) == "Succeeded" and has_tracking(p)
                             and (i := completion_index(p)) is not None and i < int(completions or 0)}
            succeeded = len(done_indexes)
        active = len(active_pods)
        if finished is not None:
            for pod in active_pods:
                await self.cluster.delete(PODS, pod)
                self._expect(key, pod, "delete")
            terminating += active
            ready, active = 0, 0
        else:
            manage = self._satisfied(key)
            if manage:
                active, terminating, ready = await self._manage(key, job, active_pods, pods, succeeded,
                                                                done_indexes, terminating, ready)
            if (succeeded > 0 if completions is None else succeeded >= int(completions)) and active == 0:
                finished = new_condition("SuccessCriteriaMet", "True", "CompletionsReached",
                                         "Reached expected number of succeeded pods", at)
            elif manage and suspended:
                ensure_condition(conditions, "Suspended", "True", "JobSuspended", "Job suspended", at)
            elif manage and ensure_condition(conditions, "Suspended", "False", "JobResumed", "Job resumed", at):
                status["startTime"] = at  # activeDeadlineSeconds counts from the resumption
        status["active"], status["ready"], status["terminating"] = active, ready, terminating
        await self._track(job, status, pods, finished, prev_indexes, unc_s, unc_f, terminating)

    @staticmethod
    def _past_backoff_on_failure(job: Object, pods: list[Object]) -> bool:
        spec = job.get("spec") or {}
        if ((spec.get("template") or {}).get("spec") or {}).get("restartPolicy") != "OnFailure":
            return False
        restarts = sum(int(s.get("restartCount") or 0) for p in pods if phase(p) in ("Running", "Pending")
                       for s in [*((p.get("status") or {}).get("initContainerStatuses") or []),
                                 *((p.get("status") or {}).get("containerStatuses") or [])])
        limit = int(spec.get("backoffLimit", 6))
        return restarts > 0 if limit == 0 else restarts >= limit

    def _backoff_remaining(self, pods: list[Object]) -> float:
        """kube's pod-failure backoff: 10 s × 2^(failures since the last success − 1), at most 10 min."""
        ends = sorted((t, phase(p)) for p in pods if phase(p) in ("Succeeded", "Failed")
                      and (t := finish_time(p)) is not None)
        failures, last = 0, 0.0
        for moment, state in ends:
            failures, last = (failures + 1, moment) if state == "Failed" else (0, last)
        if not failures:
            return 0.0
        delay = min(BACKOFF_START * 2 ** (failures - 1), BACKOFF_MAX)
        return max(delay - (self.clock.now() - last), 0.0)

    async def _manage(self, key: Name, job: Object, active_pods: list[Object], pods: list[Object], succeeded: int,
                      done_indexes: set[int], terminating: int, ready: int) -> tuple[int, int, int]:
        """Create or delete pods towards parallelism; (active, terminating, ready) afterwards."""
        spec = job.get("spec") or {}
        active, parallelism = len(active_pods), int(spec.get("parallelism", 1) or 0)
        completions = spec.get("completions")
        indexed = spec.get("completionMode") == "Indexed"
        if spec.get("suspend"):
            for pod in active_pods:
                await self._release(pod)
                await self.cluster.delete(PODS, pod)
                self._expect(key, pod, "delete")
            return 0, terminating + active, ready - sum(1 for p in active_pods if is_ready(p))
        if completions is None:
            want = active if succeeded > 0 else parallelism
        else:
            want = max(min(int(completions) - succeeded, parallelism), 0)
        surplus: list[Object] = []
        if indexed:  # pods of a done, duplicated or out-of-range index go first
            seen: set[int] = set()
            for pod in sorted(active_pods, key=deletion_rank, reverse=True):
                index = completion_index(pod)
                if index is None or index >= int(completions or 0) or index in done_indexes or index in seen:
                    surplus.append(pod)
                elif index is not None:
                    seen.add(index)
        rest = sorted((p for p in active_pods if p not in surplus), key=deletion_rank)
        doomed = (surplus + rest)[:min(max(active - want, len(surplus)), BURST)]
        if doomed:
            for pod in doomed:
                await self._release(pod)
                await self.cluster.delete(PODS, pod)
                self._expect(key, pod, "delete")
            return active - len(doomed), terminating + len(doomed), ready - sum(1 for p in doomed if is_ready(p))
        waiting = terminating if spec.get("podReplacementPolicy") == "Failed" else 0
        missing = min(want - waiting - active, BURST)
        if missing <= 0:
            return active, terminating, ready
        remaining = self._backoff_remaining(pods)
        if remaining > 0:
            self.enqueue_at(self.clock.now() + remaining, key)
            return active, terminating, ready
        indexes: list[int | None] = [None] * missing
        if indexed:
            busy = {i for p in active_pods if (i := completion_index(p)) is not None}
            pending: list[int | None] = [i for i in range(int(completions or 0)) if i not in done_indexes
                                         and i not in busy]
            indexes = pending[:missing]
        for index in indexes:
            created = await self.cluster.create(PODS, key[0], self._pod(job, index))
            self._expect(key, created, "create")
            active += created is not None
        return active, terminating, ready

    @staticmethod
    def _pod(job: Object, index: int | None) -> Object:
        name = job["metadata"]["name"]
        template = (job.get("spec") or {}).get("template") or {}
        if index is None:
            pod = pod_from_template(job, template, generate_name=f"{name}-")
        else:
            pod = pod_from_template(job, template, generate_name=f"{name}-{index}-", labels={INDEX: str(index)},
                                    annotations={INDEX: str(index)})
            pod["spec"].setdefault("hostname", f"{name}-{index}")
        meta = pod["metadata"]
        meta["finalizers"] = [*(meta.get("finalizers") or []), TRACKING]
        return pod

    async def _track(self, job: Object, status: Object, pods: list[Object], finished: Object | None,
                     prev_indexes: set[int], unc_s: list[str], unc_f: list[str], terminating: int) -> None:
        """kube's trackJobStatusAndRemoveFinalizers: record finished pods, free them, count them, finish."""
        spec = job.get("spec") or {}
        indexed, completions = spec.get("completionMode") == "Indexed", int(spec.get("completions") or 0)
        with_finalizer = {str(p["metadata"].get("uid")) for p in pods if has_tracking(p)}
        self._count(status, unc_s, unc_f, with_finalizer)
        freeing, new_indexes = [], set()
        for pod in pods:
            uid = str(pod["metadata"].get("uid"))
            if not has_tracking(pod):
                continue
            failed = is_pod_failed(pod, job)
            if not (finished is not None or phase(pod) == "Succeeded" or failed):
                continue
            freeing.append(pod)
            index = completion_index(pod)
            if phase(pod) == "Succeeded" and uid not in unc_f:
                if indexed and index is not None and index < completions and index not in prev_indexes:
                    new_indexes.add(index)
                elif not indexed and uid not in unc_s:
                    unc_s.append(uid)
            elif failed or (finished is not None and finished["type"] != "SuccessCriteriaMet"):
                if uid not in unc_f and (not indexed or (index is not None and index < completions)):
                    unc_f.append(uid)
        if indexed:
            done = prev_indexes | new_indexes
            status["succeeded"] = len(done)
            status["completedIndexes"] = format_indexes(done)
        conditions = status["conditions"]
        final: Object | None = None
        if finished is not None:
            if not any(c.get("type") == finished["type"] for c in conditions):
                conditions.append(finished)
            final = new_condition("Complete" if finished["type"] == "SuccessCriteriaMet" else "Failed", "True",
                                  str(finished.get("reason") or ""), str(finished.get("message") or ""),
                                  self.clock.rfc3339())
        status["uncountedTerminatedPods"] = {"succeeded": unc_s, "failed": unc_f}
        job = await write_status(self, JOBS, job, self._shaped(status))
        for pod in freeing:
            await self._release(pod)
            with_finalizer.discard(str(pod["metadata"].get("uid")))
        self._count(status, unc_s, unc_f, with_finalizer)
        status["uncountedTerminatedPods"] = {"succeeded": unc_s, "failed": unc_f}
        if final is not None and not unc_s and not unc_f and terminating == 0:
            ensure_condition(conditions, final["type"], "True", str(final.get("reason") or ""),
                             str(final.get("message") or ""), final["lastTransitionTime"])
            if final["type"] == "Complete":
                status["completionTime"] = final["lastTransitionTime"]
        await write_status(self, JOBS, job, self._shaped(status))

    @staticmethod
    def _count(status: Object, unc_s: list[str], unc_f: list[str], with_finalizer: set[str]) -> None:
        """Move uncounted pods whose finalizer is gone into the counters."""
        for uids, counter in ((unc_s, "succeeded"), (unc_f, "failed")):
            counted = [u for u in uids if u not in with_finalizer]
            if counted:
                status[counter] = int(status.get(counter) or 0) + len(counted)
                uids[:] = [u for u in uids if u in with_finalizer]

    @staticmethod
    def _shaped(status: Object) -> Object:
        """kube's JSON: zero counters and empty lists omitted, ready/terminating always present."""
        out = copy_object(status)
        for field in ("active", "succeeded", "failed"):
            if not out.get(field):
                out.pop(field, None)
        for field in ("conditions", "completedIndexes"):
            if not out.get(field):
                out.pop(field, None)
        out["uncountedTerminatedPods"] = {k: v for k, v in (out.get("uncountedTerminatedPods") or {}).items() if v}
        return out
