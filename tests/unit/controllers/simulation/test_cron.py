"""The cron parser the CronJob controller uses: robfig/cron's standard syntax, next and most-recent-missed times."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from kapi.controllers.simulation.cron import CronError, parse


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc) if "+" not in text else datetime.fromisoformat(text)


def nxt(spec: str, moment: str, tz: str | None = None) -> str:
    found = parse(spec, tz).next_after(at(moment))
    assert found is not None
    return found.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S")


def test_every_minute_and_steps() -> None:
    assert nxt("* * * * *", "2024-05-01T10:00:30") == "2024-05-01T10:01:00"
    assert nxt("*/1 * * * *", "2024-05-01T10:00:00") == "2024-05-01T10:01:00"  # strictly after
    assert nxt("*/15 * * * *", "2024-05-01T10:16:00") == "2024-05-01T10:30:00"
    assert nxt("5/20 * * * *", "2024-05-01T10:26:00") == "2024-05-01T10:45:00"  # N/step = N-59/step
    assert nxt("10-20/5 3 * * *", "2024-05-01T03:16:00") == "2024-05-01T03:20:00"
    assert nxt("0,30 9-17 * * *", "2024-05-01T17:30:00") == "2024-05-02T09:00:00"


def test_names_macros_and_rollover() -> None:
    assert nxt("0 0 1 jan *", "2024-05-01T00:00:00") == "2025-01-01T00:00:00"
    assert nxt("0 12 * * MON-FRI", "2024-05-03T12:00:00") == "2024-05-06T12:00:00"  # Friday → Monday
    assert nxt("@hourly", "2024-05-01T10:59:59") == "2024-05-01T11:00:00"
    assert nxt("@daily", "2024-12-31T01:00:00") == "2025-01-01T00:00:00"
    assert nxt("@weekly", "2024-05-01T00:00:00") == "2024-05-05T00:00:00"  # Sunday
    assert nxt("@monthly", "2024-01-31T00:00:00") == "2024-02-01T00:00:00"
    assert nxt("@yearly", "2024-01-01T00:00:00") == nxt("@annually", "2024-01-01T00:00:00") == "2025-01-01T00:00:00"
    assert nxt("0 0 29 feb *", "2024-03-01T00:00:00") == "2028-02-29T00:00:00"
    assert nxt("@every 90s", "2024-05-01T10:00:00.500000") == "2024-05-01T10:01:30"


def test_day_of_month_or_day_of_week() -> None:
    # both restricted: either matches (the 13th, or any Friday)
    assert nxt("0 0 13 * 5", "2024-05-01T00:00:00") == "2024-05-03T00:00:00"
    # one of them '*': both must match, i.e. only the other one restricts
    assert nxt("0 0 13 * *", "2024-05-01T00:00:00") == "2024-05-13T00:00:00"
    assert nxt("0 0 * * 5", "2024-05-01T00:00:00") == "2024-05-03T00:00:00"
    # '*/2' is not a star (step above 1): OR rule applies → the 13th or any even day-of-week... day 2 = Tuesday
    assert nxt("0 0 13 * */2", "2024-05-01T00:00:00") == "2024-05-02T00:00:00"  # 2 May 2024 is a Thursday (4)


def test_time_zones() -> None:
    assert nxt("0 9 * * *", "2024-05-01T00:00:00", "Asia/Tokyo") == "2024-05-02T00:00:00"
    assert nxt("CRON_TZ=Asia/Tokyo 0 9 * * *", "2024-05-01T00:00:00") == "2024-05-02T00:00:00"
    assert nxt("TZ=America/New_York 30 2 * * *", "2024-03-10T00:00:00") == "2024-03-11T06:30:00"  # 02:30 skipped


def test_most_recent_missed() -> None:
    schedule = parse("*/5 * * * *")
    last, now = at("2024-05-01T10:00:00"), at("2024-05-01T10:27:00")
    assert schedule.most_recent_missed(last, now) == at("2024-05-01T10:25:00")
    assert schedule.most_recent_missed(at("2024-05-01T10:25:00"), now) is None
    assert schedule.most_recent_missed(last, at("2024-05-01T10:05:00")) == at("2024-05-01T10:05:00")  # inclusive
    assert parse("0 0 1 1 *").most_recent_missed(at("2020-06-01T00:00:00"), now) == at("2024-01-01T00:00:00")
    assert parse("@every 1m").most_recent_missed(at("2024-05-01T10:00:10"), at("2024-05-01T10:03:00")) == \
        at("2024-05-01T10:02:10")


@pytest.mark.parametrize("spec", ["", "* * * *", "60 * * * *", "* 24 * * *", "* * 0 * *", "* * * 13 *",
                                  "* * * * 7", "5-1 * * * *", "*/0 * * * *", "@often", "x * * * *",
                                  "1-2-3 * * * *", "*/a * * * *"])
def test_invalid(spec: str) -> None:
    with pytest.raises(CronError):
        parse(spec)


def test_unknown_zone() -> None:
    with pytest.raises(CronError):
        parse("* * * * *", "Mars/Olympus")
