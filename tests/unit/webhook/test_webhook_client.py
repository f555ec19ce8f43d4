"""The shared webhook caller against a real HTTPS server in a thread: trust, failures, reuse."""
from __future__ import annotations

import base64
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from certs import pki
from server.webhook import ClientConfig, WebhookCallError, post_json
from server.webhook.client import close_clients, with_timeout_query

Reply = tuple[int, bytes]
Handler = Callable[[str, Any], Reply]


class HTTPSServer:
    """A TLS webhook stand-in: `handler(path, json_body) -> (status, body)`; records peers and paths."""

    def __init__(self, tmp: Path, sans: list[str], handler: Handler) -> None:
        ca, ca_key = pki.make_ca("webhook-test-ca")
        cert, key = pki.issue_serving_cert(ca, ca_key, sans)
        (tmp / "tls.crt").write_bytes(pki.cert_pem(cert))
        (tmp / "tls.key").write_bytes(pki.key_pem(key))
        self.ca_bundle = base64.b64encode(pki.cert_pem(ca)).decode()
        self.peers: list[int] = []
        self.paths: list[str] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, so connection reuse is visible

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                outer.peers.append(self.client_address[1])
                outer.paths.append(self.path)
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, body = handler(self.path, json.loads(raw or b"null"))
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.socket = context.wrap_socket(self.httpd.socket, server_side=True)
        # Clients that hang up (timeouts, refused certificates) are expected: no tracebacks on stderr.
        self.httpd.handle_error = lambda *_args: None  # type: ignore[method-assign]
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/hook") -> str:
        return f"https://127.0.0.1:{self.port}{path}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def echo(_path: str, body: Any) -> Reply:
    return 200, json.dumps({"echo": body}).encode()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[HTTPSServer]:
    srv = HTTPSServer(tmp_path, ["127.0.0.1", "localhost"], echo)
    yield srv
    srv.close()


@pytest.fixture(autouse=True)
async def _close_clients() -> Any:
    yield
    await close_clients()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_posts_json_and_trusts_the_ca_bundle(server: HTTPSServer) -> None:
    answer = await post_json(ClientConfig(server.url(), server.ca_bundle), {"hello": "world"}, 10)
    assert answer == {"echo": {"hello": "world"}}
    assert server.paths == ["/hook?timeout=10s"]  # the deadline travels as kube sends it


async def test_connections_are_reused(server: HTTPSServer) -> None:
    config = ClientConfig(server.url(), server.ca_bundle)
    for _ in range(3):
        await post_json(config, {}, 5)
    assert len(set(server.peers)) == 1


async def test_without_ca_bundle_system_trust_refuses_a_private_ca(server: HTTPSServer) -> None:
    with pytest.raises(WebhookCallError) as exc:
        await post_json(ClientConfig(server.url()), {}, 5)
    assert str(exc.value) == (f'Post "{server.url()}?timeout=5s": tls: failed to verify certificate: '
                              "x509: certificate signed by unknown authority")


async def test_a_certificate_for_another_host_is_refused(tmp_path: Path) -> None:
    srv = HTTPSServer(tmp_path, ["webhook.example.com"], echo)
    try:
        with pytest.raises(WebhookCallError, match="certificate is not valid for 127.0.0.1"):
            await post_json(ClientConfig(srv.url(), srv.ca_bundle), {}, 5)
    finally:
        srv.close()


async def test_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(WebhookCallError) as exc:
        await post_json(ClientConfig(f"https://127.0.0.1:{port}/x"), {}, 2)
    assert str(exc.value) == (f'Post "https://127.0.0.1:{port}/x?timeout=2s": '
                              f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_timeout_is_context_deadline_exceeded(tmp_path: Path) -> None:
    def slow(path: str, body: Any) -> Reply:
        time.sleep(1.5)
        return echo(path, body)

    srv = HTTPSServer(tmp_path, ["127.0.0.1"], slow)
    try:
        started = time.monotonic()
        with pytest.raises(WebhookCallError, match=r'\?timeout=1s": context deadline exceeded$'):
            await post_json(ClientConfig(srv.url(), srv.ca_bundle), {}, 0.3)
        assert time.monotonic() - started < 1.2
    finally:
        srv.close()


@pytest.mark.parametrize(("status", "body", "message"), [
    (500, b"boom", 'an error on the server ("boom") has prevented the request from succeeding'),
    (404, b"nope", "the server could not find the requested resource"),
])
async def test_non_2xx_answers(tmp_path: Path, status: int, body: bytes, message: str) -> None:
    srv = HTTPSServer(tmp_path, ["127.0.0.1"], lambda _p, _b: (status, body))
    try:
        with pytest.raises(WebhookCallError) as exc:
            await post_json(ClientConfig(srv.url(), srv.ca_bundle), {}, 5)
        assert str(exc.value) == message
    finally:
        srv.close()


async def test_a_body_that_is_not_json(tmp_path: Path) -> None:
    srv = HTTPSServer(tmp_path, ["127.0.0.1"], lambda _p, _b: (200, b"<html>"))
    try:
        with pytest.raises(WebhookCallError, match="not JSON"):
            await post_json(ClientConfig(srv.url(), srv.ca_bundle), {}, 5)
    finally:
        srv.close()


async def test_a_ca_bundle_that_is_not_pem() -> None:
    with pytest.raises(WebhookCallError, match="unable to load root certificates"):
        await post_json(ClientConfig("https://127.0.0.1:1/", base64.b64encode(b"junk").decode()), {}, 1)


async def test_a_service_reference_becomes_its_cluster_dns_name() -> None:
    config = ClientConfig.from_api({"service": {"namespace": "web", "name": "hooks", "path": "/mutate"},
                                    "caBundle": "Zm9v"})
    assert config == ClientConfig("https://hooks.web.svc:443/mutate", "Zm9v")
    assert ClientConfig.from_api({"service": {"namespace": "n", "name": "s", "port": 8443}}).url == \
        "https://s.n.svc:8443"
    with pytest.raises(WebhookCallError, match=r'Post "https://hooks.web.svc:443/mutate\?timeout=1s": '):
        await post_json(config.__class__(config.url), {}, 1)  # no cluster network: it cannot connect


def test_timeout_query_rounds_up_to_whole_seconds() -> None:
    assert with_timeout_query("https://h/p", 10) == "https://h/p?timeout=10s"
    assert with_timeout_query("https://h/p", 0.2) == "https://h/p?timeout=1s"
    assert with_timeout_query("https://h/p", 2.5) == "https://h/p?timeout=3s"
