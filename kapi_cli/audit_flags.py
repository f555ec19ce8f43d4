"""`kapi start --audit-*`: kube-apiserver's audit flags, under its names and with its defaults and checks.

`--audit-policy-file` is read (and a bad policy refused) when the server is
built (`kapi.audit.auditor`); here the numbers are checked as kube checks them
(no negative log limits, a positive batch size and wait) and the paths made
absolute, so a detached child reads the same files. `--audit-log-path -` is
standard output.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import typer

from kapi.api.duration import parse_duration

DEFAULT_BATCH_MAX_SIZE = 400
DEFAULT_BATCH_MAX_WAIT = "30s"


@dataclass(frozen=True)
class AuditFlags:
    policy_file: Optional[Path] = None
    log_path: str = ""
    log_maxage: int = 0
    log_maxbackup: int = 0
    log_maxsize: int = 0
    webhook_config_file: Optional[Path] = None
    webhook_batch_max_size: int = DEFAULT_BATCH_MAX_SIZE
    webhook_batch_max_wait: str = DEFAULT_BATCH_MAX_WAIT

    def checked(self) -> dict[str, object]:
        """The ServerConfig fields these flags set; kube's complaint for a bad value."""
        for hint, value in (("--audit-log-maxage", self.log_maxage), ("--audit-log-maxbackup", self.log_maxbackup),
                            ("--audit-log-maxsize", self.log_maxsize)):
            if value < 0:
                raise typer.BadParameter(f"{hint} {value} can't be a negative number", param_hint=hint)
        if self.webhook_batch_max_size <= 0:
            raise typer.BadParameter(f"invalid audit webhook batch max size {self.webhook_batch_max_size}, must be "
                                     "a positive number", param_hint="--audit-webhook-batch-max-size")
        try:
            wait = parse_duration(self.webhook_batch_max_wait)
        except ValueError as exc:
            raise typer.BadParameter(str(exc), param_hint="--audit-webhook-batch-max-wait") from None
        if wait <= 0:
            raise typer.BadParameter(f"invalid audit webhook batch max wait {self.webhook_batch_max_wait}, must be "
                                     "a positive duration", param_hint="--audit-webhook-batch-max-wait")
        log_path = self.log_path
        if log_path and log_path != "-":
            log_path = str(Path(log_path).expanduser().resolve())
        return {
            "audit_policy_file": _absolute(self.policy_file), "audit_log_path": log_path,
            "audit_log_maxage": self.log_maxage, "audit_log_maxbackup": self.log_maxbackup,
            "audit_log_maxsize": self.log_maxsize, "audit_webhook_config_file": _absolute(self.webhook_config_file),
            "audit_webhook_batch_max_size": self.webhook_batch_max_size, "audit_webhook_batch_max_wait": wait,
        }

    def args(self) -> list[str]:
        """The same flags for a detached child process (only those that differ from the defaults)."""
        out: list[str] = []
        for flag, value, default in (
            ("--audit-policy-file", self.policy_file, None), ("--audit-log-path", self.log_path, ""),
            ("--audit-log-maxage", self.log_maxage, 0), ("--audit-log-maxbackup", self.log_maxbackup, 0),
            ("--audit-log-maxsize", self.log_maxsize, 0),
            ("--audit-webhook-config-file", self.webhook_config_file, None),
            ("--audit-webhook-batch-max-size", self.webhook_batch_max_size, DEFAULT_BATCH_MAX_SIZE),
            ("--audit-webhook-batch-max-wait", self.webhook_batch_max_wait, DEFAULT_BATCH_MAX_WAIT),
        ):
            if value != default:
                out += [flag, str(value)]
        return out


def _absolute(path: Optional[Path]) -> Optional[Path]:
    return path.expanduser().resolve() if path is not None else None


def audit_flags_of(config: Any) -> AuditFlags:
    """The flags that rebuild a ServerConfig's audit settings (for `kapi start --detach`)."""
    wait = config.audit_webhook_batch_max_wait
    return AuditFlags(
        policy_file=config.audit_policy_file, log_path=config.audit_log_path, log_maxage=config.audit_log_maxage,
        log_maxbackup=config.audit_log_maxbackup, log_maxsize=config.audit_log_maxsize,
        webhook_config_file=config.audit_webhook_config_file,
        webhook_batch_max_size=config.audit_webhook_batch_max_size,
        webhook_batch_max_wait=DEFAULT_BATCH_MAX_WAIT if wait == 30.0 else f"{wait!r}s")
