"""The summaries' merge rules, declared once (store.schema), give the same sessions, users and issues on both
stores, and the answers the rules promise, for the batches that make them work hardest: a batch that arrives
after a later one, a batch sent twice, and a session that switches users and back (A, B, A).

Expected values come from the batches below, by hand: which moments were activity and the gaps between them,
who identified when, which occurrence of an error was first.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import T0, Server, make_batch, new_location, served
from replayql.config import IngestLimits
from replayql.ingest.importer import import_batches
from replayql.ingest.sessionize import SessionizeOptions, SessionTail, sessionize
from replayql.ingest.wire import decode_batch
from store_pair import Pair, servers_on_both_stores

IDLE_MS = 10_000  # the default idle threshold: a longer gap between activity counts as this much
STACK = "TypeError: x is undefined\n    at run (https://shop.example/app.js:1:1)"


def click(ts: int) -> dict[str, Any]:
    return {"type": "click", "ts": ts, "selector": "button#buy", "text": "Buy"}


def identify(ts: int, user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "ts": ts, "userId": user, "traits": traits}


def error(ts: int, message: str) -> dict[str, Any]:
    return {"type": "error", "ts": ts, "errorType": "TypeError", "message": message, "stack": STACK}


# s-late: seq 1 arrives first, then seq 0 (late), then seq 2, then seq 1 again (a retry).
LATE = [
    make_batch("s-late", [click(T0 + 9_000), click(T0 + 30_000), identify(T0 + 30_500, "u-b", name="Bea"),
                          error(T0 + 31_000, "x is undefined 7")], seq=1),
    make_batch("s-late", [{"type": "page", "ts": T0, "url": "https://shop.example/"}, error(T0 + 1_000,
                          "x is undefined 3"), click(T0 + 2_000), click(T0 + 4_000),
                          identify(T0 + 4_500, "u-a", name="Ann", plan="free")], seq=0),
    make_batch("s-late", [click(T0 + 32_000), identify(T0 + 32_500, "u-a", plan="pro"),
                          {"type": "page", "ts": T0 + 33_000, "url": "https://shop.example/cart"}], seq=2),
]
RETRY = LATE[0]
# Activity (pages and clicks) in time order, whatever the order the batches came in.
LATE_ACTIVITY = [T0, T0 + 2_000, T0 + 4_000, T0 + 9_000, T0 + 30_000, T0 + 32_000, T0 + 33_000]
# s-aba: A, then B, then A again, in order, one batch each.
T1 = T0 + 3_600_000
ABA = [make_batch("s-aba", [{"type": "page", "ts": T1, "url": "https://shop.example/"},
                            identify(T1 + 1_000, "u-a")], seq=0),
       make_batch("s-aba", [click(T1 + 2_000), identify(T1 + 3_000, "u-b")], seq=1),
       make_batch("s-aba", [click(T1 + 4_000), identify(T1 + 5_000, "u-a")], seq=2)]


def fill(server: Server) -> None:
    """Each batch in a write of its own, in the order above; the retry is recognised as one."""
    services = server.services
    for batch in [*LATE, *ABA, RETRY]:
        report = import_batches([orjson.dumps(batch)], services.writer, lambda app: True, server.settings.limits)
        assert report.rejected == []
        assert (report.stored, report.duplicates) == ((0, 1) if batch is RETRY and report.duplicates else (1, 0))


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, chdb_path: Path) -> Iterator[Pair]:
    with servers_on_both_stores(tmp_path_factory.mktemp("summary-rules"), chdb_path, fill) as both:
        yield both


SESSION_FIELDS = """id startedAt endedAt activeDurationMs userId pageCount clickCount errorCount eventCount
    rageClickCount deadClickCount errorClickCount initialUrl user { id }"""


def active_ms(moments: list[int]) -> int:
    return sum(min(b - a, IDLE_MS) for a, b in itertools.pairwise(moments))


def test_a_late_batch_adds_its_activity_where_it_belongs_and_a_retry_counts_nothing(pair: Pair) -> None:
    session = pair.both(f'{{ session(id: "s-late") {{ {SESSION_FIELDS} }} }}')["session"]
    assert session["activeDurationMs"] == active_ms(LATE_ACTIVITY) == 22_000
    assert (session["pageCount"], session["clickCount"], session["errorCount"]) == (2, 5, 2)
    assert session["initialUrl"] == "https://shop.example/"  # the landing page came in the late batch
    # the session's user is the one identified last in the session (seq 2), not the last one written
    assert session["userId"] == session["user"]["id"] == "u-a"


def test_a_session_counts_once_for_each_user_it_was_identified_as(pair: Pair) -> None:
    users = pair.both("{ users(orderBy: {field: FIRST_SEEN, direction: ASC}) { nodes { id name traits "
                      "firstSeen lastSeen sessionCount sessions { nodes { id } } } } }")["users"]["nodes"]
    by_id = {user["id"]: user for user in users}
    assert by_id.keys() == {"u-a", "u-b"}
    # s-late identified u-b, then (late, earlier in the session) u-a, then u-a again; s-aba went A, B, A
    assert by_id["u-a"]["sessionCount"] == by_id["u-b"]["sessionCount"] == 2
    assert (by_id["u-a"]["name"], by_id["u-a"]["traits"]) == ("Ann", {"name": "Ann", "plan": "pro"})
    assert by_id["u-b"]["name"] == "Bea"
    assert sorted(s["id"] for s in by_id["u-a"]["sessions"]["nodes"]) == ["s-aba", "s-late"]
    aba = pair.both('{ session(id: "s-aba") { userId } }')["session"]
    assert aba["userId"] == "u-a"


def test_an_issues_sample_is_its_earliest_occurrence_even_when_that_arrived_later(pair: Pair) -> None:
    issues = pair.both("{ issues { nodes { title message count firstSeen lastSeen sessionCount } } }")
    [issue] = issues["issues"]["nodes"]
    assert issue["title"] == "TypeError: x is undefined 3" and issue["message"] == "x is undefined 3"
    assert issue["count"] == 2 and issue["sessionCount"] == 1


@settings(max_examples=200, deadline=None, database=None, derandomize=True)
@given(moments=st.lists(st.integers(0, 600_000), min_size=1, max_size=40, unique=True),
       cuts=st.lists(st.integers(1, 39), max_size=6), order=st.randoms(use_true_random=False))
def test_active_time_is_the_same_whatever_order_the_batches_arrive_in(moments: list[int], cuts: list[int],
                                                                      order: random.Random) -> None:
    """Clicks cut into batches, written in a random order through the real sessionizer: the active time is
    always that of the clicks in time order."""
    moments.sort()
    bounds = sorted({0, *(c for c in cuts if c < len(moments)), len(moments)})
    batches = [make_batch("s", [click(T0 + m) for m in moments[a:b]], seq=n)
               for n, (a, b) in enumerate(itertools.pairwise(bounds))]
    order.shuffle(batches)
    tail, total = SessionTail(), 0
    for batch in batches:
        write, tail = sessionize(decode_batch(orjson.dumps(batch), IngestLimits()), tail, SessionizeOptions())
        total += write.session.active_ms
    assert total == active_ms([T0 + m for m in moments])


def test_a_batch_written_again_after_a_write_that_failed_half_way_counts_once(tmp_path: Path,
                                                                              chdb_path: Path) -> None:
    """ClickHouse: a write that stopped before its ledger row (the process died) leaves the batch's rows but
    not the batch's acknowledgement, so the client's retry writes it again. The summaries' views would count
    its rows twice; the writer must not insert them twice."""
    location = new_location("clickhouse", tmp_path, chdb_path)
    with served(location) as server:
        for batch in LATE:
            fill_one(server, batch)
        before = server.data(ALL_SUMMARIES)
        server.services.store.fetch_rows("DELETE FROM batches WHERE session_id = 's-late' AND seq = 1")
        fill_one(server, RETRY)  # not in the ledger any more: written again, as after a crash
        assert server.data(ALL_SUMMARIES) == before


ALL_SUMMARIES = f"""{{ sessions {{ nodes {{ {SESSION_FIELDS} }} }}
    users {{ nodes {{ id sessionCount firstSeen lastSeen traits }} }} issues {{ nodes {{ id count title }} }} }}"""


def fill_one(server: Server, batch: dict[str, Any]) -> None:
    services = server.services
    report = import_batches([orjson.dumps(batch)], services.writer, lambda app: True, server.settings.limits)
    assert (report.stored, report.rejected) == (1, [])
