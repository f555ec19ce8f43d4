"""The CRD controller: a CustomResourceDefinition object becomes a live API, and stops being one.

It watches `customresourcedefinitions` through the registry like any client.
For each CRD it checks the names against the other served resources of the
group, installs (or updates) the definition in the scheme with a store
behind it, and reports `NamesAccepted` and `Established` conditions in the
CRD's status; deleting a CRD removes its API and deletes its objects.
Discovery and OpenAPI follow the scheme's generation, so they change at once.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from kapi.api import errors
from kapi.api.meta import now_rfc3339
from kapi.registry.listing import ListOptions
from kapi.registry.store import Store, WriteOptions
from kapi.scheme.crd import CRDError, definition_from_crd
from kapi.scheme.definitions import ResourceDef
from kapi.scheme.registry import Scheme

log = logging.getLogger("kapi.controllers.crd")
Object = dict[str, Any]
StoreFactory = Callable[[ResourceDef], Store]


def _names(d: ResourceDef) -> set[str]:
    return {d.plural, d.singular, *d.short_names}


def _condition(type_: str, ok: bool, reason: str, message: str, old: list[Object]) -> Object:
    status = "True" if ok else "False"
    previous = next((c for c in old if c.get("type") == type_), None)
    since = previous.get("lastTransitionTime") if previous and previous.get("status") == status else None
    return {"type": type_, "status": status, "lastTransitionTime": since or now_rfc3339(),
            "reason": reason, "message": message}


class CRDController:
    def __init__(self, scheme: Scheme, stores: dict[tuple[str, str], Store], crds: Store,
                 make_store: StoreFactory) -> None:
        self._scheme, self._stores, self._crds, self._make_store = scheme, stores, crds, make_store
        self._revision = "0"

    def conflict(self, definition: ResourceDef) -> tuple[str, str]:
        """(reason, message) when `definition`'s names clash with another resource of its group, else ("", "").

        Checked in the order of kube's naming controller: plural, singular, short names, kind, list kind.
        """
        key = (definition.group, definition.plural)
        others = [o for o in self._scheme.definitions if o.group == definition.group]
        for other in others:
            if (other.group, other.plural) == key and other.builtin:
                return "PluralConflict", f'"{definition.plural}" is already in use'
        others = [o for o in others if (o.group, o.plural) != key]
        checks = (
            ("PluralConflict", [definition.plural], lambda o: {o.plural, o.singular, *o.short_names}),
            ("SingularConflict", [definition.singular], lambda o: {o.plural, o.singular, *o.short_names}),
            ("ShortNamesConflict", list(definition.short_names), lambda o: {o.plural, o.singular, *o.short_names}),
            ("KindConflict", [definition.kind], lambda o: {o.kind, o.list_kind_name}),
            ("ListKindConflict", [definition.list_kind_name], lambda o: {o.kind, o.list_kind_name}),
        )
        for reason, names, taken_by in checks:
            for other in others:
                clash = [n for n in names if n in taken_by(other)]
                if clash:
                    return reason, f'"{clash[0]}" is already in use'
        return "", ""

    async def reconcile(self, crd: Object) -> None:
        """Install `crd` when its names are free, and say so in its status."""
        try:
            definition = definition_from_crd(crd)
        except CRDError as exc:  # stored before validation existed, or by hand: report, never crash
            log.warning("CRD %s cannot be served: %s", crd.get("metadata", {}).get("name"), exc)
            return
        reason, why = self.conflict(definition)
        if not why:
            key = (definition.group, definition.plural)
            current = self._scheme.resource(*key)
            # `converter` is left out of ResourceDef equality: a changed conversion webhook is compared here.
            if (current is None or current != definition or current.converter != definition.converter
                    or key not in self._stores):
                self._scheme.replace(definition)
                self._stores[key] = self._make_store(definition)
        await self._write_status(crd, definition, reason, why)

    async def _write_status(self, crd: Object, definition: ResourceDef, reason: str, conflict: str) -> None:
        old = crd.get("status") or {}
        conditions = old.get("conditions") or []
        accepted = not conflict
        status = {
            "conditions": [
                _condition("NamesAccepted", accepted, "NoConflicts" if accepted else reason,
                           "no conflicts found" if accepted else conflict, conditions),
                _condition("Established", accepted, "InitialNamesAccepted" if accepted else "NotAccepted",
                           "the initial names have been accepted" if accepted else "not all names are accepted",
                           conditions),
            ],
            "acceptedNames": {k: v for k, v in {
                "plural": definition.plural, "singular": definition.singular, "kind": definition.kind,
                "listKind": definition.list_kind_name, "shortNames": list(definition.short_names) or None,
                "categories": list(definition.categories) or None,
            }.items() if v} if accepted else (old.get("acceptedNames") or {"plural": "", "kind": ""}),
            "storedVersions": sorted(set(old.get("storedVersions") or []) | {definition.storage_version.name}),
        }
        if status == old:
            return
        try:
            await self._crds.patch("", crd["metadata"]["name"], "v1", "status",
                                   lambda cur: {**cur, "status": status}, WriteOptions())
        except errors.NotFound:
            pass  # deleted meanwhile

    async def remove(self, crd: Object) -> None:
        """Take the CRD's API away and delete its objects."""
        try:
            definition = definition_from_crd(crd)
        except CRDError:
            return
        key = (definition.group, definition.plural)
        current = self._scheme.resource(*key)
        if current is None or current.builtin:
            return
        store = self._stores.pop(key, None)
        self._scheme.remove(*key)
        if store is not None:
            await store.delete_collection("", definition.storage_version.name, WriteOptions())
        await self._recheck_group(definition.group)

    async def _recheck_group(self, group: str) -> None:
        """Names freed in `group` may unblock CRDs that were refused for a clash (kube re-checks the group)."""
        for crd in (await self._crds.list("", "v1"))["items"]:
            if (crd.get("spec") or {}).get("group") == group:
                await self.reconcile(crd)

    async def sync(self) -> None:
        """Install every stored CRD; remember the revision to watch from."""
        listed = await self._crds.list("", "v1")
        for crd in listed["items"]:
            await self.reconcile(crd)
        self._revision = listed["metadata"]["resourceVersion"]

    async def run(self) -> None:
        """Follow CRD changes for the life of the server (re-syncing if the watch ends)."""
        while True:
            stream = self._crds.watch("", "v1", ListOptions(resource_version=self._revision))
            try:
                await stream.open()
                async for kind, crd in stream.events():
                    if kind == "ERROR":
                        break
                    self._revision = crd.get("metadata", {}).get("resourceVersion", self._revision)
                    if kind == "DELETED":
                        await self.remove(crd)
                    elif kind in ("ADDED", "MODIFIED"):
                        await self.reconcile(crd)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - a control loop must survive one bad event
                log.exception("CRD controller: watch failed; re-syncing")
                await asyncio.sleep(0.5)
            finally:
                stream.close()
            await self.sync()
