"""What retention and paths start from, return on or lead to: an event condition of the filter language
(`custom("Signup")`, `visited(path = "/")`, or several joined with OR), as SQL on one events row; and the
sessions an analytics query may read (its `query` string and typed session filter)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from sqlglot import exp

from replayql.query import ast
from replayql.query.compile import Compiler, where
from replayql.query.sql import AppScope, col, time_range
from replayql.query.vocabulary import HAD_KINDS, SESSIONS


def event_condition(scope: AppScope, text: str, alias: str, role: str,
                    kinds: Collection[str] | None = None) -> exp.Expr:
    """The condition on an events row (alias `alias`) for `text`, one event condition or several joined with
    OR. `kinds`: the language's event kinds allowed (e.g. `visited`), None for all. Mistakes are BAD_QUERY with
    the position in `text`; `role` (start, return, end) names the argument in messages."""
    compiler = Compiler(scope, text)
    tree = scope.parse(text)
    items = tree.items if isinstance(tree, ast.Or) else (tree,)
    allowed = sorted(kinds) if kinds is not None else sorted(HAD_KINDS)
    parts = []
    for item in items:
        if not isinstance(item, ast.Had):
            raise compiler.fail(item, f"`{role}` is an event condition such as "
                                      f"{_example(allowed)}, or several joined with OR; filter sessions with "
                                      "`query`")
        if kinds is not None and item.kind not in kinds:
            raise compiler.fail(item, f"`{role}` takes {', '.join(f'{k}(...)' for k in allowed)} here, "
                                      f"not {item.kind}(...)")
        parts.append(compiler.event_match(item, alias))
    return exp.or_(*parts) if len(parts) > 1 else parts[0]


def _example(allowed: list[str]) -> str:
    return 'custom("Signup")' if "custom" in allowed else 'visited(path = "/")'


def session_conditions(scope: AppScope, alias: str, typed: ast.Condition | None, query: str | None
                       ) -> list[exp.Expr]:
    """The filter on the sessions (alias `alias`) an analytics query reads: the typed filter AND the query."""
    return where(scope, SESSIONS, alias, typed, query)


def sessions_in(scope: AppScope, typed: ast.Condition | None, query: str | None, start: datetime | None,
                end: datetime | None) -> exp.Select:
    """SELECT session_id of the sessions matching the filters that started in [start, end)."""
    alias = "fs"
    selected = scope.select("sessions", col("session_id", alias), alias=alias)
    for condition in [*session_conditions(scope, alias, typed, query),
                      *time_range(col("started_at", alias), start, end, scope)]:
        selected = selected.where(condition)
    return selected
