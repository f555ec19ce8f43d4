"""The store of Roles, ClusterRoles and bindings: kube's escalation prevention, and the RBAC index told
of every write at once.

As kube's RBAC REST storage: a user may create or update a Role only with
rules it already holds where the Role applies, unless it may `escalate` that
role; a binding only to a role whose rules it holds, unless it may `bind` it;
an aggregationRule only with everything (`*` on `*`); `system:masters` and the
server's own controllers (no user) pass. Changes that touch only ownerReferences
and finalizers pass too, so the garbage collector is never stopped.
The answer to a refused write is kube's 403.
"""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.api.meta import metadata
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import MASTERS_GROUP, UserInfo
from kapi.auth.interfaces import Authorizer
from kapi.auth.rbac import CLUSTER_ROLES, GROUP, ROLES, RbacIndex, aggregate_errors
from kapi.auth.rbac_rules import ALL, PolicyRule, compact, go_quoted, rules_of, uncovered
from kapi.registry.builtin_strategy import as_dict
from kapi.registry.store import Store
from kapi.registry.write_steps import WriteOptions
from kapi.storage.interfaces import Preconditions

Object = dict[str, Any]
FULL_AUTHORITY = (PolicyRule((ALL,), (ALL,), (ALL,)), PolicyRule((ALL,), non_resource_urls=(ALL,)))
_GC_FIELDS = ("ownerReferences", "finalizers", "resourceVersion", "managedFields", "creationTimestamp", "uid",
              "generation", "selfLink")


def _without_gc_fields(obj: Object) -> Object:
    meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k not in _GC_FIELDS}
    return {**obj, "metadata": meta}


def only_gc_fields_changed(new: Object, old: Object) -> bool:
    """kube's `IsOnlyMutatingGCFields`: the write changes nothing but ownerReferences and finalizers."""
    return _without_gc_fields(new) == _without_gc_fields(old)


class RbacStore(Store):
    """A `Store` for one of the four RBAC kinds."""

    def __init__(self, *args: Any, index: RbacIndex, authorizer: Authorizer, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index, self._authorizer = index, authorizer

    # -- index feed ------------------------------------------------------------------------------------------------
    def _observe(self, obj: Object, gone: bool = False) -> Object:
        meta = metadata(obj)
        self._index.observe(self.definition.plural, str(meta.get("namespace") or ""), str(meta.get("name") or ""),
                            None if gone else obj, int(meta.get("resourceVersion") or 0))
        return obj

    async def create(self, namespace: str, obj: Object, version: str, opts: WriteOptions) -> Object:
        await self._no_escalation(namespace, obj, None, opts.user)
        created = await super().create(namespace, obj, version, opts)
        return created if opts.dry_run else self._observe(created)

    async def _updated(self, old: Object, new: Object, version: str, namespace: str, name: str,
                       subresource: str, opts: WriteOptions, require_rv: bool) -> Object:
        await self._no_escalation(namespace, new, old, opts.user)
        return await super()._updated(old, new, version, namespace, name, subresource, opts, require_rv)

    async def _write(self, namespace: str, name: str, version: str, subresource: str, opts: WriteOptions,
                     *args: Any, **kwargs: Any) -> Object:
        written = await super()._write(namespace, name, version, subresource, opts, *args, **kwargs)
        return written if opts.dry_run else self._observe(written)

    async def delete(self, namespace: str, name: str, version: str, preconditions: Preconditions | None,
                     opts: WriteOptions, propagation: str = "", grace_period: int | None = None) -> Object:
        deleted = await super().delete(namespace, name, version, preconditions, opts, propagation, grace_period)
        if opts.dry_run:
            return deleted
        pending = metadata(deleted).get("deletionTimestamp") and self.strategy.pending_finalizers(deleted)
        return self._observe(deleted, gone=not pending)

    # -- escalation prevention -------------------------------------------------------------------------------------
    async def _no_escalation(self, namespace: str, obj: Object, old: Object | None, user: UserInfo | None) -> None:
        if user is None or MASTERS_GROUP in user.groups or not isinstance(obj, dict):
            return
        if old is not None and only_gc_fields_changed(obj, old):
            return
        d = self.definition
        namespace = namespace if d.namespaced else ""
        name = str(metadata(obj).get("name") or metadata(obj).get("generateName") or "")
        if d.plural in (ROLES, CLUSTER_ROLES):
            if await self._may(user, "escalate", d.plural, namespace, name):
                return
            self._confirm(user, namespace, name, rules_of(obj))
            if d.plural == CLUSTER_ROLES and isinstance(obj.get("aggregationRule"), dict):
                owned, _ = self._index.rules_for(user, namespace)
                if uncovered(owned, FULL_AUTHORITY):
                    raise self._forbidden(name, "must have cluster-admin privileges to use the aggregationRule")
            return
        ref = as_dict(obj.get("roleRef"))
        kind, ref_name = str(ref.get("kind") or ""), str(ref.get("name") or "")
        ref_resource = ROLES if kind == "Role" else CLUSTER_ROLES
        if await self._may(user, "bind", ref_resource, namespace, ref_name):
            return
        rules = self._index.role_rules(namespace, ref_name) if kind == "Role" else self._index.cluster_role_rules(ref_name)
        if rules is None:
            raise errors.NotFound(f'{ref_resource[:-1]}.{GROUP} "{ref_name}" not found',
                                  details=errors.QualifiedKind(name=ref_name, group=GROUP, kind=ref_resource))
        self._confirm(user, namespace, name, rules)

    async def _may(self, user: UserInfo, verb: str, resource: str, namespace: str, name: str) -> bool:
        info = RequestInfo(path="", verb=verb, is_resource_request=True, group=GROUP, version="v1",
                           namespace=namespace, resource=resource, name=name)
        return (await self._authorizer.authorize(user, info)).allowed

    def _confirm(self, user: UserInfo, namespace: str, name: str, rules: tuple[PolicyRule, ...]) -> None:
        """kube's `ConfirmNoEscalation`: 403 listing the rules the user does not hold."""
        owned, problems = self._index.rules_for(user, namespace)
        missing = uncovered(owned, rules)
        if not missing:
            return
        listed = "\n".join(sorted({rule.compact_string() for rule in compact(missing)}))
        message = (f"user {errors.go_quote(user.name)} (groups={go_quoted(user.groups)}) is attempting to grant "
                   f"RBAC permissions not currently held:\n{listed}")
        if problems:
            message += f"; resolution errors: [{aggregate_errors(problems)}]"
        raise self._forbidden(name, message)

    def _forbidden(self, name: str, message: str) -> errors.Forbidden:
        d = self.definition
        return errors.Forbidden(f'{errors.resource_label(d.group, d.plural)} "{name}" is forbidden: {message}',
                                details=errors.QualifiedKind(name=name, group=d.group, kind=d.plural))
