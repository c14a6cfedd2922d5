"""`funnel`: how many sessions (or users) went through ordered steps, each an event condition of the filter
language (`visited(path = "/checkout")`, `custom("Signup")`, `clicked(selector = "#buy")` ...).

Semantics, the same on both stores:

- The entity is a session (SESSION) or a user (USER: the events of all the user's sessions together; an anonymous
  session is a user of its own, `anonymous:<session id>`, as in aggregate's UNIQUE_USERS). Events are ordered by
  (timestamp, session id, seq, idx).
- The chain starts at the entity's FIRST step-1 event in the time range. Step k is the earliest step-k event
  strictly after step k-1's event (so one event never stands for two steps) and, with a window, at most
  `windowMs` after the step-1 event (inclusive). Later steps may fall after the range's end when a window is given
  (up to the window after step 1); without a window they must be in the range too.
- LOOSE order lets other events happen between steps. STRICT order wants step k to be the entity's very next
  event after step k-1's, counting only events of the kinds the funnel's steps name (page views for `visited`,
  custom events for `custom` ...): the network requests, web vitals and console lines every page produces do not
  break a page-to-page funnel, but a page view or custom event between the steps does.
- `sessionFilter` / `query` (conditions on sessions) restrict which sessions' events count.
- Per step: the entities that reached it, conversions from the first and the previous step, the drop-off, and the
  median and p90 of the time from the previous step's event (exact, linear interpolation). Step 1's conversion
  from the previous step is its conversion from itself (1, or null with nobody).
- A breakdown groups entities by a dimension's value at their step-1 event; a series groups them by the calendar
  bucket of their step-1 event (entered: reached step 1, completed: reached the last step).

SQL: one pass of window functions per step over the entity's candidate events, numbered in order once
(ROW_NUMBER); each level keeps, per entity, the number and time of the step's event as a window MIN over the
rows that qualify. The result is one row per entity (`F`); the step table, the breakdown, the series and the
dropped-off lists are aggregates or pages over it, one query each.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from replayql.config import AnalyticsLimits
from replayql.query import ast, language
from replayql.query.analytics import buckets
from replayql.query.analytics.aggregate import value_of
from replayql.query.analytics.sources import SOURCES, Rows
from replayql.query.compile import Compiler
from replayql.query.errors import BadUserInput, TooManyCells
from replayql.query.lists import ReadStore, run
from replayql.query.pagination import SortKey, after_condition, decode_cursor, encode_cursor, order_by
from replayql.query.sequences import MAX_STEPS
from replayql.query.sql import AppScope, col, is_null, not_null
from replayql.query.vocabulary import FLAG, HAD_KINDS, TIME
from replayql.store.dialect import EpochMillis, ExactPercentile, TimeBucket

MAX_WINDOW_MS = 3650 * 86_400_000  # ten years
_STATS_PER_STEP = 6  # count, two conversions, drop-off, two times: the cells a step costs


@dataclass(frozen=True)
class Step:
    had: ast.Had
    text: str | None = None  # the query string it came from (for error positions); None when typed


@dataclass(frozen=True)
class FunnelRequest:
    steps: Sequence[Step]
    count_by: str = "SESSION"  # or USER
    window_ms: int | None = None
    strict: bool = False
    start: datetime | None = None
    end: datetime | None = None
    query: str | None = None  # the filter language, on sessions
    session_filter: ast.Condition | None = None
    breakdown: str | None = None
    breakdown_limit: int = 10
    interval: str | None = None
    time_zone: str = "UTC"


@dataclass(frozen=True)
class StepStats:
    count: int
    conversion_from_first: float | None
    conversion_from_previous: float | None
    dropped_off: int
    median_ms: float | None
    p90_ms: float | None


@dataclass(frozen=True)
class Group:
    value: Any
    steps: list[StepStats]


@dataclass(frozen=True)
class SeriesPoint:
    time: str  # the bucket's local start, ISO-8601 with its offset
    entered: int
    completed: int
    conversion: float | None


@dataclass
class FunnelAnswer:
    steps: list[StepStats]
    groups: list[Group] | None = None
    truncated: bool = False
    group_count: int = 0
    series: list[SeriesPoint] | None = None


@dataclass(frozen=True)
class Dropped:
    """One entity that reached step k-1 but not step k: its id, and (for users) its user id or None when it is
    an anonymous session, whose id is then `session_id`."""

    entity: str
    user_id: str | None
    session_id: str


def parse_step(text: str, index: int, parse: Callable[[str], ast.Condition]) -> Step:
    """A query-string step read with `parse`: exactly one event condition, or BAD_QUERY pointing at what is
    not."""
    try:
        tree = parse(text)
    except language.QueryError as err:
        raise language.error_at(text, err.position, f"step {index}: {err.summary}") from None
    if not isinstance(tree, ast.Had):
        raise language.error_at(text, tree.start, f"step {index}: a funnel step is one event condition such as "
                                              f'visited(path = "/checkout") or custom("Signup"), not '
                                              f"{_kind_of(tree)}")
    return Step(tree, text)


def _kind_of(tree: ast.Condition) -> str:
    return {ast.Then: "a sequence (give its events as separate steps)", ast.And: "an AND", ast.Or: "an OR",
            ast.Not: "a NOT", ast.Compare: "a field comparison (filter sessions with `query`)",
            ast.CountOf: "a count", ast.InSession: "a session(...) condition"}.get(type(tree), "that")


# -- the per-entity table ----------------------------------------------------------------------------------------

class _Plan:
    """The SQL of one funnel over a fresh scope: F, one row per entity that reached step 1, with its id, its
    breakdown value, the time (epoch ms) of each step's event (NULL past the last step reached), the step-1
    event's timestamp and session, and its user id."""

    def __init__(self, scope: AppScope, request: FunnelRequest) -> None:
        _validate(request)
        self.request = request
        self.scope = AppScope(scope.app_id, scope.target, parse=scope.parse)
        self.n = len(request.steps)
        end = request.end
        if end is not None and request.window_ms is not None:
            end = end + timedelta(milliseconds=request.window_ms)
        self.rows = Rows(SOURCES["EVENTS"], self.scope, start=request.start, end=end)
        self.dimension = self._dimension() if request.breakdown else None

    def _dimension(self) -> tuple[exp.Expr, str]:
        name = self.request.breakdown
        assert name is not None
        users = self.request.count_by == "USER"
        full = name if name.startswith(("user.", "session.")) else ("user." if users else "session.") + name
        try:
            found = self.rows.resolve(full)
        except BadUserInput:
            raise BadUserInput(
                f"unknown breakdown `{name}`: a SESSION funnel takes a session field (`browser`, `country`) or "
                "`user.<field>` / `user.trait.<key>`; a USER funnel a user field or trait (`email`, `trait.plan`) "
                "or `session.<field>` (the session of step 1)") from None
        if found.type == TIME:
            raise BadUserInput(f"`{name}` is a time; break a funnel down by a text, number or flag field")
        return found.expression, found.type

    def entities(self) -> exp.Select:
        request, rows = self.request, self.rows
        users = request.count_by == "USER"
        entity = rows.user_key() if users else col("session_id", "e")
        matches = [Compiler(self.scope, s.text).event_match(s.had, "e") for s in request.steps]
        # Step 1 (and every step without a window) must be before the range's end; the rows read go on to the
        # end plus the window.
        flags = [m.copy() for m in matches]
        if request.end is not None:
            for k in range(len(flags)) if request.window_ms is None else (0,):
                before_end = exp.LT(this=col("ts", "e"), expression=self.scope.param(request.end))
                flags[k] = exp.and_(flags[k], before_end)
        order = exp.Order(expressions=[exp.Ordered(this=col(c, "e")) for c in ("ts", "session_id", "seq", "idx")])
        columns = [exp.alias_(entity, "entity"), exp.alias_(EpochMillis(this=col("ts", "e")), "at_ms"),
                   exp.alias_(col("ts", "e"), "at"), exp.alias_(col("session_id", "e"), "sid"),
                   exp.alias_(col("user_id", "s") if users else exp.Null(), "uid"),
                   exp.alias_(self.dimension[0].copy() if self.dimension else exp.Null(), "dim"),
                   exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=[entity.copy()], order=order), "pos"),
                   *(exp.alias_(f, f"m{k}") for k, f in enumerate(flags, 1))]
        base = rows.select(*columns)
        if request.strict:  # every event of the kinds the steps name is a neighbour
            kinds = sorted({HAD_KINDS[s.had.kind].kind for s in request.steps})
            base = base.where(exp.In(this=col("kind", "e"), expressions=[exp.Literal.string(k) for k in kinds]))
        else:
            base = base.where(exp.or_(*(m.copy() for m in matches)))
        for restriction in self._sessions():
            base = base.where(restriction)
        keep = ["entity", "at_ms", "at", "sid", "uid", "dim", "pos", *(f"m{k}" for k in range(1, self.n + 1))]
        level = base
        for k in range(1, self.n + 1):
            level = self._level(level, k, keep)
            keep += [f"r{k}", f"t{k}"]
        final = ["entity", "dim", "at", "sid", "uid", *(f"t{k}" for k in range(1, self.n + 1))]
        return exp.select(*(col(c) for c in final)).from_(exp.Subquery(this=level, alias=f"l{self.n}")).where(
            col("pos").eq(col("r1")))

    def _level(self, inner: exp.Select, k: int, keep: list[str]) -> exp.Select:
        """Step k's event per entity: its number r{k} and time t{k}, as window MINs over the rows that qualify."""
        qualifies: exp.Expr = col(f"m{k}")
        if k > 1:
            previous = col(f"r{k - 1}")
            after = (col("pos").eq(exp.Add(this=previous, expression=exp.Literal.number(1))) if self.request.strict
                     else exp.GT(this=col("pos"), expression=previous))
            qualifies = exp.and_(qualifies, after)
            if self.request.window_ms is not None:
                elapsed = exp.Sub(this=col("at_ms"), expression=col("t1"))
                qualifies = exp.and_(qualifies, exp.LTE(this=elapsed, expression=self.scope.param(
                    self.request.window_ms)))
        def first(value: str) -> exp.Expr:
            return exp.Window(this=exp.Min(this=exp.If(this=qualifies.copy(), true=col(value), false=exp.Null())),
                              partition_by=[col("entity")])
        query = exp.select(*(col(c) for c in keep), exp.alias_(first("pos"), f"r{k}"),
                           exp.alias_(first("at_ms"), f"t{k}")).from_(exp.Subquery(this=inner, alias=f"l{k - 1}"))
        if k > 1:  # only rows that can still be a step, and each entity's step-1 row (which carries F's columns)
            later = exp.or_(*(col(f"m{j}") for j in range(k, self.n + 1)))
            query = query.where(exp.or_(col("pos").eq(col("r1")), exp.and_(
                exp.GT(this=col("pos"), expression=col(f"r{k - 1}")), exp.paren(later))))
        return query

    def _sessions(self) -> list[exp.Expr]:
        """The sessions whose events count, as conditions on the events row."""
        request, out = self.request, []
        if request.session_filter is not None:
            out.append(Compiler(self.scope).condition(self.rows.source.entity, "e",
                                                      ast.InSession(request.session_filter)))
        if request.query:
            out.append(Compiler(self.scope, request.query).condition(self.rows.source.entity, "e",
                                                                     ast.InSession(self.scope.parse(request.query))))
        return out

    def stats(self) -> list[exp.Expr]:
        """The aggregates of the step table over F: c{k}, and p50_{k} / p90_{k} from step 2 on."""
        out: list[exp.Expr] = [exp.alias_(exp.Count(this=col(f"t{k}")), f"c{k}") for k in range(1, self.n + 1)]
        for k in range(2, self.n + 1):
            elapsed = exp.Sub(this=col(f"t{k}"), expression=col(f"t{k - 1}"))
            for name, quantile in (("p50", "0.5"), ("p90", "0.9")):
                out.append(exp.alias_(ExactPercentile(this=elapsed.copy(), quantile=exp.Literal.number(quantile)),
                                      f"{name}_{k}"))
        return out

    def over_entities(self, *columns: exp.Expr) -> exp.Select:
        return exp.select(*columns).from_(exp.Subquery(this=self.entities(), alias="f"))

    def group(self, value: Any) -> exp.Expr:
        """F's rows of one breakdown value (NULL is a value of its own)."""
        return is_null(col("dim")) if value is None else col("dim").eq(self.scope.param(value))


# -- the answers ---------------------------------------------------------------------------------------------------

def funnel(store: ReadStore, scope: AppScope, request: FunnelRequest, limits: AnalyticsLimits) -> FunnelAnswer:
    plan = _Plan(scope, request)
    starts = _bucket_starts(request, limits)
    answer = FunnelAnswer(_steps(run(store, plan.scope, plan.over_entities(*plan.stats()), limits.timeout_s)[0],
                                 plan.n))
    if plan.dimension is not None:
        answer.groups, answer.group_count = _groups(store, plan, limits)
        answer.truncated = answer.group_count > len(answer.groups)
    if starts is not None:
        answer.series = _series(store, plan, starts, limits)
    return answer


def _steps(row: dict[str, Any], n: int) -> list[StepStats]:
    counts = [int(row[f"c{k}"]) for k in range(1, n + 1)]
    out = []
    for k, count in enumerate(counts, 1):
        previous = counts[k - 2] if k > 1 else count
        out.append(StepStats(count, _share(count, counts[0]), _share(count, previous), previous - count,
                             value_of(row.get(f"p50_{k}")), value_of(row.get(f"p90_{k}"))))
    return out


def _share(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _groups(store: ReadStore, plan: _Plan, limits: AnalyticsLimits) -> tuple[list[Group], int]:
    """The breakdown values with the most entities at step 1 (then by value), at most `breakdown_limit`."""
    wanted = plan.request.breakdown_limit
    if wanted * plan.n * _STATS_PER_STEP > limits.max_cells:
        raise TooManyCells(f"{wanted} breakdown values of {plan.n} steps would exceed the cap of {limits.max_cells} "
                           "cells; lower `breakdownLimit`")
    query = plan.over_entities(col("dim"), *plan.stats(),
                               exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "_groups"))
    query = query.group_by(col("dim")).order_by(
        exp.Ordered(this=col("c1"), desc=True), exp.Ordered(this=col("dim"), nulls_first=False)).limit(wanted + 1)
    found = run(store, plan.scope, query, limits.timeout_s)
    assert plan.dimension is not None
    flag = plan.dimension[1] == FLAG  # DuckDB reads a flag back as a boolean, ClickHouse as 0/1
    groups = [Group(bool(r["dim"]) if flag and r["dim"] is not None else value_of(r["dim"]), _steps(r, plan.n))
              for r in found[:wanted]]
    return groups, int(found[0]["_groups"]) if found else 0


def _bucket_starts(request: FunnelRequest, limits: AnalyticsLimits) -> list[int] | None:
    if request.interval is None:
        return None
    if request.start is None or request.end is None:
        raise BadUserInput("an interval needs a timeRange with both `from` and `to`")
    if request.interval not in buckets.UNITS:
        raise BadUserInput(f"unknown interval {request.interval}")
    cap = limits.max_cells // 4  # time, entered, completed, conversion
    starts = buckets.bucket_starts(request.start, request.end, request.interval, buckets.zone(request.time_zone), cap)
    if len(starts) > cap:
        raise TooManyCells(f"{request.interval} buckets over this range would exceed the cap of {limits.max_cells} "
                           "cells; use a longer interval or a shorter range")
    return [buckets.epoch_ms(s) for s in starts]


def _series(store: ReadStore, plan: _Plan, starts: list[int], limits: AnalyticsLimits) -> list[SeriesPoint]:
    request = plan.request
    assert request.interval is not None
    bucket = TimeBucket(this=col("at"), unit=exp.var(request.interval), zone=exp.Literal.string(request.time_zone))
    query = plan.over_entities(exp.alias_(bucket, "b"), exp.alias_(exp.Count(this=exp.Star()), "entered"),
                               exp.alias_(exp.Count(this=col(f"t{plan.n}")), "completed")).group_by(col("b"))
    found = {int(r["b"]): r for r in run(store, plan.scope, query, limits.timeout_s)}
    zone = buckets.zone(request.time_zone)
    out = []
    for start in starts:
        row = found.get(start)
        entered, completed = (int(row["entered"]), int(row["completed"])) if row else (0, 0)
        out.append(SeriesPoint(buckets.local_iso(start, zone), entered, completed, _share(completed, entered)))
    return out


_DROPPED_KEYS = [SortKey(col("t1"), True, "number"), SortKey(col("entity"), True)]


def dropped(store: ReadStore, scope: AppScope, request: FunnelRequest, step: int, group: tuple[Any] | None, first: int,
            after: str | None, limits: AnalyticsLimits) -> tuple[list[Dropped], list[str], bool]:
    """A page of the entities that reached step `step - 1` but not step `step` (of one breakdown value when
    `group` holds it), the latest step-1 first; with their cursors and whether more follow. Step 1 drops none."""
    plan = _Plan(scope, request)
    if not 1 <= step <= plan.n:
        raise BadUserInput(f"step {step} is not a step of this funnel")
    if step == 1 or first == 0:
        return [], [], False
    query = plan.over_entities(col("entity"), col("uid"), col("sid"),
                               *(exp.alias_(k.expression.copy(), f"_k{i}") for i, k in enumerate(_DROPPED_KEYS)))
    query = query.where(not_null(col(f"t{step - 1}"))).where(is_null(col(f"t{step}")))
    if group is not None:
        query = query.where(plan.group(group[0]))
    if after:
        query = query.where(after_condition(_DROPPED_KEYS, decode_cursor(after, _DROPPED_KEYS), plan.scope))
    rows = run(store, plan.scope, order_by(query, _DROPPED_KEYS).limit(first + 1), limits.timeout_s)
    page = rows[:first]
    cursors = [encode_cursor((int(r["_k0"]), r["_k1"])) for r in page]
    return [Dropped(r["entity"], r["uid"], r["sid"]) for r in page], cursors, len(rows) > first


def _validate(request: FunnelRequest) -> None:
    if not request.steps:
        raise BadUserInput("a funnel needs at least one step in `steps` (or `typedSteps`)")
    if len(request.steps) > MAX_STEPS:
        raise BadUserInput(f"a funnel has at most {MAX_STEPS} steps")
    if request.count_by not in ("SESSION", "USER"):
        raise BadUserInput(f"unknown countBy {request.count_by}")
    if request.window_ms is not None and not 0 < request.window_ms <= MAX_WINDOW_MS:
        raise BadUserInput("`windowMs` must be positive and at most ten years")
    if request.start is not None and request.end is not None and request.end < request.start:
        raise BadUserInput("timeRange.to is before timeRange.from")
    if request.breakdown_limit < 1:
        raise BadUserInput("`breakdownLimit` must be at least 1")
