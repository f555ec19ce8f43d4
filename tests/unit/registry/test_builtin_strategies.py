"""Pods, workloads, jobs and services through real Stores on memory storage: kube's defaults and checks."""
from __future__ import annotations

from typing import Any

import pytest

from kapi.api import errors
from kapi.registry.service_alloc import ServiceRanges
from kapi.registry.service_store import ServiceStore
from kapi.registry.store import Store, StoreOptions, WriteOptions
from kapi.registry.strategies import strategy_for
from kapi.scheme.catalogue import builtin
from kapi.storage.memory import MemoryStorage

Object = dict[str, Any]


def store(group: str, plural: str) -> Store:
    return Store(strategy_for(builtin(group, plural)), MemoryStorage(), None, StoreOptions())


def services(storage: MemoryStorage | None = None, ranges: ServiceRanges = ServiceRanges()) -> ServiceStore:
    return ServiceStore(strategy_for(builtin("", "services")), storage or MemoryStorage(), None, StoreOptions(),
                        ranges=ranges)


def template(labels: dict[str, str], **spec: Any) -> Object:
    return {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}], **spec}}


def deployment(name: str = "web", selector: dict[str, str] | None = None) -> Object:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": {"selector": {"matchLabels": selector or {"app": name}}, "template": template({"app": name})}}


async def test_pod_gets_kubes_defaults_and_pending_status() -> None:
    pods = store("", "pods")
    pod = await pods.create("default", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "busybox"}, {"name": "b", "image": "busybox:1.36", "ports": [{"containerPort": 80}]}]}},
        "v1", WriteOptions())
    spec = pod["spec"]
    assert spec["restartPolicy"] == "Always" and spec["dnsPolicy"] == "ClusterFirst"
    assert spec["terminationGracePeriodSeconds"] == 30 and spec["schedulerName"] == "default-scheduler"
    assert spec["serviceAccountName"] == "default"
    assert [c["imagePullPolicy"] for c in spec["containers"]] == ["Always", "IfNotPresent"]
    assert spec["containers"][1]["ports"] == [{"containerPort": 80, "protocol": "TCP"}]
    assert spec["containers"][0]["terminationMessagePath"] == "/dev/termination-log"
    assert pod["status"] == {"phase": "Pending", "qosClass": "BestEffort"}
    assert "generation" not in pod["metadata"]


@pytest.mark.parametrize("spec, message", [
    ({"containers": []}, "spec.containers: Required value"),
    ({"containers": [{"name": "a", "image": "x"}, {"name": "a", "image": "y"}]},
     'spec.containers[1].name: Duplicate value: "a"'),
    ({"containers": [{"name": "Web", "image": "x"}]}, 'spec.containers[0].name: Invalid value: "Web"'),
    ({"containers": [{"name": "a"}]}, "spec.containers[0].image: Required value"),
    ({"containers": [{"name": "a", "image": "x"}], "restartPolicy": "Sometimes"},
     'spec.restartPolicy: Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"'),
])
async def test_pod_checks_in_kubes_words(spec: Object, message: str) -> None:
    with pytest.raises(errors.Invalid) as raised:
        await store("", "pods").create("default", {"metadata": {"name": "p"}, "spec": spec}, "v1", WriteOptions())
    assert message in raised.value.message


async def test_pod_spec_is_immutable_but_images_change() -> None:
    pods = store("", "pods")
    pod = await pods.create("default", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "x:1"}]}}, "v1", WriteOptions())
    pod["spec"]["containers"][0]["image"] = "x:2"
    pod = await pods.update("default", "p", pod, "v1", "", WriteOptions())
    assert pod["spec"]["containers"][0]["image"] == "x:2"
    pod["spec"]["restartPolicy"] = "Never"
    with pytest.raises(errors.Invalid, match="pod updates may not change fields"):
        await pods.update("default", "p", pod, "v1", "", WriteOptions())


async def test_deployment_defaults_generation_and_checks() -> None:
    deployments = store("apps", "deployments")
    created = await deployments.create("default", deployment(), "v1", WriteOptions())
    spec = created["spec"]
    assert spec["replicas"] == 1 and spec["revisionHistoryLimit"] == 10 and spec["progressDeadlineSeconds"] == 600
    assert spec["strategy"] == {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}
    assert spec["template"]["spec"]["restartPolicy"] == "Always" and created["metadata"]["generation"] == 1
    with pytest.raises(errors.Invalid, match="`selector` does not match template `labels`"):
        await deployments.create("default", deployment("other", {"app": "nope"}), "v1", WriteOptions())
    created["spec"]["selector"] = {"matchLabels": {"app": "web", "tier": "x"}}
    created["spec"]["template"]["metadata"]["labels"]["tier"] = "x"
    with pytest.raises(errors.Invalid, match="spec.selector: Invalid value: .*field is immutable"):
        await deployments.update("default", "web", created, "v1", "", WriteOptions())
    recreate = deployment("r")
    recreate["spec"]["strategy"] = {"type": "Recreate"}
    assert (await deployments.create("default", recreate, "v1", WriteOptions()))["spec"]["strategy"] == {
        "type": "Recreate"}


async def test_job_selector_is_generated_and_template_immutable() -> None:
    jobs = store("batch", "jobs")
    job = await jobs.create("default", {"metadata": {"name": "j"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}}},
        "v1", WriteOptions())
    uid = job["metadata"]["uid"]
    spec = job["spec"]
    assert spec["selector"] == {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}
    assert spec["template"]["metadata"]["labels"]["job-name"] == "j"
    assert (spec["completions"], spec["parallelism"], spec["backoffLimit"]) == (1, 1, 6)
    spec["template"]["spec"]["containers"][0]["image"] = "busybox:2"
    with pytest.raises(errors.Invalid, match="spec.template: Invalid value: .*field is immutable"):
        await jobs.update("default", "j", job, "v1", "", WriteOptions())
    with pytest.raises(errors.Invalid, match='Unsupported value: "Always": supported values: "OnFailure", "Never"'):
        await jobs.create("default", {"metadata": {"name": "k"}, "spec": {"template": {"spec": {
            "restartPolicy": "Always", "containers": [{"name": "c", "image": "busybox"}]}}}}, "v1", WriteOptions())


async def test_cronjob_defaults_and_schedule() -> None:
    cronjobs = store("batch", "cronjobs")
    body = {"metadata": {"name": "c"}, "spec": {"schedule": "*/5 * * * *", "jobTemplate": {"spec": {"template": {
        "spec": {"restartPolicy": "OnFailure", "containers": [{"name": "c", "image": "busybox"}]}}}}}}
    spec = (await cronjobs.create("default", body, "v1", WriteOptions()))["spec"]
    assert (spec["concurrencyPolicy"], spec["successfulJobsHistoryLimit"], spec["failedJobsHistoryLimit"]) == (
        "Allow", 3, 1)
    body["metadata"]["name"], body["spec"]["schedule"] = "d", "every now and then"
    with pytest.raises(errors.Invalid, match="spec.schedule: Invalid value"):
        await cronjobs.create("default", body, "v1", WriteOptions())


def service(name: str, **spec: Any) -> Object:
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name},
            "spec": {"ports": [{"port": 80}], **spec}}


async def test_services_get_cluster_ips_and_node_ports() -> None:
    svcs = services()
    first = await svcs.create("default", service("a", type="NodePort"), "v1", WriteOptions())
    spec = first["spec"]
    assert spec["clusterIP"].startswith("10.0.0.") and spec["clusterIPs"] == [spec["clusterIP"]]
    assert 30000 <= spec["ports"][0]["nodePort"] <= 32767 and spec["ports"][0]["targetPort"] == 80
    assert spec["sessionAffinity"] == "None" and spec["ipFamilies"] == ["IPv4"]
    taken = service("b", clusterIP=spec["clusterIP"])
    with pytest.raises(errors.Invalid) as raised:
        await svcs.create("default", taken, "v1", WriteOptions())
    assert raised.value.message == (
        f'Service "b" is invalid: spec.clusterIPs: Invalid value: []string{{"{spec["clusterIP"]}"}}: '
        f'failed to allocate IP {spec["clusterIP"]}: provided IP is already allocated')
    with pytest.raises(errors.Invalid, match="is not in the valid range. The range of valid IPs is 10.0.0.0/24"):
        await svcs.create("default", service("c", clusterIP="10.9.0.1"), "v1", WriteOptions())
    port = spec["ports"][0]["nodePort"]
    clash = service("d", type="NodePort", ports=[{"port": 81, "nodePort": port}])
    with pytest.raises(errors.Invalid, match=f"spec.ports\\[0\\].nodePort: Invalid value: {port}: provided port is "
                                             "already allocated"):
        await svcs.create("default", clash, "v1", WriteOptions())
    with pytest.raises(errors.Invalid, match="The range of valid ports is 30000-32767"):
        await svcs.create("default", service("e", type="NodePort", ports=[{"port": 1, "nodePort": 40000}]), "v1",
                          WriteOptions())
    assert await svcs.get("default", "a", "v1") == first  # refusals changed nothing


async def test_service_updates_keep_and_protect_allocations() -> None:
    svcs = services()
    created = await svcs.create("default", service("a", type="NodePort"), "v1", WriteOptions())
    ip, node_port = created["spec"]["clusterIP"], created["spec"]["ports"][0]["nodePort"]
    created["spec"].pop("clusterIP")
    created["spec"].pop("clusterIPs")
    created["spec"]["ports"][0].pop("nodePort")
    kept = await svcs.update("default", "a", created, "v1", "", WriteOptions())
    assert kept["spec"]["clusterIP"] == ip and kept["spec"]["ports"][0]["nodePort"] == node_port
    kept["spec"]["clusterIP"] = "10.0.0.77"
    with pytest.raises(errors.Invalid, match='spec.clusterIPs\\[0\\]: Invalid value: "10.0.0.77": may not change'):
        await svcs.update("default", "a", kept, "v1", "", WriteOptions())
    back = await svcs.patch("default", "a", "v1", "", lambda cur: {**cur, "spec": {**cur["spec"], "type": "ClusterIP"}},
                            WriteOptions())
    assert "nodePort" not in back["spec"]["ports"][0]


async def test_headless_and_external_name_services_take_no_ip() -> None:
    svcs = services()
    headless = await svcs.create("default", service("h", clusterIP="None"), "v1", WriteOptions())
    assert headless["spec"]["clusterIPs"] == ["None"]
    external = await svcs.create("default", {"metadata": {"name": "x"}, "spec": {
        "type": "ExternalName", "externalName": "example.com"}}, "v1", WriteOptions())
    assert "clusterIP" not in external["spec"]


async def test_part_subresource_writes_only_its_part() -> None:
    pods = store("", "pods")
    await pods.create("default", {"metadata": {"name": "p"}, "spec": {"containers": [
        {"name": "a", "image": "x"}]}}, "v1", WriteOptions())
    debug = {"name": "debug", "image": "busybox", "targetContainerName": "a"}

    def add_debug(cur: Object) -> Object:
        cur["spec"]["ephemeralContainers"] = [debug]
        cur["spec"]["restartPolicy"] = "Never"  # ignored: not the subresource's part
        return cur

    updated = await pods.patch("default", "p", "v1", "ephemeralcontainers", add_debug, WriteOptions())
    assert updated["spec"]["ephemeralContainers"][0]["name"] == "debug"
    assert updated["spec"]["restartPolicy"] == "Always"

    def drop(cur: Object) -> Object:
        cur["spec"].pop("ephemeralContainers")
        return cur

    kept = await pods.patch("default", "p", "v1", "", drop, WriteOptions())  # the main resource keeps the part
    assert kept["spec"]["ephemeralContainers"][0]["name"] == "debug"


async def test_dynamic_allocation_leaves_the_low_band_for_explicit_requests() -> None:
    svcs = services()
    for i in range(20):
        spec = (await svcs.create("default", service(f"s{i}", type="NodePort"), "v1", WriteOptions()))["spec"]
        assert int(spec["clusterIP"].rsplit(".", 1)[1]) > 16  # 10.0.0.1-16 wait for those who ask
        assert spec["ports"][0]["nodePort"] >= 30000 + 86


async def test_claim_spec_is_immutable_but_requests_grow() -> None:
    claims = store("", "persistentvolumeclaims")
    claim = await claims.create("default", {"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "fast",
        "resources": {"requests": {"storage": "1Gi"}}}}, "v1", WriteOptions())
    assert claim["status"] == {"phase": "Pending"} and claim["spec"]["volumeMode"] == "Filesystem"
    claim["spec"]["resources"]["requests"]["storage"] = "2Gi"
    claim = await claims.update("default", "data", claim, "v1", "", WriteOptions())
    claim["spec"]["storageClassName"] = "slow"
    with pytest.raises(errors.Invalid, match="spec: Forbidden: spec is immutable after creation except "
                                             "resources.requests"):
        await claims.update("default", "data", claim, "v1", "", WriteOptions())
    with pytest.raises(errors.Invalid, match="spec.accessModes: at least 1 access mode is required"):
        await claims.create("default", {"metadata": {"name": "x"}, "spec": {}}, "v1", WriteOptions())


async def test_selector_mismatch_shows_the_labels_as_go_does() -> None:
    with pytest.raises(errors.Invalid) as raised:
        await store("apps", "deployments").create("default", deployment("web", {"app": "other"}), "v1",
                                                  WriteOptions())
    assert 'spec.template.metadata.labels: Invalid value: map[string]string{"app":"web"}: `selector` does not ' \
           'match template `labels`' in raised.value.message
