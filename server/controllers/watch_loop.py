"""The loop every storage-fed controller runs: watch a prefix from a revision, re-sync when the watch
cannot go on (410, an overflowing watcher, a failing event), never die of one bad event."""
from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable

from kapi.storage.interfaces import RevisionTooOldError, Storage, WatchEvent, WatcherOverflowError


async def follow(storage: Storage, prefix: str, revision: int, handle: Callable[[WatchEvent], Awaitable[None]],
                 sync: Callable[[], Awaitable[int]], log: logging.Logger) -> None:
    """Feed `handle` every event under `prefix` after `revision`, for ever; `sync()` restarts from its revision."""
    while True:
        try:
            async with storage.watch(prefix, revision) as watcher:
                async for event in watcher:
                    revision = event.revision
                    await handle(event)
        except (RevisionTooOldError, WatcherOverflowError):
            revision = await sync()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - a control loop must survive one bad event
            log.exception("%s: event failed; re-syncing", log.name)
            await asyncio.sleep(0.2)
            revision = await sync()
