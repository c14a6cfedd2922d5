"""Calendar buckets in an IANA time zone, computed in Python for the empty-bucket fill: the same starts the
stores compute with `TimeBucket` (local midnight for days, weeks from Monday and months; elapsed hours and
minutes), so a bucket with no rows still gets its row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from replayql.query.errors import BadUserInput

UNITS = ("minute", "hour", "day", "week", "month")
_STEPS = {"minute": timedelta(minutes=1), "hour": timedelta(hours=1)}
_ZONES = frozenset(available_timezones()) | {"UTC"}


def zone(name: str) -> ZoneInfo:
    """An IANA zone by name; only names from the zone database are accepted (they reach SQL as literals)."""
    if name not in _ZONES:
        raise BadUserInput(f"unknown time zone `{name}`; use an IANA name such as Europe/Berlin or UTC")
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:
        raise BadUserInput(f"unknown time zone `{name}`") from None


def bucket_start(moment: datetime, unit: str, tz: ZoneInfo) -> datetime:
    """The start (a UTC instant) of the bucket containing `moment`."""
    local = moment.astimezone(tz)
    if unit in _STEPS:  # the wall-clock remainder is elapsed time: offsets change on the hour
        drop = timedelta(minutes=local.minute if unit == "hour" else 0, seconds=local.second,
                         microseconds=local.microsecond)
        return moment.astimezone(UTC) - drop
    day = local.date()
    if unit == "week":
        day -= timedelta(days=day.weekday())
    elif unit == "month":
        day = day.replace(day=1)
    return datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)


def next_start(start: datetime, unit: str, tz: ZoneInfo) -> datetime:
    if unit in _STEPS:
        return start + _STEPS[unit]
    local = start.astimezone(tz).date()
    if unit == "day":
        following = local + timedelta(days=1)
    elif unit == "week":
        following = local + timedelta(days=7)
    else:
        following = (local.replace(day=28) + timedelta(days=4)).replace(day=1)
    return datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC)


def bucket_starts(start: datetime, end: datetime, unit: str, tz: ZoneInfo, limit: int) -> list[datetime]:
    """Every bucket overlapping [start, end); more than `limit` is refused before any query runs."""
    out: list[datetime] = []
    current = bucket_start(start, unit, tz)
    while current < end:
        out.append(current)
        if len(out) > limit:
            break
        current = next_start(current, unit, tz)
    return out


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def local_iso(ms: int, tz: ZoneInfo) -> str:
    """A bucket start as local ISO-8601 with its offset (`2026-03-29T00:00:00+01:00`)."""
    return datetime.fromtimestamp(ms / 1000, tz).isoformat()
