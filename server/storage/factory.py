"""Build a storage backend from configuration.

The only module that names the backends, so `memory.py`, `file.py` and
`etcd.py` stay independent and callers depend on the protocol alone.
"""
from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Sequence

from .events import DEFAULT_EVENT_WINDOW
from .interfaces import Storage
from .keys import ROOT

if TYPE_CHECKING:
    from .etcd_client import RequestObserver

BACKENDS = ("memory", "file", "etcd")
DEFAULT_ETCD_PREFIX = ROOT  # kube-apiserver's --etcd-prefix default: its keys, unchanged
CLUSTERS = "clusters"  # logical clusters live in <file-rootpath>/clusters/<name> or under <etcd-prefix>-clusters/<name>


def create_storage(
    backend: str,
    file_rootpath: pathlib.Path | None,
    event_window: int = DEFAULT_EVENT_WINDOW,
    *,
    etcd_servers: Sequence[str] = (),
    etcd_prefix: str = DEFAULT_ETCD_PREFIX,
    etcd_cafile: pathlib.Path | None = None,
    etcd_certfile: pathlib.Path | None = None,
    etcd_keyfile: pathlib.Path | None = None,
    metrics: RequestObserver | None = None,
) -> Storage:
    """A fresh `Storage` for `backend`; `file_rootpath` is required by "file", `etcd_servers` by "etcd".

    `event_window` is how many events (revisions) the backend keeps for
    watches and reads at an older revision (`Storage.oldest_revision`);
    `metrics` times every etcd request (etcd_request_duration_seconds).

    Raises ValueError for an unknown backend or a missing or bad setting
    (unreadable TLS files, malformed endpoints), so it fails at start-up
    with a message instead of at the first request. Nothing connects yet:
    `Storage.start()` does.
    """
    if backend == "memory":
        from .memory import MemoryStorage

        return MemoryStorage(event_window=event_window)
    if backend == "file":
        if file_rootpath is None:
            raise ValueError("storage backend 'file' needs a root directory (file_rootpath)")
        from .file import FileStorage

        return FileStorage(pathlib.Path(file_rootpath), event_window=event_window)
    if backend == "etcd":
        from .etcd import EtcdStorage
        from .etcd_client import EtcdClient, EtcdTLS, parse_endpoints

        endpoints = parse_endpoints(etcd_servers)
        tls = (EtcdTLS(etcd_cafile, etcd_certfile, etcd_keyfile)
               if etcd_cafile or etcd_certfile or etcd_keyfile else None)
        return EtcdStorage(EtcdClient(endpoints, tls, metrics=metrics), prefix=etcd_prefix,
                           event_window=event_window)
    raise ValueError(
        f"unknown storage backend {backend!r}; expected one of: {', '.join(BACKENDS)}"
    )


def cluster_location(file_rootpath: pathlib.Path, etcd_prefix: str, name: str) -> tuple[pathlib.Path, str]:
    """Where logical cluster `name` keeps its objects: its file root, and its etcd prefix (beside the server's
    own, never inside it, so the server's watch on its prefix does not see the clusters' writes)."""
    return file_rootpath / CLUSTERS / name, f"{etcd_prefix.rstrip('/')}-{CLUSTERS}/{name}"


async def kept_cluster_names(
    backend: str,
    file_rootpath: pathlib.Path,
    *,
    etcd_servers: Sequence[str] = (),
    etcd_prefix: str = DEFAULT_ETCD_PREFIX,
    etcd_cafile: pathlib.Path | None = None,
    etcd_certfile: pathlib.Path | None = None,
    etcd_keyfile: pathlib.Path | None = None,
) -> list[str]:
    """The logical clusters a persistent backend still holds from an earlier run (none on memory)."""
    if backend == "file":
        base = file_rootpath / CLUSTERS
        return sorted(p.name for p in base.iterdir() if p.is_dir()) if base.is_dir() else []
    if backend != "etcd":
        return []
    from .etcd_client import EtcdClient, EtcdTLS, parse_endpoints
    from .index import prefix_end

    tls = EtcdTLS(etcd_cafile, etcd_certfile, etcd_keyfile) if etcd_cafile or etcd_certfile or etcd_keyfile else None
    client = EtcdClient(parse_endpoints(etcd_servers), tls)
    root = cluster_location(file_rootpath, etcd_prefix, "")[1]
    try:
        response = await client.range(root.encode(), str(prefix_end(root)).encode(), keys_only=True)
    finally:
        await client.close()
    return sorted({kv.key.decode()[len(root):].split("/", 1)[0] for kv in response.kvs} - {""})
