"""kapi's one connection to etcd v3: a gRPC channel over every endpoint, and error translation.

The messages and stubs are aetcd's (generated from etcd's own .proto files);
the channel is built here because aetcd's `Client` takes one plain-text
endpoint, and kapi needs several endpoints (`--etcd-servers a,b,c`) and TLS
(`--etcd-cafile/--etcd-certfile/--etcd-keyfile`). With gRPC's round-robin
balancer every request goes to a member whose connection is up, so losing
one member of a 3-member cluster only fails the requests in flight to it.

gRPC failures become storage errors here, once: unreachable or timed out
is `StorageUnavailableError` (503); a compacted revision `EtcdCompacted`
and a future one `EtcdFutureRevision`, which the storage turns into 410
and 504 with the key concerned.
"""
from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, Sequence
from urllib.parse import urlsplit

import grpc
from aetcd import rpc

from .interfaces import StorageUnavailableError

__all__ = ["Endpoint", "EtcdClient", "EtcdCompacted", "EtcdFutureRevision", "EtcdTLS", "RequestObserver",
           "parse_endpoints"]

DEFAULT_TIMEOUT = 5.0  # seconds for one unary request; etcd's own request timeout is 5 s too
STATUS_TIMEOUT = 1.0
_READ_RETRIES = 2  # reads are retried on another member after a connection failure; writes never are
_UNAVAILABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.CANCELLED}
_UNAVAILABLE_MESSAGES = ("request timed out", "leader changed", "no leader", "too many requests",
                         "timed out", "not capable", "stopped")


class RequestObserver(Protocol):
    """Where request durations go (the server's `ServerMetrics`: kube's etcd_request_duration_seconds)."""

    def observe_etcd(self, operation: str, kind: str, seconds: float) -> None: ...


class EtcdCompacted(Exception):
    """The revision asked for was compacted away (etcd: "required revision has been compacted")."""

    def __init__(self, compact_revision: int = 0) -> None:
        super().__init__(f"revision compacted (etcd keeps history from {compact_revision or 'a later revision'})")
        self.compact_revision = compact_revision


class EtcdFutureRevision(Exception):
    """The revision asked for is newer than etcd's ("required revision is a future revision")."""


@dataclass(frozen=True)
class Endpoint:
    """One `--etcd-servers` entry."""

    scheme: str
    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


@dataclass(frozen=True)
class EtcdTLS:
    """PEM files for TLS to etcd; any may be None (system roots, no client certificate)."""

    cafile: Path | None = None
    certfile: Path | None = None
    keyfile: Path | None = None

    def credentials(self) -> grpc.ChannelCredentials:
        if bool(self.certfile) != bool(self.keyfile):
            raise ValueError("--etcd-certfile and --etcd-keyfile go together")

        def read(path: Path | None) -> bytes | None:
            if path is None:
                return None
            try:
                return Path(path).read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read {path}: {exc.strerror}") from None

        return grpc.ssl_channel_credentials(read(self.cafile), read(self.keyfile), read(self.certfile))


def parse_endpoints(servers: Sequence[str]) -> list[Endpoint]:
    """Endpoints from `--etcd-servers` values (each may hold several, comma-separated).

    `host:port` without a scheme is plain http, as etcdctl reads it; every
    endpoint must use the same scheme (one channel, one kind of security).
    """
    endpoints: list[Endpoint] = []
    for value in servers:
        for item in (part.strip() for part in value.split(",")):
            if not item:
                continue
            parsed = urlsplit(item if "://" in item else f"http://{item}")
            if parsed.scheme not in ("http", "https") or not parsed.hostname:
                raise ValueError(f"invalid etcd server {item!r}: expected http(s)://host:port")
            try:
                port = parsed.port or 2379
            except ValueError:
                raise ValueError(f"invalid etcd server {item!r}: bad port") from None
            endpoints.append(Endpoint(parsed.scheme, parsed.hostname, port))
    if not endpoints:
        raise ValueError("the etcd backend needs --etcd-servers (for example http://127.0.0.1:2379)")
    if len({e.scheme for e in endpoints}) > 1:
        raise ValueError("--etcd-servers mixes http and https endpoints")
    return endpoints


def _address(endpoint: Endpoint) -> tuple[str, str]:
    """(family, "ip:port") for a gRPC ipv4:/ipv6: target, resolving host names once."""
    try:
        ip = ipaddress.ip_address(endpoint.host)
    except ValueError:
        infos = socket.getaddrinfo(endpoint.host, endpoint.port, type=socket.SOCK_STREAM)
        ip = ipaddress.ip_address(sorted(infos, key=lambda i: i[0] != socket.AF_INET)[0][4][0])
    if ip.version == 4:
        return "ipv4", f"{ip}:{endpoint.port}"
    return "ipv6", f"[{ip}]:{endpoint.port}"


def _target(endpoints: Sequence[Endpoint]) -> str:
    addresses = [_address(e) for e in endpoints]
    families = {family for family, _ in addresses}
    if len(families) > 1:  # one gRPC target holds one address family
        addresses = [a for a in addresses if a[0] == "ipv4"]
    return f"{addresses[0][0]}:" + ",".join(address for _, address in addresses)


_CHANNEL_OPTIONS: list[tuple[str, Any]] = [
    ("grpc.lb_policy_name", "round_robin"),
    ("grpc.max_receive_message_length", 512 * 1024 * 1024),
    ("grpc.max_send_message_length", 64 * 1024 * 1024),
    # Notice a dead member soon, and come back quickly when it returns.
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.keepalive_permit_without_calls", 1),
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1_000),
]


def translate(exc: grpc.aio.AioRpcError, endpoints: str) -> Exception:
    """The storage-level error for a failed gRPC call."""
    details = exc.details() or ""
    if "required revision has been compacted" in details:
        return EtcdCompacted()
    if "required revision is a future revision" in details:
        return EtcdFutureRevision(details)
    if exc.code() in _UNAVAILABLE or any(m in details for m in _UNAVAILABLE_MESSAGES):
        return StorageUnavailableError(endpoints, f"etcd is unavailable ({endpoints}): {details or exc.code().name}")
    return StorageUnavailableError(endpoints, f"etcd request failed ({endpoints}): {exc.code().name} {details}")


class EtcdClient:
    """KV, Watch and Maintenance calls on one round-robin channel over all endpoints."""

    def __init__(self, endpoints: Sequence[Endpoint], tls: EtcdTLS | None = None,
                 timeout: float = DEFAULT_TIMEOUT, metrics: RequestObserver | None = None) -> None:
        self.endpoints = list(endpoints)
        self._tls = tls if tls is not None or endpoints[0].scheme == "http" else EtcdTLS()
        if endpoints[0].scheme == "http" and tls is not None and (tls.cafile or tls.certfile):
            raise ValueError("--etcd-cafile/--etcd-certfile need https:// etcd servers")
        self._credentials = self._tls.credentials() if self._tls else None  # fail on bad files at once
        self.timeout = timeout
        self.metrics = metrics
        self.urls = ",".join(e.url for e in endpoints)
        self._channel: grpc.aio.Channel | None = None
        self._member_channels: dict[Endpoint, grpc.aio.Channel] = {}
        self._kv: Any = None
        self._watch: Any = None

    def _open(self, target: str, name_override: str) -> grpc.aio.Channel:
        if self._credentials is None:
            return grpc.aio.insecure_channel(target, options=_CHANNEL_OPTIONS)
        options = [*_CHANNEL_OPTIONS, ("grpc.ssl_target_name_override", name_override)]
        return grpc.aio.secure_channel(target, self._credentials, options=options)

    def _connect(self) -> None:
        """Create the channel (lazily: gRPC's asyncio channels belong to the running loop)."""
        if self._channel is None:
            self._channel = self._open(_target(self.endpoints), self.endpoints[0].host)
            self._kv = rpc.KVStub(self._channel)
            self._watch = rpc.WatchStub(self._channel)

    async def _unary(self, method: str, request: Any, retries: int = 0, operation: str = "", kind: str = "") -> Any:
        """One KV call (retried `retries` times on another member when unreachable); with an `operation`
        (kube's: get, list, create, update, delete, listWithCount) and a `kind` (the resource: "pods",
        "deployments.apps") its duration, retries and failures included, goes to `metrics`."""
        self._connect()
        call = getattr(self._kv, method)
        start = time.perf_counter()
        try:
            for attempt in range(retries + 1):
                try:
                    return await call(request, timeout=self.timeout)
                except grpc.aio.AioRpcError as exc:
                    error = translate(exc, self.urls)
                    if not isinstance(error, StorageUnavailableError) or attempt == retries:
                        raise error from None
                    await asyncio.sleep(0.05 * (attempt + 1))
        finally:
            if operation and self.metrics is not None:
                self.metrics.observe_etcd(operation, kind, time.perf_counter() - start)

    async def range(self, key: bytes, range_end: bytes = b"", *, limit: int = 0, revision: int = 0,
                    count_only: bool = False, keys_only: bool = False,
                    min_mod_revision: int = 0, max_mod_revision: int = 0, operation: str = "",
                    kind: str = "") -> Any:
        request = rpc.RangeRequest(key=key, range_end=range_end, limit=limit, revision=revision,
                                   count_only=count_only, keys_only=keys_only,
                                   min_mod_revision=min_mod_revision, max_mod_revision=max_mod_revision)
        return await self._unary("Range", request, retries=_READ_RETRIES, operation=operation, kind=kind)

    async def txn(self, compare: list[Any], success: list[Any], failure: list[Any], *, operation: str = "",
                  kind: str = "") -> Any:
        return await self._unary("Txn", rpc.TxnRequest(compare=compare, success=success, failure=failure),
                                 operation=operation, kind=kind)

    async def put(self, key: bytes, value: bytes) -> Any:
        """A plain put (kapi writes through `txn`; tools and the benchmark's raw baseline use this)."""
        return await self._unary("Put", rpc.PutRequest(key=key, value=value))

    async def compact(self, revision: int) -> Any:
        """Compact etcd's history up to `revision` (every key's, not only one prefix's)."""
        return await self._unary("Compact", rpc.CompactionRequest(revision=revision))

    async def delete_range(self, key: bytes, range_end: bytes) -> Any:
        return await self._unary("DeleteRange", rpc.DeleteRangeRequest(key=key, range_end=range_end))

    def watch_call(self) -> Any:
        """A new bidirectional Watch stream (write requests, read responses)."""
        self._connect()
        return self._watch.Watch()

    async def member_status(self, endpoint: Endpoint) -> dict[str, Any]:
        """One member's own view: version, leader, revision, database size; or its error."""
        channel = self._member_channels.get(endpoint)
        if channel is None:
            family, address = _address(endpoint)
            channel = self._member_channels[endpoint] = self._open(f"{family}:{address}", endpoint.host)
        try:
            status = await rpc.MaintenanceStub(channel).Status(rpc.StatusRequest(), timeout=STATUS_TIMEOUT)
        except grpc.aio.AioRpcError as exc:
            return {"endpoint": endpoint.url, "ok": False, "error": exc.details() or exc.code().name}
        return {
            "endpoint": endpoint.url, "ok": True, "version": status.version,
            "memberId": f"{status.header.member_id:x}", "leader": f"{status.leader:x}",
            "isLeader": status.leader == status.header.member_id, "revision": status.header.revision,
            "dbSize": status.dbSize, "raftTerm": status.raftTerm,
        }

    async def close(self) -> None:
        channels = [c for c in (self._channel, *self._member_channels.values()) if c is not None]
        self._channel, self._member_channels = None, {}
        for channel in channels:
            await channel.close()
