"""Start-up: the namespaces every cluster has (default, kube-system, …) and the start-up CRDs.

Both are idempotent and safe when several servers start at once on one etcd.
"""
from __future__ import annotations

from typing import Any

from kapi.api import errors
from kapi.registry.store import Store, WriteOptions
from kapi.scheme.builtin import INITIAL_NAMESPACES


async def ensure_initial_namespaces(namespaces: Store) -> list[str]:
    """Create the initial namespaces that are missing; return the ones created."""
    created = []
    for name in INITIAL_NAMESPACES:
        try:
            await namespaces.create("", {"metadata": {"name": name}}, "v1", WriteOptions())
            created.append(name)
        except errors.AlreadyExists:
            continue
    return created


async def apply_crd_manifests(crds: Store, manifests: list[dict[str, Any]]) -> None:
    """Create each CRD, or bring its spec up to date: start-up manifests are applied, not just read.

    Stored this way they survive restarts on persistent backends, and the CRD
    controller serves them like any CRD created through the API.
    """
    for manifest in manifests:
        await _apply_one(crds, manifest)


async def _apply_one(crds: Store, manifest: dict[str, Any]) -> None:
    """Create, or update the spec; several servers starting on one etcd may race, so retry once."""
    name = manifest["metadata"]["name"]
    for attempt in range(2):
        try:
            current = await crds.get("", name, "v1")
        except errors.NotFound:
            try:
                await crds.create("", {"apiVersion": manifest["apiVersion"], "kind": manifest["kind"],
                                       "metadata": {"name": name}, "spec": manifest["spec"]}, "v1", WriteOptions())
                return
            except errors.AlreadyExists:
                if attempt:
                    raise
                continue  # another server created it meanwhile: compare with theirs
        if current.get("spec") != manifest["spec"]:
            await crds.patch("", name, "v1", "", lambda cur, m=manifest: {**cur, "spec": m["spec"]}, WriteOptions())
        return


async def publish_authentication_configmap(configmaps: Store, data: dict[str, str]) -> None:
    """kube-system/extension-apiserver-authentication: what extension servers that delegate to this one
    read (client CA, request-header CA and headers). Written at every start, as kube-apiserver does."""
    namespace, name = "kube-system", "extension-apiserver-authentication"
    desired = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
               "data": data}
    options = WriteOptions(manager="kube-apiserver")
    try:
        current = await configmaps.get(namespace, name, "v1")
    except errors.NotFound:
        try:
            await configmaps.create(namespace, desired, "v1", options)
        except errors.AlreadyExists:
            pass  # another server on the same etcd wrote it meanwhile
        return
    if current.get("data") != data:
        await configmaps.patch(namespace, name, "v1", "", lambda cur: {**cur, "data": data}, options)
