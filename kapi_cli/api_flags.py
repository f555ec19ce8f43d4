"""`kapi start`'s built-in API flags: `--api-groups`, `--service-cluster-ip-range`, `--service-node-port-range`."""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Optional

import typer

from kapi.scheme.catalogue import group_versions


@dataclass(frozen=True)
class ApiFlags:
    api_groups: Optional[str] = None  # comma-separated group names, "core" for the core group; None: all
    service_cluster_ip_range: str = "10.0.0.0/24"
    service_node_port_range: str = "30000-32767"

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set, after checking their form."""
        groups = None
        if self.api_groups is not None:
            known = {g for g, _ in group_versions()}
            groups = tuple("" if g.strip() in ("core", "") else g.strip() for g in self.api_groups.split(",")
                           if g.strip())
            unknown = sorted(set(groups) - known)
            if unknown:
                raise typer.BadParameter(f"unknown API group(s) {', '.join(unknown)}; known: core, "
                                         + ", ".join(sorted(g for g in known if g)), param_hint="--api-groups")
        try:
            network = ipaddress.ip_network(self.service_cluster_ip_range, strict=False)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--service-cluster-ip-range") from None
        if network.num_addresses < 8:
            raise typer.BadParameter("the range must hold at least 8 addresses",
                                     param_hint="--service-cluster-ip-range")
        low, _, high = self.service_node_port_range.partition("-")
        if not (low.isdigit() and high.isdigit() and 0 < int(low) <= int(high) < 65536):
            raise typer.BadParameter(f"{self.service_node_port_range!r} is not a port range like 30000-32767",
                                     param_hint="--service-node-port-range")
        return {"api_groups": groups, "service_cluster_ip_range": str(network),
                "service_node_port_range": self.service_node_port_range}

    def args(self) -> list[str]:
        """The same flags for a detached child process."""
        out = ["--api-groups", self.api_groups] if self.api_groups is not None else []
        return out + ["--service-cluster-ip-range", self.service_cluster_ip_range,
                      "--service-node-port-range", self.service_node_port_range]


def api_flags_of(api_groups: tuple[str, ...] | None, ip_range: str, port_range: str) -> ApiFlags:
    """The flags that rebuild a config's settings (for detached children)."""
    groups = None if api_groups is None else ",".join(g or "core" for g in api_groups)
    return ApiFlags(groups, ip_range, port_range)
