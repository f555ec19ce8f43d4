"""Cron schedules as kube's CronJob controller reads them (robfig/cron's ParseStandard), with no I/O.

Five fields (minute hour day-of-month month day-of-week) of `*`/`?`, lists,
ranges, steps and month/day names; the @hourly … @yearly macros and
`@every <duration>`. Day of month and day of week combine as cron does: when
either field starts with `*` (and has no step above 1) both must match,
otherwise either may. A `CRON_TZ=` / `TZ=` prefix, or `spec.timeZone`, sets
the zone the fields are read in (UTC otherwise, as a kube-controller-manager
in a container runs). The CronJob controller asks two questions: when does
the schedule next fire after a moment, and which fire time in (last, now] is
the most recent one it missed.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

MONTHS = {n: i + 1 for i, n in enumerate(["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct",
                                          "nov", "dec"])}
DAYS = {n: i for i, n in enumerate(["sun", "mon", "tue", "wed", "thu", "fri", "sat"])}
MACROS = {"@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *", "@weekly": "0 0 * * 0",
          "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *"}
_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SEARCH_YEARS = 5  # robfig gives up after five years without a match (e.g. 30 February)


class CronError(ValueError):
    """The schedule does not parse."""


@dataclass(frozen=True)
class Field:
    values: frozenset[int]
    star: bool  # started with * or ? (and no step above 1): relaxes the day-of-month/day-of-week OR rule


@dataclass(frozen=True)
class Schedule:
    """A parsed schedule; `every` (seconds) is set for `@every`, the fields otherwise."""

    zone: tzinfo
    minutes: Field | None = None
    hours: Field | None = None
    days: Field | None = None
    months: Field | None = None
    weekdays: Field | None = None
    every: float = 0.0

    # -- matching ------------------------------------------------------------------------------
    def _day_matches(self, moment: datetime) -> bool:
        assert self.days is not None and self.weekdays is not None
        dom = moment.day in self.days.values
        dow = (moment.isoweekday() % 7) in self.weekdays.values
        if self.days.star or self.weekdays.star:
            return dom and dow
        return dom or dow

    def _wall_matches(self, wall: datetime) -> bool:
        assert self.minutes and self.hours and self.months
        return (wall.month in self.months.values and self._day_matches(wall) and wall.hour in self.hours.values
                and wall.minute in self.minutes.values)

    def _real(self, wall: datetime) -> datetime | None:
        """The instant a wall-clock time names in the zone; None inside a spring-forward gap."""
        aware = wall.replace(tzinfo=self.zone)
        back = aware.astimezone(timezone.utc).astimezone(self.zone)
        return aware if back.replace(tzinfo=None) == wall else None

    # -- the two questions -------------------------------------------------------------------------
    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment` (an aware datetime); None when none within 5 years."""
        if self.every:
            base = moment.replace(microsecond=0)
            return base + timedelta(seconds=self.every)
        assert self.minutes and self.hours and self.months
        wall = moment.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0) + timedelta(minutes=1)
        limit = wall.year + _SEARCH_YEARS
        while wall.year <= limit:
            if wall.month not in self.months.values:
                wall = (wall.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self._day_matches(wall):
                wall = wall.replace(hour=0, minute=0) + timedelta(days=1)
            elif wall.hour not in self.hours.values:
                wall = wall.replace(minute=0) + timedelta(hours=1)
            elif wall.minute not in self.minutes.values:
                wall += timedelta(minutes=1)
            else:
                real = self._real(wall)
                if real is not None and real > moment:
                    return real.astimezone(timezone.utc)
                wall += timedelta(minutes=1)
        return None

    def latest_at_or_before(self, moment: datetime) -> datetime | None:
        """The last fire time at or before `moment` (fields only; within 5 years)."""
        assert self.minutes and self.hours and self.months
        wall = moment.astimezone(self.zone).replace(tzinfo=None, second=0, microsecond=0)
        limit = wall.year - _SEARCH_YEARS
        while wall.year >= limit:
            if wall.month not in self.months.values:
                wall = wall.replace(day=1, hour=23, minute=59) - timedelta(days=1)
            elif not self._day_matches(wall):
                wall = wall.replace(hour=23, minute=59) - timedelta(days=1)
            elif wall.hour not in self.hours.values:
                wall = wall.replace(minute=59) - timedelta(hours=1)
            elif wall.minute not in self.minutes.values:
                wall -= timedelta(minutes=1)
            else:
                real = self._real(wall)
                if real is not None and real <= moment:
                    return real.astimezone(timezone.utc)
                wall -= timedelta(minutes=1)
        return None

    def most_recent_missed(self, last: datetime, now: datetime) -> datetime | None:
        """The latest fire time in (last, now], which is the only missed run kube starts; None if none."""
        if now <= last:
            return None
        if self.every:
            first = last.replace(microsecond=0)
            runs = int((now - first).total_seconds() // self.every)
            return first + timedelta(seconds=runs * self.every) if runs >= 1 else None
        found = self.latest_at_or_before(now)
        return found if found is not None and found > last else None


def zone_named(name: str | None) -> tzinfo:
    """A time zone by IANA name (UTC when empty); CronError when unknown."""
    if not name or name in ("UTC", "Etc/UTC"):
        return timezone.utc
    if name == "Local":
        raise CronError("unknown time zone Local")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CronError(f"unknown time zone {name}") from exc


def go_duration(text: str) -> float:
    """Seconds in a Go duration string ("1h30m", "90s", "1.5h")."""
    if text in ("0", ""):
        raise CronError(f"time: invalid duration {text!r}")
    parts = re.findall(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise CronError(f"time: invalid duration {text!r}")
    return sum(float(n) * _UNITS[u] for n, u in parts)


def _number(text: str, names: dict[str, int]) -> int:
    if text.lower() in names:
        return names[text.lower()]
    if not text.isdigit():
        raise CronError(f"failed to parse int from {text}")
    return int(text)


def _field(expr: str, low: int, high: int, names: dict[str, int]) -> Field:
    values: set[int] = set()
    star = False
    for part in expr.split(","):
        range_step = part.split("/")
        bounds = range_step[0].split("-")
        part_star = False
        if bounds[0] in ("*", "?"):
            if len(bounds) != 1:
                raise CronError(f"too many hyphens: {part}")
            start, end, part_star = low, high, True
        else:
            start = _number(bounds[0], names)
            if len(bounds) == 1:
                end = start
            elif len(bounds) == 2:
                end = _number(bounds[1], names)
            else:
                raise CronError(f"too many hyphens: {part}")
        if len(range_step) == 1:
            step = 1
        elif len(range_step) == 2:
            if not range_step[1].isdigit():
                raise CronError(f"failed to parse int from {range_step[1]}")
            step = int(range_step[1])
            if len(bounds) == 1 and not part_star:
                end = high  # "N/step" means N through the maximum
            if step > 1:
                part_star = False
        else:
            raise CronError(f"too many slashes: {part}")
        if start < low:
            raise CronError(f"beginning of range ({start}) below minimum ({low}): {part}")
        if end > high:
            raise CronError(f"end of range ({end}) above maximum ({high}): {part}")
        if start > end:
            raise CronError(f"beginning of range ({start}) beyond end of range ({end}): {part}")
        if step == 0:
            raise CronError(f"step of range should be a positive number: {part}")
        values.update(range(start, end + 1, step))
        star = star or part_star
    return Field(frozenset(values), star)


def parse(spec: str, time_zone: str | None = None) -> Schedule:
    """Parse a standard cron spec; `time_zone` is the CronJob's spec.timeZone (a TZ= prefix is also read)."""
    text = spec.strip()
    zone = zone_named(time_zone)
    if text.startswith(("TZ=", "CRON_TZ=")):
        head, _, text = text.partition(" ")
        zone = zone_named(head.split("=", 1)[1])
        text = text.strip()
    if not text:
        raise CronError("empty spec string")
    if text.startswith("@every "):
        seconds = go_duration(text[len("@every "):].strip())
        return Schedule(zone=zone, every=max(float(int(seconds)), 1.0))
    if text.startswith("@"):
        if text not in MACROS:
            raise CronError(f"unrecognized descriptor: {text}")
        text = MACROS[text]
    fields = text.split()
    if len(fields) != 5:
        raise CronError(f"expected exactly 5 fields, found {len(fields)}: {text}")
    return Schedule(zone=zone, minutes=_field(fields[0], 0, 59, {}), hours=_field(fields[1], 0, 23, {}),
                    days=_field(fields[2], 1, 31, {}), months=_field(fields[3], 1, 12, MONTHS),
                    weekdays=_field(fields[4], 0, 6, DAYS))


def from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc)
