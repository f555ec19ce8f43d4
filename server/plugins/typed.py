"""Typed resources: a plugin's `Resource` turned into a definition, a converter and a strategy.

Conversion goes through the hub, as kube's internal version does: any served
version is parsed into its model, turned into the hub, and the hub into the
wanted version. Defaulting and validation written in Python act on the hub.
"""
from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterator

from pydantic import BaseModel, ValidationError

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.api.validation import dns1123_label_errors, dns1123_subdomain_errors
from kapi.plugins.api import Invalid
from kapi.registry.strategy import Strategy
from kapi.scheme.conversion import version_of
from kapi.scheme.definitions import (
    CONNECT_METHODS, ConnectDef, PrinterColumn, ResourceDef, VersionDef, camel_case,
)
from kapi.plugins.model import schema_from_model

if TYPE_CHECKING:
    from kapi.plugins.api import Resource, Version

Object = dict[str, Any]


_KIND = re.compile(r"^[A-Z][A-Za-z0-9]*$")


def resource_problems(group: str, resource: Resource) -> list[str]:
    """Why `resource` cannot be served, in the words of kube's CRD validation; empty when it can."""
    problems = [f"group: {e}" for e in dns1123_subdomain_errors(group)] if group else ["group: must not be empty"]
    problems += [f"plural: {e}" for e in dns1123_label_errors(resource.plural)]
    if not _KIND.match(resource.kind):
        problems.append(f"kind {resource.kind!r}: must be CamelCase letters and digits")
    names = [v.name for v in resource.versions]
    if not names:
        problems.append("versions: must have at least one version")
    if len(set(names)) != len(names):
        problems.append(f"versions: names must be unique, got {names}")
    if sum(1 for v in resource.versions if v.storage) != 1:
        problems.append("versions: exactly one version must be the storage version")
    for v in resource.versions:
        problems += [f"version {v.name!r}: {e}" for e in dns1123_label_errors(v.name)]
        if not (isinstance(v.model, type) and issubclass(v.model, BaseModel)):
            problems.append(f"version {v.name!r}: model must be a pydantic model (a KubeObject)")
        if (v.to_hub is None) != (v.from_hub is None):
            problems.append(f"version {v.name!r}: give both to_hub and from_hub, or neither (the hub's own model)")
    problems += _connect_problems(resource)
    return problems


def _connect_problems(resource: Resource) -> list[str]:
    problems: list[str] = []
    names = [c.name for c in resource.connect]
    if len(set(names)) != len(names) or {"status", "scale"} & set(names):
        problems.append(f"connect: names must be unique and neither status nor scale, got {names}")
    for c in resource.connect:
        problems += [f"connect {c.name!r}: {e}" for e in dns1123_label_errors(c.name)]
        unknown = [m for m in c.methods if m not in CONNECT_METHODS]
        if not c.methods or unknown:
            problems.append(f"connect {c.name!r}: methods must be some of {', '.join(CONNECT_METHODS)}")
        if not callable(c.handler):
            problems.append(f"connect {c.name!r}: handler must be an async callable")
        if c.options_kind and not _KIND.match(c.options_kind):
            problems.append(f"connect {c.name!r}: options_kind must be CamelCase letters and digits")
    return problems


def definition_of(group: str, resource: Resource) -> ResourceDef:
    """The ResourceDef the scheme serves for `resource`, with its converter attached.

    Raises ValueError naming every problem when the resource cannot be served.
    """
    problems = resource_problems(group, resource)
    if problems:
        raise ValueError("; ".join(problems))
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
        connect=tuple(ConnectDef(c.name, tuple(c.methods),
                                 c.options_kind or f"{resource.kind}{camel_case(c.name)}Options",  # PodExecOptions
                                 c.handler) for c in resource.connect),
    )
    return replace(definition, converter=TypedConverter(definition, resource))


class Hub:
    """Moves objects between a resource's versions through its hub type."""

    def __init__(self, definition: ResourceDef, resource: Resource) -> None:
        self.definition, self.resource = definition, resource
        self._versions: dict[str, Version] = {v.name: v for v in resource.versions}

    def version(self, obj: Object) -> Version:
        return self._versions[version_of(obj, self.definition)]

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

    @contextmanager
    def plugin_code(self, obj: Object, what: str) -> Iterator[None]:
        """Errors from a plugin's models and functions as Status errors, never a bare 500.

        pydantic's and the plugin's own field errors are the object's fault (422);
        anything else is the plugin's (a 500 InternalError Status naming it).
        """
        d = self.definition
        try:
            yield
        except errors.StatusError:
            raise
        except ValidationError as exc:
            raise errors.invalid(d.group, d.kind, _name(obj), causes_of(exc)) from None
        except Invalid as exc:
            raise errors.invalid(d.group, d.kind, _name(obj), [e.to_cause() for e in exc.field_errors]) from None
        except Exception as exc:  # the plugin's bug must not become a traceback for the client
            raise errors.InternalError(f"{what} of {d.kind}.{d.group} failed in plugin code: "
                                       f"{type(exc).__name__}: {exc}") from None


class TypedConverter(Hub):
    """`Converter` for typed resources: version → hub → version, in Python (no I/O)."""

    async def convert(self, objs: list[Object], to_version: str) -> list[Object]:
        out = []
        for obj in objs:
            with self.plugin_code(obj, f"conversion to {to_version}"):
                out.append(self.from_hub(self.to_hub(obj), to_version))
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
        with self._hub.plugin_code(obj, "defaulting"):
            try:
                hub = self._hub.to_hub(obj)
            except ValidationError:
                return  # not well formed: validation reports why
            resource.default(hub)
            defaulted = self._hub.from_hub(hub, self._hub.version(obj).name)
        obj.clear()
        obj.update(defaulted)

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        check = self._hub.resource.validate
        with self._hub.plugin_code(obj, "validation"):
            try:
                hub = self._hub.to_hub(obj)
                old_hub = self._hub.to_hub(old) if old is not None else None
            except ValidationError as exc:
                return causes_of(exc)
            except Invalid as exc:
                return [e.to_cause() for e in exc.field_errors]
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
