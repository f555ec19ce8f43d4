"""The memory backend: everything lives in the shared in-memory index.

Nothing survives the process; this is the default for tests and throwaway
servers. All behaviour (revisions, copies, `guaranteed_update` retries) comes
from `IndexedStorage`, so the memory and file backends cannot drift apart.
"""
from __future__ import annotations

from .index import IndexedStorage

__all__ = ["MemoryStorage"]


class MemoryStorage(IndexedStorage):
    """`Storage` kept entirely in process memory; starts empty at revision 0."""
