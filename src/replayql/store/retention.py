"""What retention deletes, defined once for every store.

A session is expired when its last activity (`ended_at`: its latest event, after clock-skew correction) is
before the cutoff, `days` days before now. The whole session goes, with its events and recording: a session
still active after the cutoff is kept whole, whatever the age of its first events. Each store finds expired
sessions with `is_expired` over its own form of `ended_at` (DuckDB's summary row, ClickHouse's folded maximum),
so both stores delete exactly the same sessions.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlglot import exp


def retention_cutoff(days: int, now: datetime) -> datetime:
    """The instant before which a session's last activity makes it expired, as the stores keep times (naive UTC)."""
    return (now.astimezone(UTC) - timedelta(days=days)).replace(tzinfo=None)


def is_expired(last_activity: exp.Expr, cutoff: exp.Expr) -> exp.Expr:
    return exp.LT(this=last_activity, expression=cutoff)
