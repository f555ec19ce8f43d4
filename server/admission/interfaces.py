"""The admission protocol: every plugin and the chain that joins them implement it."""
from __future__ import annotations

from typing import Protocol

from server.api.attributes import AdmissionAttributes


class AdmissionPlugin(Protocol):
    """Inspect (and for mutating plugins, change) a write; raise a StatusError to refuse it."""

    async def admit(self, attributes: AdmissionAttributes) -> None: ...
