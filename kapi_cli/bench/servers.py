"""The processes under test: a real `kapi start`, and the bare uvicorn + Starlette ceiling.

Both are separate processes started the way a user starts them, so start-up,
RSS and CPU are the process's own. CPU and RSS are read from /proc (Linux);
elsewhere they are reported as absent rather than guessed.
"""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from kapi_cli.bench.client import Target
from kapi_cli.process import stop_process


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(proc: subprocess.Popen[bytes], port: int, what: str, timeout: float = 60.0) -> float:
    """Poll GET /readyz until 200; seconds since `proc` was started is the caller's to take."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited during start-up (code {proc.returncode})")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
                s.sendall(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                if s.recv(64).startswith(b"HTTP/1.1 200"):
                    return time.perf_counter()
        except OSError:
            pass
        time.sleep(0.005)
    raise RuntimeError(f"{what} was not ready after {timeout:.0f} s")


def rss_bytes(pid: int) -> int | None:
    """Resident set size of a process (VmRSS), or None off Linux."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU time of a process so far (10 ms resolution), or None off Linux."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuMeter:
    """CPU share (of one core) a process used while a block ran."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.share: float | None = None

    @contextmanager
    def measure(self) -> Iterator["CpuMeter"]:
        start_cpu = cpu_seconds(self.pid) if self.pid else None
        t0 = time.perf_counter()
        yield self
        seconds = time.perf_counter() - t0
        end_cpu = cpu_seconds(self.pid) if self.pid else None
        if start_cpu is not None and end_cpu is not None and seconds > 0:
            self.share = (end_cpu - start_cpu) / seconds


@dataclass
class KapiServer:
    """One `kapi start` process on free ports, its data (and certificates) under `root`."""

    backend: str
    root: Path
    extra_args: list[str] = field(default_factory=list)
    http_port: int = field(default_factory=free_port)
    https_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [sys.executable, "-m", "kapi_cli.main", "start", "--backend", self.backend,
                "--file-rootpath", str(self.root), "--insecure-port", str(self.http_port),
                "--secure-port", str(self.https_port), "--authn-allow-localhost=true",
                "--name", f"bench-{os.getpid()}-{self.http_port}", "--log-level", "warning", *self.extra_args]

    def start(self) -> float:
        """Start the process; return seconds from spawning it to /readyz answering 200."""
        env = {**os.environ, "KAPI_HOME": str(self.root / "home")}
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return wait_ready(self.proc, self.http_port, f"kapi ({self.backend})") - t0

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def http(self) -> Target:
        return Target("127.0.0.1", self.http_port)

    def https(self, client_cert: bool) -> Target:
        """The HTTPS port, trusting kapi's CA; with kapi's client certificate when `client_cert`."""
        cert = self.root / "cert"
        if client_cert:
            return Target("127.0.0.1", self.https_port, str(cert / "ca.crt"),
                          str(cert / "client.crt"), str(cert / "client.key"))
        return Target("127.0.0.1", self.https_port, str(cert / "ca.crt"))


@dataclass
class BareServer:
    """uvicorn (httptools, uvloop) serving `kapi_cli.bench.bare_app`: the Python HTTP stack's ceiling."""

    body_file: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    def start(self, get_body: bytes) -> None:
        """Serve `get_body` (the bytes a kapi GET returned) for every GET."""
        self.body_file.write_bytes(get_body)
        cmd = [sys.executable, "-m", "uvicorn", "kapi_cli.bench.bare_app:app", "--host", "127.0.0.1",
               "--port", str(self.port), "--http", "httptools", "--loop", "uvloop",
               "--log-level", "warning", "--no-access-log"]
        env = {**os.environ, "KAPI_BENCH_GET_BODY": str(self.body_file)}
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        wait_ready(self.proc, self.port, "the bare uvicorn server")

    def stop(self) -> None:
        stop_process(self.proc, timeout=15)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def http(self) -> Target:
        return Target("127.0.0.1", self.port)
