"""CustomResourceDefinitions: a manifest that cannot define a served resource is a 422, not a crash."""
from __future__ import annotations

from typing import Any

from server.api.errors import Cause, field_invalid
from server.registry.strategy import Strategy
from server.scheme.cel import rule_schema_errors
from server.scheme.crd import CRDError, definition_from_crd
from server.scheme.structural import is_structural

Object = dict[str, Any]


class CRDStrategy(Strategy):
    """Validates the definition it would install; the CRD controller sets conditions."""

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"conditions": [], "acceptedNames": {"plural": "", "kind": ""}, "storedVersions": []}

    def validate(self, obj: Object, *, creating: bool) -> list[Cause]:
        causes = super().validate(obj, creating=creating)
        try:
            definition = definition_from_crd(obj)
        except CRDError as exc:
            return causes + [Cause("FieldValueInvalid", reason.strip(), "") for reason in str(exc).split(";")]
        if "." not in definition.group:
            causes.append(field_invalid("spec.group", definition.group, "should be a domain with at least one dot"))
        for i, version in enumerate(definition.versions):
            if version.schema is None:
                continue
            path = f"spec.versions[{i}].schema.openAPIV3Schema"
            causes += [Cause("FieldValueInvalid", reason, path) for reason in is_structural(version.schema)]
            causes += rule_schema_errors(version.schema, path)
        return causes
