"""The embedded store: one DuckDB file owned by the server process.

One writer connection applies group commits; reads run on their own cursors (DuckDB MVCC), each in a worker
thread, so a long query never blocks ingestion or the event loop.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import sqlglot
import zstandard
from sqlglot import exp

from replayql.config import CacheLimits
from replayql.lru import Lru, cache_size
from replayql.store import merge, schema
from replayql.store.arrow import records_to_table, rows_to_table
from replayql.store.base import (
    BatchKey,
    BatchStored,
    Change,
    ChangeCursor,
    DeletionCounts,
    IssueStatusSet,
    ReadScope,
    SessionState,
    StorageSize,
    StoreLocked,
    StoreTimeout,
)
from replayql.store.changes import ChangeLog
from replayql.store.dialect import sql
from replayql.store.issue_titles import issue_title
from replayql.store.merge import Summary, issues_with_status, merge_sessions
from replayql.store.records import BatchWrite, IssueDelta, SessionDelta, UserDelta
from replayql.store.retention import is_expired
from replayql.store.schema import Merge
from replayql.store.watchdog import Watchdog

_TYPES = {schema.STRING: "VARCHAR", schema.INT: "INTEGER", schema.BIGINT: "BIGINT", schema.FLOAT: "DOUBLE",
          schema.BOOL: "BOOLEAN", schema.TIME: "TIMESTAMP", schema.JSON: "JSON", schema.BLOB: "BLOB"}

_SESSION_TYPES = tuple((name, logical) for name, logical, _ in schema.SESSION_COLUMNS)
_SESSION_NAMES = tuple(name for name, _ in _SESSION_TYPES)
# The deltas of a group commit, numbered in the order they were written: the columns of the summaries they fold
# into (the upserts' forms come from the one declaration), with the user's session flag as `session_count`.
_USER_DELTA_COLUMNS = (*schema.USER_COLUMNS, ("order", schema.BIGINT))
_ISSUE_DELTA_COLUMNS = (*((name, logical) for name, logical, rule in schema.ISSUE_SUMMARY
                          if rule is not Merge.SET_BY_API), ("order", schema.BIGINT))


def _create_table(name: str, columns: Sequence[tuple[str, str]], key: Sequence[str], extra: str = "") -> str:
    cols = ", ".join(f"{col} {_TYPES[logical]}" for col, logical in columns)
    pk = f", PRIMARY KEY ({', '.join(key)})" if key else ""
    return f"CREATE TABLE IF NOT EXISTS {name} ({cols}{extra}{pk})"


def _ddl() -> list[str]:
    return [
        _create_table("events", list(schema.EVENT_TYPES.items()), ()),
        _create_table("sessions", _SESSION_TYPES, ("app_id", "session_id"),
                      ", duration_ms BIGINT GENERATED ALWAYS AS (epoch_ms(ended_at) - epoch_ms(started_at))"),
        _create_table("users", schema.USER_COLUMNS, ("app_id", "user_id")),
        _create_table("issues", schema.ISSUE_COLUMNS, ("app_id", "issue_id")),
        _create_table("recordings", schema.RECORDING_COLUMNS, ("app_id", "session_id", "seq")),
        _create_table("deleted_users", (("app_id", schema.STRING), ("user_id", schema.STRING),
                                        ("deleted_at", schema.TIME)), ("app_id", "user_id")),
        _create_table("deleted_sessions", (("app_id", schema.STRING), ("session_id", schema.STRING)),
                      ("app_id", "session_id")),
    ]


def _col(name: str, table: str | None = None) -> exp.Column:
    return exp.column(name, table=table)


# _MIGRATIONS[n - 1]: the statements that bring a store of version n to n + 1.
_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    # 1 -> 2: the idempotency ledger moves from the `batches` table into each session's tail (`stored_above`;
    # load_tail compacts it), where it commits with the batch it records and costs no lookup that grows with
    # the history of the store.
    ("""UPDATE sessions SET tail = json_merge_patch(coalesce(tail, '{}'), json_object('stored_above', b.seqs))
        FROM (SELECT app_id, session_id, list(seq ORDER BY seq) AS seqs FROM batches GROUP BY app_id, session_id) b
        WHERE sessions.app_id = b.app_id AND sessions.session_id = b.session_id""",
     "DROP TABLE batches"),
)
assert len(_MIGRATIONS) == schema.SCHEMA_VERSION - 1


_SESSION_KEYS = (("app_id", schema.STRING), ("session_id", schema.STRING))
_SESSION_VALUES = tuple((name, logical) for name, logical, rule in schema.SESSION_COLUMNS if rule is not None)


@functools.lru_cache(maxsize=256)
def _session_update_sql(columns: tuple[str, ...]) -> str:
    """Set these columns of stored summaries from `incoming_sessions` (which holds the keys and them). DuckDB
    plans an UPDATE in time that grows with its columns, and a batch changes only a few (end, counts, tail)."""
    sets: dict[str, object] = {name: exp.column(name, "i") for name in columns}
    keys = [exp.column(k, "sessions").eq(exp.column(k, "i")) for k, _ in _SESSION_KEYS]
    return sql(exp.update("sessions", sets, where=exp.and_(*keys), from_="incoming_sessions AS i"), "duckdb")


def _session_select_sql() -> str:
    """Whole stored summaries of some sessions of one app, times as epoch ms (as a SessionDelta holds them)."""
    columns = [exp.alias_(exp.func("epoch_ms", exp.column(name)), name) if logical == schema.TIME
               else exp.column(name) for name, logical, _ in schema.SESSION_COLUMNS]
    ids = exp.select(exp.Unnest(expressions=[exp.Placeholder(this="ids")]))
    where = exp.and_(exp.column("app_id").eq(exp.Placeholder(this="app")),
                     exp.In(this=exp.column("session_id"), query=exp.Subquery(this=ids)))
    return sql(exp.select(*columns).from_("sessions").where(where), "duckdb")


def _upsert_sql(table: str, summary: Summary, own: dict[str, str]) -> str:
    """Fold a group commit's deltas (`incoming_<table>`, `order` numbering them) per key, then merge each into
    its stored row: both forms from the summary's declaration. `own` is DuckDB's fold for the rules that are
    each store's own (a JSON patch, the columns only the API sets)."""
    keys = [name for name, _, rule in summary if rule is None]
    folded = merge.fold(summary, order="order", own={name: sqlglot.parse_one(text, read="duckdb")
                                                     for name, text in own.items()})
    select = exp.select(*folded).from_(f"incoming_{table}").group_by(*keys)
    merged = {name: merge.pairwise(name, rule, table, "excluded") for name, _, rule in summary}
    sets = ", ".join(f"{name} = {sql(value, 'duckdb')}" for name, value in merged.items() if value is not None)
    return (f"INSERT INTO {table} ({', '.join(name for name, _, _ in summary)}) {sql(select, 'duckdb')} "
            f"ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {sets}")


_USER_UPSERT = _upsert_sql("users", schema.USER_SUMMARY, {
    "traits": "list_reduce(list(traits ORDER BY \"order\"), lambda a, b: json_merge_patch(a, b))",
    # each delta flags the session it first attached to the user (ingest.sessionize), so flags add up
    "session_count": "sum(session_count)"})
# A new issue is OPEN; only updateIssue changes its status.
_ISSUE_UPSERT = _upsert_sql("issues", schema.ISSUE_SUMMARY, {"status": "'OPEN'",
                                                             "status_changed_at": "max(last_received_at)"})


_codecs = threading.local()  # a zstandard (de)compressor must not be used by two threads at once


def _compressor() -> zstandard.ZstdCompressor:
    if not hasattr(_codecs, "compressor"):
        _codecs.compressor = zstandard.ZstdCompressor(level=3)
    compressor: zstandard.ZstdCompressor = _codecs.compressor
    return compressor


def _decompressor() -> zstandard.ZstdDecompressor:
    if not hasattr(_codecs, "decompressor"):
        _codecs.decompressor = zstandard.ZstdDecompressor()
    decompressor: zstandard.ZstdDecompressor = _codecs.decompressor
    return decompressor


class DuckDBStore:
    """Implements `store.base.Store` on one DuckDB file."""

    dialect = "duckdb"
    single_writer = True  # the file is owned by this process
    narrow_pages = False  # summaries are stored whole: a page is one query

    def __init__(self, path: Path, read_only: bool = False, memory_limit: str | None = None,
                 summaries: int = CacheLimits.session_summaries) -> None:
        self.path = path
        config: dict[str, str | bool | int | float | list[str]] = {"memory_limit": memory_limit} if memory_limit else {}
        try:
            self._conn = duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreLocked(
                    f"the store {path} is in use by another process (a running `replayql serve`?); "
                    "stop that process first, or send the data to it over HTTP") from None
            raise
        self._write_lock = threading.Lock()
        # The only writer keeps the stored summaries of recently written sessions, merges each batch into them
        # in Python and writes what changed: far cheaper for DuckDB than an upsert that merges 40 columns in SQL.
        # `summaries` of them (the most recently written) stay in memory; the others are read from the table.
        self._summaries: Lru[tuple[str, str], SessionDelta] = Lru(summaries)
        self._session_select = _session_select_sql()
        self._changes = ChangeLog()  # this process is the only writer: what it commits is the whole story
        if not read_only:
            self._migrate()

    def close(self) -> None:
        self._conn.close()

    def _migrate(self) -> None:
        self._conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        row = self._conn.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] if row and row[0] is not None else 0
        if current > schema.SCHEMA_VERSION:
            raise RuntimeError(f"the store {self.path} has schema version {current}, newer than this "
                               f"replayql ({schema.SCHEMA_VERSION}); upgrade replayql")
        if current == schema.SCHEMA_VERSION:
            return
        with self.transaction() as conn:
            if current < 1:
                for statement in _ddl():
                    conn.execute(statement)
            else:
                for statement in (text for step in _MIGRATIONS[current - 1:] for text in step):
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES ($v)", {"v": schema.SCHEMA_VERSION})

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """The writer connection inside BEGIN/COMMIT; only one writer at a time."""
        with self._write_lock:
            self._conn.execute("BEGIN TRANSACTION")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    # -- reads -----------------------------------------------------------------------------------------------

    def relation(self, table: str, alias: str, scope: ReadScope) -> exp.Expr:
        # Stored rows are already whole: `only` is left to the caller's own filter.
        if table == "issues":
            return exp.Subquery(this=issues_with_status(exp.to_table("issues"), scope.app),
                                alias=exp.to_identifier(alias))
        if table == "issue_sessions":  # from the occurrences themselves (a DISTINCT here costs DuckDB 30 ms)
            occurrences = exp.select("app_id", "issue_id", "session_id").from_("events").where(
                exp.column("kind").eq(exp.Literal.string("error")))  # every error has its issue
            return exp.Subquery(this=occurrences, alias=exp.to_identifier(alias))
        return exp.to_table(table).as_(alias)

    def placeholder(self, name: str, value: Any) -> exp.Placeholder:
        return exp.Placeholder(this=name)

    def recording_payload(self, stored: Any) -> bytes:
        return _decompressor().decompress(stored)

    def fetch(self, query: exp.Expression | str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        """Run one read on its own cursor (safe from any thread)."""
        text = query if isinstance(query, str) else sql(query, "duckdb")
        cursor = self._conn.cursor()
        try:
            return cursor.execute(text, params or {}).fetchall()
        finally:
            cursor.close()

    def fetch_dicts(self, query: str, params: dict[str, Any], timeout_s: float | None = None
                    ) -> list[dict[str, Any]]:
        cursor = self._conn.cursor()
        try:
            with _WATCHDOG.watch(timeout_s, cursor.interrupt):
                cursor.execute(query, params)
                names = [d[0] for d in cursor.description or ()]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        except duckdb.InterruptException:
            raise StoreTimeout(f"the query ran longer than {timeout_s} s and was stopped") from None
        finally:
            cursor.close()

    def seen_batches(self, keys: Sequence[BatchKey]) -> set[BatchKey]:
        return set()  # the only writer: the session tails it wrote are the whole ledger

    def session_states(self, app_id: str, session_ids: Sequence[str]) -> dict[str, SessionState]:
        """Read through the summary cache: the writer asks for the sessions it is about to write."""
        with self._write_lock:
            summaries = self._stored_summaries(self._conn, {(app_id, sid) for sid in session_ids}, remember=True)
        return {sid: SessionState(row.user_id, row.tail) for (_, sid), row in summaries.items()}

    def deleted_among(self, app_id: str, session_ids: Sequence[str], user_ids: Sequence[str]
                      ) -> tuple[set[str], set[str]]:
        sessions = self.fetch("SELECT session_id FROM deleted_sessions WHERE app_id = $app "
                              "AND session_id IN (SELECT unnest($ids))", {"app": app_id, "ids": list(session_ids)})
        users = self.fetch("SELECT user_id FROM deleted_users WHERE app_id = $app "
                           "AND user_id IN (SELECT unnest($ids))", {"app": app_id, "ids": list(user_ids)})
        return {r[0] for r in sessions}, {r[0] for r in users}

    # -- writes ----------------------------------------------------------------------------------------------

    def write(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None:
        """Apply a group of accepted batches in one transaction; their idempotency ledger is in the session tails
        (see ingest.sessionize.SessionTail), written with the summaries."""
        with self.transaction() as conn:
            events = [e for w in writes for e in w.events]
            if events:
                self._insert(conn, "events", records_to_table(events, schema.EVENT_TYPES.items()))
            recordings = [replace(w.recording, data=_compressor().compress(w.recording.data))
                          for w in writes if w.recording is not None]
            if recordings:
                self._insert(conn, "recordings", records_to_table(recordings, schema.RECORDING_COLUMNS))
            summaries = self._upsert_sessions(conn, writes)
            self._upsert_users(conn, [(w.seq, w.user) for w in writes if w.user is not None])
            self._upsert_issues(conn, [i for w in writes for i in w.issues], received_at_ms)
        self._remember_summaries(summaries)  # only once committed: a failed group leaves memory as the table
        self._changes.append([BatchStored(w.app_id, w.session_id, w.seq, received_at_ms,
                                          w.events_span_ms(received_at_ms)) for w in writes])

    @staticmethod
    def _insert(conn: duckdb.DuckDBPyConnection, table: str, data: pa.Table) -> None:
        with _registered(conn, "incoming_rows", data):
            columns = ", ".join(data.column_names)
            conn.execute(f"INSERT INTO {table} ({columns}) SELECT {columns} FROM incoming_rows")

    def _upsert_sessions(self, conn: duckdb.DuckDBPyConnection, writes: Sequence[BatchWrite]
                         ) -> dict[tuple[str, str], SessionDelta]:
        """Merge each batch into its session's stored summary (in arrival order) and write the merged rows."""
        stored = self._stored_summaries(conn, {(w.app_id, w.session_id) for w in writes})
        merged: dict[tuple[str, str], SessionDelta] = {}
        for w in writes:
            key = (w.app_id, w.session_id)
            base = merged.get(key) or stored.get(key)
            merged[key] = w.session if base is None else merge_sessions(base, w.session)
        new = [row for key, row in merged.items() if key not in stored]
        if new:
            self._insert(conn, "sessions", records_to_table(new, _SESSION_TYPES))
        pairs = [(stored[key], row) for key, row in merged.items() if key in stored]
        columns = [(name, logical) for name, logical in _SESSION_VALUES
                   if any(getattr(old, name) != getattr(row, name) for old, row in pairs)]
        if columns:
            rows = records_to_table([row for _, row in pairs], (*_SESSION_KEYS, *columns))
            with _registered(conn, "incoming_sessions", rows):
                conn.execute(_session_update_sql(tuple(name for name, _ in columns)))
        return merged

    def _stored_summaries(self, conn: duckdb.DuckDBPyConnection, keys: set[tuple[str, str]],
                          remember: bool = False) -> dict[tuple[str, str], SessionDelta]:
        """The stored rows of these sessions (those that have one), from memory or else from the table."""
        found = {key: self._summaries[key] for key in keys if key in self._summaries}
        missing: dict[str, list[str]] = {}
        for app_id, session_id in keys - found.keys():
            missing.setdefault(app_id, []).append(session_id)
        loaded = {}
        for app_id, session_ids in missing.items():
            for row in conn.execute(self._session_select, {"app": app_id, "ids": session_ids}).fetchall():
                loaded[(app_id, row[1])] = SessionDelta(**dict(zip(_SESSION_NAMES, row, strict=True)))
        if remember:
            self._remember_summaries(loaded)
        return found | loaded

    def _remember_summaries(self, rows: dict[tuple[str, str], SessionDelta]) -> None:
        for key, row in rows.items():
            self._summaries.put(key, row)

    @staticmethod
    def _upsert_users(conn: duckdb.DuckDBPyConnection, users: list[tuple[int, UserDelta]]) -> None:
        if not users:
            return
        import orjson

        rows = [(u.app_id, u.user_id, u.name, u.email, orjson.dumps(u.traits).decode(), u.seen_from, u.seen_to,
                 int(u.new_session), order) for order, u in users]
        with _registered(conn, "incoming_users", rows_to_table(rows, _USER_DELTA_COLUMNS)):
            conn.execute(_USER_UPSERT)

    @staticmethod
    def _upsert_issues(conn: duckdb.DuckDBPyConnection, issues: list[IssueDelta], received_at_ms: int) -> None:
        if not issues:
            return
        rows = [(i.app_id, i.issue_id, i.title, i.error_type, i.message, i.stack, i.first_seen, i.last_seen, i.count,
                 received_at_ms, order) for order, i in enumerate(issues)]
        with _registered(conn, "incoming_issues", rows_to_table(rows, _ISSUE_DELTA_COLUMNS)):
            conn.execute(_ISSUE_UPSERT)

    # -- deletion and mutations ------------------------------------------------------------------------------

    def delete_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts:
        """Remove every trace of these sessions and refuse their future batches."""
        with self.transaction() as conn:
            return self._delete_sessions(conn, app_id, list(session_ids))

    def delete_user(self, app_id: str, user_id: str) -> DeletionCounts:
        with self.transaction() as conn:
            rows = conn.execute("SELECT session_id FROM sessions WHERE app_id = $app AND user_id = $user",
                                {"app": app_id, "user": user_id}).fetchall()
            counts = self._delete_sessions(conn, app_id, [r[0] for r in rows])
            found = conn.execute("DELETE FROM users WHERE app_id = $app AND user_id = $user RETURNING user_id",
                                 {"app": app_id, "user": user_id}).fetchall()
            conn.execute("INSERT INTO deleted_users VALUES ($app, $user, epoch_ms($now)) ON CONFLICT DO NOTHING",
                         {"app": app_id, "user": user_id, "now": _now_ms()})
            counts.users = len(found)
            counts.session_ids = [r[0] for r in rows]
            return counts

    def _delete_sessions(self, conn: duckdb.DuckDBPyConnection, app_id: str, session_ids: list[str],
                         refuse_later: bool = True) -> DeletionCounts:
        """Delete the sessions' rows and recount their issues; `refuse_later` records them as deleted."""
        for session_id in session_ids:
            self._summaries.pop((app_id, session_id), None)
        params = {"app": app_id, "ids": session_ids}
        scope = "app_id = $app AND session_id IN (SELECT unnest($ids))"
        # No row of a session is later than its end: the bound lets DuckDB skip the row groups of newer data
        # (rows are appended in about time order), so a deletion of old sessions reads little of the table.
        through = _scalar(conn, f"SELECT max(ended_at) FROM sessions WHERE {scope}", params)
        bounded = params if through is None else {**params, "through": through}
        events, recordings = (scope, scope) if through is None else (
            f"{scope} AND ts <= $through", f"{scope} AND first_ts <= $through")
        issue_ids = [r[0] for r in conn.execute(
            f"SELECT DISTINCT issue_id FROM events WHERE {events} AND issue_id IS NOT NULL", bounded).fetchall()]
        counts = DeletionCounts(
            sessions=_deleted(conn, f"DELETE FROM sessions WHERE {scope}", params),
            events=_deleted(conn, f"DELETE FROM events WHERE {events}", bounded),
            recordings=_deleted(conn, f"DELETE FROM recordings WHERE {recordings}", bounded))
        if refuse_later:
            conn.execute("INSERT INTO deleted_sessions SELECT $app, unnest($ids) ON CONFLICT DO NOTHING", params)
        _recount_issues(conn, app_id, issue_ids)
        return counts

    def expired_sessions(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        query = exp.select("app_id", "session_id").from_("sessions").where(
            is_expired(exp.column("ended_at"), exp.Placeholder(this="cutoff"))).order_by("ended_at").limit(limit)
        return [(app, sid) for app, sid in self.fetch(query, {"cutoff": cutoff})]

    def purge_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts:
        ids = list(session_ids)
        with self.transaction() as conn:
            users = [r[0] for r in conn.execute(
                "SELECT DISTINCT user_id FROM sessions WHERE app_id = $app AND session_id IN (SELECT unnest($ids)) "
                "AND user_id IS NOT NULL", {"app": app_id, "ids": ids}).fetchall()]
            counts = self._delete_sessions(conn, app_id, ids, refuse_later=False)
            counts.users = _recount_users(conn, app_id, users)
        counts.session_ids = ids
        return counts

    def identify_user(self, app_id: str, user_id: str, name: str | None, email: str | None,
                      traits: dict[str, Any]) -> None:
        """Merge profile fields into a user (creating it); a None trait value removes that trait."""
        import orjson

        now_ms = int(time.time() * 1000)
        delta = UserDelta(app_id, user_id, now_ms, now_ms, name=name, email=email,
                          traits={k: v for k, v in traits.items() if v is not None})  # null removes: none to keep
        with self.transaction() as conn:
            exists = conn.execute("SELECT 1 FROM users WHERE app_id = $app AND user_id = $user",
                                  {"app": app_id, "user": user_id}).fetchone()
            if exists:
                conn.execute("UPDATE users SET name = coalesce($name, name), email = coalesce($email, email), "
                             "traits = json_merge_patch(traits, $traits) WHERE app_id = $app AND user_id = $user",
                             {"app": app_id, "user": user_id, "name": name, "email": email,
                              "traits": orjson.dumps(traits).decode()})
            else:
                self._upsert_users(conn, [(0, delta)])

    def set_issue_status(self, app_id: str, issue_id: str, status: str) -> bool:
        now = _now_ms()
        with self.transaction() as conn:
            rows = conn.execute("UPDATE issues SET status = $status, status_changed_at = epoch_ms($now) "
                                "WHERE app_id = $app AND issue_id = $issue RETURNING issue_id",
                                {"app": app_id, "issue": issue_id, "status": status, "now": now}).fetchall()
        if rows:
            self._changes.append([IssueStatusSet(app_id, issue_id, status, now)])
        return bool(rows)

    def changes_since(self, cursor: ChangeCursor | None) -> tuple[list[Change], ChangeCursor]:
        return self._changes.since(cursor)

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        return {"store.session_summaries": (len(self._summaries), self._summaries.size),
                "store.update_statements": cache_size(_session_update_sql)}

    def ping(self) -> bool:
        """The store answers a read of its own schema (not just any query)."""
        return len(self.fetch("SELECT version FROM schema_version LIMIT 1")) == 1

    def storage_size(self, timeout_s: float) -> StorageSize:
        """The file and its write-ahead log; rows as DuckDB's catalog counts them (exact until rows are deleted,
        an estimate after)."""
        files = (self.path, self.path.with_name(f"{self.path.name}.wal"))
        rows = self.fetch_dicts("SELECT table_name, estimated_size FROM duckdb_tables() "
                                "WHERE database_name = current_database()", {}, timeout_s)
        return StorageSize(sum(f.stat().st_size for f in files if f.exists()),
                           {r["table_name"]: int(r["estimated_size"]) for r in rows})


@contextmanager
def _registered(conn: duckdb.DuckDBPyConnection, name: str, data: pa.Table) -> Iterator[None]:
    """An Arrow table visible to SQL as `name` for one statement."""
    conn.register(name, data)
    try:
        yield
    finally:
        with suppress(duckdb.Error):  # an aborted transaction refuses even this; the error that matters is raised
            conn.unregister(name)


_WATCHDOG = Watchdog()


def _now_ms() -> int:
    return int(time.time() * 1000)


def _scalar(conn: duckdb.DuckDBPyConnection, statement: str, params: dict[str, Any]) -> Any:
    row = conn.execute(statement, params).fetchone()
    return row[0] if row else None


def _deleted(conn: duckdb.DuckDBPyConnection, statement: str, params: dict[str, Any]) -> int:
    return int(_scalar(conn, statement, params) or 0)


def _recount_users(conn: duckdb.DuckDBPyConnection, app_id: str, user_ids: list[str]) -> int:
    """Users follow the sessions that remain: first and last seen, and the session count, are taken again from
    them, and a user with none left is deleted (its profile and traits with it). Returns how many were deleted."""
    if not user_ids:
        return 0
    params = {"app": app_id, "ids": user_ids}
    remaining = ("SELECT user_id, count(*) AS n, min(started_at) AS f, max(ended_at) AS l FROM sessions "
                 "WHERE app_id = $app AND user_id IN (SELECT unnest($ids)) GROUP BY user_id")
    conn.execute(f"UPDATE users SET session_count = remaining.n, first_seen = remaining.f, last_seen = remaining.l "
                 f"FROM ({remaining}) AS remaining WHERE users.app_id = $app AND users.user_id = remaining.user_id",
                 params)
    gone = conn.execute(f"DELETE FROM users WHERE app_id = $app AND user_id IN (SELECT unnest($ids)) "
                        f"AND user_id NOT IN (SELECT user_id FROM ({remaining})) RETURNING user_id", params).fetchall()
    return len(gone)


def _recount_issues(conn: duckdb.DuckDBPyConnection, app_id: str, issue_ids: list[str]) -> None:
    """Issue counters follow the occurrences that remain; an issue with none left is gone with them. The sample
    (title, message, stack) is taken again from the earliest remaining occurrence: a deleted user's error text
    must not stay behind in it."""
    if not issue_ids:
        return
    remaining = conn.execute("""
        SELECT issue_id, count(*), epoch_ms(min(ts)), epoch_ms(max(ts)), arg_min(coalesce(error_type, 'Error'), ts),
               arg_min(coalesce(message, ''), ts), arg_min(stack, ts) FROM events
        WHERE app_id = $app AND kind = 'error' AND issue_id IN (SELECT unnest($ids)) GROUP BY issue_id""",
                             {"app": app_id, "ids": issue_ids}).fetchall()
    rows = [(*row, issue_title(row[4], row[5])) for row in remaining]
    with _registered(conn, "remaining_issues", rows_to_table(rows, _REMAINING_ISSUE_COLUMNS)):
        conn.execute("""
            UPDATE issues SET count = r.count, first_seen = r.first_seen, last_seen = r.last_seen,
                              error_type = r.error_type, message = r.message, stack = r.stack, title = r.title
            FROM remaining_issues AS r WHERE issues.app_id = $app AND issues.issue_id = r.issue_id""", {"app": app_id})
    gone = sorted(set(issue_ids) - {row[0] for row in rows})
    conn.execute("DELETE FROM issues WHERE app_id = $app AND issue_id IN (SELECT unnest($gone))",
                 {"app": app_id, "gone": gone})


_REMAINING_ISSUE_COLUMNS = (("issue_id", schema.STRING), ("count", schema.BIGINT), ("first_seen", schema.TIME),
                            ("last_seen", schema.TIME), ("error_type", schema.STRING), ("message", schema.STRING),
                            ("stack", schema.STRING), ("title", schema.STRING))
