"""Fixtures for the whole test tree (unit and e2e).

`https_json_server` starts `HttpsJsonServer`s: real HTTPS JSON endpoints in a thread, the stand-ins for admission
and conversion webhooks and for the webhook client's peer. Test modules cannot import each other or this file
(`--import-mode=importlib`, no packages), so they get the class through the fixture and wrap their own review
envelopes around it.
"""
from __future__ import annotations

import base64
import json
import ssl
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import pytest

from kapi_certs import pki

Reply = tuple[int, Any]
"""A route's answer: (HTTP status, payload); a payload of bytes is sent as it is, anything else as JSON."""
Route = Callable[[Any], Reply]
"""`route(body)`: body is the request's JSON, decoded (None when the request has no body)."""


@dataclass(frozen=True)
class Received:
    """One request as the server got it."""

    target: str  # the path with its query, as sent: "/hook?timeout=10s"
    body: Any  # decoded JSON, None for an empty body
    peer_port: int  # the client's port: one per connection, so reuse shows

    @property
    def path(self) -> str:
        """The target without its query: what routes are keyed by."""
        return self.target.partition("?")[0]


class HttpsJsonServer:
    """An HTTPS server on 127.0.0.1 (a free port) answering POSTs with JSON, in a daemon thread.

    - Trust: a fresh CA signs a serving certificate for `hosts` (give other names to test a certificate
      for the wrong host); `ca_bundle` is that CA in base64 PEM, as a webhook `clientConfig.caBundle`.
    - `routes[path](body) -> (status, payload)` answers a POST to path (the query is ignored); a path with no
      route gets 404, a route that raises gets 500 with the exception in `message`. Routes run in the server's
      threads, so one may sleep to play a slow webhook. Replies are `Content-Type: application/json` even when
      the payload is bytes that are not JSON.
    - `requests`: every request received (`Received`), in order, recorded before its route runs.
    - HTTP/1.1 keep-alive. Clients that hang up (timeouts, refused certificates) are expected: no tracebacks.
    """

    def __init__(self, hosts: Sequence[str] = ("127.0.0.1",), routes: dict[str, Route] | None = None) -> None:
        ca, ca_key = pki.make_ca("https-json-server-test-ca")
        cert, key = pki.issue_serving_cert(ca, ca_key, list(hosts))
        self.ca_bundle = base64.b64encode(pki.cert_pem(ca)).decode()
        self.routes: dict[str, Route] = dict(routes or {})
        self.requests: list[Received] = []
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        with tempfile.TemporaryDirectory() as tmp:  # ssl reads a key pair from files only
            (Path(tmp) / "tls.crt").write_bytes(pki.cert_pem(cert))
            (Path(tmp) / "tls.key").write_bytes(pki.key_pem(key))
            context.load_cert_chain(Path(tmp) / "tls.crt", Path(tmp) / "tls.key")
        self.httpd = _Httpd(self)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        self.port: int = self.httpd.server_address[1]
        self._closed = False
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def client_config(self, path: str = "/") -> dict[str, Any]:
        """A webhook `clientConfig` that reaches `path` and trusts this server."""
        return {"url": self.url(path), "caBundle": self.ca_bundle}

    def close(self) -> None:
        """Stop serving and free the port (idempotent); routes still running finish on their own."""
        if not self._closed:
            self._closed = True
            self.httpd.shutdown()
            self.httpd.server_close()

    def _answer(self, received: Received) -> tuple[int, bytes]:
        self.requests.append(received)
        route = self.routes.get(received.path)
        try:
            status, payload = route(received.body) if route else (404, {"message": f"no route for {received.path}"})
        except Exception as exc:  # noqa: BLE001 - a failing route is answered, not lost in a server thread
            status, payload = 500, {"message": f"route {received.path} raised {exc!r}"}
        return status, payload if isinstance(payload, bytes) else json.dumps(payload).encode()


class _Httpd(ThreadingHTTPServer):
    def __init__(self, owner: HttpsJsonServer) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hanging up is part of the tests: no tracebacks on stderr


class _JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible
    server: _Httpd

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        received = Received(self.path, json.loads(raw) if raw else None, self.client_address[1])
        status, body = self.server.owner._answer(received)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def https_json_server() -> Iterator[Callable[..., HttpsJsonServer]]:
    """`start(hosts=("127.0.0.1",), routes=None)`: a running `HttpsJsonServer`, closed after the test."""
    servers: list[HttpsJsonServer] = []

    def start(hosts: Sequence[str] = ("127.0.0.1",), routes: dict[str, Route] | None = None) -> HttpsJsonServer:
        servers.append(HttpsJsonServer(hosts, routes))
        return servers[-1]

    yield start
    for server in servers:
        server.close()
