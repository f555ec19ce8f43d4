"""The kubeconfig builder, reading an instance's files, merging, and `kapi kubeconfig`."""
from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from kapi_cli import kubeconfig as kc
from kapi_cli import state as st
from kapi_cli.main import app

runner = CliRunner()
CA = b"-----BEGIN CERTIFICATE-----\nca\n-----END CERTIFICATE-----\n"
CRT = b"-----BEGIN CERTIFICATE-----\nclient\n-----END CERTIFICATE-----\n"
KEY = b"-----BEGIN PRIVATE KEY-----\nkey\n-----END PRIVATE KEY-----\n"
TOKEN = "s3cr3t-token_value"


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("KAPI_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("KUBECONFIG", raising=False)
    return tmp_path / "home"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "cert").mkdir(parents=True)
    (root / "cert" / "ca.crt").write_bytes(CA)
    (root / "cert" / "client.crt").write_bytes(CRT)
    (root / "cert" / "client.key").write_bytes(KEY)
    (root / "kubectl.token").write_text(TOKEN + "\n")
    return root


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def record(name: str, root: Path, *, secure: int = 8443, insecure: int = 6080, disabled: bool = False) -> None:
    st.write_state(st.new_state(name=name, bind_address="127.0.0.1", secure_port=secure, insecure_port=insecure,
                                backend="file", file_rootpath=root, log_file=None, kubeconfig=None,
                                kubectl_disabled=disabled, pid=999_999))


# -- builder -------------------------------------------------------------------------------------------
def test_builder_token_structure() -> None:
    config = kc.build_kubeconfig("x", "https://127.0.0.1:8443", ca_pem=CA, token=TOKEN)
    assert config["apiVersion"] == "v1" and config["kind"] == "Config"
    assert config["clusters"] == [{"name": "kapi-x", "cluster": {
        "server": "https://127.0.0.1:8443", "certificate-authority-data": b64(CA)}}]
    assert config["users"] == [{"name": "kapi-x", "user": {"token": TOKEN}}]
    assert config["contexts"] == [{"name": "kapi-x", "context": {"cluster": "kapi-x", "user": "kapi-x"}}]
    assert config["current-context"] == "kapi-x"
    assert yaml.safe_load(kc.to_yaml(config)) == config


def test_builder_client_cert_structure() -> None:
    config = kc.build_kubeconfig("x", "https://h:1", ca_pem=CA, client_cert_pem=CRT, client_key_pem=KEY)
    assert config["users"][0]["user"] == {"client-certificate-data": b64(CRT), "client-key-data": b64(KEY)}
    with pytest.raises(ValueError):
        kc.build_kubeconfig("x", "https://h:1", client_cert_pem=CRT)


def test_builder_http_has_no_ca() -> None:
    config = kc.build_kubeconfig("x", "http://127.0.0.1:6080", token=TOKEN)
    assert config["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:6080"}


# -- reading an instance ---------------------------------------------------------------------------------
def test_kubeconfig_for_defaults_to_https_and_token(root: Path) -> None:
    config = kc.kubeconfig_for(kc.Target("x", root, "0.0.0.0", 9443, 9080))
    assert config["clusters"][0]["cluster"] == {"server": "https://127.0.0.1:9443",
                                                "certificate-authority-data": b64(CA)}
    assert config["users"][0]["user"] == {"token": TOKEN}


def test_kubeconfig_for_http_and_client_cert(root: Path) -> None:
    http = kc.kubeconfig_for(kc.Target("x", root, secure_port=0, insecure_port=9080), insecure_http=True)
    assert http["clusters"][0]["cluster"] == {"server": "http://127.0.0.1:9080"}
    cert = kc.kubeconfig_for(kc.Target("x", root), client_cert=True)
    assert cert["users"][0]["user"] == {"client-certificate-data": b64(CRT), "client-key-data": b64(KEY)}


@pytest.mark.parametrize(("target", "options", "message"), [
    ({"secure_port": 0}, {}, "no HTTPS port"),
    ({"insecure_port": 0}, {"insecure_http": True}, "no HTTP port"),
    ({"kubectl_disabled": True}, {}, "--kubectl-disabled"),
    ({}, {"client_cert": True, "insecure_http": True}, "needs HTTPS"),
])
def test_kubeconfig_for_errors(root: Path, target: dict[str, Any], options: dict[str, Any], message: str) -> None:
    with pytest.raises(kc.KubeconfigError, match=message):
        kc.kubeconfig_for(kc.Target("x", root, **target), **options)


def test_kubectl_disabled_still_allows_client_cert(root: Path) -> None:
    config = kc.kubeconfig_for(kc.Target("x", root, kubectl_disabled=True), client_cert=True)
    assert "client-certificate-data" in config["users"][0]["user"]


def test_missing_token_and_ca(root: Path) -> None:
    (root / "kubectl.token").unlink()
    with pytest.raises(kc.KubeconfigError, match="no kubectl token"):
        kc.kubeconfig_for(kc.Target("x", root))
    (root / "cert" / "ca.crt").unlink()
    with pytest.raises(kc.KubeconfigError, match="CA certificate"):
        kc.kubeconfig_for(kc.Target("x", root), client_cert=True)


# -- merging ----------------------------------------------------------------------------------------------
OTHER: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Config",
    "clusters": [{"name": "prod", "cluster": {"server": "https://prod:6443"}},
                 {"name": "kapi-x", "cluster": {"server": "https://old:1"}}],
    "users": [{"name": "admin", "user": {"token": "keep-me"}}],
    "contexts": [{"name": "prod", "context": {"cluster": "prod", "user": "admin", "namespace": "ops"}}],
    "current-context": "prod",
    "preferences": {"colors": True},
    "extensions": [{"name": "x", "extension": {"a": 1}}],
}


def test_merge_adds_and_replaces_only_kapi_entries() -> None:
    new = kc.build_kubeconfig("x", "https://127.0.0.1:1", ca_pem=CA, token=TOKEN)
    merged, set_current = kc.merge_kubeconfig(OTHER, new)
    assert set_current is False and merged["current-context"] == "prod"
    assert merged["clusters"] == [OTHER["clusters"][0], new["clusters"][0]]
    assert merged["users"] == [OTHER["users"][0], new["users"][0]]
    assert merged["contexts"] == [OTHER["contexts"][0], new["contexts"][0]]
    assert merged["preferences"] == OTHER["preferences"] and merged["extensions"] == OTHER["extensions"]


def test_merge_sets_current_context_only_when_unset() -> None:
    new = kc.build_kubeconfig("x", "https://127.0.0.1:1", token=TOKEN)
    merged, set_current = kc.merge_kubeconfig({**OTHER, "current-context": ""}, new)
    assert set_current and merged["current-context"] == "kapi-x"
    merged, set_current = kc.merge_kubeconfig(None, new)
    assert set_current and merged["clusters"] == new["clusters"]
    merged, _ = kc.merge_kubeconfig({"clusters": None, "users": None, "contexts": None}, new)
    assert merged["users"] == new["users"]


def test_merge_is_idempotent() -> None:
    new = kc.build_kubeconfig("x", "https://127.0.0.1:1", token=TOKEN)
    once, _ = kc.merge_kubeconfig(OTHER, new)
    twice, _ = kc.merge_kubeconfig(once, new)
    assert once == twice


# -- the command ---------------------------------------------------------------------------------------
def test_command_prints_yaml_for_recorded_instance(root: Path) -> None:
    record("x", root, secure=9443)
    result = runner.invoke(app, ["kubeconfig", "--name", "x"])
    assert result.exit_code == 0, result.output
    config = yaml.safe_load(result.stdout)
    assert config["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:9443"
    assert config["users"][0]["user"]["token"] == TOKEN


def test_command_by_root_and_output_file(root: Path, tmp_path: Path) -> None:
    record("x", root, secure=9443)
    out = tmp_path / "out" / "kc.yaml"
    result = runner.invoke(app, ["kubeconfig", "--file-rootpath", str(root), "--client-cert", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert result.stdout == ""
    config = yaml.safe_load(out.read_text())
    assert config["current-context"] == "kapi-x"
    assert "client-key-data" in config["users"][0]["user"]


def test_command_root_without_instance_assumes_defaults(root: Path) -> None:
    result = runner.invoke(app, ["kubeconfig", "--file-rootpath", str(root)])
    assert result.exit_code == 0, result.output
    assert yaml.safe_load(result.stdout)["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:8443"
    assert "no recorded instance" in result.stderr
    result = runner.invoke(app, ["kubeconfig", "--file-rootpath", str(root), "--server", "https://kapi.test:1"])
    assert yaml.safe_load(result.stdout)["clusters"][0]["cluster"]["server"] == "https://kapi.test:1"


def test_command_unknown_instance() -> None:
    result = runner.invoke(app, ["kubeconfig", "--name", "ghost"])
    assert result.exit_code == 1 and "no instance named 'ghost'" in result.stderr


def test_command_kubectl_disabled(root: Path) -> None:
    record("x", root, disabled=True)
    result = runner.invoke(app, ["kubeconfig", "--name", "x"])
    assert result.exit_code == 1 and "--kubectl-disabled" in result.stderr
    assert runner.invoke(app, ["kubeconfig", "--name", "x", "--client-cert"]).exit_code == 0


def test_command_merge_into_kubeconfig_env(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record("x", root)
    target = tmp_path / "kube" / "config"
    target.parent.mkdir()
    target.write_text(yaml.safe_dump(OTHER))
    monkeypatch.setenv("KUBECONFIG", os.pathsep.join([str(target), str(tmp_path / "second")]))
    result = runner.invoke(app, ["kubeconfig", "--name", "x", "--merge"])
    assert result.exit_code == 0, result.output
    assert "current-context unchanged" in result.stderr
    merged = yaml.safe_load(target.read_text())
    assert [c["name"] for c in merged["clusters"]] == ["prod", "kapi-x"]
    assert merged["clusters"][1]["cluster"]["server"] == "https://127.0.0.1:8443"
    assert merged["users"][0] == OTHER["users"][0] and merged["current-context"] == "prod"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert not (tmp_path / "second").exists()


def test_command_merge_into_home_kube_config(root: Path, tmp_path: Path) -> None:
    record("x", root)
    result = runner.invoke(app, ["kubeconfig", "--name", "x", "--merge"])
    assert result.exit_code == 0, result.output
    assert "current-context set to kapi-x (none was set)" in result.stderr
    config = yaml.safe_load((tmp_path / "user" / ".kube" / "config").read_text())
    assert config["current-context"] == "kapi-x"


def test_command_merge_refuses_broken_file(root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    record("x", root)
    target = tmp_path / "broken"
    target.write_text("clusters: [unclosed\n")
    monkeypatch.setenv("KUBECONFIG", str(target))
    result = runner.invoke(app, ["kubeconfig", "--name", "x", "--merge"])
    assert result.exit_code == 1 and "not valid YAML" in result.stderr
    assert target.read_text() == "clusters: [unclosed\n"


def test_shipped_template_and_token_file() -> None:
    from importlib import resources

    configs = resources.files("kapi_configs")
    template = configs.joinpath("kubeconfig").read_text()
    filled = (template.replace("${KAPI_NAME}", "x").replace("${KAPI_SERVER}", "https://127.0.0.1:8443")
              .replace("${KAPI_CA_DATA}", b64(CA)).replace("${KAPI_TOKEN}", TOKEN))
    assert yaml.safe_load(filled) == kc.build_kubeconfig("x", "https://127.0.0.1:8443", ca_pem=CA, token=TOKEN)
    from kapi.auth.token_file import parse_token_csv

    users = {user.name: user for _, user in parse_token_csv(configs.joinpath("token.csv").read_text())}
    assert users["alice"].groups == ("developers", "editors")
