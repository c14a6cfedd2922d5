"""Stateless servers on ClickHouse: two replayql instances serve one database at the same time.

Issue 3: "any number of replayql processes serve the same database at once ... Two processes receiving batches
of the same session concurrently never double-count and never lose an event". chDB holds one engine per process,
so, as the issue says, this runs two server instances inside this process on the same chDB database: two
`start_server` calls on one location, each with its own store object, registry and writer thread, sharing
nothing but ClickHouse. Batches go through HTTP to both at once from a thread pool.

Every expected number comes from how the batches are built (see `session_batch`): no event of one batch is
within a second of a click of another, and no session has a recording, so no rage, dead or error click can be
derived whatever order the batches arrive in, and the counts below are exact.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from conftest import Location, Server, drop_location, make_batch, new_location, start_server
from replayql.api.app import close_services
from replayql.store.registry import KeyScope

MIN = 60_000
VIEWER = "{ viewer { appId keyId } }"
INVALID = {"data": None, "errors": [{"message": "invalid or revoked API key",
                                     "extensions": {"code": "UNAUTHENTICATED"}}]}
ERROR = {"type": "error", "errorType": "TypeError", "message": "Cannot read properties of undefined (reading 'sku')",
         "stack": "TypeError: Cannot read properties of undefined (reading 'sku')\n"
                  "    at addToCart (https://shop.example/static/app.js:10:5)", "handled": False}
SESSION_COUNTS = "id eventCount pageCount clickCount errorCount"


def now_ms() -> int:
    return int(time.time() * 1000)


def session_batch(session_id: str, seq: int, base: int, user: str | None = None) -> dict[str, Any]:
    """Batch `seq` of a session: a page, two clicks (own selectors, 10 s apart), an error 10 s after the last
    click, a custom event; and an identify first when `user` is given. 5 or 6 events, 1 page, 2 clicks, 1 error.

    Batch k lives in [base + k min, base + k min + 40 s]. sentAt is stamped when it is sent (`send`), so the
    server applies no clock-skew correction and the times stay as built."""
    t = base + seq * MIN
    events: list[dict[str, Any]] = [
        {"type": "page", "ts": t, "url": f"https://shop.example/step/{seq}", "title": f"Step {seq}"},
        {"type": "click", "ts": t + 10_000, "selector": f"button#next-{seq}", "text": "Next"},
        {"type": "click", "ts": t + 20_000, "selector": f"a#help-{seq}", "text": "Help"},
        {**ERROR, "ts": t + 30_000},
        {"type": "custom", "ts": t + 40_000, "name": "Step Done", "properties": {"step": seq}},
    ]
    if user is not None:
        events.insert(1, {"type": "identify", "ts": t + 5_000, "userId": user, "traits": {"plan": "pro"}})
    return make_batch(session_id, events, seq=seq, sent_at=0)


def send(server: Server, batch: dict[str, Any], attempts: int = 10) -> httpx.Response:
    """As a client does: a 503 (backpressure: nothing of the batch was kept) is sent again after Retry-After."""
    for _ in range(attempts - 1):
        response = server.ingest({**batch, "sentAt": now_ms()})
        if response.status_code != 503:
            return response
        time.sleep(float(response.headers["retry-after"]))
    return server.ingest({**batch, "sentAt": now_ms()})


def send_all(jobs: list[tuple[Server, dict[str, Any]]], workers: int = 8) -> list[httpx.Response]:
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda job: send(*job), jobs))


def ok_outcomes(responses: list[httpx.Response]) -> Counter[str]:
    assert [r.status_code for r in responses] == [200] * len(responses), [r.text for r in responses if
                                                                          r.status_code != 200]
    return Counter(r.json()["outcome"] for r in responses)


def status(server: Server, token: str) -> httpx.Response:
    return server.client.post("/graphql", json={"query": VIEWER}, headers={"authorization": f"token {token}"})


@pytest.fixture
def two(tmp_path: Path, chdb_path: Path) -> Iterator[tuple[Server, Server]]:
    """Servers A and B on one ClickHouse database, each with its own store, registry and writer."""
    location: Location = new_location("clickhouse", tmp_path / "data", chdb_path)
    first = start_server(location)
    try:
        second = start_server(location)
        try:
            assert first.services.store is not second.services.store
            assert first.services.writer is not second.services.writer
            yield first, second
        finally:
            close_services(second.services)
    finally:
        close_services(first.services)
        drop_location(location)


def sessions_by_id(server: Server, ids: list[str]) -> dict[str, dict[str, Any]]:
    data = server.data(f"query($f: SessionFilter) {{ sessions(first: 500, filter: $f) {{ totalCount "
                       f"nodes {{ {SESSION_COUNTS} }} }} }}", {"f": {"id": {"in": ids}}})["sessions"]
    assert data["totalCount"] == len(data["nodes"])
    return {n["id"]: n for n in data["nodes"]}


# -- (a) the same sessions through both servers at once ----------------------------------------------------------

def test_batches_of_the_same_sessions_through_both_servers_lose_and_double_nothing(two: tuple[Server, Server]
                                                                                  ) -> None:
    a, b = two
    base = now_ms() - 5 * 3_600_000  # 20 sessions, 10 minutes apart, all in the past
    sessions = [f"c-{n:02d}" for n in range(20)]
    users = {sid: f"cu-{n % 5}" for n, sid in enumerate(sessions) if n % 2 == 0}  # 10 sessions, 5 users x 2
    batches = [session_batch(sid, seq, base + n * 10 * MIN, users.get(sid))
               for n, sid in enumerate(sessions) for seq in range(5)]
    random.Random(3).shuffle(batches)
    jobs = [((a, b)[i % 2], batch) for i, batch in enumerate(batches)]  # alternating servers, shuffled order
    assert ok_outcomes(send_all(jobs)) == {"stored": 100}

    # hand-computed: 5 batches x (5 events, +1 identify when identified), 1 page, 2 clicks and 1 error each
    expected = {sid: {"id": sid, "eventCount": 30 if sid in users else 25, "pageCount": 5, "clickCount": 10,
                      "errorCount": 5} for sid in sessions}
    for server in (a, b):
        assert sessions_by_id(server, sessions) == expected
        events = server.data("""{ all: events { totalCount } clicks: events(filter: {kind: {eq: "click"}}) {
            totalCount } derived: events(filter: {kind: {in: ["rage_click", "dead_click", "error_click"]}}) {
            totalCount } }""")
        assert events == {"all": {"totalCount": 10 * 30 + 10 * 25}, "clicks": {"totalCount": 200},
                          "derived": {"totalCount": 0}}
        issues = server.data("{ issues { nodes { count sessionCount userCount occurrences { totalCount } } } }")
        assert issues["issues"]["nodes"] == [{"count": 100, "sessionCount": 20, "userCount": 15,
                                             "occurrences": {"totalCount": 100}}]
        people = server.data("{ users(first: 50) { totalCount nodes { id sessionCount } } }")["users"]
        assert sorted((n["id"], n["sessionCount"]) for n in people["nodes"]) == [(f"cu-{u}", 2) for u in range(5)]

    # every event is there exactly once: ids are session/seq/index, index in time order within the batch
    listed = a.data('query($s: [String!]) { events(first: 500, filter: {sessionId: {in: $s}}) { '
                    'nodes { id } } }', {"s": sessions[:8]})["events"]["nodes"]
    expected_ids = {f"{sid}/{seq}/{idx}" for sid in sessions[:8] for seq in range(5)
                    for idx in range(6 if sid in users else 5)}
    assert len(listed) == len(expected_ids) and {n["id"] for n in listed} == expected_ids


# -- (b) one batch retried through both servers at once ----------------------------------------------------------

def test_a_batch_retried_concurrently_through_both_servers_is_stored_once(two: tuple[Server, Server]) -> None:
    a, b = two
    base = now_ms() - 3_600_000
    batches = [session_batch("r-1", seq, base, "ru-1") for seq in range(3)]
    jobs = [((a, b)[i % 2], batch) for batch in batches for i in range(6)]  # each batch 3x via A, 3x via B
    random.Random(5).shuffle(jobs)
    outcomes = ok_outcomes(send_all(jobs, workers=9))
    assert outcomes["stored"] >= 3 and outcomes["stored"] + outcomes["duplicate"] == 18

    for server in (a, b):
        assert sessions_by_id(server, ["r-1"]) == {"r-1": {"id": "r-1", "eventCount": 18, "pageCount": 3,
                                                           "clickCount": 6, "errorCount": 3}}
        data = server.data("""{ events { totalCount } user(id: "ru-1") { sessionCount }
            issues { nodes { count sessionCount } } }""")
        assert data == {"events": {"totalCount": 18}, "user": {"sessionCount": 1},
                        "issues": {"nodes": [{"count": 3, "sessionCount": 1}]}}
    # and once settled, a later retry through either server is a duplicate
    assert ok_outcomes([send(a, batches[0]), send(b, batches[2])]) == {"duplicate": 2}


# -- (c) keys are shared at once --------------------------------------------------------------------------------

def test_a_key_made_on_one_server_works_on_the_other_and_revoking_it_is_seen_at_once(two: tuple[Server, Server]
                                                                                     ) -> None:
    a, b = two
    key, secret = a.services.registry.create_key("demo", KeyScope.ADMIN, "shared")
    assert status(b, secret).json() == {"data": {"viewer": {"appId": "demo", "keyId": key.id}}}
    assert status(a, secret).status_code == 200
    # created through B's API, usable on A
    made = b.data('mutation { createApiKey(scope: READ, name: "via-b") { secret key { id } } }')["createApiKey"]
    assert status(a, made["secret"]).json()["data"]["viewer"]["keyId"] == made["key"]["id"]

    revoked = b.client.post("/graphql", json={"query": f'mutation {{ revokeApiKey(id: "{key.id}") }}'},
                            headers={"authorization": f"token {secret}"})
    assert revoked.json() == {"data": {"revokeApiKey": True}}
    for server in (a, b):
        response = status(server, secret)
        assert response.status_code == 401 and response.json() == INVALID
    assert a.services.registry.get_key(key.id).revoked_at is not None  # type: ignore[union-attr]
    assert status(a, made["secret"]).status_code == 200  # the other key is untouched


# -- (d) a user deleted on one server is gone on the other ------------------------------------------------------

def test_delete_user_on_one_server_is_honoured_by_the_other(two: tuple[Server, Server]) -> None:
    a, b = two
    base = now_ms() - 2 * 3_600_000
    kept = [session_batch("k-1", seq, base, "keep") for seq in range(2)]
    gone = [session_batch("d-1", seq, base, "gone") for seq in range(2)] + [
        session_batch("d-2", 0, base + 5 * MIN, "gone")]
    assert ok_outcomes(send_all([(a, kept[0]), (b, kept[1]), (b, gone[0]), (a, gone[1]), (b, gone[2])])) == {
        "stored": 5}
    assert b.data('{ user(id: "gone") { sessionCount } }') == {"user": {"sessionCount": 2}}

    deleted = a.data('mutation { deleteUser(id: "gone") { deletedSessions deletedEvents complete } }')
    assert deleted == {"deleteUser": {"deletedSessions": 2, "deletedEvents": 18, "complete": True}}

    # B drops what arrives for the user: a later batch of a deleted session, and a new session that identifies
    late = [session_batch("d-1", 2, base), session_batch("d-3", 0, base + 20 * MIN, "gone")]
    assert ok_outcomes([send(b, batch) for batch in late]) == {"dropped": 2}
    for server in (a, b):
        data = server.data("""{ user(id: "gone") { id } sessions { totalCount nodes { id } }
            events { totalCount } mine: sessions(filter: {userId: {eq: "gone"}}) { totalCount }
            issues { nodes { count sessionCount } } users { nodes { id } } }""")
        assert data == {"user": None, "sessions": {"totalCount": 1, "nodes": [{"id": "k-1"}]},
                        "events": {"totalCount": 12}, "mine": {"totalCount": 0},
                        "issues": {"nodes": [{"count": 2, "sessionCount": 1}]}, "users": {"nodes": [{"id": "keep"}]}}
        assert server.data('{ session(id: "d-3") { id } d1: session(id: "d-1") { id } }') == {
            "session": None, "d1": None}


# -- (e) issue state is shared -----------------------------------------------------------------------------------

def test_an_issue_resolved_on_one_server_reopens_on_both_when_the_other_stores_a_new_occurrence(
        two: tuple[Server, Server]) -> None:
    a, b = two
    base = now_ms() - 3_600_000
    assert ok_outcomes([send(b, session_batch("i-1", 0, base))]) == {"stored": 1}
    issue = a.data("{ issues { nodes { id status count } } }")["issues"]["nodes"]
    assert [(i["status"], i["count"]) for i in issue] == [("OPEN", 1)]
    issue_id = issue[0]["id"]

    def status_of(server: Server) -> Any:
        return server.data(f'{{ issue(id: "{issue_id}") {{ status count }} }}')["issue"]

    resolved = a.data(f'mutation {{ updateIssue(id: "{issue_id}", status: RESOLVED) {{ status }} }}')
    assert resolved == {"updateIssue": {"status": "RESOLVED"}}
    assert status_of(b) == status_of(a) == {"status": "RESOLVED", "count": 1}

    # a batch without the error changes nothing; a new occurrence through B reopens the issue everywhere
    quiet = make_batch("i-2", [{"type": "page", "ts": base, "url": "https://shop.example/"}], sent_at=0)
    assert ok_outcomes([send(b, quiet)]) == {"stored": 1}
    assert status_of(a)["status"] == "RESOLVED"
    assert ok_outcomes([send(b, session_batch("i-1", 1, base))]) == {"stored": 1}
    assert status_of(a) == status_of(b) == {"status": "OPEN", "count": 2}
    listed = b.data('{ issues(filter: {status: {eq: "OPEN"}}) { nodes { id } } }')["issues"]["nodes"]
    assert listed == [{"id": issue_id}]
