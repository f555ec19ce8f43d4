"""kapi's own kubectl token: a random bearer token kept in one 0600 file under the root.

`load_or_mint` reuses the stored token across restarts, or mints a fresh one
(`ephemeral`, or when none is stored yet) and replaces the file atomically
with `kapi_certs.files.write_private` (created 0600, never world-readable). The token is never
logged and appears nowhere but that file; the CLI reads the file to write a
kubeconfig.
"""
from __future__ import annotations

import contextlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from kapi_certs.files import write_private
from kapi.api.user import MASTERS_GROUP, UserInfo

KUBECTL_USER = UserInfo("kubectl", groups=(MASTERS_GROUP,))
TOKEN_BYTES = 32  # 256 bits of randomness, 43 URL-safe characters
_FILE_MODE = 0o600


def mint() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def _read(path: Path) -> str | None:
    try:
        text = path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, IsADirectoryError):
        return None
    return text if text and all(c.isalnum() or c in "-_" for c in text) else None


def load_or_mint(path: Path, ephemeral: bool) -> str:
    """The kubectl token: the one stored at `path` unless `ephemeral`, else a new one written there."""
    if not ephemeral:
        existing = _read(path)
        if existing is not None:
            if stat.S_IMODE(path.stat().st_mode) != _FILE_MODE:
                os.chmod(path, _FILE_MODE)
            return existing
    token = mint()
    write_private(path, (token + "\n").encode("ascii"))
    return token


def discard(path: Path) -> None:
    """Remove a stored token (kubectl access disabled): nothing is left to steal."""
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


class KubectlTokenAuthenticator:
    """A `TokenAuthenticator` accepting exactly the kubectl token, as user `kubectl` in `system:masters`."""

    def __init__(self, token: str, user: UserInfo = KUBECTL_USER) -> None:
        self._token = token.encode("ascii")
        self._user = user

    def __repr__(self) -> str:
        return f"KubectlTokenAuthenticator(user={self._user.name!r})"

    def authenticate_token(self, token: bytes) -> UserInfo | None:
        return self._user if hmac.compare_digest(self._token, token) else None
