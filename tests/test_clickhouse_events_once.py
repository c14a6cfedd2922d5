"""ClickHouse reads events as stored, without FINAL: each event must be stored once, or its session read FINAL.

A row is stored twice only when a batch is written twice. A retry after a try that died half-way is resumed: it
writes only the rows the first try did not. Two servers writing one batch at once (each asked the ledger before
the other wrote it) both store it; the later one to ask the ledger afterwards notes the batch in replaced_batches,
and reads take FINAL for its session only. Expected counts come from the batches below, by construction.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from conftest import T0, Location, Server, drop_location, make_batch, new_location, start_server
from replayql.api.app import close_services
from replayql.config import IngestLimits
from replayql.ingest.importer import import_batches
from replayql.ingest.sessionize import SessionizeOptions, SessionTail, sessionize
from replayql.ingest.wire import decode_batch
from replayql.store.records import BatchWrite

EVENTS_PER_BATCH = 6  # a page, four clicks 3 s apart, an error: no rage, dead or error click can be derived
COUNTS = "{ sessions { nodes { id eventCount clickCount } } events { totalCount } issues { nodes { count } } }"
# s-a's three batches hold 18 events, s-b's one 6: counted twice, s-b would match too
SUMS_FILTERED = '{ sessions(query: "eventCount >= 12 AND eventCount <= 18") { nodes { id } } }'


def batch(session_id: str, seq: int) -> dict[str, Any]:
    t = T0 + seq * 60_000
    return make_batch(session_id, [
        {"type": "page", "ts": t, "url": f"https://shop.example/{seq}"},
        *({"type": "click", "ts": t + 3_000 * (n + 1), "selector": f"button#b{n}"} for n in range(4)),
        {"type": "error", "ts": t + 20_000, "errorType": "TypeError", "message": "x is undefined",
         "stack": "TypeError: x is undefined\n    at run (https://shop.example/app.js:1:1)"}], seq=seq)


def expected(sessions: dict[str, int]) -> dict[str, Any]:
    """The answers to COUNTS for these sessions and their number of batches, each stored once."""
    return {"sessions": {"nodes": [{"id": sid, "eventCount": n * EVENTS_PER_BATCH, "clickCount": n * 4}
                                   for sid, n in sorted(sessions.items(), reverse=True)]},
            "events": {"totalCount": sum(sessions.values()) * EVENTS_PER_BATCH},
            "issues": {"nodes": [{"count": sum(sessions.values())}]}}


def store_one(server: Server, body: dict[str, Any]) -> None:
    services = server.services
    report = import_batches([orjson.dumps(body)], services.writer, lambda app: True, server.settings.limits)
    assert (report.stored, report.rejected) == (1, [])


def stored_rows(server: Server, session_id: str, seq: int | None = None, table: str = "events") -> int:
    """Rows as stored, copies included (no FINAL)."""
    where = "" if seq is None else f" AND seq = {seq}"
    return int(server.services.store.fetch_rows(
        f"SELECT count() FROM {table} WHERE session_id = {{sid:String}}{where}", {"sid": session_id})[0][0])


def replaced(server: Server) -> list[tuple[str, int]]:
    rows = server.services.store.fetch_rows("SELECT session_id, seq FROM replaced_batches ORDER BY session_id, seq")
    return [(sid, int(seq)) for sid, seq in rows]


@pytest.fixture
def location(tmp_path: Path, chdb_path: Path) -> Iterator[Location]:
    made = new_location("clickhouse", tmp_path, chdb_path)
    yield made
    drop_location(made)


@pytest.fixture
def server(location: Location) -> Iterator[Server]:
    running = start_server(location)
    yield running
    close_services(running.services)


def noted(server: Server) -> list[str]:
    """The sessions noted to recount: their plain sums may count a batch twice."""
    rows = server.services.store.fetch_rows("SELECT DISTINCT session_id FROM sessions_to_recount ORDER BY 1")
    return [r[0] for r in rows]


def plain_event_count(server: Server, session_id: str) -> int:
    """The session's plain sum of events as kept, not as read (noted sessions are read from the map)."""
    return int(server.services.store.fetch_rows("SELECT event_count FROM sessions FINAL WHERE session_id = "
                                                "{sid:String}", {"sid": session_id})[0][0])


def recount_twice(server: Server) -> None:
    """The first recount corrects what is wrong; the next finds it right and forgets the note."""
    for _ in range(2):
        server.services.store.recount_sessions()


def test_a_retry_after_a_try_that_died_inside_its_events_writes_only_the_missing_ones(server: Server) -> None:
    for seq in range(3):
        store_one(server, batch("s-a", seq))
    store_one(server, batch("s-b", 0))
    assert server.data(COUNTS) == expected({"s-a": 3, "s-b": 1})
    store = server.services.store
    # as a try that died inside the events insert leaves it: its session rows, part of its events, no ledger row
    store.fetch_rows("DELETE FROM batches WHERE session_id = 's-a' AND seq = 1")
    store.fetch_rows("DELETE FROM events WHERE session_id = 's-a' AND seq = 1 AND idx >= 2")
    assert stored_rows(server, "s-a", 1) == 2

    store_one(server, batch("s-a", 1))  # the client's retry: resumed, not a duplicate

    assert stored_rows(server, "s-a", 1) == EVENTS_PER_BATCH and stored_rows(server, "s-a") == 3 * EVENTS_PER_BATCH
    assert replaced(server) == []
    assert server.data(COUNTS) == expected({"s-a": 3, "s-b": 1})
    # the retry summarised s-a's batches again, on top of what the first try's view folded: its plain sums
    # count every batch twice, so it is noted and read from the map
    assert noted(server) == ["s-a"] and plain_event_count(server, "s-a") == 2 * 3 * EVENTS_PER_BATCH
    assert server.data(SUMS_FILTERED) == {"sessions": {"nodes": [{"id": "s-a"}]}}

    recount_twice(server)
    assert noted(server) == [] and plain_event_count(server, "s-a") == 3 * EVENTS_PER_BATCH
    assert server.data(COUNTS) == expected({"s-a": 3, "s-b": 1})
    assert server.data(SUMS_FILTERED) == {"sessions": {"nodes": [{"id": "s-a"}]}}


def test_a_noted_session_is_read_from_the_map_among_its_users_sessions_too(server: Server) -> None:
    identified = {"type": "identify", "ts": T0 + 1_000, "userId": "u-1"}
    for seq in range(2):
        body = batch("s-u", seq)
        store_one(server, {**body, "events": [identified, *body["events"]] if seq == 0 else body["events"]})
    server.services.store.fetch_rows("DELETE FROM batches WHERE session_id = 's-u' AND seq = 1")
    store_one(server, batch("s-u", 1))  # the retry: summarised again, so noted
    assert noted(server) == ["s-u"] and plain_event_count(server, "s-u") == 2 * (2 * EVENTS_PER_BATCH + 1)
    sessions = server.data('{ user(id: "u-1") { sessions { nodes { id eventCount } } } }')["user"]["sessions"]
    assert sessions == {"nodes": [{"id": "s-u", "eventCount": 2 * EVENTS_PER_BATCH + 1}]}


def test_a_retry_after_a_try_that_wrote_every_event_writes_none_again(server: Server) -> None:
    store_one(server, batch("s-a", 0))
    server.services.store.fetch_rows("DELETE FROM batches WHERE session_id = 's-a'")
    store_one(server, batch("s-a", 0))
    assert stored_rows(server, "s-a") == EVENTS_PER_BATCH and replaced(server) == []
    assert server.data(COUNTS) == expected({"s-a": 1})


def sessionized(body: dict[str, Any]) -> BatchWrite:
    write, _ = sessionize(decode_batch(orjson.dumps(body), IngestLimits()), SessionTail(), SessionizeOptions())
    return write


def with_recording(body: dict[str, Any]) -> dict[str, Any]:
    """Batch 0 with its rrweb events (stored apart from the events, in recordings): the page's, and a DOM
    mutation after each click, so that no click is judged dead and the batch still holds EVENTS_PER_BATCH."""
    rrweb = [(T0, {"type": 4, "timestamp": T0, "data": {"href": "https://shop.example/0"}}),
             *((ts, {"type": 3, "timestamp": ts, "data": {"source": 0, "adds": [], "removes": [], "texts": [],
                                                          "attributes": []}})
               for ts in (T0 + 3_000 * (n + 1) + 100 for n in range(4)))]
    return {**body, "events": [*body["events"], *({"type": "recording", "ts": ts, "data": e} for ts, e in rrweb)]}


RRWEB_EVENTS = 5


RECORDING = '{ session(id: "s-twice") { recording { nodes } } }'


def test_a_batch_written_by_two_servers_at_once_is_noted_and_read_once(location: Location) -> None:
    first, second = start_server(location), start_server(location)
    tables = ("events", "recordings")
    try:
        store_one(first, batch("s-other", 0))
        for table in tables:  # a merge would replace a copy at any moment
            first.services.store.fetch_rows(f"SYSTEM STOP MERGES {table}")
        # both servers passed the ledger check before either wrote the batch: both write it whole
        for server in (first, second):
            server.services.store.write([sessionized(with_recording(batch("s-twice", 0)))], int(time.time() * 1000))
        assert stored_rows(first, "s-twice") == 2 * EVENTS_PER_BATCH  # as stored: two copies
        assert stored_rows(first, "s-twice", table="recordings") == 2
        assert replaced(first) == [("s-twice", 0)]
        for server in (first, second):
            assert server.data(COUNTS) == expected({"s-twice": 1, "s-other": 1})
            assert len(server.data(RECORDING)["session"]["recording"]["nodes"]) == RRWEB_EVENTS
            page = server.data('{ events(first: 100, filter: {sessionId: {eq: "s-twice"}}) { totalCount '
                               'nodes { id } } }')["events"]
            assert page["totalCount"] == EVENTS_PER_BATCH
            # an event's id is its place in the batch in time order: the page, then each click before its mutation
            assert sorted(n["id"] for n in page["nodes"]) == sorted(f"s-twice/0/{i}" for i in (0, 2, 4, 6, 8, 10))
            clicks = server.data('{ events(filter: {kind: {eq: "click"}}) { totalCount } }')["events"]
            assert clicks == {"totalCount": 8}

        # each server's view folded the batch: the plain sums counted it twice (a writer's first write recounts
        # at once, so they may be corrected already), and the session stays noted until a recount finds it right
        assert noted(first) == ["s-twice"]
        recount_twice(second)
        assert noted(first) == [] and plain_event_count(first, "s-twice") == EVENTS_PER_BATCH
        assert first.data(COUNTS) == expected({"s-twice": 1, "s-other": 1})

        store = first.services.store
        store.prune_replaced()  # the copies are still there: the batch stays noted
        assert replaced(first) == [("s-twice", 0)]
        for table in tables:  # what merges do in time; the batch is noted while either table holds a copy
            store.fetch_rows(f"SYSTEM START MERGES {table}")
            store.fetch_rows(f"OPTIMIZE TABLE {table} FINAL")
            store.prune_replaced()
            assert replaced(first) == ([("s-twice", 0)] if table == "events" else [])
        assert stored_rows(first, "s-twice") == EVENTS_PER_BATCH
        assert stored_rows(first, "s-twice", table="recordings") == 1
        assert second.data(COUNTS) == expected({"s-twice": 1, "s-other": 1})
        assert len(second.data(RECORDING)["session"]["recording"]["nodes"]) == RRWEB_EVENTS
    finally:
        for table in tables:
            first.services.store.fetch_rows(f"SYSTEM START MERGES {table}")
        close_services(first.services)
        close_services(second.services)


def test_one_server_writing_batches_once_notes_nothing(server: Server) -> None:
    for seq in range(2):
        store_one(server, batch("s-a", seq))
    assert replaced(server) == [] and stored_rows(server, "s-a") == 2 * EVENTS_PER_BATCH
    assert noted(server) == [] and plain_event_count(server, "s-a") == 2 * EVENTS_PER_BATCH


def test_pages_of_events_with_ties_on_time_hold_every_event_once_in_order(server: Server) -> None:
    """A page of events is found after bounding the time to its last row's (a read of that column alone): rows
    that tie on time across a page's edge must all still come, once, in (time, session, seq, idx) order."""
    at = T0 + 3_600_000
    for sid in ("s-a", "s-b"):
        clicks = [{"type": "click", "ts": at + (0 if n < 9 else 5_000), "selector": f"button#{n}"} for n in range(12)]
        store_one(server, make_batch(sid, clicks, seq=0))
    # expected, newest first: the 3 later clicks of each session, then the 9 tied ones, each by session, idx
    expected = [f"{sid}/0/{idx}" for group in (range(9, 12), range(9)) for sid in ("s-b", "s-a")
                for idx in reversed(group)]
    seen: list[str] = []
    after = None
    while True:
        page = server.data('query($after: String) { events(first: 5, after: $after, filter: {kind: {eq: "click"}}) '
                           '{ nodes { id } pageInfo { hasNextPage endCursor } } }', {"after": after})["events"]
        seen += [node["id"] for node in page["nodes"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == expected
