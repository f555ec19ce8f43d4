"""The aggregator's table: which group-versions other servers answer, and what they last said.

`kapi.controllers.apiservices` keeps it from the APIService objects (where each backend
is, whether it is available, its discovery and OpenAPI documents); the HTTP layer reads it
to proxy requests (`kapi.endpoints.proxy`) and to merge discovery and OpenAPI. Clients
present the front-proxy certificate and trust the APIService's `caBundle` (or nothing, with
`insecureSkipTLSVerify`), checking the name `<service>.<namespace>.svc` as kube does.
"""
from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

# kube's priorities for groups served locally: built-in groups above any APIService's (at most 20000
# is allowed there, kube's own groups use 16000-18000), CRD and plugin groups at 1000 as kube registers CRDs.
BUILTIN_GROUP_PRIORITY = 20001
LOCAL_GROUP_PRIORITY = 1000
LOCAL_VERSION_PRIORITY = 100
# The APIServices kube-apiserver registers for its own group-versions (label automanaged=onstart):
# (groupPriorityMinimum, versionPriority), as the reference server lists them (tests/data/aggregation).
BUILTIN_PRIORITIES: dict[tuple[str, str], tuple[int, int]] = {
    ("", "v1"): (18000, 1), ("admissionregistration.k8s.io", "v1"): (16700, 15),
    ("apiextensions.k8s.io", "v1"): (16700, 15), ("apps", "v1"): (17800, 15),
    ("authentication.k8s.io", "v1"): (17700, 15), ("authorization.k8s.io", "v1"): (17600, 15),
    ("autoscaling", "v1"): (17500, 15), ("autoscaling", "v2"): (17500, 30), ("batch", "v1"): (17400, 15),
    ("certificates.k8s.io", "v1"): (17300, 15), ("coordination.k8s.io", "v1"): (16500, 15),
    ("discovery.k8s.io", "v1"): (16200, 15), ("events.k8s.io", "v1"): (17750, 15),
    ("flowcontrol.apiserver.k8s.io", "v1"): (16100, 21), ("networking.k8s.io", "v1"): (17200, 15),
    ("node.k8s.io", "v1"): (16300, 15), ("policy", "v1"): (17100, 15), ("rbac.authorization.k8s.io", "v1"): (17000, 15),
    ("scheduling.k8s.io", "v1"): (16600, 15), ("storage.k8s.io", "v1"): (16800, 15),
}
AUTOMANAGED_LABEL = "kube-aggregator.kubernetes.io/automanaged"


@dataclass
class Backend:
    """One remote group-version: from its APIService, plus what the last check found."""

    name: str
    group: str
    version: str
    group_priority: int = LOCAL_GROUP_PRIORITY
    version_priority: int = 1
    url: str = ""  # https://host:port, "" until the service resolves
    server_name: str = ""  # the name its serving certificate must carry
    ca_pem: str = ""
    insecure: bool = False
    available: bool = False
    resources: dict[str, Any] | None = None  # its APIResourceList, from the last good check
    openapi_v2: dict[str, Any] | None = field(default=None, repr=False)
    openapi_v3: bytes | None = field(default=None, repr=False)


class AggregatedApis:
    """Backends by (group, version); `generation` moves whenever discovery or OpenAPI would change."""

    def __init__(self, client_cert: tuple[Path, Path] | None = None, timeout: float = 60.0) -> None:
        self._client_cert = client_cert
        self._timeout = timeout
        self._backends: dict[tuple[str, str], Backend] = {}
        self._clients: dict[tuple[str, bool], httpx.AsyncClient] = {}
        self.generation = 0

    def __bool__(self) -> bool:
        return bool(self._backends)

    def get(self, group: str, version: str) -> Backend | None:
        return self._backends.get((group, version))

    def backends(self) -> list[Backend]:
        return list(self._backends.values())

    def put(self, backend: Backend) -> None:
        self._backends[(backend.group, backend.version)] = backend
        self.generation += 1

    def remove(self, group: str, version: str) -> None:
        if self._backends.pop((group, version), None) is not None:
            self.generation += 1

    def groups(self) -> dict[str, list[Backend]]:
        """Remote versions by group, highest version priority first."""
        out: dict[str, list[Backend]] = {}
        for backend in sorted(self._backends.values(), key=lambda b: (-b.version_priority, b.version)):
            out.setdefault(backend.group, []).append(backend)
        return out

    def ssl_context(self, ca_pem: str, insecure: bool) -> ssl.SSLContext:
        context = ssl.create_default_context(cadata=ca_pem or None)
        if insecure:
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        if self._client_cert is not None and self._client_cert[0].is_file():
            context.load_cert_chain(str(self._client_cert[0]), str(self._client_cert[1]))
        return context

    def client(self, backend: Backend) -> httpx.AsyncClient:
        """One pooled client per trust setting (connections to a backend are reused)."""
        import httpx

        key = (backend.ca_pem, backend.insecure)
        client = self._clients.get(key)
        if client is None:
            client = httpx.AsyncClient(verify=self.ssl_context(*key), timeout=httpx.Timeout(self._timeout, connect=5.0),
                                       follow_redirects=False)
            self._clients[key] = client
        return client

    async def close(self) -> None:
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()
