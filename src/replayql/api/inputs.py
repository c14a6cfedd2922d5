"""GraphQL input types for orders and time ranges (filters are in `api.filters`)."""

from __future__ import annotations

import enum
from datetime import datetime

import strawberry


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
    FRUSTRATION = strawberry.enum_value("FRUSTRATION", description="Rage, dead and error clicks together.")
    USER = strawberry.enum_value("USER", description="The identified user's id; anonymous sessions sort as ''.")
    COUNTRY = strawberry.enum_value("COUNTRY", description="The country code; an unknown one sorts as empty.")
    DEVICE = strawberry.enum_value("DEVICE", description="The device type; an unknown one sorts as empty.")


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
