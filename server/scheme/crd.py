"""Read `apiextensions.k8s.io/v1` CustomResourceDefinition manifests into ResourceDefs.

Malformed manifests raise `CRDError` with every reason found, so `kapi start`
can say exactly which file and field is wrong instead of crashing later.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import yaml

from kapi.api.errors import Cause, field_forbidden, field_not_supported, field_required, field_value_invalid
from kapi.scheme.conversion_webhook import WebhookConverter
from kapi.scheme.definitions import PrinterColumn, ResourceDef, ScaleDef, VersionDef
from kapi.webhook import ClientConfig
from kapi.webhook.validation import client_config_causes, required, review_version, review_versions_causes

_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class CRDError(ValueError):
    """A CRD manifest that cannot define a resource; `causes` are kube's field errors for it.

    Its text is every cause as `field: message`, joined by "; " (what `kapi start` prints).
    """

    def __init__(self, message: str | list[Cause]) -> None:
        if isinstance(message, list):
            self.causes = list(message)
            message = "; ".join(f"{c.field}: {c.message}" if c.field else c.message for c in self.causes)
        else:
            self.causes = [Cause("FieldValueInvalid", message, "")]
        super().__init__(message)


def _require(obj: dict[str, Any], path: str, errors: list[Cause]) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            errors.append(field_required(path))
            return None
        cur = cur[part]
    return cur


def _columns(raw: Iterable[dict[str, Any]]) -> tuple[PrinterColumn, ...]:
    return tuple(
        PrinterColumn(
            name=str(c["name"]),
            type=str(c.get("type", "string")),
            json_path=str(c["jsonPath"]),
            description=str(c.get("description")
                            or f"Custom resource definition column (in JSONPath format): {c['jsonPath']}"),
            format=str(c.get("format", "")),
            priority=int(c.get("priority", 0)),
        )
        for c in raw
    )


def _scale(version: dict[str, Any], index: int, errors: list[Cause]) -> ScaleDef | None:
    raw = (version.get("subresources") or {}).get("scale")
    if raw is None:
        return None
    spec_path, status_path = raw.get("specReplicasPath"), raw.get("statusReplicasPath")
    for field, value in (("specReplicasPath", spec_path), ("statusReplicasPath", status_path)):
        if not isinstance(value, str) or not value.startswith("."):
            errors.append(field_value_invalid(f"spec.versions[{index}].subresources.scale.{field}", value,
                                              "should be a json path under .spec or .status"))
    return ScaleDef(str(spec_path), str(status_path), str(raw.get("labelSelectorPath") or ""))


def _conversion(spec: dict[str, Any], errors: list[Cause]) -> tuple[dict[str, Any], str] | None:
    """`spec.conversion` checked as kube checks its internal form; (clientConfig, review version) for a webhook.

    kube validates after converting v1 to its internal version, so the errors name
    `spec.conversion.webhookClientConfig` and `spec.conversion.conversionReviewVersions`.
    """
    conversion = spec.get("conversion")
    if conversion is None:
        return None
    if not isinstance(conversion, dict):
        errors.append(field_value_invalid("spec.conversion", conversion, "must be an object"))
        return None
    strategy = conversion.get("strategy")
    webhook = conversion.get("webhook") if isinstance(conversion.get("webhook"), dict) else {}
    client, versions = webhook.get("clientConfig"), webhook.get("conversionReviewVersions")
    if not strategy:
        errors.append(required("spec.conversion.strategy"))
    elif strategy not in ("None", "Webhook"):
        errors.append(field_not_supported("spec.conversion.strategy", strategy, ["None", "Webhook"]))
    if strategy != "Webhook":
        if client is not None:
            errors.append(field_forbidden("spec.conversion.webhookClientConfig",
                                          "should not be set when strategy is not set to Webhook"))
        if versions:
            errors.append(field_forbidden("spec.conversion.conversionReviewVersions",
                                          "should not be set when strategy is not set to Webhook"))
        return None
    found = len(errors)
    if client is None:
        errors.append(required("spec.conversion.webhookClientConfig", "required when strategy is set to Webhook"))
    else:
        errors.extend(client_config_causes("spec.conversion.webhookClientConfig", client))
    errors.extend(review_versions_causes("spec.conversion.conversionReviewVersions", versions, say_which=False))
    if len(errors) > found:
        return None
    return client, review_version(versions)


def definition_from_crd(crd: dict[str, Any]) -> ResourceDef:
    """Turn one CRD object into a ResourceDef, or raise CRDError listing what is wrong."""
    errors: list[Cause] = []
    if crd.get("apiVersion") != "apiextensions.k8s.io/v1" or crd.get("kind") != "CustomResourceDefinition":
        raise CRDError("not an apiextensions.k8s.io/v1 CustomResourceDefinition")
    spec = _require(crd, "spec", errors) or {}
    group = _require(crd, "spec.group", errors)
    names = _require(crd, "spec.names", errors) or {}
    plural = names.get("plural") if isinstance(names, dict) else None
    kind = names.get("kind") if isinstance(names, dict) else None
    if not plural:
        errors.append(field_required("spec.names.plural"))
    if not kind:
        errors.append(field_required("spec.names.kind"))
    scope = spec.get("scope", "Namespaced")
    if scope not in ("Namespaced", "Cluster"):
        errors.append(field_not_supported("spec.scope", scope, ["Cluster", "Namespaced"]))
    raw_versions = spec.get("versions") or []
    if not raw_versions:
        errors.append(field_required("spec.versions"))
    name = (crd.get("metadata") or {}).get("name")
    if plural and group and name and name != f"{plural}.{group}":
        errors.append(field_value_invalid("metadata.name", name, 'must be spec.names.plural+"."+spec.group'))
    versions: list[VersionDef] = []
    for i, v in enumerate(raw_versions):
        if not isinstance(v, dict) or not v.get("name"):
            errors.append(field_required(f"spec.versions[{i}].name"))
            continue
        schema = (v.get("schema") or {}).get("openAPIV3Schema")
        try:
            columns = _columns(v.get("additionalPrinterColumns") or [])
        except (KeyError, TypeError, ValueError):
            errors.append(Cause("FieldValueInvalid", "Invalid value: needs name and jsonPath",
                                f"spec.versions[{i}].additionalPrinterColumns"))
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
        errors.append(Cause("FieldValueInvalid", "Invalid value: must have exactly one version marked as storage "
                            "version", "spec.versions"))
    webhook = _conversion(spec, errors)
    if errors:
        raise CRDError(errors)
    converter = None
    if webhook is not None:  # strategy None keeps kube's apiVersion-only conversion (converter None)
        storage = next(v.name for v in versions if v.storage)
        converter = WebhookConverter(str(group), str(kind), storage, ClientConfig.from_api(webhook[0]), webhook[1])
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
        converter=converter,
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
