"""The --token-auth-file CSV parser and the static token authenticator."""
from __future__ import annotations

import logging
from pathlib import Path

import pytest

from kapi.api.user import UserInfo
from kapi.auth.token_file import TokenFileAuthenticator, parse_token_csv


def test_records_with_quoted_groups_and_optional_group_column() -> None:
    entries = dict(parse_token_csv(
        'alice-token,alice,1001,"developers,admins"\n'
        "bob-token,bob,1002\n"
        "carol-token,carol,1003,viewers\n"
    ))
    assert entries[b"alice-token"] == UserInfo("alice", uid="1001", groups=("developers", "admins"))
    assert entries[b"bob-token"] == UserInfo("bob", uid="1002")
    assert entries[b"carol-token"] == UserInfo("carol", uid="1003", groups=("viewers",))


def test_blank_lines_crlf_and_extra_columns_are_accepted() -> None:
    entries = parse_token_csv('\r\nt1,u1,1,"g1,g2",ignored\r\n\r\n\nt2,u2,2\r\n')
    assert [(t, u.name, u.groups) for t, u in entries] == [(b"t1", "u1", ("g1", "g2")), (b"t2", "u2", ())]


def test_quoted_fields_may_hold_commas_and_quotes() -> None:
    (token, user), = parse_token_csv('"to,ken","us""er",7,""\n')
    assert token == b"to,ken" and user.name == 'us"er' and user.groups == ()


def test_empty_token_is_skipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kapi.auth"):
        entries = parse_token_csv(",nobody,0\nt,u,1\n")
    assert [t for t, _ in entries] == [b"t"]
    assert "line 1" in caplog.text


def test_duplicate_token_keeps_the_last_record_and_never_logs_it(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="kapi.auth"):
        entries = dict(parse_token_csv("s3cret-dup,first,1\ns3cret-dup,second,2\n"))
    assert entries[b"s3cret-dup"].name == "second"
    assert "duplicate" in caplog.text and "s3cret-dup" not in caplog.text


@pytest.mark.parametrize(
    ("text", "line", "needle"),
    [
        ("good,user,1\ns3cret-only-two,user\n", 2, "at least 3 columns"),
        ("s3cret\n", 1, "found 1"),
        ("ok,u,1\n\n   \n", 3, "at least 3 columns"),  # whitespace is a field, as in Go's csv
        ('ok,u,1\n"s3cret,u,1\n', 2, "malformed CSV"),  # unterminated quote
        ('"s3cret"x,u,1\n', 1, "malformed CSV"),
        ("# a comment is no comment in kube's format\n", 1, "at least 3 columns"),
    ],
)
def test_malformed_lines_are_named_without_their_content(text: str, line: int, needle: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_token_csv(text, "token file x.csv")
    message = str(info.value)
    assert f"line {line}" in message and needle in message and "x.csv" in message
    assert "s3cret" not in message


def test_load_reads_the_file_once(tmp_path: Path) -> None:
    path = tmp_path / "tokens.csv"
    path.write_text('\ufefftok-1,alice,1001,"a,b"\n', encoding="utf-8")  # a BOM is tolerated
    auth = TokenFileAuthenticator.load(path)
    path.write_text("tok-2,bob,1002\n")
    assert auth.authenticate_token(b"tok-1") == UserInfo("alice", uid="1001", groups=("a", "b"))
    assert auth.authenticate_token(b"tok-2") is None
    assert len(auth) == 1


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        TokenFileAuthenticator.load(tmp_path / "missing.csv")
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\xff\xfe,u,1\n")
    with pytest.raises(ValueError, match="not UTF-8"):
        TokenFileAuthenticator.load(bad)


def test_lookup_matches_exactly_and_checks_every_entry() -> None:
    auth = TokenFileAuthenticator(parse_token_csv("aaaa,a,1\nbbbb,b,2\ncccc,c,3\n"))
    assert auth.authenticate_token(b"bbbb").name == "b"  # type: ignore[union-attr]
    assert auth.authenticate_token(b"cccc").name == "c"  # type: ignore[union-attr]
    for wrong in (b"", b"bbb", b"bbbbb", b"BBBB", b"bbbb ", b"aaaa\x00"):
        assert auth.authenticate_token(wrong) is None


def test_non_ascii_tokens_compare_as_utf8_bytes() -> None:
    auth = TokenFileAuthenticator(parse_token_csv("tökén,u,1\n"))
    assert auth.authenticate_token("tökén".encode()) is not None
    assert auth.authenticate_token("tökén".encode("latin-1")) is None


def test_repr_shows_no_token() -> None:
    auth = TokenFileAuthenticator(parse_token_csv("s3cret,u,1\n"))
    assert "s3cret" not in repr(auth) and "1 tokens" in repr(auth)
