"""An admission chain is itself a plugin: it runs its parts in order, first refusal wins."""
from __future__ import annotations

from typing import Sequence

from kapi.admission.interfaces import AdmissionPlugin
from kapi.api.attributes import AdmissionAttributes


class AdmissionChain:
    name = "chain"

    def __init__(self, plugins: Sequence[AdmissionPlugin] = ()) -> None:
        self._plugins = tuple(plugins)

    @property
    def plugins(self) -> tuple[AdmissionPlugin, ...]:
        return self._plugins

    async def admit(self, attributes: AdmissionAttributes) -> None:
        for plugin in self._plugins:
            await plugin.admit(attributes)

    async def validate(self, attributes: AdmissionAttributes) -> None:
        for plugin in self._plugins:
            await plugin.validate(attributes)
