"""Run the app under uvicorn: HTTP, HTTPS with kapi's certificates, or both in one process.

uvicorn does not hand the TLS peer certificate to the application, so
`PeerCertHttpToolsProtocol` reads it once per connection (from the SSL
object) and puts it in every request's ASGI scope as
`scope["extensions"]["tls"]["client_cert_chain"]`: a list of DER-encoded
certificates, leaf first (only the leaf: the chain is verified by the TLS
handshake against kapi's CA). The cost is one `getpeercert` per connection
and one small dict per request.
"""
from __future__ import annotations

import asyncio
import gc
import contextlib
import signal
import ssl
from typing import Any, Iterator

import uvicorn
import uvloop
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kapi.config import ServerConfig

TLS_SCOPE_KEY = "tls"


class PeerCertHttpToolsProtocol(HttpToolsProtocol):
    """httptools protocol that exposes the verified client certificate to the app."""

    _peer_chain: list[bytes] = []

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        self._peer_chain = [der] if der else []

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._peer_chain:
            self.scope["extensions"] = {TLS_SCOPE_KEY: {"client_cert_chain": self._peer_chain}}  # type: ignore[typeddict-unknown-key]


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to `serve`, so several can share a process."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _configs(app: Any, config: ServerConfig, log_level: str) -> list[uvicorn.Config]:
    # No uvicorn logging config and no access log: kapi's handler (server.logsetup) writes uvicorn's lines,
    # and requests are logged as kube's httplog does, only at -v=2/3 (server.endpoints.httplog).
    common: dict[str, Any] = dict(host=config.bind_address, log_level=log_level, loop="uvloop", proxy_headers=False,
                                  timeout_graceful_shutdown=5, log_config=None, access_log=False)
    out = []
    if config.insecure_port:
        out.append(uvicorn.Config(app, port=config.insecure_port, http="httptools", **common))
    if config.secure_port:
        cert, key = config.serving_cert_pair
        secure = uvicorn.Config(
            app, port=config.secure_port, http=PeerCertHttpToolsProtocol,
            ssl_certfile=str(cert), ssl_keyfile=str(key),
            ssl_ca_certs=str(config.cert_paths.ca_crt), ssl_cert_reqs=ssl.CERT_OPTIONAL, **common,
        )
        out.append(secure)
    # The app's lifespan (bootstrap, closing storage) must run once, not once per port.
    for extra in out[1:]:
        extra.lifespan = "off"
    extra_cas = getattr(app.state, "trusted_client_ca_pem", "")
    if config.secure_port and extra_cas:  # a front proxy's and a main server's client CAs, beside kapi's own
        out[-1].load()
        out[-1].ssl.load_verify_locations(cadata=extra_cas)
    return out


async def serve(app: Any, config: ServerConfig, log_level: str = "info") -> None:
    """Serve on every configured port until SIGINT/SIGTERM, then shut all of them down gracefully."""
    servers = [_Server(c) for c in _configs(app, config, log_level)]
    if not servers:
        raise ValueError("nothing to serve: both --secure-port and --insecure-port are 0")
    loop = asyncio.get_running_loop()

    def stop() -> None:
        for s in servers:
            s.should_exit = True
        app.state.clusters.end_watches()  # or graceful shutdown waits out its timeout for them

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop)
    first, rest = servers[0], servers[1:]
    task = asyncio.create_task(first.serve())
    while not first.started and not task.done():
        await asyncio.sleep(0.01)  # let the lifespan finish before the other ports open
    if task.done():
        await task
        return
    await asyncio.gather(task, *(s.serve() for s in rest))
    if any(not s.started for s in servers):
        raise OSError("a listener could not start (is the port in use?)")


def run(app: Any, config: ServerConfig, log_level: str = "info") -> None:
    """Blocking entry point for the CLI."""
    # Requests allocate many short-lived dicts; with CPython's default thresholds
    # (700, 10, 10) a 10k-object list runs dozens of collections that walk the heap.
    gc.set_threshold(50_000, 50, 100)
    uvloop.run(serve(app, config, log_level))
