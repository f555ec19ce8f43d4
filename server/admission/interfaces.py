"""The admission protocol: every plugin and the chain that joins them implement it.

kube's admission runs in two phases around the strategy's validation:
mutating plugins (`admit`) may change the object; validating plugins
(`validate`) may only refuse it. A plugin implements either or both; the
`Plugin` base class gives it a no-op for the phase it leaves out.
"""
from __future__ import annotations

from typing import Any, Protocol

from kapi.api.attributes import AdmissionAttributes

Object = dict[str, Any]


class AdmissionPlugin(Protocol):
    """Inspect (and in `admit`, change) a write; raise a StatusError to refuse it."""

    async def admit(self, attributes: AdmissionAttributes) -> None: ...

    async def validate(self, attributes: AdmissionAttributes) -> None: ...


class Plugin:
    """A plugin that does nothing in either phase until a subclass says otherwise."""

    name = ""

    async def admit(self, attributes: AdmissionAttributes) -> None:
        """Mutating phase: change `attributes.obj` in place, or raise to refuse."""

    async def validate(self, attributes: AdmissionAttributes) -> None:
        """Validating phase: raise to refuse; the object is final."""


class ObjectReader(Protocol):
    """What a plugin may read of other objects (the Go world's listers), in their storage version.

    `resource` is the plural name; `group` is "" for the core group.
    """

    async def get(self, group: str, resource: str, namespace: str, name: str) -> Object | None: ...

    async def list(self, group: str, resource: str, namespace: str = "") -> list[Object]: ...

    async def count(self, group: str, resource: str, namespace: str = "") -> int: ...
