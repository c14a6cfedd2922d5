"""The ClickHouse schema: the DDL run on the real engine (chDB), cluster DDL checked by ClickHouse's own parser,
schema versioning on reopen, and identifiers that could break the DDL.

Expected engines, keys, types and codecs are written out by hand here (not read from clickhouse_schema.TABLES),
so a change to the schema has to be a deliberate change to this file too.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import Location, drop_location, new_location, start_server
from replayql.api.app import close_services
from replayql.generate import generate_batches
from replayql.store.base import StoreUnavailable
from replayql.store.clickhouse_registry import ClickHouseRegistry
from replayql.store.clickhouse_schema import SCHEMA_VERSION, SESSIONS, Layout, table
from replayql.store.clickhouse_store import ClickHouseStore, Connection
from replayql.store.dialect import sql
from store_pair import load

END_MS = 1_764_115_200_000  # 2025-11-26T00:00:00Z

# table -> (engine_full starts with, partition key, sorting key)
EXPECTED_TABLES = {
    "events": ("ReplacingMergeTree PARTITION BY", "toYYYYMM(ts)", "app_id, kind, toDate(ts), session_id, seq, idx"),
    "session_batches": ("ReplacingMergeTree ORDER BY", "", "app_id, session_id, seq"),
    "user_batches": ("ReplacingMergeTree ORDER BY", "", "app_id, user_id, session_id, seq"),
    "user_traits": ("ReplacingMergeTree(version) ORDER BY", "", "app_id, user_id, key"),
    "issue_batches": ("ReplacingMergeTree ORDER BY", "", "app_id, issue_id, session_id, seq"),
    "issue_status": ("ReplacingMergeTree(changed_at) ORDER BY", "", "app_id, issue_id"),
    "recordings": ("ReplacingMergeTree PARTITION BY", "toYYYYMM(first_ts)", "app_id, session_id, seq"),
    "batches": ("ReplacingMergeTree ORDER BY", "", "app_id, session_id, seq"),
    "replaced_batches": ("ReplacingMergeTree ORDER BY", "", "app_id, session_id, seq"),
    "sessions_to_recount": ("ReplacingMergeTree ORDER BY", "", "app_id, session_id"),
    "session_users": ("ReplacingMergeTree ORDER BY", "", "app_id, user_id, session_id"),
    "deleted_users": ("ReplacingMergeTree ORDER BY", "", "app_id, user_id"),
    "deleted_sessions": ("ReplacingMergeTree ORDER BY", "", "app_id, session_id"),
    "apps": ("ReplacingMergeTree ORDER BY", "", "id"),
    "app_origins": ("ReplacingMergeTree(version) ORDER BY", "", "app_id"),
    "api_keys": ("ReplacingMergeTree(version) ORDER BY", "", "id"),
    "schema_version": ("ReplacingMergeTree ORDER BY", "", "version"),
}
# The summaries kept at write time, and the views that fold each insert into them.
SUMMARIES = {
    "sessions": ("AggregatingMergeTree ORDER BY", "", "app_id, session_id"),
    "users": ("AggregatingMergeTree ORDER BY", "", "app_id, user_id"),
    "issues": ("AggregatingMergeTree ORDER BY", "", "app_id, issue_id"),
}
VIEWS = {"sessions_view": "session_batches", "users_view": "user_batches", "issues_view": "issue_batches",
         "session_users_view": "session_batches"}
# The views reads go through: each summary's states merged (and what other tables add to it).
MERGED = {"sessions_merged": "sessions", "users_merged": "users", "issues_merged": "issues"}
# Tables made anew by a migration keep the replication path they were made with, fresh clusters use it too.
REPLICA_NAMES = {"events": "events_by_kind_local"}
SUMMARY_SHARD_KEYS = {"sessions": "session_id", "users": "user_id", "issues": "issue_id"}
# Schema version 1 could give these tables a per-row TTL on this column (--clickhouse-retention-days).
V1_TTL_COLUMNS = {"events": "ts", "session_batches": "ended_at", "recordings": "first_ts", "batches": "received_at",
               "issue_batches": "last_seen"}
# How cluster mode spreads each table: every row that may replace or join another lands on the same shard.
SHARD_KEYS = {
    "events": "session_id", "session_batches": "session_id", "recordings": "session_id", "batches": "session_id",
    "replaced_batches": "session_id",
    "sessions_to_recount": "session_id",
    "session_users": "session_id", "deleted_sessions": "session_id", "user_batches": "user_id",
    "user_traits": "user_id", "deleted_users": "user_id", "issue_batches": "issue_id", "issue_status": "issue_id",
    "apps": "id", "app_origins": "app_id", "api_keys": "id", "schema_version": "version",
}
VERSION_COLUMNS = {"user_traits": "version", "issue_status": "changed_at", "api_keys": "version",
                   "app_origins": "version"}


@pytest.fixture(scope="module")
def engine(chdb_path: Path) -> Iterator[Any]:
    """A client on the test process's chDB, outside any database: it reads system tables and runs raw DDL."""
    client = Connection(f"chdb://{chdb_path}").client(None)
    yield client
    client.close()


@pytest.fixture
def location(chdb_path: Path, tmp_path: Path) -> Iterator[Location]:
    made = new_location("clickhouse", tmp_path, chdb_path)
    yield made
    drop_location(made)


def _database(location: Location) -> str:
    assert location.clickhouse is not None
    return Connection(location.clickhouse.url).database


def _open(location: Location) -> ClickHouseStore:
    assert location.clickhouse is not None
    return ClickHouseStore(Connection(location.clickhouse.url))


def _run(engine: Any, layout: Layout) -> None:
    for statement in layout.statements():
        engine.command(statement)


def _tables(engine: Any, database: str) -> dict[str, tuple[str, str, str]]:
    rows = engine.query("SELECT name, engine_full, partition_key, sorting_key FROM system.tables "
                        "WHERE database = {db:String}", parameters={"db": database}).result_rows
    return {name: (full, partition, sorting) for name, full, partition, sorting in rows}


def _columns(engine: Any, database: str) -> dict[tuple[str, str], tuple[str, str]]:
    rows = engine.query("SELECT table, name, type, compression_codec FROM system.columns "
                        "WHERE database = {db:String}", parameters={"db": database}).result_rows
    return {(table, name): (type_, codec) for table, name, type_, codec in rows}


def _one_line(engine: Any, statement: str) -> str:
    """The statement as ClickHouse's parser understands it, printed back on one line (raises if it cannot parse)."""
    return str(engine.query("SELECT formatQuerySingleLine({q:String})", parameters={"q": statement}
                            ).result_rows[0][0])


# --- single node ---------------------------------------------------------------------------------------------


def test_single_node_ddl_creates_the_tables_with_their_engines_and_keys(engine: Any, location: Location) -> None:
    database = _database(location)
    _run(engine, Layout(database))

    tables = _tables(engine, database)
    assert set(tables) == {*EXPECTED_TABLES, *SUMMARIES, *VIEWS, *MERGED}
    for name, summary in MERGED.items():
        assert tables[name][0] == "", name  # a view: no engine of its own
        body = engine.query("SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {n:String}",
                            parameters={"db": database, "n": name}).result_rows[0][0]
        assert re.search(rf"FROM `?{database}`?\.`?{summary}`? FINAL", body), body
    for name, source in VIEWS.items():
        assert tables[name][0] == "", name  # a view stores nothing: it writes to its summary
        target = engine.query("SELECT as_select FROM system.tables WHERE database = {db:String} AND name = {n:String}",
                              parameters={"db": database, "n": name}).result_rows[0][0]
        assert f"FROM `{database}`.`{source}`" in target or f"FROM {database}.{source}" in target, target
    for name, (engine_prefix, partition, sorting) in {**EXPECTED_TABLES, **SUMMARIES}.items():
        full, actual_partition, actual_sorting = tables[name]
        assert full.startswith(engine_prefix), (name, full)
        assert actual_partition == partition, name
        # ClickHouse reports a one-column key in parentheses, "(id)", and a longer one without.
        assert actual_sorting.removeprefix("(").removesuffix(")") == sorting, name
        assert "TTL" not in full, name  # no retention configured: nothing expires
    # a session's events are spread over its kinds: a bloom filter of session ids finds their granules
    indexes = engine.query("SELECT table, name, type_full, expr, granularity FROM system.data_skipping_indices "
                           "WHERE database = {db:String}", parameters={"db": database}).result_rows
    # each live poll reads the ledger rows received since its last look: a minmax index skips older parts' granules
    assert sorted(indexes) == [("batches", "received_minmax", "minmax", "received_at", 1),
                               ("events", "session_bloom", "bloom_filter(0.01)", "session_id", 1)]
    for name in SUMMARIES:  # a page's rows are read by id, each a granule and a compressed block: small ones
        assert "index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 16384" in (
            tables[name][0]), name

    # Running the same DDL again (a second server starting) changes nothing and does not fail.
    _run(engine, Layout(database))
    assert _tables(engine, database) == tables


def test_low_cardinality_strings_and_zstd_on_long_text(engine: Any, location: Location) -> None:
    database = _database(location)
    _run(engine, Layout(database))
    columns = _columns(engine, database)
    types = {key: type_ for key, (type_, _) in columns.items()}
    codecs = {key: codec for key, (_, codec) in columns.items()}

    # Dictionary-encoded: few distinct values (Nullable inside LowCardinality, as ClickHouse requires).
    assert types["events", "app_id"] == "LowCardinality(String)"
    assert types["events", "kind"] == "LowCardinality(String)"
    assert types["events", "host"] == "LowCardinality(Nullable(String))"
    assert types["events", "level"] == "LowCardinality(Nullable(String))"
    assert types["events", "name"] == "LowCardinality(Nullable(String))"  # custom event names
    for column in ("browser", "os", "device_type", "country", "language", "release", "utm_source"):
        assert types["session_batches", column] == "LowCardinality(Nullable(String))", column
    assert types["issue_status", "status"] == "LowCardinality(String)"
    assert types["api_keys", "scope"] == "LowCardinality(String)"
    assert all(type_ == "LowCardinality(String)" for (_, column), type_ in types.items() if column == "app_id")
    # Plain strings: one value per session, user, event or person.
    assert types["events", "session_id"] == "String"
    assert types["events", "url"] == "Nullable(String)"
    assert types["events", "message"] == "Nullable(String)"
    assert types["session_batches", "user_id"] == "Nullable(String)"
    assert types["user_batches", "name"] == "Nullable(String)"  # people's names: as many as users
    assert types["user_batches", "email"] == "Nullable(String)"
    assert types["events", "status"] == "Nullable(Int32)"  # an HTTP status is a number, not a string

    zstd = {("events", "stack"), ("events", "properties"), ("issue_batches", "stack"), ("recordings", "data"),
            ("session_batches", "tail"), ("session_batches", "user_agent")}
    for key in zstd:
        assert codecs[key] == "CODEC(ZSTD(3))", key
    assert {key for key, codec in codecs.items() if codec} == zstd
    assert types["recordings", "data"] == "String"


def test_opening_a_version_1_database_removes_its_ttl(engine: Any, location: Location) -> None:
    """Retention is a job with one rule for both stores now: the per-row TTL of version 1, which expired the old
    rows of a session still active, goes (the tables without one are left alone)."""
    database = _database(location)
    _run(engine, Layout(database))
    for name, column in V1_TTL_COLUMNS.items():
        engine.command(f"ALTER TABLE `{database}`.`{name}` MODIFY TTL toDateTime({column}) + toIntervalDay(30)")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES (1, now())")
    assert {n for n, (full, _, _) in _tables(engine, database).items() if " TTL " in full} == set(V1_TTL_COLUMNS)

    store = _open(location)
    try:
        assert all(" TTL " not in full for full, _, _ in _tables(engine, database).values())
        assert store.fetch_rows("SELECT max(version) FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        store.close()


def test_the_store_creates_the_schema_and_records_its_version(engine: Any, location: Location) -> None:
    store = _open(location)
    try:
        database = _database(location)
        assert set(_tables(engine, database)) == {*EXPECTED_TABLES, *SUMMARIES, *VIEWS, *MERGED}
        assert store.fetch_rows("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        assert store.ping()
    finally:
        store.close()


# --- cluster mode --------------------------------------------------------------------------------------------


def test_cluster_ddl_is_valid_clickhouse_sql(engine: Any) -> None:
    """chDB has no cluster and no Keeper to run this DDL, but its parser is ClickHouse's: every statement must
    parse (EXPLAIN AST takes ON CLUSTER statements without running them)."""
    statements = Layout("replayql", cluster="prod").statements()
    assert len(statements) == 1 + 2 * len(EXPECTED_TABLES) + 2 * len(SUMMARIES) + len(VIEWS) + len(MERGED)
    for statement in statements:
        ast = [row[0] for row in engine.query(f"EXPLAIN AST {statement}").result_rows]
        assert ast[0].startswith("CreateQuery replayql"), (statement, ast)
        assert "ON CLUSTER prod" in _one_line(engine, statement), statement


def test_a_broken_statement_is_refused_by_the_parser(engine: Any) -> None:
    """The validation above can fail: the parser rejects what is not ClickHouse SQL."""
    broken = Layout("replayql", cluster="prod").statements()[1].replace("ENGINE = ", "ENGINE = (", 1)
    with pytest.raises(Exception, match="SYNTAX_ERROR"):
        engine.query(f"EXPLAIN AST {broken}")


def test_cluster_ddl_creates_replicated_local_tables_and_distributed_tables_over_them(engine: Any) -> None:
    formatted = [_one_line(engine, s) for s in Layout("replayql", cluster="prod").statements()]

    assert formatted[0] == "CREATE DATABASE IF NOT EXISTS replayql ON CLUSTER prod"
    locals_ = {m.group(1): s for s in formatted
               if (m := re.match(r"CREATE TABLE IF NOT EXISTS replayql\.(\w+)_local ON CLUSTER prod \(", s))}
    distributed = {m.group(1): s for s in formatted
                   if (m := re.match(r"CREATE TABLE IF NOT EXISTS replayql\.(\w+) ON CLUSTER prod AS ", s))}
    views = {m.group(1): s for s in formatted
             if (m := re.match(r"CREATE MATERIALIZED VIEW IF NOT EXISTS replayql\.(\w+)_local ON CLUSTER prod ", s))}
    assert set(locals_) == set(distributed) == {*EXPECTED_TABLES, *SUMMARIES}
    merged = [s for s in formatted
              if re.match(r"CREATE VIEW IF NOT EXISTS replayql\.\w+_merged ON CLUSTER prod AS ", s)]
    assert len(merged) == len(MERGED)
    assert len(formatted) == 1 + len(locals_) + len(distributed) + len(views) + len(merged)
    # each shard folds its own rows into its own summary: a summary is sharded as the rows it folds
    assert views["session_users_view"].startswith(
        "CREATE MATERIALIZED VIEW IF NOT EXISTS replayql.session_users_view_local ON CLUSTER prod "
        "TO replayql.session_users_local AS SELECT")
    assert "FROM replayql.session_batches_local WHERE" in views["session_users_view"]
    for name, source in VIEWS.items():
        summary = name.removesuffix("_view")
        if summary not in SUMMARIES:
            continue
        assert f"TO replayql.{summary}_local AS SELECT" in views[name]
        assert f"FROM replayql.{source}_local GROUP BY" in views[name]
        assert SUMMARY_SHARD_KEYS[summary] == SHARD_KEYS[source]
        assert (f"ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{{shard}}/replayql/{summary}_local', "
                f"'{{replica}}')") in locals_[summary]
        assert distributed[summary].endswith(f"cityHash64({SUMMARY_SHARD_KEYS[summary]}))")

    for name in EXPECTED_TABLES:
        statement = locals_[name]
        version = f", {VERSION_COLUMNS[name]}" if name in VERSION_COLUMNS else ""
        path = REPLICA_NAMES.get(name, f"{name}_local")
        engine_clause = (f"ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{{shard}}/replayql/{path}',"
                         f" '{{replica}}'{version})")
        assert engine_clause in statement, statement
        assert f"ORDER BY ({EXPECTED_TABLES[name][2]})" in statement, statement
    assert "PARTITION BY toYYYYMM(ts)" in locals_["events"]
    assert "LowCardinality(String)" in locals_["events"] and "CODEC(ZSTD(3))" in locals_["recordings"]

    for name in EXPECTED_TABLES:
        statement = distributed[name]
        assert statement == (f"CREATE TABLE IF NOT EXISTS replayql.{name} ON CLUSTER prod AS replayql.{name}_local "
                             f"ENGINE = Distributed(prod, replayql, {name}_local, cityHash64({SHARD_KEYS[name]}))")
    # One session's data lives on one shard.
    for name in ("events", "session_batches", "recordings", "batches", "deleted_sessions"):
        assert distributed[name].endswith(f"{name}_local, cityHash64(session_id))")


def test_cluster_ttl_removal_runs_on_the_local_tables(engine: Any) -> None:
    statements = Layout("replayql", cluster="prod").ttl_removals(["events", "recordings"])
    assert [_one_line(engine, s) for s in statements] == [
        "ALTER TABLE replayql.events_local ON CLUSTER prod (REMOVE TTL)",
        "ALTER TABLE replayql.recordings_local ON CLUSTER prod (REMOVE TTL)"]


def test_cluster_upgrade_adds_the_ledgers_columns_to_both_tables_and_its_index_on_every_shard(engine: Any) -> None:
    statements = [_one_line(engine, s) for s in Layout("replayql", cluster="prod").ledger_upgrade()]
    added = ("(ADD COLUMN IF NOT EXISTS `first_ts` Nullable(DateTime64(3, 'UTC'))), "
             "(ADD COLUMN IF NOT EXISTS `last_ts` Nullable(DateTime64(3, 'UTC')))")  # as the parser prints it
    assert statements == [
        f"ALTER TABLE replayql.batches_local ON CLUSTER prod {added}",
        f"ALTER TABLE replayql.batches ON CLUSTER prod {added}",
        "ALTER TABLE replayql.batches_local ON CLUSTER prod (ADD INDEX IF NOT EXISTS received_minmax received_at "
        "TYPE minmax GRANULARITY 1)",
        "ALTER TABLE replayql.batches_local ON CLUSTER prod (MATERIALIZE INDEX received_minmax) "
        "SETTINGS mutations_sync = 2"]


def test_cluster_upgrade_drops_the_views_and_summaries_it_makes_anew(engine: Any) -> None:
    """An upgrade drops what it rebuilds by the names the cluster DDL gives them: the views reads go through, the
    materialized views on each shard, and each summary's local and Distributed tables."""
    drops = [_one_line(engine, s) for s in Layout("replayql", cluster="prod").view_drops()]
    views = {*(f"replayql.{name}" for name in MERGED), *(f"replayql.{name}_local" for name in VIEWS)}
    tables = {f"replayql.{name}{suffix}" for name in SUMMARIES for suffix in ("", "_local")}
    assert sorted(drops) == sorted([*(f"DROP VIEW IF EXISTS {name} ON CLUSTER prod" for name in views),
                                    *(f"DROP TABLE IF EXISTS {name} ON CLUSTER prod" for name in tables)])


def test_cluster_upgrade_copies_the_events_through_the_distributed_tables_and_exchanges_the_local_ones(
        engine: Any) -> None:
    """Rows keep their shard (both Distributed tables shard by session), the insert waits for every shard, the new
    local table takes the old one's name on every shard and keeps the replication path of a fresh cluster's."""
    steps = [_one_line(engine, s) for s in Layout("replayql", cluster="prod").events_rebuild()]
    drops = ["DROP TABLE IF EXISTS replayql.events_rebuilt ON CLUSTER prod SYNC",
             "DROP TABLE IF EXISTS replayql.events_rebuilt_local ON CLUSTER prod SYNC"]
    assert steps[:2] == drops and steps[-2:] == drops
    create_local, create_distributed, insert, exchange = steps[2:6]
    assert create_local.startswith("CREATE TABLE IF NOT EXISTS replayql.events_rebuilt_local ON CLUSTER prod (")
    assert ("ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/replayql/events_by_kind_local', '{replica}')"
            in create_local)
    assert f"ORDER BY ({EXPECTED_TABLES['events'][2]})" in create_local
    assert create_distributed.endswith("Distributed(prod, replayql, events_rebuilt_local, cityHash64(session_id))")
    assert insert == ("INSERT INTO replayql.events_rebuilt SETTINGS optimize_on_insert = 0, "
                      "distributed_foreground_insert = 1 SELECT * FROM replayql.events")
    assert exchange == "EXCHANGE TABLES replayql.events_rebuilt_local AND replayql.events_local ON CLUSTER prod"


def test_cluster_upgrade_merges_each_rebuilt_summary_on_every_shard(engine: Any) -> None:
    merges = [_one_line(engine, s) for s in Layout("replayql", cluster="prod").summary_merges()]
    assert merges == [f"OPTIMIZE TABLE replayql.{name}_local ON CLUSTER prod FINAL" for name in SUMMARIES]


def test_cluster_upgrade_notes_the_batches_stored_twice_over_the_distributed_tables(engine: Any) -> None:
    """Events are sharded by session, so a batch's copies are on one shard: the scan reads the Distributed
    events and writes through the Distributed replaced_batches."""
    events, recordings = (_one_line(engine, scan) for scan in Layout("replayql", cluster="prod").replaced_scan())
    for formatted in (events, recordings):
        assert formatted.startswith("INSERT INTO replayql.replaced_batches SELECT DISTINCT"), formatted
    assert "FROM replayql.events GROUP BY app_id, session_id, seq, idx HAVING count() > 1" in events, events
    assert "FROM replayql.recordings GROUP BY app_id, session_id, seq HAVING count() > 1" in recordings, recordings


def _column_lists(engine: Any, layout: Layout) -> dict[str, str]:
    """table -> its column list, for the statements that declare columns (the local ones in cluster mode)."""
    out = {}
    for statement in [*layout.table_statements(), *layout.summary_statements()]:
        formatted = _one_line(engine, statement)
        name = formatted.split()[5].removeprefix("replayql.").removesuffix("_local")
        if " ENGINE = Distributed(" not in formatted:
            out[name] = formatted[formatted.index("("):formatted.index(") ENGINE")]
    return out


def test_single_node_and_cluster_tables_have_the_same_columns(engine: Any) -> None:
    single = _column_lists(engine, Layout("replayql"))
    assert set(single) == {*EXPECTED_TABLES, *SUMMARIES}
    assert _column_lists(engine, Layout("replayql", cluster="prod")) == single


# --- schema versions -----------------------------------------------------------------------------------------


def test_reopening_keeps_data_and_does_not_rerun_the_ddl(engine: Any, location: Location) -> None:
    database = _database(location)
    first = _open(location)
    registry = ClickHouseRegistry(first)
    app = registry.create_app("shop")
    first.close()
    # A table removed behind the store's back stays removed: a reopened store trusts its schema version and
    # runs no DDL (which would have re-created it).
    engine.command(f"DROP TABLE `{database}`.`user_traits` SYNC")

    second = _open(location)
    try:
        assert ClickHouseRegistry(second).list_apps() == [app]
        assert "user_traits" not in _tables(engine, database)
        assert second.fetch_rows("SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
    finally:
        second.close()


def test_a_database_from_a_newer_replayql_is_refused(engine: Any, location: Location) -> None:
    database = _database(location)
    _open(location).close()
    engine.command("INSERT INTO {db:Identifier}.schema_version VALUES ({version:Int32}, now())",
                   parameters={"db": database, "version": SCHEMA_VERSION + 1})

    message = (f"the ClickHouse database {database} has schema version {SCHEMA_VERSION + 1}, newer than this "
               f"replayql ({SCHEMA_VERSION}); upgrade replayql")
    with pytest.raises(StoreUnavailable, match=f"^{re.escape(message)}$"):
        _open(location)
    versions = engine.query("SELECT version FROM {db:Identifier}.schema_version ORDER BY version",
                            parameters={"db": database}).result_rows
    assert versions == [(SCHEMA_VERSION,), (SCHEMA_VERSION + 1,)]  # refused without writing anything


# --- identifiers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["x; DROP", "", "a b", "a`b", "a-b", "db.table", "x'", "a\nb"])
def test_a_bad_database_or_cluster_name_is_refused(name: str) -> None:
    message = f"{name!r} is not a valid ClickHouse identifier (letters, digits and _ only)"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        Layout(name).statements()
    if name:  # an empty cluster name is no cluster: the single-node layout
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            Layout("replayql", cluster=name).statements()


def test_a_bad_database_name_in_the_url_is_a_store_error(chdb_path: Path, engine: Any) -> None:
    """A url naming a database that is no identifier fails as the store being unusable, before any DDL runs."""
    before = engine.query("SELECT name FROM system.databases").result_rows
    url = f"chdb://{chdb_path}?database=x;DROP"
    message = (f"cannot use ClickHouse at {url}: 'x;DROP' is not a valid ClickHouse identifier "
               "(letters, digits and _ only)")
    with pytest.raises(StoreUnavailable, match=f"^{re.escape(message)}$"):
        ClickHouseStore(Connection(url))
    assert engine.query("SELECT name FROM system.databases").result_rows == before


def test_identifiers_are_quoted_in_the_ddl() -> None:
    statements = Layout("select", cluster="on").statements()
    assert statements[0] == "CREATE DATABASE IF NOT EXISTS `select` ON CLUSTER `on`"
    assert all("`select`." in s for s in statements[1:])


SUMMARIES_QUERY = """{
  sessions(first: 100, orderBy: {field: STARTED_AT, direction: ASC}) { totalCount nodes { id startedAt endedAt
    activeDurationMs userId browser country initialUrl pageCount clickCount errorCount eventCount rageClickCount
    deadClickCount errorClickCount hasRecording } }
  users(first: 100) { totalCount nodes { id name email traits firstSeen lastSeen sessionCount
    sessions(first: 3) { nodes { id } } } }
  issues(first: 100) { totalCount nodes { id title errorType message status count firstSeen lastSeen } }
}"""


@pytest.mark.parametrize("version", [2, 3])
def test_opening_an_older_database_summarises_the_rows_it_holds(engine: Any, location: Location,
                                                                version: int) -> None:
    """Version 2 kept summaries only as per-batch rows, folded on every read; version 3 had no session_users, and
    its summaries had granules of 8,192 rows. Opening such a database makes the summaries and session_users
    anew, fills them from the rows it holds, and starts their views: the answers stay what they were (a user's
    sessions included), and new batches count once."""
    batches = list(generate_batches("demo", 40, seed=11, end_ms=END_MS))
    database = _database(location)
    server = start_server(location)
    try:
        load(server, batches[:-5])
        before = server.data(SUMMARIES_QUERY)
    finally:
        close_services(server.services)
    assert before["sessions"]["totalCount"] > 20 and before["users"]["totalCount"] > 0
    assert sum(len(u["sessions"]["nodes"]) for u in before["users"]["nodes"]) > 0
    engine.command(f"DROP TABLE `{database}`.session_users_view")
    engine.command(f"DROP TABLE `{database}`.session_users")
    if version == 2:
        _as_version_2(engine, database)
    engine.command(f"DELETE FROM `{database}`.schema_version WHERE version = {SCHEMA_VERSION}")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES ({version}, now())")

    server = start_server(location)
    try:
        assert server.data(SUMMARIES_QUERY) == before
        assert set(_tables(engine, database)) == {*EXPECTED_TABLES, *SUMMARIES, *VIEWS, *MERGED}
        load(server, batches[-5:])  # through the views from now on
        after = server.data(SUMMARIES_QUERY)
    finally:
        close_services(server.services)
    expected = {b["sessionId"] for b in batches}
    assert {n["id"] for n in after["sessions"]["nodes"]} == expected
    # every event the batches sent is counted once, those from before the migration and those after it
    assert sum(n["eventCount"] for n in after["sessions"]["nodes"]) == sum(
        1 for b in batches for e in b["events"] if e["type"] != "recording")


EVENTS_AND_SUMMARIES = f"{{ events {{ totalCount }} {SUMMARIES_QUERY.strip()[1:]}"


def _loaded(location: Location, batches: list[dict[str, Any]], stored: str) -> tuple[Any, list[tuple[Any, ...]]]:
    """A server stores the batches and stops: its answers to EVENTS_AND_SUMMARIES, and the rows `stored` reads."""
    server = start_server(location)
    try:
        load(server, batches)
        return server.data(EVENTS_AND_SUMMARIES), server.services.store.fetch_rows(stored)
    finally:
        close_services(server.services)


def test_opening_a_version_4_database_notes_the_batches_whose_events_are_stored_twice(
        engine: Any, location: Location) -> None:
    """Version 4 read events FINAL, and a retried batch wrote its events again. Opening it makes replaced_batches
    and fills it with those batches, so reads without FINAL still count each event once."""
    batches = list(generate_batches("demo", 20, seed=5, end_ms=END_MS))
    database = _database(location)
    before, rows = _loaded(location, batches, "SELECT count() FROM events")
    stored = rows[0][0]  # each once, so far
    assert before["events"]["totalCount"] == stored
    twice = batches[3]["sessionId"]
    # a merge would replace the copy at any moment; the migration copies it as stored, one part per month, and no
    # merge follows in the new table (nothing else is written to it)
    engine.command(f"SYSTEM STOP MERGES `{database}`.events")
    engine.command(f"INSERT INTO `{database}`.events SELECT * FROM `{database}`.events "
                   f"WHERE session_id = '{twice}' AND seq = 0")  # as a version 4 retry stored it
    engine.command(f"DROP TABLE `{database}`.replaced_batches")
    engine.command(f"DELETE FROM `{database}`.schema_version WHERE version = {SCHEMA_VERSION}")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES (4, now())")

    server = start_server(location)
    try:
        assert server.services.store.fetch_rows("SELECT session_id, seq FROM replaced_batches") == [(twice, 0)]
        assert server.services.store.fetch_rows("SELECT count() FROM events")[0][0] > stored  # still twice
        assert server.data(EVENTS_AND_SUMMARIES) == before
    finally:
        engine.command(f"SYSTEM START MERGES `{database}`.events")
        close_services(server.services)


def test_opening_a_version_5_database_keeps_plain_sums_made_from_the_batches(engine: Any, location: Location) -> None:
    """Version 5 kept a session's sums only in the map keyed by batch. Opening it makes the summaries anew from
    the per-batch rows, with the plain sums that reads take, and the same answers."""
    batches = list(generate_batches("demo", 20, seed=6, end_ms=END_MS))
    database = _database(location)
    server = start_server(location)
    try:
        load(server, batches)
        before = server.data(SUMMARIES_QUERY)
    finally:
        close_services(server.services)
    plain = SESSIONS.plain()
    for name in ("sessions_merged", "sessions_view"):
        engine.command(f"DROP VIEW `{database}`.{name}")
    engine.command(f"ALTER TABLE `{database}`.sessions " + ", ".join(f"DROP COLUMN {name}" for name in plain))
    engine.command(f"DROP TABLE `{database}`.sessions_to_recount")
    engine.command(f"DELETE FROM `{database}`.schema_version WHERE version = {SCHEMA_VERSION}")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES (5, now())")

    server = start_server(location)
    try:
        assert server.data(SUMMARIES_QUERY) == before
        # the plain sums count every event sent once, and each session's agree with its map's
        stored = server.services.store.fetch_rows("SELECT sum(event_count) FROM sessions FINAL")[0][0]
        assert stored == sum(1 for b in batches for e in b["events"] if e["type"] != "recording")
        assert server.services.store.fetch_rows(
            f"SELECT count() FROM sessions FINAL WHERE {sql(SESSIONS.miscounted(), 'clickhouse')}") == [(0,)]
    finally:
        close_services(server.services)


def test_opening_a_version_6_database_orders_its_events_by_kind_and_keeps_every_one(
        engine: Any, location: Location) -> None:
    """Version 6 ordered events by day first. Opening it copies them into a table ordered by kind first, which
    takes the old table's place: every event is still there, and every answer is the same."""
    batches = list(generate_batches("demo", 20, seed=8, end_ms=END_MS))
    database = _database(location)
    before, stored = _loaded(location, batches, "SELECT * FROM events ORDER BY session_id, seq, idx")
    old_key = "ORDER BY (app_id, toDate(ts), session_id, seq, idx)"
    ddl = Layout(database)._table(table("events"), "events_v6")[0].split("ORDER BY")[0] + old_key
    engine.command(ddl.replace("INDEX session_bloom session_id TYPE bloom_filter(0.01) GRANULARITY 1", "")
                   .replace(",\n  \n)", "\n)"))
    engine.command(f"INSERT INTO `{database}`.events_v6 SELECT * FROM `{database}`.events")
    engine.command(f"EXCHANGE TABLES `{database}`.events_v6 AND `{database}`.events")
    engine.command(f"DROP TABLE `{database}`.events_v6")
    engine.command(f"DELETE FROM `{database}`.schema_version WHERE version = {SCHEMA_VERSION}")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES (6, now())")
    assert _tables(engine, database)["events"][2] == "app_id, toDate(ts), session_id, seq, idx"

    server = start_server(location)
    try:
        assert _tables(engine, database)["events"][2] == EXPECTED_TABLES["events"][2]
        assert "events_rebuilt" not in _tables(engine, database)
        assert server.services.store.fetch_rows("SELECT * FROM events ORDER BY session_id, seq, idx") == stored
        assert server.data(EVENTS_AND_SUMMARIES) == before
    finally:
        close_services(server.services)


def test_opening_a_version_7_database_notes_the_batches_whose_recording_is_stored_twice(
        engine: Any, location: Location) -> None:
    """Version 7 read recordings FINAL, and a retry before version 5 wrote a batch's recording again (a batch of
    rrweb events alone noted nothing then: only events were scanned). Opening it notes those batches, so that
    recordings read as stored still hold each rrweb event once."""
    batches = list(generate_batches("demo", 20, seed=9, end_ms=END_MS))
    database = _database(location)
    _, recorded = _loaded(location, batches, "SELECT session_id, count() FROM recordings GROUP BY session_id "
                                             "ORDER BY count() DESC, session_id LIMIT 1")
    [(twice, chunks)] = recorded
    replay = f'{{ session(id: "{twice}") {{ recording(first: 500) {{ totalCount nodes }} }} }}'
    server = start_server(location)
    try:
        before = server.data(replay)
    finally:
        close_services(server.services)
    engine.command(f"SYSTEM STOP MERGES `{database}`.recordings")
    engine.command(f"INSERT INTO `{database}`.recordings SELECT * FROM `{database}`.recordings "
                   f"WHERE session_id = '{twice}' AND seq = 0")  # as a retry before version 5 stored it
    engine.command(f"ALTER TABLE `{database}`.batches DROP INDEX received_minmax, DROP COLUMN first_ts, "
                   "DROP COLUMN last_ts")
    engine.command(f"DELETE FROM `{database}`.schema_version WHERE version = {SCHEMA_VERSION}")
    engine.command(f"INSERT INTO `{database}`.schema_version VALUES (7, now())")

    server = start_server(location)
    try:
        store = server.services.store
        # the ledger's span of each batch's events: null for the batches stored before it; its index of receive
        # times, built for the parts it holds
        assert store.fetch_rows("SELECT count(), countIf(first_ts IS NULL AND last_ts IS NULL) FROM batches") == [
            (len(batches), len(batches))]
        built = store.fetch_rows("SELECT sum(secondary_indices_uncompressed_bytes) > 0 FROM system.parts "
                                 "WHERE database = currentDatabase() AND table = 'batches' AND active")
        assert built == [(1,)]
        assert store.fetch_rows("SELECT session_id, seq FROM replaced_batches") == [(twice, 0)]
        assert store.fetch_rows(f"SELECT count() FROM recordings WHERE session_id = '{twice}'") == [(chunks + 1,)]
        assert server.data(replay) == before
    finally:
        engine.command(f"SYSTEM START MERGES `{database}`.recordings")
        close_services(server.services)


def _as_version_2(engine: Any, database: str) -> None:
    """What a version 2 database is: no summary tables or views, no `written` column."""
    for name in (*VIEWS, *SUMMARIES):
        engine.command(f"DROP TABLE IF EXISTS `{database}`.`{name}`")
    engine.command(f"ALTER TABLE `{database}`.session_batches DROP COLUMN written")
