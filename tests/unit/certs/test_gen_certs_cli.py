"""`kapi gen-certs` through Typer's CliRunner, on an app built here around the command function."""
from __future__ import annotations

from pathlib import Path

import pytest
import typer
from cryptography import x509
from typer.testing import CliRunner

from kapi_certs.bundle import cert_info
from kapi_certs.layout import CertPaths
from kapi_certs.pki import client_identity
from kapi_cli.gen_certs import gen_certs

app = typer.Typer()
app.command("gen-certs")(gen_certs)


@app.callback()
def _group() -> None:
    """Keeps `gen-certs` a subcommand, as in the real CLI."""


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def _run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, ["gen-certs", *args], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_creates_the_pki_and_prints_a_table_without_secrets(runner: CliRunner, tmp_path: Path) -> None:
    out = _run(runner, "--file-rootpath", str(tmp_path), "--san", "kapi.test", "--san", "10.1.2.3",
               "--client-user", "alice", "--client-group", "dev", "--client-group", "ops")
    paths = CertPaths(tmp_path / "cert")
    assert "server.crt" in out and "created" in out and "kapi.test" in out
    assert {"kapi.test", "10.1.2.3"} <= set(cert_info(paths.server_crt).sans)
    client = x509.load_pem_x509_certificate(paths.client_crt.read_bytes())
    assert client_identity(client) == ("alice", ["dev", "ops"])
    password = (paths.dir / "client.p12.password").read_text().strip()
    assert password not in out and "PRIVATE KEY" not in out


def test_rerun_keeps_and_show_password_prints_it(runner: CliRunner, tmp_path: Path) -> None:
    _run(runner, "--file-rootpath", str(tmp_path), "--p12-password", "hunter22")
    out = _run(runner, "--file-rootpath", str(tmp_path), "--show-password")
    assert "created" not in out and "renewed" not in out and "kept" in out
    assert "hunter22" in out


def test_force_renews(runner: CliRunner, tmp_path: Path) -> None:
    _run(runner, "--file-rootpath", str(tmp_path))
    out = _run(runner, "--file-rootpath", str(tmp_path), "--force")
    assert "renewed" in out and "forced" in out


def test_bad_san_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["gen-certs", "--file-rootpath", str(tmp_path), "--san", "not a name"])
    assert result.exit_code == 2
    assert not (tmp_path / "cert").exists()
