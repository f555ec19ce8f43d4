"""`kapi start --simulate*`: simulated nodes, scheduler, kubelets and workload controllers (issue 20).

Without `--simulate` kapi is kube-apiserver alone and the other `--simulate-*` flags are a usage error
rather than silently ignored. `--simulate-node-capacity` names only what it changes: `cpu=1` keeps the
default memory and pods, so a small node still admits pods that request no memory.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from typing import Any

import typer

from kapi.scheme.quantity import QuantityError, amount, canonical

DEFAULT_NODES = 3
MAX_NODES = 1000
DEFAULT_CAPACITY: tuple[tuple[str, str], ...] = (("cpu", "32"), ("memory", "256Gi"), ("pods", "110"))
# A resource name as kube's validation accepts it: `cpu`, `ephemeral-storage`, `nvidia.com/gpu`.
_RESOURCE_NAME = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def capacity_text(capacity: tuple[tuple[str, str], ...]) -> str:
    """`(("cpu", "32"), ...)` → `cpu=32,...`: the flag's spelling of a capacity."""
    return ",".join(f"{name}={quantity}" for name, quantity in capacity)


DEFAULT_CAPACITY_TEXT = capacity_text(DEFAULT_CAPACITY)


def parse_capacity(text: str) -> tuple[tuple[str, str], ...]:
    """`cpu=1,memory=4Gi` → the defaults with those resources replaced or added (quantities canonical).

    ValueError names the first bad pair."""
    merged = dict(DEFAULT_CAPACITY)
    seen: set[str] = set()
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        name, equals, quantity = (part.strip() for part in pair.partition("="))
        if not equals or not name or not quantity:
            raise ValueError(f"{pair!r} is not NAME=QUANTITY (e.g. cpu=32,memory=256Gi,pods=110)")
        if not _RESOURCE_NAME.match(name):
            raise ValueError(f"{name!r} is not a resource name (cpu, memory, pods, example.com/gpu)")
        if name in seen:
            raise ValueError(f"{name} is given twice")
        seen.add(name)
        try:
            value = canonical(quantity)
            negative = amount(quantity) < 0
        except QuantityError as exc:
            raise ValueError(f"{name}={quantity}: {exc}") from None
        if negative:
            raise ValueError(f"{name}={quantity}: a capacity cannot be negative")
        merged[name] = value
    return tuple(merged.items())


@dataclass(frozen=True)
class SimulateFlags:
    simulate: bool = False
    simulate_nodes: int = DEFAULT_NODES
    simulate_speed: float = 1.0
    simulate_manual_clock: bool = False
    simulate_node_capacity: str = DEFAULT_CAPACITY_TEXT

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set; a usage error for a bad value, or for a `--simulate-*`
        flag without `--simulate` (it would do nothing)."""
        if not self.simulate:
            for f in fields(self):
                if f.name != "simulate" and getattr(self, f.name) != f.default:
                    raise typer.BadParameter("only with --simulate", param_hint=_hint(f.name))
        if not 0 <= self.simulate_nodes <= MAX_NODES:
            raise typer.BadParameter(f"{self.simulate_nodes} is not a number of nodes (0-{MAX_NODES})",
                                     param_hint="--simulate-nodes")
        if not (math.isfinite(self.simulate_speed) and self.simulate_speed > 0):
            raise typer.BadParameter(f"{self.simulate_speed:g} is not a positive speed (1 = real time)",
                                     param_hint="--simulate-speed")
        try:
            capacity = parse_capacity(self.simulate_node_capacity)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--simulate-node-capacity") from None
        return {"simulate": self.simulate, "simulate_nodes": self.simulate_nodes,
                "simulate_speed": float(self.simulate_speed), "simulate_manual_clock": self.simulate_manual_clock,
                "simulate_node_capacity": capacity}

    def args(self) -> list[str]:
        """The same flags for a detached child process (only those that differ from the defaults)."""
        out: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value == f.default:
                continue
            out += [_hint(f.name)] if isinstance(value, bool) else [_hint(f.name), _text(value)]
        return out


def _hint(name: str) -> str:
    return "--" + name.replace("_", "-")


def _text(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


def simulate_flags_of(config: Any) -> SimulateFlags:
    """The flags that rebuild a ServerConfig's simulation settings (for `kapi start --detach`)."""
    capacity = tuple(config.simulate_node_capacity)
    return SimulateFlags(
        simulate=config.simulate, simulate_nodes=config.simulate_nodes, simulate_speed=config.simulate_speed,
        simulate_manual_clock=config.simulate_manual_clock,
        simulate_node_capacity=DEFAULT_CAPACITY_TEXT if capacity == DEFAULT_CAPACITY else capacity_text(capacity))
