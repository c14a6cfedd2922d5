"""The filter language's tree (AST): what a filter says, whichever face it came from, the query string (through
`language.parse`) or the typed GraphQL filter (through the API's translation). The compiler reads it and
`language.to_string` prints it. Nodes are frozen, so a parsed tree can be cached and shared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field


@dataclass(frozen=True, kw_only=True)
class Node:
    """Every node knows its span in the query string; equality ignores positions."""

    start: int = field(default=0, compare=False)
    end: int = field(default=0, compare=False)


@dataclass(frozen=True)
class Str(Node):
    value: str


@dataclass(frozen=True)
class Num(Node):
    value: int | float


@dataclass(frozen=True)
class Bool(Node):
    value: bool


@dataclass(frozen=True)
class Duration(Node):
    ms: int


@dataclass(frozen=True)
class Time(Node):
    """An ISO-8601 date or date-time, kept as written (validated); the compiler converts it."""

    value: str


@dataclass(frozen=True)
class RelativeTime(Node):
    """`now` plus `offset_ms` (`-7d` is offset -7 days); resolved against a clock by the compiler."""

    offset_ms: int


@dataclass(frozen=True)
class ValueList(Node):
    items: tuple[Value, ...]


@dataclass(frozen=True)
class Range(Node):
    low: Value
    high: Value


Value = Str | Num | Bool | Duration | Time | RelativeTime | ValueList | Range


@dataclass(frozen=True)
class Compare(Node):
    field: str
    op: str
    value: Value | None = None

    @property
    def field_end(self) -> int:
        return self.start + len(self.field)


@dataclass(frozen=True)
class Had(Node):
    kind: str
    conditions: tuple[Compare, ...] = ()


@dataclass(frozen=True)
class Then(Node):
    steps: tuple[Had, ...]
    within_ms: int | None = None


@dataclass(frozen=True)
class CountOf(Node):
    """`count(network(status >= 500)) >= 3`: how many events of the session match, compared."""

    event: Had
    op: str
    value: Value


@dataclass(frozen=True)
class InSession(Node):
    """`session(...)`: a condition on sessions, asked of a user, issue or event (some session of it matches)."""

    item: Condition


@dataclass(frozen=True)
class Not(Node):
    item: Condition


@dataclass(frozen=True)
class And(Node):
    items: tuple[Condition, ...]


@dataclass(frozen=True)
class Or(Node):
    items: tuple[Condition, ...]


Condition = And | Or | Not | Compare | Had | Then | CountOf | InSession


def walk(node: Node) -> Iterator[Node]:
    """Every node (conditions and values), parents before children, left to right; iterative."""
    stack: list[Node] = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(reversed(_children(current)))


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, And | Or | ValueList):
        return node.items
    if isinstance(node, Not):
        return (node.item,)
    if isinstance(node, Compare):
        return () if node.value is None else (node.value,)
    if isinstance(node, Had):
        return node.conditions
    if isinstance(node, Then):
        return node.steps
    if isinstance(node, CountOf):
        return (node.event, node.value)
    if isinstance(node, InSession):
        return (node.item,)
    if isinstance(node, Range):
        return (node.low, node.high)
    return ()
