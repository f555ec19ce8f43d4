"""Kubernetes 1.32's built-in kinds (workloads, services, jobs, pods) driven by real kubectl.

Typed `kubectl create <kind>`, `run`, `expose`, `scale`, `set image` send what kubectl's
generators build (protobuf for `create deployment|job|cronjob|service`); manifests given
with `apply -f` / `create -f` go as JSON. Expected outputs are kube-apiserver 1.32's.
"""
from __future__ import annotations

import ipaddress
import json

import yaml


def get_json(kapi, *args: str) -> dict:
    return json.loads(kapi.kubectl("get", *args, "-o", "json").stdout)


def table(stdout: str) -> tuple[list[str], list[list[str]]]:
    """Split kubectl's table output into a header and rows (cells without spaces)."""
    lines = [line for line in stdout.splitlines() if line.strip()]
    return lines[0].split(), [line.split() for line in lines[1:]]


def deployment(name: str, *containers: dict, replicas: int = 1, namespace: str = "default") -> dict:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name, "namespace": namespace},
            "spec": {"replicas": replicas, "selector": {"matchLabels": {"app": name}},
                     "template": {"metadata": {"labels": {"app": name}},
                                  "spec": {"containers": list(containers) or [{"name": "nginx",
                                                                                "image": "nginx:1.27"}]}}}}


def service(name: str, **spec: object) -> dict:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default"},
            "spec": {"ports": [{"port": 80}], **spec}}


def apply(kapi, obj: dict) -> str:
    return kapi.kubectl("apply", "-f", "-", input=yaml.safe_dump(obj)).stdout


# ---------------------------------------------------------------- cluster IPs
# First in the module: no Service has a random cluster IP yet, so 10.0.0.50 is free.


def test_explicit_cluster_ip_and_allocation_errors(kapi) -> None:
    assert "service/fixed created" in kapi.kubectl("create", "-f", "-",
                                                   input=json.dumps(service("fixed", clusterIP="10.0.0.50"))).stdout
    first = get_json(kapi, "svc", "fixed")
    assert first["spec"]["clusterIP"] == "10.0.0.50" and first["spec"]["clusterIPs"] == ["10.0.0.50"]

    taken = kapi.kubectl("create", "-f", "-", input=json.dumps(service("fixed2", clusterIP="10.0.0.50")), check=False)
    assert taken.returncode != 0
    assert ('The Service "fixed2" is invalid: spec.clusterIPs: Invalid value: []string{"10.0.0.50"}: '
            'failed to allocate IP 10.0.0.50: provided IP is already allocated') in taken.stderr

    node_port = service("np-range", type="NodePort", ports=[{"port": 80, "nodePort": 40000}])
    out = kapi.kubectl("create", "-f", "-", input=json.dumps(node_port), check=False)
    assert out.returncode != 0
    assert ('The Service "np-range" is invalid: spec.ports[0].nodePort: Invalid value: 40000: provided port is not '
            'in the valid range. The range of valid ports is 30000-32767') in out.stderr

    for gone in ("fixed2", "np-range"):
        missing = kapi.kubectl("get", "svc", gone, check=False)
        assert missing.returncode != 0 and f'services "{gone}" not found' in missing.stderr
    assert get_json(kapi, "svc", "fixed") == first


# ---------------------------------------------------------------- deployments


def test_create_deployment_protobuf_has_kube_defaults(kapi) -> None:
    out = kapi.kubectl("create", "deployment", "web", "--image", "nginx:1.27", "--replicas", "2").stdout
    assert "deployment.apps/web created" in out
    obj = get_json(kapi, "deploy", "web")
    spec = obj["spec"]
    assert obj["metadata"]["generation"] == 1 and obj["metadata"]["labels"] == {"app": "web"}
    assert spec["replicas"] == 2 and spec["selector"] == {"matchLabels": {"app": "web"}}
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
    assert spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    pod = spec["template"]["spec"]
    [container] = pod["containers"]
    assert container["name"] == "nginx" and container["image"] == "nginx:1.27"
    assert container["imagePullPolicy"] == "IfNotPresent"
    assert container["terminationMessagePath"] == "/dev/termination-log"
    assert container["terminationMessagePolicy"] == "File"
    assert pod["restartPolicy"] == "Always" and pod["dnsPolicy"] == "ClusterFirst"
    assert pod["schedulerName"] == "default-scheduler" and pod["terminationGracePeriodSeconds"] == 30


def test_get_deployments_table(kapi) -> None:
    apply(kapi, deployment("tbl", replicas=2))
    header, rows = table(kapi.kubectl("get", "deploy", "tbl").stdout)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]
    assert rows[0][:4] == ["tbl", "0/2", "0", "0"]
    header, rows = table(kapi.kubectl("get", "deploy", "tbl", "-o", "wide").stdout)
    assert header == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE", "CONTAINERS", "IMAGES", "SELECTOR"]
    assert rows[0][-3:] == ["nginx", "nginx:1.27", "app=tbl"]


def test_scale_deployment_and_scale_subresource(kapi) -> None:
    apply(kapi, deployment("scaled", replicas=2))
    assert "deployment.apps/scaled scaled" in kapi.kubectl("scale", "deployment", "scaled", "--replicas", "5").stdout
    assert get_json(kapi, "deploy", "scaled")["spec"]["replicas"] == 5
    scale = json.loads(kapi.kubectl("get", "--raw", "/apis/apps/v1/namespaces/default/deployments/scaled/scale").stdout)
    assert scale["kind"] == "Scale" and scale["apiVersion"] == "autoscaling/v1"
    assert scale["metadata"]["name"] == "scaled"
    assert scale["spec"] == {"replicas": 5}
    assert scale["status"]["selector"] == "app=scaled"


def test_set_image_merges_by_container_name(kapi) -> None:
    apply(kapi, deployment("imaged", {"name": "nginx", "image": "nginx:1.27", "ports": [{"containerPort": 80}]},
                          {"name": "side", "image": "busybox:1", "command": ["sleep", "3600"]}))
    before = get_json(kapi, "deploy", "imaged")
    out = kapi.kubectl("set", "image", "deployment/imaged", "nginx=nginx:1.28").stdout
    assert "deployment.apps/imaged image updated" in out
    after = get_json(kapi, "deploy", "imaged")
    nginx, side = after["spec"]["template"]["spec"]["containers"]
    assert nginx["name"] == "nginx" and nginx["image"] == "nginx:1.28"
    assert nginx["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert side == before["spec"]["template"]["spec"]["containers"][1]
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1


def test_rollout_history(kapi) -> None:
    apply(kapi, deployment("history"))
    out = kapi.kubectl("rollout", "history", "deployment/history")
    assert out.returncode == 0 and "deployment.apps/history" in out.stdout


def test_expose_deployment_allocates_cluster_ip(kapi) -> None:
    apply(kapi, deployment("exposed"))
    out = kapi.kubectl("expose", "deployment", "exposed", "--port", "80", "--target-port", "8080").stdout
    assert "service/exposed exposed" in out
    svc = get_json(kapi, "svc", "exposed")
    ip = svc["spec"]["clusterIP"]
    assert ipaddress.ip_address(ip) in ipaddress.ip_network("10.0.0.0/24")
    assert svc["spec"]["clusterIPs"] == [ip]
    assert svc["spec"]["selector"] == {"app": "exposed"} and svc["spec"]["type"] == "ClusterIP"
    assert svc["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 8080}]
    assert svc["spec"]["sessionAffinity"] == "None" and svc["spec"]["ipFamilies"] == ["IPv4"]
    header, rows = table(kapi.kubectl("get", "svc", "exposed").stdout)
    assert header == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert rows[0][:5] == ["exposed", "ClusterIP", ip, "<none>", "80/TCP"]


def test_strategic_merge_patch_of_container_list(kapi) -> None:
    manifest = deployment("pair", {"name": "a", "image": "nginx:1", "ports": [{"containerPort": 80}]},
                          {"name": "b", "image": "busybox:1", "command": ["sleep", "3600"]})
    assert "deployment.apps/pair created" in apply(kapi, manifest)
    before = get_json(kapi, "deploy", "pair")["spec"]["template"]["spec"]["containers"]
    patch = '{"spec":{"template":{"spec":{"containers":[{"name":"b","image":"busybox:2"}]}}}}'
    assert "deployment.apps/pair patched" in kapi.kubectl("patch", "deployment", "pair", "-p", patch).stdout
    a, b = get_json(kapi, "deploy", "pair")["spec"]["template"]["spec"]["containers"]
    assert a == before[0]
    assert b == {**before[1], "image": "busybox:2"}


# ---------------------------------------------------------------- jobs and cronjobs


def test_create_job_protobuf_generates_selector(kapi) -> None:
    out = kapi.kubectl("create", "job", "hello", "--image", "busybox", "--", "echo", "hi").stdout
    assert "job.batch/hello created" in out
    job = get_json(kapi, "job", "hello")
    uid = job["metadata"]["uid"]
    assert job["spec"]["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels["batch.kubernetes.io/controller-uid"] == uid and labels["controller-uid"] == uid
    assert labels["batch.kubernetes.io/job-name"] == "hello" and labels["job-name"] == "hello"
    assert (job["spec"]["backoffLimit"], job["spec"]["completions"], job["spec"]["parallelism"]) == (6, 1, 1)
    assert job["spec"]["completionMode"] == "NonIndexed" and job["spec"]["suspend"] is False
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["echo", "hi"] and container["imagePullPolicy"] == "Always"  # untagged image
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"


def test_create_cronjob_protobuf_and_job_from_it(kapi) -> None:
    out = kapi.kubectl("create", "cronjob", "tick", "--image", "busybox", "--schedule", "*/5 * * * *", "--", "date")
    assert "cronjob.batch/tick created" in out.stdout
    cron = get_json(kapi, "cronjob", "tick")
    assert cron["spec"]["schedule"] == "*/5 * * * *"
    assert cron["spec"]["concurrencyPolicy"] == "Allow" and cron["spec"]["suspend"] is False
    assert cron["spec"]["successfulJobsHistoryLimit"] == 3 and cron["spec"]["failedJobsHistoryLimit"] == 1
    template = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert template["restartPolicy"] == "OnFailure" and template["containers"][0]["command"] == ["date"]

    assert "job.batch/from-cron created" in kapi.kubectl("create", "job", "from-cron", "--from=cronjob/tick").stdout
    job = get_json(kapi, "job", "from-cron")
    assert job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"] == "manual"
    [owner] = job["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("CronJob", "tick", cron["metadata"]["uid"])
    assert job["spec"]["selector"]["matchLabels"] == {"batch.kubernetes.io/controller-uid": job["metadata"]["uid"]}


# ---------------------------------------------------------------- pods


def test_run_pod_is_pending(kapi) -> None:
    assert "pod/p1 created" in kapi.kubectl("run", "p1", "--image", "nginx").stdout
    pod = get_json(kapi, "pod", "p1")
    assert pod["status"]["phase"] == "Pending" and pod["spec"]["serviceAccountName"] == "default"
    assert pod["metadata"]["labels"] == {"run": "p1"}
    assert pod["spec"]["containers"][0]["imagePullPolicy"] == "Always"  # image without a tag
    header, rows = table(kapi.kubectl("get", "pods", "p1").stdout)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert rows[0][:4] == ["p1", "0/1", "Pending", "0"]
    header, rows = table(kapi.kubectl("get", "pods", "p1", "-o", "wide").stdout)
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED", "NODE",
                      "READINESS", "GATES"]
    assert rows[0][:4] == ["p1", "0/1", "Pending", "0"] and rows[0][-4:] == ["<none>"] * 4


def test_get_all_groups_by_kind(kapi) -> None:
    kapi.kubectl("create", "namespace", "every")
    kapi.kubectl("run", "p2", "--image", "nginx", "-n", "every")
    for obj in (dict(deployment("web", namespace="every")),
                {**service("front", selector={"app": "web"}), "metadata": {"name": "front", "namespace": "every"}},
                {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "once", "namespace": "every"},
                 "spec": {"template": {"spec": {"restartPolicy": "Never",
                                                "containers": [{"name": "c", "image": "busybox"}]}}}}):
        apply(kapi, obj)
    out = kapi.kubectl("get", "all", "-n", "every").stdout
    sections = [block.strip().splitlines() for block in out.strip().split("\n\n")]
    names = [[line.split()[0] for line in block[1:]] for block in sections]
    assert names == [["pod/p2"], ["service/front"], ["deployment.apps/web"], ["job.batch/once"]], out
    headers = [block[0].split() for block in sections]
    assert headers[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert headers[1] == ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"]
    assert headers[2] == ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]


# ---------------------------------------------------------------- discovery and explain


def test_api_resources_lists_builtin_catalogue(kapi) -> None:
    header, rows = table(kapi.kubectl("api-resources").stdout)
    assert header == ["NAME", "SHORTNAMES", "APIVERSION", "NAMESPACED", "KIND"]
    by_name = {(row[0], row[-3]): row for row in rows}
    expected = [
        ["pods", "po", "v1", "true", "Pod"],
        ["services", "svc", "v1", "true", "Service"],
        ["deployments", "deploy", "apps/v1", "true", "Deployment"],
        ["statefulsets", "sts", "apps/v1", "true", "StatefulSet"],
        ["daemonsets", "ds", "apps/v1", "true", "DaemonSet"],
        ["cronjobs", "cj", "batch/v1", "true", "CronJob"],
        ["jobs", "batch/v1", "true", "Job"],
        ["horizontalpodautoscalers", "hpa", "autoscaling/v2", "true", "HorizontalPodAutoscaler"],
        ["ingresses", "ing", "networking.k8s.io/v1", "true", "Ingress"],
        ["networkpolicies", "netpol", "networking.k8s.io/v1", "true", "NetworkPolicy"],
        ["poddisruptionbudgets", "pdb", "policy/v1", "true", "PodDisruptionBudget"],
        ["roles", "rbac.authorization.k8s.io/v1", "true", "Role"],
        ["clusterroles", "rbac.authorization.k8s.io/v1", "false", "ClusterRole"],
        ["storageclasses", "sc", "storage.k8s.io/v1", "false", "StorageClass"],
        ["priorityclasses", "pc", "scheduling.k8s.io/v1", "false", "PriorityClass"],
        ["endpointslices", "discovery.k8s.io/v1", "true", "EndpointSlice"],
        ["runtimeclasses", "node.k8s.io/v1", "false", "RuntimeClass"],
        ["certificatesigningrequests", "csr", "certificates.k8s.io/v1", "false", "CertificateSigningRequest"],
        ["flowschemas", "flowcontrol.apiserver.k8s.io/v1", "false", "FlowSchema"],
    ]
    for row in expected:
        assert by_name.get((row[0], row[-3])) == row
    names = kapi.kubectl("api-resources", "--api-group", "apps", "-o", "name").stdout.split()
    assert names == ["controllerrevisions.apps", "daemonsets.apps", "deployments.apps", "replicasets.apps",
                     "statefulsets.apps"]


def test_explain_pod_containers(kapi) -> None:
    out = kapi.kubectl("explain", "pod.spec.containers").stdout
    assert out.startswith("KIND:       Pod\nVERSION:    v1\n\n")
    assert "List of containers belonging to the pod." in out
    assert "\n  image\t<string>\n    Container image name." in out
    assert "\n  name\t<string> -required-\n    Name of the container specified as a DNS_LABEL." in out
    assert "\n  ports\t<[]ContainerPort>\n" in out  # kube's schemas are served with their $refs
    assert "FIELD: containers <[]Container>\n" in out


def test_explain_deployment_strategy(kapi) -> None:
    out = kapi.kubectl("explain", "deployment.spec.strategy").stdout
    assert out.startswith("GROUP:      apps\nKIND:       Deployment\nVERSION:    v1\n\n")
    assert "The deployment strategy to use to replace existing pods with new ones." in out
    assert "\n  type\t<string>\n" in out
    assert "FIELD: strategy <DeploymentStrategy>\n" in out
    assert "DeploymentStrategy describes how to replace existing pods with new ones." in out
    assert "\n  rollingUpdate\t<RollingUpdateDeployment>\n" in out


# ---------------------------------------------------------------- services


def test_create_service_clusterip_protobuf(kapi) -> None:
    assert "service/api created" in kapi.kubectl("create", "service", "clusterip", "api", "--tcp=8080:80").stdout
    svc = get_json(kapi, "svc", "api")
    assert svc["spec"]["type"] == "ClusterIP" and svc["spec"]["selector"] == {"app": "api"}
    assert svc["spec"]["ports"] == [{"name": "8080-80", "port": 8080, "protocol": "TCP", "targetPort": 80}]
    assert ipaddress.ip_address(svc["spec"]["clusterIP"]) in ipaddress.ip_network("10.0.0.0/24")
    _, rows = table(kapi.kubectl("get", "svc", "api").stdout)
    assert rows[0][:5] == ["api", "ClusterIP", svc["spec"]["clusterIP"], "<none>", "8080/TCP"]


def test_create_service_nodeport_protobuf(kapi) -> None:
    out = kapi.kubectl("create", "service", "nodeport", "np", "--tcp=80:80", "--node-port=30080").stdout
    assert "service/np created" in out
    svc = get_json(kapi, "svc", "np")
    assert svc["spec"]["type"] == "NodePort" and svc["spec"]["externalTrafficPolicy"] == "Cluster"
    [port] = svc["spec"]["ports"]
    assert (port["port"], port["targetPort"], port["nodePort"]) == (80, 80, 30080)
    _, rows = table(kapi.kubectl("get", "svc", "np").stdout)
    assert rows[0][:5] == ["np", "NodePort", svc["spec"]["clusterIP"], "<none>", "80:30080/TCP"]
