"""The scale-out store: ClickHouse, through clickhouse-connect (a server url, or in-process chDB).

Stateless by design: any number of replayql processes may write and read the same database. Nothing is updated
in place: every batch appends rows keyed by (session, seq), duplicates collapse under ReplacingMergeTree and
FINAL, and materialized views keep the summaries at write time by the same merge rules as the embedded store.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import orjson
from sqlglot import exp

from replayql.config import redact_url
from replayql.store import schema
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
    StoreTimeout,
    StoreUnavailable,
)
from replayql.store.changes import read_by_time
from replayql.store.clickhouse_schema import (
    ISSUES,
    SCHEMA_VERSION,
    SESSIONS,
    STORED_ONCE,
    TABLE_NAMES,
    USERS,
    Layout,
    columns_of,
    stored_twice,
)
from replayql.store.clickhouse_summaries import MERGED_VIEWS, SummaryTable, merged_sessions
from replayql.store.dialect import sql
from replayql.store.records import BatchWrite
from replayql.store.retention import is_expired

DEFAULT_DATABASE = "replayql"
# Aliases in ClickHouse shadow columns everywhere in a query; summaries alias aggregates to column names.
# With FINAL, conditions on the sorting key are read first (PREWHERE), so a session's events read its granules
# only; ClickHouse moves no other condition before FINAL.
_SETTINGS = {"prefer_column_name_to_alias": 1, "join_use_nulls": 1, "optimize_move_to_prewhere_if_final": 1}
_TIMEOUT_CODE = "TIMEOUT_EXCEEDED"
# How often a writer checks whether merges have replaced the copies of the batches written twice, and how many
# batches it checks at a time.
_PRUNE_INTERVAL_S = 60.0
_PRUNE_BATCHES = 10_000


@dataclass(frozen=True)
class Connection:
    """Where the database is: `http(s)://[user:password@]host:port/database` or `chdb://PATH[?database=NAME]`."""

    url: str
    user: str | None = None
    password: str | None = None

    @property
    def is_chdb(self) -> bool:
        return self.url.startswith("chdb:")

    @property
    def database(self) -> str:
        parsed = urlparse(self.url)
        if self.is_chdb:
            return parse_qs(parsed.query).get("database", [DEFAULT_DATABASE])[0]
        return parsed.path.strip("/") or DEFAULT_DATABASE

    def client(self, database: str | None, cluster: str | None = None) -> Any:
        import clickhouse_connect

        settings: dict[str, int | str] = dict(_SETTINGS)
        if cluster:
            # Joins and IN subqueries over Distributed tables combine tables sharded by different keys (events
            # by session, issues by issue): GLOBAL sends the subquery's result to every shard, always correct.
            settings["distributed_product_mode"] = "global"
        if self.is_chdb:
            path = urlparse(self.url).path
            return clickhouse_connect.get_client(dsn=f"chdb://{path}", database=database, settings=settings)
        parsed = urlparse(self.url)
        return clickhouse_connect.get_client(
            host=parsed.hostname or "localhost", port=parsed.port or (8443 if parsed.scheme == "https" else 8123),
            username=self.user or unquote(parsed.username or "") or "default",
            password=self.password or unquote(parsed.password or ""), database=database or "",
            secure=parsed.scheme == "https", settings=settings, autogenerate_session_id=False)


def _placeholder_type(value: Any) -> str:
    match value:
        case bool():
            return "Bool"
        case int():
            return "Int64"
        case float():
            return "Float64"
        case datetime():
            return "DateTime64(3, 'UTC')"
        case list() | tuple():
            return f"Array({_placeholder_type(value[0]) if value else 'String'})"
    return "String"


@functools.lru_cache(maxsize=64)
def _data_type(name: str) -> exp.DataType:
    """Parsed once per type (parsing it cost ~0.1 ms a placeholder: a live read of 75 batches binds 300); callers
    copy it into their tree."""
    return exp.DataType.build(name, dialect="clickhouse")


def _now_ms() -> int:
    return int(time.time() * 1000)


class ClickHouseStore:
    """Implements `store.base.Store` on ClickHouse."""

    dialect = "clickhouse"
    single_writer = False  # other processes may write the same sessions: session tails are read fresh
    narrow_pages = True  # summaries fold on read: find a page by its sort keys first, then read those rows

    def __init__(self, connection: Connection, cluster: str | None = None) -> None:
        self.connection = connection
        self.layout = Layout(connection.database, cluster)
        self._local = threading.local()
        self._shared = SimpleNamespace(client=None)
        self._connect_lock = threading.Lock()
        self._pruned_at = 0.0  # when the writer last pruned replaced_batches (time.monotonic)
        try:
            self.layout.statements()  # a database or cluster name that is no identifier fails here, not in DDL
            self._migrate()
        except Exception as exc:
            if isinstance(exc, ValueError) or exc.__class__.__module__.startswith("clickhouse_connect"):
                raise StoreUnavailable(f"cannot use ClickHouse at {redact_url(connection.url)}: {exc}") from exc
            raise

    # -- connections ---------------------------------------------------------------------------------------

    def _client(self) -> Any:
        """One client per thread for a server (an HTTP client runs one query at a time); one shared client for
        in-process chDB, which serialises queries itself and is slow to connect."""
        holder = self._holder()
        client = getattr(holder, "client", None)
        if client is None:
            with self._connect_lock:
                client = getattr(holder, "client", None)
                if client is None:
                    client = self.connection.client(self.connection.database, self.layout.cluster)
                holder.client = client
        return client

    def _holder(self) -> Any:
        """Where the client lives: this thread's slot for a server, the store's one slot for chDB."""
        return self._shared if self.connection.is_chdb else self._local

    def _migrate(self) -> None:
        bootstrap = self.connection.client(None)
        try:
            bootstrap.command(self.layout.statements()[0])
        finally:
            bootstrap.close()
        client = self._client()
        exists = client.query("EXISTS TABLE schema_version").result_rows[0][0]
        current = client.query("SELECT max(version) FROM schema_version").result_rows[0][0] if exists else 0
        if current and current > SCHEMA_VERSION:
            raise StoreUnavailable(f"the ClickHouse database {self.connection.database} has schema version "
                                   f"{current}, newer than this replayql ({SCHEMA_VERSION}); upgrade replayql")
        if current == SCHEMA_VERSION:
            return
        for statement in self.layout.statements()[1:] if not current else self._upgrades(current):
            client.command(statement)
        client.insert("schema_version", [[SCHEMA_VERSION, datetime.now()]], column_names=["version", "applied_at"])

    def _upgrades(self, current: int) -> list[str]:
        """From an older schema version to this one: the new tables; from before 6, the views and summaries made
        anew and filled from the per-batch rows stored so far, then their views start; from before 7, the events
        copied into a table ordered by kind; from before 5, replaced_batches filled with the batches whose events
        are stored twice so far. Run it with no other server writing (see README, Upgrading)."""
        layout = self.layout
        steps = layout.ttl_removals(self._with_ttl()) if current < 2 else []
        if current < 3:
            steps += layout.written_column()
        if current < 6:
            steps += [*layout.view_drops(), *layout.table_statements(), *layout.summary_statements(),
                      *layout.backfills(), *layout.summary_merges(), *layout.view_statements(),
                      *layout.merged_view_statements()]
        else:
            steps += layout.table_statements()
        if current < 7:
            steps += layout.events_rebuild()
        if current < 5:
            steps += layout.replaced_scan()
        elif current < 8:
            steps += layout.replaced_scan(("recordings",))
        if current < 8:
            steps += layout.ledger_upgrade()
        return steps

    def _with_ttl(self) -> list[str]:
        """The tables (by logical name) whose local table has a table TTL."""
        rows = self._client().query(
            "SELECT name FROM system.tables WHERE database = {db:String} AND engine_full LIKE '% TTL %'",
            parameters={"db": self.connection.database}).result_rows
        local = {r[0].removesuffix("_local") if self.layout.cluster else r[0] for r in rows}
        return [name for name in TABLE_NAMES if name in local]

    def close(self) -> None:
        holder = self._holder()
        client = getattr(holder, "client", None)
        if client is not None:
            client.close()
            holder.client = None

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        return {}  # every read goes to ClickHouse

    def ping(self) -> bool:
        """The database answers a read of its own schema (not just any query)."""
        return len(self._client().query("SELECT version FROM schema_version LIMIT 1").result_rows) == 1

    def storage_size(self, timeout_s: float) -> StorageSize:
        """The active parts of this node's tables (on a cluster, the `_local` ones): compressed bytes on disk,
        and rows as written (rows that replace others count until a merge folds them)."""
        rows = self.fetch_dicts("SELECT table, sum(bytes_on_disk) AS bytes, sum(rows) AS rows FROM system.parts "
                                "WHERE database = {db:String} AND active GROUP BY table",
                                {"db": self.connection.database}, timeout_s)
        return StorageSize(sum(int(r["bytes"]) for r in rows), {r["table"]: int(r["rows"]) for r in rows})

    # -- query support -------------------------------------------------------------------------------------

    def placeholder(self, name: str, value: Any) -> exp.Placeholder:
        return exp.Placeholder(this=name, kind=_data_type(_placeholder_type(value)).copy())

    def relation(self, table: str, alias: str, scope: ReadScope) -> exp.Expr:
        match table:
            case "sessions" if scope.only is not None and scope.only[0] == "user_id":
                # a user's sessions: those session_users names for the user, merged by primary key (the caller
                # still asks which user each is now)
                return exp.Subquery(this=self._sessions_of_users(scope.app, scope.only[1], self._sessions(scope, "s")),
                                    alias=exp.to_identifier(alias))
            case "sessions":
                return self._sessions(scope, alias)
            case "users" | "issues":
                # a view that reads the summary FINAL: the caller's app guard and `only` filter are on its sorting
                # key, and ClickHouse reads them first (by primary key)
                return exp.to_table(MERGED_VIEWS[table]).as_(alias)
            case "events" | "recordings":
                return self._as_stored(table, alias, scope)
            case "issue_sessions":
                # from the per-batch rows of issues, keyed by issue: a lookup, not a scan of the events
                pairs = exp.select("app_id", "issue_id", "session_id").from_("issue_batches")
                return exp.Subquery(this=pairs, alias=exp.to_identifier(alias))
            case _:
                return exp.Final(this=exp.to_table(table).as_(alias))

    def _as_stored(self, table: str, alias: str, scope: ReadScope) -> exp.Expr:
        """Events or recordings as stored, without FINAL (which costs 2-5 times the read over millions of rows,
        and reads every recording in the granules it touches): a row is stored twice only by the batches in
        replaced_batches, so only their sessions are read FINAL."""
        final = exp.select("*").from_(exp.Final(this=exp.to_table(table)))
        return self._apart(scope, alias, "replaced_batches", exp.to_table(table), final)

    def _sessions(self, scope: ReadScope, alias: str) -> exp.Expr:
        """The merged sessions with their plain sums, except those noted to recount (a batch of theirs may count
        twice in them), whose sums are added up from the map keyed by batch: the view, when none is noted."""
        mapped = merged_sessions(SESSIONS, exp.to_table(SESSIONS.name), mapped=True)
        return self._apart(scope, alias, "sessions_to_recount", exp.to_table(MERGED_VIEWS["sessions"]), mapped)

    def _apart(self, scope: ReadScope, alias: str, noted_in: str, usual: exp.Table, noted: exp.Select) -> exp.Expr:
        """`usual`, except for the app's sessions listed in `noted_in`, which `noted` reads: the table itself when
        none is listed (one small read first), else a UNION ALL of the two."""
        listed_ids: list[str] | None = scope.memo.get(noted_in)
        if listed_ids is None:  # read once for all the reads of one query (a live read's events and recordings)
            listing = exp.select("session_id").distinct().from_(noted_in).where(
                exp.column("app_id").eq(self.placeholder("app", scope.app_id)))
            listed_ids = scope.memo[noted_in] = [row[0] for row in self._rows(sql(listing, "clickhouse"),
                                                                              app=scope.app_id)]
        if not listed_ids:
            return usual.as_(alias)
        listed = exp.func("has", scope.bind(sorted(listed_ids)), exp.column("session_id"))
        guard = exp.column("app_id").eq(scope.app)
        rest = exp.select("*").from_(usual).where(guard, exp.not_(listed))
        return exp.Subquery(this=exp.union(rest, noted.where(guard.copy(), listed.copy()), distinct=False),
                            alias=exp.to_identifier(alias))

    def _sessions_of_users(self, app: exp.Expression, users: Sequence[exp.Expr], sessions: exp.Expr | None = None
                           ) -> exp.Select:
        """The sessions identified as these users (from `sessions`: by default the view, for reads of columns other
        than the sums)."""
        identified = exp.select("session_id").from_("session_users").where(
            exp.column("app_id").eq(app.copy()), exp.column("user_id").isin(*(u.copy() for u in users)))
        return exp.select("*").from_(sessions or exp.to_table(MERGED_VIEWS["sessions"])).where(
            exp.column("app_id").eq(app.copy()), exp.column("session_id").isin(query=identified))

    def fetch_dicts(self, query: str, params: dict[str, Any], timeout_s: float | None = None
                    ) -> list[dict[str, Any]]:
        settings = {} if timeout_s is None else {"max_execution_time": timeout_s, "timeout_overflow_mode": "throw"}
        try:
            return list(self._client().query(query, parameters=params, settings=settings).named_results())
        except Exception as err:  # clickhouse-connect is an optional extra: its classes are not imported here
            if _TIMEOUT_CODE in str(err):
                raise StoreTimeout(f"the query ran longer than {timeout_s} s and was stopped") from None
            raise

    def recording_payload(self, stored: Any) -> bytes:
        return stored.encode() if isinstance(stored, str) else bytes(stored)

    def _rows(self, sql: str, **params: Any) -> list[tuple[Any, ...]]:
        return self.fetch_rows(sql, params)

    def fetch_rows(self, sql: str, params: dict[str, Any] | None = None) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self._client().query(sql, parameters=params or {}).result_rows
        return rows

    def insert_rows(self, table: str, rows: Any) -> None:
        """Append an Arrow table of rows (the registry and the write path share this)."""
        self._client().insert_arrow(table, rows)

    # -- the write path ------------------------------------------------------------------------------------

    def seen_batches(self, keys: Sequence[BatchKey]) -> set[BatchKey]:
        seen: set[BatchKey] = set()
        for app_id, session_ids in _by_app((a, s) for a, s, _ in keys).items():
            rows = self._rows("SELECT session_id, seq FROM batches FINAL WHERE app_id = {app:String} "
                              "AND has({ids:Array(String)}, session_id)", app=app_id, ids=session_ids)
            seen.update((app_id, sid, int(seq)) for sid, seq in rows)
        return seen & set(keys)

    def session_states(self, app_id: str, session_ids: Sequence[str]) -> dict[str, SessionState]:
        scope_app = self.placeholder("app", app_id)
        wanted = exp.func("has", self.placeholder("ids", list(session_ids)), exp.column("session_id"))
        query = exp.select("session_id", "user_id", "tail").from_(MERGED_VIEWS["sessions"]).where(
            exp.column("app_id").eq(scope_app), wanted)
        rows = self._rows(sql(query, "clickhouse"), app=app_id, ids=list(session_ids))
        return {sid: SessionState(user_id, tail) for sid, user_id, tail in rows}

    def deleted_among(self, app_id: str, session_ids: Sequence[str], user_ids: Sequence[str]
                      ) -> tuple[set[str], set[str]]:
        sessions = self._rows("SELECT session_id FROM deleted_sessions FINAL WHERE app_id = {app:String} "
                              "AND has({ids:Array(String)}, session_id)", app=app_id, ids=list(session_ids))
        users = self._rows("SELECT user_id FROM deleted_users FINAL WHERE app_id = {app:String} "
                           "AND has({ids:Array(String)}, user_id)", app=app_id, ids=list(user_ids))
        return {r[0] for r in sessions}, {r[0] for r in users}

    def write(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None:
        """Append everything the batches carry, the session rows first and the ledger last. A batch whose try
        failed half-way is not in the ledger, so its retry writes it again; a try that wrote no session row wrote
        nothing else (the retry's tail does not say the batch is stored), and a resumed batch writes only the rows
        its earlier try did not, so no event is stored twice by a retry. The per-batch rows of summaries that the
        failed try wrote are kept (they were made from the right tail), and what that try's views may or may not
        have folded is summarised again from the rows."""
        client = self._client()
        written = self._written([w for w in writes if w.resumed])
        sessions = [(n, w) for n, w in enumerate(writes) if w.key not in written.sessions]
        if sessions:
            rows = records_to_table([w.session for _, w in sessions], _SESSION_DELTA_COLUMNS)
            rows = rows.append_column("seq", _int32([w.seq for _, w in sessions]))
            client.insert_arrow("session_batches", rows.append_column(
                "written", _int64([received_at_ms * 10_000 + n for n, _ in sessions])))
        events = [e for w in writes for e in w.events if (w.app_id, w.session_id, e.seq, e.idx) not in written.events]
        if events:
            client.insert_arrow("events", records_to_table(events, schema.EVENT_TYPES.items()))
        recordings = [w.recording for w in writes if w.recording is not None and w.key not in written.recordings]
        if recordings:
            client.insert_arrow("recordings", records_to_table(recordings, schema.RECORDING_COLUMNS))
        self._write_users([w for w in writes if w.key not in written.users], received_at_ms)
        self._write_issues([w for w in writes if w.key not in written.issues], received_at_ms)
        self._summarise_retries(writes, written)
        ledger = [(w.app_id, w.session_id, w.seq, received_at_ms, *w.events_span_ms(received_at_ms)) for w in writes]
        client.insert_arrow("batches", rows_to_table(ledger, columns_of("batches")))
        self._note_replaced(writes, received_at_ms)

    def _written(self, writes: Sequence[BatchWrite]) -> _Written:
        """What an earlier try of these resumed batches wrote before it failed (one query for every table; none
        when no batch resumes)."""
        found = _Written()
        for app_id, (session_ids, seqs) in _batches_by_app(writes).items():
            rows = self._rows(" UNION ALL ".join(
                f"SELECT '{table}' AS t, session_id, seq, {idx} AS idx FROM {table} WHERE app_id = {{app:String}} "
                "AND has({ids:Array(String)}, session_id) AND has({seqs:Array(Int32)}, seq)"
                for table, (idx, _) in _RESUMABLE.items()), app=app_id, ids=session_ids, seqs=seqs)
            for table, session_id, seq, idx in rows:
                found.add(table, (app_id, session_id, int(seq)), int(idx))
        return found

    def _note_replaced(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None:
        """After the ledger: a batch with two ledger rows was written by two servers at once (each asked the
        ledger before the other wrote it), so its events may be stored twice until a merge replaces one copy.
        Both ask after writing, so the later one sees both rows and notes the batch: its session's events are
        read FINAL from then on."""
        replaced: list[tuple[str, str, int, int]] = []
        wrote = {w.key for w in writes}
        for app_id, (session_ids, seqs) in _batches_by_app(writes).items():
            rows = self._rows("SELECT session_id, seq FROM batches WHERE app_id = {app:String} "
                              "AND has({ids:Array(String)}, session_id) AND has({seqs:Array(Int32)}, seq) "
                              "GROUP BY session_id, seq HAVING count() > 1", app=app_id, ids=session_ids, seqs=seqs)
            replaced.extend((app_id, sid, int(seq), received_at_ms) for sid, seq in rows
                            if (app_id, sid, int(seq)) in wrote)
        if replaced:
            self._client().insert_arrow("replaced_batches", rows_to_table(replaced, columns_of("replaced_batches")))
            for app_id, session_ids in _by_app((app, sid) for app, sid, _, _ in replaced).items():
                self._note_recount(app_id, sorted(set(session_ids)))  # each server's view folded the batch
        if time.monotonic() - self._pruned_at > _PRUNE_INTERVAL_S:
            self._pruned_at = time.monotonic()
            self.prune_replaced()
            self.recount_sessions()

    def _note_recount(self, app_id: str, session_ids: list[str]) -> None:
        """Note sessions whose plain sums may count a batch twice (stamped by the database's clock, which the
        recount also reads)."""
        if session_ids:
            self._client().command("INSERT INTO sessions_to_recount SELECT {app:String}, "
                                   "arrayJoin({ids:Array(String)}), now64(3)", parameters={"app": app_id,
                                                                                         "ids": session_ids})

    def recount_sessions(self) -> None:
        """Correct the plain sums of the sessions noted to recount that differ from their map's, and forget the
        notes of those found right. A corrected session stays noted until a later recount finds it right: two
        servers correcting it at once correct it twice, and the next recount corrects that."""
        noted = self._rows("SELECT DISTINCT app_id, session_id FROM sessions_to_recount LIMIT {n:UInt32}",
                           n=_PRUNE_BATCHES)
        for app_id, session_ids in _by_app(noted).items():
            ids = sorted(set(session_ids))
            found = self._of_sessions("session_id", app_id, ids)
            check = exp.select("session_id", SESSIONS.miscounted()).from_(exp.Final(this=exp.to_table(SESSIONS.name)))
            checked_at = int(self._rows("SELECT toUnixTimestamp64Milli(now64(3))")[0][0])
            wrong = {sid for sid, miscounted in self._rows(sql(check.where(found), "clickhouse"), app=app_id, ids=ids)
                     if miscounted}
            if wrong:
                correction = SESSIONS.correction(exp.to_table(SESSIONS.name)).where(
                    self._of_sessions("session_id", app_id, sorted(wrong)))
                columns = [e.alias_or_name for e in correction.expressions]
                insert = exp.insert(correction, SESSIONS.name, columns=columns)
                self._client().command(sql(insert, "clickhouse"), parameters={"app": app_id, "ids": sorted(wrong)})
            right = [sid for sid in ids if sid not in wrong]  # no summary (deleted) is right too
            if right:
                condition = exp.and_(self._of_sessions("session_id", app_id, right),
                                     exp.func("toUnixTimestamp64Milli", exp.column("noted_at"))
                                     <= self.placeholder("checked", checked_at))
                self._delete_where("sessions_to_recount", condition, {"app": app_id, "ids": right,
                                                                      "checked": checked_at})

    def prune_replaced(self) -> None:
        """Forget the replaced batches whose copies a merge has replaced since, so their sessions are read as
        stored again. A batch in the ledger is never written twice again, so a batch found once stays so."""
        noted = self._rows("SELECT DISTINCT app_id, session_id, seq FROM replaced_batches LIMIT {n:UInt32}",
                           n=_PRUNE_BATCHES)
        for app_id, session_ids in _by_app((app, sid) for app, sid, _ in noted).items():
            ids = sorted(set(session_ids))
            twice = {(sid, int(seq)) for name in STORED_ONCE for _, sid, seq in self._rows(
                sql(stored_twice(name).where(self._of_sessions("session_id", app_id, ids)), "clickhouse"),
                app=app_id, ids=ids)}
            once = [f"{sid}:{seq}" for app, sid, seq in noted if app == app_id and (sid, int(seq)) not in twice]
            if once:  # "session:seq" is unambiguous: seq is the digits after the last colon
                batch = exp.func("concat", exp.column("session_id"), exp.Literal.string(":"),
                                 exp.func("toString", exp.column("seq")))
                condition = exp.and_(exp.column("app_id").eq(self.placeholder("app", app_id)),
                                     exp.func("has", self.placeholder("keys", once), batch))
                self._delete_where("replaced_batches", condition, {"app": app_id, "keys": once})

    def _summarise_retries(self, writes: Sequence[BatchWrite], written: _Written) -> None:
        """The sessions, users and issues of batches that a failed try had begun to write, summarised again: a
        process that died inside an insert may have stored the rows but not their view's values. Every rule is
        idempotent (the sums are keyed by batch), so the values of all their rows are added to what is there,
        with nothing deleted first: a process killed here loses nothing."""
        found = (written.sessions, written.users, written.issues)
        retried = [(w, tuple(w.key in keys for keys in found)) for w in writes]
        for app_id in {w.app_id for w, flags in retried if any(flags)}:
            of_app = [(w, flags) for w, flags in retried if w.app_id == app_id]
            sessions = sorted({w.session_id for w, f in of_app if f[0]})
            # noted before (their sums may count twice from here on) and after (a recount in between found them
            # right, and forgets only the notes made before it looked)
            self._note_recount(app_id, sessions)
            self._summarise(SESSIONS, app_id, sessions)
            self._note_recount(app_id, sessions)
            self._summarise(USERS, app_id, sorted({w.user.user_id for w, f in of_app if f[1] and w.user}))
            self._summarise(ISSUES, app_id, sorted({i.issue_id for w, f in of_app if f[2] for i in w.issues}))

    def _write_users(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None:
        batches, traits = [], []
        for n, w in enumerate(writes):
            if w.user is None:
                continue
            u, version = w.user, received_at_ms * 10_000 + n  # later batches of one group commit win
            batches.append((u.app_id, u.user_id, w.session_id, w.seq, version, u.name, u.email, u.seen_from,
                            u.seen_to, int(u.new_session)))
            traits.extend(_trait_rows(u.app_id, u.user_id, u.traits, version))
        if batches:
            self._client().insert_arrow("user_batches", rows_to_table(batches, columns_of("user_batches")))
        if traits:
            self._client().insert_arrow("user_traits", rows_to_table(traits, columns_of("user_traits")))

    def _write_issues(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None:
        rows = [(i.app_id, i.issue_id, w.session_id, w.seq, i.title, i.error_type, i.message, i.stack, i.first_seen,
                 i.last_seen, i.count, received_at_ms) for w in writes for i in w.issues]
        if rows:
            self._client().insert_arrow("issue_batches", rows_to_table(rows, columns_of("issue_batches")))

    # -- mutations -----------------------------------------------------------------------------------------

    def delete_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts:
        ids = list(session_ids)
        counts = self._counts(app_id, ids)
        now = _now_ms()
        self._client().insert_arrow("deleted_sessions", rows_to_table([(app_id, s, now) for s in ids],
                                                                      columns_of("deleted_sessions")))
        self._delete_session_rows(app_id, ids, _SESSION_TABLES)
        return counts

    def _delete_session_rows(self, app_id: str, ids: list[str], tables: Sequence[str]) -> tuple[list[str], list[str]]:
        """Delete these sessions' rows from `tables`, and their summaries; the users and issues they touched
        are summarised again from the rows that remain. Returns those users and issues."""
        users = self._of("user_batches", "user_id", app_id, ids)
        issues = self._of("issue_batches", "issue_id", app_id, ids)
        for table in tables:
            self._delete(table, "session_id", app_id, ids)
        self._delete(SESSIONS.name, "session_id", app_id, ids)
        self._summarise_again(USERS, app_id, users)
        self._summarise_again(ISSUES, app_id, issues)
        return users, issues

    def _summarise_again(self, summary: SummaryTable, app_id: str, keys: list[str]) -> None:
        """Replace the values of these keys by those of their remaining per-batch rows (after a deletion: a
        value cannot take a row back out). A batch of theirs written meanwhile counts once (its rows are read
        here, and its view's values are idempotent); a process killed between the delete and the insert leaves
        these keys without a summary until they are summarised again."""
        if keys:
            self._delete(summary.name, summary.keys[1], app_id, keys)
            self._summarise(summary, app_id, keys)

    def _summarise(self, summary: SummaryTable, app_id: str, keys: list[str]) -> None:
        """Add the values of these keys' per-batch rows to their summary."""
        if not keys:
            return
        where = f"app_id = {{app:String}} AND has({{ids:Array(String)}}, {summary.keys[1]})"
        self._client().command(f"INSERT INTO {summary.name} "
                               f"{summary.select_states(summary.source.name + ' FINAL', where)}",
                               parameters={"app": app_id, "ids": keys})

    def _counts(self, app_id: str, ids: list[str]) -> DeletionCounts:
        return DeletionCounts(
            sessions=self._count("session_batches", exp.Count(this=exp.Distinct(
                expressions=[exp.column("session_id")])), app_id, ids),
            events=self._count("events", exp.Count(this=exp.Star()), app_id, ids),
            recordings=self._count("recordings", exp.Count(this=exp.Star()), app_id, ids), session_ids=ids)

    def expired_sessions(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        last_activity = exp.Max(this=exp.column("ended_at"))
        query = exp.select("app_id", "session_id").from_(SESSIONS.name).group_by(
            "app_id", "session_id").having(is_expired(last_activity, self.placeholder("cutoff", cutoff))).order_by(
            last_activity.copy()).limit(limit)
        return [(app, sid) for app, sid in self._rows(sql(query, "clickhouse"), cutoff=cutoff)]

    def purge_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts:
        """Also the ledger rows (a later batch starts the session anew, as on DuckDB, whose ledger is in the
        session row); users and issues fold from what remains, and those with nothing left lose their traits
        and status too."""
        ids = list(session_ids)
        counts = self._counts(app_id, ids)
        users, issues = self._delete_session_rows(app_id, ids, (*_SESSION_TABLES, "batches"))
        with_sessions = exp.GTE(this=exp.column("seq"), expression=exp.Literal.number(0))  # not the API's rows
        gone_users = sorted(set(users) - set(self._of("user_batches", "user_id", app_id, users, "user_id",
                                                      with_sessions)))
        for table in ("user_batches", "user_traits", USERS.name):
            self._delete(table, "user_id", app_id, gone_users)
        gone_issues = sorted(set(issues) - set(self._of("issue_batches", "issue_id", app_id, issues, "issue_id")))
        self._delete("issue_status", "issue_id", app_id, gone_issues)
        counts.users = len(gone_users)
        return counts

    def _of(self, table: str, column: str, app_id: str, values: list[str], key: str = "session_id",
            also: exp.Expression | None = None) -> list[str]:
        """Distinct `column` of the rows of `table` whose `key` is one of `values` (and `also` holds)."""
        if not values:
            return []
        where = self._of_sessions(key, app_id, values)
        query = exp.select(exp.Distinct(expressions=[exp.column(column)])).from_(_final(table)).where(
            where if also is None else exp.and_(where, also))
        return [r[0] for r in self._rows(sql(query, "clickhouse"), app=app_id, ids=values)]

    def delete_user(self, app_id: str, user_id: str) -> DeletionCounts:
        self._client().insert_arrow("deleted_users", rows_to_table([(app_id, user_id, _now_ms())],
                                                                   columns_of("deleted_users")))
        sessions = self.session_ids_of_user(app_id, user_id)
        existed = self._rows("SELECT count() FROM user_batches FINAL WHERE app_id = {app:String} "
                             "AND user_id = {user:String}", app=app_id, user=user_id)[0][0]
        counts = self.delete_sessions(app_id, sessions)
        for table in ("user_batches", "user_traits", USERS.name):
            self._delete(table, "user_id", app_id, [user_id])
        counts.users = 1 if existed else 0
        return counts

    def session_ids_of_user(self, app_id: str, user_id: str) -> list[str]:
        user = self.placeholder("user", user_id)
        query = exp.select("session_id").from_(exp.Subquery(
            this=self._sessions_of_users(self.placeholder("app", app_id), [user]), alias="s")).where(
            exp.column("user_id").eq(user.copy()))
        return [r[0] for r in self._rows(sql(query, "clickhouse"), app=app_id, user=user_id)]

    def _count(self, table: str, measure: exp.Expression, app_id: str, session_ids: list[str]) -> int:
        query = exp.select(measure).from_(_final(table)).where(self._of_sessions("session_id", app_id, session_ids))
        return int(self._rows(sql(query, "clickhouse"), app=app_id, ids=session_ids)[0][0])

    def _of_sessions(self, column: str, app_id: str, values: list[str]) -> exp.Expr:
        """app_id = {app} AND has({ids}, column): the rows of these sessions (or users) of one app."""
        return exp.and_(exp.column("app_id").eq(self.placeholder("app", app_id)),
                        exp.func("has", self.placeholder("ids", values), exp.column(column)))

    def _delete(self, table: str, column: str, app_id: str, values: list[str]) -> None:
        """Lightweight deletes are synchronous: once this returns, the rows answer no query."""
        if values:
            self._delete_where(table, self._of_sessions(column, app_id, values), {"app": app_id, "ids": values})

    def _delete_where(self, table: str, condition: exp.Expr, params: dict[str, Any]) -> None:
        if self.layout.cluster:
            # Distributed tables take no DELETE: mutate the local tables on every shard, and wait for them.
            statement = " ".join(("ALTER TABLE", self.layout.local_table(table), "ON CLUSTER",
                                  self.layout.cluster_name(), "DELETE WHERE", sql(condition, "clickhouse"),
                                  "SETTINGS mutations_sync = 2"))
        else:
            statement = sql(exp.delete(table, where=condition), "clickhouse")
        self._client().command(statement, parameters=params)

    def identify_user(self, app_id: str, user_id: str, name: str | None, email: str | None,
                      traits: dict[str, Any]) -> None:
        now = _now_ms()
        version = now * 10_000
        known, first_ms = self._rows("SELECT count(), toUnixTimestamp64Milli(min(seen_from)) FROM user_batches "
                                     "FINAL WHERE app_id = {app:String} AND user_id = {user:String}",
                                     app=app_id, user=user_id)[0]
        # A new user is first and last seen now; an existing one keeps the times its sessions give it: the row
        # repeats its first time (seen_from/seen_to are NOT NULL; a None would be stored as 1970 and win min()).
        seen = (now, now) if not known else (first_ms, first_ms)
        # seq -1 marks a row that came from the API, not from a session batch: it counts no session
        row = (app_id, user_id, f"api:{version}", -1, version, name, email, *seen, 0)
        self._client().insert_arrow("user_batches", rows_to_table([row], columns_of("user_batches")))
        rows = _trait_rows(app_id, user_id, traits, version)
        if rows:
            self._client().insert_arrow("user_traits", rows_to_table(rows, columns_of("user_traits")))

    def set_issue_status(self, app_id: str, issue_id: str, status: str) -> bool:
        found = self._rows("SELECT count() FROM issue_batches FINAL WHERE app_id = {app:String} "
                           "AND issue_id = {issue:String}", app=app_id, issue=issue_id)[0][0]
        if not found:
            return False
        self._client().insert_arrow("issue_status", rows_to_table([(app_id, issue_id, status, _now_ms())],
                                                                  columns_of("issue_status")))
        return True

    def changes_since(self, cursor: ChangeCursor | None) -> tuple[list[Change], ChangeCursor]:
        """Read by time from the ledger (written last for each batch) and the status rows, by any server: no FINAL,
        a retry's second row is skipped by its key (store.changes.read_by_time)."""
        def read(since_ms: int) -> list[tuple[Change, int]]:
            batches = self._rows("SELECT app_id, session_id, seq, toUnixTimestamp64Milli(received_at), "
                                 "toUnixTimestamp64Milli(first_ts), toUnixTimestamp64Milli(last_ts) FROM batches "
                                 "WHERE received_at >= fromUnixTimestamp64Milli({since:Int64})", since=since_ms)
            statuses = self._rows("SELECT app_id, issue_id, status, toUnixTimestamp64Milli(changed_at) FROM "
                                  "issue_status WHERE changed_at >= fromUnixTimestamp64Milli({since:Int64})",
                                  since=since_ms)
            found: list[tuple[Change, int]] = [
                (BatchStored(a, s, int(q), int(at), None if first is None else (int(first), int(last))), int(at))
                for a, s, q, at, first, last in batches]
            found += [(IssueStatusSet(a, i, st, int(at)), int(at)) for a, i, st, at in statuses]
            return found
        return read_by_time(read, cursor, _now_ms())


# The tables whose rows belong to one session (a deletion removes its rows from each).
_SESSION_TABLES = ("events", "recordings", "session_batches", "session_users", "issue_batches", "user_batches",
                   "replaced_batches", "sessions_to_recount")
# The tables a resumed batch may have rows in already: the column that tells its rows apart (events: idx), and
# where _Written keeps what was found.
_RESUMABLE = {"session_batches": ("0", "sessions"), "user_batches": ("0", "users"), "issue_batches": ("0", "issues"),
              "recordings": ("0", "recordings"), "events": ("idx", "events")}


@dataclass
class _Written:
    """What an earlier try of resumed batches stored: batch keys per table, and (batch key, idx) of events."""

    sessions: set[BatchKey] = field(default_factory=set)
    users: set[BatchKey] = field(default_factory=set)
    issues: set[BatchKey] = field(default_factory=set)
    recordings: set[BatchKey] = field(default_factory=set)
    events: set[tuple[str, str, int, int]] = field(default_factory=set)

    def add(self, table: str, key: BatchKey, idx: int) -> None:
        if table == "events":
            self.events.add((*key, idx))
        else:
            getattr(self, _RESUMABLE[table][1]).add(key)


def _batches_by_app(writes: Sequence[BatchWrite]) -> dict[str, tuple[list[str], list[int]]]:
    """Per app, the session ids and seqs of these writes (a superset of their keys, for a lookup by has())."""
    return {app_id: (sorted(set(session_ids)), sorted({w.seq for w in writes if w.app_id == app_id}))
            for app_id, session_ids in _by_app((w.app_id, w.session_id) for w in writes).items()}
_SESSION_DELTA_COLUMNS = tuple((name, logical) for name, logical, _ in schema.SESSION_COLUMNS)


def _int32(values: list[int]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.int32())


def _int64(values: list[int]) -> Any:
    import pyarrow as pa

    return pa.array(values, type=pa.int64())


def _by_app(pairs: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for app_id, value in pairs:
        out.setdefault(app_id, []).append(value)
    return out


def _trait_rows(app_id: str, user_id: str, traits: dict[str, Any], version: int) -> list[tuple[Any, ...]]:
    """One row per trait; a None value is a row too: the newest row of a key decides, and None removes it."""
    return [(app_id, user_id, key, None if value is None else orjson.dumps(value).decode(), version)
            for key, value in traits.items()]


def _final(table: str) -> exp.Expression:
    return exp.Final(this=exp.to_table(table))
