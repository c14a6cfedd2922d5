"""The SQL that differs between the stores: every node prints in every dialect, and exact percentiles give the
same answer on the real engines, equal to linear interpolation between closest ranks (numpy's default)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from conftest import Location, new_location
from replayql.store.clickhouse_store import Connection
from replayql.store.dialect import (
    DIALECTS,
    NODES,
    EpochMillis,
    ExactPercentile,
    FirstBy,
    JsonKeys,
    JsonText,
    NumberOrNull,
    sql,
)

VALUES = (10.0, 1.0, 4.0, 2.0, 3.0)
# Sorted: 1 2 3 4 10. The p-th percentile sits at rank p * (n - 1) = 4p, interpolated between neighbours.
EXPECTED = {0.0: 1.0, 0.25: 2.0, 0.5: 3.0, 0.75: 4.0, 0.9: 7.6, 0.95: 8.8, 0.99: 9.76, 1.0: 10.0}
PRINTED = {
    ("duckdb", ExactPercentile): "ROUND(QUANTILE_CONT(x, 0.5), 9)",
    ("clickhouse", ExactPercentile): "round(quantileExactInclusive(0.5)(x), 9)",
    ("duckdb", EpochMillis): "EPOCH_MS(x)",
    ("clickhouse", EpochMillis): "toUnixTimestamp64Milli(x)",
    ("duckdb", FirstBy): "ARG_MIN_NULL(x, k) FILTER(WHERE k > 0)",
    ("clickhouse", FirstBy): "tupleElement(argMinIf(tuple(x), k, k > 0), 1)",
    ("duckdb", JsonText): """JSON_EXTRACT_STRING(x, '$."' || REPLACE(k, '"', '\\"') || '"')""",
    ("clickhouse", JsonText): "if(JSONType(x, k) = 'String', JSONExtractString(x, k), "
                              "nullIf(nullIf(JSONExtractRaw(x, k), ''), 'null'))",
    ("duckdb", NumberOrNull): "TRY_CAST(x AS DOUBLE)",
    ("clickhouse", NumberOrNull): "toFloat64OrNull(x)",
    ("duckdb", JsonKeys): "JSON_KEYS(x)",
    ("clickhouse", JsonKeys): "JSONExtractKeys(ifNull(x, '{}'))",
}
# JSON text as stored (orjson output), keys of every awkward shape, and what each key reads as.
DOCUMENT = '{"plan":"pro","seats":5,"ratio":0.25,"beta":true,"gone":null,"a.b":"dot","$x":"dollar",' \
           '"q\\"t":"quote","nested":{"z":1},"list":[1,2],"n":"42"}'
READ = {"plan": ("pro", None), "seats": ("5", 5.0), "ratio": ("0.25", 0.25), "beta": ("true", None),
        "gone": (None, None), "missing": (None, None), "a.b": ("dot", None), "$x": ("dollar", None),
        'q"t': ("quote", None), "nested": ('{"z":1}', None), "list": ("[1,2]", None), "n": ("42", 42.0)}


def _node(node: type[exp.Expression]) -> exp.Expression:
    if node is ExactPercentile:
        return ExactPercentile(this=exp.column("x"), quantile=exp.Literal.number(0.5))
    if node is FirstBy:
        return FirstBy(this=exp.column("x"), expression=exp.column("k"),
                       where=exp.GT(this=exp.column("k"), expression=exp.Literal.number(0)))
    if node is JsonText:
        return JsonText(this=exp.column("x"), expression=exp.column("k"))
    return node(this=exp.column("x"))


@pytest.mark.parametrize("dialect", sorted(DIALECTS))
@pytest.mark.parametrize("node", NODES, ids=lambda n: n.__name__)
def test_every_node_prints_in_every_dialect(dialect: str, node: type[exp.Expression]) -> None:
    assert sql(_node(node), dialect) == PRINTED[(dialect, node)]


def _percentiles_query() -> exp.Select:
    values = exp.values([(exp.cast(exp.Literal.number(v), "DOUBLE"),) for v in VALUES], alias="t", columns=["x"])
    return exp.select(*(exp.alias_(ExactPercentile(this=exp.column("x"), quantile=exp.Literal.number(p)), f"p{i}")
                        for i, p in enumerate(EXPECTED))).from_(values)


def _on_clickhouse(location: Location, query: str) -> tuple[float, ...]:
    assert location.clickhouse is not None
    client = Connection(location.clickhouse.url).client(None)
    try:
        return tuple(client.query(query).result_rows[0])
    finally:
        client.close()


def test_exact_percentiles_are_identical_on_both_engines(tmp_path: Path, chdb_path: Path) -> None:
    query = _percentiles_query()
    on_duckdb = duckdb.connect().execute(sql(query, "duckdb")).fetchone()
    on_clickhouse = _on_clickhouse(new_location("clickhouse", tmp_path, chdb_path), sql(query, "clickhouse"))
    assert on_duckdb is not None
    assert tuple(on_duckdb) == pytest.approx(tuple(EXPECTED.values()), abs=1e-12)
    assert tuple(on_clickhouse) == pytest.approx(tuple(EXPECTED.values()), abs=1e-12)
    assert tuple(on_duckdb) == tuple(on_clickhouse)


def _json_query() -> exp.Select:
    columns = []
    for i, key in enumerate(READ):
        text = JsonText(this=exp.Literal.string(DOCUMENT), expression=exp.Literal.string(key))
        columns += [exp.alias_(text, f"t{i}"), exp.alias_(NumberOrNull(this=text.copy()), f"n{i}")]
    return exp.select(*columns)


def test_json_keys_read_the_same_on_both_engines(tmp_path: Path, chdb_path: Path) -> None:
    query = _json_query()
    expected = tuple(v for pair in READ.values() for v in pair)
    on_duckdb = duckdb.connect().execute(sql(query, "duckdb")).fetchone()
    on_clickhouse = _on_clickhouse(new_location("clickhouse", tmp_path, chdb_path), sql(query, "clickhouse"))
    assert on_duckdb == expected
    assert on_clickhouse == expected
