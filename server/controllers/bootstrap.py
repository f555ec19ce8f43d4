"""Start-up loop: make sure the namespaces every cluster has exist (default, kube-system, …)."""
from __future__ import annotations

from server.api import errors
from server.registry.store import Store, WriteOptions
from server.scheme.builtin import INITIAL_NAMESPACES


async def ensure_initial_namespaces(namespaces: Store) -> list[str]:
    """Create the initial namespaces that are missing; return the ones created."""
    created = []
    for name in INITIAL_NAMESPACES:
        try:
            await namespaces.create("", {"metadata": {"name": name}}, "v1", WriteOptions())
            created.append(name)
        except errors.AlreadyExists:
            continue
    return created
