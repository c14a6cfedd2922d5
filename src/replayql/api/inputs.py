"""GraphQL input types for filters, orders and time ranges, and their translation to the query layer."""

from __future__ import annotations

import enum
from dataclasses import fields
from datetime import datetime
from typing import Any

import strawberry

from replayql.query import filters as q
from replayql.query.entities import EVENT_FIELDS, ISSUE_FIELDS, SESSION_FIELDS, USER_FIELDS
from replayql.query.filters import Condition, FieldSource


@strawberry.input(description="Conditions on a text field; all given operators must hold.")
class StringCondition:
    eq: str | None = None
    neq: str | None = strawberry.field(default=None, description="Not equal (also true where the field is absent).")
    in_: list[str] | None = strawberry.field(default=None, name="in")
    not_in: list[str] | None = None
    contains: str | None = strawberry.field(default=None, description="Case-insensitive substring.")


@strawberry.input(description="Conditions on a number; all given operators must hold.")
class NumberCondition:
    eq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None


@strawberry.input(description="A time range, [from, to). Either end may be left open.")
class TimeRange:
    from_: datetime | None = strawberry.field(default=None, name="from")
    to: datetime | None = None


@strawberry.enum
class OrderDirection(enum.Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.enum
class SessionOrderField(enum.Enum):
    STARTED_AT = "STARTED_AT"
    ENDED_AT = "ENDED_AT"
    DURATION = "DURATION"
    ACTIVE_DURATION = "ACTIVE_DURATION"
    EVENT_COUNT = "EVENT_COUNT"
    ERROR_COUNT = "ERROR_COUNT"
    PAGE_COUNT = "PAGE_COUNT"
    CLICK_COUNT = "CLICK_COUNT"


@strawberry.enum
class UserOrderField(enum.Enum):
    LAST_SEEN = "LAST_SEEN"
    FIRST_SEEN = "FIRST_SEEN"
    SESSION_COUNT = "SESSION_COUNT"


@strawberry.enum
class IssueOrderField(enum.Enum):
    LAST_SEEN = "LAST_SEEN"
    FIRST_SEEN = "FIRST_SEEN"
    COUNT = "COUNT"


@strawberry.input
class SessionOrder:
    field: SessionOrderField = SessionOrderField.STARTED_AT
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class UserOrder:
    field: UserOrderField = UserOrderField.LAST_SEEN
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input
class IssueOrder:
    field: IssueOrderField = IssueOrderField.LAST_SEEN
    direction: OrderDirection = OrderDirection.DESC


@strawberry.input(description="Conditions on sessions, combined with AND.")
class SessionFilter:
    id: StringCondition | None = None
    browser: StringCondition | None = None
    browser_version: StringCondition | None = None
    os: StringCondition | None = None
    os_version: StringCondition | None = None
    device_type: StringCondition | None = None
    country: StringCondition | None = None
    language: StringCondition | None = None
    release: StringCondition | None = None
    user_id: StringCondition | None = None
    initial_url: StringCondition | None = None
    referrer: StringCondition | None = None
    utm_source: StringCondition | None = None
    utm_medium: StringCondition | None = None
    utm_campaign: StringCondition | None = None
    duration_ms: NumberCondition | None = None
    active_duration_ms: NumberCondition | None = None
    page_count: NumberCondition | None = None
    click_count: NumberCondition | None = None
    error_count: NumberCondition | None = None
    event_count: NumberCondition | None = None
    rage_click_count: NumberCondition | None = None
    dead_click_count: NumberCondition | None = None
    error_click_count: NumberCondition | None = None
    has_errors: bool | None = None
    identified: bool | None = strawberry.field(default=None, description="Sessions with an identified user.")
    visited_url: StringCondition | None = strawberry.field(
        default=None, description="Sessions with a page view whose URL matches.")


@strawberry.input(description="Conditions on users, combined with AND.")
class UserFilter:
    id: StringCondition | None = None
    name: StringCondition | None = None
    email: StringCondition | None = None
    session_count: NumberCondition | None = None


@strawberry.input(description="Conditions on issues, combined with AND.")
class IssueFilter:
    status: StringCondition | None = None
    error_type: StringCondition | None = None
    message: StringCondition | None = None
    title: StringCondition | None = None
    count: NumberCondition | None = None


@strawberry.input(description="Conditions on events, combined with AND. `kind` is one of page, click, input, "
                              "console, network, error, custom, identify, vital, rage_click, dead_click, "
                              "error_click.")
class EventFilter:
    kind: StringCondition | None = None
    name: StringCondition | None = None
    session_id: StringCondition | None = None
    url: StringCondition | None = None
    host: StringCondition | None = None
    path: StringCondition | None = None
    selector: StringCondition | None = None
    text: StringCondition | None = None
    level: StringCondition | None = None
    message: StringCondition | None = None
    method: StringCondition | None = None
    status: NumberCondition | None = None
    duration_ms: NumberCondition | None = None
    error_type: StringCondition | None = None
    issue_id: StringCondition | None = None
    value: NumberCondition | None = None
    user_id: StringCondition | None = None


_TABLES: dict[type, dict[str, FieldSource]] = {
    SessionFilter: SESSION_FIELDS, UserFilter: USER_FIELDS, IssueFilter: ISSUE_FIELDS, EventFilter: EVENT_FIELDS,
}


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.title() for p in rest)


def filter_pairs(value: Any) -> list[tuple[FieldSource, Condition]]:
    """The set fields of a filter input, each with its source in the query layer's field table."""
    if value is None:
        return []
    table = _TABLES[type(value)]
    pairs: list[tuple[FieldSource, Condition]] = []
    for f in fields(value):
        given = getattr(value, f.name)
        if given is not None:
            pairs.append((table[_camel(f.name)], _condition(given)))
    return pairs


def _condition(given: Any) -> Condition:
    if isinstance(given, StringCondition):
        return q.StringCondition(eq=given.eq, neq=given.neq, in_=given.in_, not_in=given.not_in,
                                 contains=given.contains)
    if isinstance(given, NumberCondition):
        return q.NumberCondition(eq=given.eq, gt=given.gt, gte=given.gte, lt=given.lt, lte=given.lte)
    return bool(given)
