"""Storage key layout, as kube-apiserver lays out etcd.

`/registry/<group>/<resource>/<namespace>/<name>` for namespaced objects,
`/registry/<group>/<resource>/<name>` for cluster-scoped ones; the core
group ("") is left out (`/registry/namespaces/default`).
"""
from __future__ import annotations

import re

ROOT = "/registry"
_SEGMENT = re.compile(r"^[a-z0-9]([a-z0-9.\-]*[a-z0-9])?$")
# Object names may be path segments (RBAC's `system:basic-user`, `MyRole`): letters, digits and a few
# punctuation marks, starting with a letter or digit (no '..', no hidden or temporary files of the
# file backend, nothing a shell or a file system treats specially).
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.:_@+=~\-]*$")


def _segment(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or ".." in value:
        raise ValueError(f"invalid {what} for a storage key: {value!r}")
    return value


def collection_prefix(group: str, resource: str, namespace: str = "") -> str:
    """The prefix that every object of `resource` (in `namespace`) lives under, ending in '/'."""
    parts = [ROOT]
    if group:
        parts.append(_segment(group, "group"))
    parts.append(_segment(resource, "resource"))
    if namespace:
        parts.append(_segment(namespace, "namespace"))
    return "/".join(parts) + "/"


def _name(value: str) -> str:
    if not _is_name(value):
        raise ValueError(f"invalid name for a storage key: {value!r}")
    return value


def _is_name(value: str) -> bool:
    return bool(_NAME.match(value))


def object_key(group: str, resource: str, namespace: str, name: str) -> str:
    return collection_prefix(group, resource, namespace) + _name(name)


# API groups without a dot (kube's own); every other group has one (CRD groups must), so a key's first
# segment names a group exactly when it has a dot or is one of these.
_DOTLESS_GROUPS = frozenset({"apps", "batch", "policy", "autoscaling", "extensions"})


def group_resource(key: str) -> str:
    """The resource a key or prefix is under, as kube's etcd metrics name it ("pods", "deployments.apps");
    "" for a key under no resource (the whole store)."""
    if not key.startswith(ROOT + "/"):
        return ""
    first, _, rest = key[len(ROOT) + 1:].partition("/")
    if "." in first or first in _DOTLESS_GROUPS:
        resource = rest.partition("/")[0]
        return f"{resource}.{first}" if resource else first
    return first


def is_safe_key(key: str) -> bool:
    """True when every segment of `key` is a plain DNS-style word (no '..', no empty parts) but the last,
    which may be any object name."""
    if not key.startswith(ROOT + "/"):
        return False
    *parts, last = key[len(ROOT) + 1:].rstrip("/").split("/")
    return all(_SEGMENT.match(p) and ".." not in p for p in parts) and _is_name(last)
