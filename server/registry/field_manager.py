"""Server-side apply and field ownership for one resource: kube's field manager.

Every write records who set which fields in `metadata.managedFields`:

- `update` (create, update, every non-apply patch) credits the request's
  manager with what it changed, and takes what it changed or removed away
  from everybody else (kube's `Update` path: a plain write never conflicts);
- `apply` merges an apply configuration into the live object, makes the
  applier the owner of exactly the fields it sent, removes fields it sent
  last time and no longer sends (unless somebody else owns them), and refuses
  to change fields other managers own unless forced: 409 listing each one.

The steps and their order are kube's (k8s.io/apimachinery
`util/managedfields/internal`: version check, last-applied migration for
`kubectl`, before-first-apply, manager info, timestamps, stripping of
metadata that nobody owns, update-manager cap); the merge algebra is
`kapi.api.structured_merge`. Fields a subresource resets (status through
the main resource, everything but status through `/status`) are never owned
through it, as kube's reset-fields filters say.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

import orjson

from kapi.api import errors
from kapi.api.fieldpath import FieldSet, Path, under
from kapi.api.meta import now_rfc3339
from kapi.api.structured_merge import compare, merge, remove_items, to_field_set, with_named_fields
from kapi.api.patch import deep_copy
from kapi.api.structured_schema import StructureError, equal, zero_value
from kapi.registry.managed_fields import (
    APPLY,
    UPDATE,
    Conflicts,
    Entry,
    Managed,
    cap_update_managers,
    conflict_error,
    decode_or_empty,
    encode,
    identifier,
    is_reset,
)
from kapi.scheme import catalogue
from kapi.scheme.definitions import ResourceDef

Object = dict[str, Any]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"
_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_BEFORE_FIRST_APPLY = "before-first-apply"
_STATUS = ("f", "status")
_WORKFLOW = "\x00current-operation"
_STRIPPED: frozenset[Path] = frozenset(
    [(("f", "apiVersion"),), (("f", "kind"),), (("f", "metadata"),)]
    + [(("f", "metadata"), ("f", f)) for f in ("name", "namespace", "creationTimestamp", "selfLink", "uid",
                                              "clusterName", "generation", "managedFields", "resourceVersion")])


def manager_from(field_manager: str, user_agent: str) -> str:
    """kube's `managerOrUserAgent`: the fieldManager, else the User-Agent up to its first `/`,
    printable characters only, at most 128 bytes."""
    if field_manager:
        return field_manager
    out = ""
    for ch in user_agent.split("/")[0]:
        if not ch.isprintable():
            continue
        if len((out + ch).encode()) > 128:
            break
        out += ch
    return out


class FieldManager:
    """Field ownership for one resource, in any of its served versions."""

    def __init__(self, definition: ResourceDef) -> None:
        self.definition = definition
        self._schemas: dict[str, Any] = {}
        self._empties: dict[str, Object] = {}
        self._served = frozenset(definition.api_version(v.name) for v in definition.served_versions)
        self._has_status = definition.has_status

    # -- schema and filters ---------------------------------------------------------
    def schema(self, version: str) -> Any:
        """The version's schema as apply reads it: kube's ObjectMeta under metadata, apiVersion and kind."""
        hit = self._schemas.get(version)
        if hit is None:
            vdef = self.definition.version(version)
            root = vdef.schema if vdef is not None and isinstance(vdef.schema, dict) else {}
            props = dict(root.get("properties") or {})
            props.update(apiVersion={"type": "string"}, kind={"type": "string"},
                         metadata=catalogue.resolved(_OBJECT_META))
            hit = self._schemas[version] = {**root, "type": "object", "properties": props}
        return hit

    def empty(self, version: str) -> Object:
        """What kube compares a new object against: the kind's zero value (a bare apiVersion/kind for
        custom resources, which have no Go type). Shared: never change it."""
        hit = self._empties.get(version)
        if hit is None:
            d = self.definition
            hit = {"apiVersion": d.api_version(version), "kind": d.kind}
            if d.builtin:
                hit.update(zero_value(self.schema(version)), metadata={})
            self._empties[version] = hit
        return hit

    def _owned(self, paths: FieldSet, subresource: str) -> FieldSet:
        """Drop what this request's subresource resets (kube's reset fields)."""
        if not self._has_status:
            return paths
        if subresource == "status":
            return under(paths, "status")
        if subresource:
            return paths
        return {p for p in paths if p[:1] != (_STATUS,)}

    def _known(self, managed: Managed) -> Managed:
        """Entries of versions no longer served are dropped, as kube drops what it cannot convert."""
        return {k: e for k, e in managed.items() if e.api_version in self._served}

    # -- Update ------------------------------------------------------------------------
    async def update(self, live: Object | None, new: Object, version: str, manager: str, subresource: str = "",
                     convert: Convert | None = None) -> None:
        """Record in `new` what the write from `live` (None: a create) to `new` credits to `manager`.

        `convert(obj, version)` shows an object in another served version: managers that wrote through
        another version lose what changed as seen in their version, as kube compares them."""
        meta = new.get("metadata")
        if not isinstance(meta, dict):
            return
        requested = meta.pop("managedFields", None)
        live_meta = (live or {}).get("metadata") or {}
        if subresource:
            managed = decode_or_empty(live_meta.get("managedFields"))
        elif is_reset(requested):
            managed = {}
        else:
            managed = decode_or_empty(requested) or decode_or_empty(live_meta.get("managedFields"))
        if not managed and live is not None:
            return  # kube does not start tracking an existing object on a plain write
        base = live if live is not None else self.empty(version)
        managed = self._known(managed)
        views = await self._views(base, new, managed, version, convert)
        managed = self._track_update(managed, base, new, version, manager or "unknown", subresource, views)
        self._store(new, managed)

    def _track_update(self, managed: Managed, live: Object, new: Object, version: str, manager: str,
                      subresource: str, views: Views | None = None) -> Managed:
        diffs = _Diffs(self, version, live, new, subresource, views)
        changed, removed = diffs.of(self.definition.api_version(version))
        out: Managed = {}
        for key, entry in managed.items():
            theirs_changed, theirs_removed = diffs.of(entry.api_version)
            left = entry.fields - theirs_changed - theirs_removed
            if left:
                out[key] = entry.with_fields(left)
        mine = (changed - removed) - _STRIPPED
        if mine:
            key = identifier(manager, UPDATE, self.definition.api_version(version), subresource)
            previous = out.get(key)
            fields = mine | previous.fields if previous is not None else mine
            out[key] = Entry(manager, UPDATE, self.definition.api_version(version), frozenset(fields),
                             now_rfc3339(), subresource)
        return cap_update_managers(out)

    async def _views(self, before: Object, after: Object, managed: Managed, version: str,
                     convert: Convert | None) -> Views:
        """`before` and `after` in each other version a manager wrote through (only where versions differ in
        shape: a definition without a converter has the same fields in every version)."""
        here = self.definition.api_version(version)
        wanted = {e.api_version for e in managed.values()} - {here}
        if convert is None or self.definition.converter is None or not wanted:
            return {}
        out: Views = {}
        for api_version in sorted(wanted):
            name = api_version.rpartition("/")[2]
            with contextlib.suppress(errors.StatusError):
                out[api_version] = (await convert(before, name), await convert(after, name))
        return out

    @staticmethod
    def _store(obj: Object, managed: Managed) -> None:
        meta = obj.setdefault("metadata", {})
        if managed:
            meta["managedFields"] = encode(managed)
        else:
            meta.pop("managedFields", None)

    # -- Apply -------------------------------------------------------------------------
    async def apply(self, live: Object | None, config: Object, version: str, manager: str, force: bool,
                    subresource: str = "", convert: Convert | None = None) -> Object:
        """The object `config` applied by `manager` makes of `live` (None: apply creates it)."""
        d = self.definition
        self.check_kind(config, version)
        config_meta = config.get("metadata")
        if isinstance(config_meta, dict) and config_meta.get("managedFields") is not None:
            raise errors.BadRequest("metadata.managedFields must be nil")
        schema = self.schema(version)
        try:
            applied = self._owned(to_field_set(config, schema, strict=True), subresource)
        except StructureError as exc:
            name = config_meta.get("name", "") if isinstance(config_meta, dict) else ""
            namespace = config_meta.get("namespace", "") if isinstance(config_meta, dict) else ""
            raise errors.BadRequest(f"failed to create typed patch object ({namespace}/{name}; "
                                    f"{_gvk(d.group, version, d.kind)}): {exc}") from None
        base = live if live is not None else deep_copy(self.empty(version))  # merge shares what it keeps
        stored = (live or {}).get("metadata") or {}
        managed = self._known(decode_or_empty(stored.get("managedFields")))
        if not managed and live is not None:  # fields set before anybody applied belong to "before-first-apply"
            managed = self._track_update({}, self.empty(version), live, version, _BEFORE_FIRST_APPLY, subresource)
        attempt = _Attempt(managed, base, config, applied, version, manager, subresource, convert)
        try:
            result = await self._apply(attempt, force)
        except Conflicts as conflicts:
            allowed = self._allowed_by_last_applied(base, version) if manager == "kubectl" else set()
            remaining = [(path, entry) for path, entry in conflicts.items if path not in allowed]
            if remaining:
                raise conflict_error(remaining) from None
            result = await self._apply(attempt, True)
        if manager == "kubectl" and _last_applied(result):
            annotations = result.setdefault("metadata", {}).setdefault("annotations", {})
            annotations[LAST_APPLIED] = _last_applied_text(config)
        return result

    async def _apply(self, a: _Attempt, force: bool) -> Object:
        schema = self.schema(a.version)
        here = self.definition.api_version(a.version)
        key = identifier(a.manager, APPLY, "", a.subresource)
        last = a.managed.get(key)
        merged = merge(a.live, a.config, schema)
        entry = Entry(a.manager, APPLY, here, frozenset(a.applied - _STRIPPED),
                      last.time if last is not None else None, a.subresource)
        managed = {**a.managed, key: entry}
        if last is not None and not last.fields <= entry.fields:  # it dropped fields it set last time
            same = {k: e for k, e in managed.items() if e.api_version == here or self.definition.converter is None}
            pruned = self._prune(merged, same, set(last.fields), schema)
            others = {k: e for k, e in managed.items() if k not in same}
            if not await self._takes_from(others, merged, pruned, a):
                merged = pruned
        views = await self._views(a.live, merged, managed, a.version, a.convert)
        managed = self._settle(managed, a.live, merged, key, force, a.subresource, a.version, views)
        changed = not equal(a.live, merged)
        if changed and key in managed:
            managed[key] = Entry(a.manager, APPLY, here, managed[key].fields, now_rfc3339(), a.subresource)
        result = merged if changed else deep_copy(a.live)
        self._store(result, managed)
        return result

    async def _takes_from(self, others: Managed, merged: Object, pruned: Object, a: _Attempt) -> bool:
        """Whether pruning would remove something a manager of another version owns (seen in its version).
        kube adds such items back; kapi keeps the merged object whole instead."""
        views = await self._views(merged, pruned, others, a.version, a.convert)
        for entry in others.values():
            if entry.api_version not in views:
                continue
            before, after = views[entry.api_version]
            theirs = self.schema(entry.api_version.rpartition("/")[2])
            lost = with_named_fields(to_field_set(before, theirs), theirs) - \
                with_named_fields(to_field_set(after, theirs), theirs)
            if lost & with_named_fields(set(entry.fields), theirs):
                return True
        return False

    def _prune(self, merged: Object, managed: Managed, last: FieldSet, schema: Any) -> Object:
        """Remove what the applier set last time and no longer sets, unless somebody else owns it
        (structured-merge-diff's prune: remove, add back owned items, add back dangling items)."""
        def named(paths: FieldSet) -> FieldSet:
            return with_named_fields(paths, schema)

        owned: FieldSet = set()
        for entry in managed.values():
            owned |= entry.fields
        everything = named(to_field_set(merged, schema))
        removed_first = named(to_field_set(remove_items(merged, named(last), schema), schema))
        pruned = remove_items(merged, everything - (removed_first | named(owned)), schema)
        kept = named(to_field_set(pruned, schema))
        result = remove_items(merged, (everything - kept) & named(last), schema)
        return result if isinstance(result, dict) else {}

    def _settle(self, managed: Managed, live: Object, merged: Object, key: str, force: bool, subresource: str,
                version: str, views: Views) -> Managed:
        """Other managers lose what the apply changes (a conflict unless forced) or removes, as seen in
        each one's version."""
        diffs = _Diffs(self, version, live, merged, subresource, views)
        conflicts: list[tuple[Path, Entry]] = []
        out: Managed = {}
        for other, entry in managed.items():
            if other == key:
                out[other] = entry
                continue
            changed, removed = diffs.of(entry.api_version)
            clash = entry.fields & changed
            conflicts.extend((path, entry) for path in clash)
            left = entry.fields - clash - removed
            if left:
                out[other] = entry.with_fields(left)
        if conflicts and not force:
            raise Conflicts(conflicts)
        if not out.get(key, Entry("", APPLY, "", frozenset())).fields:
            out.pop(key, None)
        return out

    def _allowed_by_last_applied(self, live: Object, version: str) -> FieldSet:
        """Conflicts kubectl may override when moving from client-side apply: fields the last-applied
        annotation set and the live object still holds as set."""
        text = _last_applied(live)
        try:
            last = orjson.loads(text) if text else None
        except orjson.JSONDecodeError:
            return set()
        if not isinstance(last, dict) or last.get("apiVersion") != self.definition.api_version(version):
            return set()
        schema = self.schema(version)
        diff = compare(last, live, schema)
        return to_field_set(last, schema) - diff.modified - diff.added - diff.removed

    def check_kind(self, config: Object, version: str) -> None:
        d = self.definition
        api_version = str(config.get("apiVersion") or "")
        kind = str(config.get("kind") or "")
        group, _, ver = api_version.rpartition("/")
        if (group, ver, kind) != (d.group, version, d.kind):
            raise errors.BadRequest(f"invalid object type: {_gvk(group, ver, kind)}")


Views = dict[str, tuple[Object, Object]]  # another apiVersion → (before, after) as seen in it
Convert = Callable[[Object, str], Awaitable[Object]]


@dataclass(frozen=True)
class _Attempt:
    """One apply request, as `_apply` runs it (twice when kubectl's last-applied fields are forced)."""

    managed: Managed
    live: Object
    config: Object
    applied: FieldSet
    version: str
    manager: str
    subresource: str
    convert: Convert | None


class _Diffs:
    """What a write changed, seen in each manager's version (kube compares in the manager's own version);
    a version without a view sees the request's."""

    def __init__(self, fm: FieldManager, version: str, before: Object, after: Object, subresource: str,
                 views: Views | None) -> None:
        self._fm, self._subresource = fm, subresource
        self._here = fm.definition.api_version(version)
        self._views = {**(views or {}), self._here: (before, after)}
        self._seen: dict[str, tuple[FieldSet, FieldSet]] = {}

    def of(self, api_version: str) -> tuple[FieldSet, FieldSet]:
        """(added or modified, removed) paths in `api_version`, less what the subresource resets."""
        if api_version not in self._views:
            api_version = self._here
        hit = self._seen.get(api_version)
        if hit is None:
            before, after = self._views[api_version]
            diff = compare(before, after, self._fm.schema(api_version.rpartition("/")[2]))
            owned = self._fm._owned
            hit = self._seen[api_version] = (owned(diff.added | diff.modified, self._subresource),
                                             owned(diff.removed, self._subresource))
        return hit


def _gvk(group: str, version: str, kind: str) -> str:
    return f"{group}/{version}, Kind={kind}"


def _last_applied(obj: Object) -> str:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(LAST_APPLIED) if isinstance(annotations, dict) else None
    return value if isinstance(value, str) else ""


def _last_applied_text(config: Object) -> str:
    copy = deep_copy(config)
    annotations = (copy.get("metadata") or {}).get("annotations")
    if isinstance(annotations, dict):
        annotations.pop(LAST_APPLIED, None)
    return orjson.dumps(copy, option=orjson.OPT_SORT_KEYS).decode() + "\n"

