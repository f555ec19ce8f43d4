"""Connect subresources (kube's `rest.Connecter`: pods/exec, services/proxy): admission, then code answers.

As kube's `ConnectResource` handler: the query parameters become the
subresource's options object (`FooGreetingOptions`), admission runs with the
operation CONNECT on it (mutating, then validating; webhooks whose rules name
CONNECT and `foos/greeting` are called), then the object must exist, and the
plugin's handler answers with whatever it likes: a Starlette response,
text, bytes, or a JSON object.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from kapi.api import errors
from kapi.api.requestinfo import RequestInfo
from kapi.api.user import UserInfo
from kapi.endpoints.filters import request_user
from kapi.registry.store import Store, WriteOptions
from kapi.scheme.definitions import ConnectDef

Object = dict[str, Any]


@dataclass(frozen=True)
class ConnectRequest:
    """What a connect handler is given: the object it is about, the admitted options, and the HTTP request."""

    namespace: str
    name: str
    subresource: str
    obj: Object  # read in the request's version
    options: Object  # the options object as admission left it (mutating plugins may change it)
    user: UserInfo | None
    request: Request  # method, headers and body, for handlers that need them


def options_from_query(request: Request, connector: ConnectDef, api_version: str) -> Object:
    """kube decodes connect options from the query: one value is a string, a repeated one a list."""
    options: Object = {"kind": connector.options_kind, "apiVersion": api_version}
    for key in dict.fromkeys(request.query_params.keys()):
        if key in ("kind", "apiVersion"):
            continue
        values = request.query_params.getlist(key)
        options[key] = values[0] if len(values) == 1 else values
    return options


def _response(result: Any, warnings: list[str]) -> Response:
    if isinstance(result, Response):
        response = result
    elif isinstance(result, (dict, list)):
        response = Response(orjson.dumps(result), media_type="application/json")
    elif isinstance(result, bytes):
        response = Response(result, media_type="application/octet-stream")
    else:
        response = Response("" if result is None else str(result), media_type="text/plain")
    for warning in warnings:
        response.headers.append("Warning", '299 - "' + warning.replace('"', '\\"') + '"')
    return response


async def handle_connect(request: Request, store: Store, info: RequestInfo, version: str, namespace: str,
                         connector: ConnectDef) -> Response:
    """Admit the connect request, check the object exists, and let the plugin's handler answer."""
    if request.method not in connector.methods or not info.name:
        raise errors.method_not_allowed()
    options = options_from_query(request, connector, store.definition.api_version(version))
    opts = WriteOptions(user=request_user(request))
    await store.admit_connect(namespace, info.name, version, connector, options, opts)
    obj = await store.get(namespace, info.name, version)
    result = await connector.handler(ConnectRequest(namespace, info.name, connector.name, obj, options,
                                                    opts.user, request))
    return _response(result, opts.warnings)
