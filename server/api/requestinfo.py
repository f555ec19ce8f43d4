"""Parse a request path into what it asks for, the way kube-apiserver's RequestInfoFactory does.

One pure function serves the authorizer, the handlers and the logs alike, so
they can never disagree about which resource a URL names.
"""
from __future__ import annotations

from dataclasses import dataclass

_NAMESPACE_SUBRESOURCES = frozenset({"status", "finalize"})
_METHOD_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}


@dataclass(frozen=True)
class RequestInfo:
    """What a request targets; `is_resource_request` is False for /version, /healthz, discovery, …"""

    path: str
    verb: str
    is_resource_request: bool = False
    api_prefix: str = ""
    group: str = ""
    version: str = ""
    namespace: str = ""
    resource: str = ""
    name: str = ""
    subresource: str = ""
    extra_parts: tuple[str, ...] = ()


def parse_request_info(method: str, path: str, watch_param: bool = False) -> RequestInfo:
    """Split `/api/v1/...` and `/apis/<g>/<v>/...` paths into group, version, namespace, resource, name."""
    method = method.upper()
    plain_verb = method.lower()
    parts = [p for p in path.strip("/").split("/") if p != ""] if path.strip("/") else []
    if not parts or parts[0] not in ("api", "apis"):
        return RequestInfo(path=path, verb=plain_verb)
    prefix, rest = parts[0], parts[1:]
    group = ""
    if prefix == "apis":
        if not rest:
            return RequestInfo(path=path, verb=plain_verb, api_prefix=prefix)
        group, rest = rest[0], rest[1:]
    if not rest:
        return RequestInfo(path=path, verb=plain_verb, api_prefix=prefix, group=group)
    version, rest = rest[0], rest[1:]
    if not rest:
        return RequestInfo(path=path, verb=plain_verb, api_prefix=prefix, group=group, version=version)

    legacy_watch = False
    if rest[0] == "watch":
        legacy_watch, rest = True, rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 1:
        namespace = rest[1]
        if len(rest) > 2 and rest[2] not in _NAMESPACE_SUBRESOURCES:
            rest = rest[2:]
    if not rest:
        return RequestInfo(path=path, verb=plain_verb, api_prefix=prefix, group=group, version=version)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    extra = tuple(rest[3:])

    if legacy_watch or (method == "GET" and watch_param):
        verb = "watch"
    elif method in ("GET", "HEAD"):
        verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = _METHOD_VERBS.get(method, plain_verb)
    return RequestInfo(
        path=path,
        verb=verb,
        is_resource_request=True,
        api_prefix=prefix,
        group=group,
        version=version,
        namespace=namespace,
        resource=resource,
        name=name,
        subresource=subresource,
        extra_parts=extra,
    )
