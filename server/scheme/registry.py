"""The scheme: every served resource, looked up by group/version/resource or kind.

Discovery, OpenAPI and the REST installer all read from here, so adding a
definition is all it takes to serve a new resource.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from kapi.scheme.definitions import ResourceDef, VersionDef

_KUBE_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key in kube's order: GA > beta > alpha, higher numbers first, then others by name."""
    m = _KUBE_VERSION.match(version)
    if not m:
        return (3, 0, 0, version)
    major, stage, minor = int(m.group(1)), m.group(2), int(m.group(3) or 0)
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -major, -minor, "")


@dataclass(frozen=True)
class GroupVersions:
    """A group and its served versions, preferred first."""

    group: str
    versions: tuple[str, ...]

    @property
    def preferred(self) -> str:
        return self.versions[0]


class Scheme:
    """Mutable catalogue of resource definitions (CRDs may come and go at run time)."""

    def __init__(self, definitions: Iterable[ResourceDef] = ()) -> None:
        self._by_resource: dict[tuple[str, str], ResourceDef] = {}
        self.generation = 0  # bumped on every change, so derived documents know when to rebuild
        self._groups: tuple[int, dict[str, GroupVersions]] = (-1, {})  # (generation, group table)
        for d in definitions:
            self.add(d)

    def add(self, definition: ResourceDef) -> None:
        key = (definition.group, definition.plural)
        if key in self._by_resource:
            raise ValueError(f"resource {definition.plural}.{definition.group} is defined twice")
        self._by_resource[key] = definition
        self.generation += 1

    def replace(self, definition: ResourceDef) -> None:
        """Add or update a definition (a CRD changed); derived documents rebuild on the next request."""
        key = (definition.group, definition.plural)
        if self._by_resource.get(key) != definition:
            self._by_resource[key] = definition
            self.generation += 1

    def remove(self, group: str, plural: str) -> None:
        if self._by_resource.pop((group, plural), None) is not None:
            self.generation += 1

    @property
    def definitions(self) -> list[ResourceDef]:
        return list(self._by_resource.values())

    def resource(self, group: str, plural: str) -> ResourceDef | None:
        return self._by_resource.get((group, plural))

    def lookup(self, group: str, version: str, plural: str) -> tuple[ResourceDef, VersionDef] | None:
        """The definition and version serving `/apis/<group>/<version>/<plural>`, if any."""
        d = self._by_resource.get((group, plural))
        if d is None:
            return None
        v = d.version(version)
        return (d, v) if v is not None else None

    def by_kind(self, group: str, kind: str) -> ResourceDef | None:
        for d in self._by_resource.values():
            if d.group == group and d.kind == kind:
                return d
        return None

    def resources_in(self, group: str, version: str) -> list[tuple[ResourceDef, VersionDef]]:
        out = []
        for d in self._by_resource.values():
            if d.group == group:
                v = d.version(version)
                if v is not None:
                    out.append((d, v))
        return sorted(out, key=lambda dv: dv[0].plural)

    def groups(self) -> list[GroupVersions]:
        """Every named API group (not core) with its served versions, in a stable order."""
        return list(self._group_table().values())

    def group(self, name: str) -> GroupVersions | None:
        """One named group: every request under /apis/ asks, so it is a lookup in a table kept per generation."""
        return self._group_table().get(name)

    def _group_table(self) -> dict[str, GroupVersions]:
        generation, table = self._groups
        if generation != self.generation:
            found: dict[str, set[str]] = {}
            for d in self._by_resource.values():
                if d.group:
                    found.setdefault(d.group, set()).update(v.name for v in d.served_versions)
            table = {g: GroupVersions(g, tuple(sorted(vs, key=version_priority))) for g, vs in sorted(found.items())
                     if vs}
            self._groups = (self.generation, table)
        return table
