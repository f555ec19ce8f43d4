"""The steps every write takes between the request and storage, as a mixin of `Store`.

Conversion into and out of the storage version, then kube's order for a
write: mutating admission, (the Store fills in system fields and prepares the
object,) the strategy's and the schema's validation (plus the strategy's own
defaulting and in-code checks), validating admission.
Kept apart from the verbs so each reads on its own.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from kapi.admission.interfaces import AdmissionPlugin
from kapi.api import errors
from kapi.api.attributes import AdmissionAttributes
from kapi.api.meta import drop_empty_metadata
from kapi.api.user import UserInfo
from kapi.registry.decoding import type_mismatch, undecodable
from kapi.registry.identity import check_identity
from kapi.registry.kind_defaults import default_kind
from kapi.registry.strategy import Strategy
from kapi.registry.zero_values import fill_zero_status
from kapi.scheme.cel import has_rules, validate_rules_after
from kapi.scheme.conversion import convert, convert_all
from kapi.scheme.defaulting import apply_defaults
from kapi.scheme.definitions import ConnectDef, ResourceDef
from kapi.scheme.pruning import prune
from kapi.scheme.validation import prune_non_nullable_nulls, validate

Object = dict[str, Any]
# Who kube credits in managedFields for what its controllers write (kapi's in-process loops stand for them).
CONTROLLER_MANAGER = "kube-controller-manager"


@dataclass
class WriteOptions:
    """Per-request write settings; `warnings` collects what goes back in `Warning` headers."""

    dry_run: bool = False
    field_validation: str = "Warn"
    warnings: list[str] = field(default_factory=list)
    user: UserInfo | None = None  # who asks: admission plugins and webhooks see it
    manager: str = "kube-apiserver"  # the field manager credited in managedFields (kapi's own writes: its name)
    applied: bool = False  # the object comes from server-side apply, which kept managedFields itself
    manager_subresource: str = ""  # a subresource written through the main object (scale) names its entries
    patched: bool = False  # a JSON, merge or strategic patch: strict errors name the patch (422), not the body


def copy_object(obj: Object) -> Object:
    return orjson.loads(orjson.dumps(obj))


class WriteSteps:
    """Needs `definition`, `strategy` and `_admission` from the Store it is mixed into."""

    definition: ResourceDef
    strategy: Strategy
    _admission: AdmissionPlugin | None

    async def _as(self, obj: Object, version: str) -> Object:
        """`obj` (owned by the caller) as `version`; without a converter, no await on the hot path."""
        d = self.definition
        if d.converter is None:
            return convert(obj, d, version)
        return (await convert_all([obj], d, version))[0]

    async def _out(self, obj: Object, version: str) -> Object:
        apply_defaults(obj, self.definition.storage_version.schema)  # kube defaults what it reads from storage
        return await self._as(obj, version)

    async def _out_all(self, objs: list[Object], version: str) -> list[Object]:
        d = self.definition
        for obj in objs:
            apply_defaults(obj, d.storage_version.schema)
        return await convert_all(objs, d, version)

    def _decoded(self, obj: Object, version: str) -> None:
        """kube decodes (dropping empty metadata collections) and defaults the body before field ownership
        and admission see the object."""
        drop_empty_metadata(obj)
        vdef = self.definition.version(version)
        apply_defaults(obj, vdef.schema if vdef else None)
        self.strategy.default(obj)
        if self.definition.builtin:
            default_kind(self.definition.group, self.definition.plural, obj)

    async def _to_storage(self, obj: Object) -> Object:
        return await self._as(obj, self.definition.storage_version.name)

    # -- checks shared by create and update --------------------------------
    def _check_identity(self, obj: Object, version: str, namespace: str, name: str = "") -> None:
        check_identity(self.definition, obj, version, namespace, name)

    async def _validate(self, obj: Object, version: str, opts: WriteOptions, creating: bool,
                        old: Object | None = None) -> None:
        d = self.definition
        vdef = d.version(version)
        schema = vdef.schema if vdef else None
        unknown = prune(obj, schema)
        if unknown:
            if opts.field_validation == "Strict":
                why = "strict decoding error: " + ", ".join(f'unknown field "{p}"' for p in unknown)
                if opts.patched:
                    raise errors.invalid(d.group, d.kind, _name_of(obj), [errors.field_invalid(
                        "patch", orjson.dumps(obj).decode(), why)])
                raise undecodable(d, d.kind, version, why)
            if opts.field_validation == "Warn":
                opts.warnings.extend(f'unknown field "{p}"' for p in unknown)
        prune_non_nullable_nulls(obj, schema)
        apply_defaults(obj, schema)
        self.strategy.default(obj)
        typed = validate(obj, schema, list_types=not d.builtin)
        type_mismatch(d, version, schema, typed)
        causes = self.strategy.validate(obj, creating=creating) + typed
        old_view = old
        if old is not None and (d.converter is not None or has_rules(schema)):  # as the request's version
            old_view = await self._out(copy_object(old), version)
        if not causes:
            causes = self.strategy.validate_in_code(obj, old_view)
        if has_rules(schema):
            causes += validate_rules_after(causes, obj, old_view, schema, opts.warnings)
        if causes:
            raise errors.invalid(d.group, d.kind, _name_of(obj), causes)
        if d.builtin:  # after validation: a zero value may be a null the schema does not allow
            fill_zero_status(d.group, d.plural, obj)

    def _attributes(self, operation: str, version: str, obj: Object | None, old: Object | None,
                    namespace: str, name: str, subresource: str, opts: WriteOptions) -> AdmissionAttributes:
        d = self.definition
        return AdmissionAttributes(
            operation=operation, group=d.group, version=version, resource=d.plural, kind=d.kind,
            namespace=namespace, name=name, subresource=subresource, obj=obj, old_obj=old,
            dry_run=opts.dry_run, user=opts.user, warnings=opts.warnings,
            versions=tuple(v.name for v in d.served_versions), convert=self._viewed_in,
        )

    async def _viewed_in(self, obj: Object, version: str) -> Object:
        """A copy of `obj` (in any served version) as `version`."""
        return await self._as(copy_object(obj), version)

    async def _mutated(self, attributes: AdmissionAttributes) -> None:
        """Mutating admission, on the object as the client sent it (kube runs it before the strategy
        fills in uid, creationTimestamp, a generated name or the kept half of a status update)."""
        if self._admission is not None:
            await self._admission.admit(attributes)

    async def _checked(self, attributes: AdmissionAttributes, opts: WriteOptions, creating: bool,
                       old: Object | None = None) -> None:
        """The strategy's and schema's validation, then validating admission on the final object."""
        assert attributes.obj is not None
        await self._validate(attributes.obj, attributes.version, opts, creating, old)
        if self._admission is not None:
            await self._admission.validate(attributes)

    async def admit_connect(self, namespace: str, name: str, version: str, connector: ConnectDef, options: Object,
                            opts: WriteOptions) -> None:
        """Admission of a connect request (operation CONNECT): the options object is what plugins and
        webhooks see, in the resource's group and version; there is no old object and no conversion."""
        if self._admission is None:
            return
        attributes = replace(self._attributes("CONNECT", version, options, None, namespace, name, connector.name, opts),
                             kind=connector.options_kind, versions=(), convert=None)
        await self._mutated(attributes)
        await self._admission.validate(attributes)


def _name_of(obj: Object) -> str:
    meta = obj.get("metadata") if isinstance(obj, dict) else None
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""
