"""GraphQL input, types and resolver of `funnel` (semantics: query/analytics/funnel.py)."""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import Any

import strawberry
from strawberry.scalars import JSON

from replayql.api.analytics import Interval
from replayql.api.filters import EventCondition, SessionFilter, event_condition, to_tree
from replayql.api.inputs import TimeRange
from replayql.api.types import Connection, Info, Session, User, connection
from replayql.query import ast, language
from replayql.query.analytics import funnel as fq
from replayql.query.compile import applied_query
from replayql.query.errors import BadUserInput

FUNNEL_HELP = (
    "Ordered steps, each one event condition of the filter language (`visited(path = \"/checkout\")`, "
    "`custom(\"Signup\")`, `clicked(selector = \"#buy\")`), counted per session or per user (a user's events across "
    "their sessions; an anonymous session is a user of its own). Each entity's chain starts at its first step-1 "
    "event in `timeRange`; step k is the earliest step-k event strictly after step k-1's (one event is never two "
    "steps), at most `windowMs` after the step-1 event when a window is given (later steps may then fall up to the "
    "window past the range's end; without a window they must be in the range). STRICT order: step k must be the "
    "very next event after step k-1's among the events of the kinds the steps name (network requests, vitals and "
    "console lines in between do not break a page funnel). Times to convert are from the previous step, exact "
    "percentiles. Errors: BAD_QUERY for a step that is not one event condition, QUERY_TIMEOUT past the time limit, "
    "TOO_MANY_CELLS past the cell cap.")


@strawberry.enum(description="SESSION: each session on its own. USER: the events of all of a user's sessions "
                              "together (an anonymous session is a user of its own).")
class FunnelCountBy(enum.Enum):
    SESSION = "SESSION"
    USER = "USER"


@strawberry.enum(description="LOOSE: other events may happen between steps. STRICT: each step is the very next "
                              "event (of the kinds the steps name) after the previous step's.")
class FunnelOrder(enum.Enum):
    LOOSE = "LOOSE"
    STRICT = "STRICT"


@strawberry.input
class FunnelInput:
    steps: list[str] = strawberry.field(default_factory=list, description=(
        "The steps in order, each one event condition as a query string: `visited(path = \"/\")`, "
        "`custom(\"Buy\", properties.total > 100)`, `network(status >= 500)`."))
    typed_steps: list[EventCondition] | None = strawberry.field(default=None, description=(
        "The steps as typed event conditions, instead of `steps`."))
    count_by: FunnelCountBy = FunnelCountBy.SESSION
    window_ms: float | None = strawberry.field(default=None, description=(
        "Conversion window from the step-1 event, in whole milliseconds (a Float, so windows past 24.8 days fit); "
        "none by default."))
    order: FunnelOrder = FunnelOrder.LOOSE
    time_range: TimeRange | None = strawberry.field(default=None, description="Where step-1 events must be.")
    query: str | None = strawberry.field(default=None, description=(
        "The filter language on sessions: only these sessions' events count."))
    session_filter: SessionFilter | None = strawberry.field(default=None, description=(
        "Only these sessions' events count (ANDed with `query`)."))
    breakdown: str | None = strawberry.field(default=None, description=(
        "Group by a dimension's value at step 1: a session field (`browser`) or `user.trait.<key>` for SESSION; "
        "a user field or trait (`trait.plan`) or `session.<field>` for USER."))
    breakdown_limit: int = strawberry.field(default=10, description="Keep the values with most entities at step 1.")
    interval: Interval | None = strawberry.field(default=None, description=(
        "A conversion series by the bucket of the step-1 event, over `timeRange` (empty buckets filled)."))
    time_zone: str = strawberry.field(default="UTC", description="IANA zone of the series buckets.")


@strawberry.type(description="One step: the entities that reached it and how they got there.")
class FunnelStep:
    index: int = strawberry.field(description="1 for the first step.")
    step: str = strawberry.field(description="The step's event condition, normalised.")
    count: int
    conversion_from_first: float | None = strawberry.field(description="count / step 1's count (0..1).")
    conversion_from_previous: float | None = strawberry.field(description=(
        "count / the previous step's count (0..1); for step 1, count / itself."))
    dropped_off: int = strawberry.field(description="Reached the previous step but not this one (0 for step 1).")
    median_time_to_convert_ms: float | None = strawberry.field(description="From the previous step's event.")
    p90_time_to_convert_ms: float | None
    _request: strawberry.Private[fq.FunnelRequest]
    _group: strawberry.Private[tuple[Any] | None]

    @strawberry.field(description="The sessions that reached the previous step but not this one, the latest "
                                  "step-1 first (SESSION funnels).")
    async def dropped_sessions(self, info: Info, first: int = 50, after: str | None = None) -> Connection[Session]:
        if self._request.count_by != "SESSION":
            raise BadUserInput("this funnel counts users: ask for droppedUsers")
        found, cursors, has_next = await self._dropped(info, first, after)
        sessions = await info.context.loaders.session.load_many([(d.entity, None) for d in found])
        nodes = [(s, c) for s, c in zip(sessions, cursors, strict=True) if s is not None]
        return connection([s for s, _ in nodes], [c for _, c in nodes], has_next, self._total)

    @strawberry.field(description="The users that reached the previous step but not this one, the latest step-1 "
                                  "first (USER funnels); an anonymous session's user is `anonymous:<session id>`.")
    async def dropped_users(self, info: Info, first: int = 50, after: str | None = None) -> Connection[User]:
        if self._request.count_by != "USER":
            raise BadUserInput("this funnel counts sessions: ask for droppedSessions")
        found, cursors, has_next = await self._dropped(info, first, after)
        loaders = info.context.loaders
        nodes: list[tuple[User, str]] = []
        for entry, cursor in zip(found, cursors, strict=True):
            if entry.user_id is not None:
                user = await loaders.user.load(entry.user_id)
            else:
                session = await info.context.session(entry.session_id)
                user = User.anonymous(session) if session is not None else None
            if user is not None:
                nodes.append((user, cursor))
        return connection([u for u, _ in nodes], [c for _, c in nodes], has_next, self._total)

    async def _dropped(self, info: Info, first: int, after: str | None) -> tuple[list[fq.Dropped], list[str], bool]:
        info.context.check_first(first)
        limits = info.context.services.settings.analytics
        return await info.context.read(fq.dropped, self._request, self.index, self._group, first, after, limits)

    async def _total(self) -> int:
        return self.dropped_off


@strawberry.type(description="The steps of the entities whose breakdown value (at step 1) is `value`.")
class FunnelGroup:
    value: JSON | None = strawberry.field(description="The value; null groups the entities without one.")
    steps: list[FunnelStep]


@strawberry.type
class FunnelBreakdown:
    field: str
    groups: list[FunnelGroup] = strawberry.field(description="Most entities at step 1 first, then by value.")
    truncated: bool = strawberry.field(description="True when `breakdownLimit` cut values off.")
    group_count: int = strawberry.field(description="Values before `breakdownLimit`.")


@strawberry.type(description="Entities by the bucket of their step-1 event.")
class FunnelSeriesPoint:
    time: str = strawberry.field(description="The bucket's local start, ISO-8601 with its offset.")
    entered: int = strawberry.field(description="Reached step 1 in the bucket.")
    completed: int = strawberry.field(description="Of those, reached the last step.")
    conversion: float | None = strawberry.field(description="completed / entered; null for an empty bucket.")


@strawberry.type
class FunnelResult:
    count_by: FunnelCountBy
    order: FunnelOrder
    window_ms: float | None
    steps: list[FunnelStep]
    breakdown: FunnelBreakdown | None
    series: list[FunnelSeriesPoint] | None
    applied_query: str | None = strawberry.field(description="The session conditions that ran, as a query string.")


def _steps(request: fq.FunnelRequest, stats: list[fq.StepStats], group: tuple[Any] | None) -> list[FunnelStep]:
    return [FunnelStep(index=k, step=language.to_string(s.had), count=st.count,
                       conversion_from_first=st.conversion_from_first,
                       conversion_from_previous=st.conversion_from_previous, dropped_off=st.dropped_off,
                       median_time_to_convert_ms=st.median_ms, p90_time_to_convert_ms=st.p90_ms,
                       _request=request, _group=group)
            for k, (s, st) in enumerate(zip(request.steps, stats, strict=True), 1)]


def _request(given: FunnelInput, parse: Callable[[str], ast.Condition]) -> fq.FunnelRequest:
    if given.steps and given.typed_steps:
        raise BadUserInput("give the steps either as `steps` or as `typedSteps`, not both")
    steps = [fq.parse_step(text, k, parse) for k, text in enumerate(given.steps, 1)] if given.steps else \
        [fq.Step(event_condition(c)) for c in given.typed_steps or ()]
    window = given.window_ms
    if window is not None and not float(window).is_integer():
        raise BadUserInput("`windowMs` is a whole number of milliseconds")
    span = given.time_range
    return fq.FunnelRequest(
        steps=steps, count_by=given.count_by.value, window_ms=int(window) if window is not None else None,
        strict=given.order == FunnelOrder.STRICT, start=span.from_ if span else None, end=span.to if span else None,
        query=given.query, session_filter=to_tree(given.session_filter), breakdown=given.breakdown,
        breakdown_limit=given.breakdown_limit, interval=given.interval.value if given.interval else None,
        time_zone=given.time_zone)


async def resolve_funnel(info: Info, input: FunnelInput) -> FunnelResult:
    request = _request(input, info.context.parse)
    answer = await info.context.read(fq.funnel, request, info.context.services.settings.analytics)
    breakdown = None
    if answer.groups is not None:
        assert request.breakdown is not None
        breakdown = FunnelBreakdown(field=request.breakdown, truncated=answer.truncated,
                                    group_count=answer.group_count,
                                    groups=[FunnelGroup(value=g.value, steps=_steps(request, g.steps, (g.value,)))
                                            for g in answer.groups])
    series = None if answer.series is None else [
        FunnelSeriesPoint(time=p.time, entered=p.entered, completed=p.completed, conversion=p.conversion)
        for p in answer.series]
    return FunnelResult(count_by=input.count_by, order=input.order, window_ms=input.window_ms,
                        steps=_steps(request, answer.steps, None), breakdown=breakdown, series=series,
                        applied_query=applied_query(request.session_filter, request.query, info.context.parse))
