"""Version conversion: one place that turns an object into another served version.

Today every resource converts with kube's `None` strategy (only apiVersion
changes); typed versions with a hub arrive with their own converters.
"""
from __future__ import annotations

from typing import Any

from server.scheme.definitions import ResourceDef


def convert(obj: dict[str, Any], definition: ResourceDef, to_version: str) -> dict[str, Any]:
    """Return `obj` as `to_version` (in place: callers own their copies).

    apiVersion and kind are put first, where kube-apiserver's encoder puts them.
    """
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    obj.clear()
    obj["apiVersion"] = definition.api_version(to_version)
    obj["kind"] = definition.kind
    obj.update(rest)
    return obj
