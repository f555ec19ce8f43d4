"""Discovery and OpenAPI documents with the aggregated group-versions merged in.

As kube's aggregator: groups are ordered by priority (built-in groups first,
then by `groupPriorityMinimum`, CRD and plugin groups counting as 1000, as kube
registers CRDs), a group's versions by `versionPriority` (local versions 100),
the first being preferred. An APIService is listed in `/apis` whether or not it
is available; in aggregated discovery an unavailable one is `freshness: Stale`
without resources. OpenAPI v2 takes the backends' paths and definitions; the v3
index lists each backend's document, served from what the last check fetched.
"""
from __future__ import annotations

import hashlib
from typing import Any, Callable

from kapi.registry.aggregated import (
    BUILTIN_GROUP_PRIORITY,
    LOCAL_GROUP_PRIORITY,
    LOCAL_VERSION_PRIORITY,
    AggregatedApis,
    Backend,
)

Object = dict[str, Any]


def _ordered(local: list[tuple[str, bool, list[str]]], table: AggregatedApis) -> list[tuple[str, list[str]]]:
    """(group, versions in preference order) for local groups — (name, built in, versions) in served
    order — and remote ones, in kube's group order."""
    remote = table.groups()
    entries: list[tuple[int, int, str, list[tuple[int, str]]]] = []
    for rank, (name, builtin, versions) in enumerate(local):
        priority = BUILTIN_GROUP_PRIORITY if builtin else LOCAL_GROUP_PRIORITY
        ranked = [(LOCAL_VERSION_PRIORITY - i, v) for i, v in enumerate(versions)]
        for backend in remote.pop(name, ()):
            priority = max(priority, backend.group_priority)
            if backend.version not in versions:
                ranked.append((backend.version_priority, backend.version))
        entries.append((priority, rank, name, ranked))
    for rank, name in enumerate(sorted(remote), start=len(local)):
        backends = remote[name]
        entries.append((max(b.group_priority for b in backends), rank, name,
                        [(b.version_priority, b.version) for b in backends]))
    entries.sort(key=lambda e: (-e[0], e[1]))
    return [(name, [v for _, v in sorted(ranked, key=lambda r: -r[0])]) for _, _, name, ranked in entries]


def _group_doc(group: str, versions: list[str]) -> Object:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def merged_group_list(local: Object, builtin: Callable[[str], bool], table: AggregatedApis) -> Object:
    """`GET /apis` (APIGroupList) with the APIServices' groups."""
    groups = [(g["name"], builtin(g["name"]), [v["version"] for v in g["versions"]]) for g in local["groups"]]
    return {**local, "groups": [_group_doc(name, versions) for name, versions in _ordered(groups, table)]}


def merged_group(local: Object | None, group: str, builtin: bool, table: AggregatedApis) -> Object | None:
    """`GET /apis/<group>` (APIGroup) when APIServices serve versions of it; None when nothing does."""
    versions = [v["version"] for v in local["versions"]] if local is not None else []
    if not any(b.group == group for b in table.backends()):
        return local
    merged = dict(_ordered([(group, builtin, versions)] if versions else [], table))[group]
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, merged)}


def discovery_resources(resource_list: Object) -> list[Object]:
    """A backend's APIResourceList as aggregated discovery's APIResourceDiscovery entries."""
    top: dict[str, Object] = {}
    for r in resource_list.get("resources") or ():
        name = str(r.get("name", ""))
        kind = {"group": r.get("group", ""), "version": r.get("version", ""), "kind": r.get("kind", "")}
        parent, slash, sub = name.partition("/")
        if slash:
            if parent in top:
                top[parent].setdefault("subresources", []).append(
                    {"subresource": sub, "responseKind": kind, "verbs": list(r.get("verbs") or [])})
            continue
        entry: Object = {"resource": name, "responseKind": kind,
                         "scope": "Namespaced" if r.get("namespaced") else "Cluster",
                         "singularResource": r.get("singularName", ""), "verbs": list(r.get("verbs") or [])}
        for key, out in (("shortNames", "shortNames"), ("categories", "categories")):
            if r.get(key):
                entry[out] = list(r[key])
        top[name] = entry
    return list(top.values())


def _remote_version(backend: Backend) -> Object:
    if backend.available and backend.resources is not None:
        return {"version": backend.version, "resources": discovery_resources(backend.resources),
                "freshness": "Current"}
    return {"version": backend.version, "freshness": "Stale"}


def merged_aggregated(local: Object, builtin: Callable[[str], bool], table: AggregatedApis) -> Object:
    """`GET /apis` as an APIGroupDiscoveryList with the APIServices' group-versions."""
    items = {(i.get("metadata") or {}).get("name", ""): i for i in local["items"]}
    groups = [(name, builtin(name), [v["version"] for v in item["versions"]]) for name, item in items.items()]
    out = []
    for name, versions in _ordered(groups, table):
        local_versions = {v["version"]: v for v in (items.get(name) or {}).get("versions", ())}
        entries = [local_versions.get(v) or _remote_version(_must(table.get(name, v))) for v in versions]
        out.append({"metadata": {"name": name}, "versions": entries})
    return {**local, "items": out}


def _must(backend: Backend | None) -> Backend:
    assert backend is not None  # _ordered only names versions that are local or in the table
    return backend


def merged_openapi_v2(local: Object, table: AggregatedApis) -> Object:
    """The v2 document with each available backend's paths (of its group-version) and definitions."""
    paths, definitions = dict(local.get("paths") or {}), dict(local.get("definitions") or {})
    for backend in table.backends():
        doc = backend.openapi_v2 or {}
        prefix = f"/apis/{backend.group}/{backend.version}"
        paths.update({p: v for p, v in (doc.get("paths") or {}).items() if p.startswith(prefix)})
        for name, schema in (doc.get("definitions") or {}).items():
            definitions.setdefault(name, schema)
    return {**local, "paths": paths, "definitions": definitions}


def merged_openapi_v3_index(local: Object, table: AggregatedApis) -> Object:
    paths = dict(local.get("paths") or {})
    for backend in table.backends():
        if backend.openapi_v3 is not None:
            key = f"apis/{backend.group}/{backend.version}"
            digest = hashlib.sha512(backend.openapi_v3).hexdigest().upper()
            paths[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {**local, "paths": paths}
