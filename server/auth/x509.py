"""Client certificates signed by kapi's CA: user = subject CN, groups = subject O values.

The TLS layer already verified the chain against `ca.crt` during the
handshake; this authenticator checks again (signature by one of the trusted
CAs, validity period, client-auth usage) so it is safe on its own. A
certificate that fails is `Unauthorized`; no certificate is "not mine".
"""
from __future__ import annotations

import logging
from datetime import datetime, timezone
from pathlib import Path
from collections import OrderedDict
from typing import Callable, Sequence

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kapi.api.errors import Unauthorized
from kapi.api.user import UserInfo
from kapi.auth.interfaces import AuthRequest

log = logging.getLogger("kapi.auth")
_CACHE_SIZE = 256


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def load_ca_bundle(path: Path) -> list[x509.Certificate]:
    """Every certificate in a PEM file; ValueError when there is none."""
    certs = x509.load_pem_x509_certificates(path.read_bytes())
    if not certs:
        raise ValueError(f"{path}: no certificate found")
    return certs


def _within(cert: x509.Certificate, now: datetime) -> bool:
    return cert.not_valid_before_utc <= now <= cert.not_valid_after_utc


def _allows_client_auth(cert: x509.Certificate) -> bool:
    """Go's rule: no extended key usage extension means any usage; otherwise clientAuth (or any) must be listed."""
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return ExtendedKeyUsageOID.CLIENT_AUTH in usages or ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE in usages


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _reject(why: str) -> Unauthorized:
    log.info("client certificate rejected: %s", why)
    return Unauthorized("Unauthorized")


class X509Authenticator:
    """Authenticate the leaf of the peer chain against trusted CA certificates."""

    def __init__(self, cas: Sequence[x509.Certificate], clock: Callable[[], datetime] = _utcnow) -> None:
        if not cas:
            raise ValueError("an x509 authenticator needs at least one CA certificate")
        self._cas = tuple(cas)
        self._clock = clock
        # DER -> (user, valid from, valid until): a connection presents the same leaf on every
        # request, and parsing plus an RSA signature check per request cost a third of HTTPS
        # throughput (scripts/bench.py). Only certificates that verified are kept.
        self._verified: OrderedDict[bytes, tuple[UserInfo | None, datetime, datetime]] = OrderedDict()

    @classmethod
    def from_ca_file(cls, path: Path, clock: Callable[[], datetime] = _utcnow) -> X509Authenticator:
        return cls(load_ca_bundle(path), clock)

    def __repr__(self) -> str:
        return f"X509Authenticator({len(self._cas)} CA certificates)"

    def _issuer_of(self, leaf: x509.Certificate) -> x509.Certificate | None:
        for ca in self._cas:
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            return ca
        return None

    def verify(self, der: bytes) -> UserInfo | None:
        """The user a DER leaf certificate names; `Unauthorized` if it is not ours or not valid now."""
        hit = self._verified.get(der)
        if hit is not None:
            user, start, end = hit
            if start <= self._clock() <= end:
                self._verified.move_to_end(der)
                return user
            del self._verified[der]
        user, start, end = self._verify_uncached(der)
        self._verified[der] = (user, start, end)
        if len(self._verified) > _CACHE_SIZE:
            self._verified.popitem(last=False)
        return user

    def _verify_uncached(self, der: bytes) -> tuple[UserInfo | None, datetime, datetime]:
        try:
            leaf = x509.load_der_x509_certificate(der)
        except ValueError:
            raise _reject("not a DER certificate") from None
        issuer = self._issuer_of(leaf)
        if issuer is None:
            raise _reject("not signed by a trusted CA")
        now = self._clock()
        if not _within(leaf, now):
            raise _reject("outside its validity period")
        if not _within(issuer, now):
            raise _reject("its CA is outside its validity period")
        if _is_ca(leaf) or not _allows_client_auth(leaf):
            raise _reject("not a client certificate")
        start = max(leaf.not_valid_before_utc, issuer.not_valid_before_utc)
        end = min(leaf.not_valid_after_utc, issuer.not_valid_after_utc)
        names = [a.value for a in leaf.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        name = str(names[0]) if names else ""
        if not name:
            return None, start, end  # kube: no common name, no user
        groups = tuple(str(a.value) for a in leaf.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME))
        return UserInfo(name, groups=groups), start, end

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        if not request.peer_cert_chain:
            return None
        return self.verify(request.peer_cert_chain[0])
