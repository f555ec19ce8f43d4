"""Go-style boolean flags and `kapi start` flag validation (no server is started)."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kapi_cli import main as cli_main
from kapi_cli import start as start_mod
from kapi_cli.flags import FlagError, normalize_bool_flags
from kapi_cli.main import app
from kapi.config import ServerConfig

SEED = ["--backend=file", "--etcd-servers=http://127.0.0.1:2379", "--request-timeout=60m",
        "--unrestricted-update=true", "--kubectl-disabled=false", "--kubectl-ephemeral-token=false",
        "--authn-allow-localhost=true"]


@pytest.mark.parametrize(("arg", "expected"), [
    ("--unrestricted-update=true", "--unrestricted-update"),
    ("--unrestricted-update=false", "--no-unrestricted-update"),
    ("--unrestricted-update=TRUE", "--unrestricted-update"),
    ("--unrestricted-update=0", "--no-unrestricted-update"),
    ("--kubectl-disabled=yes", "--kubectl-disabled"),
    ("--authn-allow-localhost=f", "--no-authn-allow-localhost"),
    ("--detach=true", "--detach"),
    ("--examples=false", "--no-examples"),
])
def test_bool_flags_normalized(arg: str, expected: str) -> None:
    assert normalize_bool_flags([arg]) == [expected]


def test_other_args_untouched() -> None:
    args = ["start", "--name=x", "--request-timeout=60m", "--unrestricted-update", "--no-examples", "-x=true"]
    assert normalize_bool_flags(args) == args


@pytest.mark.parametrize("value", ["maybe", "", "2", "on"])
def test_bad_bool_value(value: str) -> None:
    with pytest.raises(FlagError, match="--unrestricted-update"):
        normalize_bool_flags([f"--unrestricted-update={value}"])


def test_run_rejects_bad_bool_with_exit_2(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys, "argv", ["kapi", "start", "--unrestricted-update=maybe"])
    with pytest.raises(SystemExit) as exc:
        cli_main.run()
    assert exc.value.code == 2
    assert "invalid boolean value 'maybe' for --unrestricted-update" in capsys.readouterr().err


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[Any]:
    """`kapi start` parses and validates, then hands over here instead of serving."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[Any] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, level, log: calls.append(config))
    return calls


def invoke(*args: str) -> Any:
    return CliRunner().invoke(app, normalize_bool_flags(["start", *args]))


def test_seed_command_line_parses(captured: list[ServerConfig], tmp_path: Path) -> None:
    tokens = tmp_path / "token.csv"
    tokens.write_text("t,u,1\n")
    result = invoke(*SEED, f"--file-rootpath={tmp_path / 'root'}", f"--token-auth-file={tokens}")
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.unrestricted_update is True
    assert config.kubectl_disabled is False and config.kubectl_ephemeral_token is False
    assert config.authn_allow_localhost is True
    assert config.request_timeout == 3600
    assert config.etcd_servers == ("http://127.0.0.1:2379",)
    assert config.token_auth_file == tokens.resolve()
    assert config.secure_port == 8443 and config.insecure_port == 6080


@pytest.mark.parametrize(("flag", "field", "value"), [
    ("--unrestricted-update=true", "unrestricted_update", True),
    ("--unrestricted-update=false", "unrestricted_update", False),
    ("--unrestricted-update", "unrestricted_update", True),
    ("--no-unrestricted-update", "unrestricted_update", False),
    ("--kubectl-ephemeral-token=true", "kubectl_ephemeral_token", True),
    ("--kubectl-disabled=true", "kubectl_disabled", True),
    ("--authn-allow-localhost=false", "authn_allow_localhost", False),
    ("--examples=false", "load_examples", False),
])
def test_bool_spellings_reach_config(captured: list[ServerConfig], tmp_path: Path, flag: str, field: str,
                                     value: bool) -> None:
    result = invoke(flag, f"--file-rootpath={tmp_path}")
    assert result.exit_code == 0, result.output
    assert getattr(captured[0], field) is value


def test_last_port_wins(captured: list[ServerConfig], tmp_path: Path) -> None:
    """The issue's seed command line gets free ports appended in tests."""
    result = invoke("--secure-port=1", f"--file-rootpath={tmp_path}", "--secure-port", "2345")
    assert result.exit_code == 0, result.output
    assert captured[0].secure_port == 2345


BASE: dict[str, Any] = dict(
    name="default", backend="file", etcd_servers="", bind_address="127.0.0.1", secure_port=8443,
    insecure_port=6080, resources=[], examples=True, request_timeout="60s", unrestricted_update=False,
    token_auth_file=None, kubectl_disabled=False, kubectl_ephemeral_token=False, authn_allow_localhost=False,
    san=[],
)


def build(tmp_path: Path, **changes: Any) -> ServerConfig:
    return start_mod.build_config(file_rootpath=tmp_path, **{**BASE, **changes})


@pytest.mark.parametrize(("changes", "message"), [
    ({"backend": "mongo"}, "unknown backend 'mongo'"),
    ({"request_timeout": "ten minutes"}, "invalid duration"),
    ({"request_timeout": "0s"}, "not a positive duration"),
    ({"secure_port": 70000}, "70000 is not a port"),
    ({"insecure_port": -1}, "-1 is not a port"),
    ({"secure_port": 0, "insecure_port": 0}, "nothing to serve"),
    ({"secure_port": 9000, "insecure_port": 9000}, "both 9000"),
    ({"name": "Bad/Name"}, "invalid instance name"),
    ({"name": ""}, "invalid instance name"),
    ({"token_auth_file": Path("/nonexistent/tokens.csv")}, "is not a file"),
    ({"watch_event_window": 0}, "not a positive number of events"),
    ({"watch_bookmark_interval": "soon"}, "invalid duration"),
    ({"watch_bookmark_interval": "0s"}, "not a positive duration"),
])
def test_build_config_rejects(tmp_path: Path, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message):
        build(tmp_path, **changes)


def test_build_config_resolves_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "crds").mkdir()
    config = build(Path("rel"), resources=[Path("crds")], san=["example.test"], etcd_servers="a,b,")
    assert config.file_rootpath == tmp_path / "rel"
    assert config.resource_dirs == (tmp_path / "crds",)
    assert config.etcd_servers == ("a", "b")
    assert config.extra_sans == ("example.test",)


def test_detached_argv_rebuilds_the_same_config(captured: list[ServerConfig], tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.csv"
    tokens.write_text("t,u,1\n")
    (tmp_path / "crds").mkdir()
    original = build(tmp_path / "root", name="x1", secure_port=0, insecure_port=7000, examples=False,
                     request_timeout="90s", unrestricted_update=True, token_auth_file=tokens,
                     kubectl_ephemeral_token=True, authn_allow_localhost=True, san=["a.test", "10.0.0.1"],
                     resources=[tmp_path / "crds"], etcd_servers="http://e1:2379,http://e2:2379",
                     watch_event_window=5, watch_bookmark_interval="1500ms")
    assert (original.event_window, original.bookmark_interval) == (5, 1.5)
    argv = start_mod.child_argv(original, "90s", "warning")
    assert "--detach" not in argv
    result = CliRunner().invoke(app, ["start", *argv])
    assert result.exit_code == 0, result.output
    assert captured[0] == original
