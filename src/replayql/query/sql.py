"""SQL building blocks shared by every query: bound parameters, the tenant guard, and rendering per dialect.

Every value a user gives becomes a named placeholder; only identifiers from our own field tables reach SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp


@dataclass
class Params:
    """Collects bound values; each call returns the placeholder that stands for the value in the tree."""

    values: dict[str, Any] = field(default_factory=dict)

    def __call__(self, value: Any) -> exp.Placeholder:
        name = f"p{len(self.values)}"
        self.values[name] = _to_db(value)
        return exp.Placeholder(this=name)


def _to_db(value: Any) -> Any:
    # The stores keep naive UTC timestamps.
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass
class Scope:
    """One app's view of the store. Every table a query reads goes through `table`, which adds the app guard,
    so tenant isolation is a property of how queries are built, not of each caller remembering it."""

    app_id: str
    params: Params = field(default_factory=Params)

    def __post_init__(self) -> None:
        self._app = self.params(self.app_id)

    def select(self, table: str, *columns: exp.Expression | str, alias: str | None = None) -> exp.Select:
        return exp.select(*columns).from_(exp.to_table(table).as_(alias) if alias else table).where(
            self.guard(alias or table))

    def guard(self, table: str) -> exp.Expression:
        return exp.column("app_id", table=table).eq(self._app.copy())

    def param(self, value: Any) -> exp.Placeholder:
        return self.params(value)


@dataclass(frozen=True)
class Query:
    sql: str
    params: dict[str, Any]


def render(tree: exp.Expression, scope: Scope, dialect: str) -> Query:
    return Query(tree.sql(dialect=dialect), dict(scope.params.values))


def col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


def is_null(expression: exp.Expression) -> exp.Expression:
    return exp.Is(this=expression, expression=exp.Null())


def not_null(expression: exp.Expression) -> exp.Expression:
    return exp.Not(this=is_null(expression))


def contains_ci(haystack: exp.Expression, needle: exp.Expression) -> exp.Expression:
    """Case-insensitive substring test that both dialects print natively."""
    return exp.GT(this=exp.StrPosition(this=exp.Lower(this=haystack), substr=exp.Lower(this=needle)),
                  expression=exp.Literal.number(0))
