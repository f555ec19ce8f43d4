"""`kapi start -v N`, `--logging-format`, `--log-level` and the log file's rotation (issue 23).

`-v`/`--v` is klog's verbosity as kube components take it (`-v=3`, `--v=3`,
`-v 3`); click would hand `-v=3` over as "=3", so the value is read as
text. The rotation flags only mean something for a server writing its own
log file (`--detach`); without one they are a usage error rather than
silently ignored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import typer

from kapi.api.klog import FORMATS
from kapi.logsetup import python_level

DEFAULT_MAX_SIZE_MB = 100.0
DEFAULT_MAX_BACKUPS = 5
MAX_VERBOSITY = 10
ROTATION_FLAGS = ("log_file_max_size", "log_file_max_backups")


def parse_verbosity(text: str) -> int:
    """`3`, `=3` (click's reading of `-v=3`) → 3; ValueError unless a whole number 0-10."""
    raw = text.strip().lstrip("=").strip()
    if not raw.isdigit() or int(raw) > MAX_VERBOSITY:
        raise ValueError(f"{text!r} is not a verbosity (a number 0-{MAX_VERBOSITY}: 2 logs slow requests, "
                         "3 every request)")
    return int(raw)


@dataclass(frozen=True)
class LoggingFlags:
    verbosity: str = "0"
    logging_format: str = "text"
    log_file_max_size: float = DEFAULT_MAX_SIZE_MB
    log_file_max_backups: int = DEFAULT_MAX_BACKUPS
    log_level: str = "info"  # checked here; the process's setting, not a ServerConfig field

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set; a usage error for a bad value."""
        try:
            verbosity = parse_verbosity(self.verbosity)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="-v") from None
        if self.logging_format not in FORMATS:
            raise typer.BadParameter(f"{self.logging_format!r}: use {' or '.join(FORMATS)}",
                                     param_hint="--logging-format")
        try:
            python_level(self.log_level)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--log-level") from None
        if not (math.isfinite(self.log_file_max_size) and self.log_file_max_size >= 0):
            raise typer.BadParameter(f"{self.log_file_max_size:g} is not a size in MB (0 = never rotate)",
                                     param_hint="--log-file-max-size")
        if self.log_file_max_backups < 0:
            raise typer.BadParameter(f"{self.log_file_max_backups} is not a number of files",
                                     param_hint="--log-file-max-backups")
        return {"verbosity": verbosity, "logging_format": self.logging_format,
                "log_file_max_size": float(self.log_file_max_size),
                "log_file_max_backups": self.log_file_max_backups}

    def check_rotation_has_a_file(self, has_log_file: bool) -> None:
        """Rotation flags without a log file would do nothing: a usage error."""
        if has_log_file:
            return
        for f in fields(self):
            if f.name in ROTATION_FLAGS and getattr(self, f.name) != f.default:
                raise typer.BadParameter("only with --detach (a server writing its own log file)",
                                         param_hint=_hint(f.name))

    def args(self) -> list[str]:
        """The same flags for a detached child process (those that differ from the defaults; the log level
        is passed on by child_argv itself)."""
        out: list[str] = []
        if self.verbosity != "0":
            out += ["--v", self.verbosity]
        for name in ("logging_format", *ROTATION_FLAGS):
            value = getattr(self, name)
            if value != next(f.default for f in fields(self) if f.name == name):
                out += [_hint(name), repr(value) if isinstance(value, float) else str(value)]
        return out


def _hint(name: str) -> str:
    return "--" + name.replace("_", "-")


def logging_flags_of(config: Any) -> LoggingFlags:
    """The flags that rebuild a ServerConfig's logging settings (for `kapi start --detach`)."""
    return LoggingFlags(verbosity=str(config.verbosity), logging_format=config.logging_format,
                        log_file_max_size=config.log_file_max_size,
                        log_file_max_backups=config.log_file_max_backups)
