"""Built-in kinds' Table columns and cells, as kube-apiserver 1.32's printers compute them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from kapi.registry.table import to_table
from kapi.scheme.builtin_printers import PRINTER_COLUMNS, complete
from kapi.scheme.definitions import VersionDef

NOW = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
Obj = dict[str, Any]


def ago(**delta: float) -> str:
    return (NOW - timedelta(**delta)).strftime("%Y-%m-%dT%H:%M:%SZ")


def obj(name: str, **fields: Any) -> Obj:
    metadata = {"name": name, "namespace": "default", "creationTimestamp": ago(days=2), **fields.pop("meta", {})}
    return {"metadata": metadata, **fields}


def render(key: tuple[str, str], item: Obj) -> tuple[list[str], list[Any]]:
    """Column names and the row's cells, through the Table the server serves."""
    columns = PRINTER_COLUMNS[key]
    if complete(columns):  # the table must add neither Name nor Age: see test_complete_lists_through_the_table
        return [c.name for c in columns], [c.compute(item, NOW) for c in columns]  # type: ignore[misc]
    table = to_table(VersionDef(name="v1", printer_columns=columns), [item], now=NOW)
    return [c["name"] for c in table["columnDefinitions"]], table["rows"][0]["cells"]


def container(name: str = "app", image: str = "nginx:1.25") -> Obj:
    return {"name": name, "image": image}


def running(name: str = "app", ready: bool = True, restarts: int = 0, finished: str | None = None) -> Obj:
    status: Obj = {"name": name, "ready": ready, "restartCount": restarts, "state": {"running": {"startedAt": ago(hours=1)}}}
    if finished:
        status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": finished}}
    return status


def pod(name: str, status: Obj | None, containers: int = 1, **fields: Any) -> Obj:
    spec = {"containers": [container(f"c{i}") for i in range(containers)], **fields.pop("spec", {})}
    item = obj(name, spec=spec, **fields)
    if status is not None:
        item["status"] = status
    return item


POD_NAMES = ["Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]

POD_CASES = {
    "running with a restart 5m ago": (
        pod("web", {"phase": "Running", "podIP": "10.0.0.5", "podIPs": [{"ip": "10.0.0.5"}],
                    "containerStatuses": [running(restarts=1, finished=ago(minutes=5))]},
            spec={"nodeName": "node-1"}),
        ["web", "1/1", "Running", "1 (5m ago)", "2d", "10.0.0.5", "node-1", "<none>", "<none>"]),
    "crash looping": (
        pod("crash", {"phase": "Running", "containerStatuses": [{
            "name": "c0", "ready": False, "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error", "finishedAt": ago(seconds=30)}}}]}),
        ["crash", "0/1", "CrashLoopBackOff", "4 (30s ago)", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "terminating": (
        pod("going", {"phase": "Running", "containerStatuses": [running()]},
            meta={"deletionTimestamp": ago(seconds=10)}),
        ["going", "1/1", "Terminating", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "completed": (
        pod("done", {"phase": "Succeeded", "containerStatuses": [{
            "name": "c0", "ready": False, "restartCount": 0,
            "state": {"terminated": {"exitCode": 0, "reason": "Completed", "finishedAt": ago(minutes=1)}}}]}),
        ["done", "0/1", "Completed", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "no status yet": (
        pod("new", None),
        ["new", "0/1", "Pending", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "exit code without a reason": (
        pod("oom", {"phase": "Running", "containerStatuses": [{
            "name": "c0", "restartCount": 0, "state": {"terminated": {"exitCode": 137}}}]}),
        ["oom", "0/1", "ExitCode:137", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "a completed container next to a running one": (
        pod("mixed", {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}], "containerStatuses": [
            {"name": "c0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}}, running("c1")]},
            containers=2),
        ["mixed", "1/2", "Running", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "second init container running": (
        pod("init", {"phase": "Pending", "initContainerStatuses": [
            {"name": "i0", "state": {"terminated": {"exitCode": 0, "reason": "Completed"}}},
            {"name": "i1", "state": {"running": {}}}]},
            spec={"initContainers": [container("i0"), container("i1")]}),
        ["init", "0/1", "Init:1/2", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "init container crash looping": (
        pod("initcrash", {"phase": "Pending", "initContainerStatuses": [
            {"name": "i0", "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
             "lastState": {"terminated": {"exitCode": 1, "finishedAt": ago(minutes=2)}}}]},
            spec={"initContainers": [container("i0")]}),
        ["initcrash", "0/1", "Init:CrashLoopBackOff", "3 (2m ago)", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "a started sidecar counts as a container": (
        pod("sidecar", {"phase": "Running", "conditions": [{"type": "Initialized", "status": "True"}],
                        "initContainerStatuses": [{"name": "proxy", "ready": True, "started": True,
                                                   "state": {"running": {}}}],
                        "containerStatuses": [running("c0")]},
            spec={"initContainers": [{**container("proxy"), "restartPolicy": "Always"}]}),
        ["sidecar", "2/2", "Running", "0", "2d", "<none>", "<none>", "<none>", "<none>"]),
    "scheduling gated, with readiness gates": (
        pod("gated", {"phase": "Pending", "nominatedNodeName": "node-2", "conditions": [
            {"type": "PodScheduled", "status": "False", "reason": "SchedulingGated"},
            {"type": "example.com/lb", "status": "True"}]},
            spec={"readinessGates": [{"conditionType": "example.com/lb"}, {"conditionType": "example.com/dns"}]}),
        ["gated", "0/1", "SchedulingGated", "0", "2d", "<none>", "<none>", "node-2", "1/2"]),
}


@pytest.mark.parametrize("item, cells", POD_CASES.values(), ids=POD_CASES.keys())
def test_pods(item: Obj, cells: list[Any]) -> None:
    assert render(("", "pods"), item) == (POD_NAMES, cells)


def test_pod_column_definitions_are_kubes() -> None:
    table = to_table(VersionDef(name="v1", printer_columns=PRINTER_COLUMNS[("", "pods")]), [], now=NOW)
    definitions = {c["name"]: c for c in table["columnDefinitions"]}
    assert [c["priority"] for c in table["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert definitions["Restarts"]["type"] == "string"
    assert definitions["Age"]["type"] == "string"
    assert definitions["Age"]["description"].startswith("CreationTimestamp is a timestamp")
    assert definitions["Ready"]["description"] == "The aggregate readiness state of this pod for accepting traffic."
    assert definitions["Node"]["description"].startswith("NodeName indicates in which node this pod is scheduled.")


def template(*containers: Obj) -> Obj:
    return {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": list(containers)}}


WEB_SELECTOR = {"matchLabels": {"app": "web"}}

SERVICES = {
    "node port": (
        obj("web", spec={"type": "NodePort", "clusterIP": "10.96.0.10", "clusterIPs": ["10.96.0.10"],
                         "selector": {"app": "web", "tier": "front"},
                         "ports": [{"port": 80, "nodePort": 30080, "protocol": "TCP"}]}),
        ["web", "NodePort", "10.96.0.10", "<none>", "80:30080/TCP", "2d", "app=web,tier=front"]),
    "cluster IP without a selector": (
        obj("db", spec={"type": "ClusterIP", "clusterIPs": ["10.96.0.11"],
                        "ports": [{"port": 5432, "protocol": "TCP"}, {"port": 53, "protocol": "UDP"}]}),
        ["db", "ClusterIP", "10.96.0.11", "<none>", "5432/TCP,53/UDP", "2d", "<none>"]),
    "load balancer pending": (
        obj("lb", spec={"type": "LoadBalancer", "clusterIPs": ["10.96.0.12"], "selector": {"app": "web"},
                        "ports": [{"port": 443, "nodePort": 31443, "protocol": "TCP"}]}),
        ["lb", "LoadBalancer", "10.96.0.12", "<pending>", "443:31443/TCP", "2d", "app=web"]),
    "load balancer with ingress and external IPs": (
        obj("lb2", spec={"type": "LoadBalancer", "clusterIPs": ["10.96.0.13"], "externalIPs": ["192.0.2.9"],
                         "ports": [{"port": 80}]},
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.7"}, {"hostname": "lb.example.com"}]}}),
        ["lb2", "LoadBalancer", "10.96.0.13", "203.0.113.7,lb.example.com,192.0.2.9", "80/TCP", "2d", "<none>"]),
    "external name, headless": (
        obj("ext", spec={"type": "ExternalName", "externalName": "db.example.com", "clusterIP": "None"}),
        ["ext", "ExternalName", "None", "db.example.com", "<none>", "2d", "<none>"]),
    "external IPs, type defaulted": (
        obj("plain", spec={"clusterIP": "10.96.0.14", "externalIPs": ["192.0.2.1", "192.0.2.2"],
                           "ports": [{"port": 8080, "protocol": "SCTP"}]}),
        ["plain", "ClusterIP", "10.96.0.14", "192.0.2.1,192.0.2.2", "8080/SCTP", "2d", "<none>"]),
}


@pytest.mark.parametrize("item, cells", SERVICES.values(), ids=SERVICES.keys())
def test_services(item: Obj, cells: list[Any]) -> None:
    names = ["Name", "Type", "Cluster-IP", "External-IP", "Port(s)", "Age", "Selector"]
    assert render(("", "services"), item) == (names, cells)


def job(name: str, spec: Obj, status: Obj, **fields: Any) -> Obj:
    base = {"selector": {"matchLabels": {"batch.kubernetes.io/controller-uid": "abc"}},
            "template": template(container("pi", "perl:5.34"))}
    return obj(name, spec={**base, **spec}, status=status, **fields)


JOB_NAMES = ["Name", "Status", "Completions", "Duration", "Age", "Containers", "Images", "Selector"]
JOB_WIDE = ["pi", "perl:5.34", "batch.kubernetes.io/controller-uid=abc"]

JOBS = {
    "complete": (
        job("pi", {"completions": 1, "parallelism": 1},
            {"succeeded": 1, "startTime": ago(minutes=10), "completionTime": ago(minutes=9, seconds=25),
             "conditions": [{"type": "SuccessCriteriaMet", "status": "True"}, {"type": "Complete", "status": "True"}]}),
        ["pi", "Complete", "1/1", "35s", "2d", *JOB_WIDE]),
    "running in parallel": (
        job("par", {"parallelism": 3}, {"active": 3, "startTime": ago(minutes=3, seconds=2)}),
        ["par", "Running", "0/1 of 3", "3m2s", "2d", *JOB_WIDE]),
    "failed": (
        job("bad", {"completions": 5}, {"failed": 6, "succeeded": 2, "startTime": ago(hours=2),
                                        "completionTime": ago(hours=1),
                                        "conditions": [{"type": "Failed", "status": "True"}]}),
        ["bad", "Failed", "2/5", "60m", "2d", *JOB_WIDE]),
    "suspended, never started": (
        job("wait", {"completions": 1, "suspend": True},
            {"conditions": [{"type": "Suspended", "status": "True"}]}),
        ["wait", "Suspended", "0/1", "", "2d", *JOB_WIDE]),
    "terminating": (
        job("gone", {"completions": 1}, {"startTime": ago(seconds=20)}, meta={"deletionTimestamp": ago(seconds=1)}),
        ["gone", "Terminating", "0/1", "20s", "2d", *JOB_WIDE]),
}


@pytest.mark.parametrize("item, cells", JOBS.values(), ids=JOBS.keys())
def test_jobs(item: Obj, cells: list[Any]) -> None:
    assert render(("batch", "jobs"), item) == (JOB_NAMES, cells)


def hpa(spec: Obj, status: Obj | None = None, api_version: str = "autoscaling/v2") -> Obj:
    base = {"scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}, "maxReplicas": 10}
    return {"apiVersion": api_version, **obj("web", spec={**base, **spec}, status=status or {"currentReplicas": 3})}


def cpu(percent: int) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization",
                                                                         "averageUtilization": percent}}}


def cpu_now(percent: int) -> Obj:
    return {"type": "Resource", "resource": {"name": "cpu", "current": {"averageUtilization": percent}}}


HPAS = {
    "v2 with a current value": (
        hpa({"minReplicas": 2, "metrics": [cpu(80)]}, {"currentReplicas": 3, "currentMetrics": [cpu_now(50)]}),
        "cpu: 50%/80%", "2"),
    "v2 not yet measured": (hpa({"minReplicas": 1, "metrics": [cpu(80)]}), "cpu: <unknown>/80%", "1"),
    "v2 without metrics gets kube's default": (hpa({}), "cpu: <unknown>/80%", "1"),
    "v1": (hpa({"minReplicas": 2, "targetCPUUtilizationPercentage": 70},
               {"currentReplicas": 3, "currentCPUUtilizationPercentage": 41}, "autoscaling/v1"),
           "cpu: 41%/70%", "2"),
    "v2, more than two metrics": (
        hpa({"metrics": [
            cpu(80),
            {"type": "Resource", "resource": {"name": "memory", "target": {"type": "AverageValue",
                                                                           "averageValue": "200Mi"}}},
            {"type": "Pods", "pods": {"metric": {"name": "qps"}, "target": {"type": "AverageValue",
                                                                            "averageValue": "10"}}}]},
            {"currentReplicas": 3, "currentMetrics": [
                cpu_now(12), {"type": "Resource", "resource": {"name": "memory", "current": {"averageValue": "95Mi"}}}]}),
        "cpu: 12%/80%, memory: 95Mi/200Mi + 1 more...", "1"),
    "v2 object and external metrics": (
        hpa({"metrics": [
            {"type": "Object", "object": {"metric": {"name": "rps"}, "describedObject": {"kind": "Ingress"},
                                          "target": {"type": "Value", "value": "2k"}}},
            {"type": "External", "external": {"metric": {"name": "queue"},
                                              "target": {"type": "AverageValue", "averageValue": "30"}}}]},
            {"currentReplicas": 3, "currentMetrics": [{"type": "Object", "object": {"current": {"value": "1500"}}}]}),
        "1500/2k, <unknown>/30 (avg)", "1"),
}


@pytest.mark.parametrize("item, targets, minimum", HPAS.values(), ids=HPAS.keys())
def test_horizontal_pod_autoscalers(item: Obj, targets: str, minimum: str) -> None:
    names = ["Name", "Reference", "Targets", "MinPods", "MaxPods", "Replicas", "Age"]
    assert render(("autoscaling", "horizontalpodautoscalers"), item) == (
        names, ["web", "Deployment/web", targets, minimum, 10, 3, "2d"])


WORKLOADS = {
    "deployment 2/3": (
        ("apps", "deployments"),
        obj("web", spec={"replicas": 3, "selector": {"matchLabels": {"app": "web"}, "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["front", "edge"]}]},
            "template": template(container("nginx"), container("log", "fluent:2"))},
            status={"replicas": 3, "readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2}),
        ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
        ["web", "2/3", 3, 2, "2d", "nginx,log", "nginx:1.25,fluent:2", "app=web,tier in (edge,front)"]),
    "deployment, replicas defaulted, no status": (
        ("apps", "deployments"),
        obj("one", spec={"selector": WEB_SELECTOR, "template": template(container())}),
        ["Name", "Ready", "Up-to-date", "Available", "Age", "Containers", "Images", "Selector"],
        ["one", "0/1", 0, 0, "2d", "app", "nginx:1.25", "app=web"]),
    "replica set": (
        ("apps", "replicasets"),
        obj("web-5d9", spec={"replicas": 2, "selector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
                             "template": template(container())}, status={"replicas": 2, "readyReplicas": 1}),
        ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"],
        ["web-5d9", 2, 2, 1, "2d", "app", "nginx:1.25", "app"]),
    "replication controller": (
        ("", "replicationcontrollers"),
        obj("rc", spec={"replicas": 2, "selector": {"app": "web"}, "template": template(container())},
            status={"replicas": 2, "readyReplicas": 2}),
        ["Name", "Desired", "Current", "Ready", "Age", "Containers", "Images", "Selector"],
        ["rc", 2, 2, 2, "2d", "app", "nginx:1.25", "app=web"]),
    "stateful set": (
        ("apps", "statefulsets"),
        obj("db", spec={"replicas": 3, "selector": WEB_SELECTOR, "template": template(container("pg", "postgres:16"))},
            status={"readyReplicas": 1}),
        ["Name", "Ready", "Age", "Containers", "Images"],
        ["db", "1/3", "2d", "pg", "postgres:16"]),
    "daemon set": (
        ("apps", "daemonsets"),
        obj("agent", spec={"selector": WEB_SELECTOR, "template": {"spec": {
            "nodeSelector": {"kubernetes.io/os": "linux"}, "containers": [container("agent", "agent:1")]}}},
            status={"desiredNumberScheduled": 3, "currentNumberScheduled": 3, "numberReady": 2,
                    "updatedNumberScheduled": 3, "numberAvailable": 2}),
        ["Name", "Desired", "Current", "Ready", "Up-to-date", "Available", "Node Selector", "Age", "Containers",
         "Images", "Selector"],
        ["agent", 3, 3, 2, 3, 2, "kubernetes.io/os=linux", "2d", "agent", "agent:1", "app=web"]),
    "controller revision": (
        ("apps", "controllerrevisions"),
        obj("db-7c9", revision=2, meta={"ownerReferences": [
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "db", "uid": "u", "controller": True}]}),
        ["Name", "Controller", "Revision", "Age"],
        ["db-7c9", "statefulset.apps/db", 2, "2d"]),
    "cron job": (
        ("batch", "cronjobs"),
        obj("tick", spec={"schedule": "*/5 * * * *", "suspend": False, "jobTemplate": {"spec": {
            "template": template(container("tick", "busybox:1.36"))}}},
            status={"active": [{"name": "tick-1"}], "lastScheduleTime": ago(minutes=3)}),
        ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers", "Images",
         "Selector"],
        ["tick", "*/5 * * * *", "<none>", "False", 1, "3m", "2d", "tick", "busybox:1.36", "<none>"]),
    "cron job in a time zone, never run": (
        ("batch", "cronjobs"),
        obj("nightly", spec={"schedule": "0 3 * * *", "timeZone": "Europe/Paris", "suspend": True,
                             "jobTemplate": {"spec": {"template": template()}}}),
        ["Name", "Schedule", "Timezone", "Suspend", "Active", "Last Schedule", "Age", "Containers", "Images",
         "Selector"],
        ["nightly", "0 3 * * *", "Europe/Paris", "True", 0, "<none>", "2d", "", "", "<none>"]),
    "pod disruption budget": (
        ("policy", "poddisruptionbudgets"),
        obj("pdb", spec={"minAvailable": "50%", "selector": WEB_SELECTOR}, status={"disruptionsAllowed": 1}),
        ["Name", "Min Available", "Max Unavailable", "Allowed Disruptions", "Age"],
        ["pdb", "50%", "N/A", 1, "2d"]),
}


@pytest.mark.parametrize("key, item, names, cells", WORKLOADS.values(), ids=WORKLOADS.keys())
def test_workloads(key: tuple[str, str], item: Obj, names: list[str], cells: list[Any]) -> None:
    assert render(key, item) == (names, cells)


CORE = {
    "endpoints": (
        ("", "endpoints"),
        obj("web", subsets=[{"addresses": [{"ip": "10.0.0.1"}, {"ip": "10.0.0.2"}, {"ip": "fd00::3"}],
                             "ports": [{"port": 8080}, {"port": 9090}]}]),
        ["Name", "Endpoints", "Age"],
        ["web", "10.0.0.1:8080,10.0.0.2:8080,[fd00::3]:8080 + 3 more...", "2d"]),
    "endpoints without subsets": (("", "endpoints"), obj("none"), ["Name", "Endpoints", "Age"], ["none", "<none>", "2d"]),
    "node": (
        ("", "nodes"),
        obj("node-1", meta={"labels": {"node-role.kubernetes.io/control-plane": "", "kubernetes.io/role": "infra"}},
            spec={"unschedulable": True},
            status={"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": "True"}],
                    "addresses": [{"type": "InternalIP", "address": "172.18.0.2"}, {"type": "Hostname",
                                                                                     "address": "node-1"}],
                    "nodeInfo": {"kubeletVersion": "v1.32.0", "osImage": "Debian GNU/Linux 12",
                                 "kernelVersion": "6.8.0", "containerRuntimeVersion": "containerd://1.7.24"}}),
        ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
         "Container-Runtime"],
        ["node-1", "Ready,SchedulingDisabled", "control-plane,infra", "2d", "v1.32.0", "172.18.0.2", "<none>",
         "Debian GNU/Linux 12", "6.8.0", "containerd://1.7.24"]),
    "node without status": (
        ("", "nodes"), obj("bare"),
        ["Name", "Status", "Roles", "Age", "Version", "Internal-IP", "External-IP", "OS-Image", "Kernel-Version",
         "Container-Runtime"],
        ["bare", "Unknown", "<none>", "2d", "", "<none>", "<none>", "<unknown>", "<unknown>", "<unknown>"]),
    "persistent volume": (
        ("", "persistentvolumes"),
        obj("pv-1", spec={"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteMany", "ReadWriteOnce"],
                          "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                          "claimRef": {"namespace": "default", "name": "data"}},
            status={"phase": "Bound"}),
        ["Name", "Capacity", "Access Modes", "Reclaim Policy", "Status", "Claim", "StorageClass",
         "VolumeAttributesClass", "Reason", "Age", "VolumeMode"],
        ["pv-1", "10Gi", "RWO,RWX", "Delete", "Bound", "default/data", "standard", "<unset>", "", "2d",
         "Filesystem"]),
    "persistent volume claim, pending": (
        ("", "persistentvolumeclaims"),
        obj("data", spec={"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}},
                          "storageClassName": "fast", "volumeMode": "Block"}),
        ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age",
         "VolumeMode"],
        ["data", "Pending", "", "", "", "fast", "<unset>", "2d", "Block"]),
    "persistent volume claim, bound": (
        ("", "persistentvolumeclaims"),
        obj("data", spec={"volumeName": "pv-1", "storageClassName": "fast"},
            status={"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}),
        ["Name", "Status", "Volume", "Capacity", "Access Modes", "StorageClass", "VolumeAttributesClass", "Age",
         "VolumeMode"],
        ["data", "Bound", "pv-1", "10Gi", "RWO", "fast", "<unset>", "2d", "Filesystem"]),
    "resource quota": (
        ("", "resourcequotas"),
        obj("quota", status={"hard": {"pods": "10", "requests.cpu": "2", "limits.memory": "2Gi", "limits.cpu": "4"},
                             "used": {"pods": "3", "requests.cpu": "500m", "limits.cpu": "1"}}),
        ["Name", "Request", "Limit", "Age"],
        ["quota", "pods: 3/10, requests.cpu: 500m/2", "limits.cpu: 1/4, limits.memory: 0/2Gi", "2d"]),
    "service account": (("", "serviceaccounts"), obj("default", secrets=[{"name": "tok"}]),
                        ["Name", "Secrets", "Age"], ["default", 1, "2d"]),
    "config map": (("", "configmaps"), obj("cm", data={"a": "1", "b": "2"}, binaryData={"c": "AA=="}),
                   ["Name", "Data", "Age"], ["cm", 3, "2d"]),
    "secret": (("", "secrets"), obj("s", type="Opaque", data={"k": "dg=="}),
               ["Name", "Type", "Data", "Age"], ["s", "Opaque", 1, "2d"]),
    "namespace": (("", "namespaces"), obj("team-a", status={"phase": "Terminating"}),
                  ["Name", "Status", "Age"], ["team-a", "Terminating", "2d"]),
}


@pytest.mark.parametrize("key, item, names, cells", CORE.values(), ids=CORE.keys())
def test_core_kinds(key: tuple[str, str], item: Obj, names: list[str], cells: list[Any]) -> None:
    assert render(key, item) == (names, cells)


EVENT_NAMES = ["Last Seen", "Type", "Reason", "Object", "Subobject", "Source", "Message", "First Seen", "Count",
               "Name"]

EVENTS = {
    "core event": (
        ("", "events"),
        obj("web.17c", type="Warning", reason="BackOff", message="Back-off restarting failed container\n",
            involvedObject={"kind": "Pod", "name": "web", "fieldPath": "spec.containers{app}"},
            source={"component": "kubelet", "host": "node-1"}, count=6,
            firstTimestamp=ago(hours=3), lastTimestamp=ago(minutes=2)),
        ["2m", "Warning", "BackOff", "pod/web", "spec.containers{app}", "kubelet, node-1",
         "Back-off restarting failed container", "3h", 6, "web.17c"]),
    "core event from the new API, in a series": (
        ("", "events"),
        obj("web.18d", type="Normal", reason="Pulled", message="pulled", eventTime="2024-05-01T11:00:00.000000Z",
            involvedObject={"kind": "Node", "name": ""}, reportingComponent="kubelet", reportingInstance="node-1",
            series={"count": 4, "lastObservedTime": ago(seconds=40)}),
        ["40s", "Normal", "Pulled", "node", "", "kubelet, node-1", "pulled", "60m", 4, "web.18d"]),
    "events.k8s.io event": (
        ("events.k8s.io", "events"),
        obj("web.19e", type="Normal", reason="Scheduled", note="Successfully assigned default/web to node-1",
            regarding={"kind": "Pod", "name": "web"}, reportingController="default-scheduler",
            reportingInstance="default-scheduler-node-1", eventTime=ago(minutes=7)),
        ["7m", "Normal", "Scheduled", "pod/web", "", "default-scheduler, default-scheduler-node-1",
         "Successfully assigned default/web to node-1", "7m", 1, "web.19e"]),
}


@pytest.mark.parametrize("key, item, cells", EVENTS.values(), ids=EVENTS.keys())
def test_events(key: tuple[str, str], item: Obj, cells: list[Any]) -> None:
    names, shown = render(key, item)
    assert (names, shown) == (EVENT_NAMES, cells)
    priorities = [c.priority for c in PRINTER_COLUMNS[key]]
    # `kubectl get events` shows LAST SEEN TYPE REASON OBJECT MESSAGE.
    assert [n for n, p in zip(names, priorities) if p == 0] == ["Last Seen", "Type", "Reason", "Object", "Message"]


OTHERS = {
    "ingress": (
        ("networking.k8s.io", "ingresses"),
        obj("web", spec={"ingressClassName": "nginx", "tls": [{"hosts": ["a.example.com"]}], "rules": [
            {"host": "a.example.com"}, {}, {"host": "b.example.com"}, {"host": "c.example.com"},
            {"host": "d.example.com"}]},
            status={"loadBalancer": {"ingress": [{"ip": "203.0.113.10"}]}}),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"],
        ["web", "nginx", "a.example.com,b.example.com,c.example.com + 2 more...", "203.0.113.10", "80, 443", "2d"]),
    "ingress without class or hosts": (
        ("networking.k8s.io", "ingresses"), obj("bare", spec={"defaultBackend": {}}),
        ["Name", "Class", "Hosts", "Address", "Ports", "Age"], ["bare", "<none>", "*", "", "80", "2d"]),
    "ingress class": (
        ("networking.k8s.io", "ingressclasses"),
        obj("nginx", spec={"controller": "k8s.io/ingress-nginx",
                           "parameters": {"apiGroup": "k8s.example.com", "kind": "IngressParameters", "name": "p"}}),
        ["Name", "Controller", "Parameters", "Age"],
        ["nginx", "k8s.io/ingress-nginx", "IngressParameters.k8s.example.com/p", "2d"]),
    "network policy": (
        ("networking.k8s.io", "networkpolicies"), obj("deny", spec={"podSelector": {}}),
        ["Name", "Pod-Selector", "Age"], ["deny", "<none>", "2d"]),
    "role binding": (
        ("rbac.authorization.k8s.io", "rolebindings"),
        obj("rb", roleRef={"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "view"},
            subjects=[{"kind": "User", "name": "alice"}, {"kind": "Group", "name": "devs"},
                      {"kind": "ServiceAccount", "name": "ci", "namespace": "tools"},
                      {"kind": "User", "name": "bob"}]),
        ["Name", "Role", "Age", "Users", "Groups", "ServiceAccounts"],
        ["rb", "ClusterRole/view", "2d", "alice, bob", "devs", "tools/ci"]),
    "endpoint slice": (
        ("discovery.k8s.io", "endpointslices"),
        obj("web-abc", addressType="IPv4", ports=[{"port": 8080}, {"name": "metrics"}, {}],
            endpoints=[{"addresses": ["10.0.0.1"]}, {"addresses": ["10.0.0.2"]}]),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"],
        ["web-abc", "IPv4", "8080,metrics,*", "10.0.0.1,10.0.0.2", "2d"]),
    "empty endpoint slice": (
        ("discovery.k8s.io", "endpointslices"), obj("none", addressType="IPv6"),
        ["Name", "AddressType", "Ports", "Endpoints", "Age"], ["none", "IPv6", "<unset>", "<unset>", "2d"]),
    "priority class": (
        ("scheduling.k8s.io", "priorityclasses"), obj("system-node-critical", value=2000001000),
        ["Name", "Value", "Global-Default", "Age", "PreemptionPolicy"],
        ["system-node-critical", 2000001000, False, "2d", "PreemptLowerPriority"]),
    "runtime class": (("node.k8s.io", "runtimeclasses"), obj("gvisor", handler="runsc"),
                      ["Name", "Handler", "Age"], ["gvisor", "runsc", "2d"]),
    "certificate signing request": (
        ("certificates.k8s.io", "certificatesigningrequests"),
        obj("csr-1", spec={"signerName": "kubernetes.io/kube-apiserver-client", "username": "alice",
                           "expirationSeconds": 86400},
            status={"conditions": [{"type": "Approved", "status": "True"}], "certificate": "LS0t"}),
        ["Name", "Age", "SignerName", "Requestor", "RequestedDuration", "Condition"],
        ["csr-1", "2d", "kubernetes.io/kube-apiserver-client", "alice", "24h", "Approved,Issued"]),
    "lease": (("coordination.k8s.io", "leases"), obj("kube-scheduler", spec={"holderIdentity": "node-1_abc"}),
              ["Name", "Holder", "Age"], ["kube-scheduler", "node-1_abc", "2d"]),
    "flow schema": (
        ("flowcontrol.apiserver.k8s.io", "flowschemas"),
        obj("system-leader-election", spec={"priorityLevelConfiguration": {"name": "leader-election"},
                                            "matchingPrecedence": 100, "distinguisherMethod": {"type": "ByUser"}},
            status={"conditions": [{"type": "Dangling", "status": "False"}]}),
        ["Name", "PriorityLevel", "MatchingPrecedence", "DistinguisherMethod", "Age", "MissingPL"],
        ["system-leader-election", "leader-election", 100, "ByUser", "2d", "False"]),
    "priority level": (
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"),
        obj("workload-low", spec={"type": "Limited", "limited": {"nominalConcurrencyShares": 100, "limitResponse": {
            "type": "Queue", "queuing": {"queues": 128, "handSize": 6, "queueLengthLimit": 50}}}}),
        ["Name", "Type", "NominalConcurrencyShares", "Queues", "HandSize", "QueueLengthLimit", "Age"],
        ["workload-low", "Limited", 100, 128, 6, 50, "2d"]),
    "exempt priority level": (
        ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"), obj("exempt", spec={"type": "Exempt"}),
        ["Name", "Type", "NominalConcurrencyShares", "Queues", "HandSize", "QueueLengthLimit", "Age"],
        ["exempt", "Exempt", "<none>", "<none>", "<none>", "<none>", "2d"]),
    "csi driver": (
        ("storage.k8s.io", "csidrivers"),
        obj("ebs.csi.aws.com", spec={"attachRequired": True, "tokenRequests": [{"audience": "sts"}],
                                     "volumeLifecycleModes": ["Persistent", "Ephemeral"]}),
        ["Name", "AttachRequired", "PodInfoOnMount", "StorageCapacity", "TokenRequests", "RequiresRepublish",
         "Modes", "Age"],
        ["ebs.csi.aws.com", True, False, False, "sts", False, "Persistent,Ephemeral", "2d"]),
    "volume attachment": (
        ("storage.k8s.io", "volumeattachments"),
        obj("csi-123", spec={"attacher": "ebs.csi.aws.com", "nodeName": "node-1",
                             "source": {"persistentVolumeName": "pv-1"}}, status={"attached": True}),
        ["Name", "Attacher", "PV", "Node", "Attached", "Age"],
        ["csi-123", "ebs.csi.aws.com", "pv-1", "node-1", True, "2d"]),
}


@pytest.mark.parametrize("key, item, names, cells", OTHERS.values(), ids=OTHERS.keys())
def test_other_kinds(key: tuple[str, str], item: Obj, names: list[str], cells: list[Any]) -> None:
    assert render(key, item) == (names, cells)


COMPLETE = {
    "default storage class": (
        ("storage.k8s.io", "storageclasses"),
        obj("standard", provisioner="rancher.io/local-path", volumeBindingMode="WaitForFirstConsumer",
            meta={"annotations": {"storageclass.kubernetes.io/is-default-class": "true"}}),
        ["Name", "Provisioner", "ReclaimPolicy", "VolumeBindingMode", "AllowVolumeExpansion", "Age"],
        ["standard (default)", "rancher.io/local-path", "Delete", "WaitForFirstConsumer", False, "2d"]),
    "role": (
        ("rbac.authorization.k8s.io", "roles"),
        obj("reader", meta={"creationTimestamp": "2024-04-29T12:00:00.000000+02:00"}),
        ["Name", "Created At"], ["reader", "2024-04-29T10:00:00Z"]),
    "limit range": (("", "limitranges"), obj("limits"), ["Name", "Created At"], ["limits", "2024-04-29T12:00:00Z"]),
    "pod template": (
        ("", "podtemplates"), obj("tpl", template=template(container(), container("side", "envoy:1"))),
        ["Name", "Containers", "Images", "Pod Labels"], ["tpl", "app,side", "nginx:1.25,envoy:1", "app=web"]),
}


@pytest.mark.parametrize("key, item, names, cells", COMPLETE.values(), ids=COMPLETE.keys())
def test_kinds_with_their_own_name_column(key: tuple[str, str], item: Obj, names: list[str],
                                         cells: list[Any]) -> None:
    assert complete(PRINTER_COLUMNS[key])
    assert render(key, item) == (names, cells)


def test_complete_lists_through_the_table() -> None:
    columns = PRINTER_COLUMNS[("rbac.authorization.k8s.io", "roles")]
    table = to_table(VersionDef(name="v1", printer_columns=columns), [obj("reader")], now=NOW)
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Created At"]
    assert table["columnDefinitions"][1]["type"] == "date"


EXPECTED_KINDS = {
    ("", k) for k in ("pods", "services", "endpoints", "nodes", "persistentvolumes", "persistentvolumeclaims",
                      "replicationcontrollers", "podtemplates", "resourcequotas", "limitranges", "serviceaccounts",
                      "configmaps", "secrets", "events", "namespaces")
} | {("apps", k) for k in ("deployments", "replicasets", "statefulsets", "daemonsets", "controllerrevisions")} | {
    ("batch", "jobs"), ("batch", "cronjobs"), ("autoscaling", "horizontalpodautoscalers"),
    ("networking.k8s.io", "ingresses"), ("networking.k8s.io", "ingressclasses"),
    ("networking.k8s.io", "networkpolicies"), ("policy", "poddisruptionbudgets"),
    ("rbac.authorization.k8s.io", "roles"), ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"), ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("storage.k8s.io", "storageclasses"), ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "volumeattachments"),
    ("discovery.k8s.io", "endpointslices"), ("scheduling.k8s.io", "priorityclasses"),
    ("node.k8s.io", "runtimeclasses"), ("certificates.k8s.io", "certificatesigningrequests"),
    ("coordination.k8s.io", "leases"), ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    ("flowcontrol.apiserver.k8s.io", "prioritylevelconfigurations"), ("events.k8s.io", "events"),
}


def test_the_catalogue_is_covered() -> None:
    assert EXPECTED_KINDS <= set(PRINTER_COLUMNS)


@pytest.mark.parametrize("key", sorted(PRINTER_COLUMNS), ids=lambda k: f"{k[0] or 'core'}/{k[1]}")
def test_definitions_are_well_formed_and_cells_never_raise(key: tuple[str, str]) -> None:
    columns = PRINTER_COLUMNS[key]
    names = [c.name for c in columns]
    assert len(names) == len(set(names))
    assert all(c.type in ("string", "integer", "boolean", "date") and c.compute is not None for c in columns)
    assert all(c.type == "string" for c in columns if c.name == "Age")
    without_age = {("", "podtemplates"), ("", "events"), ("events.k8s.io", "events"),
                   ("storage.k8s.io", "csistoragecapacities")}
    assert "Age" in names or "Created At" in names or key in without_age
    for odd in ({}, {"metadata": {"name": "x"}, "spec": "junk", "status": [1], "subsets": 3, "data": "x"}):
        render(key, odd)  # a malformed object still renders


def test_descriptions_come_from_the_catalogue() -> None:
    service = {c.name: c.description for c in PRINTER_COLUMNS[("", "services")]}
    assert service["Type"].startswith("type determines how the Service is exposed.")
    deployment = {c.name: c.description for c in PRINTER_COLUMNS[("apps", "deployments")]}
    assert deployment["Ready"] == "Number of the pod with ready state"
    assert deployment["Up-to-date"].startswith("Total number of non-terminated pods targeted by this deployment")
    assert PRINTER_COLUMNS[("node.k8s.io", "runtimeclasses")][0].description == ""
