"""The generic REST store: Kubernetes semantics over any `Storage` backend.

One `Store` serves one resource, driven by its definition and strategy
(k8s.io/apiserver `registry/generic/registry.Store`). Every write funnels
through `storage.guaranteed_update` or `storage.create`, so update and all
patch kinds share one path: a patch is only a function from the current
object to the wanted one.

Storage errors are translated into `Status` errors here, once.
"""
from __future__ import annotations

import contextlib
import inspect
import secrets
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any, Awaitable, Callable, Iterator

import orjson

from kapi.admission.interfaces import AdmissionPlugin
from kapi.api import errors
from kapi.api.meta import (
    carry_system_fields_for_update,
    fill_system_fields_for_create,
    generate_name,
    metadata,
)
from kapi.registry.listing import (
    ContinueCodec,
    ListOptions,
    ReadAt,
    expired_continue,
    list_revision,
    selector_matcher,
)
from kapi.registry.deletion import DeleteSteps
from kapi.registry.field_manager import FieldManager
from kapi.registry.json_reads import Collect, JsonReads
from kapi.registry.strategy import Strategy
from kapi.registry.watch import WatchStream
from kapi.registry.write_steps import WriteOptions, WriteSteps, copy_object
from kapi.storage import keys
from kapi.storage.interfaces import (
    ConflictError,
    InvalidKeyError,
    KeyExistsError,
    KeyNotFoundError,
    PreconditionError,
    Preconditions,
    RawReads,
    RevisionNotYetError,
    RevisionTooOldError,
    StorageUnavailableError,
    Storage,
)

Object = dict[str, Any]
PatchFunction = Callable[[Object], Object]
_GENERATE_NAME_TRIES = 5
_FILTERED_PAGE = 500


@dataclass(frozen=True)
class StoreOptions:
    """Server-wide switches that change REST semantics."""

    unrestricted_update: bool = False
    continue_key: bytes = b""  # signs continue tokens; create_app passes a random per-server key
    bookmark_interval: float = 10.0
    delete_collection_workers: int = 1  # deletes of one DELETE of a collection in flight at once


class Store(DeleteSteps, WriteSteps, JsonReads):
    """CRUD, patch and delete for one resource."""

    def __init__(
        self,
        strategy: Strategy,
        storage: Storage,
        admission: AdmissionPlugin | None = None,
        options: StoreOptions = StoreOptions(),
    ) -> None:
        self.strategy = strategy
        self.definition = strategy.definition
        self._storage = storage
        self._raw = storage if isinstance(storage, RawReads) else None
        self._admission = admission
        self._options = options
        self.field_manager = FieldManager(strategy.definition)
        self.continue_codec = ContinueCodec(options.continue_key or secrets.token_bytes(32))

    # -- keys and errors -------------------------------------------------
    def _key(self, namespace: str, name: str) -> str:
        d = self.definition
        try:
            return keys.object_key(d.group, d.plural, namespace if d.namespaced else "", name)
        except ValueError:
            raise errors.not_found(d.group, d.plural, name) from None

    def collection_prefix(self, namespace: str) -> str:
        d = self.definition
        try:
            return keys.collection_prefix(d.group, d.plural, namespace if d.namespaced else "")
        except ValueError:
            raise errors.BadRequest(f"invalid namespace {namespace!r}") from None

    @contextmanager
    def _translated(self, name: str) -> Iterator[None]:
        d = self.definition
        try:
            yield
        except KeyNotFoundError:
            raise errors.not_found(d.group, d.plural, name) from None
        except KeyExistsError:
            raise errors.already_exists(d.group, d.plural, name) from None
        except PreconditionError as exc:
            raise errors.conflict(d.group, d.kind, name, str(exc)) from None
        except ConflictError as exc:
            raise errors.conflict(d.group, d.plural, name, str(exc)) from None
        except InvalidKeyError:
            raise errors.BadRequest(f"invalid object name {name!r}") from None
        except RevisionTooOldError as exc:
            raise errors.Gone(str(exc)) from None
        except RevisionNotYetError as exc:
            raise errors.Timeout(str(exc), retry_after=1) from None
        except StorageUnavailableError as exc:
            raise errors.ServiceUnavailable(str(exc), retry_after=1) from None

    # -- verbs -------------------------------------------------------------
    async def get(self, namespace: str, name: str, version: str) -> Object:
        with self._translated(name):
            return await self._out(await self._storage.get(self._key(namespace, name)), version)

    def matcher(self, opts: ListOptions) -> Callable[[Object | None], bool]:
        return selector_matcher(opts)

    def _finalized(self, obj: Object) -> bool:
        """Deleted, nothing holds it any more, and no grace period is left (kube's ShouldDeleteDuringUpdate:
        a terminating pod whose last finalizer goes still waits for its kubelet's final delete)."""
        meta = obj.get("metadata") or {}
        return (bool(meta.get("deletionTimestamp")) and not meta.get("deletionGracePeriodSeconds")
                and not self.strategy.pending_finalizers(obj))

    def key_of(self, obj: Object) -> str:
        meta = obj.get("metadata") or {}
        return self._key(meta.get("namespace", ""), meta.get("name", ""))

    async def list(self, namespace: str, version: str, opts: ListOptions = ListOptions()) -> Object:
        """A `<Kind>List`: selectors filter, `limit`/`continue` page at one revision (kube's semantics)."""
        items, list_meta = await self._select(namespace, opts)
        return self._list_of(version, list_meta, await self._out_all(items, version))

    def _list_of(self, version: str, list_meta: dict[str, Any], items: list[Object]) -> Object:
        return {"apiVersion": self.definition.api_version(version), "kind": self.definition.list_kind_name,
                "metadata": list_meta, "items": items}

    async def _select(self, namespace: str, opts: ListOptions,
                      collect: Collect | None = None) -> tuple[list[Any], dict[str, Any]]:
        """What a list selects, as stored (objects, or stored bytes with `JsonReads._collect_raw`), and the
        list's metadata (its revision, the next page's token)."""
        prefix = self.collection_prefix(namespace)
        start = ""
        if opts.continue_token:
            revision, start = self.continue_codec.decode(opts.continue_token, prefix)
            read = ReadAt(exact=revision)
        else:
            read = list_revision(opts)
        with self._translated(""):
            if read.not_older_than and read.not_older_than > await self._storage.current_revision():
                raise RevisionNotYetError(prefix, read.not_older_than, await self._storage.current_revision())
            try:
                items, revision, next_key, remaining = await (collect or self._collect)(
                    prefix, read.exact, start, opts)
            except RevisionTooOldError:
                if opts.continue_token:  # the backend no longer has the first page's revision
                    raise expired_continue() from None
                raise
        list_meta: dict[str, Any] = {"resourceVersion": str(revision)}
        if next_key:
            list_meta["continue"] = self.continue_codec.encode(revision, next_key)
            if remaining is not None:
                list_meta["remainingItemCount"] = remaining
        return items, list_meta

    async def _collect(self, prefix: str, revision: int, start: str,
                       opts: ListOptions) -> tuple[list[Object], int, str, int | None]:
        """Matching items from `start` on, at most `opts.limit`, all read at one revision."""
        matches, limit = self.matcher(opts), opts.limit
        fetch = max(limit, _FILTERED_PAGE) if (limit and opts.filtered) else limit
        items: list[Object] = []
        while True:
            page = await self._storage.list(prefix, limit=fetch, continue_key=start, revision=revision)
            revision = page.revision  # later pages read the same revision as the first
            for i, obj in enumerate(page.items):
                if not matches(obj):
                    continue
                items.append(obj)
                if limit and len(items) == limit:
                    left_in_page = len(page.items) - 1 - i
                    if not (left_in_page or page.continue_key):
                        return items, revision, "", None
                    remaining = None
                    if not opts.filtered and page.remaining is not None:
                        remaining = page.remaining + left_in_page
                    return items, revision, self.key_of(obj), remaining
            if not page.continue_key:
                return items, revision, "", None
            start = page.continue_key

    def watch(self, namespace: str, version: str, opts: ListOptions) -> WatchStream:
        """An event stream for the collection; see `kapi.registry.watch`."""
        return WatchStream(self, self._storage, self.collection_prefix(namespace), version, opts,
                           self._options.bookmark_interval)

    async def output(self, obj: Object, version: str) -> Object:
        """`obj` (a copy the caller owns) as served in `version`."""
        return await self._out(obj, version)

    async def create(self, namespace: str, obj: Object, version: str, opts: WriteOptions) -> Object:
        """Store a new object; takes ownership of `obj` (it is completed and pruned in place)."""
        d = self.definition
        self._check_identity(obj, version, namespace)
        self.strategy.normalize(obj)
        self._decoded(obj, version)
        if not opts.applied:
            await self.field_manager.update(None, obj, version, opts.manager)
        meta = metadata(obj)
        # kube's admission record names the object as sent: "" when the server is to generate the name
        attributes = self._attributes("CREATE", version, obj, None, namespace, str(meta.get("name") or ""), "", opts)
        await self._mutated(attributes)
        await self._complete(obj, None)
        meta = metadata(obj)
        fill_system_fields_for_create(obj)
        self.strategy.prepare_for_create(obj)
        wants_generated = not meta.get("name") and isinstance(meta.get("generateName"), str) and meta["generateName"]
        if wants_generated:
            meta["name"] = generate_name(meta["generateName"])
        await self._checked(attributes, opts, creating=True)
        obj = await self._to_storage(obj)
        meta = metadata(obj)
        if opts.dry_run:
            return await self._out(obj, version)
        for _ in range(_GENERATE_NAME_TRIES if wants_generated else 1):
            try:
                with self._translated(meta["name"]):
                    return await self._out(await self._storage.create(self._key(namespace, meta["name"]), obj),
                                           version)
            except errors.AlreadyExists:
                if not wants_generated:
                    raise
                meta["name"] = generate_name(meta["generateName"])
        raise errors.already_exists(d.group, d.plural, meta["name"])

    async def _complete(self, obj: Object, old: Object | None) -> None:
        """What kube's admission plugins and REST storage add after field ownership is recorded (a Pod's
        service account and tolerations, a Service's cluster IP): present in the object, owned by no one."""
        self.strategy.complete(obj)

    async def _updated(self, old: Object, new: Object, version: str, namespace: str, name: str,
                       subresource: str, opts: WriteOptions, require_rv: bool) -> Object:
        """Turn a requested new state into the object to store (shared by PUT and every PATCH)."""
        d = self.definition
        self._check_identity(new, version, namespace, name)
        new_meta, old_meta = metadata(new), metadata(old)
        rv = new_meta.get("resourceVersion")
        if rv in (None, "", "0"):  # kube parses "0" as no resourceVersion at all
            if require_rv and not (self.strategy.allow_unconditional_update or self._options.unrestricted_update):
                raise errors.invalid(d.group, d.kind, name, [errors.field_invalid(
                    "metadata.resourceVersion", 0, "must be specified for an update")])
        elif rv != old_meta.get("resourceVersion"):
            raise errors.conflict(
                d.group, d.plural, name,
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if new_meta.get("uid") not in (None, "", old_meta.get("uid")):
            raise errors.invalid(d.group, d.kind, name, [errors.field_invalid(
                "metadata.uid", new_meta.get("uid"), "field is immutable")])
        self.strategy.normalize(new)
        old_view = old if d.converter is None else await self._out(copy_object(old), version)
        self._decoded(new, version)
        if not opts.applied:
            await self.field_manager.update(old_view, new, version, opts.manager,
                                            opts.manager_subresource or subresource, self._viewed_in)
        managed = metadata(new).get("managedFields")
        if old_meta.get("deletionTimestamp"):
            added = set(new_meta.get("finalizers") or []) - set(old_meta.get("finalizers") or [])
            if added:
                raise errors.invalid(d.group, d.kind, name, [errors.field_forbidden(
                    "metadata.finalizers", "no new finalizers can be added if the object is being deleted, "
                    f"found new finalizers {orjson.dumps(sorted(added)).decode()}")])
        attributes = self._attributes("UPDATE", version, new, old_view, namespace, name, subresource, opts)
        await self._mutated(attributes)
        if not subresource:
            await self._complete(new, old)
        carry_system_fields_for_update(new, old)
        self.strategy.prepare_for_update(new, old_view, subresource)  # both in the request's version
        _keep_managed_fields(new, managed)  # a status update keeps the old metadata, but not its owners
        await self._checked(attributes, opts, creating=False, old=old)
        new = await self._to_storage(new)
        if self.strategy.spec_changed(new, old):
            new_meta = metadata(new)
            new_meta["generation"] = int(old_meta.get("generation") or 1) + 1
        return new

    async def _write(self, namespace: str, name: str, version: str, subresource: str, opts: WriteOptions,
                     make_new: Callable[[Object], Object | Awaitable[Object]], require_rv: bool) -> Object:
        key = self._key(namespace, name)

        async def try_update(current: Object | None) -> Object:
            assert current is not None
            old = current  # storage hands try_update a private copy; only the one make_new may change is copied
            wanted = make_new(await self._out(copy_object(current), version))
            if inspect.isawaitable(wanted):  # server-side apply may convert to its managers' versions
                wanted = await wanted
            return await self._updated(old, wanted, version, namespace, name, subresource, opts, require_rv)

        with self._translated(name):
            if opts.dry_run:
                return await self._out(await try_update(await self._storage.get(key)), version)
            updated = await self._storage.guaranteed_update(key, try_update)
            if self._finalized(updated):  # the last finalizer of a deleted object is gone: now it goes
                with contextlib.suppress(KeyNotFoundError, ConflictError):
                    meta = updated["metadata"]
                    updated = await self._storage.delete(key, Preconditions(
                        uid=meta.get("uid"), resource_version=meta.get("resourceVersion")))
            return await self._out(updated, version)

    async def update(self, namespace: str, name: str, obj: Object, version: str, subresource: str,
                     opts: WriteOptions) -> Object:
        """PUT: replace the object, with optimistic concurrency on metadata.resourceVersion."""
        return await self._write(namespace, name, version, subresource, opts,
                                 lambda _current: copy_object(obj), require_rv=True)

    async def patch(self, namespace: str, name: str, version: str, subresource: str,
                    apply: PatchFunction, opts: WriteOptions) -> Object:
        """PATCH: `apply` maps the current object (in `version`) to the wanted one."""
        return await self._write(namespace, name, version, subresource, opts, apply, require_rv=False)

    async def apply(self, namespace: str, name: str, version: str, subresource: str, config: Object,
                    opts: WriteOptions, force: bool) -> tuple[Object, bool]:
        """Server-side apply of `config` by `opts.manager`; creates the object when missing (then True)."""
        opts = replace(opts, applied=True)
        self.field_manager.check_kind(config, version)
        meta: Object = config["metadata"] if isinstance(config.get("metadata"), dict) else {}
        if not meta.get("name"):
            raise errors.BadRequest(f"the name of the object ({name} based on URL) was undeterminable: "
                                    "name must be provided")
        if meta["name"] != name:
            raise errors.BadRequest(f"the name of the object ({meta['name']}) does not match the name on the URL "
                                    f"({name})")

        async def applied(current: Object | None) -> Object:
            return await self.field_manager.apply(current, copy_object(config), version, opts.manager, force,
                                                  subresource, self._viewed_in)

        for _ in range(2):
            try:
                return await self._write(namespace, name, version, subresource, opts, applied, require_rv=False), False
            except errors.NotFound:
                if subresource:
                    raise
            if meta.get("uid"):
                raise errors.conflict(self.definition.group, self.definition.plural, name,
                                      f"uid mismatch: the provided object specified uid {meta['uid']}, and no "
                                      "existing object was found")
            with contextlib.suppress(errors.AlreadyExists):
                return await self.create(namespace, await applied(None), version, opts), True
        raise errors.conflict(self.definition.group, self.definition.plural, name, "the object keeps changing")

    async def assign(self, namespace: str, name: str, version: str, change: Callable[[Object | None], Object],
                     dry_run: bool = False) -> Object:
        """Change the stored object by a pure function, past the strategy's update rules.

        kube's own subresources that set what a client may not (pods/binding sets
        `spec.nodeName`) write this way, straight through storage's retry loop.
        """
        key = self._key(namespace, name)
        with self._translated(name):
            if dry_run:
                return await self._out(change(await self._storage.get(key)), version)
            return await self._out(await self._storage.guaranteed_update(key, change), version)

    async def count(self, namespace: str = "") -> int:
        return await self._storage.count(self.collection_prefix(namespace))


def _keep_managed_fields(obj: Object, managed: Any) -> None:
    meta = metadata(obj)
    if managed is None:
        meta.pop("managedFields", None)
    else:
        meta["managedFields"] = managed
