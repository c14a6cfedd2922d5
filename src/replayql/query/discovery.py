"""Discovery for building filter UIs: the keys an entity can be filtered on (the fixed vocabulary plus the trait
keys, custom event names and property keys seen in the app's data), and the most common values of a key.

Every list here is bounded (the most common keys first) and says how often each key was seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from replayql.query.analytics.sources import SOURCES, Rows
from replayql.query.errors import BadUserInput
from replayql.query.lists import ReadStore, run
from replayql.query.sql import AppScope, col, not_null
from replayql.query.vocabulary import (
    EVENTS,
    FLAG,
    HAD_KINDS,
    NUMBER,
    PROPERTIES_PREFIX,
    SESSIONS,
    TEXT,
    USER_PREFIX,
    USERS,
    Entity,
    Field,
)
from replayql.store.dialect import JsonKeys, JsonText, NumberOrNull

MAX_KEYS = 200
MAX_TOP_VALUES = 100


@dataclass(frozen=True)
class Key:
    """A filterable key. `kind`: FIELD, USER_FIELD, TRAIT, PROPERTY, EVENT (a "had" condition, with the fields
    its conditions take) or CUSTOM_EVENT (a custom event name seen, with its property keys). `seen`: how many
    users, events or sessions had it, for keys found in the data."""

    name: str
    type: str
    kind: str
    description: str
    seen: int | None = None
    fields: tuple[Key, ...] = ()


def filter_keys(store: ReadStore, scope: AppScope, entity: Entity) -> list[Key]:
    keys = [Key(name, f.type, "FIELD", f.description) for name, f in entity.fields.items()]
    if entity is SESSIONS:
        keys += [Key(USER_PREFIX + name, f.type, "USER_FIELD", f"The session's user: {f.description}")
                 for name, f in USERS.fields.items() if name != "id"]
        keys += _json_keys(store, scope, "users", "traits", USER_PREFIX + "trait.", "TRAIT")
    elif entity is USERS:
        keys += _json_keys(store, scope, "users", "traits", "trait.", "TRAIT")
    elif entity is EVENTS:
        keys += _json_keys(store, scope, "events", "properties", PROPERTIES_PREFIX, "PROPERTY")
    keys += [Key(name, "event", "EVENT", f"Sessions with a {kind.kind} event matching the conditions.",
                 fields=tuple(_field_keys(kind.fields)))
             for name, kind in HAD_KINDS.items()]
    return keys + _custom_events(store, scope)


def _field_keys(fields: dict[str, Field]) -> list[Key]:
    return [Key(name, f.type, "FIELD", f.description) for name, f in fields.items()]


def _key_stats(scope: AppScope, table: str, document: str, extra: list[str],
               condition: exp.Expr | None = None) -> exp.Select:
    """(extra..., key, seen, numeric) for the keys of a JSON column: how many rows have each key, and whether
    every value of it reads as a number."""
    alias = "j"
    keyed = scope.select(table, *(col(c, alias) for c in [*extra, document]),
                         exp.alias_(exp.Explode(this=JsonKeys(this=col(document, alias))), "key"), alias=alias)
    if condition is not None:
        keyed = keyed.where(condition)
    value = NumberOrNull(this=JsonText(this=col(document), expression=col("key")))
    numeric = exp.Min(this=exp.If(this=not_null(value), true=exp.Literal.number(1), false=exp.Literal.number(0)))
    # an empty key (stored before ingest refused them) cannot be named in a filter: never offered
    return exp.select(*(col(c) for c in extra), col("key"), exp.alias_(exp.Count(this=exp.Star()), "seen"),
                      exp.alias_(numeric, "numeric")).from_(exp.Subquery(this=keyed, alias="keyed")).where(
        exp.NEQ(this=col("key"), expression=exp.Literal.string(""))).group_by(*(col(c) for c in extra), col("key"))


def _json_keys(store: ReadStore, scope: AppScope, table: str, document: str, prefix: str, kind: str) -> list[Key]:
    query = _key_stats(scope, table, document, []).order_by(
        exp.Ordered(this=col("seen"), desc=True), col("key")).limit(MAX_KEYS)
    return [_property_key(prefix, row, kind) for row in run(store, scope, query)]


def _property_key(prefix: str, row: dict[str, Any], kind: str) -> Key:
    type_ = NUMBER if row["numeric"] else TEXT
    return Key(prefix + row["key"], type_, kind, f"Seen {row['seen']} times.", seen=int(row["seen"]))


def _custom_events(store: ReadStore, scope: AppScope) -> list[Key]:
    """Custom event names by frequency, each with the property keys its events carried."""
    custom = col("kind", "j").eq(exp.Literal.string("custom"))
    names = scope.select("events", col("name", "j"), exp.alias_(exp.Count(this=exp.Star()), "seen"),
                         alias="j").where(custom).group_by(col("name", "j")).order_by(
        exp.Ordered(this=col("seen"), desc=True), col("name", "j")).limit(MAX_KEYS)
    found = run(store, scope, names)
    if not found:
        return []
    properties = _key_stats(scope, "events", "properties", ["name"], custom.copy()).where(
        exp.In(this=col("name"), expressions=[scope.param(r["name"]) for r in found]))
    by_name: dict[str, list[Key]] = {}
    for row in sorted(run(store, scope, properties), key=lambda r: (-r["seen"], r["key"])):
        by_name.setdefault(row["name"], []).append(_property_key(PROPERTIES_PREFIX, row, "PROPERTY"))
    return [Key(row["name"], "event", "CUSTOM_EVENT", f'custom("{row["name"]}"): seen {row["seen"]} times.',
                seen=int(row["seen"]), fields=tuple(by_name.get(row["name"], [])[:MAX_KEYS]))
            for row in found]


@dataclass(frozen=True)
class TopValues:
    values: list[tuple[str, int]]  # (value as text, rows), most common first
    total: int  # rows with a value
    distinct: int


def top_values(store: ReadStore, scope: AppScope, entity: Entity, field: str, query: str | None, limit: int
               ) -> TopValues:
    """The most common values of `field` among the entity's rows matching `query` (ties by value)."""
    if not 1 <= limit <= MAX_TOP_VALUES:
        raise BadUserInput(f"`limit` must be between 1 and {MAX_TOP_VALUES}; got {limit}")
    source = Rows(SOURCES[entity.name.upper()], scope, query)
    try:
        value = source.resolve(field)
    except BadUserInput as err:
        raise BadUserInput(f"no top values for `{field}` on {entity.name}; {err}") from None
    rows = source.select(exp.alias_(value.expression, "value"))
    counted = exp.Count(this=exp.Star())
    grouped = exp.select(
        col("value"), exp.alias_(counted, "n"),
        exp.alias_(exp.Window(this=exp.Sum(this=counted.copy())), "total"),
        exp.alias_(exp.Window(this=exp.Count(this=exp.Star())), "distinct_values"),
    ).from_(exp.Subquery(this=rows, alias="v")).where(not_null(col("value"))).group_by(col("value")).order_by(
        exp.Ordered(this=col("n"), desc=True), col("value")).limit(limit)
    found = run(store, scope, grouped)
    if not found:
        return TopValues([], 0, 0)
    flag = value.type == FLAG  # a flag reads back as a boolean from DuckDB and as 0/1 from ClickHouse
    return TopValues([(_text(bool(r["value"]) if flag else r["value"]), int(r["n"])) for r in found],
                     int(found[0]["total"]), int(found[0]["distinct_values"]))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
        return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return str(value)
