"""The kubelets of the simulated nodes: pods start, run, exit, restart and are removed on the simulated clock.

A pod bound to a simulated node goes Pending (ContainerCreating) → Running
and Ready, with a pod IP from its node's pod CIDR and container statuses as a
kubelet reports them. Readiness waits for a readiness probe's
initialDelaySeconds. What a pod's containers do is set by annotations
(documented in the README, as kwok's stages are):

- `kapi.dev/simulate-exit-code: "N"`: the containers exit with N after
  `kapi.dev/simulate-run-seconds` (default 0). Pods a Job owns exit 0 unless told
  otherwise. restartPolicy decides what follows: Never → Succeeded/Failed;
  OnFailure → Succeeded on 0, else a restart; Always → a restart after kube's
  CrashLoopBackOff delay (10 s doubling to 5 min).
- `kapi.dev/simulate-start-seconds`: how long ContainerCreating lasts (default 0).
- `kapi.dev/simulate-termination-seconds`: how long the containers take to stop
  once the pod is deleted (default 0), never longer than its grace period; the
  kubelet then removes the pod (a delete with grace period 0).

Pods of a node that is deleted are removed, as kube's pod garbage collector does.
"""
from __future__ import annotations

import hashlib
from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import NODES, PODS, Kind, name_of
from kapi.controllers.simulation.nodes import KUBELET, is_simulated
from kapi.controllers.simulation.pods import TERMINAL_PHASES, phase
from kapi.controllers.simulation.runtime import Controller

Object = dict[str, Any]
EXIT_CODE, RUN_SECONDS = "kapi.dev/simulate-exit-code", "kapi.dev/simulate-run-seconds"
START_SECONDS, TERMINATION_SECONDS = "kapi.dev/simulate-start-seconds", "kapi.dev/simulate-termination-seconds"
BACKOFF_START, BACKOFF_MAX = 10.0, 300.0


def _seconds(annotations: dict[str, str], key: str) -> float:
    try:
        return max(float(annotations.get(key, 0) or 0), 0.0)
    except ValueError:
        return 0.0


def _time(value: Any) -> float | None:
    moment = parse_rfc3339(str(value or ""))
    return moment.timestamp() if moment is not None else None


def image_ref(image: str) -> str:
    """The image as the runtime reports it: `nginx` → `docker.io/library/nginx:latest`."""
    name = image or "unknown"
    first = name.split("/", 1)[0]
    if "/" not in name:
        name = f"docker.io/library/{name}"
    elif "." not in first and ":" not in first and first != "localhost":
        name = f"docker.io/{name}"
    last = name.rsplit("/", 1)[-1]
    return name if ":" in last or "@" in last else f"{name}:latest"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# 10.244.<n>.2-254 up to 10.255.<n>.2-254: the addresses a node hands out before it starts over
POD_IPS_PER_NODE = 253 * 12


def pod_ip(node: Object, index: int) -> str:
    """The `index`th address of the node's pod CIDR (10.244.<n>.0/24, spilling into 10.245.<n>.x)."""
    cidr = str((node.get("spec") or {}).get("podCIDR") or "10.244.0.0/24")
    third = cidr.split("/")[0].split(".")[2] if cidr.count(".") == 3 else "0"
    return f"10.{244 + index // 253}.{third}.{2 + index % 253}"


class Kubelet(Controller):
    name = KUBELET
    workers = 4

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        self._ips: dict[str, dict[str, tuple[str, str]]] = {}  # node -> ip -> pod (namespace, name)
        self._next_ip: dict[str, int] = {}  # node -> the index its next address search starts from
        self._gone_nodes: set[str] = set()
        self._stopping: dict[tuple[str, str], float] = {}  # pod -> when its containers will have stopped

    # -- which pods are ours -------------------------------------------------------------------
    def _node_of(self, pod: Object | None) -> str:
        return str(((pod or {}).get("spec") or {}).get("nodeName") or "")

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == NODES and new is None and is_simulated(old):
            node = name_of(old or {})[1]
            self._gone_nodes.add(node)
            for pod in self.informer.pods_on(node):
                self.enqueue(name_of(pod))
        elif kind == NODES and new is not None:
            self._gone_nodes.discard(name_of(new)[1])
        elif kind == PODS:
            if new is None:
                self._release(old)
                self._stopping.pop(name_of(old or {}), None)
            elif self._node_of(new):
                self.enqueue(name_of(new))

    def start_keys(self) -> list[Any]:
        return [name_of(p) for p in self.informer.list(PODS) if self._node_of(p)]

    def _release(self, pod: Object | None) -> None:
        ip = ((pod or {}).get("status") or {}).get("podIP")
        owned = self._ips.get(self._node_of(pod), {})
        if ip and owned.get(ip) == name_of(pod or {}):
            del owned[ip]

    # -- reconcile -----------------------------------------------------------------------------------
    async def reconcile(self, key: tuple[str, str]) -> None:
        pod = self.informer.get(PODS, *key)
        node_name = self._node_of(pod)
        if pod is None or not node_name:
            return
        node = self.informer.get(NODES, "", node_name)
        if node is None:
            if node_name in self._gone_nodes:
                await self.cluster.delete(PODS, pod, KUBELET, grace_period=0)
            return
        if not is_simulated(node):
            return
        meta, status = pod["metadata"], pod.get("status") or {}
        annotations = meta.get("annotations") or {}
        if meta.get("deletionTimestamp"):
            await self._terminate(pod, annotations)
        elif phase(pod) in TERMINAL_PHASES:
            return
        elif not status.get("containerStatuses"):
            await self.cluster.set_status(PODS, pod, self._creating(pod, node), KUBELET)
            self.enqueue_at(self.clock.now() + _seconds(annotations, START_SECONDS), key)
        else:
            await self._advance(pod, node, annotations)

    async def _terminate(self, pod: Object, annotations: dict[str, str]) -> None:
        """As a kubelet: the grace period counts from when the deletion is seen, on this node's clock."""
        key, now = name_of(pod), self.clock.now()
        grace = float(pod["metadata"].get("deletionGracePeriodSeconds") or 0)
        when = self._stopping.setdefault(key, now + min(grace, _seconds(annotations, TERMINATION_SECONDS)))
        when = self._stopping[key] = min(when, now + grace)  # a later delete may shorten the grace period
        if now >= when or phase(pod) in TERMINAL_PHASES:
            await self.cluster.delete(PODS, pod, KUBELET, grace_period=0)
        else:
            self.enqueue_at(when, key)

    async def _advance(self, pod: Object, node: Object, annotations: dict[str, str]) -> None:
        """One step along ContainerCreating → Running → exited (→ restarted)."""
        now, key = self.clock.now(), name_of(pod)
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        first = statuses[0] if statuses else {}
        waiting = (first.get("state") or {}).get("waiting")
        running = (first.get("state") or {}).get("running")
        if waiting is not None:
            since = _time(((first.get("lastState") or {}).get("terminated") or {}).get("finishedAt"))
            restart_at = self._creation_done(pod, annotations) if since is None else since + self._backoff(first)
            if now >= restart_at:
                await self.cluster.set_status(PODS, pod, self._running(pod, node), KUBELET)  # its event queues it
            else:
                self.enqueue_at(restart_at, key)
            return
        if running is None:
            return
        started = _time(running.get("startedAt")) or now
        ready_at = started + self._readiness_delay(pod)
        if not first.get("ready") and now >= ready_at:
            await self.cluster.set_status(PODS, pod, self._running(pod, node, started), KUBELET)
        elif not first.get("ready"):
            self.enqueue_at(ready_at, key)
        exits = EXIT_CODE in annotations or self._owned_by_job(pod)
        if exits:
            exit_at = started + _seconds(annotations, RUN_SECONDS)
            if now >= exit_at:
                await self.cluster.set_status(PODS, pod, self._exited(pod, annotations, started), KUBELET)
            else:
                self.enqueue_at(exit_at, key)

    def _creation_done(self, pod: Object, annotations: dict[str, str]) -> float:
        start = _time((pod.get("status") or {}).get("startTime")) or self.clock.now()
        return start + _seconds(annotations, START_SECONDS)

    @staticmethod
    def _owned_by_job(pod: Object) -> bool:
        return any(r.get("kind") == "Job" and r.get("controller")
                   for r in pod["metadata"].get("ownerReferences") or [])

    @staticmethod
    def _backoff(status: Object) -> float:
        restarts = int(status.get("restartCount") or 0)
        return min(BACKOFF_START * 2 ** max(restarts - 1, 0), BACKOFF_MAX)

    @staticmethod
    def _readiness_delay(pod: Object) -> float:
        delays = [float((c.get("readinessProbe") or {}).get("initialDelaySeconds") or 0)
                  for c in (pod.get("spec") or {}).get("containers") or []]
        return max(delays, default=0.0)

    # -- statuses -------------------------------------------------------------------------------------------
    def _ip_for(self, pod: Object, node: Object) -> str:
        if (pod.get("spec") or {}).get("hostNetwork"):
            return self._host_ip(node)
        current = (pod.get("status") or {}).get("podIP")
        if current:
            return str(current)
        node_name, key = name_of(node)[1], name_of(pod)
        taken = self._ips.get(node_name)
        if taken is None:
            taken = self._ips[node_name] = {
                str(p["status"]["podIP"]): name_of(p) for p in self.informer.pods_on(node_name)
                if (p.get("status") or {}).get("podIP") and not (p.get("spec") or {}).get("hostNetwork")}
        for ip, owner in taken.items():
            if owner == key:
                return ip
        # round robin, as the host-local IPAM plugin does: a deleted pod's address is not handed to its
        # replacement at once, so endpoints never see a new pod under an old pod's address
        index = self._next_ip.get(node_name, 0)
        while pod_ip(node, index) in taken and len(taken) < POD_IPS_PER_NODE:
            index = (index + 1) % POD_IPS_PER_NODE
        self._next_ip[node_name] = (index + 1) % POD_IPS_PER_NODE
        ip = pod_ip(node, index)
        taken[ip] = key
        return ip

    @staticmethod
    def _host_ip(node: Object) -> str:
        for address in (node.get("status") or {}).get("addresses") or []:
            if address.get("type") == "InternalIP":
                return str(address.get("address"))
        return "127.0.0.1"

    def _base(self, pod: Object, node: Object) -> Object:
        status: Object = {k: v for k, v in (pod.get("status") or {}).items()
                          if k in ("qosClass", "nominatedNodeName")}
        host = self._host_ip(node)
        status.update(hostIP=host, hostIPs=[{"ip": host}],
                      startTime=(pod.get("status") or {}).get("startTime") or self.clock.rfc3339())
        return status

    def _conditions(self, pod: Object, ready: bool, initialized: bool = True, reason: str = "") -> list[Object]:
        now = self.clock.rfc3339()
        old = {c.get("type"): c for c in (pod.get("status") or {}).get("conditions") or []}
        names = [c.get("name") for c in (pod.get("spec") or {}).get("containers") or []]
        unready = {"reason": reason or "ContainersNotReady",
                   "message": f"containers with unready status: [{' '.join(str(n) for n in names)}]"}

        def cond(kind: str, ok: bool, extra: Object | None = None) -> Object:
            status = "True" if ok else "False"
            previous = old.get(kind) or {}
            since = previous.get("lastTransitionTime") if previous.get("status") == status else now
            out: Object = {"type": kind, "status": status, "lastProbeTime": None, "lastTransitionTime": since}
            if not ok and extra:
                out.update(extra)
            return out

        return [cond("PodReadyToStartContainers", True), cond("Initialized", initialized),
                cond("Ready", ready, unready), cond("ContainersReady", ready, unready),
                cond("PodScheduled", True)]

    def _container(self, container: Object, state: Object, ready: bool, restarts: int = 0,
                   last: Object | None = None, pod_uid: str = "") -> Object:
        image = str(container.get("image") or "")
        out: Object = {"name": container.get("name"), "state": state, "lastState": last or {}, "ready": ready,
                       "restartCount": restarts, "image": image_ref(image), "imageID": "",
                       "started": "running" in state}
        if "waiting" not in state or restarts:
            out["imageID"] = f"{image_ref(image).rsplit(':', 1)[0]}@sha256:{_digest(image)}"
            out["containerID"] = "containerd://" + _digest(f"{pod_uid}/{container.get('name')}/{restarts}")
        return out

    def _creating(self, pod: Object, node: Object) -> Object:
        status = self._base(pod, node)
        init = (pod.get("spec") or {}).get("initContainers") or []
        status.update(phase="Pending", conditions=self._conditions(pod, False, not init), containerStatuses=[
            self._container(c, {"waiting": {"reason": "ContainerCreating"}}, False)
            for c in (pod.get("spec") or {}).get("containers") or []])
        if init:
            status["initContainerStatuses"] = [self._container(c, {"waiting": {"reason": "PodInitializing"}}, False)
                                               for c in init]
        return status

    def _running(self, pod: Object, node: Object, started: float | None = None) -> Object:
        now = self.clock.now()
        started_at = self.clock.rfc3339(started if started is not None else now)
        ready = now >= (started if started is not None else now) + self._readiness_delay(pod)
        uid = str(pod["metadata"].get("uid") or "")
        previous = {s.get("name"): s for s in (pod.get("status") or {}).get("containerStatuses") or []}
        status = self._base(pod, node)
        ip = self._ip_for(pod, node)
        status.update(phase="Running", podIP=ip, podIPs=[{"ip": ip}],
                      conditions=self._conditions(pod, ready), containerStatuses=[
                          self._container(c, {"running": {"startedAt": started_at}}, ready,
                                          int((previous.get(c.get("name")) or {}).get("restartCount") or 0),
                                          (previous.get(c.get("name")) or {}).get("lastState"), uid)
                          for c in (pod.get("spec") or {}).get("containers") or []])
        init = (pod.get("spec") or {}).get("initContainers") or []
        if init:
            start = status["startTime"]
            status["initContainerStatuses"] = [self._container(c, {"terminated": {
                "exitCode": 0, "reason": "Completed", "startedAt": start, "finishedAt": start}}, True, pod_uid=uid)
                for c in init]
        return status

    def _exited(self, pod: Object, annotations: dict[str, str], started: float) -> Object:
        try:
            code = int(annotations.get(EXIT_CODE, "0") or 0)
        except ValueError:
            code = 1
        policy = (pod.get("spec") or {}).get("restartPolicy") or "Always"
        status = {**(pod.get("status") or {})}
        terminated = {"exitCode": code, "reason": "Completed" if code == 0 else "Error",
                      "startedAt": self.clock.rfc3339(started), "finishedAt": self.clock.rfc3339()}
        restart = policy == "Always" or (policy == "OnFailure" and code != 0)
        statuses = []
        for current in status.get("containerStatuses") or []:
            done = {**current, "ready": False, "started": False}
            if restart:
                done.update(state={"waiting": {"reason": "CrashLoopBackOff", "message": (
                    f"back-off {int(self._backoff({'restartCount': int(current.get('restartCount') or 0) + 1}))}s "
                    f"restarting failed container={current.get('name')} pod={pod['metadata']['name']}_"
                    f"{pod['metadata'].get('namespace', '')}({pod['metadata'].get('uid', '')})")}},
                    lastState={"terminated": {**terminated, "containerID": current.get("containerID", "")}},
                    restartCount=int(current.get("restartCount") or 0) + 1)
            else:
                done.update(state={"terminated": {**terminated, "containerID": current.get("containerID", "")}})
            statuses.append(done)
        status["containerStatuses"] = statuses
        if restart:
            status["conditions"] = self._conditions(pod, False)
        else:
            status["phase"] = "Succeeded" if code == 0 else "Failed"
            status["conditions"] = self._conditions(pod, False, True, "PodCompleted")
            for cond in status["conditions"]:
                if cond["type"] in ("Ready", "ContainersReady"):
                    cond.pop("message", None)
                if cond["type"] == "PodReadyToStartContainers":
                    cond.update(status="False", lastTransitionTime=self.clock.rfc3339())
        return status
