"""A `kapi start` process's logging: klog-style lines (text or JSON), verbosity, and a log file that rotates.

kapi's own loggers, uvicorn's and Python's warnings all go through one
handler with `kapi.api.klog`'s formatter; `--log-level` sets the Python
level of kapi's and uvicorn's loggers (third-party libraries stay at
WARNING), `-v` the klog verbosity (4+ also lets kapi's DEBUG records out).

With a log file (a detached server's `$KAPI_HOME/logs/NAME.log`) the
process's stdout and stderr *are* that file: everything written to them
(log records, the start-up banner, a plugin's print, a crash in C code)
lands in it. Rotation therefore happens here, in the process that writes:
past the size limit the files shift (`NAME.log` → `NAME.log.1` → … →
`NAME.log.N`, the oldest dropped) and a fresh `NAME.log` is put on fds 1
and 2. `kapi logs` reads them oldest first (`rotated_files`).
"""
from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Any, Mapping

from kapi.api.klog import DEBUG_V, KV_ATTR, V_ATTR, KlogFormatter
from kapi.config import ServerConfig

MB = 1024 * 1024
KAPI_LOGGERS = ("kapi", "kapi_certs", "uvicorn")
LEVELS = {"critical": logging.CRITICAL, "error": logging.ERROR, "warning": logging.WARNING,
          "info": logging.INFO, "debug": logging.DEBUG, "trace": 5}
STARTUP_V = 2
log = logging.getLogger("kapi.server")


def python_level(name: str) -> int:
    """`--log-level`'s Python level (uvicorn's names); ValueError for an unknown one."""
    try:
        return LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}: use one of {', '.join(LEVELS)}") from None


def backup_path(path: Path, n: int) -> Path:
    return path.with_name(f"{path.name}.{n}")


def rotated_files(path: Path) -> list[Path]:
    """A log's files oldest first: its backups (`NAME.log.N` … `NAME.log.1`) that exist, then `NAME.log`."""
    backups: list[tuple[int, Path]] = []
    prefix = path.name + "."
    with contextlib.suppress(FileNotFoundError):
        for entry in os.listdir(path.parent):
            suffix = entry[len(prefix):] if entry.startswith(prefix) else ""
            if suffix.isdigit() and int(suffix) > 0:
                backups.append((int(suffix), path.parent / entry))
    return [p for _, p in sorted(backups, reverse=True)] + ([path] if path.exists() else [])


def remove_backups(path: Path) -> None:
    """Drop a log's rotated files (a new detached start begins its log afresh)."""
    for old in rotated_files(path):
        if old != path:
            with contextlib.suppress(FileNotFoundError):
                old.unlink()


def shift_backups(path: Path, backups: int) -> None:
    """Rotate by renaming: NAME.log.(k) → NAME.log.(k+1) up to `backups`, NAME.log → NAME.log.1 (with no
    backups kept, NAME.log is removed)."""
    if backups <= 0:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    for n in range(backups - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.replace(backup_path(path, n), backup_path(path, n + 1))
    with contextlib.suppress(FileNotFoundError):
        os.replace(path, backup_path(path, 1))


def redirect_output(path: Path) -> None:
    """Make fds 1 and 2 append to `path` (created if missing), so all of the process's output goes there."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 1)
        os.dup2(fd, 2)
    finally:
        os.close(fd)


class RotatingOutput(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes records to stderr (the log file) and rotates the file once it has grown past `max_bytes`
    (0: never). The size is the file's own (fstat), so the banner and prints count too."""

    def __init__(self, path: Path, max_bytes: int, backups: int) -> None:
        super().__init__(sys.stderr)
        self.path, self.max_bytes, self.backups = path, max_bytes, backups

    def emit(self, record: logging.LogRecord) -> None:
        super().emit(record)
        if self.max_bytes > 0:
            try:
                if os.fstat(2).st_size >= self.max_bytes:
                    self.rotate()
            except OSError:
                self.handleError(record)

    def rotate(self) -> None:
        shift_backups(self.path, self.backups)
        redirect_output(self.path)


def configure_logging(level: str = "info", verbosity: int = 0, fmt: str = "text", log_file: Path | None = None,
                      max_size_mb: float = 0.0, max_backups: int = 0) -> logging.Handler:
    """Route every log record through one klog-style handler (to stderr, or to `log_file`, rotated).

    ValueError for an unknown level or format. Meant for the `kapi start` process, once: it replaces the
    root logger's handlers."""
    py_level = python_level(level)
    formatter = KlogFormatter(fmt)
    if log_file is not None:
        redirect_output(log_file)
        handler: logging.Handler = RotatingOutput(log_file, int(max_size_mb * MB), max_backups)
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    if verbosity >= DEBUG_V:
        py_level = min(py_level, logging.DEBUG)
    for name in KAPI_LOGGERS:
        logging.getLogger(name).setLevel(py_level)
    if verbosity >= STARTUP_V:  # -v asks for these lines whatever --log-level says
        logging.getLogger("kapi.httplog").setLevel(logging.INFO)
        log.setLevel(min(py_level, logging.INFO))
    logging.captureWarnings(True)
    return handler


def vlog(logger: logging.Logger, v: int, verbosity: int, msg: str, kv: Mapping[str, Any]) -> None:
    """klog's `V(v).InfoS(msg, kv...)`: written only when `verbosity` reaches `v`."""
    if verbosity >= v:
        logger.info(msg, extra={V_ATTR: v, KV_ATTR: dict(kv)}, stacklevel=2)


def log_startup(config: ServerConfig, resources: int) -> None:
    """At `-v=2`, what this server runs with (kube logs its flags and serving addresses at start-up)."""
    vlog(log, STARTUP_V, config.verbosity, "Starting kapi", {
        "name": config.name, "backend": config.backend, "bindAddress": config.bind_address,
        "securePort": config.secure_port, "insecurePort": config.insecure_port, "resources": resources,
        "requestTimeout": f"{config.request_timeout:g}s", "verbosity": config.verbosity,
        "loggingFormat": config.logging_format})
