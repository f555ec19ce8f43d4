"""ClusterIP and NodePort allocation for Services, as kube-apiserver's allocators decide and word it.

Allocation is derived from what is stored: the IPs and ports in use are those
of the stored Services, so nothing needs releasing when a Service goes, and a
dry run allocates nothing. `ServiceStore` serialises the decisions.
"""
from __future__ import annotations

import ipaddress
import random
from dataclasses import dataclass, field
from typing import Any, Iterable

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.registry.builtin_strategy import as_list

Object = dict[str, Any]


@dataclass(frozen=True)
class ServiceRanges:
    """`--service-cluster-ip-range` and `--service-node-port-range`."""

    cluster_ip_range: str = "10.0.0.0/24"
    node_port_range: str = "30000-32767"
    network: ipaddress.IPv4Network | ipaddress.IPv6Network = field(init=False, compare=False)
    ports: tuple[int, int] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "network", ipaddress.ip_network(self.cluster_ip_range, strict=False))
        low, _, high = self.node_port_range.partition("-")
        object.__setattr__(self, "ports", (int(low), int(high or low)))

    @property
    def kubernetes_ip(self) -> str:
        """The first address of the range: the `kubernetes` Service's, as in kube."""
        return str(self.network.network_address + 1)

    def ip_in_range(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        return addr in self.network and addr not in (self.network.network_address, self.network.broadcast_address)


@dataclass
class InUse:
    ips: set[str] = field(default_factory=set)
    ports: set[tuple[int, str]] = field(default_factory=set)  # (nodePort, protocol)

    @classmethod
    def of(cls, services: Iterable[Object], skip_uid: str = "") -> InUse:
        used = cls()
        for svc in services:
            if skip_uid and (svc.get("metadata") or {}).get("uid") == skip_uid:
                continue
            spec = svc.get("spec") or {}
            used.ips.update(ip for ip in spec.get("clusterIPs") or [spec.get("clusterIP")] if ip and ip != "None")
            for port in as_list(spec.get("ports")):
                if isinstance(port, dict) and port.get("nodePort"):
                    used.ports.add((int(port["nodePort"]), str(port.get("protocol") or "TCP")))
        return used


def service_type(spec: Object) -> str:
    return str(spec.get("type") or "ClusterIP")


def _ip_cause(ip: str, detail: str) -> Cause:
    return Cause("FieldValueInvalid", f'Invalid value: []string{{"{ip}"}}: failed to allocate IP {ip}: {detail}',
                 "spec.clusterIPs")


def allocate(obj: Object, old: Object | None, used: InUse, ranges: ServiceRanges) -> list[Cause]:
    """Fill in `spec.clusterIP(s)` and node ports in place; the causes of a refusal (422 in kube)."""
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return []
    old_spec = (old or {}).get("spec") or {}
    kind = service_type(spec)
    causes: list[Cause] = []
    if kind != "ExternalName":
        causes += _allocate_ip(spec, old_spec, used, ranges)
    else:
        spec.pop("clusterIP", None)
        spec.pop("clusterIPs", None)
    if kind in ("NodePort", "LoadBalancer"):
        causes += _allocate_ports(spec, old_spec, used, ranges)
    else:
        for port in as_list(spec.get("ports")):
            if isinstance(port, dict) and old is not None:
                port.pop("nodePort", None)  # kube clears node ports when a Service stops needing them
    return causes


def _allocate_ip(spec: Object, old_spec: Object, used: InUse, ranges: ServiceRanges) -> list[Cause]:
    wanted = spec.get("clusterIP") or next(iter(as_list(spec.get("clusterIPs"))), "")
    old_ip = old_spec.get("clusterIP") if service_type(old_spec) != "ExternalName" else ""
    if not wanted and old_ip:
        wanted = old_ip  # an update that leaves it out keeps it (kube's patchAllocatedValues)
    if old_ip and wanted != old_ip:
        return [errors.field_invalid("spec.clusterIPs[0]", wanted, "may not change once set")]
    if wanted == "None":
        spec["clusterIP"], spec["clusterIPs"] = "None", ["None"]
        return []
    if wanted and wanted != old_ip:
        try:
            ipaddress.ip_address(wanted)
        except ValueError:
            return [errors.field_invalid("spec.clusterIPs[0]", wanted,
                                         "must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)")]
        if not ranges.ip_in_range(wanted):
            return [_ip_cause(wanted, f"the provided IP ({wanted}) is not in the valid range. The range of valid "
                                      f"IPs is {ranges.cluster_ip_range}")]
        if wanted in used.ips:
            return [_ip_cause(wanted, "provided IP is already allocated")]
    if not wanted:
        wanted = _free_ip(used, ranges)
        if not wanted:
            raise errors.InternalError("failed to allocate a serviceIP: range is full")
    spec["clusterIP"], spec["clusterIPs"] = wanted, [wanted]
    used.ips.add(wanted)
    return []


def _static_band(size: int, divisor: int, ceiling: int) -> int:
    """How many of the lowest values kube keeps for explicit requests (KEP-3070 and KEP-3668):
    dynamic allocation takes from above them first, so a Service asking for a low value finds it free."""
    return min(max(16, size // divisor), ceiling, size)


def _free_ip(used: InUse, ranges: ServiceRanges) -> str:
    net = ranges.network
    size = net.num_addresses - 2
    if size <= 0:
        return ""
    band = _static_band(size, 16, 256)
    upper = [str(net.network_address + 1 + i) for i in range(band, size)]
    free = [ip for ip in upper if ip not in used.ips]
    if not free:
        lower = (str(net.network_address + 1 + i) for i in range(band))
        free = [ip for ip in lower if ip not in used.ips and ip != ranges.kubernetes_ip]
    return random.choice(free) if free else ""


def _allocate_ports(spec: Object, old_spec: Object, used: InUse, ranges: ServiceRanges) -> list[Cause]:
    low, high = ranges.ports
    kept = {(str(p.get("port")), str(p.get("protocol") or "TCP")): p.get("nodePort")
            for p in as_list(old_spec.get("ports")) if isinstance(p, dict) and p.get("nodePort")}
    old_ports = set(kept.values())
    causes: list[Cause] = []
    for i, port in enumerate(as_list(spec.get("ports"))):
        if not isinstance(port, dict):
            continue
        protocol = str(port.get("protocol") or "TCP")
        wanted = port.get("nodePort") or kept.get((str(port.get("port")), protocol))
        if wanted:
            if not isinstance(wanted, int) or isinstance(wanted, bool) or not low <= wanted <= high:
                causes.append(errors.field_invalid(
                    f"spec.ports[{i}].nodePort", wanted,
                    f"provided port is not in the valid range. The range of valid ports is {low}-{high}"))
                continue
            if wanted in old_ports and (wanted, protocol) not in used.ports:
                port["nodePort"] = wanted  # this Service's own, kept
                continue
            if (wanted, protocol) in used.ports:
                causes.append(errors.field_invalid(f"spec.ports[{i}].nodePort", wanted,
                                                   "provided port is already allocated"))
                continue
        else:
            band = _static_band(high - low + 1, 32, 128)
            free = [p for p in range(low + band, high + 1) if (p, protocol) not in used.ports] or [
                p for p in range(low, low + band) if (p, protocol) not in used.ports]
            if not free:
                raise errors.InternalError("failed to allocate a nodePort: range is full")
            wanted = random.choice(free)
        port["nodePort"] = wanted
        used.ports.add((wanted, protocol))
    return causes
