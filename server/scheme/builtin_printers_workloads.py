"""Table columns of the workload controllers, autoscalers and disruption budgets.

kube's `printDeployment`, `printJob`, `printHorizontalPodAutoscaler`… as data plus cell functions
(see `builtin_printers` for the whole catalogue).
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kapi.scheme.builtin_printers_common import (
    AGE, CONTAINERS_DOC, IMAGES_DOC, Obj, bool_word, col, container_cells, dct, doc, duration_between,
    duration_since, format_labels, format_selector, int_or_string, lst, meta, moment, num, quantity,
    selector_string, since, text,
)
from kapi.scheme.builtin_printers_pods import POD_COLUMNS, POD_TEMPLATE_COLUMNS, at_spec, condition_true
from kapi.scheme.definitions import PrinterColumn

# --- controllers ---


def _template_containers(obj: Obj) -> Any:
    return dct(dct(at_spec(obj, "template")).get("spec")).get("containers")


def _desired(obj: Obj) -> int:
    """`spec.replicas`, which kube defaults to 1."""
    replicas = at_spec(obj, "replicas")
    return num(replicas) if replicas is not None else 1


def _status(obj: Obj, field: str) -> int:
    return num(dct(obj.get("status")).get(field))


def _wide(selector_doc: str, selector: Any = None) -> tuple[PrinterColumn, ...]:
    """CONTAINERS, IMAGES and SELECTOR (`-o wide`) of a controller with a pod template."""
    cells = (
        col("Containers", "string", ".spec.template.spec.containers",
            lambda o, n: container_cells(_template_containers(o))[0], CONTAINERS_DOC, priority=1),
        col("Images", "string", ".spec.template.spec.containers",
            lambda o, n: container_cells(_template_containers(o))[1], IMAGES_DOC, priority=1),
    )
    pick = selector or (lambda o, n: format_selector(at_spec(o, "selector")))
    return cells + (col("Selector", "string", ".spec.selector", pick, selector_doc, priority=1),)


def _counts(spec_doc: str, status_doc: str) -> tuple[PrinterColumn, ...]:
    return (
        col("Desired", "integer", ".spec.replicas", lambda o, n: _desired(o), doc(spec_doc, "replicas")),
        col("Current", "integer", ".status.replicas", lambda o, n: _status(o, "replicas"), doc(status_doc, "replicas")),
        col("Ready", "integer", ".status.readyReplicas", lambda o, n: _status(o, "readyReplicas"),
            doc(status_doc, "readyReplicas")),
    )


REPLICATION_CONTROLLER_COLUMNS = _counts("core.v1.ReplicationControllerSpec", "core.v1.ReplicationControllerStatus") + (
    AGE,
    *_wide(doc("core.v1.ReplicationControllerSpec", "selector"), lambda o, n: format_labels(at_spec(o, "selector"))),
)

REPLICA_SET_COLUMNS = _counts("apps.v1.ReplicaSetSpec", "apps.v1.ReplicaSetStatus") + (
    AGE, *_wide(doc("apps.v1.ReplicaSetSpec", "selector")),
)


def _deployment_selector(obj: Obj, now: datetime) -> str:
    found = selector_string(at_spec(obj, "selector"))
    return "<invalid>" if found is None else found


DEPLOYMENT_COLUMNS = (
    col("Ready", "string", ".status.readyReplicas", lambda o, n: f"{_status(o, 'readyReplicas')}/{_desired(o)}",
        "Number of the pod with ready state"),
    col("Up-to-date", "string", ".status.updatedReplicas", lambda o, n: _status(o, "updatedReplicas"),
        doc("apps.v1.DeploymentStatus", "updatedReplicas")),
    col("Available", "string", ".status.availableReplicas", lambda o, n: _status(o, "availableReplicas"),
        doc("apps.v1.DeploymentStatus", "availableReplicas")),
    AGE,
    *_wide(doc("apps.v1.DeploymentSpec", "selector"), _deployment_selector),
)

STATEFUL_SET_COLUMNS = (
    col("Ready", "string", ".status.readyReplicas", lambda o, n: f"{_status(o, 'readyReplicas')}/{_desired(o)}",
        "Number of the pod with ready state"),
    AGE,
    *_wide("")[:2],
)


def _ds(field: str, title: str) -> PrinterColumn:
    return col(title, "integer", f".status.{field}", lambda o, n: _status(o, field),
               doc("apps.v1.DaemonSetStatus", field))


DAEMON_SET_COLUMNS = (
    _ds("desiredNumberScheduled", "Desired"),
    _ds("currentNumberScheduled", "Current"),
    _ds("numberReady", "Ready"),
    _ds("updatedNumberScheduled", "Up-to-date"),
    _ds("numberAvailable", "Available"),
    col("Node Selector", "string", ".spec.template.spec.nodeSelector",
        lambda o, n: format_labels(dct(dct(at_spec(o, "template")).get("spec")).get("nodeSelector")),
        doc("core.v1.PodSpec", "nodeSelector")),
    AGE,
    *_wide(doc("apps.v1.DaemonSetSpec", "selector")),
)


def _controller(obj: Obj, now: datetime) -> str:
    """kube's `printControllerRevision`: the controlling owner as `kind.group/name`."""
    ref = next((dct(r) for r in lst(meta(obj).get("ownerReferences")) if dct(r).get("controller") is True), None)
    if ref is None:
        return "<none>"
    api_version, kind, name = text(ref.get("apiVersion")), text(ref.get("kind")), text(ref.get("name"))
    group = api_version.split("/", 1)[0] if "/" in api_version else ""
    if not group and not kind:
        return name
    group_kind = f"{kind}.{group}" if group else kind
    return f"{group_kind.lower()}/{name}"


CONTROLLER_REVISION_COLUMNS = (
    col("Controller", "string", ".metadata.ownerReferences", _controller, "Controller of the object"),
    col("Revision", "string", ".revision", lambda o, n: num(o.get("revision")),
        doc("apps.v1.ControllerRevision", "revision")),
    AGE,
)

# --- batch ---


def _job_condition(obj: Obj, kind: str) -> bool:
    return condition_true(dct(obj.get("status")).get("conditions"), kind)


def _job_status(obj: Obj, now: datetime) -> str:
    if _job_condition(obj, "Complete"):
        return "Complete"
    if _job_condition(obj, "Failed"):
        return "Failed"
    if meta(obj).get("deletionTimestamp"):
        return "Terminating"
    if _job_condition(obj, "Suspended"):
        return "Suspended"
    if _job_condition(obj, "FailureTarget"):
        return "FailureTarget"
    return "Running"


def _job_completions(obj: Obj, now: datetime) -> str:
    succeeded = _status(obj, "succeeded")
    completions = at_spec(obj, "completions")
    if completions is not None:
        return f"{succeeded}/{num(completions)}"
    parallelism = num(at_spec(obj, "parallelism"))
    return f"{succeeded}/1 of {parallelism}" if parallelism > 1 else f"{succeeded}/1"


def _job_duration(obj: Obj, now: datetime) -> str:
    status = dct(obj.get("status"))
    start = moment(status.get("startTime"))
    if start is None:
        return ""
    end = moment(status.get("completionTime"))
    return duration_since(start, now) if end is None else duration_between(start, end)


JOB_COLUMNS = (
    col("Status", "string", ".status.conditions", _job_status, "Status of the job."),
    col("Completions", "string", ".status.succeeded", _job_completions, doc("batch.v1.JobStatus", "succeeded")),
    col("Duration", "string", ".status.completionTime", _job_duration, "Time required to complete the job."),
    AGE,
    *_wide(doc("batch.v1.JobSpec", "selector")),
)


def _job_template(obj: Obj) -> Obj:
    return dct(dct(at_spec(obj, "jobTemplate")).get("spec"))


def _last_schedule(obj: Obj, now: datetime) -> str:
    last = dct(obj.get("status")).get("lastScheduleTime")
    return since(last, now) if last is not None else "<none>"


CRON_JOB_COLUMNS = (
    col("Schedule", "string", ".spec.schedule", lambda o, n: text(at_spec(o, "schedule")),
        doc("batch.v1.CronJobSpec", "schedule")),
    col("Timezone", "string", ".spec.timeZone",
        lambda o, n: text(at_spec(o, "timeZone")) if at_spec(o, "timeZone") is not None else "<none>",
        doc("batch.v1.CronJobSpec", "timeZone")),
    # kube defaults `suspend` to false.
    col("Suspend", "boolean", ".spec.suspend", lambda o, n: bool_word(at_spec(o, "suspend") is True),
        doc("batch.v1.CronJobSpec", "suspend")),
    col("Active", "integer", ".status.active", lambda o, n: len(lst(dct(o.get("status")).get("active"))),
        doc("batch.v1.CronJobStatus", "active")),
    col("Last Schedule", "string", ".status.lastScheduleTime", _last_schedule,
        doc("batch.v1.CronJobStatus", "lastScheduleTime")),
    AGE,
    col("Containers", "string", ".spec.jobTemplate.spec.template.spec.containers",
        lambda o, n: container_cells(dct(dct(_job_template(o).get("template")).get("spec")).get("containers"))[0],
        CONTAINERS_DOC, priority=1),
    col("Images", "string", ".spec.jobTemplate.spec.template.spec.containers",
        lambda o, n: container_cells(dct(dct(_job_template(o).get("template")).get("spec")).get("containers"))[1],
        IMAGES_DOC, priority=1),
    col("Selector", "string", ".spec.jobTemplate.spec.selector",
        lambda o, n: format_selector(_job_template(o).get("selector")), doc("batch.v1.JobSpec", "selector"),
        priority=1),
)

# --- autoscaling ---

_DEFAULT_CPU = {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                          "averageUtilization": 80}}}


def _hpa_metrics(obj: Obj) -> tuple[list[Obj], list[Obj]]:
    """Spec and status metrics in autoscaling/v2's shape, as kube's internal object has them."""
    spec, status = dct(obj.get("spec")), dct(obj.get("status"))
    v1 = obj.get("apiVersion") == "autoscaling/v1" or (
        "metrics" not in spec and ("targetCPUUtilizationPercentage" in spec
                                   or "currentCPUUtilizationPercentage" in status))
    if not v1:
        # kube's autoscaling/v2 defaulting: no metrics means 80% average CPU utilization.
        return [dct(m) for m in lst(spec.get("metrics"))] or [_DEFAULT_CPU], \
            [dct(m) for m in lst(status.get("currentMetrics"))]
    target = spec.get("targetCPUUtilizationPercentage")
    specs = [{"type": "Resource", "resource": {"name": "cpu", "target": {
        "type": "Utilization", "averageUtilization": num(target) if target is not None else 80}}}]
    current = status.get("currentCPUUtilizationPercentage")
    statuses = [] if current is None else [{"type": "Resource", "resource": {
        "name": "cpu", "current": {"averageUtilization": num(current)}}}]
    return specs, statuses


def _qty(value: Any) -> str:
    """A `*Quantity`'s String(): `<nil>` when unset."""
    return "<nil>" if value is None else quantity(value)


def _value_metric(spec: Obj, status: Obj | None) -> str:
    """An Object or External metric: `current/target`, `(avg)` when the target is an average."""
    target = dct(spec.get("target"))
    current = dct(dct(status).get("current")) if status is not None else None
    if target.get("averageValue") is not None:
        shown = "<unknown>"
        if current is not None and current.get("averageValue") is not None:
            shown = quantity(current["averageValue"])
        return f"{shown}/{quantity(target['averageValue'])} (avg)"
    shown = _qty(current.get("value")) if current is not None else "<unknown>"
    return f"{shown}/{_qty(target.get('value'))}"


def _resource_metric(spec: Obj, status: Obj | None) -> str:
    """A Resource or ContainerResource metric: `cpu: 50%/80%` or `memory: 100Mi/200Mi`."""
    name, target = text(spec.get("name")), dct(spec.get("target"))
    current = dct(dct(status).get("current")) if status is not None else None
    if target.get("averageValue") is not None:
        shown = _qty(current.get("averageValue")) if current is not None else "<unknown>"
        return f"{name}: {shown}/{quantity(target['averageValue'])}"
    shown = "<unknown>"
    if current is not None and current.get("averageUtilization") is not None:
        shown = f"{num(current['averageUtilization'])}%"
    wanted = target.get("averageUtilization")
    return f"{name}: {shown}/{num(wanted)}%" if wanted is not None else f"{name}: {shown}/<auto>"


_METRIC_FIELDS = {"External": "external", "Pods": "pods", "Object": "object", "Resource": "resource",
                  "ContainerResource": "containerResource"}


def _hpa_targets(obj: Obj, now: datetime) -> str:
    """kube's `formatHPAMetrics`: up to two metrics, statuses matched by position."""
    specs, statuses = _hpa_metrics(obj)
    shown: list[str] = []
    for index, spec in enumerate(specs):
        kind = spec.get("type")
        field = _METRIC_FIELDS.get(text(kind))
        if field is None:
            shown.append("<unknown type>")
            continue
        source = dct(spec.get(field))
        status = statuses[index].get(field) if index < len(statuses) else None
        status = dct(status) if status is not None else None
        if kind in ("Resource", "ContainerResource"):
            shown.append(_resource_metric(source, status))
        elif kind == "Pods":
            current = _qty(dct(status.get("current")).get("averageValue")) if status is not None else "<unknown>"
            shown.append(f"{current}/{_qty(dct(source.get('target')).get('averageValue'))}")
        else:
            shown.append(_value_metric(source, status))
    if len(shown) > 2:
        return f"{', '.join(shown[:2])} + {len(shown) - 2} more..."
    return ", ".join(shown)


def _reference(obj: Obj, now: datetime) -> str:
    ref = dct(at_spec(obj, "scaleTargetRef"))
    return f"{text(ref.get('kind'))}/{text(ref.get('name'))}"


_HPA_SPEC = "autoscaling.v2.HorizontalPodAutoscalerSpec"
HPA_COLUMNS = (
    col("Reference", "string", ".spec.scaleTargetRef", _reference, doc(_HPA_SPEC, "scaleTargetRef")),
    col("Targets", "string", ".spec.metrics", _hpa_targets, doc(_HPA_SPEC, "metrics")),
    # kube defaults minReplicas to 1.
    col("MinPods", "string", ".spec.minReplicas",
        lambda o, n: str(num(at_spec(o, "minReplicas")) if at_spec(o, "minReplicas") is not None else 1),
        doc(_HPA_SPEC, "minReplicas")),
    col("MaxPods", "string", ".spec.maxReplicas", lambda o, n: num(at_spec(o, "maxReplicas")),
        doc(_HPA_SPEC, "maxReplicas")),
    col("Replicas", "string", ".status.currentReplicas", lambda o, n: _status(o, "currentReplicas"),
        doc("autoscaling.v2.HorizontalPodAutoscalerStatus", "currentReplicas")),
    AGE,
)

# --- policy ---


def _budget(field: str) -> Any:
    def cell(obj: Obj, now: datetime) -> str:
        value = at_spec(obj, field)
        return int_or_string(value) if value is not None else "N/A"
    return cell


PDB_COLUMNS = (
    col("Min Available", "string", ".spec.minAvailable", _budget("minAvailable"),
        "The minimum number of pods that must be available."),
    col("Max Unavailable", "string", ".spec.maxUnavailable", _budget("maxUnavailable"),
        "The maximum number of pods that may be unavailable."),
    col("Allowed Disruptions", "integer", ".status.disruptionsAllowed",
        lambda o, n: _status(o, "disruptionsAllowed"), "Calculated number of pods that may be disrupted at this time."),
    AGE,
)

WORKLOAD_PRINTER_COLUMNS: dict[tuple[str, str], tuple[PrinterColumn, ...]] = {
    ("", "pods"): POD_COLUMNS,
    ("", "podtemplates"): POD_TEMPLATE_COLUMNS,
    ("", "replicationcontrollers"): REPLICATION_CONTROLLER_COLUMNS,
    ("apps", "deployments"): DEPLOYMENT_COLUMNS,
    ("apps", "replicasets"): REPLICA_SET_COLUMNS,
    ("apps", "statefulsets"): STATEFUL_SET_COLUMNS,
    ("apps", "daemonsets"): DAEMON_SET_COLUMNS,
    ("apps", "controllerrevisions"): CONTROLLER_REVISION_COLUMNS,
    ("batch", "jobs"): JOB_COLUMNS,
    ("batch", "cronjobs"): CRON_JOB_COLUMNS,
    ("autoscaling", "horizontalpodautoscalers"): HPA_COLUMNS,
    ("policy", "poddisruptionbudgets"): PDB_COLUMNS,
}
