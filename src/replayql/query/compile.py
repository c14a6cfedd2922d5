"""The filter language's query string compiled to SQL conditions on sessions (first increment of the language).

Fields, types and operators are checked here, against the same field table as the typed filter, and every
mistake is a QueryError (BAD_QUERY) that points at its place in the string.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlglot import exp

from replayql.query import language as lang
from replayql.query.filters import Column, FieldSource, NotNull, Positive, had_event
from replayql.query.sql import Scope, col, contains_ci, is_null, not_null

NUMBER, TEXT, TIME, FLAG = "number", "text", "time", "flag"


@dataclass(frozen=True)
class EventField:
    column: str
    type: str


_URL = {"url": EventField("url", TEXT), "host": EventField("host", TEXT), "path": EventField("path", TEXT)}
_CLICK = {"selector": EventField("selector", TEXT), "text": EventField("text", TEXT)}
# "had" conditions: the event kind each one reads, and the fields its conditions may name.
HAD_KINDS: dict[str, tuple[str, dict[str, EventField]]] = {
    "visited": ("page", {**_URL, "title": EventField("title", TEXT)}),
    "network": ("network", {**_URL, "method": EventField("method", TEXT), "status": EventField("status", NUMBER),
                            "durationMs": EventField("duration_ms", NUMBER)}),
    "error": ("error", {"message": EventField("message", TEXT), "type": EventField("error_type", TEXT),
                        "issue": EventField("issue_id", TEXT), "handled": EventField("handled", FLAG)}),
    "clicked": ("click", _CLICK),
    "console": ("console", {"level": EventField("level", TEXT), "message": EventField("message", TEXT)}),
    "custom": ("custom", {"name": EventField("name", TEXT)}),
    "vital": ("vital", {"name": EventField("name", TEXT), "value": EventField("value", NUMBER)}),
    "rageClick": ("rage_click", _CLICK),
    "deadClick": ("dead_click", _CLICK),
    "errorClick": ("error_click", _CLICK),
}
_NUMERIC_SESSION_FIELDS = frozenset({"durationMs", "activeDurationMs", "pageCount", "clickCount", "errorCount",
                                     "eventCount", "rageClickCount", "deadClickCount", "errorClickCount"})


class Compiler:
    def __init__(self, text: str, fields: dict[str, FieldSource], scope: Scope, table: str,
                 now_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.text, self.fields, self.scope, self.table, self.now_ms = text, fields, scope, table, now_ms

    def compile(self, node: lang.Condition) -> exp.Expression:
        match node:
            case lang.And(items):
                return exp.and_(*(self.compile(i) for i in items))
            case lang.Or(items):
                return exp.or_(*(self.compile(i) for i in items))
            case lang.Not(item):
                return exp.Not(this=exp.paren(self.compile(item)))
            case lang.Compare():
                return self._session_field(node)
            case lang.Had():
                return self._had(node)
        raise self.fail(node, "sequences (THEN) are not supported yet; write the steps as separate conditions")

    def fail(self, node: lang.Node, summary: str) -> lang.QueryError:
        return lang.error_at(self.text, node.start, summary)

    def _session_field(self, node: lang.Compare) -> exp.Expression:
        source = self.fields.get(node.field)
        if source is None:
            raise self.fail(node, f"unknown field `{node.field}`; fields: {', '.join(sorted(self.fields))}")
        if isinstance(source, Positive | NotNull):
            return self._flag(node, source)
        assert isinstance(source, Column)
        kind = NUMBER if node.field in _NUMERIC_SESSION_FIELDS else TEXT
        return self._compare(col(source.name, self.table), kind, node)

    def _flag(self, node: lang.Compare, source: Positive | NotNull) -> exp.Expression:
        if node.op != "=" or not isinstance(node.value, lang.Bool):
            raise self.fail(node, f"`{node.field}` is true or false: write `{node.field} = true`")
        column = col(source.name, self.table)
        holds = (exp.GT(this=column, expression=exp.Literal.number(0)) if isinstance(source, Positive)
                 else not_null(column))
        return holds if node.value.value else exp.Not(this=exp.paren(holds))

    def _had(self, node: lang.Had) -> exp.Expression:
        kind, fields = HAD_KINDS[node.kind]
        conditions = []
        for condition in node.conditions:
            field = fields.get(condition.field)
            if field is None:
                raise self.fail(condition, f"`{node.kind}` has no field `{condition.field}`; fields: "
                                           f"{', '.join(sorted(fields))}")
            conditions.append(self._compare(col(field.column, "e"), field.type, condition))
        return had_event(self.scope, self.table, kind, conditions)

    def _compare(self, column: exp.Expression, kind: str, node: lang.Compare) -> exp.Expression:
        op, value = node.op, node.value
        if op in ("EXISTS", "NOT EXISTS"):
            return not_null(column) if op == "EXISTS" else is_null(column)
        if op in ("IN", "NOT IN"):
            assert isinstance(value, lang.ValueList)
            found = exp.In(this=column, expressions=[self._param(kind, v, node) for v in value.items])
            return found if op == "IN" else exp.or_(is_null(column.copy()), exp.Not(this=found))
        if op == "BETWEEN":
            assert isinstance(value, lang.Range)
            return exp.Between(this=column, low=self._param(kind, value.low, node),
                               high=self._param(kind, value.high, node))
        assert value is not None
        if op in ("~", "!~", "^=", "$=") and kind != TEXT:
            raise self.fail(node, f"`{op}` compares text, and `{node.field}` is a {kind}")
        if op in ("<", "<=", ">", ">=") and kind == TEXT:
            raise self.fail(node, f"`{op}` compares numbers and times, and `{node.field}` is text")
        return self._binary(column, op, self._param(kind, value, node))

    @staticmethod
    def _binary(column: exp.Expression, op: str, param: exp.Expression) -> exp.Expression:
        match op:
            case "=":
                return column.eq(param)
            case "!=":
                return exp.or_(is_null(column.copy()), exp.NEQ(this=column, expression=param))
            case "~":
                return contains_ci(column, param)
            case "!~":
                return exp.or_(is_null(column.copy()), exp.Not(this=contains_ci(column, param)))
            case "^=":
                return exp.StartsWith(this=column, expression=param)
            case "$=":
                return exp.func("ends_with", column, param)
        comparisons: dict[str, Any] = {"<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
        return comparisons[op](this=column, expression=param)

    def _param(self, kind: str, value: lang.Value, node: lang.Compare) -> exp.Expression:
        match value:
            case lang.Str(text) if kind == TEXT:
                return self.scope.param(text)
            case lang.Num(number) if kind == TEXT:
                return self.scope.param(str(number))  # `status = 404` on a text field means the text "404"
            case lang.Num(number) if kind == NUMBER:
                return self.scope.param(float(number))
            case lang.Duration(ms) if kind == NUMBER:
                return self.scope.param(float(ms))
            case lang.Bool(flag) if kind == FLAG:
                return self.scope.param(flag)
            case lang.Time(text) if kind == TIME:
                return self.scope.param(datetime.fromisoformat(text).astimezone(UTC))
            case lang.RelativeTime(offset) if kind == TIME:
                return self.scope.param(datetime.fromtimestamp((self.now_ms() + offset) / 1000, UTC))
        raise self.fail(node, f"`{node.field}` is a {kind}; {lang.to_string(value)} is not")


def compile_sessions_query(text: str, fields: dict[str, FieldSource], scope: Scope, table: str
                           ) -> tuple[exp.Expression, str]:
    """The SQL condition for a sessions query string, and the normalised string it stands for."""
    tree = lang.parse(text)
    return Compiler(text, fields, scope, table).compile(tree), lang.to_string(tree)
