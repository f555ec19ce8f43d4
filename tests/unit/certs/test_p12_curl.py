"""The issue's promise, checked directly: curl + OpenSSL 3 presents client.p12 (with its password)
to a TLS server that trusts kapi's CA and requires a client certificate."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest

from kapi_certs.bundle import CertReport, ensure_certs

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl is not installed")


class _WhoAmI(BaseHTTPRequestHandler):
    """Answers with the CN of the client certificate the TLS layer verified."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        peer = self.request.getpeercert()  # type: ignore[attr-defined]
        cn = dict(rdn[0] for rdn in peer["subject"])["commonName"]
        body = cn.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def pki_and_server(tmp_path: Path) -> Iterator[tuple[CertReport, int]]:
    report = ensure_certs(tmp_path / "cert", client_user="alice", client_groups=["dev"],
                          p12_password="pw:with spaces")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(report.paths.server_crt, report.paths.server_key)
    ctx.load_verify_locations(report.paths.ca_crt)
    ctx.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), _WhoAmI)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield report, int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


def _curl(report: CertReport, port: int, password: str) -> subprocess.CompletedProcess[str]:
    assert CURL is not None
    return subprocess.run(
        [CURL, "-sS", "--fail", "--cert-type", "P12", "--cert", f"{report.paths.client_p12}:{password}",
         "--cacert", str(report.paths.ca_crt), f"https://localhost:{port}/"],
        capture_output=True, text=True, timeout=30)


def test_curl_authenticates_with_the_p12(pki_and_server: tuple[CertReport, int]) -> None:
    report, port = pki_and_server
    out = _curl(report, port, report.p12_password)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "alice"


def test_curl_refuses_a_wrong_password(pki_and_server: tuple[CertReport, int]) -> None:
    report, port = pki_and_server
    out = _curl(report, port, "wrong")
    assert out.returncode == 58, out.stderr  # CURLE_SSL_CERTPROBLEM: the p12 did not open
