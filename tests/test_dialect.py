"""The SQL that differs between the stores: every node prints in every dialect, and exact percentiles give the
same answer on the real engines, equal to linear interpolation between closest ranks (numpy's default)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from sqlglot import exp

from conftest import Location, new_location
from replayql.query.analytics import buckets
from replayql.store.clickhouse_store import Connection
from replayql.store.dialect import (
    DIALECTS,
    NODES,
    PATH_ID,
    EpochMillis,
    ExactPercentile,
    FirstBy,
    JsonKeys,
    JsonText,
    NumberOrNull,
    PathPattern,
    SessionsInSequence,
    TimeBucket,
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
    ("duckdb", JsonText): """JSON_EXTRACT_STRING(x, '$."' || REPLACE(REPLACE(k, '\\', '\\\\'), '"', '\\"') || '"')""",
    ("clickhouse", JsonText): "if(JSONType(x, k) = 'String', JSONExtractString(x, k), "
                              "nullIf(nullIf(JSONExtractRaw(x, k), ''), 'null'))",
    ("duckdb", NumberOrNull): "TRY_CAST(x AS DOUBLE)",
    ("clickhouse", NumberOrNull): "toFloat64OrNull(x)",
    ("duckdb", TimeBucket): "EPOCH_MS(TIMEZONE('Europe/Berlin', DATE_TRUNC('day', TIMEZONE('Europe/Berlin', "
                            "TIMEZONE('UTC', x)))))",
    ("clickhouse", TimeBucket): "toUnixTimestamp(toStartOfDay(x, 'Europe/Berlin')) * 1000",
    ("duckdb", PathPattern): "REGEXP_REPLACE(REGEXP_REPLACE(x, '" + PATH_ID + "', '/:id\\2', 'g'), '" + PATH_ID
                             + "', '/:id\\2', 'g')",
    ("clickhouse", PathPattern): "replaceRegexpAll(replaceRegexpAll(x, '" + PATH_ID + "', '/:id\\\\2'), '"
                                 + PATH_ID + "', '/:id\\\\2')",
    ("duckdb", JsonKeys): "JSON_KEYS(x)",
    ("clickhouse", JsonKeys): "JSONExtractKeys(ifNull(x, '{}'))",
    # One step keeps it short; the filter tests run longer sequences on both stores.
    ("duckdb", SessionsInSequence): "WITH seq_candidates AS (SELECT * FROM x), seq_step1 AS (SELECT session_id, ts, "
                                    "seq, idx, ts AS start FROM seq_candidates WHERE m1) SELECT session_id FROM "
                                    "seq_step1",
    ("clickhouse", SessionsInSequence): (
        "SELECT session_id FROM (SELECT session_id, toUInt64((toUInt64(ms - first_ms) * 16777216 + rn) * 32 + "
        "(32 - step)) AS t, step FROM (SELECT session_id, ms, first_ms, rn, arrayJoin(steps) AS step FROM (SELECT "
        "session_id, toUnixTimestamp64Milli(ts) AS ms, MIN(toUnixTimestamp64Milli(ts)) OVER (PARTITION BY "
        "session_id) AS first_ms, ROW_NUMBER() OVER (PARTITION BY session_id ORDER BY ts, seq, idx) AS rn, "
        "arrayFilter(x -> x > 0, [CASE WHEN m1 THEN 1 ELSE 0 END]) AS steps FROM (SELECT * FROM x) AS candidates) "
        "AS matches) AS entries) AS timed GROUP BY session_id HAVING windowFunnel(4611686018427387904, "
        "'strict_increase')(t, step = 1) = 1"),
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
    if node is TimeBucket:
        return TimeBucket(this=exp.column("x"), unit=exp.var("day"), zone=exp.Literal.string("Europe/Berlin"))
    if node is JsonText:
        return JsonText(this=exp.column("x"), expression=exp.column("k"))
    if node is SessionsInSequence:
        return SessionsInSequence(this=exp.select("*").from_("x"), steps=exp.Literal.number(1))
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


PATHS = {"/product/123": "/product/:id", "/a/1/2/b": "/a/:id/:id/b", "/v2/items": "/v2/items",
         "/u/0f8fad5b-d9cb-469f-a165-70867728950e/x": "/u/:id/x", "/x/123abc": "/x/123abc",
         "/order/5f2b3c4d5e6f7a8b9c0d/items/42": "/order/:id/items/:id", "/": "/"}
# Around the end of summer time in Berlin (2025-10-26 03:00 CEST -> 02:00 CET) and in New York (2025-11-02).
MOMENTS = ["2025-10-25 21:59:59", "2025-10-25 22:00:00", "2025-10-26 00:30:00", "2025-10-26 01:30:00",
           "2025-10-26 23:00:00", "2025-11-02 05:30:00", "2025-11-02 06:30:00", "2025-12-31 23:30:00"]
ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "UTC"]


def _bucket_query() -> exp.Select:
    columns = [exp.alias_(PathPattern(this=exp.Literal.string(p)), f"p{i}") for i, p in enumerate(PATHS)]
    for m, moment in enumerate(MOMENTS):
        ts = exp.cast(exp.Literal.string(moment), "TIMESTAMP")
        for z, zone in enumerate(ZONES):
            for unit in buckets.UNITS:
                bucket = TimeBucket(this=ts, unit=exp.var(unit), zone=exp.Literal.string(zone))
                columns.append(exp.alias_(bucket, f"b{m}_{z}_{unit}"))
    return exp.select(*columns)


def _python_buckets() -> list[int]:
    out = []
    for moment in MOMENTS:
        at = datetime.fromisoformat(moment).replace(tzinfo=UTC)
        for zone in ZONES:
            out += [buckets.epoch_ms(buckets.bucket_start(at, unit, buckets.zone(zone))) for unit in buckets.UNITS]
    return out


def test_paths_and_time_buckets_are_identical_on_both_engines_and_in_python(tmp_path: Path, chdb_path: Path) -> None:
    """Ids collapse the same way on both engines, and every calendar bucket (minute to month, four zones, across
    DST changes) starts at the same instant in DuckDB, in ClickHouse and in the Python fill of empty buckets."""
    query = _bucket_query()
    on_duckdb = duckdb.connect().execute(sql(query, "duckdb")).fetchone()
    on_clickhouse = _on_clickhouse(new_location("clickhouse", tmp_path, chdb_path), sql(query, "clickhouse"))
    assert on_duckdb is not None
    expected = (*PATHS.values(), *_python_buckets())
    assert tuple(on_duckdb) == expected
    assert tuple(int(v) if isinstance(v, int) else v for v in on_clickhouse) == expected
