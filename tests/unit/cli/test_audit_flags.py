"""`kapi start --audit-*`: parsing into ServerConfig with kube's names and checks, and the detached child's
argv rebuilding the same config (no server is started)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kapi_cli import start as start_mod
from kapi_cli.audit_flags import AuditFlags
from kapi_cli.flags import normalize_bool_flags
from kapi_cli.main import app
from kapi.config import ServerConfig


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ServerConfig]:
    """`kapi start` parses and validates, then hands the config over here instead of serving."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[ServerConfig] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, *rest: calls.append(config))
    return calls


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, normalize_bool_flags(
        ["start", "--backend", "memory", "--file-rootpath", str(tmp_path / "root"), *args]))


def test_off_by_default(captured: list[ServerConfig], tmp_path: Path) -> None:
    assert invoke(tmp_path).exit_code == 0
    config, default = captured[0], ServerConfig()
    assert (config.audit_policy_file, config.audit_log_path, config.audit_webhook_config_file) == (None, "", None)
    assert (config.audit_log_maxage, config.audit_log_maxbackup, config.audit_log_maxsize) == (0, 0, 0)
    assert (config.audit_webhook_batch_max_size, config.audit_webhook_batch_max_wait) == (
        default.audit_webhook_batch_max_size, default.audit_webhook_batch_max_wait) == (400, 30.0)


def test_every_flag_reaches_the_config(captured: list[ServerConfig], tmp_path: Path,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke(tmp_path, "--audit-policy-file", "policy.yaml", "--audit-log-path", "logs/audit.log",
                    "--audit-log-maxage", "7", "--audit-log-maxbackup", "3", "--audit-log-maxsize", "50",
                    "--audit-webhook-config-file", "sink.kubeconfig", "--audit-webhook-batch-max-size", "10",
                    "--audit-webhook-batch-max-wait", "1m")
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.audit_policy_file == tmp_path.resolve() / "policy.yaml"  # absolute: a detached child agrees
    assert config.audit_log_path == str(tmp_path.resolve() / "logs" / "audit.log")
    assert (config.audit_log_maxage, config.audit_log_maxbackup, config.audit_log_maxsize) == (7, 3, 50)
    assert config.audit_webhook_config_file == tmp_path.resolve() / "sink.kubeconfig"
    assert (config.audit_webhook_batch_max_size, config.audit_webhook_batch_max_wait) == (10, 60.0)


def test_stdout_log_path(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--audit-log-path", "-")
    assert result.exit_code == 0, result.output
    assert captured[0].audit_log_path == "-"


@pytest.mark.parametrize(("flags", "hint", "message"), [
    (AuditFlags(log_maxage=-1), "--audit-log-maxage", "--audit-log-maxage -1 can't be a negative number"),
    (AuditFlags(log_maxbackup=-2), "--audit-log-maxbackup", "can't be a negative number"),
    (AuditFlags(log_maxsize=-3), "--audit-log-maxsize", "can't be a negative number"),
    (AuditFlags(webhook_batch_max_size=0), "--audit-webhook-batch-max-size", "must be a positive number"),
    (AuditFlags(webhook_batch_max_wait="0s"), "--audit-webhook-batch-max-wait", "must be a positive duration"),
    (AuditFlags(webhook_batch_max_wait="soon"), "--audit-webhook-batch-max-wait", "invalid duration"),
])
def test_usage_errors(flags: AuditFlags, hint: str, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message) as caught:
        flags.checked()
    assert caught.value.param_hint == hint


def test_the_cli_reports_a_usage_error(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--audit-log-maxsize", "-1")
    assert result.exit_code == 2
    assert "--audit-log-maxsize" in result.output and not captured


@pytest.mark.parametrize("flags", [
    AuditFlags(),
    AuditFlags(Path("/p/policy.yaml"), "/var/log/audit.log", 1, 2, 3, Path("/p/sink"), 7, "2.5s"),
    AuditFlags(Path("/p/policy.yaml"), "-"),
])
def test_child_argv_rebuilds_the_same_config(captured: list[ServerConfig], tmp_path: Path, flags: AuditFlags) -> None:
    base = dict(name="default", backend="memory", etcd_servers="", file_rootpath=tmp_path / "root",
                bind_address="127.0.0.1", secure_port=0, insecure_port=7003, resources=[], examples=False,
                request_timeout="60s", unrestricted_update=False, token_auth_file=None, kubectl_disabled=False,
                kubectl_ephemeral_token=False, authn_allow_localhost=False, san=[])
    # --no-metrics rides along with the cases that audit: what measures observability's cost round-trips too
    original = start_mod.build_config(**base, audit=flags, metrics=flags.policy_file is None)  # type: ignore[arg-type]
    argv = start_mod.child_argv(original, "60s", "info")
    assert ("--audit-policy-file" in argv) is (flags.policy_file is not None)
    result = CliRunner().invoke(app, ["start", *argv])
    assert result.exit_code == 0, result.output
    assert captured[0] == original
