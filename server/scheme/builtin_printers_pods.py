"""Table columns of pods and pod templates: kube's `printPod` and `printPodTemplate`."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from kapi.scheme.builtin_printers_common import (
    AGE, CONTAINERS_DOC, IMAGES_DOC, NAME, Obj, col, container_cells, dct, doc, duration_since, format_labels, lst,
    meta, moment, num, text,
)

# --- pods ---


def _later(current: datetime | None, candidate: datetime | None) -> datetime | None:
    if candidate is not None and (current is None or current < candidate):
        return candidate
    return current


def _finished(status: Obj) -> datetime | None:
    return moment(dct(dct(status.get("lastState")).get("terminated")).get("finishedAt"))


def condition_true(conditions: Any, kind: str) -> bool:
    """The first condition of `kind` is True (kube's `isPodInitializedConditionTrue`)."""
    for cond in lst(conditions):
        if dct(cond).get("type") == kind:
            return dct(cond).get("status") == "True"
    return False


def _exit_reason(term: Obj, prefix: str) -> str:
    signal = num(term.get("signal"))
    return f"{prefix}Signal:{signal}" if signal else f"{prefix}ExitCode:{num(term.get('exitCode'))}"


def pod_summary(pod: Obj, now: datetime) -> tuple[str, str, str]:
    """kube's `printPod`: the READY, STATUS and RESTARTS cells."""
    spec, status = dct(pod.get("spec")), dct(pod.get("status"))
    init_specs = [dct(c) for c in lst(spec.get("initContainers"))]
    sidecars = {text(c.get("name")) for c in init_specs if c.get("restartPolicy") == "Always"}
    total = len(lst(spec.get("containers"))) + sum(1 for c in init_specs if c.get("restartPolicy") == "Always")
    # kube's create strategy always sets a phase; an object without one reads as just created.
    phase = text(status.get("phase")) or "Pending"
    reason = text(status.get("reason")) or phase
    for cond in lst(status.get("conditions")):
        if dct(cond).get("type") == "PodScheduled" and dct(cond).get("reason") == "SchedulingGated":
            reason = "SchedulingGated"

    restarts = sidecar_restarts = ready = 0
    last: datetime | None = None
    sidecar_last: datetime | None = None
    initializing = False
    for index, item in enumerate(lst(status.get("initContainerStatuses"))):
        cs = dct(item)
        state = dct(cs.get("state"))
        terminated, waiting = state.get("terminated"), state.get("waiting")
        restarts += num(cs.get("restartCount"))
        last = _later(last, _finished(cs))
        sidecar = text(cs.get("name")) in sidecars
        if sidecar:
            sidecar_restarts += num(cs.get("restartCount"))
            sidecar_last = _later(sidecar_last, _finished(cs))
        if isinstance(terminated, dict) and num(terminated.get("exitCode")) == 0:
            continue
        if sidecar and cs.get("started") is True:
            ready += 1 if cs.get("ready") is True else 0
            continue
        if isinstance(terminated, dict):
            why = text(terminated.get("reason"))
            reason = f"Init:{why}" if why else _exit_reason(terminated, "Init:")
        elif isinstance(waiting, dict) and text(waiting.get("reason")) not in ("", "PodInitializing"):
            reason = f"Init:{waiting['reason']}"
        else:
            reason = f"Init:{index}/{len(init_specs)}"
        initializing = True
        break

    if not initializing or condition_true(status.get("conditions"), "Initialized"):
        restarts, last = sidecar_restarts, sidecar_last
        running = False
        for item in reversed(lst(status.get("containerStatuses"))):
            cs = dct(item)
            state = dct(cs.get("state"))
            terminated, waiting = state.get("terminated"), state.get("waiting")
            restarts += num(cs.get("restartCount"))
            last = _later(last, _finished(cs))
            if isinstance(waiting, dict) and text(waiting.get("reason")):
                reason = waiting["reason"]
            elif isinstance(terminated, dict) and text(terminated.get("reason")):
                reason = terminated["reason"]
            elif isinstance(terminated, dict):
                reason = _exit_reason(terminated, "")
            elif cs.get("ready") is True and isinstance(state.get("running"), dict):
                running = True
                ready += 1
        if reason == "Completed" and running:
            reason = "Running" if condition_true(status.get("conditions"), "Ready") else "NotReady"

    if meta(pod).get("deletionTimestamp"):
        if status.get("reason") == "NodeLost":
            reason = "Unknown"
        elif phase not in ("Succeeded", "Failed"):
            reason = "Terminating"

    shown = str(restarts)
    if restarts and last is not None:
        shown = f"{restarts} ({duration_since(last, now)} ago)"
    return f"{ready}/{total}", reason, shown


def _pod_ip(pod: Obj, now: datetime) -> str:
    status = dct(pod.get("status"))
    ips = lst(status.get("podIPs"))
    found = text(dct(ips[0]).get("ip")) if ips else text(status.get("podIP"))
    return found or "<none>"


def _readiness_gates(pod: Obj, now: datetime) -> str:
    gates = lst(at_spec(pod, "readinessGates"))
    if not gates:
        return "<none>"
    conditions = [dct(c) for c in lst(dct(pod.get("status")).get("conditions"))]
    true = 0
    for gate in gates:
        kind = dct(gate).get("conditionType")
        match = next((c for c in conditions if c.get("type") == kind), None)
        true += 1 if match is not None and match.get("status") == "True" else 0
    return f"{true}/{len(gates)}"


def at_spec(obj: Obj, field: str) -> Any:
    return dct(obj.get("spec")).get(field)


def _or_none(value: Any) -> str:
    return text(value) or "<none>"


POD_COLUMNS = (
    col("Ready", "string", ".status.containerStatuses", lambda o, n: pod_summary(o, n)[0],
        "The aggregate readiness state of this pod for accepting traffic."),
    col("Status", "string", ".status.phase", lambda o, n: pod_summary(o, n)[1],
        "The aggregate status of the containers in this pod."),
    col("Restarts", "string", ".status.containerStatuses", lambda o, n: pod_summary(o, n)[2],
        "The number of times the containers in this pod have been restarted and when the last container in "
        "this pod has restarted."),
    AGE,
    col("IP", "string", ".status.podIPs", _pod_ip, doc("core.v1.PodStatus", "podIP"), priority=1),
    col("Node", "string", ".spec.nodeName", lambda o, n: _or_none(at_spec(o, "nodeName")),
        doc("core.v1.PodSpec", "nodeName"), priority=1),
    col("Nominated Node", "string", ".status.nominatedNodeName",
        lambda o, n: _or_none(dct(o.get("status")).get("nominatedNodeName")),
        doc("core.v1.PodStatus", "nominatedNodeName"), priority=1),
    col("Readiness Gates", "string", ".spec.readinessGates", _readiness_gates,
        doc("core.v1.PodSpec", "readinessGates"), priority=1),
)

POD_TEMPLATE_COLUMNS = (
    NAME,
    col("Containers", "string", ".template.spec.containers",
        lambda o, n: container_cells(dct(dct(o.get("template")).get("spec")).get("containers"))[0], CONTAINERS_DOC),
    col("Images", "string", ".template.spec.containers",
        lambda o, n: container_cells(dct(dct(o.get("template")).get("spec")).get("containers"))[1], IMAGES_DOC),
    col("Pod Labels", "string", ".template.metadata.labels",
        lambda o, n: format_labels(dct(dct(o.get("template")).get("metadata")).get("labels")),
        "The labels for the pod template."),
)
