"""Reads answered with stored bytes, as a mixin of `Store`: a GET or an unfiltered LIST in JSON.

Why: the memory and file backends keep every object as the JSON it was written as, resourceVersion
included. When serving the object changes nothing (it is stored in the version asked for, so conversion
only puts apiVersion and kind first where they already are, and the storage schema defaults nothing), that
JSON is the answer: a GET skips decoding it and encoding it again, and a LIST, nearly all of its work.
Whatever does not qualify (another version, a defaulting schema, a backend without `RawReads`) takes the
object path, so the bytes are the same either way.
"""
from __future__ import annotations

from contextlib import AbstractContextManager
from operator import methodcaller
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import orjson

from kapi.registry.listing import ListOptions
from kapi.scheme.defaulting import has_defaults
from kapi.scheme.definitions import ResourceDef
from kapi.storage.interfaces import RawReads

Object = dict[str, Any]
#: What `_select` collects with: (prefix, revision, start key, options) → (items, revision, next key, remaining).
Collect = Callable[[str, int, str, ListOptions], Awaitable[tuple[list[Any], int, str, "int | None"]]]

_prefixes: dict[tuple[str, str], bytes] = {}


def type_prefix(definition: ResourceDef, version: str) -> bytes:
    """`{"apiVersion":…,"kind":…,` as an object served in `version` starts: stored bytes that start so are
    the object as served."""
    api_version = definition.api_version(version)
    key = (api_version, definition.kind)
    prefix = _prefixes.get(key)
    if prefix is None:
        prefix = _prefixes[key] = b'{"apiVersion":%s,"kind":%s,' % (
            orjson.dumps(api_version), orjson.dumps(definition.kind))
    return prefix


class JsonReads:
    """Needs the storage, keys, error translation, output and listing of the Store it is mixed into."""

    definition: ResourceDef
    _raw: RawReads | None  # the storage, when it can hand back stored bytes

    if TYPE_CHECKING:  # provided by Store and WriteSteps; declared for the type checker only
        def _key(self, namespace: str, name: str) -> str: ...
        def _translated(self, name: str) -> AbstractContextManager[None]: ...
        async def _out(self, obj: Object, version: str) -> Object: ...
        async def _out_all(self, objs: list[Object], version: str) -> list[Object]: ...
        async def get(self, namespace: str, name: str, version: str) -> Object: ...
        async def _select(self, namespace: str, opts: ListOptions,
                          collect: Collect | None = None) -> tuple[list[Any], dict[str, Any]]: ...

    def _serves_stored_bytes(self) -> bool:
        return self._raw is not None and not has_defaults(self.definition.storage_version.schema)

    async def get_json(self, namespace: str, name: str, version: str) -> bytes:
        """`get`'s object as JSON bytes."""
        if not self._serves_stored_bytes():
            return orjson.dumps(await self.get(namespace, name, version))
        assert self._raw is not None
        with self._translated(name):
            data = await self._raw.get_raw(self._key(namespace, name))
        if data.startswith(type_prefix(self.definition, version)):
            return data
        return orjson.dumps(await self._out(orjson.loads(data), version))

    async def list_json(self, namespace: str, version: str, opts: ListOptions
                        ) -> tuple[list[bytes], dict[str, Any]] | None:
        """`list`'s items as JSON bytes (each starting with `type_prefix`) and the list's metadata; None
        when the list must be made of objects (selectors, or a backend or schema that needs them)."""
        if opts.filtered or not self._serves_stored_bytes():
            return None
        items, list_meta = await self._select(namespace, opts, self._collect_raw)
        prefix = type_prefix(self.definition, version)
        if all(map(methodcaller("startswith", prefix), items)):
            return items, list_meta
        # the others served as objects, converted together (one conversion webhook call, as `list` makes)
        others = [i for i, data in enumerate(items) if not data.startswith(prefix)]
        served = await self._out_all([orjson.loads(items[i]) for i in others], version)
        for i, obj in zip(others, served):
            items[i] = orjson.dumps(obj)
        return items, list_meta

    async def _collect_raw(self, prefix: str, revision: int, start: str, opts: ListOptions
                           ) -> tuple[list[Any], int, str, int | None]:
        """`Store._collect` without selectors: one page of at most `opts.limit` stored items."""
        assert self._raw is not None
        page = await self._raw.list_raw(prefix, limit=opts.limit, continue_key=start, revision=revision)
        return page.items, page.revision, page.continue_key, page.remaining if page.continue_key else None
