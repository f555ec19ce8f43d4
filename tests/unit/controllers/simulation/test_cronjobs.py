"""The simulated CronJob controller: Jobs on schedule as the manual clock advances, concurrency, history."""
from __future__ import annotations

import subprocess
from datetime import datetime
from typing import Any, Callable

from kapi.testing import RunningServer

CRONJOBS = "/apis/batch/v1/namespaces/default/cronjobs"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
SCHEDULED = "batch.kubernetes.io/cronjob-scheduled-timestamp"


def _cronjob(name: str, schedule: str = "*/1 * * * *", run_seconds: int = 0, **spec: Any) -> dict[str, Any]:
    pod = {"metadata": {"annotations": {"kapi.dev/simulate-run-seconds": str(run_seconds)}},
           "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "tick", "image": "busybox"}]}}
    return {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": name, "namespace": "default"},
            "spec": {"schedule": schedule, "jobTemplate": {"metadata": {"labels": {"team": "a"}},
                                                           "spec": {"template": pod}}, **spec}}


def _jobs(kapi: RunningServer, cronjob: str) -> list[dict[str, Any]]:
    items = kapi.request("GET", JOBS)[1]["items"]
    return sorted((j for j in items if any(r["name"] == cronjob for r in j["metadata"].get("ownerReferences") or [])
                   and not j["metadata"].get("deletionTimestamp")), key=lambda j: j["metadata"]["name"])


def _status(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{CRONJOBS}/{name}")[1].get("status") or {}


def _complete(job: dict[str, Any]) -> bool:
    return any(c["type"] == "Complete" and c["status"] == "True" for c in job.get("status", {}).get("conditions", []))


def test_kubectl_cronjob_runs_after_a_minute(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    kubectl = ["/usr/bin/kubectl", "--kubeconfig", str(sim.kubeconfig)]
    subprocess.run([*kubectl, "create", "cronjob", "c", "--image", "busybox", "--schedule", "*/1 * * * *"],
                   check=True, capture_output=True)
    eventually(lambda: sim.request("GET", f"{CRONJOBS}/c")[0] == 200)
    assert not _jobs(sim, "c")
    sim.advance(60)
    [job] = eventually(lambda: _jobs(sim, "c"), what="a job of the cronjob")
    meta = job["metadata"]
    scheduled = meta["annotations"][SCHEDULED]
    assert scheduled.endswith(":00Z")
    assert meta["ownerReferences"][0]["kind"] == "CronJob" and meta["ownerReferences"][0]["controller"] is True
    eventually(lambda: _complete(_jobs(sim, "c")[0]), what="the job's completion")
    status = eventually(lambda: (s := _status(sim, "c")).get("lastSuccessfulTime") and s)
    assert status["lastScheduleTime"] == scheduled and "active" not in status
    moment = datetime.fromisoformat(scheduled.replace("Z", "+00:00"))
    assert meta["name"] == f"c-{int(moment.timestamp()) // 60}"
    wait = subprocess.run([*kubectl, "wait", "--for=condition=complete", f"job/{meta['name']}", "--timeout=10s"],
                          capture_output=True, text=True)
    assert wait.returncode == 0, wait.stderr


def test_job_names_labels_and_active(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_cronjob("long", run_seconds=3600))
    eventually(lambda: sim.request("GET", f"{CRONJOBS}/long")[0] == 200)
    sim.advance(60)
    [job] = eventually(lambda: _jobs(sim, "long"))
    assert job["metadata"]["labels"]["team"] == "a"
    moment = datetime.fromisoformat(job["metadata"]["annotations"][SCHEDULED].replace("Z", "+00:00"))
    assert job["metadata"]["name"] == f"long-{int(moment.timestamp()) // 60}"
    status = eventually(lambda: (s := _status(sim, "long")).get("active") and s)
    assert status["active"][0]["name"] == job["metadata"]["name"] and status["active"][0]["kind"] == "Job"
    sim.advance(60)
    eventually(lambda: len(_jobs(sim, "long")) == 2, what="a second, concurrent job (Allow)")


def test_forbid_and_replace(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_cronjob("forbid", run_seconds=3600, concurrencyPolicy="Forbid"))
    sim.apply(_cronjob("replace", run_seconds=3600, concurrencyPolicy="Replace"))
    eventually(lambda: sim.request("GET", f"{CRONJOBS}/replace")[0] == 200)
    sim.advance(60)
    eventually(lambda: len(_jobs(sim, "forbid")) == 1 and len(_jobs(sim, "replace")) == 1)
    first = _jobs(sim, "replace")[0]["metadata"]["name"]
    eventually(lambda: _status(sim, "replace").get("active"))
    sim.advance(60)
    eventually(lambda: [j["metadata"]["name"] for j in _jobs(sim, "replace")] not in ([], [first]),
               what="the replacement job")
    eventually(lambda: len(_jobs(sim, "replace")) == 1, what="the replaced job's deletion")
    assert len(_jobs(sim, "forbid")) == 1


def test_history_limits(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_cronjob("hist", successfulJobsHistoryLimit=1))
    eventually(lambda: sim.request("GET", f"{CRONJOBS}/hist")[0] == 200)
    seen: set[str] = set()
    for _ in range(3):
        sim.advance(60)
        jobs = eventually(lambda: [j for j in _jobs(sim, "hist") if j["metadata"]["name"] not in seen])
        seen.update(j["metadata"]["name"] for j in jobs)
        eventually(lambda: all(_complete(j) for j in _jobs(sim, "hist")), what="the run's completion")
    assert len(seen) == 3
    eventually(lambda: len(_jobs(sim, "hist")) == 1, what="the history cleanup")


def test_suspend_deadline_and_missed_runs(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_cronjob("off", suspend=True))
    sim.apply(_cronjob("jump", startingDeadlineSeconds=300))
    sim.apply(_cronjob("tokyo", "0 9 * * *", timeZone="Asia/Tokyo"))
    eventually(lambda: sim.request("GET", f"{CRONJOBS}/tokyo")[0] == 200)
    sim.advance(86400)
    [job] = eventually(lambda: _jobs(sim, "jump"), what="only the latest missed run")
    [tokyo] = eventually(lambda: _jobs(sim, "tokyo"))
    assert tokyo["metadata"]["annotations"][SCHEDULED].endswith("T09:00:00+09:00")
    assert not _jobs(sim, "off")
    assert len(_jobs(sim, "jump")) == 1


def test_an_unparseable_time_zone_is_skipped(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    status, _ = sim.request("POST", CRONJOBS, _cronjob("mars", timeZone="Mars/Olympus"))
    if status == 201:  # kube-apiserver's validation may refuse it already
        sim.advance(120)
        sim.apply(_cronjob("earth"))
        sim.advance(60)
        eventually(lambda: _jobs(sim, "earth"))
        assert not _jobs(sim, "mars")
