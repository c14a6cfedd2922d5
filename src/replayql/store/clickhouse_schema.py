"""The ClickHouse schema: MergeTree tables designed for the access paths, and their DDL.

Every table that can receive the same row twice (a retried batch, two servers) is a ReplacingMergeTree whose
sorting key identifies the row, and its reads use FINAL, so duplicates never count twice. Summaries (sessions,
users, issues) are written as one row per batch, and a materialized view folds each insert into an
AggregatingMergeTree by the same merge rules as the embedded store (store.clickhouse_summaries), which reads
take FINAL. In cluster mode each table is Replicated on every shard and a Distributed table over it, sharded so
that all rows that may replace or merge with each other live on one shard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlglot import exp

from replayql.store import schema
from replayql.store.clickhouse_summaries import (
    MERGED_VIEWS,
    SummaryTable,
    merged_issues,
    merged_sessions,
    merged_users,
)
from replayql.store.dialect import sql

# 2: no TTL. Version 1 could create tables with a per-row TTL (`--clickhouse-retention-days`), which expired the
# old rows of a session still active; retention is now a job with one rule for both stores (store.retention).
# 3: summaries kept at write time (sessions, users, issues: AggregatingMergeTree fed by materialized views), and
# session_batches.written, the order rows were written in.
# 4: session_users (the sessions each user was identified in, for a user's sessions without merging every
# session), and the summaries rebuilt as plain values read FINAL, with small granules and compressed blocks.
# 5: replaced_batches (the batches whose events were written twice), so events are read FINAL only for them.
# 6: plain sums in the sessions summary beside the map keyed by batch, and sessions_to_recount (the sessions
# whose plain sums may count a batch twice), so most reads of sums add up no map.
# 7: events ordered by kind first, with a bloom filter of session ids: a condition on one kind of event reads that
# kind's granules only (the 5xx page at 260,000 sessions: 181 -> 49 ms), and a session's events are found by
# the filter (11 granules). Rows of a kind compress better together: the table is 13% smaller.
# 8: recordings read as stored, like events (FINAL only for the batches in replaced_batches): a live read of 75
# new batches' recordings took 126 ms with FINAL at 65,000 sessions, 35 ms without. Opening an older database
# notes the batches whose recording an old retry stored twice. The ledger keeps each batch's events' first and
# last times, so a live read finds the events of new batches in their days only.
SCHEMA_VERSION = 8

_TIME = "DateTime64(3, 'UTC')"
_BASE_TYPES = {schema.STRING: "String", schema.INT: "Int32", schema.BIGINT: "Int64", schema.FLOAT: "Float64",
               schema.BOOL: "Bool", schema.TIME: _TIME, schema.JSON: "String", schema.BLOB: "String"}
# Few distinct values: dictionary-encoded columns are smaller and faster to filter and group.
_LOW_CARDINALITY = frozenset({
    "app_id", "kind", "host", "level", "method", "error_type", "name", "browser", "browser_version", "os",
    "os_version", "device_type", "country", "language", "timezone", "release", "sdk_name", "sdk_version",
    "utm_source", "utm_medium", "utm_campaign", "status", "scope",
})
# Same column name, many values: a user's display name is not an event name; dictionaries would only bloat.
_HIGH_CARDINALITY = frozenset({("user_batches", "name")})
_ZSTD = frozenset({"stack", "properties", "data", "tail", "user_agent"})  # long, repetitive text


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, logical type)
    order_by: tuple[str, ...]
    required: tuple[str, ...]  # NOT NULL columns; the rest are Nullable
    version: str | None = None  # ReplacingMergeTree version column: the highest wins
    partition_by: str | None = None
    shard_by: str = "session_id"
    replacing: bool = True
    indexes: tuple[str, ...] = ()  # data skipping indexes: "name expression TYPE type GRANULARITY n"
    # the replication path's name in cluster mode, when not its local table's (a table made anew under another
    # name, then exchanged for the old one, keeps the path it was made with)
    replica_name: str | None = None


# The rows that make one copy of a batch, in the tables whose rows are read as stored (a batch in two copies is
# noted in replaced_batches)
STORED_ONCE = {"events": ("app_id", "session_id", "seq", "idx"), "recordings": ("app_id", "session_id", "seq")}


def stored_twice(name: str, table: exp.Table | None = None) -> exp.Select:
    """The (app, session, seq) of the batches with a row of `name` stored twice (read from `table`, by default
    `name` in the connection's database)."""
    return exp.select("app_id", "session_id", "seq").from_(table or exp.to_table(name)).group_by(
        *STORED_ONCE[name]).having(exp.GT(this=exp.Anonymous(this="count"), expression=exp.Literal.number(1)))


def _ledger(*extra: tuple[str, str]) -> tuple[tuple[str, str], ...]:
    return (("app_id", schema.STRING), ("session_id", schema.STRING), ("seq", schema.INT), *extra)


RECEIVED_MINMAX = "received_minmax received_at TYPE minmax GRANULARITY 1"
EVENTS_ORDER = ("app_id", "kind", "toDate(ts)", "session_id", "seq", "idx")
_SESSION_BATCH_COLUMNS = (*((n, t) for n, t, _ in schema.SESSION_COLUMNS[:2]), ("seq", schema.INT),
                          *((n, t) for n, t, _ in schema.SESSION_COLUMNS[2:]), ("written", schema.BIGINT))

TABLES: tuple[Table, ...] = (
    # The kind leads the key, so a condition on one kind reads its granules only; the day follows, so time
    # ranges skip granules. A retried batch keeps its day (skew correction moves it by the network delay at most)
    # and an event its kind, so its rows still replace each other. A session's events are spread over its kinds
    # and days: the bloom filter finds their granules.
    Table("events", tuple(schema.EVENT_TYPES.items()), EVENTS_ORDER,
          ("app_id", "session_id", "seq", "idx", "ts", "kind"), partition_by="toYYYYMM(ts)",
          indexes=("session_bloom session_id TYPE bloom_filter(0.01) GRANULARITY 1",),
          replica_name="events_by_kind_local"),
    Table("session_batches", _SESSION_BATCH_COLUMNS, ("app_id", "session_id", "seq"),
          ("app_id", "session_id", "seq", "started_at", "ended_at", "active_ms", "page_count", "click_count",
           "error_count", "event_count", "rage_click_count", "dead_click_count", "error_click_count",
           "has_recording", "written")),
    Table("user_batches", (("app_id", schema.STRING), ("user_id", schema.STRING), ("session_id", schema.STRING),
                           ("seq", schema.INT), ("version", schema.BIGINT), ("name", schema.STRING),
                           ("email", schema.STRING), ("seen_from", schema.TIME), ("seen_to", schema.TIME),
                           ("new_session", schema.INT)),
          ("app_id", "user_id", "session_id", "seq"),
          ("app_id", "user_id", "session_id", "seq", "version", "seen_from", "seen_to", "new_session"),
          shard_by="user_id"),
    Table("user_traits", (("app_id", schema.STRING), ("user_id", schema.STRING), ("key", schema.STRING),
                          ("value", schema.JSON), ("version", schema.BIGINT)),
          ("app_id", "user_id", "key"), ("app_id", "user_id", "key", "version"), version="version",
          shard_by="user_id"),
    Table("issue_batches", (("app_id", schema.STRING), ("issue_id", schema.STRING), ("session_id", schema.STRING),
                            ("seq", schema.INT), ("title", schema.STRING), ("error_type", schema.STRING),
                            ("message", schema.STRING), ("stack", schema.STRING), ("first_seen", schema.TIME),
                            ("last_seen", schema.TIME), ("count", schema.BIGINT), ("received_at", schema.TIME)),
          ("app_id", "issue_id", "session_id", "seq"),
          ("app_id", "issue_id", "session_id", "seq", "title", "error_type", "message", "first_seen", "last_seen",
           "count", "received_at"), shard_by="issue_id"),
    Table("issue_status", (("app_id", schema.STRING), ("issue_id", schema.STRING), ("status", schema.STRING),
                           ("changed_at", schema.TIME)),
          ("app_id", "issue_id"), ("app_id", "issue_id", "status", "changed_at"), version="changed_at",
          shard_by="issue_id"),
    Table("recordings", schema.RECORDING_COLUMNS, ("app_id", "session_id", "seq"),
          tuple(name for name, _ in schema.RECORDING_COLUMNS), partition_by="toYYYYMM(first_ts)"),
    # Fed by a view from session_batches: every user a session was identified as (a superset of its users: the
    # merged session says which one it is now).
    Table("session_users", (("app_id", schema.STRING), ("user_id", schema.STRING), ("session_id", schema.STRING)),
          ("app_id", "user_id", "session_id"), ("app_id", "user_id", "session_id")),
    # The ledger: a batch's row is written last, with a range of times that holds all its events (null: a row
    # from before version 8), so a live read of new batches finds their events by day. Each live poll reads the
    # rows received since its last look: the minmax index skips the granules of older parts, which merges keep
    # apart from the newest (they merge parts of like size, so of like age).
    Table("batches", _ledger(("received_at", schema.TIME), ("first_ts", schema.TIME), ("last_ts", schema.TIME)),
          ("app_id", "session_id", "seq"), ("app_id", "session_id", "seq", "received_at"),
          indexes=(RECEIVED_MINMAX,)),
    # Batches whose events may be stored twice until a merge replaces one copy: written by two servers at once.
    # Reads take FINAL for their sessions only, and plain rows for every other session.
    Table("replaced_batches", _ledger(("found_at", schema.TIME)), ("app_id", "session_id", "seq"),
          ("app_id", "session_id", "seq", "found_at")),
    # Sessions whose plain sums may count a batch twice (a retry summarised them again, or two servers wrote one of
    # their batches): their reads take the sums from the map keyed by batch until a recount corrects them.
    Table("sessions_to_recount", (("app_id", schema.STRING), ("session_id", schema.STRING),
                                  ("noted_at", schema.TIME)),
          ("app_id", "session_id"), ("app_id", "session_id", "noted_at")),
    Table("deleted_users", (("app_id", schema.STRING), ("user_id", schema.STRING), ("deleted_at", schema.TIME)),
          ("app_id", "user_id"), ("app_id", "user_id", "deleted_at"), shard_by="user_id"),
    Table("deleted_sessions", (("app_id", schema.STRING), ("session_id", schema.STRING),
                               ("deleted_at", schema.TIME)),
          ("app_id", "session_id"), ("app_id", "session_id", "deleted_at")),
    Table("apps", (("id", schema.STRING), ("created_at", schema.TIME)), ("id",), ("id", "created_at"),
          shard_by="id"),
    Table("app_origins", (("app_id", schema.STRING), ("origins", schema.JSON), ("version", schema.BIGINT)),
          ("app_id",), ("app_id", "origins", "version"), version="version", shard_by="app_id"),
    Table("api_keys", (("id", schema.STRING), ("app_id", schema.STRING), ("scope", schema.STRING),
                       ("name", schema.STRING), ("secret_sha256", schema.STRING), ("created_at", schema.TIME),
                       ("revoked_at", schema.TIME), ("version", schema.BIGINT)),
          ("id",), ("id", "app_id", "scope", "secret_sha256", "created_at", "version"), version="version",
          shard_by="id"),
    Table("schema_version", (("version", schema.INT), ("applied_at", schema.TIME)), ("version",),
          ("version", "applied_at"), shard_by="version"),
)
TABLE_NAMES = tuple(t.name for t in TABLES)


def table(name: str) -> Table:
    for t in TABLES:
        if t.name == name:
            return t
    raise KeyError(name)


SESSIONS = SummaryTable("sessions", table("session_batches"), schema.SESSION_COLUMNS, ("app_id", "session_id"),
                        order="seq", written="(written, seq)", plain_sums=True)
USERS = SummaryTable("users", table("user_batches"), schema.USER_SUMMARY, ("app_id", "user_id"), order="version",
                     sources={"first_seen": "seen_from", "last_seen": "seen_to"})
ISSUES = SummaryTable("issues", table("issue_batches"), schema.ISSUE_SUMMARY, ("app_id", "issue_id"),
                      order="received_at", sources={"last_received_at": "received_at"},
                      batch=("cityHash64(session_id, seq)", "UInt64"))  # an issue's rows come from many sessions
SUMMARY_TABLES = (SESSIONS, USERS, ISSUES)
# A page's rows are read by id: each id reads a granule of every column, and the compressed block around it. Small
# granules and blocks keep that cheap (50 ids of 260,000 sessions: about half the time of 1,024 rows and the
# default blocks), and a scan of every key costs about the same.
_SUMMARY_STORAGE = "index_granularity = 256, min_compress_block_size = 4096, max_compress_block_size = 16384"
# session_users' rows, from a block of session_batches rows (its view and its backfill)
_SESSION_USERS = ("SELECT app_id, assumeNotNull(user_id) AS user_id, session_id FROM {source} "
                  "WHERE user_id IS NOT NULL")
_SHARD_BY = {"sessions": "session_id", "users": "user_id", "issues": "issue_id"}  # as their sources
_SUMMARY_NAMES = tuple(s.name for s in SUMMARY_TABLES)


def column_type(table: Table, name: str, logical: str) -> str:
    base = _BASE_TYPES[logical]
    if name not in table.required:
        base = f"Nullable({base})"
    if name in _LOW_CARDINALITY and logical == schema.STRING and (table.name, name) not in _HIGH_CARDINALITY:
        base = f"LowCardinality({base})"
    codec = " CODEC(ZSTD(3))" if name in _ZSTD else ""
    return f"{base}{codec}"


@dataclass(frozen=True)
class Layout:
    """Where tables go: one node, or Replicated tables plus Distributed tables on a named cluster."""

    database: str
    cluster: str | None = None

    def statements(self) -> list[str]:
        """Everything, for a new database: the database, the tables, the summaries and their views."""
        return [self.database_statement(), *self.table_statements(), *self.summary_statements(),
                *self.view_statements(), *self.merged_view_statements()]

    def database_statement(self) -> str:
        return f"CREATE DATABASE IF NOT EXISTS {_ident(self.database)}{self._on_cluster()}"

    def table_statements(self) -> list[str]:
        return [ddl for t in TABLES for ddl in self._table(t)]

    def summary_statements(self) -> list[str]:
        """The summaries' AggregatingMergeTree tables (and their Distributed tables on a cluster)."""
        out = []
        for summary in SUMMARY_TABLES:
            local = f"{summary.name}_local" if self.cluster else summary.name
            columns = ",\n  ".join(f"{_ident(n)} {t}" for n, t in summary.column_ddl())
            engine = self._engine_kind("AggregatingMergeTree", local, None)
            out.append(f"CREATE TABLE IF NOT EXISTS {self._qualified(local)}{self._on_cluster()} (\n  {columns}\n) "
                       f"ENGINE = {engine}\nORDER BY ({', '.join(summary.keys)})\n"
                       f"SETTINGS {_SUMMARY_STORAGE}")
            if self.cluster:
                out.append(self._distributed(summary.name, local, _SHARD_BY[summary.name]))
        return out

    def view_statements(self) -> list[str]:
        """The views that fold every insert into a per-batch table into its summary's states, and the one that
        feeds session_users."""
        selects = {s.name: s.select_states(self.local_table(s.source.name)) for s in SUMMARY_TABLES}
        selects["session_users"] = _SESSION_USERS.format(source=self.local_table("session_batches"))
        return [f"CREATE MATERIALIZED VIEW IF NOT EXISTS {self.local_table(name + '_view')}{self._on_cluster()} "
                f"TO {self.local_table(name)} AS {select}" for name, select in selects.items()]

    def view_drops(self) -> list[str]:
        """Migrations: the views and summary tables, dropped to be made anew (the per-batch rows stay)."""
        views = [*(self._qualified(name) for name in MERGED_VIEWS.values()),
                 *(self.local_table(f"{name}_view") for name in (*_SUMMARY_NAMES, "session_users"))]
        drops = [f"DROP VIEW IF EXISTS {name}{self._on_cluster()}" for name in views]
        for name in _SUMMARY_NAMES:
            drops.append(f"DROP TABLE IF EXISTS {self._qualified(name)}{self._on_cluster()}")
            if self.cluster:
                drops.append(f"DROP TABLE IF EXISTS {self.local_table(name)}{self._on_cluster()}")
        return drops

    def merged_view_statements(self) -> list[str]:
        """The views reads go through: each summary's states merged (over the Distributed tables on a cluster:
        they run where the query is sent)."""
        def table(name: str) -> exp.Table:
            return exp.table_(name, db=self.database, quoted=True)

        bodies = {"sessions": merged_sessions(SESSIONS, table("sessions")),
                  "users": merged_users(USERS, table("users"), table("user_traits")),
                  "issues": merged_issues(ISSUES, table("issues"), table("issue_status"))}
        return [f"CREATE VIEW IF NOT EXISTS {self._qualified(MERGED_VIEWS[name])}{self._on_cluster()} AS "
                f"{sql(body, 'clickhouse')}" for name, body in bodies.items()]

    def backfills(self) -> list[str]:
        """Migrations: the summaries and session_users of the rows stored before their views existed."""
        return [*(f"INSERT INTO {self._qualified(s.name)} {s.select_states(self._qualified(s.source.name) + ' FINAL')}"
                  for s in SUMMARY_TABLES),
                f"INSERT INTO {self._qualified('session_users')} "
                f"{_SESSION_USERS.format(source=self._qualified('session_batches'))}"]

    def summary_merges(self) -> list[str]:
        """Migrations: the rebuilt summaries merged now. FINAL over parts whose keys overlap merges every row it
        reads (at 260,000 sessions in two parts, a filter took 99 ms instead of 11), until background merges
        would have done it."""
        return [f"OPTIMIZE TABLE {self.local_table(name)}{self._on_cluster()} FINAL" for name in _SUMMARY_NAMES]

    def replaced_scan(self, tables: tuple[str, ...] = ("events", "recordings")) -> list[str]:
        """Migration to 5 (events and recordings) and to 8 (recordings): the batches whose rows of these tables are
        stored twice so far (by retries, before version 5)."""
        into = exp.table_("replaced_batches", db=self.database, quoted=True)
        return [sql(exp.insert(exp.select("app_id", "session_id", "seq", exp.func("now64", exp.Literal.number(3)))
                               .distinct().from_(stored_twice(name, exp.table_(name, db=self.database, quoted=True))
                                                 .subquery()), into), "clickhouse")
                for name in tables]

    def written_column(self) -> list[str]:
        """Migration 2 -> 3: session_batches.written (0 for the rows before it: they are ordered by seq)."""
        return self._added_columns("session_batches", "written Int64 DEFAULT 0")

    def ledger_upgrade(self) -> list[str]:
        """Migration 7 -> 8: the ledger's first_ts and last_ts (null for the rows before them), and its index of
        receive times, built for the parts it holds (on each shard's local table)."""
        ledger = table("batches")
        spans = [f"{name} {column_type(ledger, name, logical)}" for name, logical in ledger.columns
                 if name in ("first_ts", "last_ts")]
        local = f"ALTER TABLE {self.local_table('batches')}{self._on_cluster()}"
        return [*self._added_columns("batches", *spans), f"{local} ADD INDEX IF NOT EXISTS {RECEIVED_MINMAX}",
                f"{local} MATERIALIZE INDEX received_minmax SETTINGS mutations_sync = 2"]  # built when it returns

    def _added_columns(self, name: str, *columns: str) -> list[str]:
        """ALTER TABLE ... ADD COLUMN on the table (a cluster's local tables, and its Distributed table)."""
        names = [self.local_table(name), *([self._qualified(name)] if self.cluster else [])]
        added = ", ".join(f"ADD COLUMN IF NOT EXISTS {column}" for column in columns)
        return [f"ALTER TABLE {table_name}{self._on_cluster()} {added}" for table_name in names]

    def _on_cluster(self) -> str:
        return f" ON CLUSTER {_ident(self.cluster)}" if self.cluster else ""

    def _table(self, table: Table, name: str | None = None) -> list[str]:
        """The table's DDL, under its own name or `name` (a copy made anew)."""
        name = name or table.name
        local = f"{name}_local" if self.cluster else name
        columns = [f"{_ident(n)} {column_type(table, n, t)}" for n, t in table.columns]
        columns += [f"INDEX {index}" for index in table.indexes]
        clauses = [f"ENGINE = {self._engine(table, local)}"]
        if table.partition_by:
            clauses.append(f"PARTITION BY {table.partition_by}")
        clauses.append(f"ORDER BY ({', '.join(table.order_by)})")
        ddl = [f"CREATE TABLE IF NOT EXISTS {self._qualified(local)}{self._on_cluster()} (\n  "
               + ",\n  ".join(columns) + "\n) " + "\n".join(clauses)]
        if self.cluster:
            ddl.append(self._distributed(name, local, table.shard_by))
        return ddl

    def events_rebuild(self) -> list[str]:
        """Migration to 7: the events copied into a table ordered the new way, which then takes the old one's
        place (EXCHANGE is atomic) before the old rows are dropped. On a cluster the copy goes through the
        Distributed tables, sharded as before. A run that stops half-way leaves the old table in place, and a new
        run starts the copy over."""
        events, copy = table("events"), "events_rebuilt"
        names = [copy, f"{copy}_local"] if self.cluster else [copy]
        # SYNC: a replicated table's path is free again at once, for a run that starts over
        drops = [f"DROP TABLE IF EXISTS {self._qualified(name)}{self._on_cluster()} SYNC" for name in names]
        # a copy as stored (rows written twice are replaced_scan's to find); through a Distributed table, the
        # insert waits until every shard has its rows
        settings = "optimize_on_insert = 0" + (", distributed_foreground_insert = 1" if self.cluster else "")
        return [*drops, *self._table(events, copy),
                f"INSERT INTO {self._qualified(copy)} SETTINGS {settings} SELECT * FROM {self._qualified('events')}",
                f"EXCHANGE TABLES {self.local_table(copy)} AND {self.local_table('events')}{self._on_cluster()}",
                *drops]

    def _distributed(self, name: str, local: str, shard_by: str) -> str:
        return (f"CREATE TABLE IF NOT EXISTS {self._qualified(name)}{self._on_cluster()} "
                f"AS {self._qualified(local)} ENGINE = Distributed({_ident(self.cluster or '')}, "
                f"{_ident(self.database)}, {_ident(local)}, cityHash64({_ident(shard_by)}))")

    def _engine(self, table: Table, local: str) -> str:
        return self._engine_kind("ReplacingMergeTree" if table.replacing else "MergeTree",
                                 table.replica_name or local, table.version)

    def _engine_kind(self, kind: str, local: str, version: str | None) -> str:
        args: list[str] = []
        if self.cluster:
            kind = f"Replicated{kind}"
            args = [f"'/clickhouse/tables/{{shard}}/{self.database}/{local}'", "'{replica}'"]
        if version:
            args.append(version)
        return f"{kind}({', '.join(args)})"

    def ttl_removals(self, names: Sequence[str]) -> list[str]:
        """Migration 1 -> 2: drop the table TTL of these tables (those that have one)."""
        return [f"ALTER TABLE {self.local_table(name)}{self._on_cluster()} REMOVE TTL" for name in names]

    def local_table(self, name: str) -> str:
        """The table on each shard that holds `name`'s rows (the table itself on one node)."""
        return self._qualified(f"{name}_local" if self.cluster else name)

    def cluster_name(self) -> str:
        assert self.cluster is not None
        return _ident(self.cluster)

    def _qualified(self, name: str) -> str:
        return f"{_ident(self.database)}.{_ident(name)}"


def _ident(name: str) -> str:
    """Identifiers come from our own tables and settings; still, quote them so no name can break the DDL."""
    if not name.replace("_", "").isalnum():
        raise ValueError(f"{name!r} is not a valid ClickHouse identifier (letters, digits and _ only)")
    return f"`{name}`"


def columns_of(name: str) -> Sequence[tuple[str, str]]:
    return table(name).columns
