"""GraphQL inputs, types and resolvers for analytics. Results are compact: column descriptions plus rows of
values as one JSON value, so ten thousand cells cost one list, not ten thousand objects."""

from __future__ import annotations

import enum
from dataclasses import asdict

import strawberry
from strawberry.scalars import JSON

from replayql.api.filters import SessionFilter, to_tree
from replayql.api.inputs import TimeRange
from replayql.api.types import Info
from replayql.query import ast
from replayql.query.analytics import aggregate as agg
from replayql.query.analytics import vitals
from replayql.query.compile import applied_query


@strawberry.enum(description="What to count: sessions, users, issues, or events of a kind.")
class AnalyticsSource(enum.Enum):
    SESSIONS = "SESSIONS"
    USERS = "USERS"
    ISSUES = "ISSUES"
    EVENTS = "EVENTS"
    PAGES = "PAGES"
    CLICKS = "CLICKS"
    NETWORK_REQUESTS = "NETWORK_REQUESTS"
    ERRORS = "ERRORS"
    CONSOLE_LOGS = "CONSOLE_LOGS"
    CUSTOM_EVENTS = "CUSTOM_EVENTS"
    WEB_VITALS = "WEB_VITALS"
    FRUSTRATION_SIGNALS = "FRUSTRATION_SIGNALS"


@strawberry.enum(description="COUNT rows; UNIQUE_SESSIONS / UNIQUE_USERS (an anonymous session is a user of its "
                              "own); SUM, AVG, MIN, MAX, MEDIAN, P50-P99 and PERCENTILE (exact, linear "
                              "interpolation) of a numeric `field`; RATE: the share of rows matching `where`; "
                              "PER_SESSION / PER_USER: rows (or the sum of `field`) per session or user.")
class MeasureFunction(enum.Enum):
    COUNT = "COUNT"
    UNIQUE_SESSIONS = "UNIQUE_SESSIONS"
    UNIQUE_USERS = "UNIQUE_USERS"
    SUM = "SUM"
    AVG = "AVG"
    MIN = "MIN"
    MAX = "MAX"
    MEDIAN = "MEDIAN"
    P50 = "P50"
    P75 = "P75"
    P90 = "P90"
    P95 = "P95"
    P99 = "P99"
    PERCENTILE = "PERCENTILE"
    RATE = "RATE"
    PER_SESSION = "PER_SESSION"
    PER_USER = "PER_USER"


@strawberry.enum
class Interval(enum.Enum):
    MINUTE = "minute"
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.enum
class ColumnRole(enum.Enum):
    TIME = "TIME"
    DIMENSION = "DIMENSION"
    MEASURE = "MEASURE"


@strawberry.input
class MeasureInput:
    alias: str
    fn: MeasureFunction
    field: str | None = strawberry.field(default=None, description="A numeric field: `durationMs`, "
                                                                   "`properties.revenue`, `session.activeDurationMs`.")
    percentile: float | None = strawberry.field(default=None, description="0-100, for PERCENTILE.")
    where: str | None = strawberry.field(default=None, description="RATE: the filter-language condition to count.")


@strawberry.input
class DimensionInput:
    field: str = strawberry.field(description="A field of the source (`browser`, `path`), `session.<field>` on "
                                              "events, `user.trait.<key>`, `properties.<key>`, or `pathPattern`.")
    alias: str | None = None


@strawberry.input
class AggregateInput:
    source: AnalyticsSource
    measures: list[MeasureInput]
    group_by: list[DimensionInput] | None = None
    interval: Interval | None = strawberry.field(default=None, description="Buckets over `timeRange`; empty "
                                                                           "buckets are filled.")
    time_zone: str = strawberry.field(default="UTC", description="IANA zone for buckets: days start at local "
                                                                 "midnight.")
    time_range: TimeRange | None = None
    query: str | None = strawberry.field(default=None, description="The filter language, on the source's rows.")
    session_filter: SessionFilter | None = strawberry.field(default=None, description="Rows whose session "
                                                                                     "matches.")
    limit: int | None = strawberry.field(default=None, description="Keep the top groups by `orderBy`.")
    order_by: str | None = strawberry.field(default=None, description="A measure alias (default: the first).")
    other: bool = strawberry.field(default=False, description="Fold the groups past `limit` into `otherRows`.")
    compare_previous: bool = strawberry.field(default=False, description="Also answer for the period before.")


@strawberry.type
class AggregateColumn:
    name: str
    role: ColumnRole
    type: str


@strawberry.type(description="A table: `columns` describe each position of the `rows` (a JSON array of arrays); "
                              "TIME values are local ISO-8601 bucket starts.")
class AggregateResult:
    columns: list[AggregateColumn]
    rows: JSON
    totals: JSON = strawberry.field(description="The measures over every row (dimension positions null).")
    other_rows: JSON | None = strawberry.field(description="The groups past `limit`, folded (when `other`).")
    truncated: bool = strawberry.field(description="True when `limit` cut groups off.")
    group_count: int = strawberry.field(description="Groups before `limit`.")
    previous: AggregateResult | None = strawberry.field(description="The same for the previous period.")
    applied_query: str | None

    @staticmethod
    def of(table: agg.Table, applied: str | None) -> AggregateResult:
        return AggregateResult(
            columns=[AggregateColumn(name=c.name, role=ColumnRole(c.role), type=c.type) for c in table.columns],
            rows=JSON(table.rows), totals=JSON(table.totals),
            other_rows=None if table.other is None else JSON(table.other), truncated=table.truncated,
            group_count=table.group_count, applied_query=applied,
            previous=AggregateResult.of(table.previous, applied) if table.previous else None)


def _request(given: AggregateInput) -> agg.AggregateRequest:
    window = given.time_range
    return agg.AggregateRequest(
        source=given.source.value,
        measures=[agg.Measure(m.alias, m.fn.value, m.field, m.percentile, m.where) for m in given.measures],
        group_by=[agg.Dimension(d.field, d.alias) for d in given.group_by or ()],
        interval=given.interval.value if given.interval else None, time_zone=given.time_zone,
        start=window.from_ if window else None, end=window.to if window else None, query=given.query,
        session_filter=to_tree(given.session_filter), limit=given.limit, order_by=given.order_by,
        other=given.other, compare_previous=given.compare_previous)


async def resolve_aggregate(info: Info, input: AggregateInput) -> AggregateResult:
    request = _request(input)
    limits = info.context.services.settings.analytics
    table = await info.context.read(agg.aggregate, request, limits)
    sessions = ast.InSession(request.session_filter) if request.session_filter is not None else None
    return AggregateResult.of(table, applied_query(sessions, request.query, info.context.parse))


@strawberry.enum(description="What to break web vitals down by.")
class WebVitalsGroup(enum.Enum):
    PATH = "PATH"
    PATH_PATTERN = "PATH_PATTERN"
    BROWSER = "BROWSER"
    DEVICE_TYPE = "DEVICE_TYPE"


@strawberry.type(description="One Core Web Vital (for one group): p75 and the shares of good (<= goodThreshold), "
                              "needs-improvement and poor (> poorThreshold) measurements.")
class WebVital(vitals.VitalSummary):
    """The query layer's summary, as a GraphQL type."""


@strawberry.type
class WebVitalsResult:
    vitals: list[WebVital]
    truncated: bool = strawberry.field(description="True when `limit` cut groups off.")


async def resolve_web_vitals(info: Info, time_range: TimeRange | None = None, query: str | None = None,
                             session_filter: SessionFilter | None = None, group_by: WebVitalsGroup | None = None,
                             limit: int | None = None) -> WebVitalsResult:
    request = agg.AggregateRequest(
        source="WEB_VITALS", measures=(), start=time_range.from_ if time_range else None,
        end=time_range.to if time_range else None, query=query, session_filter=to_tree(session_filter), limit=limit)
    limits = info.context.services.settings.analytics
    found, truncated = await info.context.read(vitals.web_vitals, request, group_by.value if group_by else None,
                                               limits)
    return WebVitalsResult(vitals=[WebVital(**asdict(v)) for v in found], truncated=truncated)
