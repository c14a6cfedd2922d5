"""SQL that differs between the stores: our own expression nodes, and one small sqlglot dialect per store that
prints them. Everything else in a query is the same tree printed by the stock dialects.

Exact percentiles are the reason this module exists: DuckDB's `quantile_cont(x, p)` and ClickHouse's
`quantileExactInclusive(p)(x)` both interpolate linearly between closest ranks (numpy's default);
ClickHouse's plain `quantile` samples and is not used where exact answers are promised. The two engines write
the interpolation differently and can disagree in the last bit (7.6000000000000005 against
7.599999999999998), so both round to PERCENTILE_DECIMALS places: the stores then answer identically.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlglot import exp
from sqlglot.dialects.clickhouse import ClickHouse
from sqlglot.dialects.dialect import Dialect
from sqlglot.dialects.duckdb import DuckDB
from sqlglot.errors import ErrorLevel
from sqlglot.generator import Generator
from sqlglot.generators.clickhouse import ClickHouseGenerator
from sqlglot.generators.duckdb import DuckDBGenerator

from replayql.store import sequence_sql

PERCENTILE_DECIMALS = 9


class ExactPercentile(exp.Expression, exp.AggFunc):
    """The p-th percentile (0 <= p <= 1) of `this`, by linear interpolation between closest ranks."""

    arg_types = {"this": True, "quantile": True}


class EpochMillis(exp.Expression, exp.Func):
    """A timestamp as integer milliseconds since 1970-01-01 UTC."""

    arg_types = {"this": True}


class FirstBy(exp.Expression, exp.AggFunc):
    """`this` from the row with the least `expression` among the rows where `where` holds, NULL included: a
    direct landing has no referrer, and that absence must not be filled from a later page. Both engines' plain
    argMin skip NULL values."""

    arg_types = {"this": True, "expression": True, "where": True}


class JsonText(exp.Expression, exp.Func):
    """The value under top-level key `expression` of the JSON object `this`, as text: a string without its
    quotes, a number or boolean as written, NULL when absent or null. Any key text works: DuckDB gets it as
    a quoted JSONPath member, ClickHouse as a key argument."""

    arg_types = {"this": True, "expression": True}


class NumberOrNull(exp.Expression, exp.Func):
    """Text read as a double, NULL when it is not a number."""

    arg_types = {"this": True}


class JsonKeys(exp.Expression, exp.Func):
    """The top-level keys of the JSON object `this` as an array (empty for NULL)."""

    arg_types = {"this": True}


class TimeBucket(exp.Expression, exp.Func):
    """The start of the calendar bucket (`unit`: minute, hour, day, week from Monday, month) that contains the
    UTC timestamp `this`, in the IANA time zone `zone` (a literal), as epoch milliseconds. Days, weeks and months
    start at local midnight, so across a DST change a day bucket is 23 or 25 hours long."""

    arg_types = {"this": True, "unit": True, "zone": True}


# A URL path segment that is an id: digits, a UUID, or a long hex string (hashes, object ids).
PATH_ID = r"/([0-9]+|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[0-9a-fA-F]{16,})(/|$)"


class PathPattern(exp.Expression, exp.Func):
    """A URL path with its id segments collapsed: `/product/123/reviews` → `/product/:id/reviews`. The pattern
    consumes the slash after an id, so a second pass catches ids that follow each other (`/a/1/2`)."""

    arg_types = {"this": True}


class SessionsInSequence(exp.Expression):
    """A query: the session_id of each session whose events in `this` hold `steps` steps in order, the last at
    most `within` milliseconds (a number; none: any time) after the first. `this` is a query of the candidate
    events with the columns session_id, ts, seq, idx and one flag m1..mN per step (store.sequence_sql)."""

    arg_types = {"this": True, "steps": True, "within": False}

    @property
    def step_count(self) -> int:
        return int(self.args["steps"].name)

    @property
    def within_ms(self) -> int | None:
        within = self.args.get("within")
        return None if within is None else int(within.name)


# Every node above, for the test that asks each dialect to print each of them.
NODES: tuple[type[exp.Expr], ...] = (ExactPercentile, EpochMillis, FirstBy, JsonText, NumberOrNull, JsonKeys,
                                           TimeBucket, PathPattern, SessionsInSequence)


def _duckdb_bucket(self: DuckDBGenerator, e: TimeBucket) -> str:
    zone, unit = self.sql(e, "zone"), e.args["unit"].name
    if e.args["zone"].name == "UTC":  # timestamps are stored in UTC: no conversion (3 per row) needed
        return f"EPOCH_MS(DATE_TRUNC('{unit}', {self.sql(e, 'this')}))"
    local = f"TIMEZONE({zone}, TIMEZONE('UTC', {self.sql(e, 'this')}))"
    start = f"DATE_TRUNC('{unit}', {local})"
    if unit in ("minute", "hour"):  # the wall-clock remainder is elapsed time: offsets change on the hour
        return f"EPOCH_MS({self.sql(e, 'this')}) - (EPOCH_MS({local}) - EPOCH_MS({start}))"
    return f"EPOCH_MS(TIMEZONE({zone}, {start}))"


_CLICKHOUSE_STARTS = {"minute": "toStartOfMinute({t}, {z})", "hour": "toStartOfHour({t}, {z})",
                      "day": "toStartOfDay({t}, {z})", "week": "toDateTime(toMonday({t}, {z}), {z})",
                      "month": "toDateTime(toStartOfMonth({t}, {z}), {z})"}


def _clickhouse_bucket(self: ClickHouseGenerator, e: TimeBucket) -> str:
    start = _CLICKHOUSE_STARTS[e.args["unit"].name].format(t=self.sql(e, "this"), z=self.sql(e, "zone"))
    return f"toUnixTimestamp({start}) * 1000"


def _path_pattern(replace: str, flags: tuple[str, ...]) -> Callable[[Generator, PathPattern], str]:
    def generate(self: Generator, e: PathPattern) -> str:
        pattern, by = self.sql(exp.Literal.string(PATH_ID)), self.sql(exp.Literal.string("/:id\\2"))
        once = self.func(replace, e.this, pattern, by, *flags)
        return self.func(replace, once, pattern, by, *flags)
    return generate


def _duckdb_json_text(self: DuckDBGenerator, e: JsonText) -> str:
    # inside $."…" a backslash and a quote are escaped; any key stored can then be addressed
    escaped = self.func("replace", e.expression, "'\\'", "'\\\\'")
    quoted_key = self.func("replace", escaped, "'\"'", "'\\\"'")
    return self.func("json_extract_string", e.this, f"'$.\"' || {quoted_key} || '\"'")


def _clickhouse_json_text(self: ClickHouseGenerator, e: JsonText) -> str:
    string = self.func("JSONExtractString", e.this, e.expression)
    raw = self.func("nullIf", self.func("nullIf", self.func("JSONExtractRaw", e.this, e.expression), "''"), "'null'")
    return self.func("if", f"{self.func('JSONType', e.this, e.expression)} = 'String'", string, raw)


class ReplayDuckDB(DuckDB):
    class Generator(DuckDBGenerator):
        TRANSFORMS = {
            **DuckDBGenerator.TRANSFORMS,
            ExactPercentile: lambda self, e: self.func(
                "ROUND", self.func("QUANTILE_CONT", e.this, e.args["quantile"]), str(PERCENTILE_DECIMALS)),
            EpochMillis: lambda self, e: self.func("EPOCH_MS", e.this),
            FirstBy: lambda self, e: (
                f"{self.func('ARG_MIN_NULL', e.this, e.expression)} FILTER(WHERE {self.sql(e, 'where')})"),
            JsonText: _duckdb_json_text,
            NumberOrNull: lambda self, e: f"TRY_CAST({self.sql(e, 'this')} AS DOUBLE)",
            JsonKeys: lambda self, e: self.func("json_keys", e.this),
            TimeBucket: _duckdb_bucket,
            PathPattern: _path_pattern("regexp_replace", ("'g'",)),
            SessionsInSequence: lambda self, e: self.sql(
                sequence_sql.window_chains(e.this.copy(), e.step_count, e.within_ms)),
        }


class ReplayClickHouse(ClickHouse):
    class Generator(ClickHouseGenerator):
        TRANSFORMS = {
            **ClickHouseGenerator.TRANSFORMS,
            ExactPercentile: lambda self, e: self.func(
                "round", f"quantileExactInclusive({self.sql(e, 'quantile')})({self.sql(e, 'this')})",
                str(PERCENTILE_DECIMALS)),
            EpochMillis: lambda self, e: self.func("toUnixTimestamp64Milli", e.this),
            # A one-element tuple is never NULL, so argMin keeps the row; then take the value back out.
            FirstBy: lambda self, e: self.func("tupleElement", self.func(
                "argMinIf", self.func("tuple", e.this), e.expression, e.args["where"]), "1"),
            JsonText: _clickhouse_json_text,
            NumberOrNull: lambda self, e: self.func("toFloat64OrNull", e.this),
            # Nullable(Array) does not exist; a missing object has no keys.
            JsonKeys: lambda self, e: self.func("JSONExtractKeys", self.func("ifNull", e.this, "'{}'")),
            TimeBucket: _clickhouse_bucket,
            PathPattern: _path_pattern("replaceRegexpAll", ()),
            SessionsInSequence: lambda self, e: self.sql(
                sequence_sql.window_funnel(e.this.copy(), e.step_count, e.within_ms)),
        }


DIALECTS: dict[str, type[Dialect]] = {"duckdb": ReplayDuckDB, "clickhouse": ReplayClickHouse}


def sql(tree: exp.Expr, store_dialect: str) -> str:
    """Print a query tree for a store, failing loudly on a node its dialect cannot print."""
    return tree.sql(dialect=DIALECTS[store_dialect], unsupported_level=ErrorLevel.RAISE)
