"""Typed resources: a plugin's `Resource` turned into a definition, a converter and a strategy.

Conversion goes through the hub, as kube's internal version does: any served
version is parsed into its model, turned into the hub, and the hub into the
wanted version. Defaulting and validation written in Python act on the hub.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

from server.api import errors
from server.api.errors import Cause
from server.registry.strategy import Strategy
from server.scheme.conversion import version_of
from server.scheme.definitions import PrinterColumn, ResourceDef, VersionDef
from server.plugins.model import schema_from_model

if TYPE_CHECKING:
    from server.plugins.api import Resource, Version

Object = dict[str, Any]


def definition_of(group: str, resource: Resource) -> ResourceDef:
    """The ResourceDef the scheme serves for `resource`, with its converter attached."""
    versions = tuple(
        VersionDef(
            name=v.name, served=True, storage=v.storage, schema=schema_from_model(v.model),
            printer_columns=tuple(PrinterColumn(c.name, c.type, c.json_path, c.description, c.format, c.priority)
                                  for c in v.columns),
            status_subresource="status" in v.model.model_fields,
            deprecated=v.deprecated,
        )
        for v in resource.versions
    )
    definition = ResourceDef(
        group=group, kind=resource.kind, plural=resource.plural, singular=resource.singular or resource.kind.lower(),
        namespaced=resource.namespaced, versions=versions, short_names=tuple(resource.short_names),
        categories=tuple(resource.categories), verbs=tuple(resource.verbs) if resource.verbs else None,
        builtin=True,  # compiled into the server, as an aggregated server's types: CRDs cannot take its names
    )
    return ResourceDef(**{**definition.__dict__, "converter": TypedConverter(definition, resource)})


class Hub:
    """Moves objects between a resource's versions through its hub type."""

    def __init__(self, definition: ResourceDef, resource: Resource) -> None:
        self.definition, self.resource = definition, resource
        self._versions: dict[str, Version] = {v.name: v for v in resource.versions}

    def version(self, obj: Object) -> Version:
        return self._versions[version_of(obj, self.definition)]

    def parse(self, obj: Object) -> BaseModel:
        """`obj` as its version's model (pydantic's ValidationError when it does not fit)."""
        return self.version(obj).model.model_validate(obj)

    def to_hub(self, obj: Object) -> BaseModel:
        version = self.version(obj)
        typed = version.model.model_validate(obj)
        return version.to_hub(typed) if version.to_hub else typed

    def from_hub(self, hub: BaseModel, to_version: str) -> Object:
        version = self._versions[to_version]
        typed = version.from_hub(hub) if version.from_hub else version.model.model_validate(hub.model_dump())
        out = typed.model_dump(mode="json", by_alias=True, exclude_none=True)
        out["apiVersion"] = self.definition.api_version(to_version)
        out["kind"] = self.definition.kind
        return out


class TypedConverter(Hub):
    """`Converter` for typed resources: version → hub → version, in Python (no I/O)."""

    async def convert(self, objs: list[Object], to_version: str) -> list[Object]:
        out = []
        for obj in objs:
            try:
                hub = self.to_hub(obj)
            except ValidationError as exc:
                d = self.definition
                raise errors.invalid(d.group, d.kind, _name(obj), causes_of(exc)) from None
            out.append(self.from_hub(hub, to_version))
        return out


class TypedStrategy(Strategy):
    """Runs the resource's Python defaulting and validation on the hub form of each write."""

    def __init__(self, definition: ResourceDef) -> None:
        super().__init__(definition)
        assert isinstance(definition.converter, TypedConverter)
        self._hub: TypedConverter = definition.converter

    def default(self, obj: Object) -> None:
        resource = self._hub.resource
        if resource.default is None:
            return
        try:
            hub = self._hub.to_hub(obj)
        except ValidationError:
            return  # not well formed: validation reports why
        resource.default(hub)
        defaulted = self._hub.from_hub(hub, self._hub.version(obj).name)
        obj.clear()
        obj.update(defaulted)

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        try:
            hub = self._hub.to_hub(obj)
            old_hub = self._hub.to_hub(old) if old is not None else None
        except ValidationError as exc:
            return causes_of(exc)
        check = self._hub.resource.validate
        return [c.to_cause() for c in check(hub, old_hub)] if check else []


def causes_of(exc: ValidationError) -> list[Cause]:
    """pydantic's errors as kube field errors (`spec.items[0].name`)."""
    causes = []
    for err in exc.errors():
        path = ""
        for part in err["loc"]:
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        if err["type"] == "missing":
            causes.append(errors.field_required(path))
        else:
            causes.append(errors.field_value_invalid(path, err.get("input"), err["msg"]))
    return causes


def _name(obj: Object) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name", "")) if isinstance(meta, dict) else ""
