"""`kapi start --service-account-issuer/--service-account-key-file`: parsing into ServerConfig, usage errors,
and the detached child's argv rebuilding the same config (no server is started).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kapi_cli import start as start_mod
from kapi_cli.main import app
from kapi_cli.service_account_flags import ServiceAccountFlags
from kapi.config import ServerConfig

BASE: dict[str, Any] = dict(
    name="default", backend="file", etcd_servers="", bind_address="127.0.0.1", secure_port=0,
    insecure_port=7002, resources=[], examples=True, request_timeout="60s", unrestricted_update=False,
    token_auth_file=None, kubectl_disabled=False, kubectl_ephemeral_token=False, authn_allow_localhost=False,
    san=[],
)


def build(root: Path, flags: ServiceAccountFlags = ServiceAccountFlags()) -> ServerConfig:
    return start_mod.build_config(file_rootpath=root, **BASE, service_accounts=flags)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ServerConfig]:
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[ServerConfig] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, level, log: calls.append(config))
    return calls


def test_defaults_are_kubes_issuer_and_a_key_under_the_root(tmp_path: Path) -> None:
    config = build(tmp_path)
    assert config.service_account_issuer == "https://kubernetes.default.svc.cluster.local"
    assert config.service_account_key_file is None
    assert config.service_account_key_path == tmp_path.resolve() / "cert" / "sa.key"
    assert config.api_audiences == ("https://kubernetes.default.svc.cluster.local",)


def test_flags_on_the_command_line(captured: list[ServerConfig], tmp_path: Path,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["start", f"--file-rootpath={tmp_path}", "--service-account-issuer",
                                      "https://kapi.example", "--service-account-key-file", "keys/sa.pem"])
    assert result.exit_code == 0, result.output
    assert captured[0].service_account_issuer == "https://kapi.example"
    assert captured[0].service_account_key_path == tmp_path / "keys" / "sa.pem"


@pytest.mark.parametrize(("flags", "message"), [
    (ServiceAccountFlags(issuer=" "), "an issuer is needed"),
    (ServiceAccountFlags(key_file=Path("/")), "is not a file"),
])
def test_bad_values_are_usage_errors(tmp_path: Path, flags: ServiceAccountFlags, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        build(tmp_path, flags)


@pytest.mark.parametrize("flags", [
    ServiceAccountFlags(),
    ServiceAccountFlags("https://issuer.example/cluster-a", Path("sa.key")),
])
def test_child_argv_rebuilds_the_same_config(captured: list[ServerConfig], tmp_path: Path,
                                             flags: ServiceAccountFlags) -> None:
    original = build(tmp_path / "root", flags)
    argv = start_mod.child_argv(original, "60s", "info")
    assert argv[argv.index("--service-account-issuer") + 1] == original.service_account_issuer
    result = CliRunner().invoke(app, ["start", *argv])
    assert result.exit_code == 0, result.output
    assert captured[0] == original
