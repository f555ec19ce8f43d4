"""Read `apiextensions.k8s.io/v1` CustomResourceDefinition manifests into ResourceDefs.

Malformed manifests raise `CRDError` with every reason found, so `kapi start`
can say exactly which file and field is wrong instead of crashing later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from server.scheme.definitions import PrinterColumn, ResourceDef, ScaleDef, VersionDef

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CRDError(ValueError):
    """A CRD manifest that cannot define a resource."""


def _require(obj: dict[str, Any], path: str, errors: list[str]) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            errors.append(f"{path}: Required value")
            return None
        cur = cur[part]
    return cur


def _columns(raw: Iterable[dict[str, Any]]) -> tuple[PrinterColumn, ...]:
    return tuple(
        PrinterColumn(
            name=str(c["name"]),
            type=str(c.get("type", "string")),
            json_path=str(c["jsonPath"]),
            description=str(c.get("description", "")),
            format=str(c.get("format", "")),
            priority=int(c.get("priority", 0)),
        )
        for c in raw
    )


def _scale(version: dict[str, Any], index: int, errors: list[str]) -> ScaleDef | None:
    raw = (version.get("subresources") or {}).get("scale")
    if raw is None:
        return None
    spec_path, status_path = raw.get("specReplicasPath"), raw.get("statusReplicasPath")
    for field, value in (("specReplicasPath", spec_path), ("statusReplicasPath", status_path)):
        if not isinstance(value, str) or not value.startswith("."):
            errors.append(f"spec.versions[{index}].subresources.scale.{field}: Invalid value: "
                          f"{value!r}: should be a json path under .spec or .status")
    return ScaleDef(str(spec_path), str(status_path), str(raw.get("labelSelectorPath") or ""))


def definition_from_crd(crd: dict[str, Any]) -> ResourceDef:
    """Turn one CRD object into a ResourceDef, or raise CRDError listing what is wrong."""
    errors: list[str] = []
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1" or crd.get("kind") != "CustomResourceDefinition":
        raise CRDError("not an apiextensions.k8s.io/v1 CustomResourceDefinition")
    spec = _require(crd, "spec", errors) or {}
    group = _require(crd, "spec.group", errors)
    names = _require(crd, "spec.names", errors) or {}
    plural = names.get("plural") if isinstance(names, dict) else None
    kind = names.get("kind") if isinstance(names, dict) else None
    if not plural:
        errors.append("spec.names.plural: Required value")
    if not kind:
        errors.append("spec.names.kind: Required value")
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        errors.append(f'spec.scope: Unsupported value: "{scope}"')
    raw_versions = spec.get("versions") or []
    if not raw_versions:
        errors.append("spec.versions: Required value")
    name = (crd.get("metadata") or {}).get("name")
    if plural and group and name and name != f"{plural}.{group}":
        errors.append(f'metadata.name: Invalid value: "{name}": must be spec.names.plural+"."+spec.group')
    versions: list[VersionDef] = []
    for i, v in enumerate(raw_versions):
        if not isinstance(v, dict) or not v.get("name"):
            errors.append(f"spec.versions[{i}].name: Required value")
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        try:
            columns = _columns(v.get("additionalPrinterColumns") or [])
        except (KeyError, TypeError, ValueError):
            errors.append(f"spec.versions[{i}].additionalPrinterColumns: Invalid value: needs name and jsonPath")
            columns = ()
        versions.append(
            VersionDef(
                name=str(v["name"]),
                served=bool(v.get("served", True)),
                storage=bool(v.get("storage", False)),
                schema=schema,
                printer_columns=columns,
                status_subresource="status" in ((v.get("subresources") or {})),
                scale=_scale(v, i, errors),
                deprecated=bool(v.get("deprecated", False)),
                deprecation_warning=str(v.get("deprecationWarning") or ""),
            )
        )
    if versions and sum(v.storage for v in versions) != 1:
        errors.append("spec.versions: Invalid value: must have exactly one version marked as storage version")
    if errors:
        raise CRDError("; ".join(errors))
    return ResourceDef(
        group=str(group),
        kind=str(kind),
        plural=str(plural),
        singular=str(names.get("singular") or str(kind).lower()),
        namespaced=scope == "Namespaced",
        versions=tuple(versions),
        short_names=tuple(names.get("shortNames") or ()),
        categories=tuple(names.get("categories") or ()),
        list_kind=str(names.get("listKind") or ""),
    )


def load_crd_manifests(path: Path) -> list[dict[str, Any]]:
    """Every CRD manifest in a (multi-document) YAML file, each checked; other kinds are ignored."""
    try:
        docs = list(yaml.load_all(path.read_text(), Loader=_Loader))
    except yaml.YAMLError as exc:
        raise CRDError(f"{path}: not valid YAML: {exc}") from exc
    out = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
            try:
                definition_from_crd(doc)
            except CRDError as exc:
                raise CRDError(f"{path}: {exc}") from exc
            out.append(doc)
    return out


def load_crd_file(path: Path) -> list[ResourceDef]:
    """Every CRD in a (multi-document) YAML file, as definitions."""
    return [definition_from_crd(doc) for doc in load_crd_manifests(path)]


def crd_files(directory: Path) -> list[Path]:
    """The manifest files of a directory (`*.yaml`, `*.yml`, `*.json`), in name order."""
    if not directory.is_dir():
        raise CRDError(f"{directory}: not a directory")
    return [p for p in sorted(directory.iterdir()) if p.suffix in (".yaml", ".yml", ".json") and p.is_file()]


def load_crd_dir(directory: Path) -> list[ResourceDef]:
    """All CRDs in a directory's manifest files, in name order."""
    return [d for path in crd_files(directory) for d in load_crd_file(path)]
