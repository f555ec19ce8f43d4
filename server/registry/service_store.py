"""Services: kube's defaults and checks, and a Store that allocates ClusterIPs and NodePorts.

Allocation reads the stored Services under one lock per server, so two
creates never take the same address; see `service_alloc` for the rules.
"""
from __future__ import annotations

import asyncio
from typing import Any

from kapi.api import errors
from kapi.api.errors import Cause
from kapi.registry.builtin_strategy import BuiltinStrategy, as_dict, as_list
from kapi.registry.service_alloc import InUse, ServiceRanges, allocate, service_type
from kapi.registry.store import Store
from kapi.registry.strategy import Object
from kapi.registry.write_steps import WriteOptions

_TYPES = ["ClusterIP", "ExternalName", "LoadBalancer", "NodePort"]


class ServiceStrategy(BuiltinStrategy):
    """kube's Service defaults (type, session affinity, IP families, traffic policies, target ports)."""

    def default(self, obj: Object) -> None:
        spec = obj.get("spec")
        if not isinstance(spec, dict):
            return
        spec.setdefault("type", "ClusterIP")
        spec.setdefault("sessionAffinity", "None")
        kind = spec["type"]
        for port in as_list(spec.get("ports")):
            if isinstance(port, dict):
                port.setdefault("protocol", "TCP")
                if port.get("targetPort") in (None, 0, "") and "port" in port:  # 0 is unset, as kube reads it
                    port["targetPort"] = port["port"]
        if kind != "ExternalName":
            spec.setdefault("internalTrafficPolicy", "Cluster")
        if kind in ("NodePort", "LoadBalancer"):
            spec.setdefault("externalTrafficPolicy", "Cluster")
        if kind == "LoadBalancer":
            spec.setdefault("allocateLoadBalancerNodePorts", True)

    def prepare_for_create(self, obj: Object) -> None:
        super().prepare_for_create(obj)
        obj["status"] = {"loadBalancer": {}}

    def validate_in_code(self, obj: Object, old: Object | None) -> list[Cause]:
        spec = as_dict(obj.get("spec"))
        kind = service_type(spec)
        causes: list[Cause] = []
        if kind not in _TYPES:
            return [errors.field_not_supported("spec.type", kind, _TYPES)]
        ports = [p for p in as_list(spec.get("ports")) if isinstance(p, dict)]
        if not ports and kind != "ExternalName" and spec.get("clusterIP") != "None":
            causes.append(errors.field_required("spec.ports"))
        if kind == "ExternalName" and not spec.get("externalName"):
            causes.append(errors.field_required("spec.externalName"))
        names: set[str] = set()
        for i, port in enumerate(ports):
            name = port.get("name") or ""
            if len(ports) > 1 and not name:
                causes.append(errors.field_required(f"spec.ports[{i}].name"))
            elif name in names:
                causes.append(Cause("FieldValueDuplicate", f'Duplicate value: "{name}"', f"spec.ports[{i}].name"))
            names.add(name)
            number = port.get("port")
            if not isinstance(number, int) or not 1 <= number <= 65535:
                causes.append(errors.field_invalid(f"spec.ports[{i}].port", number,
                                                   "must be between 1 and 65535, inclusive"))
            if port.get("nodePort") and kind not in ("NodePort", "LoadBalancer"):
                causes.append(errors.field_forbidden(f"spec.ports[{i}].nodePort",
                                                     f"may not be used when `type` is '{kind}'"))
        return causes


class ServiceStore(Store):
    """A Store whose creates and updates take ClusterIPs and NodePorts from what is free."""

    ranges = ServiceRanges()

    def __init__(self, *args: Any, ranges: ServiceRanges | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if ranges is not None:
            self.ranges = ranges
        self._lock = asyncio.Lock()

    async def _in_use(self, skip_uid: str = "") -> InUse:
        with self._translated(""):
            page = await self._storage.list(self.collection_prefix(""))
        return InUse.of(page.items, skip_uid)

    async def create(self, namespace: str, obj: Object, version: str, opts: WriteOptions) -> Object:
        async with self._lock:
            return await super().create(namespace, obj, version, opts)

    async def _write(self, namespace: str, name: str, version: str, subresource: str, opts: WriteOptions,
                     make_new: Any, require_rv: bool) -> Object:
        if subresource:
            return await super()._write(namespace, name, version, subresource, opts, make_new, require_rv)
        async with self._lock:
            return await super()._write(namespace, name, version, subresource, opts, make_new, require_rv)

    async def _complete(self, obj: Object, old: Object | None) -> None:
        """IP families and the cluster IP and node ports, as kube's Service REST storage allocates them
        (under the store's lock: creates and updates hold it)."""
        await super()._complete(obj, old)
        spec = obj.get("spec")
        if isinstance(spec, dict) and spec.get("type", "ClusterIP") != "ExternalName":
            spec.setdefault("ipFamilies", ["IPv4"])
            spec.setdefault("ipFamilyPolicy", "SingleStack")
        skip = str(((old or {}).get("metadata") or {}).get("uid") or "")
        causes = allocate(obj, old, await self._in_use(skip_uid=skip), self.ranges)
        if causes:
            name = str((obj.get("metadata") or {}).get("name") or "")
            raise errors.invalid(self.definition.group, self.definition.kind, name, causes)
