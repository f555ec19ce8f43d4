"""--authn-allow-localhost: loopback callers without credentials."""
from __future__ import annotations

import pytest

from kapi.auth.interfaces import AuthRequest
from kapi.auth.localhost import LOCALHOST_USER, LocalhostAuthenticator, is_loopback


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_addresses(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize("host", [None, "", "10.0.0.1", "192.168.1.2", "::ffff:10.0.0.1", "fe80::1", "localhost",
                                  "0.0.0.0", "not an address"])
def test_other_hosts(host: str | None) -> None:
    assert not is_loopback(host)


async def test_no_credentials_from_loopback_is_the_admin() -> None:
    user = await LocalhostAuthenticator().authenticate(AuthRequest(client_host="127.0.0.1"))
    assert user == LOCALHOST_USER
    assert user.name == "kapi:localhost-admin" and user.groups == ("system:masters",)


@pytest.mark.parametrize(
    "request_",
    [
        AuthRequest(client_host="10.1.2.3"),
        AuthRequest(client_host=None),
        AuthRequest(headers={"authorization": "Bearer wrong"}, client_host="127.0.0.1"),
        AuthRequest(headers={"authorization": "Basic dXNlcjpwdw=="}, client_host="::1"),
        AuthRequest(client_host="127.0.0.1", peer_cert_chain=[b"\x30\x00"]),
    ],
)
async def test_credentials_or_remote_callers_are_not_mine(request_: AuthRequest) -> None:
    assert await LocalhostAuthenticator().authenticate(request_) is None
