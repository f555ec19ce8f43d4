"""`kapi start --simulate*`: parsing into ServerConfig, usage errors, and the detached child's argv
rebuilding the same config (no server is started)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kapi_cli import start as start_mod
from kapi_cli.flags import normalize_bool_flags
from kapi_cli.main import app
from kapi_cli.simulate_flags import DEFAULT_CAPACITY, SimulateFlags, parse_capacity, simulate_flags_of
from kapi.config import ServerConfig

BASE: dict[str, Any] = dict(
    name="default", backend="memory", etcd_servers="", bind_address="127.0.0.1", secure_port=0,
    insecure_port=7003, resources=[], examples=False, request_timeout="60s", unrestricted_update=False,
    token_auth_file=None, kubectl_disabled=False, kubectl_ephemeral_token=False, authn_allow_localhost=False,
    san=[],
)


def build(root: Path, flags: SimulateFlags = SimulateFlags()) -> ServerConfig:
    return start_mod.build_config(file_rootpath=root, **BASE, simulation=flags)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ServerConfig]:
    """`kapi start` parses and validates, then hands the config over here instead of serving."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[ServerConfig] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, level, log: calls.append(config))
    return calls


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, normalize_bool_flags(
        ["start", "--backend", "memory", "--file-rootpath", str(tmp_path / "root"), *args]))


def test_off_by_default_with_servers_defaults(tmp_path: Path) -> None:
    config = build(tmp_path)
    default = ServerConfig()
    assert config.simulate is False
    assert (config.simulate_nodes, config.simulate_speed, config.simulate_manual_clock,
            config.simulate_node_capacity) == (default.simulate_nodes, default.simulate_speed,
                                               default.simulate_manual_clock, default.simulate_node_capacity)
    assert config.simulate_node_capacity == DEFAULT_CAPACITY


def test_every_flag_reaches_the_config(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--simulate", "--simulate-nodes", "1", "--simulate-speed", "2.5",
                    "--simulate-manual-clock", "--simulate-node-capacity", "cpu=1, memory=1024Mi,example.com/gpu=2")
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.simulate is True and config.simulate_manual_clock is True
    assert (config.simulate_nodes, config.simulate_speed) == (1, 2.5)
    # Named resources replace the defaults (canonically: 1024Mi is 1Gi), the rest keep them.
    assert config.simulate_node_capacity == (("cpu", "1"), ("memory", "1Gi"), ("pods", "110"),
                                             ("example.com/gpu", "2"))


@pytest.mark.parametrize("spelling", ["--simulate=true", "--simulate=1", "--simulate"])
def test_go_style_booleans(captured: list[ServerConfig], tmp_path: Path, spelling: str) -> None:
    result = invoke(tmp_path, spelling, "--simulate-manual-clock=true")
    assert result.exit_code == 0, result.output
    assert captured[0].simulate is True and captured[0].simulate_manual_clock is True


@pytest.mark.parametrize(("text", "message"), [
    ("cpu", "is not NAME=QUANTITY"),
    ("cpu=", "is not NAME=QUANTITY"),
    ("=4", "is not NAME=QUANTITY"),
    ("cpu=lots", "quantities must match"),
    ("memory=1Qi", "quantities must match"),
    ("cpu=-1", "cannot be negative"),
    ("cpu=1,cpu=2", "cpu is given twice"),
    ("Bad Name=1", "is not a resource name"),
])
def test_bad_capacity(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_capacity(text)
    with pytest.raises(typer.BadParameter, match=message) as caught:
        SimulateFlags(simulate=True, simulate_node_capacity=text).checked()
    assert caught.value.param_hint == "--simulate-node-capacity"


def test_capacity_accepts_kube_quantities() -> None:
    assert dict(parse_capacity("cpu=500m,memory=0.5Gi,pods=10,ephemeral-storage=100G")) == {
        "cpu": "500m", "memory": "512Mi", "pods": "10", "ephemeral-storage": "100G"}
    assert parse_capacity("") == DEFAULT_CAPACITY


@pytest.mark.parametrize(("flags", "hint", "message"), [
    (SimulateFlags(simulate=True, simulate_nodes=-1), "--simulate-nodes", "is not a number of nodes"),
    (SimulateFlags(simulate=True, simulate_nodes=100000), "--simulate-nodes", "is not a number of nodes"),
    (SimulateFlags(simulate=True, simulate_speed=0), "--simulate-speed", "is not a positive speed"),
    (SimulateFlags(simulate=True, simulate_speed=-2), "--simulate-speed", "is not a positive speed"),
    (SimulateFlags(simulate=True, simulate_speed=float("inf")), "--simulate-speed", "is not a positive speed"),
    (SimulateFlags(simulate_nodes=5), "--simulate-nodes", "only with --simulate"),
    (SimulateFlags(simulate_manual_clock=True), "--simulate-manual-clock", "only with --simulate"),
    (SimulateFlags(simulate_node_capacity="cpu=1"), "--simulate-node-capacity", "only with --simulate"),
])
def test_usage_errors(flags: SimulateFlags, hint: str, message: str) -> None:
    with pytest.raises(typer.BadParameter, match=message) as caught:
        flags.checked()
    assert caught.value.param_hint == hint


def test_the_cli_reports_a_usage_error(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--simulate", "--simulate-speed", "0")
    assert result.exit_code == 2
    assert "--simulate-speed" in result.output and not captured


def test_zero_nodes_is_allowed(tmp_path: Path) -> None:
    """A cluster without nodes: every pod stays Pending, Unschedulable (kube's behaviour, worth testing)."""
    assert build(tmp_path, SimulateFlags(simulate=True, simulate_nodes=0)).simulate_nodes == 0


@pytest.mark.parametrize("flags", [
    SimulateFlags(),
    SimulateFlags(simulate=True),
    SimulateFlags(simulate=True, simulate_nodes=1, simulate_speed=0.25, simulate_manual_clock=True,
                  simulate_node_capacity="cpu=1,memory=2Gi"),
])
def test_child_argv_rebuilds_the_same_config(captured: list[ServerConfig], tmp_path: Path,
                                             flags: SimulateFlags) -> None:
    original = build(tmp_path / "root", flags)
    argv = start_mod.child_argv(original, "60s", "info")
    assert ("--simulate" in argv) is flags.simulate
    result = CliRunner().invoke(app, ["start", *argv])
    assert result.exit_code == 0, result.output
    assert captured[0] == original


def test_flags_of_a_config_give_back_only_what_differs(tmp_path: Path) -> None:
    assert simulate_flags_of(build(tmp_path)).args() == []
    config = build(tmp_path, SimulateFlags(simulate=True, simulate_nodes=2, simulate_node_capacity="pods=5"))
    assert simulate_flags_of(config).args() == [
        "--simulate", "--simulate-nodes", "2", "--simulate-node-capacity", "cpu=32,memory=256Gi,pods=5"]


def test_detach_hands_the_child_the_simulation(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: list[tuple[ServerConfig, list[str]]] = []
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    def start_detached(config: ServerConfig, args: list[str], timeout: float) -> int:
        seen.append((config, args))
        return 0

    monkeypatch.setattr(start_mod, "start_detached", start_detached)
    result = invoke(tmp_path, "--detach", "--simulate", "--simulate-manual-clock", "--simulate-nodes", "4")
    assert result.exit_code == 0, result.output
    ((config, args),) = seen
    assert config.simulate and config.simulate_manual_clock and config.simulate_nodes == 4
    assert args == start_mod.child_argv(config, "60s", "info")
    assert {"--simulate", "--simulate-manual-clock"} <= set(args)
