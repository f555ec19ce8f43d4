"""What a write is about, as admission plugins see it (kube's admission.Attributes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from kapi.api.user import UserInfo


@dataclass
class AdmissionAttributes:
    """One write request: the operation, the resource and the objects involved.

    `obj` is the object about to be stored, in the request's version (plugins
    may mutate it during the mutating phase); `old_obj` is the stored one for
    UPDATE and DELETE. `operation` is kube's CREATE | UPDATE | DELETE | CONNECT.
    """

    operation: str
    group: str
    version: str
    resource: str
    kind: str
    namespace: str
    name: str
    subresource: str = ""
    obj: dict[str, Any] | None = None
    old_obj: dict[str, Any] | None = None
    dry_run: bool = False
    user: UserInfo | None = None
    # Where the plugin's warnings go back to the client (`Warning` headers).
    warnings: list[str] | None = None
    # The resource's served versions and how to see an object in one of them (a new dict): webhooks
    # with `matchPolicy: Equivalent` are sent the object in the version their rule names.
    versions: tuple[str, ...] = ()
    convert: Callable[[dict[str, Any], str], Awaitable[dict[str, Any]]] | None = None
    # Set on such a view: the version the request itself came in (AdmissionReview's requestKind).
    request_version: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version
