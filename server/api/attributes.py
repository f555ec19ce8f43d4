"""What a write is about, as admission plugins see it (kube's admission.Attributes)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class AdmissionAttributes:
    """One write request: the operation, the resource and the objects involved.

    `obj` is the object about to be stored (plugins may mutate it during the
    mutating phase); `old_obj` is the stored one for UPDATE and DELETE.
    """

    operation: str  # CREATE | UPDATE | DELETE
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
    user: str = ""
