"""The shared webhook caller against a real HTTPS server in a thread: trust, failures, reuse."""
from __future__ import annotations

import base64
import socket
import time
from typing import Any, Callable

import pytest

from kapi.webhook import ClientConfig, WebhookCallError, post_json
from kapi.webhook.client import close_clients, with_timeout_query

Server = Any  # tests/conftest.py's HttpsJsonServer (conftest modules cannot be imported)
Start = Callable[..., Server]
HOOK = "/hook"


def echo(body: Any) -> tuple[int, Any]:
    return 200, {"echo": body}


@pytest.fixture
def server(https_json_server: Start) -> Server:
    return https_json_server(hosts=["127.0.0.1", "localhost"], routes={HOOK: echo})


@pytest.fixture(autouse=True)
async def _close_clients() -> Any:
    yield
    await close_clients()


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_posts_json_and_trusts_the_ca_bundle(server: Server) -> None:
    answer = await post_json(ClientConfig(server.url(HOOK), server.ca_bundle), {"hello": "world"}, 10)
    assert answer == {"echo": {"hello": "world"}}
    assert [r.target for r in server.requests] == ["/hook?timeout=10s"]  # the deadline travels as kube sends it


async def test_connections_are_reused(server: Server) -> None:
    config = ClientConfig(server.url(HOOK), server.ca_bundle)
    for _ in range(3):
        await post_json(config, {}, 5)
    assert len({r.peer_port for r in server.requests}) == 1


async def test_without_ca_bundle_system_trust_refuses_a_private_ca(server: Server) -> None:
    with pytest.raises(WebhookCallError) as exc:
        await post_json(ClientConfig(server.url(HOOK)), {}, 5)
    assert str(exc.value) == (f'Post "{server.url(HOOK)}?timeout=5s": tls: failed to verify certificate: '
                              "x509: certificate signed by unknown authority")


async def test_a_certificate_for_another_host_is_refused(https_json_server: Start) -> None:
    srv = https_json_server(hosts=["webhook.example.com"], routes={HOOK: echo})
    with pytest.raises(WebhookCallError, match="certificate is not valid for 127.0.0.1"):
        await post_json(ClientConfig(srv.url(HOOK), srv.ca_bundle), {}, 5)


async def test_connection_refused() -> None:
    port = closed_port()
    with pytest.raises(WebhookCallError) as exc:
        await post_json(ClientConfig(f"https://127.0.0.1:{port}/x"), {}, 2)
    assert str(exc.value) == (f'Post "https://127.0.0.1:{port}/x?timeout=2s": '
                              f"dial tcp 127.0.0.1:{port}: connect: connection refused")


async def test_timeout_is_context_deadline_exceeded(https_json_server: Start) -> None:
    def slow(body: Any) -> tuple[int, Any]:
        time.sleep(1.5)
        return echo(body)

    srv = https_json_server(routes={HOOK: slow})
    started = time.monotonic()
    with pytest.raises(WebhookCallError, match=r'\?timeout=1s": context deadline exceeded$'):
        await post_json(ClientConfig(srv.url(HOOK), srv.ca_bundle), {}, 0.3)
    assert time.monotonic() - started < 1.2


@pytest.mark.parametrize(("status", "body", "message"), [
    (500, b"boom", 'an error on the server ("boom") has prevented the request from succeeding'),
    (404, b"nope", "the server could not find the requested resource"),
])
async def test_non_2xx_answers(https_json_server: Start, status: int, body: bytes, message: str) -> None:
    srv = https_json_server(routes={HOOK: lambda _b: (status, body)})
    with pytest.raises(WebhookCallError) as exc:
        await post_json(ClientConfig(srv.url(HOOK), srv.ca_bundle), {}, 5)
    assert str(exc.value) == message


async def test_a_body_that_is_not_json(https_json_server: Start) -> None:
    srv = https_json_server(routes={HOOK: lambda _b: (200, b"<html>")})
    with pytest.raises(WebhookCallError, match="not JSON"):
        await post_json(ClientConfig(srv.url(HOOK), srv.ca_bundle), {}, 5)


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
