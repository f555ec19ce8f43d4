"""`kapi start -v/--v`, `--logging-format`, `--log-level` and the log-file rotation flags: parsing into
ServerConfig, usage errors, and the detached child's argv rebuilding the same config (no server is started)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kapi_cli import start as start_mod
from kapi_cli.flags import normalize_bool_flags
from kapi_cli.logging_flags import LoggingFlags, logging_flags_of, parse_verbosity
from kapi_cli.main import app
from kapi.config import ServerConfig


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[tuple[ServerConfig, str]]:
    """`kapi start` parses and validates, then hands the config (and log level) over here instead of serving."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[tuple[ServerConfig, str]] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, level, log: calls.append((config, level)))
    return calls


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, normalize_bool_flags(
        ["start", "--backend", "memory", "--file-rootpath", str(tmp_path / "root"), *args]))


def says(result: Any, text: str) -> bool:
    return text in " ".join(result.output.replace("│", " ").split())


@pytest.mark.parametrize("text, level", [("0", 0), ("3", 3), ("=3", 3), (" 10 ", 10)])
def test_parse_verbosity(text: str, level: int) -> None:
    assert parse_verbosity(text) == level


@pytest.mark.parametrize("text", ["", "-1", "three", "11", "2.5", "=="])
def test_parse_verbosity_refuses(text: str) -> None:
    with pytest.raises(ValueError, match="is not a verbosity"):
        parse_verbosity(text)


def test_defaults_are_the_servers(captured: list[tuple[ServerConfig, str]], tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    config, level = captured[0]
    default = ServerConfig()
    assert (config.verbosity, config.logging_format, config.log_file_max_size, config.log_file_max_backups) == \
        (default.verbosity, default.logging_format, default.log_file_max_size, default.log_file_max_backups)
    assert (config.verbosity, config.logging_format, level) == (0, "text", "info")


@pytest.mark.parametrize("spelling", [["-v=3"], ["-v", "3"], ["-v3"], ["--v=3"], ["--v", "3"]])
def test_kube_spellings_of_v(captured: list[tuple[ServerConfig, str]], tmp_path: Path, spelling: list[str]) -> None:
    result = invoke(tmp_path, *spelling)
    assert result.exit_code == 0, result.output
    assert captured[0][0].verbosity == 3


def test_json_format_and_level(captured: list[tuple[ServerConfig, str]], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--logging-format=json", "--log-level", "warning")
    assert result.exit_code == 0, result.output
    assert captured[0][0].logging_format == "json" and captured[0][1] == "warning"


@pytest.mark.parametrize("args, hint, text", [
    (["-v=loud"], "-v", "is not a verbosity"),
    (["--logging-format", "xml"], "--logging-format", "'xml': use text or json"),
    (["--log-level", "loud"], "--log-level", "unknown log level 'loud'"),
    (["--detach", "--log-file-max-size", "-1"], "--log-file-max-size", "is not a size in MB"),
    (["--detach", "--log-file-max-size", "nan"], "--log-file-max-size", "is not a size in MB"),
    (["--detach", "--log-file-max-backups", "-2"], "--log-file-max-backups", "is not a number of files"),
    (["--log-file-max-size", "5"], "--log-file-max-size", "only with --detach"),
    (["--log-file-max-backups", "1"], "--log-file-max-backups", "only with --detach"),
])
def test_bad_values_are_usage_errors(captured: list[tuple[ServerConfig, str]], tmp_path: Path, args: list[str],
                                     hint: str, text: str) -> None:
    result = invoke(tmp_path, *args)
    assert result.exit_code == 2, result.output
    assert says(result, hint) and says(result, text), result.output
    assert captured == []


def test_rotation_flags_with_a_log_file(captured: list[tuple[ServerConfig, str]], tmp_path: Path) -> None:
    """The detached child gets --log-file: there the rotation flags mean something."""
    result = invoke(tmp_path, "--log-file", str(tmp_path / "k.log"), "--log-file-max-size", "0.5",
                    "--log-file-max-backups", "2")
    assert result.exit_code == 0, result.output
    assert (captured[0][0].log_file_max_size, captured[0][0].log_file_max_backups) == (0.5, 2)


def test_child_argv_rebuilds_the_same_config(captured: list[tuple[ServerConfig, str]], tmp_path: Path) -> None:
    flags = LoggingFlags(verbosity="=3", logging_format="json", log_file_max_size=0.25, log_file_max_backups=1)
    original = start_mod.build_config(
        "lg", "memory", "", tmp_path / "root", "127.0.0.1", 0, 7007, [], False, "60s", False, None, False, False,
        False, [], log_flags=flags)
    assert (original.verbosity, original.logging_format, original.log_file_max_size,
            original.log_file_max_backups) == (3, "json", 0.25, 1)
    argv = start_mod.child_argv(original, "60s", "debug")
    assert argv[argv.index("--v") + 1] == "3" and argv[argv.index("--log-level") + 1] == "debug"
    result = CliRunner().invoke(app, ["start", *argv, "--log-file", str(tmp_path / "k.log")])
    assert result.exit_code == 0, result.output
    assert captured[0] == (original, "debug")


def test_default_child_argv_names_no_logging_flag(tmp_path: Path) -> None:
    assert LoggingFlags().args() == []
    assert logging_flags_of(ServerConfig()).args() == []
    config = ServerConfig(verbosity=2)
    assert logging_flags_of(config).args() == ["--v", "2"]
