"""Simulated nodes: registered Ready with capacity, their Leases renewed on the simulated clock."""
from __future__ import annotations

from typing import Any, Callable

from kapi.testing import RunningServer, start_server

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"


def test_nodes_register_ready_with_capacity(eventually: Callable[..., Any]) -> None:
    capacity = (("cpu", "4"), ("memory", "8Gi"), ("pods", "20"))
    with start_server(simulate=True, simulate_manual_clock=True, simulate_nodes=2,
                      simulate_node_capacity=capacity) as kapi:
        nodes = eventually(lambda: len(items := kapi.request("GET", "/api/v1/nodes")[1]["items"]) == 2
                           and all(n.get("status", {}).get("conditions") for n in items) and items)
        assert [n["metadata"]["name"] for n in nodes] == ["kapi-node-1", "kapi-node-2"]
        node = nodes[0]
        assert node["status"]["capacity"] == node["status"]["allocatable"] == dict(capacity)
        ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
        assert (ready["status"], ready["reason"]) == ("True", "KubeletReady")
        assert node["metadata"]["labels"]["kubernetes.io/hostname"] == "kapi-node-1"
        assert node["spec"]["podCIDR"] == "10.244.1.0/24"
        assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.32")


def test_leases_are_renewed_as_the_clock_moves(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    leases = eventually(lambda: len(items := sim.request("GET", LEASES)[1]["items"]) == 3 and items)
    first = {lease["metadata"]["name"]: lease["spec"]["renewTime"] for lease in leases}
    assert all(lease["spec"]["holderIdentity"] == lease["metadata"]["name"] for lease in leases)
    assert all(lease["spec"]["leaseDurationSeconds"] == 40 for lease in leases)
    sim.advance(60)
    eventually(lambda: all(lease["spec"]["renewTime"] != first[lease["metadata"]["name"]]
                           for lease in sim.request("GET", LEASES)[1]["items"]), what="lease renewal")


def test_node_status_is_reposted_every_five_minutes(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    def heartbeat() -> str:
        node = sim.request("GET", "/api/v1/nodes/kapi-node-1")[1]
        return next((c["lastHeartbeatTime"] for c in node.get("status", {}).get("conditions", [])
                     if c["type"] == "Ready"), "")
    first = eventually(heartbeat)
    sim.advance(301)
    eventually(lambda: heartbeat() > first, what="a new heartbeat on the node status")


def test_without_simulate_nothing_runs() -> None:
    with start_server() as kapi:
        assert kapi.request("GET", "/api/v1/nodes")[1]["items"] == []
        status, body = kapi.request("GET", "/kapi/simulation/clock")
        assert status == 404 and body["reason"] == "NotFound"


def test_the_clock_endpoint_refuses_bad_input(sim: RunningServer) -> None:
    for body in ({"advance": "soon"}, {"advance": -5}, {}):
        status, answer = sim.request("POST", "/kapi/simulation/clock", body)
        assert status == 400 and answer["kind"] == "Status", body
    status, answer = sim.request("POST", "/kapi/simulation/clock?advance=90s")
    assert status == 200 and answer["manual"] is True
