"""`ensure_certs`: make `<root>/cert/` hold a valid CA, serving and client certificates, and a p12.

Why idempotent rather than "generate": `kapi start` calls this on every start,
and users put `ca.crt` into kubeconfigs and the p12 password into scripts, so a
certificate that is still good must stay byte-for-byte the same. Only what is
missing, unreadable, expiring within `RENEW_BEFORE`, signed by another CA, or
no longer what was asked for (SANs, user, groups) is rewritten; a bad CA (or
`force`) regenerates everything, because everything hangs off it.
"""
from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Callable, Literal, Sequence, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from kapi_certs import pki
from kapi_certs.files import dir_lock, ensure_dir, write_private, write_public
from kapi_certs.layout import DEFAULT_CLIENT_GROUPS, DEFAULT_CLIENT_USER, FRONT_PROXY_CLIENT_CN, CertPaths
from kapi_certs.pki import CertInfo, cert_info  # re-exported: the status display's entry point

RENEW_BEFORE = timedelta(days=30)
PASSWORD_FILE = "client.p12.password"
P12_FRIENDLY_NAME = "kapi-client"

Action = Literal["created", "renewed", "kept"]
Pair = tuple[x509.Certificate, pki.PrivateKey]
T = TypeVar("T")

__all__ = ["RENEW_BEFORE", "CertEntry", "CertError", "CertInfo", "CertReport", "cert_info",
           "ensure_certs", "load_ca", "password_path"]


class CertError(Exception):
    """A certificate or key file is missing, unreadable, or does not fit its partner."""


@dataclass(frozen=True)
class CertEntry:
    """What `ensure_certs` did to one file, and why (one row of `kapi gen-certs` output)."""

    path: Path
    action: Action
    reason: str

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class CertReport:
    """The outcome of `ensure_certs`: where the files are, what changed, and the p12 password.

    The password is kept out of `repr` so that logging a report never leaks it.
    """

    paths: CertPaths
    p12_password: str = field(repr=False)
    entries: list[CertEntry] = field(default_factory=list)

    @property
    def password_path(self) -> Path:
        return password_path(self.paths)

    @property
    def changed(self) -> bool:
        return any(e.action != "kept" for e in self.entries)

    def entry(self, name: str) -> CertEntry:
        """The entry for a file name such as "server.crt"."""
        for e in self.entries:
            if e.name == name:
                return e
        raise KeyError(name)

    def names(self, action: Action) -> list[str]:
        """File names that got `action`, e.g. `report.names("renewed")`."""
        return [e.name for e in self.entries if e.action == action]


def password_path(paths: CertPaths) -> Path:
    """Where the p12 password lives (0600), next to the p12."""
    return paths.dir / PASSWORD_FILE


def _read(path: Path, parse: Callable[[bytes], T]) -> T:
    try:
        return parse(path.read_bytes())
    except FileNotFoundError:
        raise CertError(f"{path.name} missing") from None
    except (OSError, ValueError, TypeError) as exc:
        raise CertError(f"{path.name} unreadable ({type(exc).__name__})") from None


def _load_pair(crt: Path, key: Path) -> Pair:
    """Read a certificate and its key, or raise CertError saying what is wrong."""
    cert, private = _read(crt, x509.load_pem_x509_certificate), _read(key, pki.load_key)
    if not pki.key_matches(cert, private):
        raise CertError(f"{key.name} does not match {crt.name}")
    return cert, private


def load_ca(paths: CertPaths) -> Pair:
    """kapi's CA certificate and key; CertError if missing, unreadable, mismatched or not a CA."""
    cert, key = _load_pair(paths.ca_crt, paths.ca_key)
    if not pki.is_ca(cert):
        raise CertError(f"{paths.ca_crt.name} is not a CA certificate")
    return cert, key


def _until(cert: x509.Certificate) -> str:
    return cert.not_valid_after_utc.strftime("%Y-%m-%d")


def _pair_problem(crt: Path, key: Path, ca: x509.Certificate | None) -> tuple[Pair | None, str | None]:
    """The existing pair (if readable) and why it must be replaced (None: fine so far).

    `ca` None: the pair is the CA itself, which must say that it is one.
    """
    try:
        pair = _load_pair(crt, key)
    except CertError as exc:
        return None, str(exc)
    if ca is None and not pki.is_ca(pair[0]):
        return pair, f"{crt.name} is not a CA certificate"
    if ca is not None and not pki.is_signed_by(pair[0], ca):
        return pair, "not signed by the current CA"
    if pki.expires_within(pair[0], RENEW_BEFORE):
        return pair, f"expires {_until(pair[0])}, within {RENEW_BEFORE.days} days"
    return pair, None


def _p12_problem(path: Path, password: str, client: x509.Certificate, ca: x509.Certificate) -> str | None:
    """Why the p12 must be rewritten, or None when it opens with `password` and holds the current certs."""
    try:
        loaded = pkcs12.load_pkcs12(path.read_bytes(), password.encode("utf-8"))
    except FileNotFoundError:
        return "missing"
    except (OSError, ValueError):
        return "does not open with the password"
    if loaded.cert is None or loaded.cert.certificate != client or loaded.key is None:
        return "holds another certificate"
    if ca not in [c.certificate for c in loaded.additional_certs]:
        return "lacks the current CA"
    return None


def _read_password(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="utf-8").rstrip("\r\n")  # only the newline we wrote
    except (FileNotFoundError, UnicodeDecodeError):
        return None
    return text or None


def _lenient(names: Sequence[str]) -> list[x509.GeneralName]:
    """Parse the default SANs, skipping an odd host name rather than failing every `kapi start`."""
    out = []
    for name in names:
        with contextlib.suppress(ValueError):
            out.append(pki.parse_san(name))
    return out


class _Recorder(list[CertEntry]):
    """Report entries; "created" versus "renewed" depends on whether the file existed before."""

    def wrote(self, path: Path, existed: bool, reason: str) -> None:
        self.append(CertEntry(path, "renewed", reason) if existed else CertEntry(path, "created", "new"))

    def kept(self, path: Path, reason: str) -> None:
        self.append(CertEntry(path, "kept", reason))


def _keep_pair(rec: _Recorder, crt: Path, key: Path, cert: x509.Certificate) -> None:
    rec.kept(crt, f"valid until {_until(cert)}")
    rec.kept(key, f"matches {crt.name}")


def _write_pair(rec: _Recorder, crt: Path, key: Path, pair: Pair, reason: str) -> None:
    existed = crt.exists() or key.exists()
    write_private(key, pki.key_pem(pair[1]))  # key first: a torn write leaves a mismatch we detect
    write_public(crt, pki.cert_pem(pair[0]))
    rec.wrote(crt, existed, reason)
    rec.wrote(key, existed, reason)


def ensure_certs(cert_dir: Path, *, extra_sans: Sequence[str] = (), client_user: str = DEFAULT_CLIENT_USER,
                 client_groups: Sequence[str] = DEFAULT_CLIENT_GROUPS, p12_password: str | None = None,
                 force: bool = False) -> CertReport:
    """Create or refresh kapi's PKI under `cert_dir`; see the module docstring for the rules.

    Renewed serving certificates keep the SANs they already had (unless `force`),
    so alternating `--san` values never takes a name away from a running setup.
    The p12 password: `p12_password` if given (and stored), else the stored one,
    else a new random one (stored 0600 in `client.p12.password`). `force`
    regenerates every certificate but keeps the stored password.
    Raises ValueError for a bad SAN, user or empty password.
    """
    requested = [*_lenient(pki.default_sans()), *(pki.parse_san(s) for s in extra_sans)]  # before writing
    if not client_user:
        raise ValueError("client user must not be empty")
    if p12_password is not None and (not p12_password or "\n" in p12_password or "\r" in p12_password):
        raise ValueError("the p12 password must be one non-empty line")
    groups = list(dict.fromkeys(g for g in client_groups if g))
    paths = CertPaths(Path(cert_dir))
    ensure_dir(paths.dir)
    rec = _Recorder()
    with dir_lock(paths.dir):
        if force or not paths.ca_key.exists():
            pki.prefetch_keys(5)  # new CAs mean five new keys: make them side by side
        ca, ca_key, ca_new = _ensure_ca(rec, paths, force)
        renew_all = "forced" if force else ("CA regenerated" if ca_new else None)
        _ensure_serving(rec, paths, ca, ca_key, requested, renew_all)
        client, client_new = _ensure_client(rec, paths, ca, ca_key, client_user, groups, renew_all)
        password = _ensure_p12(rec, paths, ca, client, client_new, p12_password)
        _ensure_front_proxy(rec, paths, force)
    return CertReport(paths=paths, p12_password=password, entries=list(rec))


def _ensure_ca(rec: _Recorder, paths: CertPaths, force: bool, crt: Path | None = None, key: Path | None = None,
               common_name: str = "kapi-ca") -> tuple[x509.Certificate, pki.PrivateKey, bool]:
    crt, key = crt or paths.ca_crt, key or paths.ca_key
    pair, reason = _pair_problem(crt, key, None)
    reason = "forced" if force else reason
    if reason is None and pair is not None:
        _keep_pair(rec, crt, key, pair[0])
        return pair[0], pair[1], False
    ca, ca_key = pki.make_ca(common_name)
    _write_pair(rec, crt, key, (ca, ca_key), reason or "missing")
    return ca, ca_key, True


def _ensure_front_proxy(rec: _Recorder, paths: CertPaths, force: bool) -> None:
    """The aggregator's identity towards the servers it proxies to: a client certificate of its own CA."""
    ca, ca_key, ca_new = _ensure_ca(rec, paths, force, paths.front_proxy_ca_crt, paths.front_proxy_ca_key,
                                    "kapi-front-proxy-ca")
    crt, key = paths.front_proxy_client_crt, paths.front_proxy_client_key
    pair, reason = _pair_problem(crt, key, ca)
    if pair is not None and reason is None and pki.client_identity(pair[0])[0] != FRONT_PROXY_CLIENT_CN:
        reason = f"not {FRONT_PROXY_CLIENT_CN}"
    reason = "forced" if force else "CA regenerated" if ca_new else reason
    if reason is None and pair is not None:
        _keep_pair(rec, crt, key, pair[0])
        return
    _write_pair(rec, crt, key, pki.issue_client_cert(ca, ca_key, FRONT_PROXY_CLIENT_CN, ()), reason or "missing")


def _ensure_serving(rec: _Recorder, paths: CertPaths, ca: x509.Certificate, ca_key: pki.PrivateKey,
                    requested: list[x509.GeneralName], renew_all: str | None) -> None:
    pair, reason = _pair_problem(paths.server_crt, paths.server_key, ca)
    have = pki.cert_sans(pair[0]) if pair else []
    if reason is None:
        missing = [n for n in requested if n not in have]
        if missing:
            reason = "missing SAN " + ", ".join(pki.san_strings(missing))
    reason = renew_all or reason
    if reason is None and pair is not None:
        _keep_pair(rec, paths.server_crt, paths.server_key, pair[0])
        return
    keep = [] if renew_all == "forced" else have
    sans = pki.san_strings([*requested, *[n for n in keep if n not in requested]])
    _write_pair(rec, paths.server_crt, paths.server_key, pki.issue_serving_cert(ca, ca_key, sans),
                reason or "missing")


def _ensure_client(rec: _Recorder, paths: CertPaths, ca: x509.Certificate, ca_key: pki.PrivateKey,
                   user: str, groups: list[str], renew_all: str | None) -> tuple[Pair, bool]:
    pair, reason = _pair_problem(paths.client_crt, paths.client_key, ca)
    if reason is None and pair is not None:
        have_user, have_groups = pki.client_identity(pair[0])
        if have_user != user:
            reason = f"user {have_user!r} is not {user!r}"
        elif sorted(have_groups) != sorted(groups):
            reason = f"groups {have_groups} are not {groups}"
    reason = renew_all or reason
    if reason is None and pair is not None:
        _keep_pair(rec, paths.client_crt, paths.client_key, pair[0])
        return pair, False
    new = pki.issue_client_cert(ca, ca_key, user, groups)
    _write_pair(rec, paths.client_crt, paths.client_key, new, reason or "missing")
    return new, True


def _ensure_p12(rec: _Recorder, paths: CertPaths, ca: x509.Certificate, client: Pair,
                client_new: bool, wanted: str | None) -> str:
    pw_path = password_path(paths)
    stored = _read_password(pw_path)
    password = wanted or stored or secrets.token_hex(16)
    if password != stored:
        existed = pw_path.exists()
        write_private(pw_path, (password + "\n").encode("utf-8"))
        rec.wrote(pw_path, existed, "password given" if wanted else "generated")
    else:
        rec.kept(pw_path, "unchanged")
    if client_new:
        reason: str | None = "client certificate changed"
    elif stored is not None and password != stored:
        reason = "password changed"
    else:
        reason = _p12_problem(paths.client_p12, password, client[0], ca)
    if reason is None:
        rec.kept(paths.client_p12, "opens with the password, holds the current certificate")
        return password
    existed = paths.client_p12.exists()
    write_private(paths.client_p12, pki.make_p12(client[0], client[1], ca, password, P12_FRIENDLY_NAME))
    rec.wrote(paths.client_p12, existed, reason)
    return password
