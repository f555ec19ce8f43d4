"""The admin API of logical clusters and snapshots, served behind the root cluster's filters.

    GET    /kapi/clusters                 {"clusters": [{"name", "path", "snapshot"?}, ...]} (root first)
    POST   /kapi/clusters                 {"name": "a", "snapshot": "s"?}: a new cluster, empty or forked → 201
    GET    /kapi/clusters/<name>          DELETE /kapi/clusters/<name> (its data goes too)
    GET    /kapi/snapshots                {"snapshots": [{"name", "cluster", "revision", "objects", "created"}]}
    POST   /kapi/snapshots                {"name": "s", "cluster": "a"}: save cluster a's state → 201
    GET    /kapi/snapshots/<name>         DELETE /kapi/snapshots/<name>

A cluster is then served under `/clusters/<name>/` (its faults under `/clusters/<name>/kapi/faults`). As
non-resource URLs these are authorized by verb (get, create, delete) like any other: administrators only.
"""
from __future__ import annotations

import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.clusters.clusterset import ClusterSet
from kapi.endpoints.filters import status_response, unexpected_error_response

CLUSTERS_PATH = "/kapi/clusters"
SNAPSHOTS_PATH = "/kapi/snapshots"


class AdminApi:
    """A `Mount` for the two admin collections."""

    def __init__(self, clusters: ClusterSet) -> None:
        self._clusters = clusters

    def handles(self, path: str) -> bool:
        return any(path == p or path.startswith(p + "/") for p in (CLUSTERS_PATH, SNAPSHOTS_PATH))

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self._answer(request)
        except errors.StatusError as exc:
            response = status_response(exc)
        except Exception:  # noqa: BLE001 - a bug is a bare 500, as everywhere
            response = unexpected_error_response(request)
        await response(scope, receive, send)

    async def _answer(self, request: Request) -> Response:
        path, method = request.scope["path"], request.method
        collection = CLUSTERS_PATH if path.startswith(CLUSTERS_PATH) else SNAPSHOTS_PATH
        name = path[len(collection):].strip("/")
        if "/" in name:
            raise errors.no_such_resource()
        if collection == CLUSTERS_PATH:
            return await self._cluster(method, name, request)
        return await self._snapshot(method, name, request)

    async def _cluster(self, method: str, name: str, request: Request) -> Response:
        clusters = self._clusters
        if not name and method == "GET":
            return _json({"clusters": clusters.describe_all()})
        if not name and method == "POST":
            body = await _body(request, {"name", "snapshot"})
            created = await clusters.create(body.get("name") or f"c-{uuid.uuid4().hex[:10]}",
                                            _text(body, "snapshot"))
            return _json(clusters.describe(created), 201)
        if name and method == "GET":
            cluster = clusters.get(name)
            if cluster is None:
                raise errors.NotFound(f'clusters "{name}" not found',
                                      details=errors.QualifiedKind(name=name, kind="clusters"))
            return _json(clusters.describe(cluster))
        if name and method == "DELETE":
            return _json(clusters.describe(await clusters.delete(name)))
        raise errors.method_not_allowed()

    async def _snapshot(self, method: str, name: str, request: Request) -> Response:
        clusters = self._clusters
        if not name and method == "GET":
            return _json({"snapshots": [s.describe() for s in clusters.snapshots()]})
        if not name and method == "POST":
            body = await _body(request, {"name", "cluster"})
            saved = await clusters.save(body.get("name") or f"s-{uuid.uuid4().hex[:10]}",
                                        _text(body, "cluster") or "root")
            return _json(saved.describe(), 201)
        if name and method == "GET":
            return _json(clusters.snapshot(name).describe())
        if name and method == "DELETE":
            return _json(clusters.forget(name).describe())
        raise errors.method_not_allowed()


def _json(answer: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(answer), status_code=status, media_type="application/json")


async def _body(request: Request, fields: set[str]) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError:
        raise errors.BadRequest("the body must be a JSON object") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("the body must be a JSON object")
    unknown = sorted(set(body) - fields)
    if unknown:
        raise errors.BadRequest(f"unknown field(s): {', '.join(unknown)}; known: {', '.join(sorted(fields))}")
    return body


def _text(body: dict[str, Any], name: str) -> str:
    value = body.get(name) or ""
    if not isinstance(value, str):
        raise errors.BadRequest(f"{name} must be a string")
    return value
