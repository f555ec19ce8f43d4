"""Ages exactly as k8s.io/apimachinery duration.HumanDuration prints them."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from kapi.api.humanize import age, human_duration, human_duration_ns, parse_rfc3339

MIN, HOUR, DAY, YEAR = 60, 3600, 86400, 365 * 86400


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (-2, "<invalid>"),
        (-1.5, "0s"),  # Go truncates toward zero: -1 counts as "now"
        (-1, "0s"),
        (-0.5, "0s"),
        (0, "0s"),
        (0.9, "0s"),
        (1, "1s"),
        (59, "59s"),
        (119, "119s"),
        (120, "2m"),
        (121, "2m1s"),
        (9 * MIN + 59, "9m59s"),
        (10 * MIN, "10m"),
        (10 * MIN + 30, "10m"),
        (3 * HOUR - 1, "179m"),
        (3 * HOUR, "3h"),
        (3 * HOUR + 5 * MIN, "3h5m"),
        (7 * HOUR + 59 * MIN, "7h59m"),
        (8 * HOUR, "8h"),
        (47 * HOUR + 59 * MIN, "47h"),
        (2 * DAY, "2d"),
        (2 * DAY + 3 * HOUR, "2d3h"),
        (7 * DAY + 23 * HOUR, "7d23h"),
        (8 * DAY, "8d"),
        (8 * DAY + 5 * HOUR, "8d"),
        (2 * YEAR - DAY, "729d"),
        (2 * YEAR, "2y"),
        (3 * YEAR + 40 * DAY, "3y40d"),
        (8 * YEAR - DAY, "7y364d"),
        (8 * YEAR, "8y"),
        (8 * YEAR + 100 * DAY, "8y"),
        (123 * YEAR, "123y"),
    ],
)
def test_human_duration(seconds: float, expected: str) -> None:
    assert human_duration(seconds) == expected


def test_human_duration_ns_boundaries() -> None:
    assert human_duration_ns(-1_999_999_999) == "0s"
    assert human_duration_ns(-2_000_000_000) == "<invalid>"
    assert human_duration_ns(119_999_999_999) == "119s"


def test_parse_rfc3339_variants() -> None:
    utc = timezone.utc
    assert parse_rfc3339("2024-01-02T03:04:05Z") == datetime(2024, 1, 2, 3, 4, 5, tzinfo=utc)
    assert parse_rfc3339("2024-01-02T03:04:05.123456789Z").microsecond == 123456
    assert parse_rfc3339("2024-01-02T03:04:05.5+02:00") == datetime(2024, 1, 2, 1, 4, 5, 500000, tzinfo=utc)
    for bad in ["", "yesterday", "2024-01-02", "2024-01-02T03:04:05", "2024-01-02T03:04:05.Z"]:
        with pytest.raises(ValueError):
            parse_rfc3339(bad)


def test_age() -> None:
    now = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert age("2024-05-01T11:59:55Z", now) == "5s"
    assert age("2024-05-01T11:57:58Z", now) == "2m2s"
    assert age("2024-04-27T12:00:00Z", now) == "4d"
    assert age("2024-05-01T12:00:01Z", now) == "0s"
    assert age("2024-05-01T12:00:05Z", now) == "<invalid>"
    assert age("", now) == "<unknown>"
    assert age(None, now) == "<unknown>"
    assert age("garbage", now) == "<invalid>"
    naive_now = datetime(2024, 5, 1, 12, 0, 0)
    assert age("2024-05-01T11:00:00Z", naive_now) == "60m"
    assert age((now - timedelta(hours=5)).isoformat(), now) == "5h"
