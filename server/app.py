"""`create_app(config)`: wire storage, scheme, registry, admission and HTTP into one ASGI app.

Everything is built here from the config; nothing lives in module globals, so
tests can create as many independent servers as they like.
"""
from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any, AsyncIterator

from fastapi import FastAPI

from server.admission.chain import AdmissionChain
from server.admission.namespace_lifecycle import NamespaceLifecycle
from server.api import errors
from server.config import ServerConfig
from server.controllers.bootstrap import ensure_initial_namespaces
from server.endpoints.context import ApiContext
from server.endpoints.router import make_api_handler
from server.registry.store import Store, StoreOptions
from server.registry.strategy import strategy_for
from server.scheme.builtin import NAMESPACES
from server.scheme.crd import load_crd_dir
from server.scheme.registry import Scheme
from server.storage.factory import create_storage

_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def build_scheme(config: ServerConfig) -> Scheme:
    """Built-in types plus every CRD manifest in the configured directories."""
    scheme = Scheme([NAMESPACES])
    for directory in config.definition_dirs:
        for definition in load_crd_dir(directory):
            scheme.add(definition)
    return scheme


def create_app(config: ServerConfig) -> FastAPI:
    scheme = build_scheme(config)
    storage = create_storage(config.backend, config.file_rootpath)
    stores: dict[tuple[str, str], Store] = {}

    async def get_namespace(name: str) -> dict[str, Any] | None:
        try:
            return await stores[("", "namespaces")].get("", name, "v1")
        except errors.NotFound:
            return None

    admission = AdmissionChain([NamespaceLifecycle(get_namespace)])
    options = StoreOptions(unrestricted_update=config.unrestricted_update)
    for definition in scheme.definitions:
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
    app.add_route("/{path:path}", make_api_handler(ctx), methods=_METHODS, include_in_schema=False)
    return app
