"""kube-controller-manager's EndpointSlice and Endpoints controllers: a Service's selected pods, as addresses.

For each Service with a selector (ExternalName aside), the pods of its
namespace that match it, have an IP and are not finished become endpoints:

- EndpointSlices (`<service>-` + a generated suffix), owned by the Service,
  labelled `kubernetes.io/service-name` and `endpointslice.kubernetes.io/managed-by`
  (plus the Service's own labels), grouped by address type and by the ports
  the pod resolves (a named targetPort is looked up in the pod's containers),
  at most 100 endpoints each; terminating pods stay with `terminating: true`.
  A Service without endpoints keeps one empty placeholder slice, as in kube.
- the v1 Endpoints of the same name: ready pods under `addresses`, the others
  under `notReadyAddresses`, terminating pods left out (both unless the
  Service publishes not-ready addresses).

Objects are written only when their content changes. Services without a
selector are left to their users; what a deleted Service leaves behind goes.
"""
from __future__ import annotations

import asyncio
import time
from typing import Any

from kapi.controllers.simulation.endpoint_parts import (
    ENDPOINTS_CONTROLLER,
    ENDPOINTS_MANAGED_BY,
    MANAGED_BY,
    MAX_PER_SLICE,
    SERVICE_NAME,
    SLICE_CONTROLLER,
    ZONE,
    PortsKey,
    address_order,
    endpoint_ports,
    families,
    hostname_for,
    in_endpoints,
    ip_order,
    pack,
    pod_address,
    ports_key,
    service_labels,
    slice_endpoint,
    slice_labels,
    target_ref,
)

from kapi.controllers.simulation.informer import (
    ENDPOINT_SLICES,
    ENDPOINTS,
    NODES,
    PODS,
    SERVICES,
    Kind,
    Name,
    name_of,
)
from kapi.controllers.simulation.pods import is_ready, matches
from kapi.controllers.simulation.runtime import Controller
from kapi.registry.write_steps import copy_object

Object = dict[str, Any]
STALE_AFTER = 5.0  # seconds to wait for the informer to show our own write before trusting it anyway


class EndpointsController(Controller):
    """Both of kube's endpoint controllers over one queue of service keys."""

    name = "endpointslice-controller"
    workers = 2

    def __init__(self, cluster: Any) -> None:
        super().__init__(cluster)
        # Our own slice writes the informer has yet to show, per service: name → resourceVersion ("" once
        # deleted), and when written. Reconciling from a cache that lacks them would make duplicates (kube's
        # endpointSliceTracker); their watch events queue the service again.
        self._written: dict[Name, dict[str, tuple[str, float]]] = {}

    def changed(self, kind: Kind, old: Object | None, new: Object | None) -> None:
        if kind == SERVICES:
            self.enqueue(name_of(new or old or {}))
        elif kind == PODS:
            namespace = name_of(new or old or {})[0]
            labels = [(o["metadata"].get("labels") or {}) for o in (old, new) if o is not None]
            for service in self.informer.list(SERVICES, namespace):
                selector = (service.get("spec") or {}).get("selector")
                if selector and any(matches({"matchLabels": selector}, lab) for lab in labels):
                    self.enqueue(name_of(service))
        elif kind == ENDPOINT_SLICES:
            tags = (new or old or {}).get("metadata", {}).get("labels") or {}
            if tags.get(MANAGED_BY) == SLICE_CONTROLLER and tags.get(SERVICE_NAME):
                self.enqueue((name_of(new or old or {})[0], tags[SERVICE_NAME]))
        elif kind == ENDPOINTS:
            self.enqueue(name_of(new or old or {}))

    def start_keys(self) -> list[Any]:
        keys = {name_of(s) for s in self.informer.list(SERVICES)}
        keys.update((name_of(s)[0], (s["metadata"].get("labels") or {}).get(SERVICE_NAME, ""))
                    for s in self.informer.list(ENDPOINT_SLICES) if self._ours(s))
        return sorted(k for k in keys if k[1])

    @staticmethod
    def _ours(eps: Object) -> bool:
        return (eps["metadata"].get("labels") or {}).get(MANAGED_BY) == SLICE_CONTROLLER

    def _slices_of(self, key: Name) -> list[Object]:
        return [s for s in self.informer.list(ENDPOINT_SLICES, key[0])
                if self._ours(s) and (s["metadata"].get("labels") or {}).get(SERVICE_NAME) == key[1]]

    def _expect(self, key: Name, written: Object | None, name: str) -> None:
        rv = str((written or {}).get("metadata", {}).get("resourceVersion") or "")
        self._written.setdefault(key, {})[name] = (rv, time.monotonic())

    def _cache_is_stale(self, key: Name, slices: list[Object]) -> bool:
        written = self._written.get(key)
        if not written:
            return False
        seen = {s["metadata"]["name"]: int(s["metadata"].get("resourceVersion") or 0) for s in slices}
        now = time.monotonic()
        for name, (rv, at) in list(written.items()):
            caught_up = name not in seen if not rv else seen.get(name, 0) >= int(rv)
            if caught_up or now - at > STALE_AFTER:
                del written[name]
        if not written:
            del self._written[key]
        return bool(written)

    async def reconcile(self, key: Name) -> None:
        service = self.informer.get(SERVICES, *key)
        slices = self._slices_of(key)
        if self._cache_is_stale(key, slices):
            asyncio.get_running_loop().call_later(0.05, self.enqueue, key)
            return
        if service is None:
            for eps in slices:
                await self._delete_slice(key, eps)
            endpoints = self.informer.get(ENDPOINTS, *key)
            if endpoints is not None and (endpoints["metadata"].get("labels") or {}).get(ENDPOINTS_MANAGED_BY):
                await self.cluster.delete(ENDPOINTS, endpoints)
            return
        spec = service.get("spec") or {}
        if not spec.get("selector") or spec.get("type") == "ExternalName":
            return  # user-managed endpoints
        uid = service["metadata"].get("uid")
        stale = [s for s in slices if any(r.get("controller") and r.get("uid") != uid
                                          for r in s["metadata"].get("ownerReferences") or [])]
        for eps in stale:  # left by an earlier service of the same name
            await self._delete_slice(key, eps)
        pods = [p for p in self.informer.list(PODS, key[0])
                if matches({"matchLabels": spec["selector"]}, p["metadata"].get("labels") or {})]
        await self._sync_slices(service, pods, [s for s in slices if s not in stale])
        await self._sync_endpoints(service, pods)

    # -- EndpointSlices ------------------------------------------------------------------------
    def _desired_slices(self, service: Object, pods: list[Object]) -> dict[tuple[str, PortsKey], tuple[list[Object],
                                                                                                     list[Object]]]:
        """(address type, ports) → (ports, endpoints), endpoints in address order."""
        groups: dict[tuple[str, PortsKey], tuple[list[Object], list[Object]]] = {}
        for pod in pods:
            if not in_endpoints(pod, include_terminating=True):
                continue
            node = self.informer.get(NODES, "", str((pod.get("spec") or {}).get("nodeName") or ""))
            zone = str(((node or {}).get("metadata", {}).get("labels") or {}).get(ZONE) or "")
            ports = endpoint_ports(service, pod)
            for family in families(service):
                address = pod_address(pod, family)
                if address is None:
                    continue
                group = groups.setdefault((family, ports_key(ports)), (ports, []))
                group[1].append(slice_endpoint(pod, service, address, zone))
        for _, endpoints in groups.values():
            endpoints.sort(key=ip_order)
        return groups

    async def _sync_slices(self, service: Object, pods: list[Object], existing: list[Object]) -> None:
        desired = self._desired_slices(service, pods)
        namespace, labels = service["metadata"].get("namespace", ""), slice_labels(service)
        by_group: dict[tuple[str, PortsKey], list[Object]] = {}
        for eps in sorted(existing, key=lambda s: s["metadata"]["name"]):
            by_group.setdefault((str(eps.get("addressType") or ""), ports_key(eps.get("ports") or [])), []).append(eps)
        keep: list[tuple[Object, list[Object], list[Object]]] = []  # (slice, ports, endpoints)
        create: list[tuple[str, list[Object], list[Object]]] = []  # (address type, ports, endpoints)
        for group, (ports, endpoints) in desired.items():
            olds = by_group.pop(group, [])
            keep_, new = pack(olds, endpoints)
            keep += [(s, ports, eps) for s, eps in keep_]
            create += [(group[0], ports, new[i:i + MAX_PER_SLICE]) for i in range(0, len(new), MAX_PER_SLICE)]
        delete = [s for olds in by_group.values() for s in olds]
        delete += [s for s, _, eps in keep if not eps]
        keep = [(s, p, eps) for s, p, eps in keep if eps]
        if not keep and not create:  # kube keeps one empty placeholder slice for a service without endpoints
            placeholder = next((s for s in delete if not s.get("endpoints") and not s.get("ports")
                                and s.get("addressType") == families(service)[0]), None)
            if placeholder is not None:
                delete.remove(placeholder)
                keep.append((placeholder, [], []))
            else:
                create.append((families(service)[0], [], []))
        key = name_of(service)
        for eps, ports, endpoints in keep:
            await self._update_slice(key, eps, labels, ports, endpoints)
        for address_type, ports, endpoints in create:
            created = await self.cluster.create(ENDPOINT_SLICES, namespace,
                                                self._new_slice(service, address_type, ports, endpoints))
            if created is not None:
                self._expect(key, created, created["metadata"]["name"])
        for eps in delete:
            await self._delete_slice(key, eps)

    async def _delete_slice(self, key: Name, eps: Object) -> None:
        await self.cluster.delete(ENDPOINT_SLICES, eps)
        self._expect(key, None, eps["metadata"]["name"])

    def _new_slice(self, service: Object, address_type: str, ports: list[Object], endpoints: list[Object]) -> Object:
        meta = service["metadata"]
        return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                "metadata": {"generateName": f"{meta['name']}-", "namespace": meta.get("namespace", ""),
                             "labels": slice_labels(service),
                             "ownerReferences": [{"apiVersion": "v1", "kind": "Service", "name": meta["name"],
                                                  "uid": meta.get("uid", ""), "controller": True,
                                                  "blockOwnerDeletion": True}]},
                "addressType": address_type, "endpoints": endpoints, "ports": ports}

    async def _update_slice(self, key: Name, eps: Object, labels: dict[str, str], ports: list[Object],
                            endpoints: list[Object]) -> None:
        if ((eps["metadata"].get("labels") or {}) == labels and (eps.get("endpoints") or []) == endpoints
                and (eps.get("ports") or []) == ports):
            return

        def change(obj: Object) -> None:
            obj["metadata"]["labels"] = dict(labels)
            obj["endpoints"], obj["ports"] = [copy_object(e) for e in endpoints], [copy_object(p) for p in ports]

        meta = eps["metadata"]
        written = await self.cluster.change(ENDPOINT_SLICES, meta.get("namespace", ""), meta["name"], change)
        if written is not None:
            self._expect(key, written, meta["name"])

    # -- Endpoints (v1) --------------------------------------------------------------------------
    def desired_subsets(self, service: Object, pods: list[Object]) -> list[Object]:
        """kube's Endpoints subsets: addresses grouped by their ports (RepackSubsets), in address order."""
        publish = bool((service.get("spec") or {}).get("publishNotReadyAddresses"))
        groups: dict[PortsKey, tuple[list[Object], list[Object], list[Object]]] = {}
        for pod in pods:
            if not in_endpoints(pod, include_terminating=publish):
                continue
            address_ip = pod_address(pod, families(service)[0])
            if address_ip is None:
                continue
            address: Object = {"ip": address_ip}
            if hostname := hostname_for(pod, service):
                address["hostname"] = hostname
            if node := (pod.get("spec") or {}).get("nodeName"):
                address["nodeName"] = node
            address["targetRef"] = target_ref(pod)
            ports = [{k: v for k, v in p.items() if not (k == "name" and v == "")}
                     for p in endpoint_ports(service, pod)]
            ready, not_ready = groups.setdefault(ports_key(ports), (ports, [], []))[1:]
            (ready if publish or is_ready(pod) else not_ready).append(address)
        subsets = []
        for key in sorted(groups):
            ports, ready, not_ready = groups[key]
            subset: Object = {}
            if ready:
                subset["addresses"] = sorted(ready, key=address_order)
            if not_ready:
                subset["notReadyAddresses"] = sorted(not_ready, key=address_order)
            if ports:
                subset["ports"] = sorted(ports, key=lambda p: (p.get("name", ""), p["port"], p["protocol"]))
            subsets.append(subset)
        return subsets

    async def _sync_endpoints(self, service: Object, pods: list[Object]) -> None:
        meta = service["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        subsets = self.desired_subsets(service, pods)
        labels = {**service_labels(service, ()), ENDPOINTS_MANAGED_BY: ENDPOINTS_CONTROLLER}
        current = self.informer.get(ENDPOINTS, namespace, name)
        if current is None:
            obj: Object = {"apiVersion": "v1", "kind": "Endpoints",
                           "metadata": {"name": name, "namespace": namespace, "labels": labels}}
            if subsets:
                obj["subsets"] = subsets
            await self.cluster.create(ENDPOINTS, namespace, obj)
            return
        if (current.get("subsets") or []) == subsets and (current["metadata"].get("labels") or {}) == labels:
            return

        def change(obj: Object) -> None:
            obj["metadata"]["labels"] = dict(labels)
            if subsets:
                obj["subsets"] = [copy_object(subset) for subset in subsets]
            else:
                obj.pop("subsets", None)

        await self.cluster.change(ENDPOINTS, namespace, name, change)
