"""The kubectl token: minted once, persisted 0600, reused unless ephemeral."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from kapi.auth.kubectl_token import KUBECTL_USER, KubectlTokenAuthenticator, discard, load_or_mint


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_minted_token_is_random_url_safe_and_private(tmp_path: Path) -> None:
    path = tmp_path / "root" / "kubectl.token"
    token = load_or_mint(path, ephemeral=False)
    assert len(token) >= 40 and all(c.isalnum() or c in "-_" for c in token)
    assert path.read_text().strip() == token
    assert _mode(path) == 0o600
    assert [p.name for p in path.parent.iterdir()] == ["kubectl.token"]  # no temporary left behind


def test_reused_across_restarts(tmp_path: Path) -> None:
    path = tmp_path / "kubectl.token"
    first = load_or_mint(path, ephemeral=False)
    assert load_or_mint(path, ephemeral=False) == first


def test_ephemeral_mints_and_overwrites_each_start(tmp_path: Path) -> None:
    path = tmp_path / "kubectl.token"
    first = load_or_mint(path, ephemeral=False)
    second = load_or_mint(path, ephemeral=True)
    third = load_or_mint(path, ephemeral=True)
    assert len({first, second, third}) == 3
    assert path.read_text().strip() == third and _mode(path) == 0o600
    assert load_or_mint(path, ephemeral=False) == third


def test_loose_permissions_are_tightened_and_garbage_replaced(tmp_path: Path) -> None:
    path = tmp_path / "kubectl.token"
    token = load_or_mint(path, ephemeral=False)
    os.chmod(path, 0o644)
    assert load_or_mint(path, ephemeral=False) == token and _mode(path) == 0o600
    path.write_text("not a token!\n")
    replaced = load_or_mint(path, ephemeral=False)
    assert replaced != token and path.read_text().strip() == replaced
    path.write_text("")
    assert load_or_mint(path, ephemeral=False) not in ("", replaced)


def test_minted_file_is_never_group_or_world_readable_even_with_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "kubectl.token"
        load_or_mint(path, ephemeral=True)
    finally:
        os.umask(old)
    assert _mode(path) == 0o600


def test_discard(tmp_path: Path) -> None:
    path = tmp_path / "kubectl.token"
    load_or_mint(path, ephemeral=False)
    discard(path)
    assert not path.exists()
    discard(path)  # already gone: fine


def test_authenticator_accepts_exactly_the_token() -> None:
    auth = KubectlTokenAuthenticator("abc-DEF_123")
    assert auth.authenticate_token(b"abc-DEF_123") == KUBECTL_USER
    assert KUBECTL_USER.name == "kubectl" and KUBECTL_USER.groups == ("system:masters",)
    for wrong in (b"", b"abc-DEF_12", b"abc-DEF_1234", b"ABC-DEF_123"):
        assert auth.authenticate_token(wrong) is None
    assert "abc" not in repr(auth)
