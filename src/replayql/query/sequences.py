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

Both are built with the expression builder; values (the window) go in as bound parameters, and the synthetic
time's constants are our own integers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlglot import exp

from replayql.query import language as lang
from replayql.query.sql import col, not_null

if TYPE_CHECKING:
    from replayql.query.compile import Compiler

MAX_STEPS = 16
# windowFunnel's synthetic time: ((ms since the session's first matching event) * ROWS + row) * SLOTS + slot.
# With at most 2^24 matching events per session and sessions under 2^31 ms (24 days) it stays below 2^60.
_ROWS, _SLOTS = 1 << 24, 32
_NO_WINDOW = 1 << 62
_MAX_WINDOW_MS = (1 << 31) - 1
_POSITION = ("session_id", "ts", "seq", "idx")


def sequence_sessions(compiler: Compiler, node: lang.Then) -> exp.Select:
    """SELECT session_id of the sessions where the sequence happened."""
    if compiler.scope.target.dialect == "clickhouse":
        return _window_funnel(compiler, node)
    return _portable(compiler, node)


def _matches(compiler: Compiler, node: lang.Then, alias: str) -> list[exp.Expression]:
    return [compiler.event_match(step, alias) for step in node.steps]


def _number(value: int) -> exp.Literal:
    return exp.Literal.number(value)


def _portable(compiler: Compiler, node: lang.Then) -> exp.Select:
    events = compiler.alias("e")
    matches = _matches(compiler, node, events)
    base = compiler.scope.select(
        "events", *(col(c, events) for c in _POSITION),
        *(exp.alias_(m, f"m{k}") for k, m in enumerate(matches, 1)), alias=events).where(exp.or_(*matches))
    names = [compiler.alias("seq") for _ in range(len(matches) + 1)]
    base_name, steps = names[0], names[1:]
    first = exp.select(*_POSITION, exp.alias_(col("ts"), "start")).from_(base_name).where(col("m1"))
    ctes: list[tuple[str, exp.Select]] = [(base_name, base), (steps[0], first)]
    for k in range(2, len(matches) + 1):
        step = _next_step(steps[k - 2], base_name, k)
        if node.within_ms is not None:
            elapsed = exp.Sub(this=exp.func("epoch_ms", col("ts")), expression=exp.func("epoch_ms", col("start")))
            step = step.where(exp.LTE(this=elapsed, expression=compiler.scope.param(node.within_ms)))
        ctes.append((steps[k - 1], step))
    query = exp.select("session_id").from_(steps[-1])
    for name, cte in ctes:
        query = query.with_(name, as_=cte)
    return query


def _next_step(previous: str, base: str, k: int) -> exp.Select:
    """The events matching step k that come after a chain reaching step k-1, each with the latest start among
    those chains: a running MAX over the previous step's events, where an event of step k sorts before the same
    event as step k-1 (tag), so it never extends a chain it ends itself."""
    prior = exp.select(*_POSITION, exp.alias_(col("start"), "prev"), exp.alias_(_number(0), "tag")).from_(previous)
    current = exp.select(*_POSITION, exp.alias_(exp.cast(exp.Null(), "TIMESTAMP"), "prev"),
                         exp.alias_(_number(1), "tag")).from_(base).where(col(f"m{k}"))
    order = exp.Order(expressions=[*(exp.Ordered(this=col(c)) for c in _POSITION[1:]),
                                   exp.Ordered(this=col("tag"), desc=True)])
    earlier = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=_number(1),
                             end_side="PRECEDING")
    latest_start = exp.Window(this=exp.Max(this=col("prev")), partition_by=[col("session_id")], order=order,
                              spec=earlier)
    reached = exp.select(*_POSITION, "tag", exp.alias_(latest_start, "start")).from_(
        exp.union(prior, current, distinct=False).subquery("candidates"))
    return exp.select(*_POSITION, "start").from_(reached.subquery("reached")).where(
        col("tag").eq(_number(1))).where(not_null(col("start")))


def _window_funnel(compiler: Compiler, node: lang.Then) -> exp.Select:
    events = compiler.alias("e")
    matches = _matches(compiler, node, events)
    ms = exp.func("toUnixTimestamp64Milli", col("ts", events))
    order = exp.Order(expressions=[exp.Ordered(this=col(c, events)) for c in _POSITION[1:]])
    numbered = compiler.scope.select(
        "events", col("session_id", events), exp.alias_(ms, "ms"),
        exp.alias_(exp.Window(this=exp.Min(this=ms.copy()), partition_by=[col("session_id", events)]), "first_ms"),
        exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[col("session_id", events)], order=order), "rn"),
        exp.alias_(_step_numbers(matches), "steps"), alias=events).where(exp.or_(*(m.copy() for m in matches)))
    per_step = exp.select("session_id", "ms", "first_ms", "rn", exp.alias_(exp.Explode(this=col("steps")), "step")
                          ).from_(numbered.subquery("matches"))
    elapsed = exp.func("toUInt64", exp.Sub(this=col("ms"), expression=col("first_ms")))
    slot = exp.Sub(this=_number(_SLOTS), expression=col("step"))
    synthetic = exp.func("toUInt64", exp.Add(this=exp.Mul(this=exp.paren(exp.Add(
        this=exp.Mul(this=elapsed, expression=_number(_ROWS)), expression=col("rn"))), expression=_number(_SLOTS)),
        expression=exp.paren(slot)))
    timed = exp.select("session_id", exp.alias_(synthetic, "t"), "step").from_(per_step.subquery("entries"))
    n = len(matches)
    window = _NO_WINDOW
    if node.within_ms is not None and node.within_ms <= _MAX_WINDOW_MS:
        window = (node.within_ms + 1) * _ROWS * _SLOTS - 1
    funnel = exp.ParameterizedAgg(this="windowFunnel", expressions=[_number(window), exp.Literal.string(
        "strict_increase")], params=[col("t"), *(col("step").eq(_number(k)) for k in range(1, n + 1))])
    return exp.select("session_id").from_(timed.subquery("timed")).group_by("session_id").having(
        funnel.eq(_number(n)))


def _step_numbers(matches: list[exp.Expression]) -> exp.Expression:
    """The steps an event matches, as an array of step numbers (empty entries dropped)."""
    flagged = exp.Array(expressions=[exp.If(this=m.copy(), true=_number(k), false=_number(0))
                                     for k, m in enumerate(matches, 1)])
    positive = exp.Lambda(this=exp.GT(this=exp.column("x"), expression=_number(0)),
                          expressions=[exp.to_identifier("x")])
    return exp.func("arrayFilter", positive, flagged)
