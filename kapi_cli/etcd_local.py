"""Local etcd processes on loopback ports: one member, or a 3-member cluster.

Used by `scripts/etcd.py` (for users who want an etcd to point
`kapi start --backend=etcd` at) and by the tests, which start their own
etcd on free ports rather than assume one is running. It drives Debian's
`etcd` binary (package `etcd-server`); `ETCD_BIN` overrides where it is.

Members can be killed and restarted one by one (same data directory, same
ports), which is what the fault tests need: etcd going away under a running
kapi and coming back, or a cluster losing one member.
"""
from __future__ import annotations

import os
import shutil
import socket
import ssl
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from kapi_cli.process import stop_process

__all__ = ["EtcdNotFound", "EtcdMember", "LocalEtcd", "TLSFiles", "etcd_binary", "free_port", "make_tls_files"]


class EtcdNotFound(RuntimeError):
    """No etcd binary: install Debian's `etcd-server` (or set ETCD_BIN)."""


def etcd_binary() -> str:
    found = os.environ.get("ETCD_BIN") or shutil.which("etcd") or (
        "/usr/bin/etcd" if Path("/usr/bin/etcd").exists() else None)
    if not found:
        raise EtcdNotFound("etcd not found: install it with `apt-get install etcd-server` (or set ETCD_BIN)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class TLSFiles:
    """PEM files for etcd served over TLS with client-certificate authentication."""

    ca: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path


def make_tls_files(directory: Path) -> TLSFiles:
    """A throwaway CA, a serving certificate for 127.0.0.1/localhost and a client certificate."""
    from kapi_certs import pki
    from kapi_certs.files import write_private, write_public

    directory.mkdir(parents=True, exist_ok=True)
    ca, ca_key = pki.make_ca("kapi-etcd-test-ca", days=2)
    server, server_key = pki.issue_serving_cert(ca, ca_key, ["127.0.0.1", "localhost"], days=2)
    client, client_key = pki.issue_client_cert(ca, ca_key, "kapi", [], days=2)
    files = TLSFiles(directory / "ca.crt", directory / "server.crt", directory / "server.key",
                     directory / "client.crt", directory / "client.key")
    write_public(files.ca, pki.cert_pem(ca))
    write_public(files.server_cert, pki.cert_pem(server))
    write_private(files.server_key, pki.key_pem(server_key))
    write_public(files.client_cert, pki.cert_pem(client))
    write_private(files.client_key, pki.key_pem(client_key))
    return files


@dataclass
class EtcdMember:
    """One etcd process; `start` after `kill` brings it back with its data."""

    name: str
    client_port: int
    peer_port: int
    data_dir: Path
    tls: TLSFiles | None = None
    proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def client_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"http://127.0.0.1:{self.peer_port}"

    def argv(self, initial_cluster: str, state: str) -> list[str]:
        argv = [
            etcd_binary(), "--name", self.name, "--data-dir", str(self.data_dir),
            "--listen-client-urls", self.client_url, "--advertise-client-urls", self.client_url,
            "--listen-peer-urls", self.peer_url, "--initial-advertise-peer-urls", self.peer_url,
            "--initial-cluster", initial_cluster, "--initial-cluster-state", state,
            "--initial-cluster-token", "kapi-local",
            # Tests and users both want a quick election after a member is lost.
            "--heartbeat-interval", "50", "--election-timeout", "500",
            "--logger", "zap", "--log-level", "warn",
        ]
        if self.tls:
            argv += ["--cert-file", str(self.tls.server_cert), "--key-file", str(self.tls.server_key),
                     "--trusted-ca-file", str(self.tls.ca), "--client-cert-auth"]
        return argv

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data directory stays."""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self) -> None:
        stop_process(self.proc)
        self.proc = None

    def healthy(self) -> bool:
        """etcd's own /health answers {"health":"true"} (it needs a quorum for that)."""
        context = None
        if self.tls:
            context = ssl.create_default_context(cafile=str(self.tls.ca))
            context.load_cert_chain(str(self.tls.client_cert), str(self.tls.client_key))
        try:
            with urllib.request.urlopen(self.client_url + "/health", timeout=1, context=context) as reply:
                return b'"true"' in reply.read()
        except OSError:
            return False


@dataclass
class LocalEtcd:
    """A set of etcd members on loopback ports, forming one cluster."""

    root: Path
    members: list[EtcdMember] = field(default_factory=list)
    log_path: Path | None = None
    _started_once: set[str] = field(default_factory=set)

    @classmethod
    def create(cls, root: Path, size: int = 1, tls: TLSFiles | None = None) -> LocalEtcd:
        root.mkdir(parents=True, exist_ok=True)
        members = [EtcdMember(f"m{i}", free_port(), free_port(), root / f"m{i}.etcd", tls)
                   for i in range(size)]
        return cls(root, members, root / "etcd.log")

    @property
    def endpoints(self) -> str:
        """The value for `kapi start --etcd-servers`."""
        return ",".join(m.client_url for m in self.members)

    @property
    def initial_cluster(self) -> str:
        return ",".join(f"{m.name}={m.peer_url}" for m in self.members)

    def start_member(self, index: int) -> None:
        member = self.members[index]
        if member.running:
            return
        state = "existing" if member.name in self._started_once else "new"
        assert self.log_path is not None
        with open(self.log_path, "ab") as log:
            member.proc = subprocess.Popen(member.argv(self.initial_cluster, state),
                                           stdout=log, stderr=subprocess.STDOUT)
        self._started_once.add(member.name)

    def start(self, timeout: float = 30.0) -> LocalEtcd:
        for index in range(len(self.members)):
            self.start_member(index)
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running member reports healthy; RuntimeError with the log otherwise."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            running = [m for m in self.members if m.proc is not None]
            for member in running:
                if member.proc is not None and member.proc.poll() is not None:
                    raise RuntimeError(f"etcd member {member.name} exited:\n{self.log_tail()}")
            if all(m.healthy() for m in running):
                return
            time.sleep(0.05)
        raise RuntimeError(f"etcd did not become healthy in {timeout:.0f}s:\n{self.log_tail()}")

    def kill_member(self, index: int) -> None:
        self.members[index].kill()

    def restart_member(self, index: int, timeout: float = 30.0) -> None:
        self.members[index].kill()
        self.start_member(index)
        self.wait_healthy(timeout)

    def stop(self) -> None:
        for member in self.members:
            member.stop()

    def log_tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalEtcd:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
