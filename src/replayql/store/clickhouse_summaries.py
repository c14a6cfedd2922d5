"""ClickHouse's summaries kept at write time: sessions, users and issues each have an AggregatingMergeTree table,
fed by a materialized view from their per-batch rows, so a read takes a few rows per session, user or issue
instead of folding every batch the app ever sent.

Every column is a SimpleAggregateFunction: its stored value is already the answer of the rows merged so far, so
a read is `FROM sessions FINAL` and plain columns, with no aggregate states to deserialise and no GROUP BY over
every key (FINAL merges only the key ranges that several parts share). Each merge rule becomes a function whose
value is its own state:
- MIN, MAX: min, max;
- the value with the least ordering key (WITH_*): min of (key is NULL, key, value), so a row without a key loses;
- the latest value (LATEST, LATEST_WRITTEN): max of (value is not NULL, order, value), so a NULL never wins;
- distinct sessions: the array of their ids (groupUniqArrayArray), counted when read;
- sums: a `maxMap` from each batch's identity to its values, added up when read. A state folds rows as they are
  inserted, so the per-batch table's deduplication cannot undo a batch inserted twice (retried through two
  servers at once); keyed by batch, it is still one entry.
- plain sums (sessions): a `sum` per column besides the map, read without adding up a map (a filter on error_count
  over 260,000 sessions: 5 ms against 30). A batch folded twice counts twice in them, so the writer notes the keys
  it may have folded twice (a retry, two servers at once); their reads take the map's sums, and a recount corrects
  their plain sums by the difference (store.clickhouse_store).
Everything here is generated from the summaries' one declaration (store.schema): the column types, the view's
values, the reads' expressions and the rebuild of some keys after a deletion. Columns a rule leaves to other
tables (a user's traits, kept one row per key; an issue's status, set by the API) are not in these tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import sqlglot
from sqlglot import exp

from replayql.store import schema
from replayql.store.merge import Summary, issues_with_status
from replayql.store.schema import Merge


class SourceTable(Protocol):
    """What a summary needs to know of its per-batch table (clickhouse_schema.Table)."""

    @property
    def name(self) -> str: ...

    @property
    def required(self) -> tuple[str, ...]:  # columns that are never NULL
        ...

# Column types of the states' arguments: the per-batch tables' types, without LowCardinality (a state type
# takes the plain type) or codecs.
_TYPES = {schema.STRING: "String", schema.INT: "Int32", schema.BIGINT: "Int64", schema.FLOAT: "Float64",
          schema.BOOL: "Bool", schema.TIME: "DateTime64(3, 'UTC')", schema.JSON: "String"}
_SIMPLE = {Merge.MIN: "min", Merge.MAX: "max"}
# What orders LATEST and LATEST_WRITTEN among a source's rows, and its type
_ORDER_TYPES = {"seq": "Int32", "version": "Int64", "received_at": "DateTime64(3, 'UTC')",
                "(written, seq)": "Tuple(Int64, Int32)"}
SUMS = "sums"  # the one column of a summary's sums: batch identity -> each SUM column's value
_WITH = (Merge.WITH_FIRST_PAGE, Merge.WITH_CONTEXT, Merge.WITH_FIRST_OCCURRENCE)
_OWN_TABLES = (Merge.PATCH, Merge.SET_BY_API)  # kept in tables of their own


@dataclass(frozen=True)
class SummaryTable:
    name: str  # the table, named as the query layer's relation
    source: SourceTable  # the per-batch table that feeds it
    summary: Summary
    keys: tuple[str, str]
    order: str  # what orders LATEST among the source's rows
    written: str = "seq"  # what orders LATEST_WRITTEN: the order rows were written in
    sources: dict[str, str] = field(default_factory=dict)  # summary column -> the source's column, when renamed
    batch: tuple[str, str] = ("seq", "Int32")  # what identifies a source row's batch among the key's, and its type
    plain_sums: bool = False  # a plain sum per SUM column too, read for the keys not noted to recount

    def columns(self) -> list[tuple[str, str, Merge | None]]:
        """The columns with a state of their own (the sums share one)."""
        return [(name, logical, rule) for name, logical, rule in self.summary
                if rule not in _OWN_TABLES and rule is not Merge.SUM]

    def sums(self) -> list[str]:
        return [name for name, _, rule in self.summary if rule is Merge.SUM]

    def _source_type(self, name: str, logical: str) -> str:
        column = self.sources.get(name, name)
        return _TYPES[logical] if column in self.source.required else f"Nullable({_TYPES[logical]})"

    def column_ddl(self) -> list[tuple[str, str]]:
        """(name, ClickHouse type) of the table's columns: keys, then one SimpleAggregateFunction per rule."""
        out = []
        for name, logical, rule in self.columns():
            plain = self._source_type(name, logical)
            match rule:
                case None:
                    kind = "LowCardinality(String)" if name == "app_id" else "String"
                case Merge.MIN | Merge.MAX:
                    kind = f"SimpleAggregateFunction({_SIMPLE[rule]}, {plain})"
                case Merge.LATEST | Merge.LATEST_WRITTEN:
                    order = _ORDER_TYPES[self._order(rule)]
                    kind = f"SimpleAggregateFunction(max, Tuple(UInt8, {order}, {plain}))"
                case Merge.DISTINCT_SESSIONS:
                    kind = "SimpleAggregateFunction(groupUniqArrayArray, Array(String))"
                case _:
                    assert rule in _WITH and rule.ordering is not None
                    key = self._source_type(rule.ordering, self._logical(rule.ordering))
                    kind = f"SimpleAggregateFunction(min, Tuple(UInt8, {key}, {plain}))"
            out.append((name, kind))
        if self.sums():
            arrays = ", ".join(["Array(Int64)"] * len(self.sums()))
            out.append((SUMS, f"SimpleAggregateFunction(maxMap, Tuple(Array({self.batch[1]}), {arrays}))"))
        out.extend((name, "SimpleAggregateFunction(sum, Int64)") for name in self.plain())
        return out

    def plain(self) -> list[str]:
        """The SUM columns that are also kept as plain sums."""
        return self.sums() if self.plain_sums else []

    def _logical(self, name: str) -> str:
        return next(logical for column, logical, _ in self.summary if column == name)

    def _order(self, rule: Merge) -> str:
        return self.order if rule is Merge.LATEST else self.written

    def states(self) -> list[str]:
        """The view's SELECT list: each column's value from a block of source rows (grouped by the keys)."""
        out = []
        for name, _, rule in self.columns():
            value = self.sources.get(name, name)
            match rule:
                case None:
                    state = value
                case Merge.MIN | Merge.MAX:
                    state = f"{_SIMPLE[rule]}({value})"
                case Merge.LATEST | Merge.LATEST_WRITTEN:
                    state = f"max(tuple({value} IS NOT NULL, {self._order(rule)}, {value}))"
                case Merge.DISTINCT_SESSIONS:
                    # every session with a batch row for the user (the API's rows have seq -1): a retry that
                    # finds the session already flagged by its failed try still counts it
                    state = "groupUniqArrayArray(if(seq >= 0, [session_id], []))"
                case _:
                    assert rule in _WITH and rule.ordering is not None
                    key = self.sources.get(rule.ordering, rule.ordering)
                    state = f"min(tuple({key} IS NULL, {key}, {value}))"
            out.append(f"{state} AS {name}")
        if self.sums():
            values = ", ".join(f"[{self.sources.get(name, name)}]" for name in self.sums())
            out.append(f"maxMap([{self.batch[0]}], {values}) AS {SUMS}")
        out.extend(f"sum({self.sources.get(name, name)}) AS {name}" for name in self.plain())
        return out

    def select_states(self, source: str, where: str | None = None) -> str:
        """The values of `source`'s rows (optionally only those `where` holds), one row per key."""
        condition = f" WHERE {where}" if where else ""
        return (f"SELECT {', '.join(self.states())} FROM {source}{condition} GROUP BY {', '.join(self.keys)} "
                "SETTINGS prefer_column_name_to_alias = 1")  # values are aliased to the names they read

    def merged(self, mapped: bool = False) -> list[exp.Expr]:
        """The read's SELECT list over the table FINAL (its rows merged): every column's answer, aliased. The sums
        are the plain ones where kept, or the map's (`mapped`: for the keys whose plain sums may count a batch
        twice)."""
        out: list[exp.Expr] = []
        for name, _, rule in self.columns():
            column = exp.column(name)
            match rule:
                case None | Merge.MIN | Merge.MAX:
                    value: exp.Expression = column
                case Merge.DISTINCT_SESSIONS:
                    value = exp.Anonymous(this="length", expressions=[column])  # of the array
                case _:  # the value in (flag, key, value)
                    value = exp.Anonymous(this="tupleElement", expressions=[column, exp.Literal.number(3)])
            out.append(exp.alias_(value, name))
        plain = set(self.plain()) if not mapped else set()
        out.extend(exp.alias_(exp.column(name) if name in plain else self.mapped_sum(name), name)
                   for name in self.sums())
        return out

    def mapped_sum(self, name: str) -> exp.Expr:
        """A SUM column's value from the map: each batch once."""
        values = exp.Anonymous(this="tupleElement", expressions=[
            exp.column(SUMS), exp.Literal.number(self.sums().index(name) + 2)])
        return exp.Anonymous(this="arraySum", expressions=[values])

    def read(self, table: exp.Table, mapped: bool = False) -> exp.Select:
        """The summary's rows, merged."""
        return exp.select(*self.merged(mapped)).from_(exp.Final(this=table))

    def correction(self, table: exp.Table) -> exp.Select:
        """A row per key that, inserted, makes its plain sums the map's: the merged row itself (every other rule
        takes its own value again unchanged) with each plain sum replaced by its difference from the map's."""
        columns: list[exp.Expr] = [exp.column(name) for name, _ in self.column_ddl() if name not in self.plain()]
        columns.extend(exp.alias_(exp.Sub(this=self.mapped_sum(name), expression=exp.column(name)), name)
                       for name in self.plain())
        return exp.select(*columns).from_(exp.Final(this=table))

    def miscounted(self) -> exp.Expr:
        """True for a merged row whose plain sums differ from the map's."""
        return exp.or_(*(exp.NEQ(this=exp.column(name), expression=self.mapped_sum(name)) for name in self.plain()))


# The views that reads go through, one per summary: its states merged, and what other tables add to it.
MERGED_VIEWS = {"sessions": "sessions_merged", "users": "users_merged", "issues": "issues_merged"}
_TRAITS_JSON = sqlglot.parse_one(
    "concat('{', arrayStringConcat(arrayMap((k, v) -> concat(toJSONString(k), ':', v), "
    "groupArrayIf(key, value IS NOT NULL), groupArrayIf(value, value IS NOT NULL)), ','), '}')",
    read="clickhouse")


def merged_sessions(sessions: SummaryTable, table: exp.Table, mapped: bool = False) -> exp.Select:
    duration = exp.Sub(this=exp.func("toUnixTimestamp64Milli", exp.column("ended_at")),
                       expression=exp.func("toUnixTimestamp64Milli", exp.column("started_at")))
    return sessions.read(table, mapped).select(exp.alias_(duration, "duration_ms"))


def merged_users(users: SummaryTable, table: exp.Table, traits: exp.Table) -> exp.Select:
    """With the traits: kept one row per key (the newest wins, a null removes it), the patch already folded."""
    folded = exp.select("app_id", "user_id", exp.alias_(_TRAITS_JSON.copy(), "traits")).from_(
        exp.Final(this=traits)).group_by("app_id", "user_id")
    merged = users.read(table)
    with_traits = exp.func("coalesce", exp.column("traits", "t"), exp.Literal.string("{}"))
    return exp.select(*(exp.column(name, "u") for name, _ in schema.USER_COLUMNS if name != "traits"),
                      exp.alias_(with_traits, "traits")).from_(exp.Subquery(this=merged, alias="u")).join(
        exp.Subquery(this=folded, alias="t"), on=_same_key("t", "u", users.keys), join_type="left")


def merged_issues(issues: SummaryTable, table: exp.Table, status: exp.Table) -> exp.Select:
    """With the status the API set last (OPEN, since the first occurrence, when it never did) and the status
    that is in effect (a regression reopens: store.merge.issues_with_status)."""
    latest = exp.select("app_id", "issue_id",
                        exp.alias_(exp.func("argMax", exp.column("status"), exp.column("changed_at")), "status"),
                        exp.alias_(exp.Max(this=exp.column("changed_at")), "changed_at")).from_(
        exp.Final(this=status)).group_by("app_id", "issue_id")
    merged = issues.read(table)
    stored = [exp.column(name, "i") for name, _ in schema.ISSUE_COLUMNS if name not in ("status", "status_changed_at")]
    with_status = exp.select(
        *stored,
        exp.alias_(exp.func("coalesce", exp.column("status", "st"), exp.Literal.string("OPEN")), "status"),
        exp.alias_(exp.func("coalesce", exp.column("changed_at", "st"), exp.column("first_seen", "i")),
                   "status_changed_at"),
    ).from_(exp.Subquery(this=merged, alias="i")).join(
        exp.Subquery(this=latest, alias="st"), on=_same_key("st", "i", issues.keys), join_type="left")
    return issues_with_status(exp.Subquery(this=with_status, alias="merged"))


def _same_key(left: str, right: str, keys: tuple[str, ...]) -> exp.Expr:
    return exp.and_(*(exp.column(k, left).eq(exp.column(k, right)) for k in keys))
