"""SQL building blocks shared by every query: bound parameters, the tenant guard, and rendering per dialect.

Every value a user gives becomes a named placeholder; only identifiers from our own field tables reach SQL text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from sqlglot import exp

from replayql.query import ast, language
from replayql.query.errors import BadUserInput
from replayql.store.base import ReadScope


class Target(Protocol):
    """What a query needs from the store it runs on: its SQL dialect and how it reads each logical table."""

    dialect: str

    def relation(self, table: str, alias: str, scope: ReadScope) -> exp.Expr: ...

    def placeholder(self, name: str, value: Any) -> exp.Placeholder: ...


@dataclass
class Params:
    """Collects bound values; each call returns the placeholder that stands for the value in the tree."""

    make: Callable[[str, Any], exp.Placeholder]
    values: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = _to_db(value)
        return self.make(name, self.values[name])


def _to_db(value: Any) -> Any:
    # The stores keep naive UTC timestamps.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass
class AppScope:
    """One app's view of the store. Every table a query reads goes through `select`, which adds the app guard,
    so tenant isolation is a property of how queries are built, not of each caller remembering it."""

    app_id: str
    target: Target
    timeout_s: float | None = None  # every store query under it stops after this long (QUERY_TIMEOUT)
    parse: Callable[[str], ast.Condition] = language.parse  # reads query strings; a server's caches them
    params: Params = field(init=False)
    memo: dict[str, Any] = field(init=False, default_factory=dict)  # the store's, for all this scope's reads

    def __post_init__(self) -> None:
        self.params = Params(self.target.placeholder)
        self._app = self.params(self.app_id)

    def select(self, table: str, *columns: exp.Expr | str, alias: str,
               only: tuple[str, list[Any]] | None = None) -> exp.Select:
        """SELECT from one logical table of this app; the store decides how that table is read. `only`:
        (key column, values) to read just those rows."""
        hint: tuple[str, list[exp.Expr]] | None = (only[0], [self.param(v) for v in only[1]]) if only else None
        source = self.target.relation(table, alias, self._read_scope(hint))
        query = exp.select(*columns).from_(source).where(self.guard(alias))
        if hint:
            query = query.where(exp.In(this=col(hint[0], alias), expressions=[v.copy() for v in hint[1]]))
        return query

    def join(self, query: exp.Select, table: str, alias: str, on: exp.Expr, kind: str = "left"
             ) -> exp.Select:
        """JOIN another logical table of this app: read through the store, guarded like the first."""
        source = self.target.relation(table, alias, self._read_scope())
        return query.join(source, on=exp.and_(self.guard(alias), on), join_type=kind)

    def _read_scope(self, only: tuple[str, list[exp.Expr]] | None = None) -> ReadScope:
        return ReadScope(self.app_id, self._app.copy(), self.param, only, self.memo)

    def guard(self, table: str) -> exp.Expr:
        return exp.column("app_id", table=table).eq(self._app.copy())

    def param(self, value: Any) -> exp.Placeholder:
        return self.params(value)


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def is_null(expression: exp.Expr) -> exp.Expr:
    return exp.Is(this=expression, expression=exp.Null())


def not_null(expression: exp.Expr) -> exp.Expr:
    return exp.Not(this=is_null(expression))


def contains_ci(haystack: exp.Expr, needle: exp.Expr) -> exp.Expr:
    """Case-insensitive substring test that both dialects print natively."""
    return exp.GT(this=exp.StrPosition(this=exp.Lower(this=haystack), substr=exp.Lower(this=needle)),
                  expression=exp.Literal.number(0))


def time_range(column: exp.Expr, start: datetime | None, end: datetime | None, scope: AppScope
               ) -> list[exp.Expr]:
    """[start, end): the usual half-open range, so consecutive ranges never count a row twice."""
    parts: list[exp.Expr] = []
    if start is not None:
        parts.append(exp.GTE(this=column.copy(), expression=scope.param(start)))
    if end is not None:
        parts.append(exp.LT(this=column.copy(), expression=scope.param(end)))
    if start is not None and end is not None and end < start:
        raise BadUserInput("timeRange.to is before timeRange.from")
    return parts
