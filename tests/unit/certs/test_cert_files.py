"""kapi_certs.files: atomic writes, private files 0600 from creation, cert directory 0700."""
from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from kapi_certs import files


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_file_is_0600_even_with_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        files.write_private(tmp_path / "k.key", b"secret")
    finally:
        os.umask(old)
    assert mode(tmp_path / "k.key") == 0o600
    assert (tmp_path / "k.key").read_bytes() == b"secret"


def test_replacing_a_loose_file_leaves_it_0600(tmp_path: Path) -> None:
    target = tmp_path / "k.key"
    target.write_bytes(b"old")
    target.chmod(0o644)
    files.write_private(target, b"new")
    assert mode(target) == 0o600 and target.read_bytes() == b"new"


def test_public_file_is_readable_and_no_temp_file_is_left(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        files.write_public(tmp_path / "ca.crt", b"cert")
        files.write_public(tmp_path / "ca.crt", b"cert2")
    finally:
        os.umask(old)
    assert mode(tmp_path / "ca.crt") == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"]
    assert (tmp_path / "ca.crt").read_bytes() == b"cert2"


def test_missing_directory_is_created_0700(tmp_path: Path) -> None:
    files.write_private(tmp_path / "root" / "cert" / "k.key", b"x")
    assert mode(tmp_path / "root" / "cert") == 0o700


def test_existing_directory_mode_is_left_alone(tmp_path: Path) -> None:
    d = tmp_path / "cert"
    d.mkdir(mode=0o755)
    d.chmod(0o755)
    files.write_public(d / "ca.crt", b"x")
    assert mode(d) == 0o755


def test_a_failed_rename_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "ca.crt"
    target.mkdir()  # a non-empty directory cannot be replaced by a file
    (target / "keep").write_bytes(b"old")
    with pytest.raises(OSError):
        files.write_public(target, b"new")
    assert (target / "keep").read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["ca.crt"]


def test_dir_lock_can_be_taken_again_after_release(tmp_path: Path) -> None:
    with files.dir_lock(tmp_path / "cert"):
        pass
    with files.dir_lock(tmp_path / "cert"):
        assert (tmp_path / "cert" / ".lock").exists()
