"""The simulated Job controller: pods to completion, counting, failure, deadlines, suspension and TTL."""
from __future__ import annotations

import subprocess
from typing import Any, Callable

from kapi.testing import RunningServer

JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"


def _job(name: str, annotations: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    pod = {"metadata": {"annotations": annotations or {}},
           "spec": {"restartPolicy": spec.pop("restartPolicy", "Never"),
                    "containers": [{"name": "work", "image": "busybox"}]}}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": "default"},
            "spec": {"template": pod, **spec}}


def _get(kapi: RunningServer, name: str) -> dict[str, Any]:
    return kapi.request("GET", f"{JOBS}/{name}")[1]


def _conditions(job: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in job.get("status", {}).get("conditions") or []}


def _pods(kapi: RunningServer, job: str) -> list[dict[str, Any]]:
    return kapi.request("GET", f"{PODS}?labelSelector=batch.kubernetes.io/job-name={job}")[1]["items"]


def _with(kapi: RunningServer, name: str, kind: str, status: str | None = "True") -> Callable[[], Any]:
    """A probe: the job once it has condition `kind` (with `status`, unless None)."""
    def probe() -> Any:
        job = _get(kapi, name)
        cond = _conditions(job).get(kind)
        return job if cond is not None and (status is None or cond.get("status") == status) else None
    return probe


def _finished(kapi: RunningServer, name: str, kind: str = "Complete") -> Callable[[], Any]:
    return _with(kapi, name, kind)


def test_a_job_completes_as_kube_reports_it(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("once"))
    job = eventually(_finished(sim, "once"))
    status = job["status"]
    assert status["succeeded"] == 1 and "active" not in status and "failed" not in status
    assert status["ready"] == 0 and status["terminating"] == 0 and status["uncountedTerminatedPods"] == {}
    assert status["startTime"] and status["completionTime"]
    types = [c["type"] for c in status["conditions"]]
    assert types == ["SuccessCriteriaMet", "Complete"]
    for cond in status["conditions"]:
        assert cond["reason"] == "CompletionsReached" and cond["message"] == "Reached expected number of succeeded pods"
    [pod] = _pods(sim, "once")
    meta = pod["metadata"]
    assert meta["name"].startswith("once-") and meta["generateName"] == "once-"
    assert meta["labels"]["job-name"] == "once" and meta["labels"]["batch.kubernetes.io/controller-uid"]
    assert meta["ownerReferences"][0]["kind"] == "Job" and meta["ownerReferences"][0]["controller"] is True
    assert "batch.kubernetes.io/job-tracking" not in (meta.get("finalizers") or [])
    assert pod["status"]["phase"] == "Succeeded"


def test_completions_parallelism_and_work_queue(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("many", completions=5, parallelism=2))
    sim.apply(_job("queue", parallelism=3, completions=None))
    job = eventually(_finished(sim, "many"))
    assert job["status"]["succeeded"] == 5 and len(_pods(sim, "many")) == 5
    queue = eventually(_finished(sim, "queue"))
    assert queue["spec"].get("completions") is None and queue["status"]["succeeded"] >= 1


def test_indexed_job(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("idx", completions=4, parallelism=2, completionMode="Indexed"))
    job = eventually(_finished(sim, "idx"))
    assert job["status"]["completedIndexes"] == "0-3" and job["status"]["succeeded"] == 4
    pods = _pods(sim, "idx")
    indexes = sorted(p["metadata"]["annotations"]["batch.kubernetes.io/job-completion-index"] for p in pods)
    assert indexes == ["0", "1", "2", "3"]
    for pod in pods:
        index = pod["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]
        assert pod["spec"]["hostname"] == f"idx-{index}" and pod["metadata"]["generateName"] == f"idx-{index}-"


def test_backoff_limit_with_pod_failure_backoff(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("flaky", {"kapi.dev/simulate-exit-code": "1"}, backoffLimit=2))
    eventually(lambda: _get(sim, "flaky")["status"].get("failed") == 1, what="a first failure")
    assert len(_pods(sim, "flaky")) == 1  # the replacement waits 10 s of simulated time
    sim.advance(10)
    eventually(lambda: _get(sim, "flaky")["status"].get("failed") == 2, what="a second failure")
    sim.advance(20)
    job = eventually(_finished(sim, "flaky", "Failed"))
    assert job["status"]["failed"] == 3 and "completionTime" not in job["status"]
    conditions = _conditions(job)
    assert list(conditions) == ["FailureTarget", "Failed"]
    assert conditions["Failed"]["reason"] == "BackoffLimitExceeded"
    assert conditions["Failed"]["message"] == "Job has reached the specified backoff limit"


def test_active_deadline(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("slow", {"kapi.dev/simulate-run-seconds": "3600"}, activeDeadlineSeconds=30))
    eventually(lambda: _get(sim, "slow")["status"].get("ready") == 1, what="a running pod")
    sim.advance(31)
    job = eventually(_finished(sim, "slow", "Failed"))
    assert _conditions(job)["Failed"]["reason"] == "DeadlineExceeded"
    assert _conditions(job)["Failed"]["message"] == "Job was active longer than specified deadline"
    assert job["status"]["failed"] == 1
    eventually(lambda: not _pods(sim, "slow"), what="the running pod's deletion")


def test_suspend_and_resume(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("later", suspend=True))
    job = eventually(_with(sim, "later", "Suspended"))
    suspended = _conditions(job)["Suspended"]
    assert suspended["status"] == "True" and suspended["reason"] == "JobSuspended"
    assert "startTime" not in job["status"] and not _pods(sim, "later")
    sim.request("PATCH", f"{JOBS}/later", {"spec": {"suspend": False}},
                content_type="application/merge-patch+json")
    job = eventually(_finished(sim, "later"))
    resumed = _conditions(job)["Suspended"]
    assert resumed["status"] == "False" and resumed["reason"] == "JobResumed" and resumed["message"] == "Job resumed"


def test_suspending_deletes_running_pods(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("pause", {"kapi.dev/simulate-run-seconds": "3600"}))
    eventually(lambda: _get(sim, "pause")["status"].get("active") == 1, what="an active pod")
    sim.request("PATCH", f"{JOBS}/pause", {"spec": {"suspend": True}},
                content_type="application/merge-patch+json")
    eventually(lambda: not _pods(sim, "pause"), what="the pod's deletion")
    job = eventually(_with(sim, "pause", "Suspended"))
    assert "active" not in job["status"] and "failed" not in job["status"]


def test_ttl_after_finished(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("brief", ttlSecondsAfterFinished=60))
    eventually(_finished(sim, "brief"))
    sim.advance(30)
    assert sim.request("GET", f"{JOBS}/brief")[0] == 200
    sim.advance(31)
    eventually(lambda: sim.request("GET", f"{JOBS}/brief")[0] == 404, what="the job's deletion")
    eventually(lambda: not _pods(sim, "brief"), what="its pods' collection")


def test_kubectl_create_job_and_wait(sim: RunningServer) -> None:
    kubectl = ["/usr/bin/kubectl", "--kubeconfig", str(sim.kubeconfig)]
    subprocess.run([*kubectl, "create", "job", "x", "--image", "busybox"], check=True, capture_output=True)
    done = subprocess.run([*kubectl, "wait", "--for=condition=complete", "job/x", "--timeout=20s"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "condition met" in done.stdout


def test_deleting_a_running_job_frees_its_pods(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("gone", {"kapi.dev/simulate-run-seconds": "3600"}, parallelism=2, completions=2))
    eventually(lambda: _get(sim, "gone")["status"].get("active") == 2, what="two active pods")
    for pod in _pods(sim, "gone"):
        assert "batch.kubernetes.io/job-tracking" in pod["metadata"]["finalizers"]
    assert sim.request("DELETE", f"{JOBS}/gone")[0] == 200
    eventually(lambda: not _pods(sim, "gone"), what="the pods' removal (tracking finalizer released)")


def test_foreground_deletion(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(_job("fg", {"kapi.dev/simulate-run-seconds": "3600"}))
    eventually(lambda: _get(sim, "fg")["status"].get("active") == 1, what="an active pod")
    sim.request("DELETE", f"{JOBS}/fg", {"kind": "DeleteOptions", "apiVersion": "v1",
                                         "propagationPolicy": "Foreground"})
    eventually(lambda: sim.request("GET", f"{JOBS}/fg")[0] == 404 and not _pods(sim, "fg"),
               what="the job and its pod gone")
