"""Plugin routers ("apiexts"): FastAPI routers under one prefix, behind kapi's own filters.

Requests under the prefix pass authentication and authorization like any
non-resource path, then reach a FastAPI app holding every plugin's router,
with its own docs page at `<prefix>/docs`. FastAPI takes ~180 ms to import,
so routers are made by factories and the app is built on the first request.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Sequence

from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.user import UserInfo
from kapi.endpoints.filters import USER_KEY, status_response, unexpected_error_response
from kapi.registry.store import Store, WriteOptions

Object = dict[str, Any]
# First path segments the server itself answers: plugin routes may not hide them.
RESERVED_ROOTS = frozenset({"api", "apis", "openapi", "healthz", "livez", "readyz", "version", "kapi", "metrics",
                            "logs", ".well-known"})


def prefix_problem(prefix: str) -> str:
    """Why plugin routes cannot live under `prefix` ("" when they can)."""
    if not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", prefix):
        return f"{prefix!r} is not a path like /wukong (letters, digits and ._~- between slashes)"
    root = prefix.split("/")[1]
    if root in RESERVED_ROOTS:
        return f"{prefix!r} would hide the server's own /{root} paths"
    return ""


class Objects:
    """CRUD on the server's resources for a router's handlers, as the calling user.

    Writes go through the same store, admission and validation as kubectl's;
    objects are read and written in the version the caller names.
    """

    def __init__(self, stores: Mapping[tuple[str, str], Store], user: UserInfo | None = None) -> None:
        self._stores, self._user = stores, user

    def as_user(self, user: UserInfo | None) -> Objects:
        return Objects(self._stores, user)

    def _store(self, group: str, resource: str) -> Store:
        store = self._stores.get((group, resource))
        if store is None:
            raise errors.NotFound(f"the server could not find the requested resource ({resource}.{group})")
        return store

    async def create(self, group: str, version: str, resource: str, obj: Object, namespace: str = "") -> Object:
        return await self._store(group, resource).create(namespace, obj, version, WriteOptions(user=self._user))

    async def get(self, group: str, version: str, resource: str, name: str, namespace: str = "") -> Object:
        return await self._store(group, resource).get(namespace, name, version)

    async def list(self, group: str, version: str, resource: str, namespace: str = "") -> list[Object]:
        return list((await self._store(group, resource).list(namespace, version))["items"])

    async def delete(self, group: str, version: str, resource: str, name: str, namespace: str = "") -> Object:
        return await self._store(group, resource).delete(namespace, name, version, None,
                                                         WriteOptions(user=self._user))


def objects(request: Request) -> Objects:
    """The objects a router handler may use, acting as the request's user (a FastAPI dependency)."""
    found: Objects = request.app.state.objects
    return found.as_user(request.scope.get(USER_KEY))


class ApiextsApp:
    """The ASGI app under the prefix; built (and FastAPI imported) when first called."""

    def __init__(self, prefix: str, factories: Sequence[Callable[[], Any]], stores: Mapping[tuple[str, str], Store]):
        self.prefix = prefix.rstrip("/")
        self._factories, self._stores = tuple(factories), stores
        self._app: Any = None

    def __bool__(self) -> bool:
        return bool(self._factories)

    def handles(self, path: str) -> bool:
        return bool(self._factories) and (path == self.prefix or path.startswith(self.prefix + "/"))

    def _build(self) -> Any:
        from fastapi import FastAPI

        app = FastAPI(title="kapi apiexts", docs_url=f"{self.prefix}/docs", redoc_url=None,
                      openapi_url=f"{self.prefix}/openapi.json")
        app.state.objects = Objects(self._stores)
        for make_router in self._factories:
            app.include_router(make_router(), prefix=self.prefix)

        @app.exception_handler(errors.StatusError)
        async def status_error(_request: Request, exc: errors.StatusError) -> Response:
            return status_response(exc)

        @app.exception_handler(Exception)
        async def unexpected(request: Request, _exc: Exception) -> Response:  # a router's bug: still a Status
            return unexpected_error_response(request)

        return app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            self._app = self._build()
        await self._app(scope, receive, send)
