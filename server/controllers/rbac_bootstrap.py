"""kube's default RBAC policy at start, and the ClusterRole aggregation controller.

`RbacBootstrap.ensure()` is kube-apiserver's `rbac/bootstrap-roles` post-start
hook: every bootstrap ClusterRole, ClusterRoleBinding, Role and RoleBinding is
created when missing and reconciled (additively) when present, so clusters
upgraded or restarted on old data get what kube's release expects while
user additions stay. Servers sharing an etcd may race: an AlreadyExists,
Conflict or vanished object re-runs that object, as kube's reconciler does.

`ClusterRoleAggregator` is kube-controller-manager's clusterrole-aggregation
controller: an aggregated ClusterRole's rules are the rules of every other
ClusterRole its `aggregationRule.clusterRoleSelectors` select, selector by
selector, roles in name order, each rule once. Without it `admin`, `edit` and
`view` grant nothing. On any ClusterRole change every aggregated role is
recomputed (there are few, and kube does the same: it cannot tell which depend
on which); `view` feeds `edit` feeds `admin`, so a pass repeats until stable.
"""
from __future__ import annotations

import copy
import logging
from typing import Any

from kapi.admission.webhook_match import parse_selector  # metav1.LabelSelector → a parsed selector
from kapi.api import errors
from kapi.auth.rbac import CLUSTER_ROLE_BINDINGS, CLUSTER_ROLES, GROUP, ROLE_BINDINGS
from kapi.auth.rbac_bootstrap import BootstrapPolicy, load, must_recreate, reconcile, semantic
from kapi.controllers.watch_loop import follow
from kapi.registry.store import Store, WriteOptions
from kapi.storage.interfaces import Preconditions, Storage, WatchEvent

log = logging.getLogger("kapi.controllers.rbac_bootstrap")
Object = dict[str, Any]
_ATTEMPTS = 4  # kube's reconciler re-runs an object a few times when it appears or vanishes meanwhile
_MAX_PASSES = 10  # aggregation chains (view → edit → admin) settle in a few passes; a cycle cannot spin


class RbacBootstrap:
    """Creates or reconciles kube's bootstrap RBAC objects; nothing when the RBAC kinds are not served."""

    def __init__(self, stores: dict[tuple[str, str], Store], policy: BootstrapPolicy | None = None) -> None:
        self._stores = stores
        self._policy = policy if policy is not None else load()

    async def ensure(self) -> None:
        for plural, expected in self._policy.objects():
            store = self._stores.get((GROUP, plural))
            if store is None:
                continue  # not served (--api-groups): nothing to create
            try:
                await self._ensure_one(plural, store, expected)
            except errors.StatusError as exc:  # kube logs and goes on with the others
                log.warning("unable to reconcile %s.%s/%s: %s", plural, GROUP, expected["metadata"]["name"],
                            exc.message)

    async def _ensure_one(self, plural: str, store: Store, expected: Object) -> None:
        meta = expected["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        for _ in range(_ATTEMPTS):
            try:
                existing = await store.get(namespace, name, "v1")
            except errors.NotFound:
                if await self._create(store, namespace, expected):
                    return
                continue  # created by someone else meanwhile: reconcile theirs
            wanted = reconcile(plural, existing, expected)
            if wanted is None:
                return
            try:
                if plural in (ROLE_BINDINGS, CLUSTER_ROLE_BINDINGS) and must_recreate(existing, expected):
                    uid = str((existing.get("metadata") or {}).get("uid") or "")
                    await store.delete(namespace, name, "v1", Preconditions(uid=uid or None), WriteOptions())
                    if await self._create(store, namespace, wanted):
                        return
                    continue
                await store.update(namespace, name, wanted, "v1", "", WriteOptions())
                return
            except (errors.Conflict, errors.NotFound):
                continue  # changed or deleted meanwhile: look again
        raise errors.Conflict(f"gave up after {_ATTEMPTS} attempts: the object kept changing")

    async def _create(self, store: Store, namespace: str, obj: Object) -> bool:
        """Create `obj` (False when it already exists); a Role's namespace is created first, as kube does."""
        if namespace:
            await self._ensure_namespace(namespace)
        try:
            await store.create(namespace, copy.deepcopy(obj), "v1", WriteOptions())
            return True
        except errors.AlreadyExists:
            return False

    async def _ensure_namespace(self, namespace: str) -> None:
        namespaces = self._stores.get(("", "namespaces"))
        if namespaces is None:
            return
        try:
            await namespaces.get("", namespace, "v1")
            return
        except errors.NotFound:
            pass
        try:
            await namespaces.create("", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
                                    "v1", WriteOptions())
        except (errors.AlreadyExists, errors.Forbidden):
            pass


# -- aggregation ------------------------------------------------------------------------------------------------
def aggregated_rules(role: Object, cluster_roles: list[Object]) -> list[Object]:
    """The rules kube's aggregation controller gives `role` from the other ClusterRoles.

    Selector by selector; within one, matching roles in name order (`role`
    itself skipped); each rule in its role's order, added once (equal rules,
    as kube's semantic equality sees them, count once across all selectors).
    """
    name = (role.get("metadata") or {}).get("name")
    by_name = sorted(cluster_roles, key=lambda r: str((r.get("metadata") or {}).get("name") or ""))
    rules: list[Object] = []
    seen: list[Any] = []
    for raw in _selectors(role):
        selector = parse_selector(raw)
        for other in by_name:
            meta = other.get("metadata") or {}
            if meta.get("name") == name or not selector.matches(meta.get("labels") or {}):
                continue
            for rule in other.get("rules") or []:
                key = semantic(rule)
                if key not in seen:
                    seen.append(key)
                    rules.append(copy.deepcopy(rule))
    return rules


def _selectors(role: Object) -> list[Any]:
    rule = role.get("aggregationRule")
    selectors = rule.get("clusterRoleSelectors") if isinstance(rule, dict) else None
    return selectors if isinstance(selectors, list) else []


class ClusterRoleAggregator:
    """Keeps every aggregated ClusterRole's rules the union of the roles it selects."""

    def __init__(self, stores: dict[tuple[str, str], Store], storage: Storage) -> None:
        self._store = stores.get((GROUP, CLUSTER_ROLES))
        self._storage = storage

    async def sync(self) -> int:
        """Aggregate every aggregated role; the revision to watch from."""
        revision = await self._storage.current_revision()
        if self._store is not None:
            await self.aggregate()
        return revision

    async def run(self, revision: int | None = None) -> None:
        """Re-aggregate on every ClusterRole change after `revision` (a sync's result; None syncs first)."""
        if self._store is None:
            return  # ClusterRoles are not served
        prefix = self._store.collection_prefix("")
        await follow(self._storage, prefix, await self.sync() if revision is None else revision, self._changed,
                     self.sync, log)

    async def _changed(self, _event: WatchEvent) -> None:
        await self.aggregate()

    async def aggregate(self) -> int:
        """Bring every aggregated role up to date, pass after pass until none changes; the number of writes."""
        assert self._store is not None
        writes = 0
        for _ in range(_MAX_PASSES):
            roles = {r["metadata"]["name"]: r for r in (await self._store.list("", "v1"))["items"]}
            changed = 0
            for name in sorted(roles):
                role = roles[name]
                if not isinstance(role.get("aggregationRule"), dict):
                    continue
                rules = aggregated_rules(role, list(roles.values()))
                if semantic(rules) == semantic(role.get("rules") or []):
                    continue
                written = await self._write(name, rules)
                if written is not None:
                    roles[name] = written  # later roles in this pass see it
                    changed += 1
            writes += changed
            if not changed:
                break
        return writes

    async def _write(self, name: str, rules: list[Object]) -> Object | None:
        """Set the rules (kube force-applies them); a role gone or no longer aggregated is left alone."""
        assert self._store is not None

        def with_rules(current: Object) -> Object:
            if not isinstance(current.get("aggregationRule"), dict):
                return current
            return {**current, "rules": copy.deepcopy(rules)}

        try:
            return await self._store.patch("", name, "v1", "", with_rules, WriteOptions())
        except errors.NotFound:
            return None
        except errors.StatusError as exc:
            log.warning("unable to aggregate clusterrole.%s/%s: %s", GROUP, name, exc.message)
            return None
