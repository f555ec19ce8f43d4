"""Lease-based leader election (the Python client's leaderelection) elects one leader among two candidates."""
from __future__ import annotations

import subprocess
import sys
import time
import uuid
from typing import Any

CANDIDATE = """
import sys
from kubernetes import client
from kubernetes.leaderelection import electionconfig, leaderelection
from kubernetes.leaderelection.resourcelock.leaselock import LeaseLock

url, lease, identity = sys.argv[1:4]
configuration = client.Configuration()
configuration.host = url
client.Configuration.set_default(configuration)

def lead():
    print("LEADING", identity, flush=True)

config = electionconfig.Config(LeaseLock(lease, "default", identity), lease_duration=4, renew_deadline=3,
                               retry_period=1, onstarted_leading=lead, onstopped_leading=lambda: None)
leaderelection.LeaderElection(config).run()
"""


def test_one_of_two_candidates_leads(kapi: Any, tmp_path: Any) -> None:
    lease = f"election-{uuid.uuid4().hex[:8]}"
    logs = {name: tmp_path / f"{name}.log" for name in ("alpha", "beta")}
    procs = [subprocess.Popen([sys.executable, "-c", CANDIDATE, kapi.url, lease, name],
                              stdout=open(log, "w"), stderr=subprocess.STDOUT) for name, log in logs.items()]
    try:
        def leaders() -> list[str]:
            return [name for name, log in logs.items() if f"LEADING {name}" in log.read_text()]

        deadline = time.monotonic() + 20
        while not leaders() and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(3)  # a second leader, if the lock were broken, would show up within a lease period
        assert len(leaders()) == 1, {name: log.read_text() for name, log in logs.items()}
        with kapi.client() as http:
            lease_obj = http.get(f"/apis/coordination.k8s.io/v1/namespaces/default/leases/{lease}").json()
        assert lease_obj["spec"]["holderIdentity"] == leaders()[0]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
