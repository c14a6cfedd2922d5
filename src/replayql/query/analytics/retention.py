"""`retention`: cohorts of users by the first time they did the start condition, and the share of each cohort
that came back (did the return condition) in each calendar period after.

Users are identified users; an anonymous session counts as a user of its own (`anonymous:<session id>`).

- Start: the user's first occurrence ever (among the sessions the filters keep) of the start condition, an
  event condition such as `custom("Signup")`; by default the start of the user's first session ("first seen").
  A user belongs to the cohort of the bucket holding that moment, when the moment is inside `timeRange`.
- Return: activity at or after the start moment: an event matching the return condition, or by default a session
  in progress at or after it (so the start's own session counts for period 0), placed at the later of its start
  and the start moment.
- Periods: calendar buckets (local days, weeks from Monday, months) in the time zone; period k of a cohort is
  the k-th bucket after the cohort's own (period 0). Both ends are `TimeBucket` starts (epoch ms, computed by
  each store), and k = round((return bucket - cohort bucket) / mean unit length): a day or week bucket differs
  from k units by at most the zone's offset change (an hour across DST), a month bucket from k mean months
  (30.436875 days) by under three days, so the rounding is exact and the same on both stores. Returns are
  counted up to `periods` buckets after the cohort's, even past `timeRange.to`.
- Overall: per period k, the counts summed over the cohorts whose period k has ended by `timeRange.to`, over the
  sizes of those cohorts (a cohort too young for period k is left out of its average, not counted as zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from replayql.config import AnalyticsLimits
from replayql.query import ast
from replayql.query.analytics import buckets
from replayql.query.analytics.aggregate import value_of
from replayql.query.analytics.occurrences import event_condition, session_conditions
from replayql.query.analytics.sources import ANONYMOUS, SOURCES, Resolved, resolve_field
from replayql.query.errors import BadUserInput, TooManyCells
from replayql.query.lists import ReadStore, run
from replayql.query.sql import AppScope, col
from replayql.query.vocabulary import FLAG
from replayql.store.dialect import TimeBucket

UNITS = ("day", "week", "month")
MEAN_MS = {"day": 86_400_000, "week": 604_800_000, "month": 2_629_746_000}  # a month: 365.2425 / 12 days
MAX_PERIODS = 366


@dataclass(frozen=True)
class RetentionRequest:
    interval: str  # day, week or month
    periods: int  # period 0 (the cohort's own bucket) to periods - 1
    start: datetime | None
    end: datetime | None
    time_zone: str = "UTC"
    start_event: str | None = None  # None: first seen
    return_event: str | None = None  # None: any session
    breakdown: str | None = None
    query: str | None = None
    session_filter: ast.Condition | None = None


@dataclass
class Cohort:
    start: str  # the bucket start, local ISO-8601
    size: int
    counts: list[int]
    rates: list[float | None]
    complete_periods: int  # its periods that have ended by timeRange.to


@dataclass
class Overall:
    size: int
    sizes: list[int]  # per period: the sizes of the cohorts that count for it
    counts: list[int]
    rates: list[float | None]


@dataclass
class Group:
    value: Any
    cohorts: list[Cohort]
    overall: Overall


@dataclass
class Retention:
    cohorts: list[Cohort]
    overall: Overall
    groups: list[Group] | None


def retention(store: ReadStore, scope: AppScope, request: RetentionRequest, limits: AnalyticsLimits) -> Retention:
    return _Retention(store, scope, request, limits).run()


class _Retention:
    def __init__(self, store: ReadStore, scope: AppScope, request: RetentionRequest, limits: AnalyticsLimits) -> None:
        if request.interval not in UNITS:
            raise BadUserInput(f"unknown interval {request.interval}; retention buckets by day, week or month")
        if not 1 <= request.periods <= MAX_PERIODS:
            raise BadUserInput(f"`periods` must be between 1 and {MAX_PERIODS} (period 0 is the cohort's own)")
        if request.start is None or request.end is None:
            raise BadUserInput("retention needs a timeRange with both `from` and `to`: it selects the cohorts")
        if request.end <= request.start:
            raise BadUserInput("timeRange.to must be after timeRange.from")
        self.store, self.request, self.limits = store, request, limits
        self.scope = AppScope(scope.app_id, scope.target, parse=scope.parse)  # fresh parameters per query
        self.zone: ZoneInfo = buckets.zone(request.time_zone)
        self.group: Resolved | None = self._breakdown(request.breakdown)

    def _breakdown(self, name: str | None) -> Resolved | None:
        if name is None:
            return None
        field = "user." + name if name.startswith("trait.") else name.removeprefix("session.")
        return resolve_field(SOURCES["SESSIONS"], self.scope, field)

    # -- the answer -----------------------------------------------------------------------------------------

    def run(self) -> Retention:
        request, unit = self.request, self.request.interval
        assert request.start is not None and request.end is not None
        width = request.periods + 1  # the size and a count per period
        cap = self.limits.max_cells // width
        starts = buckets.bucket_starts(request.start, request.end, unit, self.zone, cap)
        if len(starts) > cap:
            raise TooManyCells(f"{len(starts)}+ {unit} cohorts of {request.periods} periods would exceed the cap "
                               f"of {self.limits.max_cells} cells; use a longer interval or a shorter range")
        calendar = list(starts)
        for _ in range(request.periods):
            calendar.append(buckets.next_start(calendar[-1], unit, self.zone))
        cohort_ms = [buckets.epoch_ms(s) for s in starts]
        rows = run(self.store, self.scope, self._query(calendar[-1]), self.limits.timeout_s)
        if len(rows) > self.limits.max_cells:
            raise TooManyCells(f"the answer would exceed the cap of {self.limits.max_cells} cells; break down by a "
                               "field with fewer values")
        cells = self._cells(rows, {ms: i for i, ms in enumerate(cohort_ms)})
        if len(cells) * len(starts) * width > self.limits.max_cells:
            raise TooManyCells(f"{len(cells)} groups of {len(starts)} cohorts would exceed the cap of "
                               f"{self.limits.max_cells} cells; break down by a field with fewer values")
        complete = [sum(1 for k in range(request.periods) if calendar[i + k + 1] <= request.end)
                    for i in range(len(starts))]
        labels = [buckets.local_iso(ms, self.zone) for ms in cohort_ms]
        sizes = [sum(g[0][i] for g in cells.values()) for i in range(len(starts))]
        counts = [[sum(g[1][i][k] for g in cells.values()) for k in range(request.periods)]
                  for i in range(len(starts))]
        cohorts = _cohorts(labels, sizes, counts, complete)
        if self.group is None:
            return Retention(cohorts, _overall(cohorts), None)
        ordered = sorted(cells.items(), key=lambda item: (-sum(item[1][0]), item[0] is None,
                                                            "" if item[0] is None else item[0]))
        groups = []
        for value, (group_sizes, group_counts) in ordered:
            group_cohorts = _cohorts(labels, group_sizes, group_counts, complete)
            groups.append(Group(value, group_cohorts, _overall(group_cohorts)))
        return Retention(cohorts, _overall(cohorts), groups)

    def _cells(self, rows: list[dict[str, Any]], index: dict[int, int]
               ) -> dict[Any, tuple[list[int], list[list[int]]]]:
        """Per group value: the cohort sizes, and per cohort the count per period."""
        periods, count = self.request.periods, len(index)
        out: dict[Any, tuple[list[int], list[list[int]]]] = {}
        for row in rows:
            value = self._value(row.get("g"))
            sizes, counts = out.setdefault(value, ([0] * count, [[0] * periods for _ in range(count)]))
            cohort, period, n = index[int(row["cb"])], int(row["period"]), int(row["n"])
            if period < 0:
                sizes[cohort] = n
            else:
                counts[cohort][period] = n
        return out

    def _value(self, value: Any) -> Any:
        if self.group is not None and self.group.type == FLAG and value is not None:
            return bool(value)  # DuckDB reads a flag back as a boolean, ClickHouse as 0/1
        return value_of(value)

    # -- SQL ------------------------------------------------------------------------------------------------

    def _query(self, upper: datetime) -> exp.Select:
        """Rows (g, cb, period, n): period -1 holds the cohort's size, period k its users active in period k."""
        group = ["g"] if self.group is not None else []
        elapsed = exp.Sub(this=col("rb", "r"), expression=col("cb", "f"))
        index = exp.Cast(this=exp.Round(this=exp.Div(this=exp.paren(elapsed), expression=exp.Literal.number(
            MEAN_MS[self.request.interval]))), to=exp.DataType.build("BIGINT"))
        period = exp.func("greatest", exp.Literal.number(0), index)  # a session going on at the start: period 0
        pairs = exp.select(*(col(g, "f") for g in group), col("cb", "f"), col("uk", "f"),
                           exp.alias_(period, "period")).from_(exp.to_table("firsts").as_("f")).join(
            exp.to_table("returns").as_("r"), on=col("uk", "r").eq(col("uk", "f")), join_type="inner").where(
            exp.GTE(this=col("latest", "r"), expression=col("moment", "f")))
        active = exp.select(*group, "cb", "period", exp.alias_(exp.Count(this=exp.Distinct(expressions=[
            col("uk")])), "n")).from_(pairs.subquery("pairs")).where(
            exp.LT(this=col("period"), expression=exp.Literal.number(self.request.periods))).group_by(
            *(col(g) for g in group), col("cb"), col("period"))
        sizes = exp.select(*group, "cb", exp.alias_(exp.Literal.number(-1), "period"),
                           exp.alias_(exp.Count(this=exp.Star()), "n")).from_("firsts").group_by(
            *(col(g) for g in group), col("cb"))
        cells = exp.union(sizes, active, distinct=False)
        query = exp.select("*").from_(exp.Subquery(this=cells, alias="cells")).limit(self.limits.max_cells + 1)
        return query.with_("firsts", as_=self._firsts(group)).with_("returns", as_=self._returns(upper))

    def _firsts(self, group: list[str]) -> exp.Select:
        """(uk, moment, cb[, g]): each user's first start ever, when it is inside the time range."""
        request = self.request
        candidates = self._occurrences(request.start_event, "start", grouped=True)
        candidates = candidates.where(exp.LT(this=_aliased(candidates, "moment"),
                                             expression=self.scope.param(request.end)))
        order = exp.Order(expressions=[exp.Ordered(this=col(c)) for c in ("moment", "sid", "seq", "idx")])
        first = exp.Window(this=exp.RowNumber(), partition_by=[col("uk")], order=order)
        ranked = exp.select("uk", "moment", *group, exp.alias_(first, "rn")).from_(candidates.subquery("c"))
        return exp.select("uk", "moment", *group, exp.alias_(self._bucket(col("moment")), "cb")).from_(
            ranked.subquery("ranked")).where(col("rn").eq(exp.Literal.number(1))).where(
            exp.GTE(this=col("moment"), expression=self.scope.param(request.start)))

    def _returns(self, upper: datetime) -> exp.Select:
        """(uk, rb, latest): the buckets each user was active in, with the latest moment of activity in each, so
        "active in bucket rb at or after the start" is `latest >= start`."""
        occurrences = self._occurrences(self.request.return_event, "return", grouped=False)
        occurrences = occurrences.where(exp.GTE(this=_aliased(occurrences, "until"), expression=self.scope.param(
            self.request.start))).where(exp.LT(this=_aliased(occurrences, "moment"),
                                               expression=self.scope.param(upper)))
        return exp.select("uk", exp.alias_(self._bucket(col("moment")), "rb"),
                          exp.alias_(exp.Max(this=col("until")), "latest")).from_(
            occurrences.subquery("o")).group_by(col("uk"), col("rb"))

    def _occurrences(self, text: str | None, role: str, grouped: bool) -> exp.Select:
        """(uk, moment, until, sid, seq, idx[, g]): each start or return candidate of a user. A session spans
        moment (its start) to until (its end); an event is a moment."""
        scope, user_key = self.scope, exp.func("coalesce", col("user_id", "s"), exp.DPipe(
            this=exp.Literal.string(ANONYMOUS), expression=col("session_id", "s")))
        columns: list[exp.Expr] = [exp.alias_(user_key, "uk")]
        if text is None:
            columns += [exp.alias_(col("started_at", "s"), "moment"), exp.alias_(col("ended_at", "s"), "until"),
                        exp.alias_(col("session_id", "s"), "sid"), exp.alias_(exp.Literal.number(0), "seq"),
                        exp.alias_(exp.Literal.number(0), "idx")]
            query = scope.select("sessions", *columns, alias="s")
        else:
            columns += [exp.alias_(col("ts", "e"), "moment"), exp.alias_(col("ts", "e"), "until"),
                        exp.alias_(col("session_id", "e"), "sid"), exp.alias_(col("seq", "e"), "seq"),
                        exp.alias_(col("idx", "e"), "idx")]
            query = scope.select("events", *columns, alias="e").where(event_condition(scope, text, "e", role))
            query = scope.join(query, "sessions", "s", col("session_id", "s").eq(col("session_id", "e")),
                               kind="inner")
        if grouped and self.group is not None:
            query = query.select(exp.alias_(self.group.expression.copy(), "g"))
            if "user" in self.group.joins:
                query = scope.join(query, "users", "u", col("user_id", "u").eq(col("user_id", "s")))
        for condition in session_conditions(scope, "s", self.request.session_filter, self.request.query):
            query = query.where(condition)
        return query

    def _bucket(self, moment: exp.Expr) -> exp.Expr:
        return TimeBucket(this=moment, unit=exp.var(self.request.interval),
                          zone=exp.Literal.string(self.request.time_zone))


def _aliased(query: exp.Select, name: str) -> exp.Expr:
    """The expression behind an alias of a SELECT (a WHERE cannot name the alias on every store)."""
    for expression in query.expressions:
        if isinstance(expression, exp.Alias) and expression.alias == name:
            aliased: exp.Expr = expression.this
            return aliased.copy()
    raise AssertionError(name)


def _cohorts(labels: list[str], sizes: list[int], counts: list[list[int]], complete: list[int]) -> list[Cohort]:
    return [Cohort(label, size, row, [_rate(n, size) for n in row], done)
            for label, size, row, done in zip(labels, sizes, counts, complete, strict=True)]


def _overall(cohorts: list[Cohort]) -> Overall:
    """Per period, only the cohorts whose period has ended by timeRange.to."""
    periods = len(cohorts[0].counts) if cohorts else 0
    sizes = [sum(c.size for c in cohorts if c.complete_periods > k) for k in range(periods)]
    counts = [sum(c.counts[k] for c in cohorts if c.complete_periods > k) for k in range(periods)]
    return Overall(sum(c.size for c in cohorts), sizes, counts, [_rate(n, s) for n, s in zip(counts, sizes,
                                                                                             strict=True)])


def _rate(count: int, size: int) -> float | None:
    return count / size if size else None
