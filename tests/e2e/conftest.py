"""End-to-end fixtures: real `kapi start` processes on free ports, and real kubectl."""
from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from kapi_cli.etcd_local import EtcdNotFound, LocalEtcd

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class KapiProcess:
    """A running `kapi start`, with an HTTP client and a kubectl bound to it."""

    port: int
    root: Path
    args: list[str]
    cache_dir: Path
    log_path: Path
    name: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:10]}")
    proc: subprocess.Popen[bytes] | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def kapi_home(self) -> Path:
        """Instance state of this server only: tests never touch the user's ~/.kapi."""
        return self.log_path.parent / "kapi-home"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 20.0) -> None:
        cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--insecure-port", str(self.port),
               "--secure-port", "0", "--authn-allow-localhost=true", "--name", self.name,
               "--file-rootpath", str(self.root), *self.args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        env = {**os.environ, "KAPI_HOME": str(self.kapi_home)}
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kapi exited early:\n{self.log_path.read_text()}")
            try:
                if httpx.get(self.url + "/readyz", timeout=0.5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"kapi did not become ready:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()

    def restart(self) -> None:
        self.stop()
        self.start()

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server, with its own discovery cache."""
        cmd = [KUBECTL, "--server", self.url, "--cache-dir", str(self.cache_dir), *args]
        env = {**os.environ, "KUBECONFIG": "/dev/null", **self.extra_env}
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=60, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result


def make_kapi(tmp_path: Path, *args: str) -> KapiProcess:
    return KapiProcess(port=free_port(), root=tmp_path / "data", args=list(args),
                       cache_dir=tmp_path / "kube-cache", log_path=tmp_path / "kapi.log")


def etcd_args(etcd: LocalEtcd, prefix: str = "") -> list[str]:
    """`kapi start` flags for the etcd backend, on a key prefix of its own unless one is given."""
    return ["--backend", "etcd", "--etcd-servers", etcd.endpoints,
            "--etcd-prefix", prefix or f"/kapi-e2e-{uuid.uuid4().hex[:10]}"]


@pytest.fixture(scope="session")
def etcd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEtcd]:
    """One real single-member etcd for the session; servers share it on separate key prefixes."""
    try:
        server = LocalEtcd.create(tmp_path_factory.mktemp("etcd")).start()
    except EtcdNotFound as exc:
        pytest.fail(f"{exc}: the README's test command installs it")
    yield server
    server.stop()


@pytest.fixture
def kapi_factory(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[object]:
    """Start servers with chosen flags; every one is stopped at teardown.

    `etcd_prefix="..."` runs one on the session's etcd (servers given the
    same prefix share their objects).
    """
    started: list[KapiProcess] = []

    def factory(*args: str, name: str = "k", etcd_prefix: str | None = None) -> KapiProcess:
        if etcd_prefix is not None:
            args = (*etcd_args(request.getfixturevalue("etcd"), etcd_prefix), *args)
        server = make_kapi(tmp_path / name, *args)
        server.start()
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()


@pytest.fixture(scope="module", params=["file", "etcd"])
def kapi(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[KapiProcess]:
    """One server shared by a test module, once per backend: the suite runs on file and on etcd."""
    args = etcd_args(request.getfixturevalue("etcd")) if request.param == "etcd" else []
    args += getattr(request.module, "KAPI_ARGS", [])  # a module's extra flags, e.g. -v=3 for request lines
    server = make_kapi(tmp_path_factory.mktemp(f"kapi-{request.param}"), *args)
    server.start()
    yield server
    server.stop()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


def sibling(filename: str) -> Any:
    """A helper module next to this file, loaded once as `kapi_e2e_<stem>`.

    Test modules cannot import their siblings under pytest's importlib import mode: they get them from
    here (a fixture, or `sys.modules` for what parametrisation needs at collection).
    """
    import importlib.util

    name = "kapi_e2e_" + Path(filename).stem
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name(filename))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


sibling("rbac_helpers.py")  # the RBAC tests read it from sys.modules["kapi_e2e_rbac_helpers"]
sibling("ssa_cases.py")  # tests/e2e/test_ssa_cases.py reads it from sys.modules["kapi_e2e_ssa_cases"]


@pytest.fixture(scope="session")
def suites() -> Any:
    """tests/e2e/upstream_suites.py: obtaining and running third-party suites (kopf's, the Python client's)."""
    return sibling("upstream_suites.py")
