"""kapi_certs.bundle.ensure_certs: creates the PKI, keeps what is valid byte for byte, renews what is
expiring, lacks a SAN, names another identity or hangs off another CA, and regenerates on force."""
from __future__ import annotations

import stat
import subprocess
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from kapi_certs import pki
from kapi_certs.bundle import CertError, CertReport, cert_info, ensure_certs, load_ca, password_path
from kapi_certs.files import write_private, write_public
from kapi_certs.layout import DEFAULT_CLIENT_GROUPS, DEFAULT_CLIENT_USER, CertPaths

ALL = ["ca.crt", "ca.key", "server.crt", "server.key", "client.crt", "client.key",
       "client.p12.password", "client.p12", "front-proxy-ca.crt", "front-proxy-ca.key",
       "front-proxy-client.crt", "front-proxy-client.key"]
OpenSSL = Callable[..., "subprocess.CompletedProcess[str]"]


def snapshot(paths: CertPaths) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in paths.dir.iterdir() if not p.name.startswith(".")}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


@pytest.fixture
def made(tmp_path: Path) -> CertReport:
    return ensure_certs(tmp_path / "cert")


def test_first_run_creates_every_file(made: CertReport) -> None:
    assert made.names("created") == ALL and made.changed
    paths = made.paths
    ca = cert(paths.ca_crt)
    for leaf in (paths.server_crt, paths.client_crt):
        assert pki.is_signed_by(cert(leaf), ca)
    assert pki.client_identity(cert(paths.client_crt)) == (DEFAULT_CLIENT_USER, list(DEFAULT_CLIENT_GROUPS))
    assert {s.lower() for s in pki.default_sans()} <= set(cert_info(paths.server_crt).sans)


def test_secret_files_are_0600_and_the_directory_0700(made: CertReport) -> None:
    paths = made.paths
    for secret in (paths.ca_key, paths.server_key, paths.client_key, paths.client_p12, made.password_path):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret.name
    assert stat.S_IMODE(paths.dir.stat().st_mode) == 0o700


def test_second_run_keeps_every_byte(made: CertReport) -> None:
    before = snapshot(made.paths)
    again = ensure_certs(made.paths.dir)
    assert again.names("kept") == ALL and not again.changed
    assert snapshot(made.paths) == before
    assert again.p12_password == made.p12_password


def test_password_is_not_in_repr(made: CertReport) -> None:
    assert made.p12_password not in repr(made)
    assert password_path(made.paths).read_text().strip() == made.p12_password


def test_openssl_verifies_the_written_chain(made: CertReport, openssl: OpenSSL) -> None:
    p = made.paths
    for leaf, purpose in ((p.server_crt, "sslserver"), (p.client_crt, "sslclient")):
        out = openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", p.ca_crt, leaf)
        assert out.returncode == 0, out.stderr


def test_extra_san_renews_only_the_serving_cert_and_keeps_old_names(made: CertReport) -> None:
    before = snapshot(made.paths)
    report = ensure_certs(made.paths.dir, extra_sans=["kapi.test", "10.9.8.7"])
    assert report.names("renewed") == ["server.crt", "server.key"]
    assert "missing SAN kapi.test, 10.9.8.7" == report.entry("server.crt").reason
    assert {"kapi.test", "10.9.8.7"} <= set(cert_info(made.paths.server_crt).sans)
    after = snapshot(made.paths)
    assert {k for k in after if after[k] != before[k]} == {"server.crt", "server.key"}
    # Asking for another name later keeps the earlier extras (no flip-flopping between runs) ...
    ensure_certs(made.paths.dir, extra_sans=["other.test"])
    assert {"kapi.test", "other.test"} <= set(cert_info(made.paths.server_crt).sans)
    # ... and asking for none of them keeps the certificate as it is.
    assert ensure_certs(made.paths.dir).names("renewed") == []


def test_serving_cert_near_expiry_is_renewed(made: CertReport) -> None:
    ca, ca_key = load_ca(made.paths)
    short, key = pki.issue_serving_cert(ca, ca_key, pki.default_sans(), days=10)
    write_private(made.paths.server_key, pki.key_pem(key))
    write_public(made.paths.server_crt, pki.cert_pem(short))
    report = ensure_certs(made.paths.dir)
    assert report.names("renewed") == ["server.crt", "server.key"]
    assert "within 30 days" in report.entry("server.crt").reason
    assert cert_info(made.paths.server_crt).days_left > 300


def test_client_cert_near_expiry_renews_it_and_the_p12(made: CertReport) -> None:
    ca, ca_key = load_ca(made.paths)
    short, key = pki.issue_client_cert(ca, ca_key, DEFAULT_CLIENT_USER, DEFAULT_CLIENT_GROUPS, days=10)
    write_private(made.paths.client_key, pki.key_pem(key))
    write_public(made.paths.client_crt, pki.cert_pem(short))
    report = ensure_certs(made.paths.dir)
    assert report.names("renewed") == ["client.crt", "client.key", "client.p12"]
    loaded = pkcs12.load_pkcs12(made.paths.client_p12.read_bytes(), made.p12_password.encode())
    assert loaded.cert is not None and loaded.cert.certificate == cert(made.paths.client_crt)


def test_expiring_ca_regenerates_everything(made: CertReport) -> None:
    ca, key = pki.make_ca(days=10)
    write_private(made.paths.ca_key, pki.key_pem(key))
    write_public(made.paths.ca_crt, pki.cert_pem(ca))
    report = ensure_certs(made.paths.dir)
    # the front proxy hangs off its own CA, which is still good
    assert report.names("renewed") == [n for n in ALL if n != "client.p12.password" and "front-proxy" not in n]
    assert report.entry("server.crt").reason == "CA regenerated"
    new_ca = cert(made.paths.ca_crt)
    assert new_ca != ca and pki.is_signed_by(cert(made.paths.server_crt), new_ca)


def test_unreadable_or_mismatched_ca_regenerates_everything(made: CertReport) -> None:
    made.paths.ca_key.write_bytes(b"garbage")
    with pytest.raises(CertError, match="unreadable"):
        load_ca(made.paths)
    assert "ca.key unreadable" in ensure_certs(made.paths.dir).entry("ca.crt").reason
    write_private(made.paths.ca_key, pki.key_pem(pki.new_key()))
    report = ensure_certs(made.paths.dir)
    assert report.entry("ca.crt").reason == "ca.key does not match ca.crt"
    assert report.entry("client.crt").action == "renewed"


def test_leaf_signed_by_another_ca_is_renewed(made: CertReport) -> None:
    other_ca, other_key = pki.make_ca()
    stray, key = pki.issue_serving_cert(other_ca, other_key, pki.default_sans())
    write_private(made.paths.server_key, pki.key_pem(key))
    write_public(made.paths.server_crt, pki.cert_pem(stray))
    report = ensure_certs(made.paths.dir)
    assert report.entry("server.crt").reason == "not signed by the current CA"
    assert pki.is_signed_by(cert(made.paths.server_crt), cert(made.paths.ca_crt))


def test_other_user_or_groups_renew_the_client_cert(made: CertReport) -> None:
    report = ensure_certs(made.paths.dir, client_user="alice", client_groups=["dev", "ops"])
    assert report.names("renewed") == ["client.crt", "client.key", "client.p12"]
    assert pki.client_identity(cert(made.paths.client_crt)) == ("alice", ["dev", "ops"])
    again = ensure_certs(made.paths.dir, client_user="alice", client_groups=["ops", "dev"])
    assert not again.changed  # group order does not matter
    assert "groups" in ensure_certs(made.paths.dir, client_user="alice", client_groups=["dev"]) \
        .entry("client.crt").reason


def test_force_regenerates_everything_but_the_password(made: CertReport) -> None:
    before = snapshot(made.paths)
    report = ensure_certs(made.paths.dir, force=True)
    assert report.names("kept") == ["client.p12.password"]
    assert report.entry("ca.crt").reason == "forced"
    after = snapshot(made.paths)
    assert all(after[n] != before[n] for n in ALL if n != "client.p12.password")
    assert report.p12_password == made.p12_password


def test_force_drops_san_extras_and_keeps_only_what_is_asked(made: CertReport) -> None:
    ensure_certs(made.paths.dir, extra_sans=["old.test"])
    ensure_certs(made.paths.dir, extra_sans=["new.test"], force=True)
    sans = cert_info(made.paths.server_crt).sans
    assert "new.test" in sans and "old.test" not in sans


def test_given_password_rewrites_the_p12_and_is_stored(made: CertReport, openssl: OpenSSL) -> None:
    report = ensure_certs(made.paths.dir, p12_password="correct horse")
    assert report.names("renewed") == ["client.p12.password", "client.p12"]
    assert report.entry("client.p12").reason == "password changed"
    assert report.p12_password == "correct horse"
    p12 = made.paths.client_p12
    assert openssl("pkcs12", "-in", p12, "-passin", "pass:correct horse", "-nokeys").returncode == 0
    assert openssl("pkcs12", "-in", p12, "-passin", f"pass:{made.p12_password}", "-nokeys").returncode != 0
    # Later runs without a password reuse the stored one and keep the p12.
    later = ensure_certs(made.paths.dir)
    assert later.p12_password == "correct horse" and not later.changed


def test_password_with_outer_spaces_survives_a_rerun(made: CertReport) -> None:
    ensure_certs(made.paths.dir, p12_password=" spaced ")
    later = ensure_certs(made.paths.dir)
    assert later.p12_password == " spaced " and not later.changed


def test_lost_password_file_gets_a_new_password_and_p12(made: CertReport) -> None:
    made.password_path.unlink()
    report = ensure_certs(made.paths.dir)
    assert report.p12_password != made.p12_password
    assert report.entry("client.p12").reason == "does not open with the password"
    pkcs12.load_pkcs12(made.paths.client_p12.read_bytes(), report.p12_password.encode())


def test_missing_p12_is_rebuilt_alone(made: CertReport) -> None:
    made.paths.client_p12.unlink()
    report = ensure_certs(made.paths.dir)
    assert report.names("created") == ["client.p12"] and report.names("renewed") == []


@pytest.mark.parametrize("kwargs", [{"extra_sans": ["no spaces"]}, {"client_user": ""}, {"p12_password": ""},
                                    {"p12_password": "two\nlines"}])
def test_bad_input_fails_before_anything_is_written(tmp_path: Path, kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ensure_certs(tmp_path / "cert", **kwargs)  # type: ignore[arg-type]
    assert not (tmp_path / "cert").exists()


def test_front_proxy_client_is_signed_by_its_own_ca(made: CertReport) -> None:
    """The aggregator's identity may assert any user: it must not be a certificate kapi's CA signed."""
    paths = made.paths
    proxy = x509.load_pem_x509_certificate(paths.front_proxy_client_crt.read_bytes())
    own_ca = x509.load_pem_x509_certificate(paths.front_proxy_ca_crt.read_bytes())
    main_ca = x509.load_pem_x509_certificate(paths.ca_crt.read_bytes())
    assert pki.is_signed_by(proxy, own_ca) and not pki.is_signed_by(proxy, main_ca)
    assert pki.client_identity(proxy) == ("front-proxy-client", [])
