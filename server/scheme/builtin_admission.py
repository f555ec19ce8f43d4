"""admissionregistration.k8s.io/v1 webhook configurations (placeholder: being written)."""
from __future__ import annotations

from server.scheme.definitions import ResourceDef

ADMISSION_REGISTRATION: tuple[ResourceDef, ...] = ()
