"""The EndpointSlice and Endpoints controllers: a selecting Service's pods, as kube-controller-manager lists them."""
from __future__ import annotations

import shutil
import subprocess
from typing import Any, Callable

import pytest

from kapi.controllers.simulation.endpoint_parts import MAX_PER_SLICE, endpoint_ports, find_port, in_endpoints, pack
from kapi.testing import RunningServer

NS = "/api/v1/namespaces/default"
SLICES = "/apis/discovery.k8s.io/v1/namespaces/default/endpointslices"
MERGE = "application/merge-patch+json"


def service(name: str = "web", selector: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"ports": [{"port": 80, "targetPort": 8080}], **spec}
    if selector is not None:
        body["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name, "namespace": "default",
                                                                  "labels": {"team": "a"}}, "spec": body}


def manual_pod(name: str, labels: dict[str, str], port: int = 8080) -> dict[str, Any]:
    """A pod no scheduler takes (another schedulerName): the test gives it an IP and readiness itself."""
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default", "labels": labels},
            "spec": {"schedulerName": "manual", "containers": [
                {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": port}]}]}}


def give_ip(kapi: RunningServer, name: str, ip: str, ready: bool = True) -> None:
    status = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}],
              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    code, body = kapi.request("PATCH", f"{NS}/pods/{name}/status", {"status": status}, content_type=MERGE)
    assert code == 200, body


def slices_of(kapi: RunningServer, svc: str = "web") -> list[dict[str, Any]]:
    code, listed = kapi.request("GET", f"{SLICES}?labelSelector=kubernetes.io/service-name={svc}")
    assert code == 200, listed
    return listed["items"]


def addresses(slices: list[dict[str, Any]], ready_only: bool = False) -> list[str]:
    return sorted(a for s in slices for e in s.get("endpoints") or [] for a in e["addresses"]
                  if e["conditions"]["ready"] or not ready_only)


def endpoints_of(kapi: RunningServer, svc: str = "web") -> dict[str, Any] | None:
    code, body = kapi.request("GET", f"{NS}/endpoints/{svc}")
    return body if code == 200 else None


# -- pure pieces ---------------------------------------------------------------------------------
def test_ports_resolve_numbers_and_names_as_kube_does() -> None:
    pod = manual_pod("p", {}, port=9090)
    assert find_port(pod, {"port": 80, "targetPort": 8080}) == 8080
    assert find_port(pod, {"port": 80}) == 80
    assert find_port(pod, {"port": 80, "targetPort": "http"}) == 9090
    assert find_port(pod, {"port": 80, "targetPort": "http", "protocol": "UDP"}) is None
    svc = service(ports=[{"name": "web", "port": 80, "targetPort": "http", "appProtocol": "http"},
                         {"name": "admin", "port": 81, "targetPort": "admin"}])
    assert endpoint_ports(svc, pod) == [{"name": "web", "port": 9090, "protocol": "TCP", "appProtocol": "http"}]


def test_which_pods_count() -> None:
    pod = {"metadata": {"name": "p"}, "status": {"phase": "Running", "podIP": "10.0.0.1"}}
    assert in_endpoints(pod, include_terminating=False)
    assert not in_endpoints({**pod, "status": {"phase": "Running"}}, True)
    assert not in_endpoints({**pod, "status": {"phase": "Succeeded", "podIP": "10.0.0.1"}}, True)
    terminating = {**pod, "metadata": {"name": "p", "deletionTimestamp": "2024-01-01T00:00:00Z"}}
    assert in_endpoints(terminating, True) and not in_endpoints(terminating, False)


def test_packing_keeps_endpoints_in_their_slices_and_caps_each_at_100() -> None:
    def ep(i: int) -> dict[str, Any]:
        return {"addresses": [f"10.0.{i // 250}.{i % 250 + 1}"], "targetRef": {"name": f"p{i}", "uid": f"u{i}"}}

    old = {"metadata": {"name": "web-a"}, "endpoints": [ep(5), ep(7)]}
    kept, new = pack([old], [ep(i) for i in range(250)])
    assert len(kept[0][1]) == MAX_PER_SLICE and ep(5) in kept[0][1] and ep(7) in kept[0][1]
    assert len(new) == 150
    kept, new = pack([old], [ep(9)])
    assert kept[0][1] == [ep(9)] and new == []


# -- through a simulated cluster -------------------------------------------------------------------
def test_a_deployments_ready_pods_become_endpoints(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
               "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
                        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [
                            {"name": "c", "image": "nginx", "ports": [{"name": "http", "containerPort": 8080}]}]}}}})
    sim.apply(service(selector={"app": "web"}, ports=[{"name": "http", "port": 80, "targetPort": "http"}]))
    found = eventually(lambda: len(addresses(s := slices_of(sim), ready_only=True)) == 2 and s, what="2 endpoints")
    pods = sim.request("GET", f"{NS}/pods?labelSelector=app=web")[1]["items"]
    assert addresses(found) == sorted(p["status"]["podIP"] for p in pods)
    (eps,) = found
    svc = sim.request("GET", f"{NS}/services/web")[1]
    assert eps["metadata"]["name"].startswith("web-") and eps["metadata"]["generateName"] == "web-"
    assert eps["metadata"]["labels"] == {"team": "a", "kubernetes.io/service-name": "web",
                                         "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io"}
    assert eps["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "Service", "name": "web",
                                                   "uid": svc["metadata"]["uid"], "controller": True,
                                                   "blockOwnerDeletion": True}]
    assert eps["addressType"] == "IPv4" and eps["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    first = eps["endpoints"][0]
    pod = next(p for p in pods if p["status"]["podIP"] == first["addresses"][0])
    assert first["conditions"] == {"ready": True, "serving": True, "terminating": False}
    assert first["nodeName"] == pod["spec"]["nodeName"]
    assert first["targetRef"] == {"kind": "Pod", "namespace": "default", "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    legacy = eventually(lambda: (e := endpoints_of(sim)) and e.get("subsets") and e)
    assert sorted(a["ip"] for a in legacy["subsets"][0]["addresses"]) == addresses(found)
    assert legacy["subsets"][0]["ports"] == [{"name": "http", "port": 8080, "protocol": "TCP"}]
    assert legacy["metadata"]["labels"] == {"team": "a", "endpoints.kubernetes.io/managed-by": "endpoint-controller"}
    # a deleted pod is first terminating (not ready, still serving), then gone
    version = eps["metadata"]["resourceVersion"]
    sim.request("DELETE", f"{NS}/pods/{pod['metadata']['name']}")
    gone_ip = pod["status"]["podIP"]
    eventually(lambda: gone_ip not in addresses(slices_of(sim), ready_only=True), what="the pod to leave")
    eventually(lambda: gone_ip not in [a["ip"] for s in (endpoints_of(sim) or {}).get("subsets", [])
                                       for a in s.get("addresses", [])], what="the pod to leave Endpoints")
    assert slices_of(sim)[0]["metadata"]["resourceVersion"] != version


def test_pods_with_ips_given_by_hand(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(service(selector={"app": "db"}))
    placeholder = eventually(lambda: slices_of(sim))
    assert len(placeholder) == 1 and not placeholder[0].get("endpoints")  # kube's placeholder slice
    assert eventually(lambda: endpoints_of(sim)).get("subsets") is None
    for i in range(3):
        sim.apply(manual_pod(f"db-{i}", {"app": "db"}))
    give_ip(sim, "db-0", "10.1.0.10")
    give_ip(sim, "db-1", "10.1.0.9", ready=False)
    eventually(lambda: addresses(slices_of(sim)) == ["10.1.0.10", "10.1.0.9"], what="two endpoints")
    ready = {e["addresses"][0]: e["conditions"]["ready"] for s in slices_of(sim) for e in s["endpoints"]}
    assert ready == {"10.1.0.9": False, "10.1.0.10": True}
    assert [e["addresses"][0] for e in slices_of(sim)[0]["endpoints"]] == ["10.1.0.9", "10.1.0.10"]  # IP order
    legacy = eventually(lambda: (e := endpoints_of(sim)) and e.get("subsets") and e)
    assert [a["ip"] for a in legacy["subsets"][0]["addresses"]] == ["10.1.0.10"]
    assert [a["ip"] for a in legacy["subsets"][0]["notReadyAddresses"]] == ["10.1.0.9"]
    # a pod that stops matching leaves; the service's removal takes both objects with it
    sim.request("PATCH", f"{NS}/pods/db-1", {"metadata": {"labels": {"app": "other"}}}, content_type=MERGE)
    eventually(lambda: addresses(slices_of(sim)) == ["10.1.0.10"], what="the relabelled pod to leave")
    sim.request("DELETE", f"{NS}/services/web")
    eventually(lambda: not slices_of(sim) and endpoints_of(sim) is None, what="the service's endpoints to go")


def test_named_ports_split_slices_and_big_services_spread(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(service(selector={"app": "api"}, ports=[{"port": 80, "targetPort": "http"}]))
    sim.apply(manual_pod("old", {"app": "api"}, port=8080))
    sim.apply(manual_pod("new", {"app": "api"}, port=9090))
    give_ip(sim, "old", "10.2.0.1")
    give_ip(sim, "new", "10.2.0.2")
    found = eventually(lambda: len(s := slices_of(sim)) == 2 and all(x.get("endpoints") for x in s) and s)
    assert sorted(s["ports"][0]["port"] for s in found) == [8080, 9090]
    legacy = eventually(lambda: len((endpoints_of(sim) or {}).get("subsets") or []) == 2 and endpoints_of(sim))
    assert sorted(s["ports"][0]["port"] for s in legacy["subsets"]) == [8080, 9090]
    for i in range(MAX_PER_SLICE + 5):
        sim.apply(manual_pod(f"many-{i}", {"app": "api"}, port=8080))
        give_ip(sim, f"many-{i}", f"10.3.{i // 200}.{i % 200 + 1}")
    found = eventually(lambda: len(addresses(s := slices_of(sim))) == MAX_PER_SLICE + 7 and s, timeout=20)
    assert sorted(len(s["endpoints"]) for s in found) == [1, 6, MAX_PER_SLICE]


def test_services_without_a_selector_are_left_alone(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    sim.apply(service("external"))
    mine = {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "external", "namespace": "default"},
            "subsets": [{"addresses": [{"ip": "192.0.2.1"}], "ports": [{"port": 8080}]}]}
    sim.apply(mine)
    sim.apply(service(selector={"app": "x"}))  # a selecting service, so the controller is known to be running
    eventually(lambda: slices_of(sim))
    assert slices_of(sim, "external") == []
    kept = endpoints_of(sim, "external")
    assert kept is not None and kept["subsets"][0]["addresses"] == [{"ip": "192.0.2.1"}]
    assert "labels" not in kept["metadata"]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_expose_then_get_endpointslices(sim: RunningServer, eventually: Callable[..., Any]) -> None:
    def kubectl(*args: str) -> str:
        run = subprocess.run(["kubectl", "--kubeconfig", str(sim.kubeconfig), *args], capture_output=True,
                             text=True, timeout=30)
        assert run.returncode == 0, run.stderr
        return run.stdout

    kubectl("create", "deployment", "web", "--image", "nginx", "--replicas", "2")
    kubectl("expose", "deployment", "web", "--port", "80")
    pods = eventually(lambda: len(ips := [p["status"].get("podIP") for p in sim.request(
        "GET", f"{NS}/pods?labelSelector=app=web")[1]["items"] if p["status"].get("podIP")]) == 2 and ips)
    out = eventually(lambda: all(ip in (o := kubectl("get", "endpointslices", "-l",
                                                     "kubernetes.io/service-name=web")) for ip in pods) and o)
    assert out.splitlines()[0].split() == ["NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"]
    assert "80" in out.splitlines()[1].split()[2]
