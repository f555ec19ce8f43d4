"""Non-resource paths: discovery, OpenAPI, /version and the service-account issuer's OIDC discovery
(health checks: `health.py`).

Documents are derived from the scheme and cached as bytes per scheme
generation, so a discovery request costs a dictionary lookup.
"""
from __future__ import annotations

import hashlib
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.endpoints import aggregated_docs, discovery, negotiation as neg, openapi
from kapi.endpoints.context import ApiContext

OPENID_CONFIG_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/openid/v1/jwks"
OPENID_PATHS = frozenset({OPENID_CONFIG_PATH, JWKS_PATH})
JWKS_CONTENT_TYPE = "application/jwk-set+json"
_OPENID_CACHE_CONTROL = "public, max-age=3600"


def _json(body: bytes, content_type: str = neg.JSON, headers: dict[str, str] | None = None) -> Response:
    return Response(body, media_type=content_type, headers=headers)


def _aggregated_version(accept: str | None) -> str | None:
    """v2 or v2beta1 when the client asks for APIGroupDiscoveryList before plain JSON."""
    for mt in neg.parse_accept(accept):
        if mt.params.get("as") == "APIGroupDiscoveryList" and mt.params.get("g") == "apidiscovery.k8s.io":
            if mt.params.get("v") in ("v2", "v2beta1"):
                return mt.params["v"]
            continue
        if mt.type in (neg.JSON, "*/*", "application/*"):
            return None
    return None


def _discovery_root(request: Request, ctx: ApiContext, core: bool) -> Response:
    version = _aggregated_version(request.headers.get("accept"))
    if version is not None:
        body = ctx.cached(("aggregated", core, version), lambda: orjson.dumps(_with_aggregated(
            ctx, discovery.aggregated_discovery(ctx.scheme, core, version),
            lambda doc, table: aggregated_docs.merged_aggregated(doc, _builtin_group(ctx), table), core)))
        content_type = (discovery.AGGREGATED_CONTENT_TYPE_V2 if version == "v2"
                        else discovery.AGGREGATED_CONTENT_TYPE_V2BETA1)
        return _json(body, content_type)
    if core:
        return _json(ctx.cached("api", lambda: orjson.dumps(discovery.api_versions(ctx.server_address))))
    return _json(ctx.cached("apis", lambda: orjson.dumps(_with_aggregated(
        ctx, discovery.api_group_list(ctx.scheme),
        lambda doc, table: aggregated_docs.merged_group_list(doc, _builtin_group(ctx), table)))))


def _builtin_group(ctx: ApiContext) -> Any:
    def builtin(group: str) -> bool:
        found = ctx.scheme.group(group)
        return found is not None and any(d.builtin for d, _ in ctx.scheme.resources_in(group, found.versions[0]))
    return builtin


def _with_aggregated(ctx: ApiContext, doc: dict[str, Any], merge: Any, core: bool = False) -> dict[str, Any]:
    """`doc` with the APIServices' group-versions merged in (the core group has none)."""
    if core or not ctx.aggregated:
        return doc
    return merge(doc, ctx.aggregated)  # type: ignore[no-any-return]


def handle_discovery(request: Request, info: RequestInfo, ctx: ApiContext) -> Response:
    """`/api`, `/api/v1`, `/apis`, `/apis/<g>`, `/apis/<g>/<v>`."""
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    core = info.api_prefix == "api"
    if core and info.group == "" and not info.version:
        return _discovery_root(request, ctx, core=True)
    if not core and not info.group:
        return _discovery_root(request, ctx, core=False)
    if not core and not info.version:
        body = ctx.cached(("group", info.group), lambda: _dumps_or_none(aggregated_docs.merged_group(
            discovery.api_group(ctx.scheme, info.group), info.group, _builtin_group(ctx)(info.group), ctx.aggregated)))
    else:
        group = "" if core else info.group
        body = ctx.cached(("resources", group, info.version),
                          lambda: _dumps_or_none(discovery.api_resource_list(ctx.scheme, group, info.version)))
    if body is None:
        raise errors.no_such_resource()
    return _json(body)


def _dumps_or_none(doc: object) -> bytes | None:
    return None if doc is None else orjson.dumps(doc)


def handle_openapi(request: Request, ctx: ApiContext) -> Response:
    """`/openapi/v2`, `/openapi/v3` and `/openapi/v3/(api|apis)/...` group-version documents."""
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    path = request.scope["path"].rstrip("/")
    if path == "/openapi/v2":
        body = ctx.cached("openapi-v2", lambda: openapi.document_bytes(_with_aggregated(
            ctx, openapi.openapi_v2(ctx.scheme), aggregated_docs.merged_openapi_v2)))
        return _json(body, headers=_etag(body))
    if path == "/openapi/v3":  # kube serves the index as text/plain (its clients parse it as JSON)
        return Response(ctx.cached("openapi-v3", lambda: orjson.dumps(_with_aggregated(
            ctx, openapi.openapi_v3_index(ctx.scheme), aggregated_docs.merged_openapi_v3_index))),
            media_type="text/plain; charset=utf-8")
    rest = path[len("/openapi/v3/"):] if path.startswith("/openapi/v3/") else ""
    parts = rest.split("/")
    if len(parts) == 2 and parts[0] == "api":
        group, version = "", parts[1]
    elif len(parts) == 3 and parts[0] == "apis":
        group, version = parts[1], parts[2]
    else:
        raise errors.no_such_resource()
    remote = ctx.aggregated.get(group, version) if group else None
    if remote is not None:
        body = remote.openapi_v3
    else:
        body = ctx.cached(("openapi-v3", group, version),
                          lambda: _document_or_none(openapi.openapi_v3_group_version(ctx.scheme, group, version)))
    if body is None:
        raise errors.no_such_resource()
    headers = _etag(body)
    if request.query_params.get("hash"):
        headers["Cache-Control"] = "public, immutable"
    return _json(body, headers=headers)


def _document_or_none(doc: dict | None) -> bytes | None:
    """The exact bytes the index's `?hash=` was computed over."""
    return None if doc is None else openapi.document_bytes(doc)


def _etag(body: bytes) -> dict[str, str]:
    return {"ETag": '"' + hashlib.sha512(body).hexdigest().upper() + '"'}


def handle_version(request: Request, ctx: ApiContext) -> Response:
    return _json(ctx.cached("version", lambda: orjson.dumps(discovery.version_info())))



def handle_openid(request: Request, ctx: ApiContext) -> Response:
    """kube's OIDC discovery for its service-account issuer: the provider configuration and the JWKS
    that verifies the tokens (`jwks_uri` at this server's address, as kube's external address)."""
    issuer = ctx.token_issuer
    if issuer is None:
        raise errors.no_such_resource()
    if request.method not in ("GET", "HEAD"):
        raise errors.method_not_allowed()
    headers = {"Cache-Control": _OPENID_CACHE_CONTROL}
    if request.scope["path"] == JWKS_PATH:
        return _json(ctx.cached("openid-jwks", lambda: orjson.dumps(issuer.jwks())), JWKS_CONTENT_TYPE, headers)
    jwks_uri = f"https://{ctx.server_address}{JWKS_PATH}"
    return _json(ctx.cached("openid-config", lambda: orjson.dumps(issuer.openid_configuration(jwks_uri))),
                 headers=headers)
