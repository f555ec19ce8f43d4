"""Pods and the workloads that template them: kube's defaults, the checks users hit, immutable fields.

No controller runs here (kube-apiserver alone runs none either): a Pod stays
Pending, a Deployment gets no ReplicaSet. What kube-apiserver itself does for
these kinds is here: defaults, validation, a Pod's initial status, a Job's
generated selector and labels.
"""
from __future__ import annotations

import uuid
from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.registry.builtin_strategy import (
    BuiltinStrategy,
    as_dict,
    as_list,
    child,
    ensure,
    immutable,
    selector_matches_labels,
)
from kapi.registry.pod_spec import default_pod_spec, default_template, validate_pod_spec
from kapi.registry.strategy import Object

# The pod fields an update may change (kube's ValidatePodUpdate message lists them).
_POD_UPDATE_FORBIDDEN = (
    "pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,"
    "`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),"
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)"
)
_NOT_READY_TOLERATIONS = [
    {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
    {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300},
]


def _qos_class(spec: Object) -> str:
    """BestEffort without requests or limits; Guaranteed when every container's limits equal requests."""
    containers = [c for c in as_list(spec.get("containers")) + as_list(spec.get("initContainers")) if isinstance(c, dict)]
    resources = [c.get("resources") or {} for c in containers]
    if not any((r.get("requests") or r.get("limits")) for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        if not all(k in limits for k in ("cpu", "memory")):
            return "Burstable"
        if any(str(requests.get(k, limits[k])) != str(limits[k]) for k in ("cpu", "memory")):
            return "Burstable"
    return "Guaranteed"


class PodStrategy(BuiltinStrategy):
    """Pods: PodSpec defaults plus what kube's admission adds (service account, priority, tolerations)."""

    graceful_deletion = True  # a bound pod waits for its kubelet to stop it

    def graceful_delete_period(self, obj: Object, requested: int | None) -> int | None:
        """kube's pod CheckGracefulDelete: the request's grace, else spec.terminationGracePeriodSeconds;
        0 (gone at once) for a pod no node runs: unscheduled, or already Succeeded/Failed."""
        spec, status = as_dict(obj.get("spec")), as_dict(obj.get("status"))
        period = requested
        if period is None:
            configured = spec.get("terminationGracePeriodSeconds")
            period = configured if isinstance(configured, int) and not isinstance(configured, bool) else 30
        if not spec.get("nodeName") or status.get("phase") in ("Succeeded", "Failed"):
            period = 0
        return 1 if period < 0 else period

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        default_pod_spec(spec)
        spec.setdefault("enableServiceLinks", True)
        for key in ("initContainers", "containers"):  # SetDefaults_Pod: requests default to the limits
            for container in as_list(spec.get(key)):
                resources = container.get("resources") if isinstance(container, dict) else None
                limits = resources.get("limits") if isinstance(resources, dict) else None
                if isinstance(limits, dict) and limits:
                    requests = resources.get("requests")
                    requests = resources["requests"] = requests if isinstance(requests, dict) else {}
                    for name, quantity in limits.items():
                        requests.setdefault(name, quantity)

    def complete(self, obj: Object) -> None:
        """The ServiceAccount, Priority and DefaultTolerationSeconds admission plugins' additions."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("serviceAccount", spec["serviceAccountName"])
        spec.setdefault("priority", 0)
        spec.setdefault("preemptionPolicy", "PreemptLowerPriority")
        tolerations = spec.setdefault("tolerations", [])
        if isinstance(tolerations, list):
            have = [t.get("key") for t in tolerations if isinstance(t, dict)]
            tolerations.extend(dict(t) for t in _NOT_READY_TOLERATIONS if t["key"] not in have)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        spec = as_dict(obj.get("spec"))
        obj["status"] = {"phase": "Pending", "qosClass": _qos_class(spec)}

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        causes = validate_pod_spec(obj.get("spec"), "spec")
        if old is not None and not causes:
            causes += _pod_update_causes(obj.get("spec") or {}, old.get("spec") or {})
        return causes


def _pod_update_causes(new: Object, old: Object) -> list[Cause]:
    """Only images, activeDeadlineSeconds, added tolerations and the grace period may change."""
    def mutable_view(spec: Object) -> Object:
        view = {k: v for k, v in spec.items() if k not in (
            "activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds", "ephemeralContainers")}
        for key in ("containers", "initContainers"):
            view[key] = [{k: v for k, v in c.items() if k != "image"} for c in as_list(spec.get(key))
                         if isinstance(c, dict)]
        return view

    if mutable_view(new) != mutable_view(old):
        return [errors.field_forbidden("spec", _POD_UPDATE_FORBIDDEN)]
    old_tolerations = as_list(old.get("tolerations"))
    if any(t not in as_list(new.get("tolerations")) for t in old_tolerations):
        return [errors.field_forbidden("spec.tolerations", "existing toleration can not be modified except its "
                                       "tolerationSeconds")]
    return []


class WorkloadStrategy(BuiltinStrategy):
    """Deployments, ReplicaSets, StatefulSets, DaemonSets, ReplicationControllers: a template and a selector."""

    restart_policies = ["Always"]
    defaults: dict[str, Any] = {}

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        for key, value in self.defaults.items():
            if key not in spec:
                spec[key] = _fresh(value)
            elif isinstance(value, dict) and isinstance(spec[key], dict):
                for sub, sub_value in value.items():
                    if sub == "type" or spec[key].get("type", value.get("type")) == value.get("type"):
                        current = spec[key].setdefault(sub, _fresh(sub_value))
                        if isinstance(current, dict) and isinstance(sub_value, dict):  # rollingUpdate's own
                            for leaf, leaf_value in sub_value.items():
                                current.setdefault(leaf, leaf_value)
        default_template(spec.get("template"))

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        replicas = spec.get("replicas")
        if isinstance(replicas, int) and replicas < 0:
            causes.append(errors.field_invalid("spec.replicas", replicas, "must be greater than or equal to 0"))
        causes += self._selector_causes(spec)
        template = as_dict(spec.get("template"))
        causes += validate_pod_spec(template.get("spec") or {}, "spec.template.spec", self.restart_policies)
        if old is not None:
            causes += immutable(spec.get("selector"), child(old, "spec", "selector"), "spec.selector")
        return causes

    def _selector_causes(self, spec: Object) -> list[Cause]:
        selector = spec.get("selector")
        if not selector:
            return [errors.field_required("spec.selector")]
        return selector_matches_labels(selector, child(spec, "template", "metadata", "labels") or {},
                                       "spec.template.metadata.labels")


def _fresh(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return list(value) if isinstance(value, list) else value


class DeploymentStrategy(WorkloadStrategy):
    defaults = {"replicas": 1, "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}}


class ReplicaSetStrategy(WorkloadStrategy):
    defaults = {"replicas": 1}


class StatefulSetStrategy(WorkloadStrategy):
    defaults = {"replicas": 1, "podManagementPolicy": "OrderedReady", "revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 0}},
                "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain", "whenScaled": "Retain"}}

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        causes = super().validate_in_code(obj, old)
        if old is not None:
            for field in ("serviceName", "volumeClaimTemplates", "podManagementPolicy"):
                if child(obj, "spec", field) != child(old, "spec", field):
                    causes.append(errors.field_forbidden(
                        "spec", "updates to statefulset spec for fields other than 'replicas', 'ordinals', "
                        "'template', 'updateStrategy', 'revisionHistoryLimit', "
                        "'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden"))
                    break
        return causes


class DaemonSetStrategy(WorkloadStrategy):
    defaults = {"revisionHistoryLimit": 10,
                "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}}


class ReplicationControllerStrategy(WorkloadStrategy):
    """RCs: the selector and labels default to the template's labels (a map, not a LabelSelector)."""

    defaults = {"replicas": 1}

    def default(self, obj: Object) -> None:
        super().default(obj)
        spec = obj.get("spec")
        labels = child(spec, "template", "metadata", "labels")
        if isinstance(spec, dict) and isinstance(labels, dict):
            spec.setdefault("selector", dict(labels))
            meta = ensure(obj, "metadata")
            meta.setdefault("labels", dict(labels))

    def _selector_causes(self, spec: Object) -> list[Cause]:
        selector = spec.get("selector")
        if not selector:
            return [errors.field_required("spec.selector")]
        return selector_matches_labels({"matchLabels": selector}, child(spec, "template", "metadata", "labels") or {},
                                       "spec.template.metadata.labels")


class JobStrategy(WorkloadStrategy):
    """Jobs: a generated selector on the job's uid, pod-failure defaults, and an immutable template."""

    restart_policies = ["OnFailure", "Never"]

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        if "completions" not in spec and "parallelism" not in spec:
            spec["completions"] = 1
        spec.setdefault("parallelism", 1)
        spec.setdefault("backoffLimit", 6)
        spec.setdefault("completionMode", "NonIndexed")
        if not spec.get("selector"):
            spec.setdefault("manualSelector", False)  # the selector will be generated
        spec.setdefault("suspend", False)
        if not spec.get("podFailurePolicy"):
            spec.setdefault("podReplacementPolicy", "TerminatingOrFailed")
        default_template(spec.get("template"))

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        spec = obj.get("spec")
        meta = as_dict(obj.get("metadata"))
        if not isinstance(spec, dict) or spec.get("manualSelector") is True:
            return
        uid = str(meta.get("uid") or uuid.uuid4())
        name = str(meta.get("name") or "")
        generated = {"batch.kubernetes.io/controller-uid": uid}
        if not spec.get("selector"):
            spec["selector"] = {"matchLabels": dict(generated)}
        labels = ensure(spec, "template", "metadata", "labels")
        labels.update({"batch.kubernetes.io/controller-uid": uid, "batch.kubernetes.io/job-name": name,
                       "controller-uid": uid, "job-name": name})
        if not meta.get("labels") and isinstance(obj.get("metadata"), dict):  # a Job without labels takes its pods'
            obj["metadata"]["labels"] = dict(labels)

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        causes = super().validate_in_code(obj, old)
        if old is not None:
            causes += immutable(child(obj, "spec", "template"), child(old, "spec", "template"), "spec.template")
            causes += immutable(child(obj, "spec", "completions"), child(old, "spec", "completions"),
                                "spec.completions")
        return causes

    def _selector_causes(self, spec: Object) -> list[Cause]:
        if not spec.get("selector"):
            return [] if spec.get("manualSelector") is not True else [errors.field_required("spec.selector")]
        return selector_matches_labels(spec["selector"], child(spec, "template", "metadata", "labels") or {},
                                       "spec.template.metadata.labels")


class CronJobStrategy(BuiltinStrategy):
    """CronJobs: kube's history and concurrency defaults, a schedule that parses, a job template that does."""

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        spec.setdefault("successfulJobsHistoryLimit", 3)
        spec.setdefault("failedJobsHistoryLimit", 1)
        default_template(child(spec, "jobTemplate", "spec", "template"))

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        causes: list[Cause] = []
        schedule = spec.get("schedule")
        if not schedule:
            causes.append(errors.field_required("spec.schedule"))
        elif not _valid_schedule(str(schedule)):
            causes.append(errors.field_invalid("spec.schedule", schedule, "unparseable schedule"))
        policy = spec.get("concurrencyPolicy")
        if policy not in (None, "Allow", "Forbid", "Replace"):
            causes.append(errors.field_not_supported("spec.concurrencyPolicy", policy, ["Allow", "Forbid", "Replace"]))
        template = child(spec, "jobTemplate", "spec", "template", "spec")
        causes += validate_pod_spec(template or {}, "spec.jobTemplate.spec.template.spec", ["OnFailure", "Never"])
        return causes


_MACROS = {"@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly"}


def _valid_schedule(schedule: str) -> bool:
    """Five cron fields of digits, ranges, steps, lists, names or `*`/`?`, or a macro / `@every`."""
    text = schedule.strip()
    if text.startswith(("TZ=", "CRON_TZ=")):
        return False  # kube refuses a time zone inside the schedule (use spec.timeZone)
    if text in _MACROS or text.startswith("@every "):
        return True
    fields = text.split()
    allowed = set("0123456789*/,-?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    return len(fields) == 5 and all(f and set(f) <= allowed for f in fields)
