"""What the Job and CronJob controllers share (kube's pkg/controller/job/util and friends): conditions, the
tracking finalizer, completion indexes, pod failure, and status writes that never overwrite a newer version."""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import Kind
from kapi.controllers.simulation.pods import condition, phase
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
TRACKING = "batch.kubernetes.io/job-tracking"
INDEX = "batch.kubernetes.io/job-completion-index"


def time_of(value: Any) -> float | None:
    moment = parse_rfc3339(str(value or ""))
    return moment.timestamp() if moment is not None else None


def is_finished(job: Object) -> Object | None:
    """The job's terminal condition (Complete or Failed, True), if any."""
    for kind in ("Complete", "Failed"):
        cond = condition(job, kind)
        if cond is not None and cond.get("status") == "True":
            return cond
    return None


def uid_of(obj: Object) -> str:
    return str(obj["metadata"].get("uid") or "")


def has_tracking(pod: Object) -> bool:
    return TRACKING in (pod["metadata"].get("finalizers") or [])


def completion_index(pod: Object) -> int | None:
    value = (pod["metadata"].get("annotations") or {}).get(INDEX)
    return int(value) if isinstance(value, str) and value.isdigit() else None


def format_indexes(indexes: set[int]) -> str:
    """kube's orderedIntervals: "0-2,4"; two neighbours stay a list ("5,6")."""
    out, ordered = [], sorted(indexes)
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        first, last = ordered[i], ordered[j]
        out.append(str(first) if first == last else f"{first}{',' if last == first + 1 else '-'}{last}")
        i = j + 1
    return ",".join(out)


def parse_indexes(text: str) -> set[int]:
    found: set[int] = set()
    for part in (text or "").split(","):
        low, _, high = part.partition("-")
        if low.isdigit():
            found.update(range(int(low), int(high if high.isdigit() else low) + 1))
    return found


def finish_time(pod: Object) -> float | None:
    ends = [time_of(((s.get("state") or {}).get("terminated") or {}).get("finishedAt"))
            for s in (pod.get("status") or {}).get("containerStatuses") or []]
    known = [e for e in ends if e is not None]
    return max(known) if known else time_of(pod["metadata"].get("deletionTimestamp"))


def is_pod_failed(pod: Object, job: Object) -> bool:
    """kube's isPodFailed; a pod its kubelet has finished deleting (grace 0) counts as Failed here too."""
    if phase(pod) == "Failed":
        return True
    meta = pod["metadata"]
    if (job.get("spec") or {}).get("podReplacementPolicy") == "Failed":
        return bool(meta.get("deletionTimestamp")) and meta.get("deletionGracePeriodSeconds") == 0 \
            and phase(pod) != "Succeeded"
    return bool(meta.get("deletionTimestamp")) and phase(pod) != "Succeeded"


def new_condition(kind: str, status: str, reason: str, message: str, at: str) -> Object:
    cond: Object = {"type": kind, "status": status, "lastProbeTime": at, "lastTransitionTime": at}
    if reason:
        cond["reason"] = reason
    if message:
        cond["message"] = message
    return cond


def ensure_condition(conditions: list[Object], kind: str, status: str, reason: str, message: str,
                     at: str) -> bool:
    """kube's ensureJobConditionStatus: update a present condition, add a True one; whether it changed."""
    for cond in conditions:
        if cond.get("type") == kind:
            if cond.get("status") == status and cond.get("reason") == reason and cond.get("message") == message:
                return False
            cond.clear()
            cond.update(new_condition(kind, status, reason, message, at))
            return True
    if status == "True":
        conditions.append(new_condition(kind, status, reason, message, at))
        return True
    return False


async def write_status(controller: Controller, kind: Kind, obj: Object, status: Object) -> Object:
    """Write `status` only over the very version `obj` is (a Conflict otherwise); the object written."""
    if obj.get("status") == status:
        return obj
    meta = obj["metadata"]
    version = meta.get("resourceVersion")
    group, plural = kind

    def put(current: Object) -> None:
        if current["metadata"].get("resourceVersion") != version:
            raise errors.conflict(group, plural, meta["name"], "the object has been modified; please apply your "
                                  "changes to the latest version and try again")
        current["status"] = copy_object(status)

    written = await controller.cluster.change(kind, meta.get("namespace", ""), meta["name"], put, "status")
    if written is None:
        raise errors.NotFound(f'{plural}.{group} "{meta["name"]}" not found')
    return written
