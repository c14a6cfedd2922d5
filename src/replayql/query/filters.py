"""Typed filters compiled to SQL conditions, in one place for every entity.

A filter is a list of (field, condition) pairs combined with AND. Each entity has a table of the fields it can
filter on; a field is either a column of the entity's own table or a "had" condition, a semi-join into events.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlglot import exp

from replayql.query.errors import BadUserInput
from replayql.query.sql import Scope, col, contains_ci, is_null, not_null


@dataclass(frozen=True)
class StringCondition:
    eq: str | None = None
    neq: str | None = None
    in_: Sequence[str] | None = None
    not_in: Sequence[str] | None = None
    contains: str | None = None


@dataclass(frozen=True)
class NumberCondition:
    eq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


Condition = StringCondition | NumberCondition | bool


@dataclass(frozen=True)
class Column:
    """A filter on a column of the entity's own row."""

    name: str


@dataclass(frozen=True)
class NotNull:
    """A boolean filter: true when the column has a value (e.g. `identified`)."""

    name: str


@dataclass(frozen=True)
class Positive:
    """A boolean filter: true when a counter is above zero (e.g. `hasErrors`)."""

    name: str


@dataclass(frozen=True)
class HadEvent:
    """Sessions that had an event of `kind` whose `column` satisfies the condition."""

    kind: str
    column: str


FieldSource = Column | NotNull | Positive | HadEvent


def compile_filter(pairs: Sequence[tuple[FieldSource, Condition]], scope: Scope, table: str
                   ) -> list[exp.Expression]:
    return [_compile(source, condition, scope, table) for source, condition in pairs]


def _compile(source: FieldSource, condition: Condition, scope: Scope, table: str) -> exp.Expression:
    match source:
        case Column(name):
            return _condition(col(name, table), condition, scope)
        case NotNull(name):
            return not_null(col(name, table)) if condition else is_null(col(name, table))
        case Positive(name):
            positive = exp.GT(this=col(name, table), expression=exp.Literal.number(0))
            return positive if condition else exp.Not(this=positive)
        case HadEvent(kind, column):
            return had_event(scope, table, kind, [_condition(col(column, "e"), condition, scope)])
    raise TypeError(f"unsupported filter field source {source!r}")


def had_event(scope: Scope, table: str, kind: str, conditions: Sequence[exp.Expression]) -> exp.Expression:
    """Sessions of `table` with an event of `kind` meeting every condition (on columns of alias `e`): a
    semi-join into events, never a query per session."""
    inner = scope.select("events", col("session_id", "e"), alias="e").where(
        col("kind", "e").eq(exp.Literal.string(kind)))
    for condition in conditions:
        inner = inner.where(condition)
    return exp.In(this=col("session_id", table), query=exp.Subquery(this=inner))


def _condition(column: exp.Expression, condition: Condition, scope: Scope) -> exp.Expression:
    if isinstance(condition, StringCondition):
        parts = _string_parts(column, condition, scope)
    elif isinstance(condition, NumberCondition):
        parts = _number_parts(column, condition, scope)
    else:
        raise BadUserInput(f"a boolean is not a condition on {column.sql()}")
    if not parts:
        raise BadUserInput("an empty condition object: give at least one operator such as `eq`")
    return exp.and_(*parts)


def _string_parts(column: exp.Expression, c: StringCondition, scope: Scope) -> list[exp.Expression]:
    parts: list[exp.Expression] = []
    if c.eq is not None:
        parts.append(column.copy().eq(scope.param(c.eq)))
    if c.neq is not None:  # "not equal" includes rows where the field is missing, as users expect
        parts.append(exp.or_(is_null(column.copy()), exp.NEQ(this=column.copy(), expression=scope.param(c.neq))))
    if c.in_ is not None:
        parts.append(_in(column, c.in_, scope) if c.in_ else exp.false())
    if c.not_in:
        parts.append(exp.or_(is_null(column.copy()), exp.Not(this=_in(column, c.not_in, scope))))
    if c.contains is not None:
        parts.append(contains_ci(column.copy(), scope.param(c.contains)))
    return parts


def _in(column: exp.Expression, values: Sequence[str], scope: Scope) -> exp.Expression:
    return exp.In(this=column.copy(), expressions=[scope.param(v) for v in values])


def _number_parts(column: exp.Expression, c: NumberCondition, scope: Scope) -> list[exp.Expression]:
    ops: list[tuple[Any, type[exp.Expression]]] = [(c.eq, exp.EQ), (c.gt, exp.GT), (c.gte, exp.GTE),
                                                   (c.lt, exp.LT), (c.lte, exp.LTE)]
    return [op(this=column.copy(), expression=scope.param(value)) for value, op in ops if value is not None]


def time_range(column: exp.Expression, start: datetime | None, end: datetime | None, scope: Scope
               ) -> list[exp.Expression]:
    """[start, end): the usual half-open range, so consecutive ranges never count a row twice."""
    parts: list[exp.Expression] = []
    if start is not None:
        parts.append(exp.GTE(this=column.copy(), expression=scope.param(start)))
    if end is not None:
        parts.append(exp.LT(this=column.copy(), expression=scope.param(end)))
    if start is not None and end is not None and end < start:
        raise BadUserInput("timeRange.to is before timeRange.from")
    return parts
