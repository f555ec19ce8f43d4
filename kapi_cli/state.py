"""Instance state: one JSON file per running `kapi start`, under `$KAPI_HOME` (default `~/.kapi`).

Layout::

    $KAPI_HOME/instances/<name>.json   pid, ports, URLs, backend, root, log file, start time
    $KAPI_HOME/logs/<name>.log         output of `kapi start --detach`

A state file holds no secret (the kubectl token stays in `<root>/kubectl.token`).
It is written atomically by the server process itself when it starts and removed
when it exits; a process killed with SIGKILL leaves it behind, so every reader
checks that the pid is still a kapi process (`is_alive`) and treats the file as
stale otherwise (`scan` reports and removes stale files).
"""
from __future__ import annotations

import errno
import json
import os
import re
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Optional

from kapi_certs.files import write_public

STATE_VERSION = 1
NAME_RE = re.compile(r"^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$")
_WILDCARDS = ("", "0.0.0.0", "::", "[::]")


def kapi_home() -> Path:
    """`$KAPI_HOME`, or `~/.kapi`."""
    env = os.environ.get("KAPI_HOME")
    return Path(env).expanduser() if env else Path.home() / ".kapi"


def instances_dir() -> Path:
    return kapi_home() / "instances"


def logs_dir() -> Path:
    return kapi_home() / "logs"


def state_path(name: str) -> Path:
    return instances_dir() / f"{name}.json"


def log_path(name: str) -> Path:
    return logs_dir() / f"{name}.log"


def validate_name(name: str) -> str:
    """An instance name is a file name: lower-case letters, digits, `-`, `_`, `.`; at most 63 characters."""
    if not NAME_RE.match(name):
        raise ValueError(
            f"invalid instance name {name!r}: use lower-case letters, digits, '-', '_' or '.', "
            "starting and ending with a letter or digit (at most 63 characters)")
    return name


def kapi_version() -> str:
    try:
        from importlib.metadata import version

        return version("kapi")
    except Exception:  # pragma: no cover - not installed as a distribution
        return "unknown"


def url_host(bind_address: str) -> str:
    """The host clients use for a bind address: loopback for a wildcard, IPv6 literals bracketed."""
    if bind_address in _WILDCARDS:
        return "127.0.0.1"
    if ":" in bind_address and not bind_address.startswith("["):
        return f"[{bind_address}]"
    return bind_address


def https_url(bind_address: str, port: int) -> str:
    return f"https://{url_host(bind_address)}:{port}"


def http_url(bind_address: str, port: int) -> str:
    return f"http://{url_host(bind_address)}:{port}"


# -- processes ----------------------------------------------------------------------------------------
def _proc_stat_fields(pid: int) -> Optional[list[str]]:
    """Fields of /proc/<pid>/stat after the command name (field 3 onwards), or None."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes().decode("utf-8", "replace")
    except OSError:
        return None
    return raw[raw.rfind(")") + 2:].split()


def process_start_ticks(pid: int) -> Optional[int]:
    """The kernel's start time of `pid` (clock ticks since boot), to tell a reused pid apart. Linux only."""
    fields = _proc_stat_fields(pid)
    try:
        return int(fields[19]) if fields else None  # field 22 of stat
    except (IndexError, ValueError):
        return None


def is_alive(pid: int, start_ticks: Optional[int] = None) -> bool:
    """True when `pid` is a running (not zombie) kapi process, and the same one if `start_ticks` is known."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    proc = Path(f"/proc/{pid}")
    if not Path("/proc/self").exists():  # no procfs (macOS): the signal check is all we have
        return True
    fields = _proc_stat_fields(pid)
    if fields is None or fields[0] in ("Z", "X"):  # gone, or a zombie nobody reaped yet
        return False
    try:
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    if b"kapi" not in cmdline:
        return False  # the pid was reused by another program
    if start_ticks is not None:
        current = process_start_ticks(pid)
        if current is not None and current != start_ticks:
            return False  # reused by another kapi process
    return True


# -- state files ----------------------------------------------------------------------------------------
@dataclass
class InstanceState:
    """What `kapi list/status/stop/logs/kubeconfig` need to find a running instance. No secrets."""

    name: str
    pid: int
    bind_address: str
    secure_port: int
    insecure_port: int
    backend: str
    file_rootpath: str
    started_at: float
    urls: list[str] = field(default_factory=list)
    log_file: Optional[str] = None
    kubeconfig: Optional[str] = None
    kubectl_disabled: bool = False
    kapi_version: str = ""
    pid_start_ticks: Optional[int] = None
    state_version: int = STATE_VERSION

    @property
    def root(self) -> Path:
        return Path(self.file_rootpath)

    @property
    def https_url(self) -> Optional[str]:
        return https_url(self.bind_address, self.secure_port) if self.secure_port else None

    @property
    def http_url(self) -> Optional[str]:
        return http_url(self.bind_address, self.insecure_port) if self.insecure_port else None

    @property
    def ports(self) -> list[int]:
        return [p for p in (self.secure_port, self.insecure_port) if p]

    def alive(self) -> bool:
        return is_alive(self.pid, self.pid_start_ticks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InstanceState:
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in data.items() if k in known})


def new_state(*, name: str, bind_address: str, secure_port: int, insecure_port: int, backend: str,
              file_rootpath: Path, log_file: Optional[Path], kubeconfig: Optional[Path],
              kubectl_disabled: bool, pid: Optional[int] = None) -> InstanceState:
    """The state record of this process (or `pid`)."""
    pid = os.getpid() if pid is None else pid
    urls = [u for u in (https_url(bind_address, secure_port) if secure_port else None,
                        http_url(bind_address, insecure_port) if insecure_port else None) if u]
    return InstanceState(
        name=name, pid=pid, bind_address=bind_address, secure_port=secure_port, insecure_port=insecure_port,
        backend=backend, file_rootpath=str(file_rootpath), started_at=time.time(), urls=urls,
        log_file=str(log_file) if log_file else None, kubeconfig=str(kubeconfig) if kubeconfig else None,
        kubectl_disabled=kubectl_disabled, kapi_version=kapi_version(), pid_start_ticks=process_start_ticks(pid),
    )


def write_state(state: InstanceState) -> Path:
    """Atomically (temporary file + rename) write the state file of `state.name`."""
    path = state_path(state.name)
    write_public(path, (json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    return path


def claim_state(state: InstanceState) -> Path:
    """Write the state file of `state.name` only if no running instance holds the name (atomic: a hard link).

    Two `kapi start --name X` racing past `check_can_start` cannot both win: the
    second finds the first's file and gets ConflictError. A stale file is replaced.
    """
    path = state_path(state.name)
    tmp = path.with_name(f".{state.name}.{state.pid}.claim")
    write_public(tmp, (json.dumps(state.to_dict(), indent=2, sort_keys=True) + "\n").encode())
    try:
        try:
            os.link(tmp, path)
        except FileExistsError:
            holder = read_state(state.name)
            if holder is not None and holder.pid != state.pid and holder.alive():
                raise ConflictError(
                    f"an instance named {state.name!r} is already running (pid {holder.pid}); "
                    f"stop it with `kapi stop {state.name}` or choose another --name") from None
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_state(name: str) -> Optional[InstanceState]:
    """The recorded state of `name`, or None when there is none (or it is unreadable)."""
    return _read(state_path(name))


def _read(path: Path) -> Optional[InstanceState]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return InstanceState.from_dict(data)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError):
        # Half-written files cannot happen (atomic rename); a hand-edited broken one is treated as stale.
        return InstanceState(name=path.stem, pid=-1, bind_address="", secure_port=0, insecure_port=0,
                             backend="?", file_rootpath="", started_at=0.0)


def remove_state(name: str, pid: Optional[int] = None) -> bool:
    """Remove the state file of `name`; with `pid`, only if it still belongs to that process."""
    path = state_path(name)
    if pid is not None:
        current = read_state(name)
        if current is None or current.pid != pid:
            return False
    try:
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def all_states() -> list[InstanceState]:
    """Every recorded instance, alive or not, by name."""
    directory = instances_dir()
    if not directory.is_dir():
        return []
    out = []
    for path in sorted(directory.glob("*.json")):
        state = _read(path)
        if state is not None:
            out.append(state)
    return out


@dataclass
class Scan:
    running: list[InstanceState]
    stale: list[InstanceState]


def scan(clean: bool = True) -> Scan:
    """Split the recorded instances into running and stale ones; remove stale files when `clean`."""
    running, stale = [], []
    for state in all_states():
        if state.alive():
            running.append(state)
        else:
            stale.append(state)
            if clean:
                remove_state(state.name, state.pid)
    return Scan(running, stale)


# -- conflicts --------------------------------------------------------------------------------------------
class ConflictError(Exception):
    """Starting would clash with a running instance or a bound port."""


def port_in_use(bind_address: str, port: int) -> Optional[str]:
    """Why `port` cannot be bound on `bind_address` (as uvicorn would bind it), or None if it can."""
    host = bind_address.strip("[]") or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does: TIME_WAIT is no clash
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is already in use by another process"
            if exc.errno == errno.EACCES:
                return f"port {port} on {host} needs privileges to bind"
            return f"cannot bind {host}:{port}: {exc.strerror or exc}"
    return None


def check_can_start(name: str, bind_address: str, ports: Iterable[int], file_rootpath: Path,
                    backend: str) -> list[str]:
    """Refuse (ConflictError) a start that clashes with a running instance or a bound port.

    Returns notes for the user: stale state files found (and removed) on the way.
    """
    notes: list[str] = []
    ports = [p for p in ports if p]
    found = scan(clean=True)
    for state in found.stale:
        notes.append(f"removed stale state of instance {state.name!r} (pid {state.pid} is gone)")
    for state in found.running:
        if state.name == name:
            raise ConflictError(
                f"an instance named {name!r} is already running (pid {state.pid}, {', '.join(state.urls)}); "
                f"stop it with `kapi stop {name}` or choose another --name")
    for state in found.running:
        shared = sorted(set(state.ports) & set(ports))
        if shared:
            raise ConflictError(
                f"port {shared[0]} is already used by kapi instance {state.name!r} (pid {state.pid}); "
                "choose other --secure-port/--insecure-port values")
        if backend == "file" and state.backend == "file" and Path(state.file_rootpath) == Path(file_rootpath):
            raise ConflictError(
                f"file root {file_rootpath} is already used by kapi instance {state.name!r} (pid {state.pid}); "
                "two servers must not share one file backend: choose another --file-rootpath")
    for port in ports:
        problem = port_in_use(bind_address, port)
        if problem:
            raise ConflictError(problem + "; choose other --secure-port/--insecure-port values")
    return notes
