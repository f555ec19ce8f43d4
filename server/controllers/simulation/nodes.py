"""Simulated nodes: `--simulate-nodes N` Ready nodes, and the kubelet's heartbeats on their Leases.

Each node looks like a kubelet registered it (labels, addresses, capacity,
nodeInfo, conditions) and carries the `kapi.dev/simulated` annotation; any
node a user creates with that annotation is simulated too. Heartbeats renew
`kube-node-lease/<node>` every 10 simulated seconds (the kubelet's default
renew interval: a quarter of the 40 s lease), so controllers that watch node
leases see live nodes.
"""
from __future__ import annotations

import hashlib
from typing import Any

from kapi.api.meta import parse_rfc3339
from kapi.controllers.simulation.informer import LEASES, NODES, Kind, name_of
from kapi.controllers.simulation.runtime import Controller

Object = dict[str, Any]
SIMULATED = "kapi.dev/simulated"
KUBELET = "kubelet"
LEASE_NAMESPACE = "kube-node-lease"
LEASE_SECONDS, RENEW_SECONDS = 40, 10.0
STATUS_REPORT_SECONDS = 300.0  # the kubelet's nodeStatusReportFrequency: the status is re-posted every 5 min
KUBELET_VERSION = "v1.32.0-kapi"


def is_simulated(node: Object | None) -> bool:
    return node is not None and ((node.get("metadata") or {}).get("annotations") or {}).get(SIMULATED) == "true"


def node_name(index: int) -> str:
    return f"kapi-node-{index}"


def _id(name: str, salt: str) -> str:
    return hashlib.sha256(f"{salt}:{name}".encode()).hexdigest()[:32]


def node_conditions(now: str) -> list[Object]:
    def cond(kind: str, status: str, reason: str, message: str) -> Object:
        return {"type": kind, "status": status, "lastHeartbeatTime": now, "lastTransitionTime": now,
                "reason": reason, "message": message}
    return [cond("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
            cond("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            cond("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            cond("Ready", "True", "KubeletReady", "kubelet is posting ready status")]


def new_node(index: int, capacity: dict[str, str], now: str) -> Object:
    """Node `index` (1-based) as a kubelet registers it, with its pod CIDR 10.244.<index>.0/24."""
    name = node_name(index)
    return {
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "annotations": {SIMULATED: "true", "node.alpha.kubernetes.io/ttl": "0"},
                     "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                                "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux",
                                "beta.kubernetes.io/arch": "amd64", "node.kubernetes.io/instance-type": "kapi",
                                "type": "kapi"}},
        "spec": {"podCIDR": f"10.244.{index}.0/24", "podCIDRs": [f"10.244.{index}.0/24"]},
        "status": {
            "capacity": dict(capacity), "allocatable": dict(capacity),
            "conditions": node_conditions(now),
            "addresses": [{"type": "InternalIP", "address": f"172.18.0.{index + 1}"},
                          {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {"machineID": _id(name, "machine"), "systemUUID": _id(name, "system"),
                         "bootID": _id(name, "boot"), "kernelVersion": "6.1.0-kapi", "osImage": "kapi simulated node",
                         "containerRuntimeVersion": "kapi://simulated", "kubeletVersion": KUBELET_VERSION,
                         "kubeProxyVersion": KUBELET_VERSION, "operatingSystem": "linux", "architecture": "amd64"},
        },
    }


class NodeSimulator(Controller):
    """Registers the configured nodes at start and renews every simulated node's Lease."""

    name = "node-simulator"

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == NODES and is_simulated(new) and old is None:
            self.enqueue(name_of(new or {})[1])

    def start_keys(self) -> list[Any]:
        return ["register", *(name_of(n)[1] for n in self.informer.list(NODES) if is_simulated(n))]

    async def reconcile(self, key: str) -> None:
        if key == "register":
            await self._register()
            return
        node = self.informer.get(NODES, "", key)
        if not is_simulated(node):
            return
        await self._renew(key)
        await self._report(node)
        self.enqueue_at(self.clock.now() + RENEW_SECONDS, key)

    async def _register(self) -> None:
        capacity = dict(self.cluster.settings.node_capacity)
        for index in range(1, self.cluster.settings.nodes + 1):
            if self.informer.get(NODES, "", node_name(index)) is None:
                node = new_node(index, capacity, self.clock.rfc3339())
                created = await self.cluster.create(NODES, "", node, KUBELET)
                if created is not None and created.get("status") != node["status"]:  # status set apart, as kubelets do
                    await self.cluster.set_status(NODES, created, node["status"], KUBELET)

    async def _renew(self, node: str) -> None:
        now = self.clock.rfc3339()
        lease = self.informer.get(LEASES, LEASE_NAMESPACE, node)
        if lease is None:
            owner = self.informer.get(NODES, "", node) or {}
            await self.cluster.create(LEASES, LEASE_NAMESPACE, {
                "apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": node, "namespace": LEASE_NAMESPACE, "ownerReferences": [{
                    "apiVersion": "v1", "kind": "Node", "name": node, "uid": owner.get("metadata", {}).get("uid", "")}]},
                "spec": {"holderIdentity": node, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _micro(now)}},
                KUBELET)
            return
        await self.cluster.change(LEASES, LEASE_NAMESPACE, node,
                                  lambda obj: obj.setdefault("spec", {}).__setitem__("renewTime", _micro(now)),
                                  manager=KUBELET)


    async def _report(self, node: Object | None) -> None:
        """Re-post the Ready status with a fresh lastHeartbeatTime when the last one is 5 minutes old."""
        conditions = ((node or {}).get("status") or {}).get("conditions") or []
        beats = [parse_rfc3339(str(c.get("lastHeartbeatTime") or "")) for c in conditions]
        latest = max((b.timestamp() for b in beats if b is not None), default=None)
        if node is None or latest is None or self.clock.now() - latest < STATUS_REPORT_SECONDS:
            return
        now = self.clock.rfc3339()
        status = {**node["status"], "conditions": [{**c, "lastHeartbeatTime": now} for c in conditions]}
        await self.cluster.set_status(NODES, node, status, KUBELET)


def _micro(rfc3339: str) -> str:
    """A Lease's renewTime is a MicroTime."""
    return rfc3339.replace("Z", ".000000Z")
