"""resourceVersion semantics, list-option validation and continue tokens."""
from __future__ import annotations

import pytest

from kapi.api import errors
from kapi.registry.listing import ContinueCodec, ListOptions, ReadAt, list_revision, validate_list_options


@pytest.mark.parametrize(("opts", "expected"), [
    (ListOptions(), ReadAt()),
    (ListOptions(resource_version="0"), ReadAt()),
    (ListOptions(resource_version="5"), ReadAt(not_older_than=5)),
    (ListOptions(resource_version="5", limit=3), ReadAt(exact=5)),
    (ListOptions(resource_version="5", resource_version_match="Exact"), ReadAt(exact=5)),
    (ListOptions(resource_version="5", resource_version_match="NotOlderThan", limit=3), ReadAt(not_older_than=5)),
])
def test_list_revision_follows_the_documented_table(opts: ListOptions, expected: ReadAt) -> None:
    assert list_revision(opts) == expected


@pytest.mark.parametrize(("opts", "watch", "field"), [
    (ListOptions(resource_version_match="Exact"), False, "resourceVersionMatch"),
    (ListOptions(resource_version="0", resource_version_match="Exact"), False, "resourceVersionMatch"),
    (ListOptions(resource_version="1", resource_version_match="Sometimes"), False, "resourceVersionMatch"),
    (ListOptions(resource_version="3", resource_version_match="Exact"), True, "resourceVersionMatch"),
    (ListOptions(send_initial_events=True, resource_version_match="NotOlderThan"), True, "allowWatchBookmarks"),
    (ListOptions(send_initial_events=True, allow_bookmarks=True), True, "resourceVersionMatch"),
    (ListOptions(send_initial_events=False), False, "sendInitialEvents"),
    (ListOptions(continue_token="x", resource_version="4"), False, "resourceVersion"),
])
def test_impossible_combinations_are_422(opts: ListOptions, watch: bool, field: str) -> None:
    with pytest.raises(errors.Invalid) as exc:
        validate_list_options(opts, watch)
    assert field in {c.field for c in exc.value.causes}


@pytest.mark.parametrize(("rv", "why"), [("abc", "invalid syntax"), ("-1", "invalid syntax"),
                                         ("99999999999999999999", "value out of range")])
def test_an_unparsable_resource_version_is_400_in_strconv_words(rv: str, why: str) -> None:
    with pytest.raises(errors.BadRequest) as exc:
        validate_list_options(ListOptions(resource_version=rv), False)
    assert exc.value.message == (f'invalid resource version: resourceVersion: Invalid value: "{rv}": '
                                 f'strconv.ParseUint: parsing "{rv}": {why}')


def test_valid_combinations_pass() -> None:
    validate_list_options(ListOptions(resource_version="3", resource_version_match="Exact", limit=2), False)
    validate_list_options(ListOptions(send_initial_events=True, allow_bookmarks=True,
                                      resource_version_match="NotOlderThan"), True)
    validate_list_options(ListOptions(resource_version="7", allow_bookmarks=True), True)


def test_continue_tokens_round_trip_and_refuse_forgery() -> None:
    codec = ContinueCodec(b"k" * 32)
    token = codec.encode(42, "/registry/g/foos/default/b")
    assert codec.decode(token, "/registry/g/foos/") == (42, "/registry/g/foos/default/b")
    forged = token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]
    for bad in (forged, "garbage!!", "", token[: len(token) // 2]):
        with pytest.raises(errors.BadRequest):
            codec.decode(bad, "/registry/g/foos/")
    with pytest.raises(errors.BadRequest):
        codec.decode(token, "/registry/g/bars/")
    with pytest.raises(errors.BadRequest):
        ContinueCodec(b"other-key").decode(token, "/registry/g/foos/")
