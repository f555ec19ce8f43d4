"""`kapi start --plugin/--admission-plugins/--apiexts-prefix`: parsing into ServerConfig, rejection of bad
values as usage errors, and the detached child's argv rebuilding the same config (no server is started).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from kapi_cli import start as start_mod
from kapi_cli.flags import normalize_bool_flags
from kapi_cli.main import app
from kapi_cli.plugin_flags import PluginFlags
from kapi.config import EXAMPLE_PLUGINS, ServerConfig

BASE: dict[str, Any] = dict(
    name="default", backend="file", etcd_servers="", bind_address="127.0.0.1", secure_port=8443,
    insecure_port=6080, resources=[], examples=True, request_timeout="60s", unrestricted_update=False,
    token_auth_file=None, kubectl_disabled=False, kubectl_ephemeral_token=False, authn_allow_localhost=False,
    san=[],
)


def build(tmp_path: Path, flags: PluginFlags = PluginFlags(), **changes: Any) -> ServerConfig:
    return start_mod.build_config(file_rootpath=tmp_path, **{**BASE, **changes}, extensions=flags)


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ServerConfig]:
    """`kapi start` parses and validates, then hands over here instead of serving."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    calls: list[ServerConfig] = []
    monkeypatch.setattr(start_mod, "serve_foreground", lambda config, level, log: calls.append(config))
    return calls


def invoke(tmp_path: Path, *args: str) -> Any:
    return CliRunner().invoke(app, normalize_bool_flags(["start", f"--file-rootpath={tmp_path / 'root'}", *args]))


# -- defaults -----------------------------------------------------------------------------------------------------
def test_defaults(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path)
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.plugins == ()
    assert config.admission_plugins is None  # every known plugin, kube's order
    assert config.apiexts_prefix == "/wukong"
    assert config.plugin_modules == EXAMPLE_PLUGINS


def test_no_examples_loads_no_example_plugins(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--no-examples", "--plugin", "my.plugin")
    assert result.exit_code == 0, result.output
    assert captured[0].plugin_modules == ("my.plugin",)


def test_config_defaults_match_the_flags() -> None:
    config = ServerConfig()
    assert (config.plugins, config.admission_plugins, config.apiexts_prefix) == ((), None, "/wukong")


# -- --plugin -----------------------------------------------------------------------------------------------------
def test_plugin_is_repeatable_and_keeps_order(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--plugin", "b.second", "--plugin", "a_first", "--plugin=pkg.sub.mod")
    assert result.exit_code == 0, result.output
    (config,) = captured
    assert config.plugins == ("b.second", "a_first", "pkg.sub.mod")
    assert config.plugin_modules == EXAMPLE_PLUGINS + ("b.second", "a_first", "pkg.sub.mod")


@pytest.mark.parametrize("module", ["", "my-plugin", "1abc", "a..b", ".relative", "pkg.", "a/b", "a b",
                                    "pkg.mod:plugin", "a.1b"])
def test_bad_module_names_are_rejected(tmp_path: Path, module: str) -> None:
    with pytest.raises(typer.BadParameter, match="is not a Python module name") as caught:
        build(tmp_path, PluginFlags(plugins=("ok.module", module)))
    assert caught.value.param_hint == "--plugin"


def test_bad_module_name_on_the_command_line_is_a_usage_error(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--plugin", "not-a-module")
    assert result.exit_code == 2
    assert "'not-a-module' is not a Python module name" in " ".join(result.output.split())
    assert "--plugin" in result.output
    assert captured == []


@pytest.mark.parametrize("module", ["a", "_private", "pkg.mod", "Pkg.Mod2", "a.b.c.d_e"])
def test_good_module_names(tmp_path: Path, module: str) -> None:
    assert build(tmp_path, PluginFlags(plugins=(module,))).plugins == (module,)


# -- --admission-plugins ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("NamespaceLifecycle", ("NamespaceLifecycle",)),
    ("JenkinsServiceLimit,NamespaceLifecycle", ("JenkinsServiceLimit", "NamespaceLifecycle")),
    (" NamespaceLifecycle , JenkinsServiceLimit ,", ("NamespaceLifecycle", "JenkinsServiceLimit")),
    ("", ()),
    (",", ()),
])
def test_admission_plugins_parse_in_order(captured: list[ServerConfig], tmp_path: Path, value: str,
                                          expected: tuple[str, ...]) -> None:
    result = invoke(tmp_path, "--admission-plugins", value)
    assert result.exit_code == 0, result.output
    assert captured[0].admission_plugins == expected


def test_admission_plugins_equals_form(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--admission-plugins=MutatingAdmissionWebhook,ValidatingAdmissionWebhook")
    assert result.exit_code == 0, result.output
    assert captured[0].admission_plugins == ("MutatingAdmissionWebhook", "ValidatingAdmissionWebhook")


def test_unknown_admission_plugin_names_are_checked_at_start_not_parse(captured: list[ServerConfig],
                                                                       tmp_path: Path) -> None:
    """Plugin modules add admission names, so the CLI cannot know them all: the server refuses (ConfigError)."""
    result = invoke(tmp_path, "--admission-plugins", "Whatever")
    assert result.exit_code == 0, result.output
    assert captured[0].admission_plugins == ("Whatever",)


# -- --apiexts-prefix ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("value", "expected"), [
    ("/wukong", "/wukong"),
    ("/shop", "/shop"),
    ("shop", "/shop"),
    ("/shop/", "/shop"),
    ("//shop//", "/shop"),
    ("/ext/v1", "/ext/v1"),
    ("/my-ext_1.0~x", "/my-ext_1.0~x"),
])
def test_apiexts_prefix_is_normalized(captured: list[ServerConfig], tmp_path: Path, value: str,
                                      expected: str) -> None:
    result = invoke(tmp_path, "--apiexts-prefix", value)
    assert result.exit_code == 0, result.output
    assert captured[0].apiexts_prefix == expected


@pytest.mark.parametrize("value", ["/", "", "//", "/api", "/apis", "api/", "/apis/", "/has space", "/a?b",
                                   "/a#b", "/ü"])
def test_prefixes_that_cannot_hold_routes_are_rejected(tmp_path: Path, value: str) -> None:
    with pytest.raises(typer.BadParameter, match="cannot hold plugin routes") as caught:
        build(tmp_path, PluginFlags(apiexts_prefix=value))
    assert caught.value.param_hint == "--apiexts-prefix"


@pytest.mark.parametrize("value", ["/apis/hello.zeng.dev", "/api/v1", "/readyz", "/version", "/openapi"])
def test_prefixes_that_would_shadow_kubernetes_paths_are_rejected(tmp_path: Path, value: str) -> None:
    """The mount is consulted before any Kubernetes path (endpoints/router.py): a prefix under /api, /apis,
    /openapi or on a health or version path would hide that API (e.g. /apis/hello.zeng.dev answers
    FastAPI's 404 for every Foo request)."""
    with pytest.raises(typer.BadParameter, match="cannot hold plugin routes"):
        build(tmp_path, PluginFlags(apiexts_prefix=value))


def test_bad_prefix_on_the_command_line_is_a_usage_error(captured: list[ServerConfig], tmp_path: Path) -> None:
    result = invoke(tmp_path, "--apiexts-prefix", "/apis")
    assert result.exit_code == 2
    assert "cannot hold plugin routes" in " ".join(result.output.split())
    assert captured == []


# -- PluginFlags on its own -----------------------------------------------------------------------------------
def test_checked_gives_the_serverconfig_fields() -> None:
    fields = PluginFlags(("a.b",), "X, Y", "shop/").checked()
    assert fields == {"plugins": ("a.b",), "admission_plugins": ("X", "Y"), "apiexts_prefix": "/shop"}
    assert set(fields) <= set(ServerConfig.__dataclass_fields__)


@pytest.mark.parametrize("flags", [
    PluginFlags(),
    PluginFlags(("a.b", "c"), "NamespaceLifecycle,JenkinsServiceLimit", "/shop"),
    PluginFlags((), "", "/x/y"),
])
def test_args_parse_back_to_the_same_fields(flags: PluginFlags, captured: list[ServerConfig],
                                            tmp_path: Path) -> None:
    result = invoke(tmp_path, *flags.args())
    assert result.exit_code == 0, result.output
    config = captured[0]
    assert {"plugins": config.plugins, "admission_plugins": config.admission_plugins,
            "apiexts_prefix": config.apiexts_prefix} == flags.checked()


# -- child_argv: the detached start ------------------------------------------------------------------------------
@pytest.mark.parametrize("flags", [
    PluginFlags(),
    PluginFlags(("pkg.one", "two"), None, "/shop"),
    PluginFlags(("pkg.one",), "NamespaceLifecycle", "ext/v1/"),
    PluginFlags((), "", "/wukong"),
    PluginFlags((), "JenkinsServiceLimit, NamespaceLifecycle", "/wukong"),
])
def test_child_argv_rebuilds_the_same_config(captured: list[ServerConfig], tmp_path: Path,
                                             flags: PluginFlags) -> None:
    original = build(tmp_path / "root", flags, name="px", secure_port=0, insecure_port=7001)
    argv = start_mod.child_argv(original, "60s", "info")
    assert "--detach" not in argv
    result = CliRunner().invoke(app, ["start", *argv])
    assert result.exit_code == 0, result.output
    assert captured[0] == original
    assert (captured[0].plugins, captured[0].admission_plugins, captured[0].apiexts_prefix) == (
        original.plugins, original.admission_plugins, original.apiexts_prefix)


def test_child_argv_names_every_plugin_flag(tmp_path: Path) -> None:
    config = build(tmp_path, PluginFlags(("a.b", "c"), "NamespaceLifecycle", "/shop"))
    argv = start_mod.child_argv(config, "60s", "info")
    assert argv[argv.index("--apiexts-prefix") + 1] == "/shop"
    assert argv[argv.index("--admission-plugins") + 1] == "NamespaceLifecycle"
    plugins = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--plugin"]
    assert plugins == ["a.b", "c"]
    default = start_mod.child_argv(build(tmp_path), "60s", "info")
    assert "--admission-plugins" not in default and "--plugin" not in default


def test_detached_start_passes_the_plugin_flags_to_the_child(monkeypatch: pytest.MonkeyPatch,
                                                             tmp_path: Path) -> None:
    """`kapi start --detach` hands the child exactly child_argv(config): the plugin flags included."""
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    seen: list[tuple[ServerConfig, list[str]]] = []
    monkeypatch.setattr(start_mod, "start_detached", lambda config, args, timeout: seen.append((config, args)) or 0)
    result = invoke(tmp_path, "--detach", "--plugin", "pkg.mod", "--admission-plugins", "NamespaceLifecycle",
                    "--apiexts-prefix", "shop")
    assert result.exit_code == 0, result.output
    ((config, args),) = seen
    assert args == start_mod.child_argv(config, "60s", "info")
    assert ["--plugin", "pkg.mod"] == args[args.index("--plugin"):args.index("--plugin") + 2]
    assert config.apiexts_prefix == "/shop" and config.admission_plugins == ("NamespaceLifecycle",)
