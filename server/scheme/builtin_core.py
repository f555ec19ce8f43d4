"""The built-in kinds a controller touches first, by name, from the catalogue.

Kept as names for the code and tests that single them out; the catalogue
(`kapi.scheme.catalogue`) serves every built-in kind.
"""
from __future__ import annotations

from kapi.scheme.catalogue import builtin
from kapi.scheme.definitions import ResourceDef

CONFIG_MAPS = builtin("", "configmaps")
SECRETS = builtin("", "secrets")
SERVICE_ACCOUNTS = builtin("", "serviceaccounts")
EVENTS = builtin("", "events")
EVENTS_V1 = builtin("events.k8s.io", "events")
LEASES = builtin("coordination.k8s.io", "leases")

CORE_RESOURCES: tuple[ResourceDef, ...] = (CONFIG_MAPS, SECRETS, SERVICE_ACCOUNTS, EVENTS, EVENTS_V1, LEASES)
