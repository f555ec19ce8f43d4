"""Kubernetes' built-in API as data: the 1.32 catalogue, read from the package's compact form.

`scripts/gen_kube_catalogue.py` distils Kubernetes' published OpenAPI v3
documents into `data/kube-<release>.json.gz`: for each served group-version the
resources (plural, kind, scope, verbs, subresources, short names, categories)
and every schema they reach, with `$ref`s shortened to component names.

Two views of a schema come out of it:

- `raw_components`: the documents' components as published, served back in
  `/openapi/v2` and `/openapi/v3` with references, as kube serves them;
- `resolved`: references inlined (shared, never copied: the Pod template is one
  graph node wherever it appears) and rewritten for kapi's structural
  validator, pruner and defaulter: int-or-string and quantities typed as kube's
  decoder accepts them, and zero-value defaults (`""`, `0`, `false`) dropped,
  because they only mirror Go's zero values and would hide "Required value".

Loading and resolving the whole catalogue costs about 10 ms, once per process.
"""
from __future__ import annotations

import gzip
from functools import lru_cache
from importlib import resources
from typing import Any

import orjson

from kapi.scheme.hpa_conversion import HPAConverter
from kapi.scheme.quantity import MARKER
from kapi.scheme.definitions import ActionDef, ResourceDef, ScaleDef, VersionDef

RELEASE = "v1.32.0"
# Groups of review kinds: created and answered at once by code, never stored.
REVIEW_GROUPS = frozenset({"authentication.k8s.io", "authorization.k8s.io"})
# The API groups the catalogue describes ("" is core): their kinds take kube's schema names.
GROUPS = frozenset({"", "apps", "batch", "autoscaling", "policy", "networking.k8s.io", "rbac.authorization.k8s.io",
                    "storage.k8s.io", "discovery.k8s.io", "scheduling.k8s.io", "node.k8s.io",
                    "certificates.k8s.io", "coordination.k8s.io", "flowcontrol.apiserver.k8s.io", "events.k8s.io",
                    *REVIEW_GROUPS})
# Every group kube-apiserver itself serves: its kinds are Go structs, decoded and updated by kube's rules.
KUBE_APISERVER_GROUPS = GROUPS | {"admissionregistration.k8s.io", "apiextensions.k8s.io", "apiregistration.k8s.io"}
Schema = dict[str, Any]

_INT_OR_STRING = "io.k8s.apimachinery.pkg.util.intstr.IntOrString"
_QUANTITY = "io.k8s.apimachinery.pkg.api.resource.Quantity"
_RAW_EXTENSION = "io.k8s.apimachinery.pkg.runtime.RawExtension"  # embedded JSON kube keeps as sent (never pruned)
_ZERO_DEFAULTS = ("", 0, False)

# Field selectors kube-apiserver accepts beyond metadata.name/namespace (its per-kind field label conversions).
SELECTABLE_FIELDS: dict[tuple[str, str], tuple[str, ...]] = {
    ("", "pods"): ("spec.nodeName", "spec.restartPolicy", "spec.schedulerName", "spec.serviceAccountName",
                   "spec.hostNetwork", "status.phase", "status.podIP", "status.podIPs", "status.nominatedNodeName"),
    ("", "events"): tuple(f"involvedObject.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath",
    )) + ("reason", "reportingComponent", "source", "type"),
    ("events.k8s.io", "events"): tuple(f"regarding.{f}" for f in (
        "kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath",
    )) + ("reason", "reportingController", "type"),
    ("", "namespaces"): ("status.phase",),
    ("", "secrets"): ("type",),
    ("", "nodes"): ("spec.unschedulable",),
    ("", "replicationcontrollers"): ("status.replicas",),
    ("", "services"): ("spec.clusterIP", "spec.type"),
    ("apps", "replicasets"): ("status.replicas",),
    ("batch", "jobs"): ("status.successful",),
    ("certificates.k8s.io", "certificatesigningrequests"): ("spec.signerName",),
}
# Subresources kube answers by code (a verb on the object, not a stored field set).
_ACTIONS = {("", "pods", "binding"), ("", "pods", "eviction"), ("", "pods", "log"), ("", "serviceaccounts", "token")}
# Subresources that write one part of the object (the part is the registry's business).
PART_SUBRESOURCES = ("approval", "ephemeralcontainers", "finalize")
# Kinds whose versions differ in shape.
_CONVERTERS = {("autoscaling", "horizontalpodautoscalers"): HPAConverter()}
# Which version stores a kind served in several (kube's storage version).
_STORAGE_VERSIONS = {"autoscaling": "v2"}


@lru_cache(maxsize=None)
def load(release: str = RELEASE) -> dict[str, Any]:
    """The catalogue as generated: {"release", "groups": {gv: [resource…]}, "components": {name: schema}}."""
    raw = (resources.files("kapi.scheme") / "data" / f"kube-{release}.json.gz").read_bytes()
    loaded: dict[str, Any] = orjson.loads(gzip.decompress(raw))
    return loaded


def raw_components(release: str = RELEASE) -> dict[str, Schema]:
    """The published component schemas by name (references as short names)."""
    components: dict[str, Schema] = load(release)["components"]
    return components


class _Resolver:
    """Inlines references once per component, sharing the result (the graph has no cycles)."""

    def __init__(self, components: dict[str, Schema]) -> None:
        self._components = components
        self._done: dict[str, Schema] = {}

    def component(self, name: str) -> Schema:
        hit = self._done.get(name)
        if hit is None:
            if name in (_INT_OR_STRING, _QUANTITY):
                hit = {"x-kubernetes-int-or-string": True} if name == _INT_OR_STRING else {MARKER: True}
                hit["description"] = self._components[name].get("description", "")
            elif name == _RAW_EXTENSION:
                hit = {"type": "object", "x-kubernetes-preserve-unknown-fields": True,
                       "description": self._components[name].get("description", "")}
            else:
                hit = self.node(self._components[name])
            self._done[name] = hit
        return hit

    def node(self, schema: Any) -> Any:
        if isinstance(schema, list):
            return [self.node(v) for v in schema]
        if not isinstance(schema, dict):
            return schema
        ref = schema.get("$ref")
        if isinstance(ref, str):
            target = self.component(ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref" and not _zero_default(k, v)}
            return {**target, **siblings} if siblings else target
        out: Schema = {}
        for key, value in schema.items():
            if _zero_default(key, value):
                continue
            if key == "properties" and isinstance(value, dict):
                out[key] = {name: self.node(sub) for name, sub in value.items()}
            elif key in ("items", "additionalProperties"):
                out[key] = self.node(value)
            else:
                out[key] = value
        return out


def _zero_default(key: str, value: Any) -> bool:
    return key == "default" and not isinstance(value, (dict, list)) and value in _ZERO_DEFAULTS


@lru_cache(maxsize=None)
def _resolver(release: str) -> _Resolver:
    return _Resolver(raw_components(release))


def resolved(name: str, release: str = RELEASE) -> Schema:
    """A component with references inlined and typed for structural validation (shared; never mutate)."""
    return _resolver(release).component(name)


def component_name(group: str, version: str, kind: str) -> str:
    """kube's schema name of a built-in kind: `io.k8s.api.apps.v1.Deployment`."""
    return f"io.k8s.api.{group.split('.')[0] or 'core'}.{version}.{kind}"


def group_versions(release: str = RELEASE) -> list[tuple[str, str]]:
    out = []
    for gv in load(release)["groups"]:
        group, _, version = gv.rpartition("/")
        out.append((group, version))
    return out


def _version_def(group: str, version: str, res: dict[str, Any], storage: bool,
                 printers: dict[tuple[str, str], tuple[Any, ...]]) -> VersionDef:
    subs = res["subresources"]
    # kube's Scale shows the selector (a LabelSelector, or an RC's label map) as a string
    scale = ScaleDef(".spec.replicas", ".status.replicas", ".spec.selector") if "scale" in subs else None
    return VersionDef(
        name=version, storage=storage, schema=_root_schema(component_name(group, version, res["kind"])),
        printer_columns=printers.get((group, res["plural"]), ()), scale=scale,
        status_subresource="status" in subs,
    )


def _root_schema(name: str) -> Schema:
    """The kind's resolved schema with a plain object for metadata at the root (kapi checks it in code)."""
    schema = resolved(name)
    props = dict(schema.get("properties") or {})
    props["metadata"] = {"type": "object"}
    if isinstance(props.get("status"), dict):  # controllers write status; kube requires none of it on create
        props["status"] = {k: v for k, v in props["status"].items() if k not in ("default", "required")}
    return {**schema, "properties": props}


def definitions(groups: frozenset[str] | None = None, release: str = RELEASE) -> list[ResourceDef]:
    """The catalogue's stored resources as definitions, one per (group, plural), every served version.

    `groups` keeps only those API groups ("" is core); None keeps all. The reviews (virtual kinds that
    code answers, `kapi.scheme.builtin_auth` picks them) are not among them.
    """
    return [d for d in _all_definitions(release) if not d.virtual and (groups is None or d.group in groups)]


def builtin(group: str, plural: str, release: str = RELEASE) -> ResourceDef:
    """One built-in definition by group and plural (KeyError when the catalogue has none)."""
    found = {(d.group, d.plural): d for d in _all_definitions(release)}
    return found[(group, plural)]


@lru_cache(maxsize=None)
def _all_definitions(release: str) -> tuple[ResourceDef, ...]:
    from kapi.scheme.builtin_printers import PRINTER_COLUMNS  # they read descriptions from this catalogue

    found: dict[tuple[str, str], list[tuple[str, dict[str, Any]]]] = {}
    for gv, resources_ in load(release)["groups"].items():
        group, _, version = gv.rpartition("/")
        for res in resources_:
            found.setdefault((group, res["plural"]), []).append((version, res))
    out: list[ResourceDef] = []
    for (group, plural), versions in found.items():
        first = versions[0][1]
        storage = _STORAGE_VERSIONS.get(group, versions[0][0])
        verbs = tuple(first["verbs"])
        actions = tuple(
            ActionDef(name, sub["kind"], sub["group"], sub["version"], tuple(sub["verbs"]))
            for name, sub in first["subresources"].items() if (group, plural, name) in _ACTIONS
        )
        out.append(ResourceDef(
            group=group, kind=first["kind"], plural=plural, singular=first["kind"].lower(),
            namespaced=first["namespaced"], short_names=tuple(first["shortNames"]),
            categories=tuple(first["categories"]), builtin=True,
            verbs=None if set(verbs) == _DEFAULT else verbs,
            versions=tuple(_version_def(group, v, res, v == storage, PRINTER_COLUMNS) for v, res in versions),
            extra_selectable_fields=SELECTABLE_FIELDS.get((group, plural), ()),
            virtual=group in REVIEW_GROUPS, actions=actions, part_subresources=tuple(n for n in first["subresources"] if n in PART_SUBRESOURCES),
            converter=_CONVERTERS.get((group, plural)),
            returns_deleted_object=(group, plural) in RETURNS_DELETED_OBJECT,
        ))
    return tuple(out)


# Built-ins whose delete answers with the object (kube's `ReturnDeletedObject`); the rest answer a Status.
RETURNS_DELETED_OBJECT = frozenset({
    ("", "pods"), ("", "podtemplates"), ("", "persistentvolumeclaims"), ("", "persistentvolumes"),
    ("", "resourcequotas"), ("", "serviceaccounts"), ("", "services"), ("", "namespaces"),
    ("storage.k8s.io", "csidrivers"), ("storage.k8s.io", "csinodes"), ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattachments"),
})
_DEFAULT = {"create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"}
