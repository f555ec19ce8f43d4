"""CustomResourceDefinitions: a manifest that cannot define a served resource is a 422, not a crash."""
from __future__ import annotations

from typing import Any

import orjson

from kapi.api.errors import Cause, field_invalid
from kapi.registry.strategy import Strategy
from kapi.scheme.cel import rule_schema_errors
from kapi.scheme.crd import CRDError, definition_from_crd
from kapi.scheme.structural import schema_causes
from kapi.scheme.validation import validate_value

Object = dict[str, Any]


def _canonical(value: Any) -> bytes:
    """A byte form equal only for values Go's semantic DeepEqual calls equal (1 is not 1.0)."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:
        return repr(value).encode()


def _shared(versions: list[Any], key: str) -> bool:
    """Whether every version has the same `key`: kube's v1 conversion then lifts it to `spec.<key>`."""
    values = [_canonical(v.get(key) if isinstance(v, dict) else None) for v in versions]
    return bool(values) and all(v == values[0] for v in values)


def _default_causes(schema: Any, path: str) -> list[Cause]:
    """kube validates every `default` against the schema it sits in (a string property with a default of 3
    is refused when the CRD is written, not when an object is)."""
    if not isinstance(schema, dict):
        return []
    causes: list[Cause] = []
    if "default" in schema:
        causes += [Cause(c.reason, c.message, f"{path}.default" + (f".{c.field}" if c.field else ""))
                   for c in validate_value(schema["default"], schema)]
    for key, sub in (schema.get("properties") or {}).items():
        causes += _default_causes(sub, f"{path}.properties[{key}]")
    for key in ("items", "additionalProperties"):
        causes += _default_causes(schema.get(key), f"{path}.{key}")
    return causes


def _versions(obj: Object) -> list[Object]:
    spec = obj.get("spec")
    versions = spec.get("versions") if isinstance(spec, dict) else None
    return [v for v in versions if isinstance(v, dict)] if isinstance(versions, list) else []


class CRDStrategy(Strategy):
    """Validates the definition it would install; the CRD controller sets conditions."""

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        stored = [v["name"] for v in _versions(obj) if v.get("storage") is True and isinstance(v.get("name"), str)]
        obj["status"] = {"conditions": None, "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": stored}

    def default(self, obj: Object) -> None:
        """kube's v1 defaults: `spec.names.listKind` and `singular`, `spec.conversion` strategy None, a webhook
        service on port 443."""
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        names = spec.get("names")
        if isinstance(names, dict) and isinstance(names.get("kind"), str) and names["kind"]:
            names.setdefault("listKind", names["kind"] + "List")
            names.setdefault("singular", names["kind"].lower())
        conversion = spec.setdefault("conversion", {"strategy": "None"})
        webhook = conversion.get("webhook") if isinstance(conversion, dict) else None
        client = webhook.get("clientConfig") if isinstance(webhook, dict) else None
        service = client.get("service") if isinstance(client, dict) else None
        if isinstance(service, dict):
            service.setdefault("port", 443)

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        raw_spec = obj.get("spec")
        spec: Object = raw_spec if isinstance(raw_spec, dict) else {}
        raw_versions = spec.get("versions")
        versions: list[Any] = raw_versions if isinstance(raw_versions, list) else []
        try:
            definition_from_crd(obj)
        except CRDError as exc:
            causes += [self._lifted(c, versions) for c in exc.causes]
        group = spec.get("group")
        if isinstance(group, str) and group and "." not in group:
            causes.append(field_invalid("spec.group", group, "should be a domain with at least one dot"))
        # kube converts v1 to its internal version before validating: a schema every version shares
        # becomes `spec.validation`, and its errors are reported there.
        shared = _shared(versions, "schema")
        for i, version in enumerate(versions):
            if not isinstance(version, dict) or not isinstance(version.get("schema"), dict):
                continue
            schema = version["schema"].get("openAPIV3Schema")
            if not isinstance(schema, dict):
                continue
            if shared and i > 0:
                break
            path = "spec.validation.openAPIV3Schema" if shared else f"spec.versions[{i}].schema.openAPIV3Schema"
            causes += schema_causes(schema, path)
            causes += _default_causes(schema, path)
            causes += rule_schema_errors(schema, path)
        return causes

    @staticmethod
    def _lifted(cause: Cause, versions: list[Any]) -> Cause:
        """A per-version subresources error, where kube's conversion lifted shared subresources to the spec."""
        for i in range(len(versions)):
            prefix = f"spec.versions[{i}].subresources"
            if cause.field.startswith(prefix) and _shared(versions, "subresources"):
                return Cause(cause.reason, cause.message, "spec.subresources" + cause.field[len(prefix):])
        return cause
