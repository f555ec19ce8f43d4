"""NamespaceLifecycle: namespaced objects may only be created in a namespace that exists.

Like kube-apiserver's plugin of that name, it answers 404 for a missing
namespace and refuses creation in a namespace being deleted.
"""
from __future__ import annotations

from typing import Any, Awaitable, Callable

from kapi.admission.interfaces import Plugin
from kapi.api.attributes import AdmissionAttributes
from kapi.api.errors import Forbidden, QualifiedKind, not_found

NamespaceGetter = Callable[[str], Awaitable[dict[str, Any] | None]]


class NamespaceLifecycle(Plugin):
    name = "NamespaceLifecycle"

    def __init__(self, get_namespace: NamespaceGetter) -> None:
        self._get_namespace = get_namespace

    async def validate(self, attributes: AdmissionAttributes) -> None:
        if attributes.operation != "CREATE" or not attributes.namespace:
            return
        if attributes.group == "" and attributes.resource == "namespaces":
            return
        ns = await self._get_namespace(attributes.namespace)
        if ns is None:
            raise not_found("", "namespaces", attributes.namespace)
        if (ns.get("metadata") or {}).get("deletionTimestamp") or (ns.get("status") or {}).get("phase") == "Terminating":
            raise Forbidden(
                f'{attributes.resource} "{attributes.name}" is forbidden: unable to create new content '
                f'in namespace {attributes.namespace} because it is being terminated',
                details=QualifiedKind(name=attributes.name, group=attributes.group, kind=attributes.resource),
            )
