"""How each store finds sequences (`A THEN B [THEN C ...] [WITHIN w]`): the two SQL forms that the dialects
print for the `SessionsInSequence` node (store.dialect). The query layer hands over the guarded candidate events,
one row per event matching some step, with the columns session_id, ts, seq, idx and one flag m1..mN per step.

Step k must be a later event than step k-1 (in the order ts, seq, idx), one event cannot stand for two steps,
and with WITHIN the last step is at most that long after the first. Both forms give the same answer:

- window functions (DuckDB): for each step, every matching event keeps the latest start among the chains that
  reach it (a later start can only help the window), found with a running MAX over the previous step's events:
  one window pass per step;
- ClickHouse's native `windowFunnel`, which runs the same latest-start search in one aggregate pass. It takes
  one timestamp per entry and compares them only by value, so every (event, step) pair gets its own strictly
  increasing synthetic time, with a later step before an earlier one on the same event (so an event never
  extends a chain it started); the window is scaled to match.

The window and the synthetic time's constants are our own integers, printed as numbers; every value a user gave
is already a placeholder inside the candidates.
"""

from __future__ import annotations

from sqlglot import exp

# windowFunnel's synthetic time: ((ms since the session's first matching event) * ROWS + row) * SLOTS + slot.
# With at most 2^24 matching events per session and sessions under 2^31 ms (24 days) it stays below 2^60.
_ROWS, _SLOTS = 1 << 24, 32
_NO_WINDOW = 1 << 62
_MAX_WINDOW_MS = (1 << 31) - 1
POSITION = ("session_id", "ts", "seq", "idx")
# The CTEs of the window-function form. A WITH inside a subquery is local to it, so two sequences of one filter
# never see each other's.
_BASE = "seq_candidates"


def window_chains(candidates: exp.Expr, steps: int, within_ms: int | None) -> exp.Select:
    """SELECT session_id of the sessions where the sequence happened, one window pass per step."""
    names = [f"seq_step{k}" for k in range(1, steps + 1)]
    first = exp.select(*POSITION, exp.alias_(_col("ts"), "start")).from_(_BASE).where(_col("m1"))
    ctes: list[tuple[str, exp.Expr]] = [(_BASE, candidates), (names[0], first)]
    for k in range(2, steps + 1):
        step = _next_step(names[k - 2], k)
        if within_ms is not None:
            elapsed = exp.Sub(this=exp.func("EPOCH_MS", _col("ts")), expression=exp.func("EPOCH_MS", _col("start")))
            step = step.where(exp.LTE(this=elapsed, expression=_number(within_ms)))
        ctes.append((names[k - 1], step))
    query = exp.select("session_id").from_(names[-1])
    for name, cte in ctes:
        query = query.with_(name, as_=cte)
    return query


def _next_step(previous: str, k: int) -> exp.Select:
    """The events matching step k that come after a chain reaching step k-1, each with the latest start among
    those chains: a running MAX over the previous step's events, where an event of step k sorts before the same
    event as step k-1 (tag), so it never extends a chain it ends itself."""
    prior = exp.select(*POSITION, exp.alias_(_col("start"), "prev"), exp.alias_(_number(0), "tag")).from_(previous)
    current = exp.select(*POSITION, exp.alias_(exp.cast(exp.Null(), "TIMESTAMP"), "prev"),
                         exp.alias_(_number(1), "tag")).from_(_BASE).where(_col(f"m{k}"))
    order = exp.Order(expressions=[*(exp.Ordered(this=_col(c)) for c in POSITION[1:]),
                                   exp.Ordered(this=_col("tag"), desc=True)])
    earlier = exp.WindowSpec(kind="ROWS", start="UNBOUNDED", start_side="PRECEDING", end=_number(1),
                             end_side="PRECEDING")
    latest_start = exp.Window(this=exp.Max(this=_col("prev")), partition_by=[_col("session_id")], order=order,
                              spec=earlier)
    reached = exp.select(*POSITION, "tag", exp.alias_(latest_start, "start")).from_(
        exp.union(prior, current, distinct=False).subquery("candidates"))
    return exp.select(*POSITION, "start").from_(reached.subquery("reached")).where(
        _col("tag").eq(_number(1))).where(exp.Not(this=exp.Is(this=_col("start"), expression=exp.Null())))


def window_funnel(candidates: exp.Expr, steps: int, within_ms: int | None) -> exp.Select:
    """SELECT session_id of the sessions where the sequence happened, with one windowFunnel aggregate."""
    ms = exp.func("toUnixTimestamp64Milli", _col("ts"))
    order = exp.Order(expressions=[exp.Ordered(this=_col(c)) for c in POSITION[1:]])
    numbered = exp.select(
        "session_id", exp.alias_(ms, "ms"),
        exp.alias_(exp.Window(this=exp.Min(this=ms.copy()), partition_by=[_col("session_id")]), "first_ms"),
        exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[_col("session_id")], order=order), "rn"),
        exp.alias_(_step_numbers(steps), "steps")).from_(exp.Subquery(this=candidates, alias="candidates"))
    per_step = exp.select("session_id", "ms", "first_ms", "rn", exp.alias_(exp.Explode(this=_col("steps")), "step")
                          ).from_(numbered.subquery("matches"))
    elapsed = exp.func("toUInt64", exp.Sub(this=_col("ms"), expression=_col("first_ms")))
    slot = exp.Sub(this=_number(_SLOTS), expression=_col("step"))
    synthetic = exp.func("toUInt64", exp.Add(this=exp.Mul(this=exp.paren(exp.Add(
        this=exp.Mul(this=elapsed, expression=_number(_ROWS)), expression=_col("rn"))), expression=_number(_SLOTS)),
        expression=exp.paren(slot)))
    timed = exp.select("session_id", exp.alias_(synthetic, "t"), "step").from_(per_step.subquery("entries"))
    window = _NO_WINDOW
    if within_ms is not None and within_ms <= _MAX_WINDOW_MS:
        window = (within_ms + 1) * _ROWS * _SLOTS - 1
    funnel = exp.ParameterizedAgg(this="windowFunnel", expressions=[_number(window), exp.Literal.string(
        "strict_increase")], params=[_col("t"), *(_col("step").eq(_number(k)) for k in range(1, steps + 1))])
    return exp.select("session_id").from_(timed.subquery("timed")).group_by("session_id").having(
        funnel.eq(_number(steps)))


def _step_numbers(steps: int) -> exp.Expr:
    """The steps an event matches, as an array of step numbers (empty entries dropped)."""
    flagged = exp.Array(expressions=[exp.If(this=_col(f"m{k}"), true=_number(k), false=_number(0))
                                     for k in range(1, steps + 1)])
    positive = exp.Lambda(this=exp.GT(this=exp.column("x"), expression=_number(0)),
                          expressions=[exp.to_identifier("x")])
    return exp.func("arrayFilter", positive, flagged)


def _col(name: str) -> exp.Column:
    return exp.column(name)


def _number(value: int) -> exp.Literal:
    return exp.Literal(this=str(value), is_string=False)
