"""The public API a plugin module uses to define API groups, admission plugins and routers.

A plugin module exposes `plugin = Plugin(...)`; `kapi start --plugin pkg.mod`
(or an installed package's `kapi.plugins` entry point) loads it. Everything
here is plain data: `kapi.plugins.typed` turns it into what the server runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Sequence

from pydantic import BaseModel

from kapi.admission.interfaces import AdmissionPlugin, ObjectReader
from kapi.api.errors import Cause, field_required, field_value_invalid
from kapi.storage.interfaces import Storage


@dataclass(frozen=True)
class Column:
    """A printer column (`kubectl get`): a name and a JSONPath into the object of that version."""

    name: str
    json_path: str
    type: str = "string"
    description: str = ""
    priority: int = 0
    format: str = ""


@dataclass(frozen=True)
class Version:
    """One served version: its model, and how it turns into the hub and back.

    The version whose model *is* the hub needs no functions. Exactly one
    version of a resource is the storage version.
    """

    name: str
    model: type[BaseModel]
    to_hub: Callable[[Any], BaseModel] | None = None
    from_hub: Callable[[Any], BaseModel] | None = None
    storage: bool = False
    columns: Sequence[Column] = ()
    deprecated: bool = False


@dataclass(frozen=True)
class FieldError:
    """A validation failure at a field path (`spec.replicas`), answered as a 422 cause."""

    field: str
    message: str
    value: Any = None
    required: bool = False

    def to_cause(self) -> Cause:
        if self.required:
            return field_required(self.field, self.message or "Required value")
        return field_value_invalid(self.field, self.value, self.message)


class Invalid(Exception):
    """Raised by a plugin's conversion or defaulting code: the object is answered with a 422 `Invalid`."""

    def __init__(self, *field_errors: FieldError) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in field_errors))
        self.field_errors = field_errors


@dataclass(frozen=True)
class Connect:
    """A connect subresource, as kube's pods/exec or services/proxy: `<plural>/<name>/<subresource>`.

    `handler(call)` is async and gets a `ConnectRequest` (the object, the options built from the
    query, the user, the HTTP request); it returns a Starlette response, text, bytes or a JSON
    object. Admission runs first with the operation CONNECT on the options object
    (`options_kind`, by default `<Kind><Name>Options`), so plugins and webhooks may refuse it.
    """

    name: str
    handler: Callable[[Any], Awaitable[Any]]
    methods: Sequence[str] = ("GET",)
    options_kind: str = ""


Defaulter = Callable[[Any], None]
Validator = Callable[[Any, Any], list[FieldError]]  # (hub, old hub or None) -> errors


@dataclass(frozen=True)
class Resource:
    """A resource type of a group: names, scope, versions, Python defaulting and validation.

    `storage` is where its objects live: None for the server's backend,
    "memory" for a private in-memory store (gone at restart), or any object
    implementing `kapi.storage.interfaces.Storage` (computed data, like
    metrics-server's). `verbs` narrows what is served (e.g. ("get", "list")). `connect` adds
    connect subresources answered by code.
    """

    kind: str
    plural: str
    versions: Sequence[Version]
    namespaced: bool = True
    singular: str = ""
    short_names: Sequence[str] = ()
    categories: Sequence[str] = ()
    verbs: Sequence[str] = ()
    default: Defaulter | None = None
    validate: Validator | None = None
    storage: Storage | str | None = None
    connect: Sequence[Connect] = ()


@dataclass(frozen=True)
class APIGroup:
    name: str
    resources: Sequence[Resource]


AdmissionFactory = Callable[[ObjectReader], AdmissionPlugin]


@dataclass(frozen=True)
class Plugin:
    """What one plugin module brings.

    `admission` maps plugin names (as `--admission-plugins` names them) to
    factories given the object reader. `routers` are FastAPI routers mounted
    under `--apiexts-prefix`; their handlers reach objects with
    `kapi.plugins.objects(request)`.
    """

    groups: Sequence[APIGroup] = ()
    admission: dict[str, AdmissionFactory] = field(default_factory=dict)
    routers: Sequence[Any] = ()
