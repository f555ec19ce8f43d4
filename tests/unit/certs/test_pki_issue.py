"""kapi_certs.pki: CA, serving and client certificates chain to the CA, carry the right names, and a p12
that OpenSSL 3 opens with its password and refuses without it."""
from __future__ import annotations

import ipaddress
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Callable

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509 import verification as v
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kapi_certs import pki

Pair = tuple[x509.Certificate, pki.PrivateKey]


def _write(tmp_path: Path, name: str, cert: x509.Certificate) -> Path:
    path = tmp_path / name
    path.write_bytes(pki.cert_pem(cert))
    return path


def _eku(cert: x509.Certificate) -> list[x509.ObjectIdentifier]:
    return list(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


def test_ca_is_a_self_signed_ca_with_rsa_2048(ca: Pair) -> None:
    cert, key = ca
    assert pki.is_ca(cert) and pki.is_signed_by(cert, cert)
    assert key.key_size == 2048 and pki.key_matches(cert, key)
    assert cert.subject.rfc4514_string() == "CN=kapi-ca"
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650


def test_serving_cert_has_dns_and_ip_sans_and_server_auth(ca: Pair) -> None:
    cert, key = pki.issue_serving_cert(*ca, ["localhost", "127.0.0.1", "[::1]", "Kapi.Example.COM", "10.0.0.7"])
    assert pki.key_matches(cert, key) and pki.is_signed_by(cert, ca[0]) and not pki.is_ca(cert)
    assert pki.san_strings(pki.cert_sans(cert)) == ["localhost", "127.0.0.1", "::1", "kapi.example.com", "10.0.0.7"]
    ips = [n for n in pki.cert_sans(cert) if isinstance(n, x509.IPAddress)]
    assert ipaddress.ip_address("::1") in [n.value for n in ips]
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "kapi"
    assert _eku(cert) == [ExtendedKeyUsageOID.SERVER_AUTH]


def test_serving_cert_verifies_for_each_name_with_cryptography(ca: Pair) -> None:
    cert, _ = pki.issue_serving_cert(*ca, pki.default_sans())
    builder = v.PolicyBuilder().store(v.Store([ca[0]]))
    for subject in (v.DNSName("localhost"), v.IPAddress(ipaddress.ip_address("127.0.0.1")),
                    v.IPAddress(ipaddress.ip_address("::1"))):
        chain = builder.build_server_verifier(subject).verify(cert, [])
        assert chain[-1] == ca[0]
    with pytest.raises(v.VerificationError):
        builder.build_server_verifier(v.DNSName("elsewhere.example")).verify(cert, [])


def test_client_cert_maps_user_to_cn_and_groups_to_o(ca: Pair) -> None:
    cert, key = pki.issue_client_cert(*ca, "alice", ["dev", "system:masters", "dev"])
    assert pki.client_identity(cert) == ("alice", ["dev", "system:masters"])
    assert _eku(cert) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    # The client verifier insists on a SAN by default; kube client certificates carry none.
    ee = v.ExtensionPolicy.webpki_defaults_ee().may_be_present(
        x509.SubjectAlternativeName, v.Criticality.AGNOSTIC, None)
    verifier = (v.PolicyBuilder().store(v.Store([ca[0]]))
                .extension_policies(ca_policy=v.ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee)
                .build_client_verifier())
    assert verifier.verify(cert, []).chain[-1] == ca[0]
    other_ca, _ = pki.make_ca()
    assert not pki.is_signed_by(cert, other_ca)


def test_openssl_verifies_both_leaves_for_their_purpose(ca: Pair, openssl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    ca_path = _write(tmp_path, "ca.crt", ca[0])
    server = _write(tmp_path, "server.crt", pki.issue_serving_cert(*ca, ["localhost"])[0])
    client = _write(tmp_path, "client.crt", pki.issue_client_cert(*ca, "bob", ["g"])[0])
    for path, purpose in ((server, "sslserver"), (client, "sslclient")):
        out = openssl("verify", "-x509_strict", "-purpose", purpose, "-CAfile", ca_path, path)
        assert out.returncode == 0, out.stderr
    wrong = openssl("verify", "-purpose", "sslserver", "-CAfile", ca_path, client)
    assert wrong.returncode != 0


@pytest.mark.parametrize("bad", ["", "  ", "bad name", "http://x", "名前.example"])
def test_bad_san_is_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        pki.parse_san(bad)


def test_short_lifetime_is_seen_as_expiring(ca: Pair) -> None:
    cert, _ = pki.issue_serving_cert(*ca, ["localhost"], days=10)
    assert pki.expires_within(cert, timedelta(days=30))
    assert not pki.expires_within(cert, timedelta(days=5))


def test_p12_round_trips_with_cryptography(ca: Pair) -> None:
    cert, key = pki.issue_client_cert(*ca, "alice", ["dev"])
    data = pki.make_p12(cert, key, ca[0], "s3cret", "kapi-client")
    loaded = pkcs12.load_pkcs12(data, b"s3cret")
    assert loaded.cert is not None and loaded.cert.certificate == cert
    assert loaded.cert.friendly_name == b"kapi-client"
    assert loaded.key is not None and loaded.key.public_key() == key.public_key()
    assert [c.certificate for c in loaded.additional_certs] == [ca[0]]
    with pytest.raises(ValueError):
        pkcs12.load_pkcs12(data, b"wrong")
    with pytest.raises(ValueError):
        pki.make_p12(cert, key, ca[0], "")


def test_p12_opens_in_openssl3_without_the_legacy_provider(ca: Pair, openssl: Callable[..., subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    cert, key = pki.issue_client_cert(*ca, "alice", ["dev"])
    p12 = tmp_path / "client.p12"
    p12.write_bytes(pki.make_p12(cert, key, ca[0], "pa ss:word", "kapi-client"))
    ok = openssl("pkcs12", "-in", p12, "-passin", "pass:pa ss:word", "-nokeys")
    assert ok.returncode == 0, ok.stderr
    assert "CN = alice" in ok.stdout or "CN=alice" in ok.stdout
    assert ok.stdout.count("BEGIN CERTIFICATE") == 2  # the client certificate and the CA
    info = openssl("pkcs12", "-in", p12, "-passin", "pass:pa ss:word", "-info", "-noout")
    assert "AES-256-CBC" in info.stderr + info.stdout
    wrong = openssl("pkcs12", "-in", p12, "-passin", "pass:nope", "-nokeys")
    assert wrong.returncode != 0
