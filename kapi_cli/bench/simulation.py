"""The simulation rows: time from creating a Deployment of N replicas to all N pods Ready (`--simulate`),
with the server's CPU seconds and RSS, on a fresh kapi with 10 simulated nodes.

The whole path is measured as a user sees it: the Deployment controller makes
a ReplicaSet, the ReplicaSet controller the pods, the scheduler binds them,
the kubelets start them, and the statuses flow back up until the Deployment
reports N available replicas.
"""
from __future__ import annotations

import json
import time
from typing import Any, Callable

from kapi_cli.bench.client import Target, fetch_once, run
from kapi_cli.bench.servers import KapiServer, cpu_seconds, rss_bytes

NODES = 10
DEPLOYMENTS = "/apis/apps/v1/namespaces/default/deployments"


def simulate_args(replicas: int) -> list[str]:
    """Enough room on the nodes for every pod (kube's 110 pods per node would hold 1,100)."""
    per_node = max(110, -(-replicas // NODES) + 10)
    return ["--simulate", "--simulate-nodes", str(NODES), "--simulate-node-capacity",
            f"cpu=64,memory=256Gi,pods={per_node}"]


def _deployment(replicas: int) -> bytes:
    labels = {"app": "bench"}
    return json.dumps({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "bench"},
                       "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                                "template": {"metadata": {"labels": labels}, "spec": {"containers": [
                                    {"name": "nginx", "image": "nginx:1.27",
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}}}).encode()


def _available(target: Target) -> int:
    status, body = run(fetch_once(target, "GET", f"{DEPLOYMENTS}/bench"))
    if status != 200:
        return -1
    return int((json.loads(body).get("status") or {}).get("availableReplicas") or 0)


def rollout(server: KapiServer, replicas: int, timeout: float = 600.0) -> dict[str, Any]:
    """Start `server`, create the Deployment, wait for every replica to be available; the figures."""
    server.start()
    pid = server.pid
    assert pid is not None
    time.sleep(0.5)  # the nodes register
    cpu_before, started = cpu_seconds(pid) or 0.0, time.perf_counter()
    status, body = run(fetch_once(server.http, "POST", DEPLOYMENTS, _deployment(replicas)))
    if status != 201:
        raise RuntimeError(f"creating the deployment answered {status}: {body[:300]!r}")
    deadline = started + timeout
    while _available(server.http) < replicas:
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{replicas} replicas were not available within {timeout:.0f} s")
        time.sleep(0.02)
    seconds = time.perf_counter() - started
    cpu = (cpu_seconds(pid) or 0.0) - cpu_before
    return {"replicas": replicas, "nodes": NODES, "seconds": seconds, "server_cpu_s": cpu,
            "pods_per_s": replicas / seconds if seconds else 0.0, "rss_bytes": rss_bytes(pid)}


def rollouts(make_server: Callable[[str, list[str]], KapiServer], sizes: tuple[int, ...]) -> list[dict[str, Any]]:
    out = []
    for replicas in sizes:
        server = make_server(f"sim{replicas}", simulate_args(replicas))
        try:
            out.append(rollout(server, replicas))
        finally:
            server.stop()
    return out
