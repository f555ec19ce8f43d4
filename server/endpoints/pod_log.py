"""`pods/log`: what `kubectl logs` reads, answered from the pod object alone.

kube-apiserver checks the container name itself and forwards the rest to the
node's kubelet, which refuses containers that have not started. kapi runs no
containers, so the "log" is simulated: the pod's `kapi.dev/simulate-log`
annotation (one line per line) when present, else a few deterministic lines
saying when and where the container started and how it exited. Every check
answers kube's wording and code: the apiserver's container checks, the
kubelet's state checks (which reach clients as 400 BadRequest), and
PodLogOptions validation (422). An unscheduled pod has no node to ask, so,
as in kube, its log is empty. `follow` answers what there is and ends.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.meta import parse_rfc3339
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints.context import ApiContext
from kapi.registry.builtin_strategy import as_dict, as_list
from kapi.registry.store import Store

Object = dict[str, Any]
LOG_ANNOTATION = "kapi.dev/simulate-log"
_CONTAINER_KINDS = ("initContainers", "containers", "ephemeralContainers")  # kube's VisitContainers order
_STATUS_KINDS = ("containerStatuses", "initContainerStatuses", "ephemeralContainerStatuses")
_PULL_FAILURES = {"ErrImagePull": "image can't be pulled", "ImagePullBackOff": "trying and failing to pull image"}


@dataclass(frozen=True)
class LogOptions:
    """PodLogOptions from the query."""

    container: str = ""
    previous: bool = False
    timestamps: bool = False
    tail_lines: int | None = None
    limit_bytes: int | None = None
    since_seconds: int | None = None
    since_time: datetime | None = None


def _int(params: Mapping[str, str], name: str) -> int | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise errors.BadRequest(f'invalid value for {name}: "{raw}": must be an integer') from None


def _bool(params: Mapping[str, str], name: str) -> bool:
    raw = (params.get(name) or "").lower()
    if raw in ("", "false", "0"):
        return False
    if raw in ("true", "1"):
        return True
    raise errors.BadRequest(f'invalid value for {name}: "{params.get(name)}": must be true or false')


def parse_log_options(params: Mapping[str, str], name: str) -> LogOptions:
    """The query as PodLogOptions, validated as kube's ValidatePodLogOptions does (422 PodLogOptions)."""
    since_time = None
    if params.get("sinceTime"):
        since_time = parse_rfc3339(params["sinceTime"])
        if since_time is None:
            raise errors.BadRequest(f'invalid value for sinceTime: "{params["sinceTime"]}": must be RFC3339')
    opts = LogOptions(container=params.get("container") or "", previous=_bool(params, "previous"),
                      timestamps=_bool(params, "timestamps"), tail_lines=_int(params, "tailLines"),
                      limit_bytes=_int(params, "limitBytes"), since_seconds=_int(params, "sinceSeconds"),
                      since_time=since_time)
    _bool(params, "follow")
    causes = []
    if opts.tail_lines is not None and opts.tail_lines < 0:
        causes.append(errors.field_invalid("tailLines", opts.tail_lines, "must be greater than or equal to 0"))
    if opts.limit_bytes is not None and opts.limit_bytes < 1:
        causes.append(errors.field_invalid("limitBytes", opts.limit_bytes, "must be greater than 0"))
    if opts.since_seconds is not None and opts.since_time is not None:
        causes.append(errors.field_forbidden("", "at most one of `sinceTime` or `sinceSeconds` may be specified"))
    elif opts.since_seconds is not None and opts.since_seconds < 1:
        causes.append(errors.field_invalid("sinceSeconds", opts.since_seconds, "must be greater than 0"))
    if causes:
        raise errors.invalid("", "PodLogOptions", name, causes)
    return opts


def _containers(pod: Object) -> list[Object]:
    spec = as_dict(pod.get("spec"))
    return [c for kind in _CONTAINER_KINDS for c in as_list(spec.get(kind)) if isinstance(c, dict)]


def choose_container(pod: Object, wanted: str) -> Object:
    """kube-apiserver's validateContainer: the named container, or the only one."""
    name = str(as_dict(pod.get("metadata")).get("name") or "")
    every = _containers(pod)
    if wanted:
        for container in every:
            if container.get("name") == wanted:
                return container
        raise errors.BadRequest(f"container {wanted} is not valid for pod {name}")
    regular = [c for c in as_list(as_dict(pod.get("spec")).get("containers")) if isinstance(c, dict)]
    if len(regular) == 1:
        return regular[0]
    if not regular:
        raise errors.BadRequest(f"a container name must be specified for pod {name}")
    names = " ".join(str(c.get("name") or "") for c in every)
    raise errors.BadRequest(f"a container name must be specified for pod {name}, choose one of: [{names}]")


def _status_of(pod: Object, container: str) -> Object | None:
    status = as_dict(pod.get("status"))
    for kind in _STATUS_KINDS:
        for entry in as_list(status.get(kind)):
            if isinstance(entry, dict) and entry.get("name") == container:
                return entry
    return None


def _ran(state: Object) -> bool:
    """A terminated state of a container that did start (kube: it has a containerID)."""
    return bool(state.get("containerID") or state.get("startedAt"))


def running_instance(pod: Object, container: str, previous: bool) -> tuple[Object, Object | None]:
    """The kubelet's validateContainerLogStatus: which instance's log to show, as (running-or-terminated
    state, terminated state or None); its refusals are 400s with the kubelet's wording."""
    pod_name = errors.go_quote(str(as_dict(pod.get("metadata")).get("name") or ""))
    quoted = errors.go_quote(container)
    status = _status_of(pod, container)
    if status is None:
        raise errors.BadRequest(f"container {quoted} in pod {pod_name} is not available")
    state, last = as_dict(status.get("state")), as_dict(status.get("lastState"))
    last_terminated = as_dict(last.get("terminated"))
    if previous:
        if not last_terminated or not _ran(last_terminated):
            raise errors.BadRequest(f"previous terminated container {quoted} in pod {pod_name} not found")
        return last_terminated, last_terminated
    if isinstance(state.get("running"), dict):
        return state["running"], None
    terminated = state.get("terminated")
    if isinstance(terminated, dict):
        if _ran(terminated):
            return terminated, terminated
        if last_terminated and _ran(last_terminated):
            return last_terminated, last_terminated
        raise errors.BadRequest(f"container {quoted} in pod {pod_name} is terminated")
    if last_terminated:
        if not _ran(last_terminated):
            raise errors.BadRequest(f"container {quoted} in pod {pod_name} is terminated")
        return last_terminated, last_terminated
    waiting = state.get("waiting")
    if isinstance(waiting, dict):
        reason = str(waiting.get("reason") or "")
        raise errors.BadRequest(f"container {quoted} in pod {pod_name} is waiting to start: "
                                f"{_PULL_FAILURES.get(reason, reason)}")
    raise errors.BadRequest(f"container {quoted} in pod {pod_name} is waiting to start - no logs yet")


def simulated_lines(pod: Object, container: Object, instance: Object,
                    terminated: Object | None) -> list[tuple[datetime | None, str]]:
    """The instance's log as (time, line): the annotation's text, else where and when it started and ended."""
    started = parse_rfc3339(str(instance.get("startedAt") or ""))
    finished = parse_rfc3339(str((terminated or {}).get("finishedAt") or "")) or started
    annotation = as_dict(as_dict(pod.get("metadata")).get("annotations")).get(LOG_ANNOTATION)
    if isinstance(annotation, str):
        return [(started, line) for line in annotation.splitlines()]
    name, node = container.get("name", ""), as_dict(pod.get("spec")).get("nodeName", "")
    lines = [(started, f"kapi simulated container {name}: image {container.get('image', '')} started on node "
                       f"{node} at {instance.get('startedAt') or 'an unknown time'}")]
    if terminated is not None:
        reason = terminated.get("reason")
        lines.append((finished, f"kapi simulated container {name}: exited with code {terminated.get('exitCode', 0)}"
                                + (f" ({reason})" if reason else "")))
    return lines


def _stamp(moment: datetime | None) -> str:
    """kubelet's RFC3339NanoFixed in UTC."""
    moment = (moment or datetime.fromtimestamp(0, timezone.utc)).astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 1000:09d}Z"


def render(lines: list[tuple[datetime | None, str]], opts: LogOptions, now: float) -> bytes:
    """Apply since*, tailLines, timestamps and limitBytes in the kubelet's order."""
    cutoff = opts.since_time
    if opts.since_seconds is not None:
        cutoff = datetime.fromtimestamp(now - opts.since_seconds, timezone.utc)
    if cutoff is not None:
        lines = [(at, text) for at, text in lines if at is None or at >= cutoff]
    if opts.tail_lines is not None:
        lines = lines[len(lines) - opts.tail_lines:] if opts.tail_lines else []
    out = "".join((f"{_stamp(at)} " if opts.timestamps else "") + text + "\n" for at, text in lines).encode()
    return out[:opts.limit_bytes] if opts.limit_bytes is not None else out


async def read_log(request: Request, ctx: ApiContext, store: Store, info: RequestInfo, version: str,
                   namespace: str) -> Response:
    """GET pods/{name}/log: text/plain, or kube's Status for what cannot be shown."""
    opts = parse_log_options(request.query_params, info.name)
    pod = await store.get(namespace, info.name, version)
    container = choose_container(pod, opts.container)
    if not as_dict(pod.get("spec")).get("nodeName"):
        return _text(b"")  # kube: no node, no kubelet to ask; an empty log
    instance, terminated = running_instance(pod, str(container.get("name") or ""), opts.previous)
    clock = getattr(ctx.simulation, "clock", None)
    now = clock.now() if clock is not None else time.time()
    return _text(render(simulated_lines(pod, container, instance, terminated), opts, now))


def _text(body: bytes) -> Response:
    return Response(body, status_code=200, headers={"Content-Type": "text/plain"})
