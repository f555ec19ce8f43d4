"""Proxy a request for an aggregated group-version to the server its APIService names.

As kube's aggregator: the request has passed this server's authentication and
authorization; the backend gets it with the caller's identity in `X-Remote-User`,
`X-Remote-Group` and `X-Remote-Extra-<key>` headers over a connection that
presents the front-proxy client certificate, and never the caller's own
credentials. Bodies stream both ways, so watches and long requests pass
through. An unavailable APIService is 503 "service unavailable"; a backend that
cannot be reached is kube's 503 "Error trying to reach service".
"""
from __future__ import annotations

from typing import AsyncIterator
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from kapi.api import errors
from kapi.api.user import UserInfo
from kapi.registry.aggregated import AggregatedApis, Backend

AGGREGATOR_USER = UserInfo("system:kube-aggregator", groups=("system:masters",))
# Never forwarded: the caller's credentials, identity assertions, and hop-by-hop headers.
_DROPPED = frozenset({"authorization", "host", "connection", "keep-alive", "proxy-connection", "te", "trailer",
                      "transfer-encoding", "upgrade", "content-length"})
_DROPPED_PREFIXES = ("impersonate-", "x-remote-")
_RESPONSE_DROPPED = frozenset({"connection", "keep-alive", "transfer-encoding", "content-length", "date", "server"})


def identity_headers(user: UserInfo) -> list[tuple[str, str]]:
    """kube's front-proxy headers for a user (extra keys percent-escaped, as kube escapes them)."""
    out = [("X-Remote-User", user.name)]
    if user.uid:
        out.append(("X-Remote-Uid", user.uid))
    out += [("X-Remote-Group", g) for g in user.groups]
    for key, values in user.extra.items():
        out += [(f"X-Remote-Extra-{quote(key, safe='')}", v) for v in values]
    return out


def forwarded_headers(request: Request, user: UserInfo) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in request.headers.items()
            if k not in _DROPPED and not k.startswith(_DROPPED_PREFIXES)]
    return kept + identity_headers(user)


async def proxy(request: Request, backend: Backend, table: AggregatedApis, user: UserInfo) -> Response:
    """Send `request` on to `backend` and stream its answer back."""
    import httpx

    if not backend.available or not backend.url:
        raise errors.ServiceUnavailable("service unavailable")
    path = request.scope.get("raw_path") or request.scope["path"].encode()
    query = request.scope.get("query_string") or b""
    url = backend.url + path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")
    client = table.client(backend)
    body = await request.body()
    outgoing = client.build_request(request.method, url, headers=forwarded_headers(request, user), content=body,
                                    extensions={"sni_hostname": backend.server_name} if backend.server_name else {})
    try:
        answer = await client.send(outgoing, stream=True)
    except httpx.HTTPError as exc:
        raise errors.ServiceUnavailable(f"Error trying to reach service: '{exc}'") from None
    headers = {k: v for k, v in answer.headers.items() if k.lower() not in _RESPONSE_DROPPED}

    async def relay() -> AsyncIterator[bytes]:
        try:
            async for chunk in answer.aiter_raw():
                yield chunk
        except httpx.HTTPError:
            return  # the backend went away mid-stream: end the stream, as a closed watch ends
        finally:
            await answer.aclose()

    return StreamingResponse(relay(), status_code=answer.status_code, headers=headers)
