"""Scalars with the API's own wire formats."""

from __future__ import annotations

from datetime import UTC, datetime

import strawberry


def _serialize(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("DateTime must be an ISO-8601 string such as 2026-01-31T12:00:00.000Z")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not an ISO-8601 date-time such as 2026-01-31T12:00:00.000Z") from None
    # A time without an offset is read as UTC, the only zone the API speaks.
    try:
        parsed = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except OverflowError:
        parsed = datetime.min.replace(tzinfo=UTC)
    if not EARLIEST <= parsed < LATEST:
        # the calendar arithmetic of buckets and previous periods stays far from datetime's edges
        raise ValueError(f"{value!r} is out of range: use a time from {EARLIEST.year} to {LATEST.year - 1}")
    return parsed


EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


DateTime = strawberry.scalar(
    name="DateTime", serialize=_serialize, parse_value=_parse,
    description="An ISO-8601 date-time in UTC with milliseconds, e.g. 2026-01-31T12:00:00.000Z.")
