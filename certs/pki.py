"""Pure PKI building blocks on `cryptography`: keys, a CA, serving and client certificates, PKCS#12.

Nothing here touches the file system (except reading the host name for the
default SANs); `kapi_certs.bundle` decides what to write and when.

Key type: RSA 2048. EC P-256 would be smaller and faster, but RSA is the one
key type every consumer of these files accepts without surprises: curl and
OpenSSL 3 loading the PKCS#12, macOS Keychain and Windows importing it,
kubectl/client-go, Python's `ssl`, Java clients. Generating one takes ~40 ms,
so the cost is irrelevant here.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey
KEY_SIZE = 2048
SERVING_CN = "kapi"
# Backdate certificates a little so a clock that runs slightly behind another still accepts them.
CLOCK_SKEW = timedelta(minutes=5)
# PBKDF2 rounds for the p12. The generated password is high-entropy already; the rounds protect
# user-chosen ones while keeping a curl invocation's p12 decryption in the tens of milliseconds.
P12_KDF_ROUNDS = 100_000


def _now() -> datetime:
    return datetime.now(timezone.utc)


_spare_keys: list[PrivateKey] = []  # made ahead by `prefetch_keys`, each handed out once


def _generate_key() -> PrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_SIZE)


def new_key() -> PrivateKey:
    """A fresh RSA 2048 private key (see the module docstring for why RSA)."""
    try:
        return _spare_keys.pop()
    except IndexError:
        return _generate_key()


def prefetch_keys(count: int) -> None:
    """Generate `count` keys at once, in threads, for the next `new_key` calls.

    OpenSSL releases the GIL while it searches for primes, so a fresh PKI
    (CA, serving and client keys) costs about one key's time instead of three
    on a machine with cores to spare: it is on `kapi start`'s critical path.
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=count) as pool:
        _spare_keys.extend(pool.map(lambda _: _generate_key(), range(count)))


def default_sans() -> list[str]:
    """The names every local client may use to reach the server: loopback and this host's name."""
    return ["localhost", "127.0.0.1", "::1", socket.gethostname()]


def parse_san(value: str) -> x509.GeneralName:
    """Turn '10.0.0.1', '[::1]', 'example.com' or '*.example.com' into an IP or DNS SAN.

    Raises ValueError for an empty or non-ASCII name: certificates carry
    A-labels only, and silently dropping a name would surprise later.
    """
    text = value.strip()
    bare = text[1:-1] if text.startswith("[") and text.endswith("]") else text
    try:
        return x509.IPAddress(ipaddress.ip_address(bare))
    except ValueError:
        pass
    if not text or not text.isascii() or any(c.isspace() or c in "/:@" for c in text):
        raise ValueError(f"not a valid DNS name or IP address for a SAN: {value!r}")
    return x509.DNSName(text.lower().rstrip("."))


def san_strings(names: Iterable[x509.GeneralName]) -> list[str]:
    """The readable form of SAN entries (DNS names and IPs; others are skipped)."""
    out: list[str] = []
    for name in names:
        if isinstance(name, (x509.DNSName, x509.IPAddress)):
            out.append(str(name.value))
    return out


def cert_sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    """DNS and IP SANs of a certificate, empty if it has none."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return []
    return [n for n in ext.value if isinstance(n, (x509.DNSName, x509.IPAddress))]


def _dedupe(names: Iterable[x509.GeneralName]) -> list[x509.GeneralName]:
    seen: list[x509.GeneralName] = []
    for name in names:
        if name not in seen:
            seen.append(name)
    return seen


def _builder(subject: x509.Name, issuer: x509.Name, public_key: rsa.RSAPublicKey,
             days: int) -> x509.CertificateBuilder:
    if days < 1:
        raise ValueError("certificate lifetime must be at least one day")
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - CLOCK_SKEW)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public_key), critical=False)
    )


def make_ca(common_name: str = "kapi-ca", days: int = 3650) -> tuple[x509.Certificate, PrivateKey]:
    """A self-signed CA that may sign leaf certificates only (path length 0)."""
    key = new_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (
        _builder(name, name, key.public_key(), days)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False,
            data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
            encipher_only=False, decipher_only=False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(ca_cert: x509.Certificate, ca_key: PrivateKey, subject: x509.Name, days: int,
          usage: x509.ObjectIdentifier,
          extra: Sequence[x509.ExtensionType] = ()) -> tuple[x509.Certificate, PrivateKey]:
    """A CA-signed end-entity certificate with a fresh key, for one purpose (server or client)."""
    key = new_key()
    builder = (
        _builder(subject, ca_cert.subject, key.public_key(), days)
        .add_extension(_authority_key_id(ca_cert), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=True,
            data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
            encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    for ext in extra:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(ca_key, hashes.SHA256()), key


def _authority_key_id(ca_cert: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key())  # type: ignore[arg-type]
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)


def issue_serving_cert(ca_cert: x509.Certificate, ca_key: PrivateKey, sans: Sequence[str],
                       days: int = 365) -> tuple[x509.Certificate, PrivateKey]:
    """A serverAuth certificate (CN "kapi") for the given DNS names and IP addresses.

    Clients (Go's crypto/x509 in kubectl, curl) match the host against the SANs
    only, never the CN, so an empty list is refused.
    """
    names = _dedupe(parse_san(s) for s in sans)
    if not names:
        raise ValueError("a serving certificate needs at least one SAN")
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVING_CN)])
    return _leaf(ca_cert, ca_key, subject, days, ExtendedKeyUsageOID.SERVER_AUTH,
                 [x509.SubjectAlternativeName(names)])


def issue_client_cert(ca_cert: x509.Certificate, ca_key: PrivateKey, user: str, groups: Sequence[str],
                      days: int = 365) -> tuple[x509.Certificate, PrivateKey]:
    """A clientAuth certificate the way kube-apiserver reads one: CN is the user, each O a group."""
    if not user:
        raise ValueError("a client certificate needs a user name")
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in dict.fromkeys(groups) if g]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return _leaf(ca_cert, ca_key, x509.Name(attrs), days, ExtendedKeyUsageOID.CLIENT_AUTH)


def client_identity(cert: x509.Certificate) -> tuple[str, list[str]]:
    """(user, groups) as kube-apiserver's x509 authenticator derives them: CN and the O values."""
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    orgs = cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    user = str(cns[0].value) if cns else ""
    return user, [str(o.value) for o in orgs]


def make_p12(cert: x509.Certificate, key: PrivateKey, ca_cert: x509.Certificate | None, password: str,
             friendly_name: str = "kapi-client") -> bytes:
    """A password-protected PKCS#12 of key + certificate (+ CA) that OpenSSL 3 and curl load.

    OpenSSL 3 no longer loads the historical RC2/3DES PKCS#12 encryption
    without its legacy provider, so keys and certificates are encrypted with
    PBES2 (PBKDF2-SHA256, AES-256-CBC) and the MAC uses SHA-256.
    """
    if not password:
        raise ValueError("a PKCS#12 password must not be empty")
    encryption = (
        serialization.PrivateFormat.PKCS12.encryption_builder()
        .kdf_rounds(P12_KDF_ROUNDS)
        .key_cert_algorithm(pkcs12.PBES.PBESv2SHA256AndAES256CBC)
        .hmac_hash(hashes.SHA256())
        .build(password.encode("utf-8"))
    )
    cas = [ca_cert] if ca_cert is not None else None
    return pkcs12.serialize_key_and_certificates(friendly_name.encode("utf-8"), key, cert, cas, encryption)


def cert_pem(cert: x509.Certificate) -> bytes:
    """PEM encoding of a certificate."""
    return cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    """Unencrypted PKCS#8 PEM: what uvicorn/Python ssl, kubectl and curl all read."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_key(data: bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key; ValueError if it is not an RSA key kapi could have made."""
    key = serialization.load_pem_private_key(data, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("private key is not RSA")
    return key


def key_matches(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Whether `key` is the private half of `cert` (a torn write leaves them unmatched)."""
    return cert.public_key() == key.public_key()


def is_signed_by(cert: x509.Certificate, ca_cert: x509.Certificate) -> bool:
    """Whether `ca_cert` issued `cert`: names chain and the signature verifies with the CA's key."""
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (ValueError, TypeError, InvalidSignature):
        return False
    return True


def expires_within(cert: x509.Certificate, window: timedelta) -> bool:
    """Whether `cert` is already invalid or stops being valid within `window` from now."""
    now = _now()
    return cert.not_valid_before_utc > now + CLOCK_SKEW or cert.not_valid_after_utc <= now + window


def is_ca(cert: x509.Certificate) -> bool:
    """Whether `cert` says it may sign certificates."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


@dataclass(frozen=True)
class CertInfo:
    """Public facts about a certificate, safe to show in `kapi status` (no key material)."""

    path: Path
    subject: str
    issuer: str
    sans: list[str]
    not_before: datetime
    not_after: datetime
    fingerprint_sha256: str

    @property
    def days_left(self) -> int:
        return (self.not_after - _now()).days


def cert_info(path: Path) -> CertInfo:
    """Subject, issuer, SANs and validity of a PEM certificate file (never reads a key)."""
    cert = x509.load_pem_x509_certificate(Path(path).read_bytes())
    return CertInfo(
        path=Path(path), subject=cert.subject.rfc4514_string(), issuer=cert.issuer.rfc4514_string(),
        sans=san_strings(cert_sans(cert)), not_before=cert.not_valid_before_utc,
        not_after=cert.not_valid_after_utc, fingerprint_sha256=cert.fingerprint(hashes.SHA256()).hex(":"),
    )
