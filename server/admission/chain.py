"""An admission chain is itself a plugin: it runs its parts in order, first refusal wins."""
from __future__ import annotations

from typing import Sequence

from server.admission.interfaces import AdmissionPlugin
from server.api.attributes import AdmissionAttributes


class AdmissionChain:
    def __init__(self, plugins: Sequence[AdmissionPlugin] = ()) -> None:
        self._plugins = tuple(plugins)

    async def admit(self, attributes: AdmissionAttributes) -> None:
        for plugin in self._plugins:
            await plugin.admit(attributes)
