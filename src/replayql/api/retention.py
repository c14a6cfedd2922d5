"""GraphQL input, types and resolver for `retention`: per cohort lists of numbers, not one object per cell."""

from __future__ import annotations

import enum

import strawberry
from strawberry.scalars import JSON

from replayql.api.filters import SessionFilter, to_tree
from replayql.api.inputs import TimeRange
from replayql.api.types import Info
from replayql.query.analytics import retention as ret
from replayql.query.compile import applied_query


@strawberry.enum(description="Calendar buckets in `timeZone`: local days, weeks from Monday, months.")
class RetentionInterval(enum.Enum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"


@strawberry.input
class RetentionInput:
    time_range: TimeRange = strawberry.field(description="Selects the cohorts: users whose start is in [from, "
                                                         "to). Returns are counted up to `periods` after.")
    interval: RetentionInterval = RetentionInterval.WEEK
    periods: int = strawberry.field(default=8, description=f"Periods per cohort, period 0 (the cohort's own "
                                                           f"bucket) included; at most {ret.MAX_PERIODS}.")
    time_zone: str = strawberry.field(default="UTC", description="IANA zone of the buckets.")
    start: str | None = strawberry.field(default=None, description=(
        "Event condition of the filter language that puts a user in a cohort, at its first occurrence: "
        '`custom("Signup")`, `visited(path = "/welcome")`, several joined with OR. Default: first seen (the '
        "start of the user's first session)."))
    return_: str | None = strawberry.field(default=None, name="return", description=(
        "Event condition that counts as coming back, at or after the start. Default: any session (the start's "
        "own session counts for period 0)."))
    breakdown_by: str | None = strawberry.field(default=None, description=(
        "A user trait (`trait.plan`), a user field (`user.email`) or a field of the session the user started in "
        "(`browser`, `country`, `pathPattern` of the landing page)."))
    query: str | None = strawberry.field(default=None, description="The filter language on sessions: only "
                                                                   "matching sessions count, for starts and returns.")
    session_filter: SessionFilter | None = None


@strawberry.type(description="A cohort: users whose start fell in the bucket beginning at `start`.")
class RetentionCohort:
    start: str = strawberry.field(description="The bucket start, local ISO-8601 with offset.")
    size: int
    counts: list[int] = strawberry.field(description="Per period (0 first): cohort users active in it.")
    rates: list[float | None] = strawberry.field(description="counts / size; null for an empty cohort.")
    complete_periods: int = strawberry.field(description="How many of its periods have ended by timeRange.to; "
                                                         "only those count in `overall`.")

    @staticmethod
    def of(cohort: ret.Cohort) -> RetentionCohort:
        return RetentionCohort(start=cohort.start, size=cohort.size, counts=cohort.counts, rates=cohort.rates,
                               complete_periods=cohort.complete_periods)


@strawberry.type(description="Every cohort together: per period k, the users active in period k over the sizes "
                              "of the cohorts whose period k has ended by timeRange.to (younger cohorts are left "
                              "out, not counted as zero).")
class RetentionOverall:
    size: int = strawberry.field(description="Users in all cohorts.")
    sizes: list[int] = strawberry.field(description="Per period: the users of the cohorts counted for it.")
    counts: list[int]
    rates: list[float | None]

    @staticmethod
    def of(overall: ret.Overall) -> RetentionOverall:
        return RetentionOverall(size=overall.size, sizes=overall.sizes, counts=overall.counts,
                                rates=overall.rates)


@strawberry.type
class RetentionGroup:
    value: JSON | None = strawberry.field(description="The breakdown value (null: users without one).")
    cohorts: list[RetentionCohort]
    overall: RetentionOverall


@strawberry.type(description="Retention cohorts. Users are identified users; an anonymous session counts as a "
                              "user of its own.")
class RetentionResult:
    periods: int
    cohorts: list[RetentionCohort]
    overall: RetentionOverall
    groups: list[RetentionGroup] | None = strawberry.field(description="With `breakdownBy`: the same per value, "
                                                                      "largest first.")
    applied_query: str | None


async def resolve_retention(info: Info, input: RetentionInput) -> RetentionResult:
    typed = to_tree(input.session_filter)
    request = ret.RetentionRequest(
        interval=input.interval.value, periods=input.periods, start=input.time_range.from_,
        end=input.time_range.to, time_zone=input.time_zone, start_event=input.start, return_event=input.return_,
        breakdown=input.breakdown_by, query=input.query, session_filter=typed)
    found = await info.context.read(ret.retention, request, info.context.services.settings.analytics)
    groups = None if found.groups is None else [
        RetentionGroup(value=g.value, cohorts=[RetentionCohort.of(c) for c in g.cohorts],
                       overall=RetentionOverall.of(g.overall)) for g in found.groups]
    return RetentionResult(periods=request.periods, cohorts=[RetentionCohort.of(c) for c in found.cohorts],
                           overall=RetentionOverall.of(found.overall), groups=groups,
                           applied_query=applied_query(typed, input.query, info.context.parse))
