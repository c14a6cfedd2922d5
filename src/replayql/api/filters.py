"""The typed face of the filter language: GraphQL filter inputs, and their translation to the language's AST.

The four filter inputs are built from the query layer's vocabulary, so every field a query string can name is a
typed field too (camelCase, same name), with the same meaning: the typed filter becomes a language tree, which
compiles like a parsed string and prints as the `appliedQuery` string.
"""

from __future__ import annotations

import enum
import functools
import sys
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import strawberry

from replayql.query import ast, language
from replayql.query.errors import BadUserInput
from replayql.query.vocabulary import (
    EVENTS,
    FLAG,
    HAD_KINDS,
    ISSUES,
    NUMBER,
    PROPERTIES_PREFIX,
    SESSIONS,
    TEXT,
    TIME,
    USER_PREFIX,
    USERS,
    Entity,
)


@strawberry.input(description="Conditions on a text field; all given operators must hold.")
class StringCondition:
    eq: str | None = None
    neq: str | None = strawberry.field(default=None, description="Not equal (also true where the field is absent).")
    in_: list[str] | None = strawberry.field(default=None, name="in")
    not_in: list[str] | None = strawberry.field(default=None, description="Also true where the field is absent.")
    contains: str | None = strawberry.field(default=None, description="Case-insensitive substring.")
    not_contains: str | None = strawberry.field(default=None, description="Case-insensitive; true where absent.")
    starts_with: str | None = None
    ends_with: str | None = None
    regex: str | None = strawberry.field(default=None, description="RE2 regular expression (`(?i)` for any case).")
    not_regex: str | None = None
    exists: bool | None = strawberry.field(default=None, description="The field has a value (false: it has none).")


@strawberry.input(description="Conditions on a number; all given operators must hold.")
class NumberCondition:
    eq: float | None = None
    neq: float | None = None
    gt: float | None = None
    gte: float | None = None
    lt: float | None = None
    lte: float | None = None
    between: list[float] | None = strawberry.field(default=None, description="[low, high], both included.")
    exists: bool | None = None


@strawberry.input(description="Conditions on a time; all given operators must hold.")
class TimeCondition:
    gt: datetime | None = None
    gte: datetime | None = None
    lt: datetime | None = None
    lte: datetime | None = None
    between: list[datetime] | None = strawberry.field(default=None, description="[from, to], both included.")
    exists: bool | None = None


@strawberry.input(description="A condition on one key of a JSON object (user traits, event properties): as text, "
                              "or as a number.")
class KeyCondition:
    key: str
    text: StringCondition | None = None
    number: NumberCondition | None = None
    exists: bool | None = None


@strawberry.enum(description="What happened in a session; the query string's names for them.")
class EventConditionKind(enum.Enum):
    VISITED = "visited"
    NETWORK = "network"
    ERROR = "error"
    CLICKED = "clicked"
    CONSOLE = "console"
    CUSTOM = "custom"
    VITAL = "vital"
    RAGE_CLICK = "rageClick"
    DEAD_CLICK = "deadClick"
    ERROR_CLICK = "errorClick"


@strawberry.input(description="An event in the session: its kind and conditions on its fields (which fields a "
                              "kind has is listed by `filterFields`).")
class EventCondition:
    kind: EventConditionKind
    url: StringCondition | None = None
    host: StringCondition | None = None
    path: StringCondition | None = None
    title: StringCondition | None = None
    method: StringCondition | None = None
    status: NumberCondition | None = None
    duration_ms: NumberCondition | None = None
    message: StringCondition | None = None
    type: StringCondition | None = None
    issue: StringCondition | None = None
    handled: bool | None = None
    selector: StringCondition | None = None
    text: StringCondition | None = None
    level: StringCondition | None = None
    name: StringCondition | None = None
    value: NumberCondition | None = None
    properties: list[KeyCondition] | None = None


@strawberry.input(description="Events in this order (each a later event than the one before), the last at most "
                              "`withinMs` after the first when given.")
class SequenceCondition:
    steps: list[EventCondition]
    within_ms: int | None = None


@strawberry.input(description="How many events of the session match `event`.")
class EventCountCondition:
    event: EventCondition
    count: NumberCondition


# -- leaves ------------------------------------------------------------------------------------------------------

_STRING_OPS = {"eq": "=", "neq": "!=", "contains": "~", "not_contains": "!~", "starts_with": "^=",
               "ends_with": "$=", "regex": "MATCHES", "not_regex": "NOT MATCHES"}
_NUMBER_OPS = {"eq": "=", "neq": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def _and(items: list[ast.Condition]) -> ast.Condition | None:
    if not items:
        return None
    return items[0] if len(items) == 1 else ast.And(tuple(items))


def _num(value: float) -> ast.Num:
    return ast.Num(int(value) if float(value).is_integer() and abs(value) < 2**53 else float(value))


def _time(value: datetime) -> ast.Time:
    moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return ast.Time(moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"))


def _exists(field: str, exists: bool | None) -> list[ast.Compare]:
    return [] if exists is None else [ast.Compare(field, "EXISTS" if exists else "NOT EXISTS")]


def _pair(field: str, given: list[Any] | None, make: Callable[[Any], ast.Value]) -> list[ast.Compare]:
    if given is None:
        return []
    if len(given) != 2:
        raise BadUserInput(f"`{field}`: `between` takes two values, [low, high]")
    return [ast.Compare(field, "BETWEEN", ast.Range(make(given[0]), make(given[1])))]


def string_conditions(field: str, given: StringCondition) -> list[ast.Compare]:
    out: list[ast.Compare] = [ast.Compare(field, op, ast.Str(getattr(given, attr)))
                                 for attr, op in _STRING_OPS.items() if getattr(given, attr) is not None]
    for attr, op in (("in_", "IN"), ("not_in", "NOT IN")):
        values = getattr(given, attr)
        if values is not None:
            out.append(ast.Compare(field, op, ast.ValueList(tuple(ast.Str(v) for v in values))))
    return out + _exists(field, given.exists)


def number_conditions(field: str, given: NumberCondition) -> list[ast.Compare]:
    out: list[ast.Compare] = [ast.Compare(field, op, _num(getattr(given, attr)))
                                 for attr, op in _NUMBER_OPS.items() if getattr(given, attr) is not None]
    return out + _pair(field, given.between, _num) + _exists(field, given.exists)


def time_conditions(field: str, given: TimeCondition) -> list[ast.Compare]:
    out: list[ast.Compare] = [ast.Compare(field, op, _time(getattr(given, attr)))
                                 for attr, op in _NUMBER_OPS.items() if getattr(given, attr, None) is not None]
    return out + _pair(field, given.between, _time) + _exists(field, given.exists)


def _leaf(field: str, given: Any) -> list[ast.Compare]:
    """The conditions one typed field stands for; an empty condition object is a mistake, not "anything"."""
    if isinstance(given, bool):
        return [ast.Compare(field, "=", ast.Bool(given))]
    if isinstance(given, StringCondition):
        out = string_conditions(field, given)
    elif isinstance(given, NumberCondition):
        out = number_conditions(field, given)
    else:
        out = time_conditions(field, given)
    if not out:
        raise BadUserInput(f"`{field}`: an empty condition object; give at least one operator such as `eq`")
    return out


def key_conditions(prefix: str, given: Iterable[KeyCondition]) -> list[ast.Compare]:
    out: list[ast.Compare] = []
    for condition in given:
        if not condition.key:
            raise BadUserInput(f"`{prefix}<key>`: the key is empty")
        field = prefix + condition.key
        parts = _exists(field, condition.exists)
        parts += string_conditions(field, condition.text) if condition.text else []
        parts += number_conditions(field, condition.number) if condition.number else []
        if not parts:
            raise BadUserInput(f"`{field}`: give `text`, `number` or `exists`")
        out.extend(parts)
    return out


def event_condition(given: EventCondition) -> ast.Had:
    fields = {"duration_ms": "durationMs"}
    conditions: list[ast.Compare] = []
    for attr in ("url", "host", "path", "title", "method", "status", "duration_ms", "message", "type", "issue",
                 "handled", "selector", "text", "level", "name", "value"):
        value = getattr(given, attr)
        if value is not None:
            conditions.extend(_leaf(fields.get(attr, attr), value))
    conditions.extend(key_conditions(PROPERTIES_PREFIX, given.properties or ()))
    return ast.Had(given.kind.value, tuple(conditions))


def count_conditions(given: EventCountCondition) -> list[ast.Condition]:
    out: list[ast.Condition] = []
    for compare in number_conditions("count", given.count):
        assert isinstance(compare, ast.Compare)
        if compare.op in ("EXISTS", "NOT EXISTS", "!="):
            raise BadUserInput("`count`: use eq, gt, gte, lt, lte or between")
        assert compare.value is not None
        out.append(ast.CountOf(event_condition(given.event), compare.op, compare.value))
    if not out:
        raise BadUserInput("`count`: an empty condition object; give at least one operator such as `gte`")
    return out


def sequence_condition(given: SequenceCondition) -> ast.Then:
    if len(given.steps) < 2:
        raise BadUserInput("`sequence` needs at least two steps")
    if given.within_ms is not None and given.within_ms <= 0:
        raise BadUserInput("`sequence.withinMs` must be positive")
    return ast.Then(tuple(event_condition(step) for step in given.steps), given.within_ms)


# -- the four filters --------------------------------------------------------------------------------------------

_LEAF_TYPES = {TEXT: StringCondition, NUMBER: NumberCondition, TIME: TimeCondition, FLAG: bool}
_Extra = tuple[Any, str, Callable[[Any], Sequence[ast.Condition]]]  # (annotation, description, to conditions)


@functools.cache
def _snake(name: str) -> str:
    return "".join("_" + c.lower() if c.isupper() else c for c in name)


def _filter_input(name: str, entity: Entity, extras: dict[str, _Extra], description: str) -> type:
    """A strawberry input class with `and`/`or`/`not`, a field per vocabulary field, and the extras."""
    annotations: dict[str, Any] = {"and_": f"list[{name}] | None", "or_": f"list[{name}] | None",
                                   "not_": f"{name} | None"}
    attrs: dict[str, Any] = {
        "and_": strawberry.field(default=None, name="and", description="All of these hold."),
        "or_": strawberry.field(default=None, name="or", description="At least one of these holds."),
        "not_": strawberry.field(default=None, name="not", description="This does not hold."),
    }
    for field_name, field in entity.fields.items():
        annotations[_snake(field_name)] = _LEAF_TYPES[field.type] | None
        attrs[_snake(field_name)] = strawberry.field(default=None, name=field_name, description=field.description)
    for attr, (annotation, text, _) in extras.items():
        annotations[attr] = annotation
        attrs[attr] = strawberry.field(default=None, description=text)
    cls = type(name, (), {"__annotations__": annotations, "__module__": __name__, **attrs})
    made = strawberry.input(cls, description=description)
    setattr(sys.modules[__name__], name, made)
    _CONVERTERS[made] = (entity, extras)
    return made


_CONVERTERS: dict[type, tuple[Entity, dict[str, _Extra]]] = {}


class FilterInput(Protocol):
    """What every generated filter input has: AND, OR and NOT of its own kind. Its other fields (one per vocabulary
    field, and the extras) are read by name."""

    and_: list[FilterInput] | None
    or_: list[FilterInput] | None
    not_: FilterInput | None


def to_tree(given: FilterInput | None) -> ast.Condition | None:
    """A typed filter as a tree of the filter language (None for no filter), within the language's limits."""
    _check_shape(given)
    tree = _to_tree(given)
    return None if tree is None else language.check_size(tree)


def _check_shape(given: FilterInput | None) -> None:
    """Refuse a filter past the language's depth or size before converting any of it (iteratively)."""
    stack, objects = [(given, 0)], 0
    while stack:
        current, depth = stack.pop()
        if current is None:
            continue
        objects += 1
        if depth > language.MAX_DEPTH:
            raise BadUserInput(f"the filter is nested more than {language.MAX_DEPTH} levels deep")
        if objects > language.MAX_CONDITIONS:
            raise BadUserInput(f"the filter has more than {language.MAX_CONDITIONS} conditions; the limit is "
                               f"{language.MAX_CONDITIONS}")
        stack.extend((child, depth + 1) for child in (*(current.and_ or ()), *(current.or_ or ()), current.not_))


def _to_tree(given: FilterInput | None) -> ast.Condition | None:
    if given is None:
        return None
    entity, extras = _CONVERTERS[type(given)]
    parts: list[ast.Condition] = []
    for children, combine in ((given.and_, ast.And), (given.or_, ast.Or)):
        trees = [t for t in (_to_tree(child) for child in children or ()) if t is not None]
        if trees:
            parts.append(trees[0] if len(trees) == 1 else combine(tuple(trees)))
    if given.not_ is not None and (inner := _to_tree(given.not_)) is not None:
        parts.append(ast.Not(inner))
    for field_name in entity.fields:
        value = getattr(given, _snake(field_name))
        if value is not None:
            parts.extend(_leaf(field_name, value))
    for attr, (_, _, convert) in extras.items():
        value = getattr(given, attr)
        if value is not None:
            parts.extend(convert(value))
    return _and(parts)


def _had_all(given: list[EventCondition]) -> list[ast.Condition]:
    return [event_condition(c) for c in given]


def _counts(given: list[EventCountCondition]) -> list[ast.Condition]:
    return [condition for c in given for condition in count_conditions(c)]


def _in_session(given: FilterInput) -> list[ast.Condition]:
    tree = to_tree(given)
    return [] if tree is None else [ast.InSession(tree)]


_HAPPENED: dict[str, _Extra] = {
    "had": ("list[EventCondition] | None", "Events that happened (each of them, in any order).", _had_all),
    "sequence": ("SequenceCondition | None", "Events that happened in this order.",
                 lambda s: [sequence_condition(s)]),
    "occurrences": ("list[EventCountCondition] | None", "How many times events happened.", _counts),
}

_SESSION_FILTER = _filter_input("SessionFilter", SESSIONS, {
    "user_name": ("StringCondition | None", "The session's user's name.",
                  lambda c: _leaf(USER_PREFIX + "name", c)),
    "user_email": ("StringCondition | None", "The session's user's email.",
                   lambda c: _leaf(USER_PREFIX + "email", c)),
    "trait": ("list[KeyCondition] | None", "The session's user's traits.",
              lambda cs: key_conditions(USER_PREFIX + "trait.", cs)),
    "visited_url": ("StringCondition | None", "A page view whose URL matches.",
                    lambda c: [ast.Had("visited", tuple(_leaf("url", c)))]),
    **_HAPPENED,
}, "Conditions on sessions; all given fields must hold. The typed face of the `query` language.")

_SESSION_OF = ("SessionFilter | None", "Some session of it (for an issue: one it occurred in) matches.", _in_session)

_USER_FILTER = _filter_input("UserFilter", USERS, {
    "trait": ("list[KeyCondition] | None", "Traits.", lambda cs: key_conditions("trait.", cs)),
    "session": _SESSION_OF,
    **_HAPPENED,
}, "Conditions on users; all given fields must hold. Event conditions hold when they hold in some session.")

_ISSUE_FILTER = _filter_input("IssueFilter", ISSUES, {"session": _SESSION_OF, **_HAPPENED},
                               "Conditions on issues; all given fields must hold.")

_EVENT_FILTER = _filter_input("EventFilter", EVENTS, {
    "properties": ("list[KeyCondition] | None", "Custom properties.",
                   lambda cs: key_conditions(PROPERTIES_PREFIX, cs)),
    "session": ("SessionFilter | None", "The event's session matches.", _in_session),
}, "Conditions on events; all given fields must hold.")

if TYPE_CHECKING:  # generated from the vocabulary above; to the checker, each is a FilterInput
    SessionFilter: TypeAlias = FilterInput
    UserFilter: TypeAlias = FilterInput
    IssueFilter: TypeAlias = FilterInput
    EventFilter: TypeAlias = FilterInput
else:
    SessionFilter, UserFilter, IssueFilter, EventFilter = _SESSION_FILTER, _USER_FILTER, _ISSUE_FILTER, _EVENT_FILTER

assert set(HAD_KINDS) == {k.value for k in EventConditionKind}, "typed event kinds drifted from the language"
