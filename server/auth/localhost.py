"""`--authn-allow-localhost`: a loopback caller without any credential is an administrator.

Only requests that carry nothing (no Authorization header, no client
certificate) qualify, so a wrong token from loopback is still a 401.
"""
from __future__ import annotations

import ipaddress
from functools import lru_cache

from kapi.api.user import MASTERS_GROUP, UserInfo
from kapi.auth.interfaces import AuthRequest

LOCALHOST_USER = UserInfo("kapi:localhost-admin", groups=(MASTERS_GROUP,))


@lru_cache(maxsize=1024)  # a handful of peer addresses, asked about on every request
def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 and IPv4-mapped loopback; names (even "localhost") are not trusted."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


class LocalhostAuthenticator:
    def __init__(self, user: UserInfo = LOCALHOST_USER) -> None:
        self._user = user

    def __repr__(self) -> str:
        return f"LocalhostAuthenticator(user={self._user.name!r})"

    async def authenticate(self, request: AuthRequest) -> UserInfo | None:
        if request.has_credentials or not is_loopback(request.client_host):
            return None
        return self._user
