"""Session-summary merge rules, generated from their one declaration (`schema.SESSION_COLUMNS`) in two forms.

As SQL aggregates: ClickHouse keeps one row per batch and folds them with these when it reads. As a Python
merge of two summaries: DuckDB's single writer keeps the summaries of active sessions in memory, merges each
batch into them and writes whole rows. Same rules, same answers.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlglot import exp

from replayql.store.dialect import FirstBy
from replayql.store.records import SessionDelta
from replayql.store.schema import SESSION_COLUMNS, Merge


def _not_null(name: str) -> exp.Expression:
    return exp.Not(this=exp.Is(this=exp.column(name), expression=exp.Null()))


def aggregate(name: str, rule: Merge | None) -> exp.Expression:
    """How several summary rows of one session fold into one (rows carry their batch's `seq`)."""
    column = exp.column(name)
    match rule:
        case None:
            return column
        case Merge.SUM:
            return exp.Sum(this=column)
        case Merge.MIN:
            return exp.Min(this=column)
        case Merge.MAX:
            return exp.Max(this=column)
        case Merge.LATEST:
            return exp.Filter(this=exp.ArgMax(this=column, expression=exp.column("seq")),
                              expression=exp.Where(this=_not_null(name)))
        case Merge.WITH_FIRST_PAGE | Merge.WITH_CONTEXT:
            key = rule.ordering
            assert key is not None
            return FirstBy(this=column, expression=exp.column(key), where=_not_null(key))
    raise ValueError(f"no aggregate for merge rule {rule}")


def _smaller(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else min(a, b)


def _larger(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else max(a, b)


def _takes_incoming(stored: SessionDelta, incoming: SessionDelta, rule: Merge) -> bool:
    """WITH_* rules: the incoming value wins when it comes with the smaller ordering key (or the first one)."""
    key = rule.ordering
    assert key is not None
    old, new = getattr(stored, key), getattr(incoming, key)
    return old is None or (new is not None and new < old)


def merge_sessions(stored: SessionDelta, incoming: SessionDelta) -> SessionDelta:
    """The summary after `incoming` (a later batch) is merged into `stored`; neither is changed. NULLs are
    absent values, as in SQL's aggregates."""
    # every WITH_* decision reads the ordering keys before they merge
    takes = {rule: _takes_incoming(stored, incoming, rule) for rule in (Merge.WITH_FIRST_PAGE, Merge.WITH_CONTEXT)}
    merged: dict[str, Any] = {}
    for name, _, rule in SESSION_COLUMNS:
        old, new = getattr(stored, name), getattr(incoming, name)
        match rule:
            case Merge.SUM:
                merged[name] = old + new
            case Merge.MIN:
                merged[name] = _smaller(old, new)
            case Merge.MAX:
                merged[name] = _larger(old, new)
            case Merge.LATEST:
                merged[name] = old if new is None else new
            case Merge.WITH_FIRST_PAGE | Merge.WITH_CONTEXT:
                merged[name] = new if takes[rule] else old
    return replace(stored, **merged)


def session_aggregates() -> list[exp.Expression]:
    """One aliased aggregate per session column, keys included (group by app_id, session_id)."""
    return [exp.alias_(aggregate(name, rule), name) for name, _, rule in SESSION_COLUMNS]


def issue_status(status: exp.Expression, changed_at: exp.Expression, last_received: exp.Expression
                 ) -> exp.Expression:
    """A RESOLVED issue that receives a new occurrence after it was resolved is OPEN again: a regression must be
    seen. Read from the server's times when a query runs rather than flipped at ingest, so any number of writers
    agree without coordinating."""
    regressed = exp.and_(status.copy().eq(exp.Literal.string("RESOLVED")),
                         exp.GT(this=last_received, expression=changed_at))
    return exp.Case(ifs=[exp.If(this=regressed, true=exp.Literal.string("OPEN"))], default=status)


ISSUE_FIELDS = ("issue_id", "title", "error_type", "message", "stack", "first_seen", "last_seen", "count")


def issues_with_status(source: exp.Expression, app: exp.Expression) -> exp.Select:
    """One app's issues with their effective status, from a relation with the stored status columns."""
    columns = [exp.column(c) for c in ("app_id", *ISSUE_FIELDS)]
    status = issue_status(exp.column("status"), exp.column("status_changed_at"), exp.column("last_received_at"))
    return exp.select(*columns, exp.alias_(status, "status")).from_(source).where(exp.column("app_id").eq(app))
