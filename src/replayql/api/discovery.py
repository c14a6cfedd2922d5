"""GraphQL types for discovery: the keys a filter can name for an entity, and the top values of a key."""

from __future__ import annotations

import enum

import strawberry

from replayql.query import discovery
from replayql.query.vocabulary import ENTITIES, Entity


@strawberry.enum(description="What a filter applies to.")
class FilterEntity(enum.Enum):
    SESSIONS = "sessions"
    USERS = "users"
    ISSUES = "issues"
    EVENTS = "events"

    @property
    def vocabulary(self) -> Entity:
        return ENTITIES[self.value]


@strawberry.enum(description="A key's type: which operators and values it takes.")
class FilterKeyType(enum.Enum):
    TEXT = "text"
    NUMBER = "number"
    TIME = "time"
    FLAG = "flag"
    EVENT = "event"


@strawberry.enum(description="Where a key comes from.")
class FilterKeyKind(enum.Enum):
    FIELD = "FIELD"
    USER_FIELD = "USER_FIELD"
    TRAIT = "TRAIT"
    PROPERTY = "PROPERTY"
    EVENT = "EVENT"
    CUSTOM_EVENT = "CUSTOM_EVENT"


@strawberry.type(description="A key the filter language can name, as written in a query string (`browser`, "
                              "`user.trait.plan`, `properties.total`), or an event condition (`network`, or a "
                              "custom event name for `custom(\"name\")`) with the fields its conditions take.")
class FilterKey:
    name: str
    type: FilterKeyType
    kind: FilterKeyKind
    description: str
    seen: int | None = strawberry.field(description="How often the data had it (for keys found in the data).")
    fields: list[FilterKey]

    @staticmethod
    def of(key: discovery.Key) -> FilterKey:
        return FilterKey(name=key.name, type=FilterKeyType(key.type), kind=FilterKeyKind(key.kind),
                         description=key.description, seen=key.seen, fields=[FilterKey.of(f) for f in key.fields])


@strawberry.type
class ValueCount:
    value: str
    count: int


@strawberry.type(description="The most common values of a key, most common first.")
class TopValues:
    values: list[ValueCount]
    total: int = strawberry.field(description="Rows with a value for the key.")
    distinct: int = strawberry.field(description="Distinct values (the list shows at most `limit`).")
    other_count: int = strawberry.field(description="Rows whose value is not in the list.")

    @staticmethod
    def of(found: discovery.TopValues) -> TopValues:
        shown = sum(n for _, n in found.values)
        return TopValues(values=[ValueCount(value=v, count=n) for v, n in found.values], total=found.total,
                         distinct=found.distinct, other_count=found.total - shown)
