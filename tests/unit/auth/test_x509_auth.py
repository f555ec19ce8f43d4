"""Client certificates: CN is the user, O values the groups, only from kapi's CA and only while valid."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest
from kapi.auth.x509 import X509Authenticator

NOW = datetime(2025, 6, 1, tzinfo=timezone.utc)


def _name(cn: str, orgs: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in orgs]
    if cn:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    return x509.Name(attrs)


def make_ca(cn: str = "kapi-ca") -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn)).issuer_name(_name(cn))
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW - timedelta(days=10)).not_valid_after(NOW + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def make_leaf(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey], cn: str = "alice",
              orgs: tuple[str, ...] = ("system:masters", "dev"), *, days: tuple[int, int] = (-1, 365),
              usages: list[x509.ObjectIdentifier] | None = None, is_ca: bool = False) -> bytes:
    ca_cert, ca_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn, orgs)).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(NOW + timedelta(days=days[0])).not_valid_after(NOW + timedelta(days=days[1]))
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@pytest.fixture(scope="module")
def ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    return make_ca()


@pytest.fixture
def auth(ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey]) -> X509Authenticator:
    return X509Authenticator([ca[0]], clock=lambda: NOW)


async def test_cn_is_the_user_and_organizations_the_groups(auth: X509Authenticator, ca) -> None:  # type: ignore[no-untyped-def]
    leaf = make_leaf(ca, usages=[ExtendedKeyUsageOID.CLIENT_AUTH])
    user = await auth.authenticate(AuthRequest(peer_cert_chain=[leaf, ca[0].public_bytes(serialization.Encoding.DER)]))
    assert user == UserInfo("alice", groups=("system:masters", "dev"))


async def test_no_certificate_is_not_mine(auth: X509Authenticator) -> None:
    assert await auth.authenticate(AuthRequest(headers={"authorization": "Bearer x"})) is None


async def test_no_common_name_is_no_user(auth: X509Authenticator, ca) -> None:  # type: ignore[no-untyped-def]
    assert await auth.authenticate(AuthRequest(peer_cert_chain=[make_leaf(ca, cn="")])) is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {"days": (-400, -1)},  # expired
        {"days": (1, 400)},  # not yet valid
        {"usages": [ExtendedKeyUsageOID.SERVER_AUTH]},  # a serving certificate
        {"is_ca": True},
    ],
    ids=["expired", "not-yet-valid", "server-only", "ca-as-leaf"],
)
async def test_invalid_certificates_are_unauthorized(auth: X509Authenticator, ca, kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(Unauthorized) as info:
        await auth.authenticate(AuthRequest(peer_cert_chain=[make_leaf(ca, **kwargs)]))
    assert info.value.message == "Unauthorized"


async def test_certificate_from_another_ca_is_unauthorized(auth: X509Authenticator) -> None:
    other = make_ca("kapi-ca")  # same name, different key: the signature decides
    with pytest.raises(Unauthorized):
        await auth.authenticate(AuthRequest(peer_cert_chain=[make_leaf(other)]))


async def test_garbage_is_unauthorized(auth: X509Authenticator) -> None:
    with pytest.raises(Unauthorized):
        await auth.authenticate(AuthRequest(peer_cert_chain=[b"not DER"]))


async def test_from_ca_file(tmp_path: Path, ca) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "ca.crt"
    path.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
    auth = X509Authenticator.from_ca_file(path, clock=lambda: NOW)
    user = await auth.authenticate(AuthRequest(peer_cert_chain=[make_leaf(ca, cn="bob", orgs=())]))
    assert user == UserInfo("bob")
    path.write_text("no certificate here")
    with pytest.raises(ValueError):
        X509Authenticator.from_ca_file(path)


async def test_real_clock_accepts_a_current_certificate(ca) -> None:  # type: ignore[no-untyped-def]
    # NOW is fixed in the past-or-future; the default clock must still work with a certificate valid today
    today = datetime.now(timezone.utc)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder().subject_name(_name("carol")).issuer_name(ca[0].subject)
        .public_key(key.public_key()).serial_number(1)
        .not_valid_before(today - timedelta(hours=1)).not_valid_after(today + timedelta(hours=1))
        .sign(ca[1], hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    )
    ca_cert, ca_key = ca
    fresh_ca = (
        x509.CertificateBuilder().subject_name(ca_cert.subject).issuer_name(ca_cert.subject)
        .public_key(ca_key.public_key()).serial_number(2)
        .not_valid_before(today - timedelta(days=1)).not_valid_after(today + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    user = await X509Authenticator([fresh_ca]).authenticate(AuthRequest(peer_cert_chain=[leaf]))
    assert user is not None and user.name == "carol"


async def test_a_cached_certificate_still_expires(ca) -> None:  # type: ignore[no-untyped-def]
    now = [NOW]
    auth = X509Authenticator([ca[0]], clock=lambda: now[0])
    leaf = make_leaf(ca, days=(-1, 5))
    assert auth.verify(leaf) == auth.verify(leaf) == UserInfo("alice", groups=("system:masters", "dev"))
    now[0] = NOW + timedelta(days=6)
    with pytest.raises(Unauthorized):
        auth.verify(leaf)
