"""kube-controller-manager's CronJob controller (v2): Jobs on a cron schedule, on the simulated clock.

After each reconcile the CronJob is queued again for its next fire time, so
advancing a manual clock past it starts the Job. As kube: only the most
recent missed run starts (within startingDeadlineSeconds, when set); Jobs are
named `<cronjob>-<scheduled minutes since the epoch>` and annotated with
`batch.kubernetes.io/cronjob-scheduled-timestamp`; concurrencyPolicy Forbid
skips a run while one is active and Replace deletes the active ones first;
status.active lists running Jobs, lastScheduleTime / lastSuccessfulTime
follow them, and finished Jobs beyond the history limits are deleted
(Background propagation). A schedule or time zone that does not parse is
skipped. kube measures a new CronJob's first run from its creationTimestamp,
a wall-clock time; here it counts from when the controller first saw it on
the simulated clock, so a clock that runs fast or stands still agrees.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.cron import CronError, Schedule, from_epoch, parse
from kapi.controllers.simulation.informer import CRON_JOBS, JOBS, Kind, Name, name_of
from kapi.controllers.simulation.jobutil import is_finished, write_status
from kapi.controllers.simulation.pods import owner_reference
from kapi.controllers.simulation.replicasets import owner_key
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _time(value: Any) -> float | None:
    moment = parse_rfc3339(str(value or ""))
    return moment.timestamp() if moment is not None else None


def job_reference(job: Object) -> Object:
    meta = job["metadata"]
    return {"apiVersion": "batch/v1", "kind": "Job", "name": meta["name"], "namespace": meta.get("namespace", ""),
            "resourceVersion": meta.get("resourceVersion", ""), "uid": meta.get("uid", "")}


class CronJobController(Controller):
    name = "cronjob-controller"
    workers = 2

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        self._first_seen: dict[str, float] = {}  # cronjob uid -> simulated time it was first seen

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == CRON_JOBS:
            if new is not None:
                self._first_seen.setdefault(str(new["metadata"].get("uid")), self.clock.now())
            else:
                self._first_seen.pop(str((old or {}).get("metadata", {}).get("uid")), None)
            self.enqueue(name_of(new or old or {}))
        elif kind == JOBS:
            for obj in (old, new):
                key = owner_key(self.informer, JOBS, obj, CRON_JOBS) if obj else None
                if key is not None:
                    self.enqueue(key)

    def start_keys(self) -> list[Any]:
        return [name_of(c) for c in self.informer.list(CRON_JOBS)]

    async def reconcile(self, key: Name) -> None:
        cronjob = self.informer.get(CRON_JOBS, *key)
        if cronjob is None:
            return
        spec, status = cronjob.get("spec") or {}, copy_object(cronjob.get("status") or {})
        jobs = self.informer.owned(JOBS, cronjob)
        self._follow_jobs(status, jobs)
        if not cronjob["metadata"].get("deletionTimestamp"):
            try:
                schedule: Schedule | None = parse(str(spec.get("schedule") or ""), spec.get("timeZone"))
            except CronError:
                schedule = None  # kube records an event and waits for the spec to change
            if schedule is not None and not spec.get("suspend"):
                await self._schedule(key, cronjob, spec, status, schedule)
        await self._cleanup(spec, jobs)
        await write_status(self, CRON_JOBS, cronjob, self._shaped(status))

    def _follow_jobs(self, status: Object, jobs: list[Object]) -> None:
        """Drop finished or vanished Jobs from status.active; note the latest success."""
        by_uid = {str(j["metadata"].get("uid")): j for j in jobs}
        status["active"] = [ref for ref in status.get("active") or []
                            if (job := by_uid.get(str(ref.get("uid")))) is not None and not is_finished(job)]
        for job in jobs:
            finished = is_finished(job)
            done = _time((job.get("status") or {}).get("completionTime"))
            if finished is not None and finished.get("type") == "Complete" and done is not None:
                last = _time(status.get("lastSuccessfulTime"))
                if last is None or done > last:
                    status["lastSuccessfulTime"] = job["status"]["completionTime"]

    async def _schedule(self, key: Name, cronjob: Object, spec: Object, status: Object,
                        schedule: Schedule) -> None:
        """Start the most recent missed run if it is due and allowed; queue the next fire time."""
        now = self.clock.now()
        moment = from_epoch(now)
        upcoming = schedule.next_after(moment)
        if upcoming is not None:
            self.enqueue_at(upcoming.timestamp(), key)
        deadline = spec.get("startingDeadlineSeconds")
        earliest = _time(status.get("lastScheduleTime"))
        if earliest is None:
            earliest = self._first_seen.setdefault(str(cronjob["metadata"].get("uid")), now)
        if deadline is not None:
            earliest = max(earliest, now - int(deadline))
        scheduled = schedule.most_recent_missed(from_epoch(earliest), moment)
        if scheduled is None:
            return
        if deadline is not None and scheduled.timestamp() + int(deadline) < now:
            return  # too late: kube's MissSchedule
        name = f"{key[1]}-{int(scheduled.timestamp() // 60)}"
        existing = self.informer.get(JOBS, key[0], name)
        if existing is not None or any(ref.get("name") == name for ref in status["active"]):
            if existing is not None and owner_key(self.informer, JOBS, existing, CRON_JOBS) == key:
                self._started(status, existing, scheduled.timestamp())  # a status write lost a race
            return  # this run already started
        policy = spec.get("concurrencyPolicy") or "Allow"
        if policy == "Forbid" and status["active"]:
            return
        if policy == "Replace":
            for ref in status["active"]:
                job = self.informer.get(JOBS, key[0], str(ref.get("name")))
                if job is not None and job["metadata"].get("uid") == ref.get("uid"):
                    await self.cluster.delete(JOBS, job, propagation="Background")
            status["active"] = []
        created = await self.cluster.create(JOBS, key[0], self._job(cronjob, name, scheduled, schedule))
        if created is not None:
            self._started(status, created, scheduled.timestamp())

    def _started(self, status: Object, job: Object, scheduled: float) -> None:
        if not is_finished(job) and not any(r.get("uid") == job["metadata"].get("uid") for r in status["active"]):
            status["active"].append(job_reference(job))
        last = _time(status.get("lastScheduleTime"))
        if last is None or scheduled > last:
            status["lastScheduleTime"] = self.clock.rfc3339(scheduled)

    @staticmethod
    def _job(cronjob: Object, name: str, scheduled: Any, schedule: Schedule) -> Object:
        template = copy_object((cronjob.get("spec") or {}).get("jobTemplate") or {})
        tmeta = template.get("metadata") or {}
        stamp = scheduled.astimezone(schedule.zone).replace(microsecond=0)
        text = stamp.strftime("%Y-%m-%dT%H:%M:%SZ") if stamp.utcoffset() == timedelta(0) else stamp.isoformat()
        meta: Object = {"name": name, "namespace": cronjob["metadata"].get("namespace", ""),
                        "annotations": {**(tmeta.get("annotations") or {}), SCHEDULED: text},
                        "ownerReferences": [owner_reference(cronjob)]}
        if tmeta.get("labels"):
            meta["labels"] = dict(tmeta["labels"])
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": template.get("spec") or {}}

    async def _cleanup(self, spec: Object, jobs: list[Object]) -> None:
        """Delete the oldest finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit."""
        for kind, field in (("Complete", "successfulJobsHistoryLimit"), ("Failed", "failedJobsHistoryLimit")):
            limit = spec.get(field)
            if limit is None:
                continue
            done = [j for j in jobs if (c := is_finished(j)) is not None and c.get("type") == kind
                    and not j["metadata"].get("deletionTimestamp")]
            done.sort(key=lambda j: (_time((j.get("status") or {}).get("startTime"))
                                     or _time(j["metadata"].get("creationTimestamp")) or 0.0, j["metadata"]["name"]))
            for job in done[:max(len(done) - int(limit), 0)]:
                await self.cluster.delete(JOBS, job, propagation="Background")

    @staticmethod
    def _shaped(status: Object) -> Object:
        return {k: v for k, v in status.items() if v not in (None, [], "")}
