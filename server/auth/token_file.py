"""Static bearer tokens from kube-apiserver's `--token-auth-file` CSV.

Format, as kube-apiserver reads it (Go's encoding/csv): one record per line,
`token,user,uid[,"group1,group2"]`, fields quoted with `"` when they hold
commas; blank lines are skipped; there are no comment lines; fewer than three
columns is an error; an empty token is skipped with a warning; a repeated
token keeps its last record. The file is read once, at start-up.

Tokens never appear in logs or exception messages. Lookups compare a digest
of the presented token with every entry's (`hmac.compare_digest`, no early
exit), so timing tells nothing about which entry matched or how close a
guess came.
"""
from __future__ import annotations

import csv
import hashlib
import hmac
import io
import logging
from pathlib import Path

from kapi.api.user import UserInfo

log = logging.getLogger("kapi.auth")


def _digest(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()


def parse_token_csv(text: str, source: str = "token file") -> list[tuple[bytes, UserInfo]]:
    """(token bytes, user) for each record; ValueError naming the line for a malformed file."""
    entries: dict[bytes, UserInfo] = {}
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    record = 0
    while True:
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ValueError(f"{source}: line {reader.line_num}: malformed CSV: {exc}") from None
        if not row:
            continue  # a blank line
        if len(row) < 3:
            raise ValueError(
                f"{source}: line {reader.line_num}: must have at least 3 columns "
                f"(token, user name, user uid), found {len(row)}"
            )
        record += 1
        token, name, uid = row[0], row[1], row[2]
        if token == "":
            log.warning("%s: line %d: empty token skipped", source, reader.line_num)
            continue
        groups = tuple(g for g in row[3].split(",") if g) if len(row) >= 4 else ()
        key = token.encode("utf-8")
        if key in entries:
            log.warning("%s: line %d: duplicate token, the later record wins", source, reader.line_num)
            del entries[key]
        entries[key] = UserInfo(name, uid=uid, groups=groups)
    return list(entries.items())


class TokenFileAuthenticator:
    """A `TokenAuthenticator` over a fixed set of tokens (see `load`)."""

    def __init__(self, entries: list[tuple[bytes, UserInfo]]) -> None:
        self._entries = tuple((_digest(token), user) for token, user in entries)

    def __repr__(self) -> str:
        return f"TokenFileAuthenticator({len(self._entries)} tokens)"

    def __len__(self) -> int:
        return len(self._entries)

    @classmethod
    def load(cls, path: Path) -> TokenFileAuthenticator:
        """Read and parse the CSV once; OSError if unreadable, ValueError if malformed."""
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise ValueError(f"token file {path}: not UTF-8 text") from None
        return cls(parse_token_csv(text, f"token file {path}"))

    def authenticate_token(self, token: bytes) -> UserInfo | None:
        presented = _digest(token)
        found: UserInfo | None = None
        for digest, user in self._entries:  # every entry, always: no early exit
            if hmac.compare_digest(digest, presented):
                found = user
        return found
