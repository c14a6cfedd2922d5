"""ClickHouse's summaries kept at write time: sessions, users and issues each have an AggregatingMergeTree table
of aggregate states, fed by a materialized view from their per-batch rows, so a read merges a few rows per
session, user or issue instead of folding every batch the app ever sent.

Everything here is generated from the summaries' one declaration (store.schema): the state column types, the
view's states, the reads' merges and the rebuild of some keys after a deletion. Columns a rule leaves to other
tables (a user's traits, kept one row per key; an issue's status, set by the API) are not in these tables.

A state folds rows as they are inserted, so the per-batch table's deduplication (ReplacingMergeTree) cannot
undo a row counted twice: the writer inserts no per-batch row that the table already holds (a retry after a
write that failed half-way), see `ClickHouseStore._unwritten`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from sqlglot import exp

from replayql.store import schema
from replayql.store.merge import Summary
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
_SIMPLE = {Merge.SUM: "sum", Merge.MIN: "min", Merge.MAX: "max"}
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

    def columns(self) -> list[tuple[str, str, Merge | None]]:
        return [(name, logical, rule) for name, logical, rule in self.summary if rule not in _OWN_TABLES]

    def _source_type(self, name: str, logical: str) -> str:
        column = self.sources.get(name, name)
        return _TYPES[logical] if column in self.source.required else f"Nullable({_TYPES[logical]})"

    def column_ddl(self) -> list[tuple[str, str]]:
        """(name, ClickHouse type) of the table's columns: keys, plain values for sum/min/max, states else."""
        out = []
        for name, logical, rule in self.columns():
            plain = self._source_type(name, logical)
            match rule:
                case None:
                    kind = "LowCardinality(String)" if name == "app_id" else "String"
                case Merge.SUM | Merge.MIN | Merge.MAX:
                    kind = f"SimpleAggregateFunction({_SIMPLE[rule]}, {plain})"
                case Merge.LATEST:
                    kind = f"AggregateFunction(argMaxIf, {plain}, {self._order_type(self.order)}, UInt8)"
                case Merge.LATEST_WRITTEN:
                    kind = f"AggregateFunction(argMaxIf, {plain}, {self._order_type(self.written)}, UInt8)"
                case Merge.DISTINCT_SESSIONS:
                    kind = "AggregateFunction(uniqExactIf, String, UInt8)"
                case _:
                    assert rule in _WITH and rule.ordering is not None
                    key = self._source_type(rule.ordering, dict((n, t) for n, t, _ in self.summary)[rule.ordering])
                    kind = f"AggregateFunction(argMinIf, Tuple({plain}), {key}, UInt8)"
            out.append((name, kind))
        return out

    def _order_type(self, order: str) -> str:
        return {"seq": "Int32", "version": "Int64", "received_at": "DateTime64(3, 'UTC')",
                "(written, seq)": "Tuple(Int64, Int32)"}[order]

    def states(self) -> list[str]:
        """The view's SELECT list: each column's state from a block of source rows (grouped by the keys)."""
        out = []
        for name, _, rule in self.columns():
            value = self.sources.get(name, name)
            match rule:
                case None:
                    state = value
                case Merge.SUM | Merge.MIN | Merge.MAX:
                    state = f"{_SIMPLE[rule]}({value})"
                case Merge.LATEST | Merge.LATEST_WRITTEN:
                    order = self.order if rule is Merge.LATEST else self.written
                    state = f"argMaxIfState({value}, {order}, {value} IS NOT NULL)"
                case Merge.DISTINCT_SESSIONS:
                    # every session with a batch row for the user (the API's rows have seq -1): a retry that
                    # finds the session already flagged by its failed try still counts it
                    state = "uniqExactIfState(session_id, seq >= 0)"
                case _:
                    assert rule in _WITH and rule.ordering is not None
                    key = self.sources.get(rule.ordering, rule.ordering)
                    state = f"argMinIfState(tuple({value}), {key}, {key} IS NOT NULL)"
            out.append(f"{state} AS {name}")
        return out

    def select_states(self, source: str, where: str | None = None) -> str:
        """The states of `source`'s rows (optionally only those `where` holds), one row per key."""
        condition = f" WHERE {where}" if where else ""
        return (f"SELECT {', '.join(self.states())} FROM {source}{condition} GROUP BY {', '.join(self.keys)} "
                "SETTINGS prefer_column_name_to_alias = 1")  # states are aliased to the names they read

    def merged(self, table: str | None = None) -> list[exp.Expr]:
        """The read's SELECT list: every column merged from its states, aliased (group by the keys)."""
        out: list[exp.Expr] = []
        for name, _, rule in self.columns():
            column = exp.column(name, table)
            match rule:
                case None:
                    value: exp.Expression = column
                case Merge.SUM | Merge.MIN | Merge.MAX:
                    value = exp.Anonymous(this=_SIMPLE[rule], expressions=[column])
                case Merge.LATEST | Merge.LATEST_WRITTEN:
                    value = exp.Anonymous(this="argMaxIfMerge", expressions=[column])
                case Merge.DISTINCT_SESSIONS:
                    value = exp.Anonymous(this="uniqExactIfMerge", expressions=[column])
                case _:
                    value = exp.Anonymous(this="tupleElement", expressions=[
                        exp.Anonymous(this="argMinIfMerge", expressions=[column]), exp.Literal.number(1)])
            out.append(exp.alias_(value, name))
        return out
