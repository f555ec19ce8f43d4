"""One async HTTPS call to a webhook: POST a JSON review, get a JSON review back.

kube-apiserver calls admission and conversion webhooks the same way: a URL
(or an in-cluster service), a CA bundle to trust, a deadline passed along as
`?timeout=Ns`. kapi has no cluster network, so a service reference becomes
`https://<name>.<namespace>.svc:<port><path>` and simply fails to connect
(the webhook's failurePolicy then decides), as it would in a cluster whose
service has no endpoints.

Every failure (connect, TLS, timeout, non-2xx, a body that is not JSON) is
one `WebhookCallError`, worded like the Go client's error so messages read
like kube-apiserver's (`Post "https://...?timeout=10s": dial tcp ...:
connect: connection refused`). Connections are reused: one `httpx.AsyncClient`
per event loop and CA bundle.
"""
from __future__ import annotations

import asyncio
import base64
import binascii
import math
import socket
import ssl
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import orjson

if TYPE_CHECKING:  # httpx costs ~60 ms to import: only servers that call a webhook pay it
    import httpx

_MAX_BODY_SHOWN = 256
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, httpx.AsyncClient]] = (
    weakref.WeakKeyDictionary())


class WebhookCallError(Exception):
    """The webhook could not be asked, or its answer could not be read; `str()` says why, Go-style."""


@dataclass(frozen=True)
class ClientConfig:
    """Where a webhook is and whom to trust: kube's `WebhookClientConfig`, resolved to a URL.

    `ca_bundle` is the API's base64 text of PEM certificates; empty means the system's trust store.
    """

    url: str
    ca_bundle: str = ""

    @classmethod
    def from_api(cls, raw: Mapping[str, Any]) -> ClientConfig:
        """From a `clientConfig` object (already validated: exactly one of url and service)."""
        ca = raw.get("caBundle")
        ca_bundle = ca if isinstance(ca, str) else ""
        url = raw.get("url")
        if isinstance(url, str) and url:
            return cls(url, ca_bundle)
        service = raw.get("service")
        service = service if isinstance(service, Mapping) else {}
        port = service.get("port")
        port = port if isinstance(port, int) and not isinstance(port, bool) else 443
        path = service.get("path")
        path = path if isinstance(path, str) else ""
        return cls(f"https://{service.get('name', '')}.{service.get('namespace', '')}.svc:{port}{path}", ca_bundle)


def _ssl_context(ca_bundle: str) -> ssl.SSLContext:
    """The trust for one CA bundle: exactly its certificates, or the system's when there is none."""
    if not ca_bundle:
        return ssl.create_default_context()
    try:
        pem = base64.b64decode(ca_bundle, validate=True).decode("ascii")
        return ssl.create_default_context(cadata=pem)
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError) as exc:
        raise WebhookCallError(
            f"could not get REST client: unable to load root certificates: unable to parse bytes as PEM block "
            f"({exc})") from None


def _client(ca_bundle: str) -> httpx.AsyncClient:
    """The cached client for this event loop and CA bundle (connections stay open between calls)."""
    import httpx

    loop = asyncio.get_running_loop()
    per_loop = _clients.setdefault(loop, {})
    client = per_loop.get(ca_bundle)
    if client is None:
        # trust_env=False: a developer's HTTPS_PROXY must not swallow calls to a local webhook.
        client = httpx.AsyncClient(verify=_ssl_context(ca_bundle), trust_env=False,
                                   limits=httpx.Limits(max_keepalive_connections=8, keepalive_expiry=30.0))
        per_loop[ca_bundle] = client
    return client


async def close_clients() -> None:
    """Close the cached clients of the running loop (tests and shutdown; later calls open new ones)."""
    loop = asyncio.get_running_loop()
    for client in list(_clients.pop(loop, {}).values()):
        await client.aclose()


def with_timeout_query(url: str, timeout: float) -> str:
    """`url?timeout=10s`: kube tells the webhook its deadline, in whole seconds rounded up."""
    seconds = max(1, math.ceil(timeout))
    return f"{url}{'&' if '?' in url else '?'}timeout={seconds}s"


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _transport_reason(exc: httpx.HTTPError, host: str, port: int) -> str:
    """What Go's net/http would have said for the same failure."""
    import httpx

    if isinstance(exc, httpx.TimeoutException):
        return "context deadline exceeded"
    for cause in _chain(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            why = cause.verify_message or str(cause)
            if "mismatch" in why:
                return f"tls: failed to verify certificate: x509: certificate is not valid for {host}"
            if "expired" in why or "not yet valid" in why:
                return "tls: failed to verify certificate: x509: certificate has expired or is not yet valid"
            return "tls: failed to verify certificate: x509: certificate signed by unknown authority"
        if isinstance(cause, ssl.SSLError):
            return f"remote error: tls: {cause.reason or cause}".lower()
        if isinstance(cause, socket.gaierror):
            return f"dial tcp: lookup {host}: no such host"
        if isinstance(cause, ConnectionRefusedError):
            return f"dial tcp {host}:{port}: connect: connection refused"
        if isinstance(cause, (ConnectionResetError, BrokenPipeError)):
            return "read: connection reset by peer"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "EOF"
    return str(exc) or type(exc).__name__


def _status_reason(response: httpx.Response) -> str:
    """client-go's words for a non-2xx answer that is not a Status."""
    if response.status_code == 404:
        return "the server could not find the requested resource"
    body = response.text.strip()
    if len(body) > _MAX_BODY_SHOWN:
        body = body[:_MAX_BODY_SHOWN] + "..."
    return f"an error on the server ({orjson.dumps(body).decode()}) has prevented the request from succeeding"


async def post_json(config: ClientConfig, body: Mapping[str, Any], timeout: float) -> Any:
    """POST `body` to the webhook within `timeout` seconds; its decoded JSON answer, or WebhookCallError."""
    import httpx

    url = with_timeout_query(config.url, timeout)
    try:
        parsed = httpx.URL(url)
        if parsed.scheme != "https" or not parsed.host:
            raise WebhookCallError(f'Post "{url}": unsupported protocol scheme "{parsed.scheme}"')
    except httpx.InvalidURL as exc:
        raise WebhookCallError(f'Post "{url}": {exc}') from None
    client = _client(config.ca_bundle)
    content = orjson.dumps(body)
    try:
        async with asyncio.timeout(timeout):
            response = await client.post(parsed, content=content, timeout=timeout, headers={
                "Content-Type": "application/json", "Accept": "application/json, */*"})
    except TimeoutError:
        raise WebhookCallError(f'Post "{url}": context deadline exceeded') from None
    except httpx.HTTPError as exc:
        raise WebhookCallError(f'Post "{url}": {_transport_reason(exc, parsed.host, parsed.port or 443)}') from None
    if not 200 <= response.status_code < 300:
        raise WebhookCallError(_status_reason(response))
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError as exc:
        raise WebhookCallError(f"the response from the webhook is not JSON: {exc}") from None
