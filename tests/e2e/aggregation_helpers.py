"""Shared by tests/e2e/test_aggregation.py (issue 19): `kapi start` processes over HTTPS only, kubectl with a
bearer token, polling, and the wardle manifests (an aggregated API server B behind the aggregator A).

Loaded by the test module through conftest.py's `sibling()` (importlib import mode).
"""
from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx
import yaml

KUBECTL = "/usr/bin/kubectl"
T = TypeVar("T")
TOKENS = {"admin": "admintoken", "alice": "alicetoken", "bob": "bobtoken", "kapi-b": "btoken"}
TOKENS_CSV = 'admintoken,admin,1,"system:masters"\nalicetoken,alice,2\nbobtoken,bob,3\nbtoken,kapi-b,4\n'
GROUP, VERSION = "wardle.example.com", "v1alpha1"
APISERVICE = f"{VERSION}.{GROUP}"
FLUNDER_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": f"flunders.{GROUP}"},
    "spec": {"group": GROUP, "scope": "Namespaced",
             "names": {"kind": "Flunder", "listKind": "FlunderList", "plural": "flunders", "singular": "flunder"},
             "versions": [{"name": VERSION, "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                 "type": "object", "properties": {
                     "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                     "spec": {"type": "object", "description": "FlunderSpec is the flunder's wish.",
                              "properties": {"reference": {"type": "string",
                                                           "description": "reference names another flunder"}}}}}}}]}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 15.0, every: float = 0.25) -> T:
    """Poll `probe` until it returns something truthy; fail with `what` and the last value otherwise."""
    deadline, last = time.monotonic() + timeout, None
    while True:
        try:
            last = probe()
        except (httpx.HTTPError, subprocess.TimeoutExpired) as exc:
            last = exc  # type: ignore[assignment]
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")
        time.sleep(every)


@dataclass
class Server:
    """One `kapi start --insecure-port 0` on a free HTTPS port, its own --name, root and KAPI_HOME."""

    base: Path
    args: list[str]
    port: int = field(default_factory=free_port)
    name: str = field(default_factory=lambda: f"e2e-agg-{uuid.uuid4().hex[:8]}")
    proc: subprocess.Popen[bytes] | None = None

    @property
    def root(self) -> Path:
        return self.base / "data"

    @property
    def ca(self) -> Path:
        return self.root / "cert" / "ca.crt"

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.base / "kapi.log"

    def logs(self, tail: int = 8000) -> str:
        return f"--- {self.name} log ({self.log_path}) ---\n" + (
            self.log_path.read_text(errors="replace")[-tail:] if self.log_path.exists() else "(none)")

    def start(self, timeout: float = 30.0) -> "Server":
        self.base.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "kapi_cli.main", "start", "--name", self.name, "--file-rootpath",
               str(self.root), "--secure-port", str(self.port), "--insecure-port", "0", *self.args]
        env = {**os.environ, "KAPI_HOME": str(self.base / "kapi-home")}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"kapi exited early\n{self.logs()}")
            try:
                if httpx.get(self.url + "/readyz", verify=False, timeout=0.5).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"kapi did not become ready\n{self.logs()}")

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def http(self, token: str | None = TOKENS["admin"], cert: tuple[Path, Path] | None = None) -> httpx.Client:
        """httpx verified with this server's CA, with a bearer token (None: none) and a client `cert`."""
        context = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:  # (httpx's own `cert=` is ignored beside `verify=<path>`)
            context.load_cert_chain(*cert)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, verify=context, headers=headers, timeout=15)

    def kubectl(self, *args: str, user: str = "admin", input: str | None = None, check: bool = False,
                timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """The real kubectl as a tokens.csv `user`, with a discovery cache per user."""
        cmd = [KUBECTL, "--kubeconfig", "/dev/null", "--cache-dir", str(self.base / "kube-cache" / user),
               "--server", self.url, "--certificate-authority", str(self.ca), "--token", TOKENS[user], *args]
        env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
        result = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=timeout, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} as {user} failed ({result.returncode}):\n"
                                 f"stdout: {result.stdout}\nstderr: {result.stderr}")
        return result

    def apply(self, *objects: dict[str, Any]) -> None:
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objects), check=True)


def kubeconfig(server: Server, token: str) -> str:
    """A kubeconfig (YAML) that reaches `server` with `token`."""
    return yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "a",
        "clusters": [{"name": "a", "cluster": {"server": server.url, "certificate-authority": str(server.ca)}}],
        "users": [{"name": "b", "user": {"token": token}}],
        "contexts": [{"name": "a", "context": {"cluster": "a", "user": "b"}}]})


def flunder(name: str, reference: str = "", namespace: str = "default") -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "Flunder",
            "metadata": {"name": name, "namespace": namespace}, "spec": {"reference": reference}}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"
