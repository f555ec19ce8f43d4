"""Resource definitions: what kapi serves, read from CRD manifests.

A resource is data, not code (sample-apiserver's flunder is a definition plus
a strategy): group, names, scope, versions with their schemas and printer
columns. Built-in types (`v1` namespaces) are described the same way.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable

# What a stored resource serves unless its definition says otherwise (watch joins when streams land).
DEFAULT_VERBS: tuple[str, ...] = (
    "create", "delete", "deletecollection", "get", "list", "patch", "update", "watch",
)
# Every resource can be selected by these fields; definitions may add more (kube's selectableFields).
METADATA_FIELDS: tuple[str, ...] = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class PrinterColumn:
    """One `additionalPrinterColumns` entry: a Table column fed by a JSONPath."""

    name: str
    type: str
    json_path: str
    description: str = ""
    format: str = ""
    priority: int = 0
    # Built-in tables count things JSONPath cannot (`DATA` of a ConfigMap): the cell is the number of
    # keys or items found at these field paths, summed.
    count_of: tuple[str, ...] = ()
    # Built-in kinds compute cells in code, as kube's printers do (a pod's READY `1/2`, a service's
    # PORT(S)): called with the object (as served) and the time Age is measured against.
    compute: Callable[[dict[str, Any], datetime], Any] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class ScaleDef:
    """A `scale` subresource: where replicas live in the object (`.spec.replicas`-style paths)."""

    spec_replicas_path: str
    status_replicas_path: str
    label_selector_path: str = ""


@dataclass(frozen=True)
class ConnectDef:
    """A connect subresource (kube's `rest.Connecter`, as pods/exec or services/proxy): code answers it.

    `handler` is the plugin's async callable; the request's query parameters make the
    `<options_kind>` object that admission sees with the operation CONNECT.
    """

    name: str
    methods: tuple[str, ...]
    options_kind: str
    handler: Any = field(default=None, compare=False, repr=False)

    @property
    def verbs(self) -> tuple[str, ...]:
        """The authorization verbs its methods are (kube lists pods/exec as create and get)."""
        return tuple(sorted({_METHOD_VERBS[m] for m in self.methods}))


@dataclass(frozen=True)
class ActionDef:
    """A subresource answered by code in the server, not stored (pods/binding, pods/eviction,
    serviceaccounts/token): what discovery says of it. The HTTP layer finds its handler by
    (group, plural, name) in `ApiContext.actions`."""

    name: str
    kind: str
    group: str
    version: str
    verbs: tuple[str, ...] = ("create",)


def camel_case(name: str) -> str:
    """`remote-shell` as `RemoteShell`: how kube spells a subresource inside kinds and operation ids."""
    return "".join(part.capitalize() for part in name.split("-"))


_METHOD_VERBS = {"GET": "get", "HEAD": "get", "POST": "create", "PUT": "update", "PATCH": "patch",
                 "DELETE": "delete", "OPTIONS": "options"}
CONNECT_METHODS = tuple(_METHOD_VERBS)


@dataclass(frozen=True)
class VersionDef:
    """One served version of a resource."""

    name: str
    served: bool = True
    storage: bool = False
    schema: dict[str, Any] | None = None
    printer_columns: tuple[PrinterColumn, ...] = ()
    scale: ScaleDef | None = None
    deprecated: bool = False
    deprecation_warning: str = ""
    status_subresource: bool = False


@dataclass(frozen=True)
class ResourceDef:
    """A resource type and everything the server needs to serve it."""

    group: str
    kind: str
    plural: str
    singular: str
    namespaced: bool
    versions: tuple[VersionDef, ...]
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    list_kind: str = ""
    builtin: bool = False
    # The verbs served; None means DEFAULT_VERBS. Review-style resources serve ("create",) only.
    verbs: tuple[str, ...] | None = None
    # A virtual resource has no storage: a custom handler answers it (e.g. SelfSubjectAccessReview).
    virtual: bool = False
    # Field paths a fieldSelector may use besides metadata.name and metadata.namespace.
    extra_selectable_fields: tuple[str, ...] = ()
    # How objects move between versions (`kapi.scheme.conversion.Converter`); None is kube's
    # `None` strategy, where only apiVersion changes. Typed Python versions and CRD conversion
    # webhooks set one.
    converter: Any = field(default=None, compare=False, repr=False)
    connect: tuple[ConnectDef, ...] = ()
    actions: tuple[ActionDef, ...] = ()
    # Subresources that read the object and write one part of it, as status does
    # (pods/ephemeralcontainers, namespaces/finalize, certificatesigningrequests/approval).
    part_subresources: tuple[str, ...] = ()
    # A delete answers with the deleted object rather than a Status (kube's registry `ReturnDeletedObject`).
    returns_deleted_object: bool = False

    def action(self, subresource: str) -> ActionDef | None:
        return next((a for a in self.actions if a.name == subresource), None)

    def connector(self, subresource: str) -> ConnectDef | None:
        return next((c for c in self.connect if c.name == subresource), None)

    @property
    def selectable_fields(self) -> tuple[str, ...]:
        return METADATA_FIELDS + self.extra_selectable_fields

    @property
    def served_verbs(self) -> tuple[str, ...]:
        return DEFAULT_VERBS if self.verbs is None else self.verbs

    @property
    def list_kind_name(self) -> str:
        return self.list_kind or f"{self.kind}List"

    @property
    def storage_version(self) -> VersionDef:
        for v in self.versions:
            if v.storage:
                return v
        return self.versions[0]

    @property
    def served_versions(self) -> tuple[VersionDef, ...]:
        return tuple(v for v in self.versions if v.served)

    def version(self, name: str) -> VersionDef | None:
        for v in self.versions:
            if v.name == name and v.served:
                return v
        return None

    def api_version(self, version: str) -> str:
        return f"{self.group}/{version}" if self.group else version

    @property
    def has_status(self) -> bool:
        return any(v.status_subresource for v in self.versions)
