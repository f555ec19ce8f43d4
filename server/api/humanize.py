"""Ages as kube-apiserver prints them in Table rows (`5s`, `3m2s`, `4d`).

kubectl prints Table cells verbatim, so the server must format ages exactly
like k8s.io/apimachinery `util/duration.HumanDuration` (2-3 significant
figures, Go's truncating integer division) and `meta/table`'s
`translateTimestampSince` (`<unknown>` for a missing timestamp).
"""
from __future__ import annotations

from datetime import datetime, timezone

_NS_PER_SECOND = 1_000_000_000
_SECOND = _NS_PER_SECOND
_MINUTE = 60 * _SECOND
_HOUR = 60 * _MINUTE


def _go_div(a: int, b: int) -> int:
    """Go integer division truncates toward zero (Python's `//` floors)."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def human_duration_ns(d: int) -> str:
    """`HumanDuration` over a Go `time.Duration` (integer nanoseconds)."""
    seconds = _go_div(d, _SECOND)
    # Up to 2 seconds in the future counts as "now": clocks drift.
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = d // _MINUTE
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = d // _HOUR
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = (hours // 24) % 365
        years = hours // 24 // 365
        return f"{years}y" if dy == 0 else f"{years}y{dy}d"
    return f"{hours // 24 // 365}y"


def human_duration(seconds: float) -> str:
    """`HumanDuration` of a duration given in (possibly fractional) seconds."""
    return human_duration_ns(int(round(seconds * _NS_PER_SECOND)))


def parse_rfc3339(value: str) -> datetime:
    """Parse the RFC 3339 timestamps kube writes (`2024-01-02T03:04:05Z`).

    Go's parser also accepts fractional seconds and numeric offsets; so does
    this. Raises ValueError on anything else.
    """
    text = value.strip()
    if len(text) < 20 or text[10] not in "Tt":
        raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
    if text[-1] in "Zz":
        text = text[:-1] + "+00:00"
    if "." in text[19:]:
        # Python < 3.11 accepts only 3 or 6 fractional digits: normalise to 6.
        head, rest = text[:19], text[20:]
        digits = len(rest) - len(rest.lstrip("0123456789"))
        if digits == 0:
            raise ValueError(f"not an RFC 3339 timestamp: {value!r}")
        frac = rest[:digits][:6].ljust(6, "0")
        text = f"{head}.{frac}{rest[digits:]}"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError(f"RFC 3339 timestamp without offset: {value!r}")
    return parsed


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def age(creation_timestamp: str | None, now: datetime) -> str:
    """The Age column: `<unknown>` when unset, `<invalid>` when unparseable.

    A naive `now` is taken as UTC.
    """
    if not creation_timestamp or creation_timestamp == "null":
        return "<unknown>"
    try:
        created = parse_rfc3339(creation_timestamp)
    except ValueError:
        return "<invalid>"
    delta = _aware(now) - created
    ns = (delta.days * 86_400 + delta.seconds) * _NS_PER_SECOND + delta.microseconds * 1000
    return human_duration_ns(ns)
