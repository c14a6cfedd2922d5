"""What analytics count over: sources (sessions, users, issues, events of a kind), the rows they read, and the
fields a measure or dimension can name on them, with the joins those fields need.

A field is named as in the filter language: a field of the source (`durationMs`, `browser`, `status`), a field
of the row's session (`session.browser`, for events), of its user (`user.trait.plan`, `user.email`), a property
(`properties.revenue`), or `pathPattern` (the path with ids collapsed: `/product/:id`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlglot import exp

from replayql.query import ast
from replayql.query.compile import Compiler, flag_value
from replayql.query.errors import BadUserInput
from replayql.query.sql import AppScope, col, time_range
from replayql.query.vocabulary import EVENTS, FLAG, ISSUES, NUMBER, SESSIONS, TEXT, TIME, USERS, Entity
from replayql.store.dialect import JsonText, NumberOrNull, PathPattern

ANONYMOUS = "anonymous:"  # an anonymous session counts as a user of its own


@dataclass(frozen=True)
class Source:
    name: str
    entity: Entity  # the filter vocabulary its `query` uses
    table: str
    alias: str
    time_column: str
    kinds: tuple[str, ...] = ()  # event kinds, for event sources

    @property
    def is_events(self) -> bool:
        return self.table == "events"


_EVENT_SOURCES = {"EVENTS": (), "PAGES": ("page",), "CLICKS": ("click",), "NETWORK_REQUESTS": ("network",),
                  "ERRORS": ("error",), "CONSOLE_LOGS": ("console",), "CUSTOM_EVENTS": ("custom",),
                  "WEB_VITALS": ("vital",), "FRUSTRATION_SIGNALS": ("rage_click", "dead_click", "error_click")}
SOURCES: dict[str, Source] = {
    "SESSIONS": Source("SESSIONS", SESSIONS, "sessions", "s", "started_at"),
    "USERS": Source("USERS", USERS, "users", "u", "first_seen"),
    "ISSUES": Source("ISSUES", ISSUES, "issues", "i", "first_seen"),
    **{name: Source(name, EVENTS, "events", "e", "ts", kinds) for name, kinds in _EVENT_SOURCES.items()},
}


@dataclass(frozen=True)
class Resolved:
    """A field as an expression over the source's rows, its type, and the joins it needs ("session", "user")."""

    expression: exp.Expr
    type: str
    joins: frozenset[str] = frozenset()


@dataclass
class Rows:
    """The rows one analytics query reads: a source, its filter, its time range, and the joins its fields need.
    Every table goes through `AppScope`, so each carries the tenant guard."""

    source: Source
    scope: AppScope
    query: str | None = None
    session_filter: ast.Condition | None = None
    start: datetime | None = None
    end: datetime | None = None
    joins: set[str] = field(default_factory=set)
    restrict: str | None = None  # our own condition (not user text), ANDed with `query`

    def resolve(self, name: str) -> Resolved:
        found = resolve_field(self.source, self.scope, name)
        self.joins |= found.joins
        return found

    def time(self) -> exp.Expr:
        return col(self.source.time_column, self.source.alias)

    def session_key(self) -> exp.Expr:
        if self.source.table in ("sessions", "events"):
            return col("session_id", self.source.alias)
        raise BadUserInput(f"{self.source.name} rows have no session: use COUNT or UNIQUE_USERS")

    def user_key(self) -> exp.Expr:
        """Users, counting each anonymous session as a user of its own."""
        if self.source.table == "users":
            return col("user_id", "u")
        if self.source.table == "issues":
            raise BadUserInput("ISSUES rows have no user: count them, or use ERRORS for the errors of users")
        self.joins.add("session")
        return exp.func("coalesce", col("user_id", "s"),
                        exp.DPipe(this=exp.Literal.string(ANONYMOUS), expression=col("session_id", "s")))

    def condition(self, node: ast.Condition, text: str | None) -> exp.Expr:
        """A filter-language condition on the source's rows (e.g. a RATE's numerator)."""
        return Compiler(self.scope, text).condition(self.source.entity, self.source.alias, node)

    def select(self, *columns: exp.Expr) -> exp.Select:
        """SELECT columns FROM the source's rows, filtered and joined as its fields need."""
        source, alias = self.source, self.source.alias
        query = self.scope.select(source.table, *columns, alias=alias)
        if source.kinds:
            query = query.where(exp.In(this=col("kind", alias),
                                       expressions=[exp.Literal.string(k) for k in source.kinds]))
        if self.query:
            query = query.where(self.condition(self.scope.parse(self.query), self.query))
        if self.restrict:
            query = query.where(self.condition(self.scope.parse(self.restrict), None))
        if self.session_filter is not None:
            query = query.where(self.condition(ast.InSession(self.session_filter), None))
        for condition in time_range(self.time(), self.start, self.end, self.scope):
            query = query.where(condition)
        if self.joins and source.table != "sessions":
            query = self.scope.join(query, "sessions", "s", col("session_id", "s").eq(col("session_id", alias)))
        if "user" in self.joins and source.table != "users":
            query = self.scope.join(query, "users", "u", col("user_id", "u").eq(col("user_id", "s")))
        return query


def resolve_field(source: Source, scope: AppScope, name: str) -> Resolved:
    entity, alias = source.entity, source.alias
    if name == "pathPattern" and source.table in ("sessions", "events"):
        return Resolved(PathPattern(this=col("initial_path" if source.table == "sessions" else "path", alias)), TEXT)
    known = entity.fields.get(name)
    if known is not None and not known.via_sessions and name not in entity.derived_counts:
        column = col(known.column, alias)
        return Resolved(flag_value(column, known.test) if known.type == FLAG else column, known.type)
    if entity.json_prefix and name.startswith(entity.json_prefix) and len(name) > len(entity.json_prefix):
        assert entity.json_column is not None
        key = scope.param(name[len(entity.json_prefix):])
        return Resolved(JsonText(this=col(entity.json_column, alias), expression=key), TEXT)
    if source.is_events and name.startswith("session.") and name != "session.":
        inner = resolve_field(SOURCES["SESSIONS"], scope, name[len("session."):])
        return Resolved(inner.expression, inner.type, inner.joins | {"session"})
    if source.table in ("sessions", "events") and name.startswith("user.") and name != "user.":
        inner = resolve_field(SOURCES["USERS"], scope, name[len("user."):])
        return Resolved(inner.expression, inner.type, frozenset({"session", "user"}))
    raise BadUserInput(_unknown(source, name))


def as_number(found: Resolved, name: str) -> exp.Expr:
    """A field for sum/avg/percentiles: a number column, or a JSON value read as a number."""
    if found.type == NUMBER:
        return found.expression
    if isinstance(found.expression, JsonText):
        return NumberOrNull(this=found.expression)
    if found.type == TIME:
        raise BadUserInput(f"`{name}` is a time; measures take numbers")
    raise BadUserInput(f"`{name}` is {found.type}; measures such as sum, avg and percentiles take numbers")


def _unknown(source: Source, name: str) -> str:
    entity = source.entity
    known = sorted(n for n, f in entity.fields.items() if not f.via_sessions and n not in entity.derived_counts)
    extra = [f"{entity.json_prefix}<key>"] if entity.json_prefix else []
    if source.table in ("sessions", "events"):
        extra += ["user.<field>", "user.trait.<key>", "pathPattern"]
    if source.is_events:
        extra.append("session.<field>")
    return f"unknown field `{name}` on {source.name}; fields: {', '.join(known + extra)}"



