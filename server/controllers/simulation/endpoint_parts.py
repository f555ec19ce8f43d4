"""What kube's endpoint controllers make of a pod and a Service: endpoints, ports, labels, packing.

Pure functions, shared by `endpointslices` (the controllers) and its tests;
each names the kube helper whose behaviour it follows.
"""
from __future__ import annotations

import ipaddress
from typing import Any

from kapi.controllers.simulation.pods import TERMINAL_PHASES, is_ready, is_terminating, phase

Object = dict[str, Any]
MAX_PER_SLICE = 100  # kube's --max-endpoints-per-slice default
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY, SLICE_CONTROLLER = "endpointslice.kubernetes.io/managed-by", "endpointslice-controller.k8s.io"
ENDPOINTS_MANAGED_BY, ENDPOINTS_CONTROLLER = "endpoints.kubernetes.io/managed-by", "endpoint-controller"
HEADLESS = "service.kubernetes.io/headless"
ZONE = "topology.kubernetes.io/zone"
PortsKey = tuple[tuple[str, int, str, str], ...]


# -- what a pod contributes ------------------------------------------------------------------
def in_endpoints(pod: Object, include_terminating: bool) -> bool:
    """kube's ShouldPodBeInEndpoints: not finished, has an IP, and not terminating unless those count."""
    status = pod.get("status") or {}
    if phase(pod) in TERMINAL_PHASES or not (status.get("podIP") or status.get("podIPs")):
        return False
    return include_terminating or not is_terminating(pod)


def pod_address(pod: Object, family: str) -> str | None:
    """The pod's IP of the address type (IPv4 / IPv6), from podIPs or podIP."""
    status = pod.get("status") or {}
    ips = [str(p.get("ip")) for p in status.get("podIPs") or [] if isinstance(p, dict) and p.get("ip")]
    for ip in ips or ([str(status["podIP"])] if status.get("podIP") else []):
        try:
            version = ipaddress.ip_address(ip).version
        except ValueError:
            continue
        if (version == 4) == (family == "IPv4"):
            return ip
    return None


def find_port(pod: Object, service_port: Object) -> int | None:
    """kube's FindPort: a numeric targetPort as is; a named one from the pod's container ports."""
    target = service_port.get("targetPort", service_port.get("port"))
    if isinstance(target, int) and not isinstance(target, bool):
        return target
    if isinstance(target, str) and target.isdigit():
        return int(target)
    protocol = service_port.get("protocol") or "TCP"
    spec = pod.get("spec") or {}
    containers = list(spec.get("containers") or []) + [
        c for c in spec.get("initContainers") or [] if isinstance(c, dict) and c.get("restartPolicy") == "Always"]
    for container in containers:
        for port in (container or {}).get("ports") or []:
            if port.get("name") == target and (port.get("protocol") or "TCP") == protocol:
                return int(port.get("containerPort") or 0) or None
    return None


def endpoint_ports(service: Object, pod: Object) -> list[Object]:
    """The service's ports as this pod serves them (ports it cannot resolve are left out)."""
    out = []
    for service_port in (service.get("spec") or {}).get("ports") or []:
        number = find_port(pod, service_port)
        if number is None:
            continue
        port: Object = {"name": service_port.get("name") or "", "port": number,
                        "protocol": service_port.get("protocol") or "TCP"}
        if service_port.get("appProtocol"):
            port["appProtocol"] = service_port["appProtocol"]
        out.append(port)
    return out


def ports_key(ports: list[Object]) -> PortsKey:
    return tuple(sorted((str(p.get("name") or ""), int(p.get("port") or 0), str(p.get("protocol") or "TCP"),
                         str(p.get("appProtocol") or "")) for p in ports))


def target_ref(pod: Object) -> Object:
    meta = pod["metadata"]
    return {"kind": "Pod", "namespace": meta.get("namespace", ""), "name": meta["name"], "uid": meta.get("uid", "")}


def hostname_for(pod: Object, service: Object) -> str:
    """kube's ShouldSetHostname: the pod's hostname when its subdomain is this service."""
    spec = pod.get("spec") or {}
    same = spec.get("subdomain") == service["metadata"]["name"]
    return str(spec.get("hostname") or "") if same else ""


def slice_endpoint(pod: Object, service: Object, address: str, zone: str) -> Object:
    """kube's podToEndpoint."""
    serving, terminating = is_ready(pod), is_terminating(pod)
    publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
    endpoint: Object = {"addresses": [address],
                        "conditions": {"ready": publish or (serving and not terminating), "serving": serving,
                                       "terminating": terminating},
                        "targetRef": target_ref(pod)}
    if hostname := hostname_for(pod, service):
        endpoint["hostname"] = hostname
    if node := (pod.get("spec") or {}).get("nodeName"):
        endpoint["nodeName"] = node
    if zone:
        endpoint["zone"] = zone
    return endpoint


def ip_order(endpoint: Object) -> tuple[int, int, str]:
    address = (endpoint.get("addresses") or endpoint.get("ip") or [""])
    text = address[0] if isinstance(address, list) else str(address)
    try:
        ip = ipaddress.ip_address(text)
        return ip.version, int(ip), str((endpoint.get("targetRef") or {}).get("name") or "")
    except ValueError:
        return 9, 0, text


def uid_of(endpoint: Object) -> str:
    return str((endpoint.get("targetRef") or {}).get("uid") or "") or str((endpoint.get("addresses") or [""])[0])


# -- labels shared by what the controllers write ------------------------------------------------
def service_labels(service: Object, reserved: tuple[str, ...]) -> dict[str, str]:
    labels = {k: v for k, v in ((service["metadata"].get("labels") or {}).items()) if k not in reserved}
    if (service.get("spec") or {}).get("clusterIP") == "None":
        labels[HEADLESS] = ""
    else:
        labels.pop(HEADLESS, None)
    return labels


def slice_labels(service: Object) -> dict[str, str]:
    labels = service_labels(service, (SERVICE_NAME, MANAGED_BY))
    labels.update({SERVICE_NAME: service["metadata"]["name"], MANAGED_BY: SLICE_CONTROLLER})
    return labels


def families(service: Object) -> list[str]:
    found = [f for f in (service.get("spec") or {}).get("ipFamilies") or [] if f in ("IPv4", "IPv6")]
    return found or ["IPv4"]


def address_order(address: Object) -> tuple[int, int, str]:
    return ip_order({"addresses": [address.get("ip", "")], "targetRef": address.get("targetRef")})


def pack(olds: list[Object], endpoints: list[Object]) -> tuple[list[tuple[Object, list[Object]]], list[Object]]:
    """Spread `endpoints` over existing slices with the least churn: each stays in the slice that holds it,
    newcomers fill slices with room; what does not fit is returned for new slices."""
    home = {uid_of(e): s["metadata"]["name"] for s in olds for e in s.get("endpoints") or []}
    placed: dict[str, list[Object]] = {s["metadata"]["name"]: [] for s in olds}
    leftover = []
    for endpoint in endpoints:
        where = home.get(uid_of(endpoint))
        if where is not None and len(placed[where]) < MAX_PER_SLICE:
            placed[where].append(endpoint)
        else:
            leftover.append(endpoint)
    for name, members in placed.items():
        room = MAX_PER_SLICE - len(members)
        if room > 0 and leftover and members:
            members += leftover[:room]
            del leftover[:room]
    for name, members in placed.items():  # then empty slices, before making new ones
        if leftover and not members:
            members += leftover[:MAX_PER_SLICE]
            del leftover[:MAX_PER_SLICE]
    kept = [(s, sorted(placed[s["metadata"]["name"]], key=ip_order)) for s in olds]
    return kept, leftover
