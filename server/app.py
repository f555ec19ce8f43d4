"""`create_app(config)`: wire storage, scheme, registry, admission and HTTP into one ASGI app.

Everything is built here from the config; nothing lives in module globals, so
tests can create as many independent servers as they like.
"""
from __future__ import annotations

import secrets
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI

from certs.layout import CertPaths
from server.admission.chain import AdmissionChain
from server.admission.namespace_lifecycle import NamespaceLifecycle
from server.api import errors
from server.auth import kubectl_token
from server.auth.factory import build_authenticator, build_authorizer
from server.auth.union import UnionAuthenticator
from server.config import ServerConfig
from server.controllers.bootstrap import ensure_initial_namespaces
from server.endpoints.context import ApiContext
from server.endpoints.router import make_api_handler
from server.registry.store import Store, StoreOptions
from server.registry.strategy import strategy_for
from server.scheme.builtin import EVENTS, NAMESPACES
from server.scheme.builtin_auth import AUTH_REVIEWS
from server.scheme.crd import load_crd_dir
from server.scheme.registry import Scheme
from server.storage.factory import create_storage

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def build_scheme(config: ServerConfig) -> Scheme:
    """Built-in types plus every CRD manifest in the configured directories."""
    scheme = Scheme([NAMESPACES, EVENTS, *AUTH_REVIEWS])
    for directory in config.definition_dirs:
        for definition in load_crd_dir(directory):
            scheme.add(definition)
    return scheme


def build_authentication(config: ServerConfig) -> UnionAuthenticator:
    """The authenticator chain from the config; loads (or mints) the kubectl token into its 0600 file.

    With kubectl disabled any stored kubectl token is removed. The token itself
    is kept nowhere but that file (`config.kubectl_token_path`).
    """
    token: str | None = None
    if config.kubectl_disabled:
        kubectl_token.discard(config.kubectl_token_path)
    else:
        token = kubectl_token.load_or_mint(config.kubectl_token_path, config.kubectl_ephemeral_token)
    ca_crt = CertPaths(config.cert_dir).ca_crt
    return build_authenticator(
        token_auth_file=config.token_auth_file,
        kubectl_token=token,
        client_ca_file=ca_crt if ca_crt.is_file() else None,
        allow_localhost=config.authn_allow_localhost,
    )


def create_app(config: ServerConfig) -> FastAPI:
    authenticator = build_authentication(config)  # first: a bad token file fails before storage opens
    scheme = build_scheme(config)
    storage = create_storage(config.backend, config.file_rootpath, event_window=config.event_window)
    stores: dict[tuple[str, str], Store] = {}

    async def get_namespace(name: str) -> dict[str, Any] | None:
        try:
            return await stores[("", "namespaces")].get("", name, "v1")
        except errors.NotFound:
            return None

    admission = AdmissionChain([NamespaceLifecycle(get_namespace)])
    options = StoreOptions(
        unrestricted_update=config.unrestricted_update,
        continue_key=secrets.token_bytes(32),  # continue tokens are valid for this process only
        bookmark_interval=config.bookmark_interval,
    )
    for definition in scheme.definitions:
        if definition.virtual:  # answered by a custom handler, nothing to store
            continue
        stores[(definition.group, definition.plural)] = Store(strategy_for(definition), storage, admission, options)

    ctx = ApiContext(
        scheme=scheme,
        stores=stores,
        request_timeout=config.request_timeout,
        max_body_bytes=config.max_body_bytes,
        server_address=config.server_address,
    )

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await ensure_initial_namespaces(stores[("", "namespaces")])
        try:
            yield
        finally:
            await storage.close()

    app = FastAPI(
        title="kapi",
        version="0.1.0",
        docs_url="/kapi/docs",
        redoc_url=None,
        openapi_url="/kapi/openapi.json",
        lifespan=lifespan,
    )
    app.state.api = ctx
    app.state.config = config
    handler = make_api_handler(ctx, authenticator, build_authorizer())
    app.add_route("/{path:path}", handler, methods=_METHODS, include_in_schema=False)
    return app
