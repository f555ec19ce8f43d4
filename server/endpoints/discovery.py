"""Discovery documents built from the scheme: `/version`, `/api`, `/apis`, resource lists.

Pure builders: each takes the scheme (or nothing) and returns the plain dict
kube-apiserver would serve; the HTTP layer only serialises them. Two forms:

- the classic documents (`APIVersions`, `APIGroupList`, `APIGroup`,
  `APIResourceList`) at `/api`, `/apis`, `/apis/<g>` and `/api/v1`, `/apis/<g>/<v>`;
- aggregated discovery (`APIGroupDiscoveryList`, `apidiscovery.k8s.io/v2` and
  `v2beta1`, same shape) answered at `/api` and `/apis` when the client asks
  for it in `Accept`; it lets kubectl discover everything in two requests.
"""
from __future__ import annotations

import base64
import hashlib
import importlib.metadata
from typing import Any

from kapi.scheme.definitions import DEFAULT_VERBS, ResourceDef, VersionDef
from kapi.scheme.registry import Scheme

# Verbs a stored resource serves unless its definition lists its own (watch is added when watch streams land).
RESOURCE_VERBS: tuple[str, ...] = DEFAULT_VERBS
STATUS_VERBS: tuple[str, ...] = ("get", "patch", "update")

KUBE_VERSION = "v1.32.0"  # the Kubernetes version kapi reports, so kubectl's dispatcher runs kubectl 1.32
GO_VERSION = "go1.23.3"
BUILD_DATE = "2024-12-11T00:00:00Z"

AGGREGATED_CONTENT_TYPE_V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
AGGREGATED_CONTENT_TYPE_V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
AGGREGATED_VERSIONS: tuple[str, ...] = ("v2", "v2beta1")


def kapi_version() -> str:
    try:
        return importlib.metadata.version("kapi")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def version_info() -> dict[str, Any]:
    """The `/version` document (`version.Info`): a Kubernetes version, kapi's own in gitCommit."""
    major, minor = KUBE_VERSION.lstrip("v").split(".")[:2]
    return {
        "major": major,
        "minor": minor,
        "gitVersion": KUBE_VERSION,
        "gitCommit": f"kapi-{kapi_version()}",
        "gitTreeState": "clean",
        "buildDate": BUILD_DATE,
        "goVersion": GO_VERSION,
        "compiler": "gc",
        "platform": "linux/amd64",
    }


def api_versions(server_address: str) -> dict[str, Any]:
    """`GET /api`: the core group's versions (`APIVersions`)."""
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    }


def _group_doc(group: str, versions: tuple[str, ...]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {"name": group, "versions": listed, "preferredVersion": listed[0]}


def api_group_list(scheme: Scheme) -> dict[str, Any]:
    """`GET /apis`: every named group, versions preferred first (`APIGroupList`)."""
    return {
        "kind": "APIGroupList",
        "apiVersion": "v1",
        "groups": [_group_doc(g.group, g.versions) for g in scheme.groups()],
    }


def api_group(scheme: Scheme, group: str) -> dict[str, Any] | None:
    """`GET /apis/<group>` (`APIGroup`), or None when the group is not served."""
    found = scheme.group(group) if group else None
    if found is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(found.group, found.versions)}


def storage_version_hash(group: str, version: str, kind: str) -> str:
    """kube's opaque hash of the storage group/version/kind: base64 of the first 8 bytes of SHA-256."""
    digest = hashlib.sha256(f"{group}/{version}/{kind}".encode()).digest()
    return base64.b64encode(digest[:8]).decode("ascii")


def _served(scheme: Scheme, group: str, version: str) -> list[tuple[ResourceDef, VersionDef]] | None:
    """The resources of a group-version, or None if it is not served (core v1 is always served)."""
    resources = scheme.resources_in(group, version)
    if resources or (group == "" and version == "v1"):
        return resources
    return None


def api_resource_list(scheme: Scheme, group: str, version: str) -> dict[str, Any] | None:
    """`GET /api/v1` (group "") or `/apis/<group>/<version>` (`APIResourceList`), or None."""
    resources = _served(scheme, group, version)
    if resources is None:
        return None
    out: list[dict[str, Any]] = []
    for d, v in resources:
        entry: dict[str, Any] = {
            "name": d.plural,
            "singularName": d.singular,
            "namespaced": d.namespaced,
            "kind": d.kind,
            "verbs": sorted(d.served_verbs),
        }
        if d.short_names:
            entry["shortNames"] = list(d.short_names)
        if d.categories:
            entry["categories"] = list(d.categories)
        if not d.virtual:  # kube gives no hash for resources without storage
            entry["storageVersionHash"] = storage_version_hash(d.group, d.storage_version.name, d.kind)
        out.append(entry)
        for sub, (group_, version_, kind), verbs in _subresources(d, v):
            entry = {"name": f"{d.plural}/{sub}", "singularName": "", "namespaced": d.namespaced,
                     "kind": kind, "verbs": verbs}
            if group_ != d.group or version_ != v.name:
                entry.update(group=group_, version=version_)
            out.append(entry)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": out,
    }


def _resource_discovery(d: ResourceDef, v: VersionDef) -> dict[str, Any]:
    def response_kind(group: str, version: str, kind: str) -> dict[str, str]:
        """A compiled kind names the group and version only where they differ from its own (kube's
        installer leaves them empty); a CRD's discovery names them always."""
        if d.builtin and (group, version) == (d.group, v.name):
            group = version = ""
        return {"group": group, "version": version, "kind": kind}

    entry: dict[str, Any] = {
        "resource": d.plural,
        "responseKind": response_kind(d.group, v.name, d.kind),
        "scope": "Namespaced" if d.namespaced else "Cluster",
        "singularResource": d.singular,
        "verbs": sorted(d.served_verbs),
    }
    if d.short_names:
        entry["shortNames"] = list(d.short_names)
    if d.categories:
        entry["categories"] = list(d.categories)
    subresources = [
        {"subresource": sub, "responseKind": response_kind(g, ver, kind), "verbs": verbs}
        for sub, (g, ver, kind), verbs in _subresources(d, v)
    ]
    if subresources:
        entry["subresources"] = subresources
    return entry


def _subresources(d: ResourceDef, v: VersionDef) -> list[tuple[str, tuple[str, str, str], list[str]]]:
    """(name, (group, version, kind) answered, verbs) of each subresource: status as the kind, scale as
    autoscaling/v1, a connect subresource as its options kind with its methods' verbs."""
    out = []
    if v.status_subresource:
        out.append(("status", (d.group, v.name, d.kind), sorted(STATUS_VERBS)))
    if v.scale is not None:
        out.append(("scale", ("autoscaling", "v1", "Scale"), sorted(STATUS_VERBS)))
    out += [(c.name, (d.group, v.name, c.options_kind), list(c.verbs)) for c in d.connect]
    out += [(a.name, (a.group, a.version, a.kind), list(a.verbs)) for a in d.actions]
    out += [(p, (d.group, v.name, d.kind), ["update"] if p == "finalize" else sorted(STATUS_VERBS))
            for p in d.part_subresources]
    return sorted(out)


def _group_discovery(scheme: Scheme, group: str, versions: tuple[str, ...]) -> dict[str, Any]:
    return {
        # kube leaves the name out for the core group ("" is its name).
        "metadata": {"name": group} if group else {},
        "versions": [
            {
                "version": version,
                "resources": [_resource_discovery(d, v) for d, v in scheme.resources_in(group, version)],
                "freshness": "Current",
            }
            for version in versions
        ],
    }


def aggregated_discovery(scheme: Scheme, core: bool, version: str = "v2") -> dict[str, Any]:
    """`APIGroupDiscoveryList` in `apidiscovery.k8s.io/<version>` (v2 or v2beta1, same shape).

    core=True is what `/api` answers (the core group only), core=False what
    `/apis` answers (every named group, in the order of `/apis`).
    """
    if version not in AGGREGATED_VERSIONS:
        raise ValueError(f"unknown aggregated discovery version {version!r}")
    if core:
        items = [_group_discovery(scheme, "", ("v1",))]
    else:
        items = [_group_discovery(scheme, g.group, g.versions) for g in scheme.groups()]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": f"apidiscovery.k8s.io/{version}",
        "metadata": {},
        "items": items,
    }


def aggregated_content_type(version: str) -> str:
    """The Content-Type that marks an aggregated discovery answer of this version."""
    types = {"v2": AGGREGATED_CONTENT_TYPE_V2, "v2beta1": AGGREGATED_CONTENT_TYPE_V2BETA1}
    if version not in types:
        raise ValueError(f"unknown aggregated discovery version {version!r}")
    return types[version]
