"""What the HTTP layer needs from the rest of the server, handed in by `create_app`."""
from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response

from kapi.api.faults import Faults
from kapi.api.metrics import ServerMetrics
from kapi.api.requestinfo import RequestInfo
from kapi.audit.auditor import Auditor
from kapi.auth.service_account import TokenIssuer
from kapi.registry.aggregated import AggregatedApis
from kapi.registry.store import Store
from kapi.scheme.registry import Scheme
from kapi.storage.interfaces import Storage


# (request, context, store, request info, version, namespace) -> response
ActionHandler = Callable[[Request, "ApiContext", Store, RequestInfo, str, str], Awaitable[Response]]


async def _always_ok() -> dict[str, Any]:
    return {"backend": "none", "ok": True, "revision": 0}


@dataclass
class ApiContext:
    """The scheme, one store per resource, and the request limits in force."""

    scheme: Scheme
    stores: dict[tuple[str, str], Store]
    request_timeout: float = 60.0
    max_body_bytes: int = 3 * 1024 * 1024
    server_address: str = "127.0.0.1:6080"
    # The storage backend's report (`Storage.health`), for /readyz and /kapi/storage.
    storage_health: Callable[[], Awaitable[dict[str, Any]]] = field(default=lambda: _always_ok())
    # Documents derived from the scheme, keyed by name and rebuilt when scheme.generation moves.
    cache: dict[Any, tuple[tuple[int, int], Any]] = field(default_factory=dict)
    # Open watch streams (anything with close()), ended at once when the server shuts down.
    watches: weakref.WeakSet[Any] = field(default_factory=weakref.WeakSet)
    closing: bool = False
    # Handlers of action subresources (`ActionDef`), keyed by (group, plural, subresource).
    actions: dict[tuple[str, str, str], ActionHandler] = field(default_factory=dict)
    # Service-account tokens: the issuer that signs them (None: no OIDC discovery documents) and
    # the audiences the API accepts (kube's --api-audiences), for TokenReview.
    token_issuer: TokenIssuer | None = None
    api_audiences: tuple[str, ...] = ()
    # Group-versions other servers answer (APIServices with a service), proxied and merged into discovery.
    aggregated: AggregatedApis = field(default_factory=AggregatedApis)
    # The simulation (`--simulate`: describe() and advance(seconds)), None when off.
    simulation: Any = None
    # The cluster's storage (for /kapi/faults' Compact) and the faults a test asked for (`kapi.api.faults`).
    storage: Storage | None = None
    faults: Faults = field(default_factory=Faults)
    # The server's metrics, shared by its clusters (None: nothing measured); `/metrics` is served by the root only.
    metrics: ServerMetrics | None = None
    serves_metrics: bool = False
    # klog verbosity (`kapi start -v`): 2 logs requests slower than a second, 3+ every request (httplog).
    log_verbosity: int = 0
    # The server's auditing (`--audit-policy-file` with a backend), shared by its clusters; None: off.
    auditor: Auditor | None = None

    @property
    def generation(self) -> tuple[int, int]:
        """Moves whenever discovery or OpenAPI documents would change: the scheme's or the aggregated APIs'."""
        return self.scheme.generation, self.aggregated.generation

    def end_watches(self) -> None:
        """Shutting down: end every open watch now and any new one at once (clients re-watch).

        Without this, graceful shutdown would wait its whole timeout for
        streams that never end by themselves.
        """
        self.closing = True
        for stream in list(self.watches):
            stream.close()

    def store(self, group: str, plural: str) -> Store | None:
        return self.stores.get((group, plural))

    def cached(self, key: Any, build: Any) -> Any:
        """`build()` once per scheme generation (discovery and OpenAPI documents are costly to make)."""
        hit = self.cache.get(key)
        generation = self.generation
        if hit is not None and hit[0] == generation:
            return hit[1]
        value = build()
        self.cache[key] = (generation, value)
        return value
