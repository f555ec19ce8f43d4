"""`kapi start`'s banner and `kapi status`/`kapi list` fit an 80-column terminal without cutting a value:
paths may fold across lines, numbers (the request timeout, ports, pids, counts) stay whole on one line."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console, RenderableType

from kapi_cli.start import _banner
from kapi_cli.status import details
from kapi_cli.view import table
from kapi.config import ServerConfig

LONG_ROOT = Path("/home/someone/projects/a/rather/long/path/to/the/kapi/data/directory/of/this/instance")
LONG_NAME = "an-instance-name-as-long-as-allowed-for-kapi-which-is-63-chars-x"


def render(renderable: RenderableType, width: int = 80) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    console.print(renderable, highlight=False)
    lines = console.export_text().splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    return lines


def joined(lines: list[str]) -> str:
    """The text with borders and all spacing removed: a value folded across lines reads whole again."""
    return "".join("".join(lines).replace("│", "").split())


def whole(lines: list[str], *values: str) -> None:
    """Each value appears unbroken on some line, as a word of its own."""
    words = {word.strip("│(),") for line in lines for word in line.split()}
    missing = [v for v in values if v not in words]
    assert not missing, (missing, "\n".join(lines))


@pytest.mark.parametrize("config", [
    ServerConfig(name=LONG_NAME, secure_port=18443, insecure_port=16080, file_rootpath=LONG_ROOT,
                 request_timeout=3600),
    ServerConfig(name="e", backend="etcd", etcd_servers=("https://10.0.0.1:2379", "https://10.0.0.2:2379",
                                                         "https://10.0.0.3:2379"),
                 etcd_prefix="/a-long-registry-prefix/for/this/server", secure_port=18443, insecure_port=0,
                 request_timeout=86400.5, kubectl_disabled=True),
    ServerConfig(name="h", secure_port=0, insecure_port=16080, authn_allow_localhost=True, request_timeout=60),
    ServerConfig(name="p", secure_port=0, insecure_port=16080, request_timeout=1.5),
], ids=["file-https-long", "etcd", "http-localhost", "http-no-credentials"])
def test_banner_fits_80_columns(config: ServerConfig) -> None:
    kubeconfig = config.kubeconfig_path if config.secure_port and not config.kubectl_disabled else None
    lines = render(_banner(config, 123456, kubeconfig))
    whole(lines, f"{config.request_timeout:g}s", "123456")
    text = joined(lines)
    for url_port in (config.secure_port, config.insecure_port):
        if url_port:
            whole(lines, *[u for u in (f"https://127.0.0.1:{url_port}", f"http://127.0.0.1:{url_port}")
                           if u in text])
            assert f":{url_port}" in text
    if config.backend == "file":
        assert str(config.file_rootpath).replace(" ", "") in text
    for server in config.etcd_servers:
        whole(lines, server)
    if kubeconfig is not None:
        assert f"--kubeconfig{kubeconfig}getfoos-A" in text  # the command reads whole, the path folded
        assert LONG_NAME in text


def test_banner_values_are_not_markup() -> None:
    """A value with brackets (an IPv6 address) is printed, not taken for a style."""
    lines = render(_banner(ServerConfig(name="v6", bind_address="::1", secure_port=0, insecure_port=16080,
                                        authn_allow_localhost=True), 5, None))
    assert "http://[::1]:16080" in joined(lines)


def record(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": LONG_NAME, "status": "running", "ready": False, "pid": 4194304,
        "urls": ["https://127.0.0.1:18443", "http://127.0.0.1:16080"], "backend": "memory",
        "file_rootpath": str(LONG_ROOT), "kubeconfig": str(LONG_ROOT / "kubeconfig"),
        "log_file": "/home/someone/.kapi/logs/" + LONG_NAME + ".log", "started_at": "2024-05-23T10:00:00Z",
        "uptime_seconds": 200000.0, "kapi_version": "0.1.0",
        "objects": {"namespaces": 4, "configmaps": 123456, "pizzas.restaurant.wukong.com": 7,
                    "customresourcedefinitions.apiextensions.k8s.io": 12},
        "storage": {"backend": "etcd", "ok": False, "revision": 987654321, "prefix": "/registry",
                    "error": "etcd did not answer",
                    "endpoints": [{"endpoint": "https://10.0.0.1:2379", "ok": True, "isLeader": True,
                                   "version": "3.5.17", "revision": 987654321, "dbSize": 123456789},
                                  {"endpoint": "http://127.0.0.1:23790", "ok": False,
                                   "error": "connection refused while dialing the member's client address"}]},
    }
    return {**base, **overrides}


def test_list_table_fits_80_columns() -> None:
    rows = [record(), record(name="b", status="stale", pid=99, uptime_seconds=None, objects=None, ready=False),
            record(name="c", status="running", ready=True, urls=["https://[::1]:8443"], objects={})]
    lines = render(table(rows))
    whole(lines, "4194304", "https://127.0.0.1:18443", "http://127.0.0.1:16080", "https://[::1]:8443", "memory",
          "2d7h", "123479", "99", "0", "ready", "not", "stale", "cleaned")
    assert LONG_NAME.replace("-", "")[:8] in joined(lines).replace("-", "")


def test_status_details_fit_80_columns() -> None:
    lines = render(details(record()))
    text = joined(lines)
    for path in (LONG_ROOT, LONG_ROOT / "kubeconfig"):
        assert str(path) in text
    whole(lines, "987654321", "123456", "3.5.17", "117.7", "2024-05-23T10:00:00Z")
    assert any("storage: etcd unavailable" in line for line in lines)
    assert any("http://127.0.0.1:23790: unreachable" in line for line in lines)
    assert "customresourcedefinitions.apiextensions.k8s.io12" in text
