"""The single writer's state: the idempotency ledger in the session tail, summaries merged in Python by the
declared rules, and the migration that moved DuckDB's ledger out of its `batches` table."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import msgspec
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlglot import exp

from conftest import T0, drop_location, make_batch, new_location, start_server
from replayql.api.app import close_services
from replayql.ingest.sessionize import SessionTail, load_tail
from replayql.store import schema
from replayql.store.arrow import records_to_table
from replayql.store.clickhouse_store import ClickHouseStore, Connection
from replayql.store.clickhouse_summaries import MERGED_VIEWS
from replayql.store.dialect import sql
from replayql.store.merge import merge_sessions
from replayql.store.records import SessionDelta

# -- the ledger ------------------------------------------------------------------------------------------------


def test_ledger_in_order_keeps_only_a_bound() -> None:
    tail = SessionTail()
    for seq in range(5):
        assert not tail.has_stored(seq)
        tail.mark_stored(seq)
    assert (tail.stored_below, tail.stored_above) == (5, [])
    assert tail.has_stored(0) and tail.has_stored(4) and not tail.has_stored(5)


def test_ledger_out_of_order_closes_the_gap() -> None:
    tail = SessionTail()
    for seq in (2, 0, 7):
        tail.mark_stored(seq)
    assert (tail.stored_below, tail.stored_above) == (1, [2, 7])
    assert [s for s in range(9) if tail.has_stored(s)] == [0, 2, 7]
    tail.mark_stored(1)
    assert (tail.stored_below, tail.stored_above) == (3, [7])
    tail.mark_stored(2)  # already stored: nothing changes
    assert (tail.stored_below, tail.stored_above) == (3, [7])


def test_ledger_round_trips_and_a_whole_list_is_compacted_on_load() -> None:
    tail = SessionTail()
    for seq in (0, 1, 4):
        tail.mark_stored(seq)
    again = load_tail(msgspec.json.encode(tail).decode())
    assert (again.stored_below, again.stored_above) == (2, [4])
    migrated = load_tail('{"page_url": "https://x.example/", "stored_above": [0, 1, 2, 5, 6]}')
    assert (migrated.stored_below, migrated.stored_above, migrated.page_url) == (3, [5, 6], "https://x.example/")
    assert load_tail(None).stored_below == 0


# -- summaries merged in Python ----------------------------------------------------------------------------------


def test_merge_follows_each_declared_rule() -> None:
    stored = SessionDelta("a", "s", 1_000, 5_000, active_ms=300, page_count=2, click_count=1, event_count=9,
                          first_page_at=1_200, initial_url="https://x.example/b", context_seq=0, browser="Chrome",
                          user_id="u1", lcp=2_000.0, has_recording=True, tail='{"old":1}')
    incoming = SessionDelta("a", "s", 900, 4_000, active_ms=50, page_count=1, event_count=3, first_page_at=950,
                            initial_url="https://x.example/a", context_seq=3, browser="Firefox", lcp=None,
                            cls=0.2, tail='{"new":1}')
    merged = merge_sessions(stored, incoming)
    assert (merged.started_at, merged.ended_at) == (900, 5_000)  # MIN, MAX
    assert (merged.active_ms, merged.page_count, merged.click_count, merged.event_count) == (350, 3, 1, 12)  # SUM
    assert (merged.first_page_at, merged.initial_url) == (950, "https://x.example/a")  # the earlier landing page
    assert (merged.context_seq, merged.browser) == (0, "Chrome")  # the lowest-seq context stays
    assert (merged.user_id, merged.tail) == ("u1", '{"new":1}')  # LATEST: a null does not erase
    assert (merged.lcp, merged.cls, merged.has_recording) == (2_000.0, 0.2, True)  # MAX ignores nulls
    assert stored.event_count == 9 and incoming.event_count == 3  # neither input changed


def _delta(seq: int, values: dict[str, Any], session: str = "s") -> SessionDelta:
    start = T0 + values["start"]
    delta = SessionDelta("a", session, start, start + values["length"], event_count=values["events"],
                         active_ms=values["active"], lcp=values["lcp"], user_id=values["user"],
                         has_recording=values["recording"], tail=f'{{"seq":{seq}}}')
    if values["page"] is not None:  # distinct keys: the SQL fold's first-by has no order among ties
        delta.first_page_at, delta.initial_url = T0 + values["page"] * 100 + seq, f"https://x.example/{seq}"
    if values["context"]:
        delta.context_seq, delta.browser = seq, f"Browser{seq}"
    return delta


_DELTAS = st.lists(st.fixed_dictionaries({
    "start": st.integers(0, 10_000), "length": st.integers(0, 5_000), "events": st.integers(0, 50),
    "active": st.integers(0, 9_000), "lcp": st.none() | st.floats(0, 9_000, allow_nan=False),
    "user": st.none() | st.sampled_from(["u1", "u2"]), "recording": st.booleans(),
    "page": st.none() | st.integers(0, 50), "context": st.booleans()}), min_size=1, max_size=8)


@pytest.fixture(scope="module")
def clickhouse(chdb_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClickHouseStore]:
    """A ClickHouse store (its real schema: per-batch rows, the summaries' views and states)."""
    location = new_location("clickhouse", tmp_path_factory.mktemp("merge-states"), chdb_path)
    assert location.clickhouse is not None
    store = ClickHouseStore(Connection(location.clickhouse.url))
    yield store
    store.close()
    drop_location(location)


_examples = itertools.count()


@settings(max_examples=40, deadline=None, database=None, derandomize=True)
@given(values=_DELTAS)
def test_python_merge_equals_the_clickhouse_summary_states(clickhouse: ClickHouseStore,
                                                          values: list[dict[str, Any]]) -> None:
    """Batches arriving in seq order: DuckDB's merge in Python and ClickHouse's summary (folded by its view at
    insert, merged when read), both generated from the one declaration, give the same session."""
    session = f"s{next(_examples)}"
    deltas = [_delta(seq, v, session) for seq, v in enumerate(values)]
    merged = deltas[0]
    for delta in deltas[1:]:
        merged = merge_sessions(merged, delta)
    columns = tuple((name, logical) for name, logical, _ in schema.SESSION_COLUMNS)
    for seq, delta in enumerate(deltas):  # one insert per batch, as the writer's commits come
        row = records_to_table([delta], columns).append_column("seq", pa.array([seq], pa.int32()))
        clickhouse.insert_rows("session_batches", row.append_column("written", pa.array([seq], pa.int64())))
    query = exp.select("*").from_(MERGED_VIEWS["sessions"]).where(
        exp.column("session_id").eq(exp.Literal.string(session)))
    [folded] = clickhouse.fetch_dicts(sql(query, "clickhouse"), {})
    for name, logical in columns:
        got = folded[name]
        if logical == schema.TIME and got is not None:
            got = int(got.timestamp() * 1000)
        assert got == getattr(merged, name), (name, got, getattr(merged, name))


# -- the migration of a version-1 DuckDB store ------------------------------------------------------------------


def _page(ts: int) -> dict[str, Any]:
    return {"type": "page", "ts": ts, "url": "https://x.example/"}


def test_a_version_1_store_keeps_its_ledger_through_the_migration(tmp_path: Path) -> None:
    batches = [make_batch("s-old", [_page(T0 + seq * 1_000)], seq=seq) for seq in (0, 1, 3)]
    server = start_server(tmp_path)
    try:
        for body in batches:
            assert server.ingest(body).json()["outcome"] == "stored"
    finally:
        close_services(server.services)
    _downgrade_to_version_1(tmp_path / "replayql.duckdb", [("demo", "s-old", seq) for seq in (0, 1, 3)])

    server = start_server(tmp_path)
    try:
        assert [server.ingest(body).json()["outcome"] for body in batches] == ["duplicate"] * 3
        assert server.ingest(make_batch("s-old", [_page(T0 + 2_000)], seq=2)).json()["outcome"] == "stored"
        assert server.ingest(make_batch("s-old", [_page(T0 + 2_000)], seq=2)).json()["outcome"] == "duplicate"
        session = server.data('{ session(id: "s-old") { eventCount } }')["session"]
        assert session == {"eventCount": 4}
    finally:
        close_services(server.services)
    conn = duckdb.connect(str(tmp_path / "replayql.duckdb"))
    tables = {row[0] for row in conn.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    assert "batches" not in tables
    assert conn.execute("SELECT max(version) FROM schema_version").fetchone() == (schema.SCHEMA_VERSION,)
    conn.close()


def _downgrade_to_version_1(path: Path, ledger: list[tuple[str, str, int]]) -> None:
    """What version 1 kept: the ledger in a `batches` table, tails without one."""
    conn = duckdb.connect(str(path))
    conn.execute("CREATE TABLE batches (app_id VARCHAR, session_id VARCHAR, seq INTEGER, received_at TIMESTAMP, "
                 "PRIMARY KEY (app_id, session_id, seq))")
    conn.executemany("INSERT INTO batches VALUES (?, ?, ?, now())", ledger)
    for app_id, session_id, tail in conn.execute("SELECT app_id, session_id, tail FROM sessions").fetchall():
        old = {k: v for k, v in orjson.loads(tail).items() if k not in ("stored_below", "stored_above")}
        conn.execute("UPDATE sessions SET tail = ? WHERE app_id = ? AND session_id = ?",
                     [orjson.dumps(old).decode(), app_id, session_id])
    conn.execute("DELETE FROM schema_version")
    conn.execute("INSERT INTO schema_version VALUES (1)")
    conn.close()


# -- DuckDB's memory --------------------------------------------------------------------------------------------


def test_the_server_limits_duckdb_memory(tmp_path: Path) -> None:
    """DuckDB's default (80% of the machine) would let the server grow with the store; 512 MB = 488.2 MiB."""
    default, chosen = start_server(tmp_path / "default"), start_server(tmp_path / "chosen", duckdb_memory_limit="300MB")
    try:
        ask = "SELECT current_setting('memory_limit')"
        assert default.services.store.fetch(ask) == [("488.2 MiB",)]  # type: ignore[attr-defined]
        assert chosen.services.store.fetch(ask) == [("286.1 MiB",)]  # type: ignore[attr-defined]
    finally:
        close_services(default.services)
        close_services(chosen.services)
