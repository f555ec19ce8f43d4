"""The aggregator's controller: APIService objects to proxy targets, and their `Available` condition.

For each APIService, as kube-aggregator's available controller does: a local one
(no service) is always available; a remote one's service is resolved (an
ExternalName service to its host, otherwise a ready address of its EndpointSlices), then
its discovery document `/apis/<group>/<version>` is asked as
`system:kube-aggregator`. The answer decides `Available` (reasons
ServiceNotFound, ServicePortError, EndpointsNotFound, MissingEndpoints,
FailedDiscoveryCheck, or Passed) and feeds merged discovery; the backend's
OpenAPI documents are fetched when it becomes available or its discovery
changes. It runs on every APIService change and every `interval` seconds.
"""
from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime, timezone
from typing import Any

import orjson

from kapi.api import errors
from kapi.api.user import UserInfo
from kapi.controllers.watch_loop import follow
from kapi.endpoints.proxy import AGGREGATOR_USER, identity_headers
from kapi.registry.aggregated import (
    AUTOMANAGED_LABEL,
    BUILTIN_PRIORITIES,
    LOCAL_GROUP_PRIORITY,
    LOCAL_VERSION_PRIORITY,
    AggregatedApis,
    Backend,
)
from kapi.scheme.registry import Scheme
from kapi.registry.store import Store, WriteOptions
from kapi.storage.interfaces import Storage, WatchEvent

log = logging.getLogger("kapi.aggregator")
Object = dict[str, Any]
CHECK_TIMEOUT = 5.0
MANAGER = "kube-apiserver"  # kube-aggregator runs inside kube-apiserver
SERVICE_NAME_LABEL = "kubernetes.io/service-name"
OPENAPI_USER = UserInfo("system:aggregator")  # who kube's aggregator fetches OpenAPI documents as


class Unavailable(Exception):
    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason, self.message = reason, message


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class APIServiceController:
    def __init__(self, stores: dict[tuple[str, str], Store], storage: Storage, table: AggregatedApis,
                 scheme: Scheme, interval: float = 10.0) -> None:
        self._stores, self._storage, self._table, self._scheme = stores, storage, table, scheme
        self._registered_generation = -1
        self._interval = interval
        self._wake = asyncio.Event()
        self._wake.set()  # the first round runs at once, in the background: start-up never waits for backends

    @property
    def _apiservices(self) -> Store:
        return self._stores[("apiregistration.k8s.io", "apiservices")]

    async def run(self, revision: int) -> None:
        async def wake(_event: WatchEvent) -> None:
            self._wake.set()

        prefix = self._apiservices.collection_prefix("")
        watcher = asyncio.create_task(follow(self._storage, prefix, revision, wake, self._current, log))
        try:
            while True:
                with contextlib.suppress(TimeoutError):  # not wait_for: on 3.11 it can swallow a cancel
                    async with asyncio.timeout(self._interval):
                        await self._wake.wait()
                self._wake.clear()
                try:
                    await self.reconcile_all()
                except asyncio.CancelledError:
                    raise
                except Exception:  # noqa: BLE001 - the next round tries again
                    log.exception("checking APIServices failed")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            await self._table.close()

    async def _current(self) -> int:
        self._wake.set()
        return await self._storage.current_revision()

    async def register_local(self) -> None:
        """Autoregister the group-versions served here, if the scheme changed since the last time (also called
        at start, so that a freshly bootstrapped state already holds them)."""
        if self._registered_generation != self._scheme.generation:
            self._registered_generation = self._scheme.generation
            await self._register_local()

    async def reconcile_all(self) -> None:
        await self.register_local()
        items = (await self._apiservices.list("", "v1"))["items"]
        seen: set[tuple[str, str]] = set()
        for obj in items:
            spec = obj.get("spec") or {}
            key = (str(spec.get("group") or ""), str(spec.get("version") or ""))
            if isinstance(spec.get("service"), dict):
                seen.add(key)
            await self._reconcile(obj, key)
        for backend in self._table.backends():
            if (backend.group, backend.version) not in seen:
                self._table.remove(backend.group, backend.version)

    async def _register_local(self) -> None:
        """kube's autoregistration: a local APIService for each group-version served here ("onstart" for
        built-in ones, "true" for CRD and plugin ones, removed when their group-version goes)."""
        wanted: dict[str, Object] = {}
        for found in self._scheme.groups():
            builtin = any(d.builtin for d, _ in self._scheme.resources_in(found.group, found.versions[0]))
            for version in found.versions:
                priorities = BUILTIN_PRIORITIES.get((found.group, version)) if builtin else None
                group_priority, version_priority = priorities or (LOCAL_GROUP_PRIORITY, LOCAL_VERSION_PRIORITY)
                spec: Object = {"group": found.group, "version": version, "groupPriorityMinimum": group_priority,
                                "versionPriority": version_priority}
                name = f"{version}.{found.group}"
                wanted[name] = {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {
                    "name": name, "labels": {AUTOMANAGED_LABEL: "onstart" if builtin else "true"}},
                    "spec": {k: v for k, v in spec.items() if v != ""}}
        wanted.setdefault("v1.", {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {
            "name": "v1.", "labels": {AUTOMANAGED_LABEL: "onstart"}},
            "spec": {"version": "v1", "groupPriorityMinimum": 18000, "versionPriority": 1}})
        existing = {o["metadata"]["name"]: o for o in (await self._apiservices.list("", "v1"))["items"]}
        options = WriteOptions(manager=MANAGER)
        for name, obj in wanted.items():
            if name not in existing:
                try:
                    await self._apiservices.create("", obj, "v1", options)
                except (errors.AlreadyExists, errors.Invalid):
                    pass
        for name, obj in existing.items():
            if name not in wanted and ((obj["metadata"].get("labels") or {}).get(AUTOMANAGED_LABEL) == "true"):
                try:
                    await self._apiservices.delete("", name, "v1", None, options)
                except errors.NotFound:
                    pass

    async def _reconcile(self, obj: Object, key: tuple[str, str]) -> None:
        spec = obj.get("spec") or {}
        service = spec.get("service")
        if not isinstance(service, dict):
            self._table.remove(*key)
            await self._set_available(obj, "True", "Local", "Local APIServices are always available")
            return
        old = self._table.get(*key)
        backend = Backend(obj["metadata"]["name"], key[0], key[1], int(spec.get("groupPriorityMinimum") or 0),
                          int(spec.get("versionPriority") or 0), ca_pem=_ca_pem(spec.get("caBundle")),
                          insecure=bool(spec.get("insecureSkipTLSVerify")))
        try:
            backend.url, backend.server_name = await self._resolve(service)
            backend.resources = await self._check(backend)
            backend.available = True
        except Unavailable as exc:
            backend.available = False
            if old is not None:
                backend.resources, backend.openapi_v2, backend.openapi_v3 = old.resources, old.openapi_v2, old.openapi_v3
            self._update_table(old, backend)
            await self._set_available(obj, "False", exc.reason, exc.message)
            return
        if old is not None and old.available and old.resources == backend.resources and old.url == backend.url:
            backend.openapi_v2, backend.openapi_v3 = old.openapi_v2, old.openapi_v3
        else:
            backend.openapi_v2, backend.openapi_v3 = await self._openapi(backend)
        self._update_table(old, backend)
        await self._set_available(obj, "True", "Passed", "all checks passed")

    def _update_table(self, old: Backend | None, new: Backend) -> None:
        if old != new:
            self._table.put(new)

    async def _resolve(self, ref: Object) -> tuple[str, str]:
        namespace, name = str(ref.get("namespace") or ""), str(ref.get("name") or "")
        port = int(ref.get("port") or 443)
        server_name = f"{name}.{namespace}.svc"
        what = f'service/{name} in "{namespace}"'
        try:
            service = await self._stores[("", "services")].get(namespace, name, "v1")
        except (errors.NotFound, KeyError):
            raise Unavailable("ServiceNotFound", f"{what} is not present") from None
        spec = service.get("spec") or {}
        if spec.get("type") == "ExternalName":
            return f"https://{_host(str(spec.get('externalName', '')))}:{port}", server_name
        ports = [p for p in spec.get("ports") or () if p.get("port") == port]
        if not ports:
            raise Unavailable("ServicePortError", f"{what} is not listening on port {port}")
        port_name = str(ports[0].get("name") or "")
        slices = self._stores.get(("discovery.k8s.io", "endpointslices"))
        found = [] if slices is None else [
            s for s in (await slices.list(namespace, "v1"))["items"]
            if ((s.get("metadata") or {}).get("labels") or {}).get(SERVICE_NAME_LABEL) == name]
        if not found:
            raise Unavailable("EndpointsNotFound", f"cannot find endpointslices for {what}")
        for endpoint_slice in found:
            target = next((p for p in endpoint_slice.get("ports") or ()
                           if str(p.get("name") or "") == port_name), None)
            ready = [e for e in endpoint_slice.get("endpoints") or ()
                     if (e.get("conditions") or {}).get("ready") is not False and e.get("addresses")]
            if target is not None and ready:
                return f"https://{_host(str(ready[0]['addresses'][0]))}:{target.get('port')}", server_name
        raise Unavailable("MissingEndpoints",
                          f'endpointslices for {what} have no addresses with port name "{port_name}"')

    async def _get(self, backend: Backend, path: str, user: UserInfo = AGGREGATOR_USER) -> Any:
        """GET a document from the backend as the aggregator; Unavailable with kube's wording when it fails."""
        import httpx

        url = backend.url + path
        headers = identity_headers(user) + [("Accept", "application/json")]
        extensions = {"sni_hostname": backend.server_name, "timeout": {"connect": CHECK_TIMEOUT, "read": CHECK_TIMEOUT,
                                                                        "write": CHECK_TIMEOUT, "pool": CHECK_TIMEOUT}}
        try:
            answer = await self._table.client(backend).get(url, headers=headers, extensions=extensions)
        except httpx.HTTPError as exc:
            raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: "
                                                      f'Get "{url}": {exc or type(exc).__name__}') from None
        if not 200 <= answer.status_code < 300:
            raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: "
                                                      f"bad status from {url}: {answer.status_code}")
        try:
            return orjson.loads(answer.content)
        except orjson.JSONDecodeError:
            raise Unavailable("FailedDiscoveryCheck", f"failing or missing response from {url}: "
                                                      "not a JSON document") from None

    async def _check(self, backend: Backend) -> Object:
        doc = await self._get(backend, f"/apis/{backend.group}/{backend.version}")
        return doc if isinstance(doc, dict) else {}

    async def _openapi(self, backend: Backend) -> tuple[Object | None, bytes | None]:
        """The backend's OpenAPI v2 document and its v3 document of this group-version (None if it has none)."""
        found: list[Any] = []
        for path in ("/openapi/v2", f"/openapi/v3/apis/{backend.group}/{backend.version}"):
            try:
                doc = await self._get(backend, path, OPENAPI_USER)
            except Unavailable as exc:
                log.info("APIService %s: no OpenAPI at %s (%s)", backend.name, path, exc.message)
                doc = None
            found.append(doc if isinstance(doc, dict) else None)
        v3 = orjson.dumps(found[1], option=orjson.OPT_SORT_KEYS) if found[1] is not None else None
        return found[0], v3

    async def _set_available(self, obj: Object, status: str, reason: str, message: str) -> None:
        conditions = (obj.get("status") or {}).get("conditions") or []
        current = next((c for c in conditions if c.get("type") == "Available"), None)
        if current is not None and (current.get("status"), current.get("reason"), current.get("message")) == (
                status, reason, message):
            return
        since = current.get("lastTransitionTime") if current is not None and current.get("status") == status else _now()
        condition = {"type": "Available", "status": status, "lastTransitionTime": since, "reason": reason,
                     "message": message}

        def update(live: Object) -> Object:
            others = [c for c in (live.get("status") or {}).get("conditions") or [] if c.get("type") != "Available"]
            return {**live, "status": {**(live.get("status") or {}), "conditions": [condition, *others]}}

        try:
            await self._apiservices.patch("", obj["metadata"]["name"], "v1", "status", update,
                                          WriteOptions(manager=MANAGER))
        except (errors.NotFound, errors.Conflict):
            pass  # deleted or changed meanwhile: the next round sees it


def _host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _ca_pem(bundle: Any) -> str:
    import base64
    import binascii

    if not isinstance(bundle, str) or not bundle:
        return ""
    try:
        return base64.b64decode(bundle).decode("ascii")
    except (binascii.Error, UnicodeDecodeError):
        return ""
