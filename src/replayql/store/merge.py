"""Summary merge rules, generated from their one declaration each (`schema.SESSION_COLUMNS`, `USER_SUMMARY`,
`ISSUE_SUMMARY`) in the forms the stores need.

As SQL aggregates over deltas (`fold`): ClickHouse keeps one row per batch and folds them when it reads, and
DuckDB folds a group commit's deltas before its upsert. As SQL that merges a stored row with an incoming one
(`pairwise`): DuckDB's upserts of users and issues. As a Python merge of two session summaries
(`merge_sessions`): DuckDB's single writer keeps the summaries of active sessions in memory, merges each batch
into them and writes whole rows. Same rules, same answers. Rules that only one engine can fold its own way
(a JSON patch, distinct sessions, columns set by the API) are left to that store, which says how.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlglot import exp

from replayql.store.dialect import FirstBy
from replayql.store.records import SessionDelta
from replayql.store.schema import SESSION_COLUMNS, Merge


def _not_null(value: exp.Expression) -> exp.Expression:
    return exp.Not(this=exp.Is(this=value, expression=exp.Null()))


Summary = tuple[tuple[str, str, Merge | None], ...]  # (column, logical type, rule), as schema declares them
_WITH = (Merge.WITH_FIRST_PAGE, Merge.WITH_CONTEXT, Merge.WITH_FIRST_OCCURRENCE)


def aggregate(name: str, rule: Merge | None, order: str = "seq", source: str | None = None,
              table: str | None = None) -> exp.Expression:
    """How several deltas of one summary fold into one: `source` is the deltas' column for `name` (the same name
    by default), `order` the column whose highest value is the latest delta."""
    def column(of: str) -> exp.Column:
        return exp.column(of, table)

    value = column(source or name)
    match rule:
        case None:
            return value
        case Merge.SUM:
            return exp.Sum(this=value)
        case Merge.MIN:
            return exp.Min(this=value)
        case Merge.MAX:
            return exp.Max(this=value)
        case Merge.LATEST:
            return exp.Filter(this=exp.ArgMax(this=value, expression=column(order)),
                              expression=exp.Where(this=_not_null(value.copy())))
        case Merge.WITH_FIRST_PAGE | Merge.WITH_CONTEXT | Merge.WITH_FIRST_OCCURRENCE:
            key = rule.ordering
            assert key is not None
            return FirstBy(this=value, expression=column(key), where=_not_null(column(key)))
    raise ValueError(f"{rule} folds in each store's own way")


def fold(summary: Summary, *, order: str = "seq", sources: dict[str, str] | None = None, table: str | None = None,
         own: dict[str, exp.Expr] | None = None) -> list[exp.Expr]:
    """Every column of a summary, aliased, folded from deltas (group by its keys). `own` gives the store's own
    fold for the rules `aggregate` leaves to it."""
    own = own or {}
    return [exp.alias_(own[name] if name in own else
                       aggregate(name, rule, order, (sources or {}).get(name), table), name)
            for name, _, rule in summary]


def pairwise(name: str, rule: Merge | None, stored: str, incoming: str) -> exp.Expr | None:
    """The merged value of `name` when the row `incoming` meets the stored row `stored` (an upsert's SET);
    None for keys and the columns only the API sets."""
    def old() -> exp.Column:
        return exp.column(name, stored)

    def new() -> exp.Column:
        return exp.column(name, incoming)

    match rule:
        case None | Merge.SET_BY_API:
            return None
        case Merge.SUM | Merge.DISTINCT_SESSIONS:  # a delta flags a new session once (ingest.sessionize)
            return exp.Add(this=old(), expression=new())
        case Merge.MIN:  # least and greatest as the upsert's engine has them: NULL is no value, as in min()
            return exp.Anonymous(this="least", expressions=[old(), new()])
        case Merge.MAX:
            return exp.Anonymous(this="greatest", expressions=[old(), new()])
        case Merge.LATEST:
            return exp.Coalesce(this=new(), expressions=[old()])
        case Merge.PATCH:
            return exp.func("json_merge_patch", old(), new())
    assert rule in _WITH and rule.ordering is not None
    old_key, new_key = exp.column(rule.ordering, stored), exp.column(rule.ordering, incoming)
    earlier = exp.or_(exp.LT(this=new_key, expression=old_key),
                      exp.and_(exp.Is(this=old_key.copy(), expression=exp.Null()), _not_null(new_key.copy())))
    return exp.Case(ifs=[exp.If(this=earlier, true=new())], default=old())


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
            case Merge.LATEST | Merge.LATEST_WRITTEN:  # merged in the order written: the incoming delta is later
                merged[name] = old if new is None else new
            case Merge.WITH_FIRST_PAGE | Merge.WITH_CONTEXT:
                merged[name] = new if takes[rule] else old
    return replace(stored, **merged)


def issue_status(status: exp.Expression, changed_at: exp.Expression, last_received: exp.Expression
                 ) -> exp.Expression:
    """A RESOLVED issue that receives a new occurrence after it was resolved is OPEN again: a regression must be
    seen. Read from the server's times when a query runs rather than flipped at ingest, so any number of writers
    agree without coordinating."""
    regressed = exp.and_(status.copy().eq(exp.Literal.string("RESOLVED")),
                         exp.GT(this=last_received, expression=changed_at))
    return exp.Case(ifs=[exp.If(this=regressed, true=exp.Literal.string("OPEN"))], default=status)


ISSUE_FIELDS = ("issue_id", "title", "error_type", "message", "stack", "first_seen", "last_seen", "count")


def issues_with_status(source: exp.Expression, app: exp.Expression | None = None) -> exp.Select:
    """Issues with their effective status (of one app, or of all for a view the caller guards), from a relation
    with the stored status columns."""
    columns = [exp.column(c) for c in ("app_id", *ISSUE_FIELDS)]
    status = issue_status(exp.column("status"), exp.column("status_changed_at"), exp.column("last_received_at"))
    query = exp.select(*columns, exp.alias_(status, "status")).from_(source)
    return query if app is None else query.where(exp.column("app_id").eq(app))
