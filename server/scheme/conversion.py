"""Version conversion: the one place that turns objects into another served version.

Most resources convert with kube's `None` strategy (only apiVersion changes).
A definition with a `converter` (typed Python versions through a hub, or a
CRD's conversion webhook) converts through it instead; converters are async
because a webhook is a network call, and take a batch so a list is one call.
"""
from __future__ import annotations

from typing import Any, Protocol

from kapi.scheme.definitions import ResourceDef

Object = dict[str, Any]


class Converter(Protocol):
    """Turns objects of one resource, each in any served version, into `to_version`.

    Raises a StatusError when an object cannot be converted. The returned
    objects may be the given dicts changed in place or new ones.
    """

    async def convert(self, objs: list[Object], to_version: str) -> list[Object]: ...


def convert(obj: Object, definition: ResourceDef, to_version: str) -> Object:
    """`obj` as `to_version` under the `None` strategy (in place: callers own their copies).

    apiVersion and kind are put first, where kube-apiserver's encoder puts them.
    """
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    obj.clear()
    obj["apiVersion"] = definition.api_version(to_version)
    obj["kind"] = definition.kind
    obj.update(rest)
    return obj


def version_of(obj: Object, definition: ResourceDef) -> str:
    """The version named by `obj`'s apiVersion (the storage version when it names none of ours)."""
    api_version = obj.get("apiVersion")
    if isinstance(api_version, str):
        version = api_version.rpartition("/")[2]
        if definition.version(version) is not None or any(v.name == version for v in definition.versions):
            return version
    return definition.storage_version.name


async def convert_all(objs: list[Object], definition: ResourceDef, to_version: str) -> list[Object]:
    """Every object as `to_version`: through the definition's converter, if it has one."""
    converter: Converter | None = definition.converter
    if converter is None:
        return [convert(o, definition, to_version) for o in objs]
    needs = [o for o in objs if o.get("apiVersion") != definition.api_version(to_version)]
    if needs:
        converted = iter(await converter.convert(needs, to_version))
        objs = [next(converted) if o.get("apiVersion") != definition.api_version(to_version) else o
                for o in objs]
    return [convert(o, definition, to_version) for o in objs]
