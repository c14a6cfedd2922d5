"""The filter language's AST compiled to one SQL condition, for sessions, users, issues and events alike.

Both faces of the language arrive here as the same tree: the query string through `language.parse`, the typed
GraphQL filter through the API's translation. Fields, types and operators are checked against the vocabulary;
a mistake in a query string is a QueryError (BAD_QUERY) that points at its place, a mistake in a typed filter a
BadUserInput. "Had", count and sequence conditions become semi-joins or grouped subqueries over events, and
conditions on another entity's sessions become a semi-join through sessions: never a query per row. Every
table is read through `AppScope.select`, so the tenant guard is on every subquery.
"""

from __future__ import annotations

import math
import operator
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from replayql.query import ast, language
from replayql.query.errors import BadUserInput, UserError
from replayql.query.sequences import MAX_STEPS, sequence_sessions
from replayql.query.sql import AppScope, col, contains_ci, is_null, not_null
from replayql.query.vocabulary import (
    FLAG,
    HAD_KINDS,
    NUMBER,
    PROPERTIES_PREFIX,
    SESSIONS,
    TEXT,
    TIME,
    USER_PREFIX,
    USERS,
    Entity,
    Field,
)
from replayql.store.dialect import JsonText, NumberOrNull

_NEGATIVE_OPS = frozenset({"!=", "NOT IN", "!~", "NOT EXISTS", "NOT MATCHES"})  # hold where a value is absent
_ORDERING_OPS = frozenset({"<", "<=", ">", ">="})
_TEXT_OPS = frozenset({"~", "!~", "^=", "$=", "MATCHES", "NOT MATCHES"})
_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SQL_COMPARE: dict[str, type[exp.Expr]] = {
    "=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
# Event kinds whose count the session row keeps, so `count(visited) >= 5` needs no events scan.
_SESSION_COUNTERS = {"visited": "page_count", "clicked": "click_count", "error": "error_count",
                     "rageClick": "rage_click_count", "deadClick": "dead_click_count",
                     "errorClick": "error_click_count"}
# RE2, which both stores use, has no look-around and no back-references; refuse them before the store does.
_RE2_UNSUPPORTED = re.compile(r"\(\?<?[=!]|\\[1-9]|\(\?P=|[*+?}][+]")
_REPETITION = re.compile(r"(?<!\\)\{(\d+)(?:,(\d*))?\}")
RE2_MAX_REPEAT = 1000  # RE2 (DuckDB's and ClickHouse's engine) refuses larger counts in {n,m}
# RE2 also refuses a program too large to compile; nested counts multiply its size, so bound their product.
RE2_MAX_REPEAT_PRODUCT = 100_000


class Compiler:
    """Compiles conditions for one query. `text` is the query string the nodes came from (for error positions);
    None for a typed filter."""

    def __init__(self, scope: AppScope, text: str | None = None,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.scope, self.text, self.now_ms = scope, text, now_ms
        self._aliases = 0

    def condition(self, entity: Entity, alias: str, node: ast.Condition) -> exp.Expr:
        match node:
            case ast.And(items):
                return exp.and_(*(self.condition(entity, alias, i) for i in items))
            case ast.Or(items):
                return exp.or_(*(self.condition(entity, alias, i) for i in items))
            case ast.Not(item):  # two-valued: a condition on a missing value is false, so its NOT is true
                return exp.Not(this=exp.func("coalesce", self.condition(entity, alias, item), exp.false()))
            case ast.Compare():
                return self._field(entity, alias, node)
            case ast.InSession(item) if entity is SESSIONS:
                return self.condition(entity, alias, item)
            case ast.InSession(item):
                return self._via_sessions(entity, alias, item)
            case _ if entity is not SESSIONS:
                return self._via_sessions(entity, alias, node)
            case ast.Had():
                return self._in_sessions(alias, self._had_query(node))
            case ast.CountOf():
                return self._count(alias, node)
            case ast.Then():
                return self._sequence(alias, node)
        raise TypeError(f"not a condition: {node!r}")

    def fail(self, node: ast.Node, summary: str) -> UserError:
        return BadUserInput(summary) if self.text is None else language.error_at(self.text, node.start, summary)

    def alias(self, prefix: str) -> str:
        """A fresh table alias, so nested subqueries never shadow each other."""
        self._aliases += 1
        return f"{prefix}{self._aliases}"

    # -- fields ---------------------------------------------------------------------------------------------

    def _field(self, entity: Entity, alias: str, node: ast.Compare) -> exp.Expr:
        name = node.field
        if name in entity.derived_counts:
            return self._derived_count(entity, alias, node)
        if (found := entity.fields.get(name)) is not None:
            if found.via_sessions:
                return self._via_sessions(entity, alias, node)
            return self._column(col(found.column, alias), found, node)
        if entity.json_prefix and name.startswith(entity.json_prefix) and len(name) > len(entity.json_prefix):
            assert entity.json_column is not None
            return self._json(col(entity.json_column, alias), name[len(entity.json_prefix):], node)
        if entity is SESSIONS and name.startswith(USER_PREFIX):
            return self._user_of_session(alias, node)
        raise self.fail(node, _unknown_field(entity, name))

    def _column(self, column: exp.Expr, found: Field, node: ast.Compare) -> exp.Expr:
        if found.type == FLAG:
            return self._flag(column, found, node)
        return self.compare(column, found.type, node)

    def _flag(self, column: exp.Expr, found: Field, node: ast.Compare) -> exp.Expr:
        if node.op not in ("=", "!=") or not isinstance(node.value, ast.Bool):
            raise self.fail(node, f"`{node.field}` is true or false: write `{node.field} = true`")
        holds = flag_value(column, found.test)
        if found.test == "bool":  # a missing flag is not true
            holds = exp.func("coalesce", holds, exp.false()).eq(exp.true())
        wanted = node.value.value == (node.op == "=")
        return holds if wanted else exp.Not(this=exp.paren(holds))

    def _json(self, document: exp.Expr, key: str, node: ast.Compare) -> exp.Expr:
        """A key of a JSON object (traits, properties): compared as a number when the value is one, else as
        text; `true`/`false` compare with the JSON booleans."""
        text = JsonText(this=document, expression=self.scope.param(key))
        values = _values(node.value)
        if node.op in _ORDERING_OPS or (values and all(isinstance(v, ast.Num | ast.Duration) for v in values)):
            return self.compare(NumberOrNull(this=text), NUMBER, node)
        if values and all(isinstance(v, ast.Bool) for v in values):
            texts = [ast.Str("true" if v.value else "false") for v in values if isinstance(v, ast.Bool)]
            node = ast.Compare(node.field, node.op, texts[0] if node.op in ("=", "!=") else
                                ast.ValueList(tuple(texts)), start=node.start, end=node.end)
        return self.compare(text, TEXT, node)

    def _user_of_session(self, alias: str, node: ast.Compare) -> exp.Expr:
        """`user.<field>`: the condition on the session's user. An anonymous session has no user, so only the
        conditions that hold where a value is absent (`!=`, NOT IN, NOT EXISTS ...) match it."""
        inner = ast.Compare(node.field[len(USER_PREFIX):], node.op, node.value, start=node.start, end=node.end)
        users = self.alias("u")
        matching = self.scope.select("users", col("user_id", users), alias=users).where(
            self._field(USERS, users, inner))
        found = exp.In(this=col("user_id", alias), query=exp.Subquery(this=matching))
        return exp.or_(found, is_null(col("user_id", alias))) if node.op in _NEGATIVE_OPS else found

    def _derived_count(self, entity: Entity, alias: str, node: ast.Compare) -> exp.Expr:
        """An issue's count computed from its error events (e.g. distinct sessions)."""
        events = self.alias("e")
        counted = exp.Count(this=exp.Distinct(expressions=[col(entity.derived_counts[node.field], events)]))
        query = self.scope.select("events", col("issue_id", events), alias=events).where(
            col("kind", events).eq(exp.Literal.string("error"))).group_by(col("issue_id", events))
        query = query.having(self.compare(counted, NUMBER, node))
        return exp.In(this=col(entity.key, alias), query=exp.Subquery(this=query))

    # -- comparisons ----------------------------------------------------------------------------------------

    def compare(self, column: exp.Expr, kind: str, node: ast.Compare) -> exp.Expr:
        op, value = node.op, node.value
        if op in ("EXISTS", "NOT EXISTS"):
            return not_null(column) if op == "EXISTS" else is_null(column)
        if op in _TEXT_OPS and kind != TEXT:
            raise self.fail(node, f"`{op}` compares text, and `{node.field}` is a {kind}")
        if op in _ORDERING_OPS | {"BETWEEN"} and kind == TEXT:
            raise self.fail(node, f"`{op}` compares numbers and times, and `{node.field}` is text")
        if op in ("IN", "NOT IN"):
            assert isinstance(value, ast.ValueList)
            if not value.items:  # `IN ()` matches nothing; `NOT IN ()` everything
                return exp.false() if op == "IN" else exp.true()
            found = exp.In(this=column, expressions=[self._param(kind, v, node) for v in value.items])
            return found if op == "IN" else _or_absent(column, exp.Not(this=found))
        if op == "BETWEEN":
            assert isinstance(value, ast.Range)
            return exp.Between(this=column, low=self._param(kind, value.low, node),
                               high=self._param(kind, value.high, node))
        assert value is not None
        if op in ("MATCHES", "NOT MATCHES"):
            matched = exp.RegexpLike(this=column, expression=self._regex(value, node))
            return matched if op == "MATCHES" else _or_absent(column, exp.Not(this=matched))
        return self._binary(column, op, self._param(kind, value, node))

    @staticmethod
    def _binary(column: exp.Expr, op: str, param: exp.Expr) -> exp.Expr:
        match op:
            case "!=":
                return _or_absent(column, exp.NEQ(this=column, expression=param))
            case "~":
                return contains_ci(column, param)
            case "!~":
                return _or_absent(column, exp.Not(this=contains_ci(column, param)))
            case "^=":
                return exp.StartsWith(this=column, expression=param)
            case "$=":
                return exp.EndsWith(this=column, expression=param)
        return _SQL_COMPARE[op](this=column, expression=param)

    def _regex(self, value: ast.Value, node: ast.Compare) -> exp.Expr:
        if not isinstance(value, ast.Str):
            raise self.fail(node, "MATCHES takes a regular expression in quotes")
        try:
            re.compile(value.value)
        except re.error as err:
            raise self.fail(value, f"invalid regular expression: {err.msg}") from None
        if _RE2_UNSUPPORTED.search(value.value):
            raise self.fail(value, "regular expressions here are RE2: no look-around, back-references or "
                                   "possessive quantifiers")
        counts = [int(count) for match in _REPETITION.finditer(value.value) for count in match.groups() if count]
        if any(count > RE2_MAX_REPEAT for count in counts) or math.prod(max(c, 1) for c in counts) > \
                RE2_MAX_REPEAT_PRODUCT:
            raise self.fail(value, f"the regular expression's repetition counts are too large for RE2 (each at "
                                   f"most {RE2_MAX_REPEAT}, together at most {RE2_MAX_REPEAT_PRODUCT} when "
                                   f"multiplied)")
        return self.scope.param(value.value)

    def _param(self, kind: str, value: ast.Value, node: ast.Compare) -> exp.Expr:
        match value:
            case ast.Str(text) if kind == TEXT:
                return self.scope.param(text)
            case ast.Num(number) if kind == TEXT:
                return self.scope.param(str(number))  # `status = 404` on a text field means the text "404"
            case ast.Num(number) if kind == NUMBER:
                return self.scope.param(float(number))
            case ast.Duration(ms) if kind == NUMBER:
                return self.scope.param(float(ms))
            case ast.Bool(flag) if kind == FLAG:
                return self.scope.param(flag)
            case ast.Time(text) if kind == TIME:
                return self.scope.param(_as_utc(datetime.fromisoformat(text)))
            case ast.RelativeTime(offset) if kind == TIME:
                return self.scope.param(datetime.fromtimestamp((self.now_ms() + offset) / 1000, UTC))
        raise self.fail(node, f"`{node.field}` is a {kind}; {language.to_string(value)} is not")

    # -- what happened in a session -------------------------------------------------------------------------

    def event_match(self, had: ast.Had, alias: str) -> exp.Expr:
        """The condition on one events row (alias `alias`) for a "had" condition: its kind and its fields."""
        kind = HAD_KINDS[had.kind]
        parts: list[exp.Expr] = [col("kind", alias).eq(exp.Literal.string(kind.kind))]
        for condition in had.conditions:
            name = condition.field
            found = kind.fields.get(name)
            if found is not None:
                parts.append(self._column(col(found.column, alias), found, condition))
            elif kind.properties and name.startswith(PROPERTIES_PREFIX) and len(name) > len(PROPERTIES_PREFIX):
                parts.append(self._json(col("properties", alias), name[len(PROPERTIES_PREFIX):], condition))
            else:
                extra = f", {PROPERTIES_PREFIX}<key>" if kind.properties else ""
                raise self.fail(condition, f"`{had.kind}` has no field `{name}`; fields: "
                                           f"{', '.join(sorted(kind.fields))}{extra}")
        return exp.and_(*parts)

    def _had_query(self, had: ast.Had) -> exp.Select:
        events = self.alias("e")
        return self.scope.select("events", col("session_id", events), alias=events).where(
            self.event_match(had, events))

    def _in_sessions(self, alias: str, sessions: exp.Expr) -> exp.Expr:
        return exp.In(this=col("session_id", alias), query=exp.Subquery(this=sessions))

    def _count(self, alias: str, node: ast.CountOf) -> exp.Expr:
        """Sessions by how many matching events they had. Sessions with none have no group, so when zero
        satisfies the comparison the condition is turned around: not among the sessions whose count fails."""
        for value in _values(node.value):
            if not isinstance(value, ast.Num):
                raise self.fail(value, "count(...) is compared with a number")
        counter = _SESSION_COUNTERS.get(node.event.kind)
        if counter is not None and not node.event.conditions:  # the session row already counts them
            return self.compare(col(counter, alias), NUMBER, ast.Compare("count", node.op, node.value))
        counted = exp.Count(this=exp.Star())
        holds = self.compare(counted, NUMBER, ast.Compare("count", node.op, node.value, start=node.start))
        query = self._had_query(node.event)
        grouped = query.group_by(query.expressions[0].copy())
        if _holds_for_zero(node):
            return exp.Not(this=self._in_sessions(alias, grouped.having(exp.Not(this=exp.paren(holds)))))
        return self._in_sessions(alias, grouped.having(holds))

    def _sequence(self, alias: str, node: ast.Then) -> exp.Expr:
        if len(node.steps) > MAX_STEPS:
            raise self.fail(node, f"a sequence has at most {MAX_STEPS} steps")
        return self._in_sessions(alias, sequence_sessions(self, node))

    # -- other entities -------------------------------------------------------------------------------------

    def _via_sessions(self, entity: Entity, alias: str, node: ast.Condition) -> exp.Expr:
        """A session condition asked of a user, issue or event: some session of it (for an issue, some session
        it occurred in) matches."""
        sessions = self.alias("s")
        matching = self.scope.select("sessions", col("session_id", sessions), alias=sessions).where(
            self.condition(SESSIONS, sessions, node))
        if entity is USERS:
            owners = matching.select(col("user_id", sessions), append=False).where(not_null(col("user_id", sessions)))
            return exp.In(this=col("user_id", alias), query=exp.Subquery(this=owners))
        if entity.name == "issues":
            events = self.alias("e")
            issues = self.scope.select("events", col("issue_id", events), alias=events).where(
                col("kind", events).eq(exp.Literal.string("error"))).where(not_null(col("issue_id", events))).where(
                self._in_sessions(events, matching))
            return exp.In(this=col("issue_id", alias), query=exp.Subquery(this=issues))
        return self._in_sessions(alias, matching)


def flag_value(column: exp.Expr, test: str) -> exp.Expr:
    """A FLAG field's value from its column: set (`not_null`), above zero (`positive`), or the column itself."""
    if test == "not_null":
        return not_null(column)
    if test == "positive":
        return exp.GT(this=column, expression=exp.Literal.number(0))
    return column


def _values(value: ast.Value | None) -> list[ast.Value]:
    if isinstance(value, ast.ValueList):
        return list(value.items)
    if isinstance(value, ast.Range):
        return [value.low, value.high]
    return [] if value is None else [value]


def _holds_for_zero(node: ast.CountOf) -> bool:
    if isinstance(node.value, ast.Range):
        return _number(node.value.low) <= 0 <= _number(node.value.high)
    return _COMPARE[node.op](0, _number(node.value))


def _number(value: ast.Value) -> float:
    assert isinstance(value, ast.Num)
    return float(value.value)


def _or_absent(column: exp.Expr, condition: exp.Expr) -> exp.Expr:
    """Negative conditions include rows where the field is missing, as users expect."""
    return exp.or_(is_null(column.copy()), condition)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _unknown_field(entity: Entity, name: str) -> str:
    known = sorted(entity.fields)
    if entity.json_prefix:
        known.append(f"{entity.json_prefix}<key>")
    if entity is SESSIONS:
        known.append(f"{USER_PREFIX}<user field>")
    hint = ""
    if entity is not SESSIONS and name in SESSIONS.fields:
        hint = f"; for the {entity.name}' sessions write session({name} ...)"
    return f"unknown field `{name}` on {entity.name}{hint}; fields: {', '.join(known)}"


def where(scope: AppScope, entity: Entity, alias: str, typed: ast.Condition | None, query: str | None
          ) -> list[exp.Expr]:
    """The conditions of a list: the typed filter's tree and the query string's, ANDed."""
    parts = []
    if typed is not None:
        parts.append(Compiler(scope).condition(entity, alias, typed))
    if query:
        parts.append(Compiler(scope, query).condition(entity, alias, scope.parse(query)))
    return parts


def applied_query(typed: ast.Condition | None, query: str | None, parse: Callable[[str], ast.Condition]
                  ) -> str | None:
    """The normalised query string a list ran: the typed filter written as a string, AND the query string (read
    with `parse`, the server's, which remembers it from the run)."""
    parts: list[ast.Condition] = []
    for tree in (typed, parse(query) if query else None):
        if tree is not None:
            parts.extend(tree.items if isinstance(tree, ast.And) else (tree,))
    if not parts:
        return None
    return language.to_string(parts[0] if len(parts) == 1 else ast.And(tuple(parts)))
