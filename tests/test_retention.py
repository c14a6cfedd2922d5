"""Retention on both stores: sessions last active before the cutoff are deleted whole, with their events,
recordings, users left without sessions and issue occurrences; every other session is untouched.

Sessions are built at known ages relative to now (40, 31, 29 and 1 days old, one running across the cutoff),
loaded through the import path (timestamps kept exactly), and the job is run as the server runs it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from conftest import Location, Server, load, make_batch, start_server
from replayql.api.app import close_services
from replayql.ingest.retention import Chunk, apply_retention
from test_cli import ok
from test_graphql_queries import iso

DAY = 86_400_000
NOW = int(time.time() * 1000)
OLD_ERROR = {"type": "error", "errorType": "RangeError", "message": "Invalid array length"}
SHARED_ERROR = {"type": "error", "errorType": "TypeError", "message": "x is undefined"}
CROSS_ERROR = {"type": "error", "errorType": "SyntaxError", "message": "Unexpected token"}


def _events(at: int, *extra: dict[str, Any], user: str | None = None) -> list[dict[str, Any]]:
    """A page view at `at`, then each extra event a second apart, then the identify of `user` if given."""
    events = [{"type": "page", "ts": at, "url": "https://shop.example/"}]
    events += [{**e, "ts": at + 1000 * (n + 1)} for n, e in enumerate(extra)]
    if user is not None:
        events.append({"type": "identify", "ts": at + 1000 * (len(extra) + 1), "userId": user})
    return events


RRWEB = {"type": "recording", "data": {"type": 2, "timestamp": 0, "data": {}}}
AT = {"s40": NOW - 40 * DAY, "s31": NOW - 31 * DAY, "s29": NOW - 29 * DAY, "s1": NOW - DAY,
      "cross": NOW - 31 * DAY, "cross+1": NOW - 29 * DAY, "o35": NOW - 35 * DAY, "o2": NOW - 2 * DAY}
BATCHES = [
    make_batch("s40", _events(AT["s40"], OLD_ERROR, SHARED_ERROR, CROSS_ERROR, RRWEB, user="u-old")),
    make_batch("s31", _events(AT["s31"], SHARED_ERROR, user="u-both")),
    make_batch("s29", _events(AT["s29"], {"type": "custom", "name": "Buy"})),
    make_batch("s1", _events(AT["s1"], SHARED_ERROR, user="u-both")),
    # started before the cutoff, active after it: kept whole, its old events and recording too
    make_batch("cross", _events(AT["cross"], CROSS_ERROR, RRWEB, user="u-cross")),
    make_batch("cross", _events(AT["cross+1"]), seq=1),
    make_batch("o35", _events(AT["o35"]), app_id="other"),
    make_batch("o2", _events(AT["o2"]), app_id="other"),
]
KEPT = {"s29", "s1", "cross"}
EXPIRED = {"s40", "s31"}
# events stored per kept session (recording events go to the recording, not to events)
KEPT_EVENTS = {"s29": 2, "s1": 3, "cross": 3 + 1}

OVERVIEW = """{
  sessions(first: 50) { totalCount nodes { id } }
  events(first: 500) { totalCount nodes { session { id } } }
  s40: session(id: "s40") { id } s31: session(id: "s31") { id }
  cross: session(id: "cross") { startedAt eventCount recording { totalCount } }
  users(first: 50) { nodes { id sessionCount firstSeen lastSeen } }
  old: user(id: "u-old") { id }
  issues(first: 50) { totalCount nodes { errorType count sessionCount userCount firstSeen lastSeen } }
}"""


def _overview(server: Server) -> dict[str, Any]:
    data = server.data(OVERVIEW)
    data["sessions"]["nodes"] = {n["id"] for n in data["sessions"]["nodes"]}
    data["events"]["nodes"] = sorted(n["session"]["id"] for n in data["events"]["nodes"])
    data["users"]["nodes"] = sorted(data["users"]["nodes"], key=lambda u: u["id"])
    data["issues"]["nodes"] = sorted(data["issues"]["nodes"], key=lambda i: i["errorType"])
    return data


def _user(user_id: str, sessions: int, first: int, last: int) -> dict[str, Any]:
    return {"id": user_id, "sessionCount": sessions, "firstSeen": iso(first), "lastSeen": iso(last)}


def _issue(error_type: str, occurrences: list[int]) -> dict[str, Any]:
    """An issue with one occurrence (in its own session, of its own user) at each of these times."""
    n = len(occurrences)
    return {"errorType": error_type, "count": n, "sessionCount": n, "userCount": n,
            "firstSeen": iso(min(occurrences)), "lastSeen": iso(max(occurrences))}


def _other_sessions(server: Server) -> set[str]:
    return {n["id"] for n in server.data("{ sessions { nodes { id } } }", key="other")["sessions"]["nodes"]}


def test_only_sessions_last_active_before_the_cutoff_are_deleted(server: Server) -> None:
    load(server, BATCHES)
    # events at +1 s steps: s40's errors at +1, +2, +3 s, s31's and s1's at +1 s, cross's at +1 s
    before = _overview(server)
    assert before["sessions"]["nodes"] == KEPT | EXPIRED and before["old"] == {"id": "u-old"}
    assert [i["count"] for i in before["issues"]["nodes"]] == [1, 2, 3]  # Range, Syntax, Type

    run = apply_retention(server.services.writer, 30, chunk_sessions=2)

    assert (run.sessions, run.chunks, run.users) == (3, 2, 1)  # s40, s31, o35; u-old has nothing left
    assert run.events == 5 + 3 + 1 and run.recordings == 1
    after = _overview(server)
    assert after["sessions"] == {"totalCount": 3, "nodes": KEPT}
    assert after["events"]["totalCount"] == sum(KEPT_EVENTS.values())
    assert after["events"]["nodes"] == sorted(s for s, n in KEPT_EVENTS.items() for _ in range(n))
    assert after["s40"] is None and after["s31"] is None and after["old"] is None
    assert after["cross"] == {"startedAt": iso(AT["cross"]), "eventCount": 4, "recording": {"totalCount": 1}}
    assert after["users"]["nodes"] == [_user("u-both", 1, AT["s1"], AT["s1"] + 2000),
                                       _user("u-cross", 1, AT["cross"], AT["cross+1"])]
    # RangeError occurred only in s40: gone; the others count what remains
    assert after["issues"] == {"totalCount": 2, "nodes": [_issue("SyntaxError", [AT["cross"] + 1000]),
                                                          _issue("TypeError", [AT["s1"] + 1000])]}
    assert _other_sessions(server) == {"o2"}

    again = apply_retention(server.services.writer, 30, chunk_sessions=2)
    assert (again.sessions, again.chunks) == (0, 1)
    assert _overview(server) == after


def test_ingest_runs_between_chunks_and_a_deleted_session_starts_anew(server: Server) -> None:
    load(server, BATCHES)
    answers: list[int] = []

    def ingest_meanwhile(chunk: Chunk) -> None:
        if answers:
            return
        assert chunk.expired == [("demo", "s40")]  # the least recently active first, one per chunk
        # the deleted session comes back (new events, the same user), and a new session arrives
        now = int(time.time() * 1000)
        for batch in (make_batch("s40", _events(now, user="u-old"), seq=7),
                      make_batch("new", _events(now)), make_batch("s31", _events(now), seq=3)):
            answers.append(server.ingest(batch).status_code)

    run = apply_retention(server.services.writer, 30, chunk_sessions=1, on_chunk=ingest_meanwhile)

    assert answers == [200, 200, 200]
    # s31 received a batch before its chunk ran: active now, so kept, with all its events
    assert run.sessions == 2 and run.chunks == 3  # s40, o35, then an empty look
    data = server.data("""{ sessions(first: 50) { nodes { id } }
        s40: session(id: "s40") { eventCount errorCount user { id sessionCount firstSeen } }
        s31: session(id: "s31") { eventCount startedAt } }""")
    assert {n["id"] for n in data["sessions"]["nodes"]} == KEPT | {"s40", "new", "s31"}
    # only the new batch: no count, time or user span carried over from the deleted session
    s40 = data["s40"]
    assert (s40["eventCount"], s40["errorCount"]) == (2, 0)
    assert s40["user"]["id"] == "u-old" and s40["user"]["sessionCount"] == 1
    assert s40["user"]["firstSeen"] > iso(NOW)
    assert data["s31"] == {"eventCount": 3 + 1, "startedAt": iso(AT["s31"])}


def test_serve_runs_retention_at_start_only_when_configured(where: Callable[[str], Location]) -> None:
    location = where("data")
    plain = start_server(location)
    try:
        load(plain, BATCHES)
        assert plain.services.retention is None
        assert {n["id"] for n in plain.data("{ sessions { nodes { id } } }")["sessions"]["nodes"]} == KEPT | EXPIRED
    finally:
        close_services(plain.services)

    keeping = start_server(location, retention_days=30)
    try:
        schedule = keeping.services.retention
        assert schedule is not None and schedule.ran.wait(120)
        assert schedule.last is not None and schedule.last.sessions == 3
        assert {n["id"] for n in keeping.data("{ sessions { nodes { id } } }")["sessions"]["nodes"]} == KEPT
        assert _other_sessions(keeping) == {"o2"}
    finally:
        close_services(keeping.services)


def test_retention_apply_command(tmp_path: Path) -> None:
    batches = tmp_path / "batches.ndjson"
    batches.write_bytes(b"\n".join(orjson.dumps(b) for b in BATCHES if b["appId"] == "demo"))
    data_dir = tmp_path / "data"
    ok(tmp_path, "apps", "create", "demo", "--data-dir", data_dir)
    ok(tmp_path, "import", batches, "--data-dir", data_dir)

    done = ok(tmp_path, "retention", "apply", "--days", "30", "--data-dir", data_dir)

    assert done.stdout.startswith("retention (30 days): deleted 2 sessions last active before ")
    assert "(8 events, 1 recording chunks, 1 users) in 1 chunks" in done.stdout
    again = ok(tmp_path, "retention", "apply", "--days", "30", "--data-dir", data_dir)
    assert "deleted 0 sessions" in again.stdout
