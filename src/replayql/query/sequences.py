"""Sequences, `A THEN B [THEN C ...] [WITHIN 10s]`: the sessions with events matching each step in order.

Step k must be a later event than step k-1 (in the order ts, seq, idx), one event cannot stand for two steps,
and with WITHIN the last step is at most that long after the first. The answer is the same on both stores,
reached two ways:

- portable SQL (DuckDB): for each step, every matching event keeps the latest start among the chains that reach
  it (a later start can only help the window), found with a running MAX over the previous step's events:
  one window pass per step;
- ClickHouse's native `windowFunnel`, which runs the same latest-start search in one aggregate pass. It takes
  one timestamp per entry and compares them only by value, so every (event, step) pair gets its own strictly
  increasing synthetic time, with a later step before an earlier one on the same event (so an event never
  extends a chain it started); the window is scaled to match.

The SQL templates below hold only our own identifiers and integers; values go in as bound parameters.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlglot
from sqlglot import exp

from replayql.query import language as lang
from replayql.query.sql import col

if TYPE_CHECKING:
    from replayql.query.compile import Compiler

MAX_STEPS = 16
# windowFunnel's synthetic time: ((ms since the session's first matching event) * ROWS + row) * SLOTS + slot.
# With at most 2^24 matching events per session and sessions under 2^31 ms (24 days) it stays below 2^60.
_ROWS, _SLOTS = 1 << 24, 32
_NO_WINDOW = 1 << 62
_MAX_WINDOW_MS = (1 << 31) - 1

_STEP = """
SELECT session_id, ts, seq, idx, start FROM (
  SELECT session_id, ts, seq, idx, tag, MAX(prev) OVER (PARTITION BY session_id ORDER BY ts, seq, idx, tag DESC
    ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS start
  FROM (SELECT session_id, ts, seq, idx, start AS prev, 0 AS tag FROM {previous}
        UNION ALL SELECT session_id, ts, seq, idx, CAST(NULL AS TIMESTAMP) AS prev, 1 AS tag FROM {base} WHERE m{k})
    AS candidates) AS reached
WHERE tag = 1 AND NOT start IS NULL
"""

_FUNNEL = """
SELECT session_id FROM (
  SELECT session_id, toUInt64((toUInt64(ms - first_ms) * {rows} + rn) * {slots} + ({slots} - step)) AS t, step
  FROM __matches AS matches ARRAY JOIN steps AS step)
GROUP BY session_id HAVING windowFunnel({window}, 'strict_increase')(t, {conditions}) = {n}
"""


def sequence_sessions(compiler: Compiler, node: lang.Then) -> exp.Select:
    """SELECT session_id of the sessions where the sequence happened."""
    if compiler.scope.target.dialect == "clickhouse":
        return _window_funnel(compiler, node)
    return _portable(compiler, node)


def _matches(compiler: Compiler, node: lang.Then, alias: str) -> list[exp.Expression]:
    return [compiler.event_match(step, alias) for step in node.steps]


def _portable(compiler: Compiler, node: lang.Then) -> exp.Select:
    events = compiler.alias("e")
    matches = _matches(compiler, node, events)
    base = compiler.scope.select(
        "events", *(col(c, events) for c in ("session_id", "ts", "seq", "idx")),
        *(exp.alias_(m, f"m{k}") for k, m in enumerate(matches, 1)), alias=events).where(exp.or_(*matches))
    names = [compiler.alias("seq") for _ in range(len(matches) + 1)]
    base_name, steps = names[0], names[1:]
    ctes = [(base_name, base),
            (steps[0], sqlglot.parse_one(f"SELECT session_id, ts, seq, idx, ts AS start FROM {base_name} WHERE m1"))]
    for k in range(2, len(matches) + 1):
        step = sqlglot.parse_one(_STEP.format(previous=steps[k - 2], base=base_name, k=k), read="duckdb")
        assert isinstance(step, exp.Select)
        if node.within_ms is not None:
            elapsed = exp.Sub(this=exp.func("epoch_ms", col("ts")), expression=exp.func("epoch_ms", col("start")))
            step = step.where(exp.LTE(this=elapsed, expression=compiler.scope.param(node.within_ms)))
        ctes.append((steps[k - 1], step))
    query = exp.select("session_id").from_(steps[-1])
    for name, cte in ctes:
        query = query.with_(name, as_=cte)
    return query


def _window_funnel(compiler: Compiler, node: lang.Then) -> exp.Select:
    events = compiler.alias("e")
    matches = _matches(compiler, node, events)
    ms = exp.func("toUnixTimestamp64Milli", col("ts", events))
    partition = [col("session_id", events)]
    order = exp.Order(expressions=[exp.Ordered(this=col(c, events)) for c in ("ts", "seq", "idx")])
    numbered = compiler.scope.select(
        "events", col("session_id", events), exp.alias_(ms, "ms"),
        exp.alias_(exp.Window(this=exp.Min(this=ms.copy()), partition_by=partition), "first_ms"),
        exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[p.copy() for p in partition], order=order), "rn"),
        exp.alias_(_step_numbers(matches), "steps"), alias=events).where(exp.or_(*(m.copy() for m in matches)))
    n = len(matches)
    window = _NO_WINDOW
    if node.within_ms is not None and node.within_ms <= _MAX_WINDOW_MS:
        window = (node.within_ms + 1) * _ROWS * _SLOTS - 1
    conditions = ", ".join(f"step = {k}" for k in range(1, n + 1))
    template = _FUNNEL.format(rows=_ROWS, slots=_SLOTS, window=window, conditions=conditions, n=n)
    query = sqlglot.parse_one(template, read="clickhouse")
    assert isinstance(query, exp.Select)
    placeholder = next(t for t in query.find_all(exp.Table) if t.name == "__matches")
    placeholder.replace(exp.Subquery(this=numbered, alias="matches"))
    return query


def _step_numbers(matches: list[exp.Expression]) -> exp.Expression:
    """The steps an event matches, as an array of step numbers (empty entries dropped)."""
    flagged = exp.Array(expressions=[exp.If(this=m.copy(), true=exp.Literal.number(k), false=exp.Literal.number(0))
                                     for k, m in enumerate(matches, 1)])
    positive = exp.Lambda(this=exp.GT(this=exp.column("x"), expression=exp.Literal.number(0)),
                          expressions=[exp.to_identifier("x")])
    return exp.func("arrayFilter", positive, flagged)
