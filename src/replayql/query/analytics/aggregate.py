"""`aggregate`: measures over a source's rows, grouped by dimensions and by calendar buckets.

The answer is a compact table (columns, then rows of values), with the totals row, top-N groups by a chosen
measure and the rest folded into an "other" row when asked. A cut is always reported (`truncated`), empty buckets
are filled, and an answer that would exceed the cell cap or the time limit is an error, never a partial table.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlglot import exp

from replayql.config import AnalyticsLimits
from replayql.query import ast
from replayql.query.analytics import buckets
from replayql.query.analytics.sources import SOURCES, Rows, as_number
from replayql.query.errors import BadUserInput, TooManyCells
from replayql.query.lists import ReadStore, run
from replayql.query.sql import AppScope, col, is_null
from replayql.query.vocabulary import FLAG
from replayql.store.dialect import ExactPercentile, TimeBucket

PERCENTILES = {"MEDIAN": 50.0, "P50": 50.0, "P75": 75.0, "P90": 90.0, "P95": 95.0, "P99": 99.0}
# Measures that are 0 (not "no value") for an empty bucket or group.
ADDITIVE = frozenset({"COUNT", "UNIQUE_SESSIONS", "UNIQUE_USERS", "SUM"})
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")


@dataclass(frozen=True)
class Measure:
    alias: str
    fn: str
    field: str | None = None
    percentile: float | None = None  # 0-100, for PERCENTILE
    where: str | None = None  # RATE: the share of rows matching this filter-language condition


@dataclass(frozen=True)
class Dimension:
    field: str
    alias: str | None = None

    @property
    def name(self) -> str:
        return self.alias or re.sub(r"\W", "_", self.field)


@dataclass(frozen=True)
class AggregateRequest:
    source: str
    measures: Sequence[Measure]
    group_by: Sequence[Dimension] = ()
    interval: str | None = None
    time_zone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    query: str | None = None
    session_filter: ast.Condition | None = None
    limit: int | None = None
    order_by: str | None = None
    other: bool = False
    compare_previous: bool = False
    restrict: str | None = None  # a condition of our own (not user text) on the rows, ANDed with `query`


@dataclass(frozen=True)
class Column:
    name: str
    role: str  # TIME, DIMENSION or MEASURE
    type: str


@dataclass
class Table:
    columns: list[Column]
    rows: list[list[Any]]
    totals: list[Any]
    other: list[list[Any]] | None = None
    truncated: bool = False
    group_count: int = 0
    previous: Table | None = None


def aggregate(store: ReadStore, scope: AppScope, request: AggregateRequest, limits: AnalyticsLimits) -> Table:
    table = _Aggregation(store, scope, request, limits).table()
    if request.compare_previous:
        if request.start is None or request.end is None:
            raise BadUserInput("comparePrevious needs a timeRange with both `from` and `to`")
        span = request.end - request.start
        earlier = replace(request, start=request.start - span, end=request.start, compare_previous=False)
        table.previous = _Aggregation(store, scope, earlier, limits).table()
    return table


class _Aggregation:
    def __init__(self, store: ReadStore, scope: AppScope, request: AggregateRequest, limits: AnalyticsLimits) -> None:
        _validate(request)
        self.store, self.request, self.limits = store, request, limits
        self.scope = AppScope(scope.app_id, scope.target, parse=scope.parse)  # fresh parameters per aggregation
        self.rows = Rows(SOURCES[request.source], self.scope, request.query, request.session_filter,
                         request.start, request.end, restrict=request.restrict)
        self.measures = [self._measure(m) for m in request.measures]
        self.dimensions = [self.rows.resolve(d.field) for d in request.group_by]
        self.zone: ZoneInfo | None = buckets.zone(request.time_zone) if request.interval else None

    # -- the table ------------------------------------------------------------------------------------------

    def table(self) -> Table:
        request = self.request
        columns = ([Column("time", "TIME", "time")] if request.interval else []) + \
            [Column(d.name, "DIMENSION", r.type) for d, r in zip(request.group_by, self.dimensions, strict=True)] + \
            [Column(m.alias, "MEASURE", "number") for m in request.measures]
        starts = self._bucket_starts(len(columns))
        totals = self._run(self._query(grouped=False, timed=False))[0]
        total_row = [None] * (len(columns) - len(self.measures)) + self._measure_values(totals)
        if not self.dimensions:
            rows = self._series([], starts) if request.interval else [total_row]
            return Table(columns, rows, total_row)
        groups, group_count = self._top_groups(len(columns), max(1, len(starts)))
        truncated = request.limit is not None and group_count > request.limit
        keys = [tuple(g[f"d{i}"] for i in range(len(self.dimensions))) for g in groups]
        if request.interval:
            rows = self._series(keys if truncated else [], starts, keys)
        else:
            rows = [list(self._dimension_values(k)) + self._measure_values(g) for k, g in zip(keys, groups,
                                                                                               strict=True)]
        other = self._other(keys, starts) if request.other and truncated else None
        return Table(columns, rows, total_row, other, truncated, group_count)

    def _bucket_starts(self, width: int) -> list[int]:
        request = self.request
        if not request.interval:
            return []
        if request.start is None or request.end is None:
            raise BadUserInput("an interval needs a timeRange with both `from` and `to`")
        assert self.zone is not None
        cap = self.limits.max_cells // width
        starts = buckets.bucket_starts(request.start, request.end, request.interval, self.zone, cap)
        if len(starts) > cap:
            raise TooManyCells(f"{request.interval} buckets over this range would exceed the cap of "
                               f"{self.limits.max_cells} cells; use a longer interval or a shorter range")
        return [buckets.epoch_ms(s) for s in starts]

    def _top_groups(self, width: int, bucket_count: int) -> tuple[list[dict[str, Any]], int]:
        """The groups, best first by the order measure; at most `limit` (and never past the cell cap)."""
        request = self.request
        cap = self.limits.max_cells // (width * bucket_count)
        wanted = request.limit if request.limit is not None else cap
        if wanted > cap:
            raise TooManyCells(f"{wanted} groups over {bucket_count} bucket(s) would exceed the cap of "
                               f"{self.limits.max_cells} cells; lower `limit`")
        query = self._query(grouped=True, timed=False).select(
            exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "_groups"))
        order = self._order_index()
        query = query.order_by(exp.Ordered(this=col(f"m{order}"), desc=True, nulls_first=False),
                               *(exp.Ordered(this=col(f"d{i}"), nulls_first=False)
                                 for i in range(len(self.dimensions)))).limit(wanted + 1)
        found = self._run(query)
        count = int(found[0]["_groups"]) if found else 0
        if request.limit is None and count > cap:
            raise TooManyCells(f"{count} groups would exceed the cap of {self.limits.max_cells} cells; "
                               "set `limit` to keep the top groups")
        return found[:wanted], count

    def _series(self, only: list[tuple[Any, ...]], starts: list[int], keys: list[tuple[Any, ...]] | None = None
                ) -> list[list[Any]]:
        """One row per bucket (and group), empty buckets filled: additive measures 0, the others null."""
        query = self._query(grouped=bool(self.dimensions), timed=True)
        if only:
            query = query.where(self._in_groups(only))
        found: dict[tuple[Any, ...], dict[str, Any]] = {}
        for row in self._run(query):
            found[(int(row["t"]), *(row[f"d{i}"] for i in range(len(self.dimensions))))] = row
        assert self.zone is not None
        out = []
        for start in starts:
            for key in keys if keys is not None else [()]:
                stored = found.get((start, *key))
                values = self._measure_values(stored) if stored else self._empty()
                out.append([buckets.local_iso(start, self.zone), *self._dimension_values(key), *values])
        return out

    def _other(self, keys: list[tuple[Any, ...]], starts: list[int]) -> list[list[Any]]:
        rest = exp.Not(this=exp.func("coalesce", self._in_groups(keys), exp.false()))
        if not self.request.interval:
            row = self._run(self._query(grouped=False, timed=False).where(rest))[0]
            return [[None] * len(self.dimensions) + self._measure_values(row)]
        query = self._query(grouped=False, timed=True).where(rest)
        found = {int(r["t"]): r for r in self._run(query)}
        assert self.zone is not None
        return [[buckets.local_iso(s, self.zone), *([None] * len(self.dimensions)),
                 *(self._measure_values(found[s]) if s in found else self._empty())] for s in starts]

    # -- SQL ------------------------------------------------------------------------------------------------

    def _query(self, grouped: bool, timed: bool) -> exp.Select:
        columns: list[exp.Expr] = []
        if timed:
            assert self.request.interval is not None
            columns.append(exp.alias_(TimeBucket(this=self.rows.time(), unit=exp.var(self.request.interval),
                                                 zone=exp.Literal.string(self.request.time_zone)), "t"))
        if grouped:
            columns += [exp.alias_(d.expression.copy(), f"d{i}") for i, d in enumerate(self.dimensions)]
        columns += [exp.alias_(m.copy(), f"m{i}") for i, m in enumerate(self.measures)]
        query = self.rows.select(*columns)
        keys = (["t"] if timed else []) + ([f"d{i}" for i in range(len(self.dimensions))] if grouped else [])
        return query.group_by(*(col(k) for k in keys)) if keys else query

    def _in_groups(self, keys: list[tuple[Any, ...]]) -> exp.Expr:
        """The rows of these groups (a NULL dimension value is a group of its own)."""
        def equal(expression: exp.Expr, value: Any) -> exp.Expr:
            return is_null(expression.copy()) if value is None else expression.copy().eq(self.scope.param(value))
        return exp.or_(*(exp.and_(*(equal(d.expression, v) for d, v in zip(self.dimensions, key, strict=True)))
                         for key in keys)) if keys else exp.false()

    def _measure(self, measure: Measure) -> exp.Expr:
        fn, rows = measure.fn, self.rows
        count = exp.Count(this=exp.Star())
        if fn == "COUNT":
            return count
        if fn == "UNIQUE_SESSIONS":
            return exp.Count(this=exp.Distinct(expressions=[rows.session_key()]))
        if fn == "UNIQUE_USERS":
            return exp.Count(this=exp.Distinct(expressions=[rows.user_key()]))
        if fn == "RATE":
            if not measure.where:
                raise BadUserInput(f"measure `{measure.alias}`: RATE needs `where`, the condition to count")
            hits = exp.Sum(this=exp.If(this=rows.condition(self.scope.parse(measure.where), measure.where),
                                       true=exp.Literal.number(1), false=exp.Literal.number(0)))
            return _ratio(hits, count)
        if fn in ("PER_SESSION", "PER_USER"):
            per = rows.session_key() if fn == "PER_SESSION" else rows.user_key()
            amount = exp.Sum(this=self._number(measure)) if measure.field else count
            return _ratio(amount, exp.Count(this=exp.Distinct(expressions=[per])))
        value = self._number(measure)
        simple: dict[str, type[exp.Expr]] = {"SUM": exp.Sum, "AVG": exp.Avg, "MIN": exp.Min, "MAX": exp.Max}
        if fn in simple:
            return simple[fn](this=value)
        return ExactPercentile(this=value, quantile=exp.Literal.number(_percentile(measure) / 100))

    def _number(self, measure: Measure) -> exp.Expr:
        if not measure.field:
            raise BadUserInput(f"measure `{measure.alias}`: {measure.fn} needs `field`")
        return as_number(self.rows.resolve(measure.field), measure.field)

    def _order_index(self) -> int:
        order = self.request.order_by
        return 0 if order is None else [m.alias for m in self.request.measures].index(order)

    # -- values ---------------------------------------------------------------------------------------------

    def _run(self, query: exp.Expr) -> list[dict[str, Any]]:
        return run(self.store, self.scope, query, self.limits.timeout_s)

    def _measure_values(self, row: dict[str, Any]) -> list[Any]:
        return [_number(row[f"m{i}"]) for i in range(len(self.measures))]

    def _empty(self) -> list[Any]:
        return [0 if m.fn in ADDITIVE else None for m in self.request.measures]

    def _dimension_values(self, key: tuple[Any, ...]) -> list[Any]:
        # A flag reads back as a boolean from DuckDB and as 0/1 from ClickHouse.
        return [bool(v) if d.type == FLAG and v is not None else value_of(v)
                for d, v in zip(self.dimensions, key, strict=True)]


def _ratio(numerator: exp.Expr, denominator: exp.Expr) -> exp.Expr:
    """numerator / denominator, NULL (not NaN or an error) when there is nothing to divide by."""
    return exp.If(this=denominator.eq(exp.Literal.number(0)), true=exp.Null(),
                  false=exp.Div(this=numerator, expression=denominator.copy()))


def _percentile(measure: Measure) -> float:
    if measure.fn in PERCENTILES:
        return PERCENTILES[measure.fn]
    if measure.percentile is None or not 0 <= measure.percentile <= 100:
        raise BadUserInput(f"measure `{measure.alias}`: PERCENTILE needs `percentile` between 0 and 100")
    return measure.percentile


def _validate(request: AggregateRequest) -> None:
    if request.source not in SOURCES:
        raise BadUserInput(f"unknown source {request.source}")
    if not request.measures:
        raise BadUserInput("give at least one measure")
    names = [m.alias for m in request.measures] + [d.name for d in request.group_by]
    for name in names:
        if not _NAME.fullmatch(name):
            raise BadUserInput(f"`{name}` is not a column name: letters, digits and _, at most 63")
    if len(set(names)) != len(names) or "time" in names:
        raise BadUserInput("measure aliases and dimension names must be distinct (and not `time`)")
    if request.interval is not None and request.interval not in buckets.UNITS:
        raise BadUserInput(f"unknown interval {request.interval}")
    if request.limit is not None and request.limit < 1:
        raise BadUserInput("`limit` must be at least 1")
    aliases = [m.alias for m in request.measures]
    if request.order_by is not None and request.order_by not in aliases:
        raise BadUserInput(f"orderBy `{request.order_by}` is not a measure alias; measures: {', '.join(aliases)}")


def _number(value: Any) -> Any:
    """Measures as JSON numbers; floats to 12 significant digits, so both stores (whose float sums may differ
    in the last bits) give the same answer."""
    if isinstance(value, Decimal):
        value = float(value)
    if isinstance(value, float):
        return None if math.isnan(value) else float(f"{value:.12g}")
    return value


def value_of(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="milliseconds") + ("" if value.tzinfo else "Z")
    return _number(value)
