"""Session summaries, frustration signals, users, issues and recordings, end to end.

Batches go in through POST /v1/ingest and come out through GraphQL. Every batch is sent with `sentAt` = the real
time of sending, so the server's clock-skew correction leaves the client timestamps exactly as built. Events are
stamped at known offsets from a base: an hour in the past (`past`: by the time a batch is sent, every click's
1,000 ms window has closed), or 20 s ahead of the clock (`future`, within the +60 s tolerance: no batch's
`sentAt` closes any window, so a click waits for evidence from a later event or batch). Every expected answer
follows from those offsets.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import msgspec
import orjson
import pytest

from conftest import CONTEXT, T0, Server, make_batch
from replayql.ingest.sessionize import _rrweb_roles
from replayql.ingest.wire import RecordingEvent

Ev = dict[str, Any]
HOME = "https://shop.example/"
SNAPSHOT = {"type": 2, "data": {"node": {"type": 0, "childNodes": []}, "initialOffset": {"top": 0, "left": 0}}}
MUTATION = {"type": 3, "data": {"source": 0, "adds": [], "removes": [], "texts": [], "attributes": []}}
MOUSE = {"type": 3, "data": {"source": 2, "type": 2, "id": 7, "x": 10, "y": 20}}  # a mouse click, not a mutation


def now_ms() -> int:
    return int(time.time() * 1000)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- events at offsets (ms) from a timeline's base ---------------------------------------------------------------

def page(at: int, url: str = HOME, **extra: Any) -> Ev:
    return {"type": "page", "ts": at, "url": url, **extra}


def click(at: int, selector: str = "button#buy", **extra: Any) -> Ev:
    return {"type": "click", "ts": at, "selector": selector, **extra}


def typed(at: int, selector: str = "input[name=q]") -> Ev:
    return {"type": "input", "ts": at, "selector": selector}


def network(at: int, url: str = "https://api.shop.example/cart", status: int = 200) -> Ev:
    return {"type": "network", "ts": at, "method": "GET", "url": url, "status": status, "durationMs": 80}


def console(at: int) -> Ev:
    return {"type": "console", "ts": at, "level": "log", "message": "rendered"}


def error(at: int, message: str = "Boom", error_type: str = "TypeError", stack: str | None = None) -> Ev:
    return {"type": "error", "ts": at, "errorType": error_type, "message": message, "stack": stack}


def vital(at: int, name: str, value: float) -> Ev:
    return {"type": "vital", "ts": at, "name": name, "value": value}


def identify(at: int, user_id: str, **traits: Any) -> Ev:
    return {"type": "identify", "ts": at, "userId": user_id, "traits": traits}


def custom(at: int, name: str = "Added To Cart") -> Ev:
    return {"type": "custom", "ts": at, "name": name, "properties": {"sku": "A-1"}}


def rrweb(at: int, data: Ev) -> Ev:
    return {"type": "recording", "ts": at, "data": data}


@dataclass
class Timeline:
    server: Server
    base: int

    def at(self, offset: int) -> str:
        return iso(self.base + offset)

    def batch(self, sid: str, events: list[Ev], seq: int = 0, context: Ev | None = None, **extra: Any) -> Ev:
        stamped = [{**e, "ts": self.base + e["ts"]} for e in events]
        return make_batch(sid, stamped, seq=seq, context=context, sent_at=now_ms(), **extra)

    def send(self, sid: str, events: list[Ev], seq: int = 0, context: Ev | None = None, **extra: Any) -> None:
        response = self.server.ingest(self.batch(sid, events, seq, context, **extra))
        assert response.status_code == 200 and response.json()["outcome"] == "stored", response.text


@pytest.fixture
def past(server: Server) -> Timeline:
    return Timeline(server, (now_ms() // 1000 - 3600) * 1000)


@pytest.fixture
def future(server: Server) -> Timeline:
    return Timeline(server, (now_ms() // 1000 + 20) * 1000)


def session(server: Server, sid: str, fields: str) -> dict[str, Any]:
    found = server.data(f"query($id: ID!) {{ session(id: $id) {{ {fields} }} }}", {"id": sid})["session"]
    assert found is not None, sid
    return found


def per_session(server: Server, field: str) -> dict[str, Any]:
    nodes = server.data(f"{{ sessions(first: 100) {{ nodes {{ id {field} }} }} }}")["sessions"]["nodes"]
    return {n["id"]: n[field] for n in nodes}


SIGNALS = """frustrationSignals { nodes { __typename timestamp url
  ... on RageClickEvent { selector } ... on DeadClickEvent { selector } ... on ErrorClickEvent { selector } } }"""


def signals(server: Server, sid: str) -> list[tuple[str, str, str | None]]:
    nodes = session(server, sid, SIGNALS)["frustrationSignals"]["nodes"]
    return [(n["__typename"], n["timestamp"], n["selector"]) for n in nodes]


# -- session summary -------------------------------------------------------------------------------------------

SUMMARY = """startedAt endedAt durationMs pageCount clickCount errorCount eventCount initialUrl referrer
  utmSource utmMedium utmCampaign browser browserVersion os osVersion deviceType language timezone release
  viewport { width height } sdkName sdkVersion country hasRecording webVitals { lcp fcp cls inp ttfb fid }
  rageClickCount deadClickCount errorClickCount"""


def test_summary_merges_batches_arriving_out_of_order(past: Timeline) -> None:
    landing = "https://shop.example/?utm_source=news&utm_medium=email&utm_campaign=spring"
    seq0 = [page(0, landing, referrer="https://www.google.com/"), rrweb(100, SNAPSHOT), click(2000),
            network(2400), vital(2500, "LCP", 2310.5), vital(2600, "CLS", 0.05)]
    seq1 = [page(5000, "https://shop.example/cart?utm_source=other", referrer=HOME), click(6000),
            network(6300), error(7500), vital(7600, "LCP", 1800.0), vital(7700, "CLS", 0.31), console(8000)]
    seq2 = [page(12000, "https://shop.example/checkout"), typed(13000), vital(13500, "FCP", 900.0),
            vital(13800, "FCP", 600.0), vital(14000, "INP", 350.0), rrweb(14500, MUTATION), custom(15000)]
    # seq 1 arrives first; seq 0 alone carries the context and the landing page; seq 2 comes last.
    past.send("s-sum", seq1, seq=1)
    past.send("s-sum", seq0, seq=0, clientIp="81.2.69.142")
    past.send("s-sum", seq2, seq=2)
    assert session(past.server, "s-sum", SUMMARY) == {
        "startedAt": past.at(0), "endedAt": past.at(15000), "durationMs": 15000,
        "pageCount": 3, "clickCount": 2, "errorCount": 1,
        "eventCount": 5 + 7 + 6,  # every event but the two rrweb recording events
        "initialUrl": landing, "referrer": "https://www.google.com/",
        "utmSource": "news", "utmMedium": "email", "utmCampaign": "spring",
        "browser": "Chrome", "browserVersion": "120.0", "os": "macOS", "osVersion": "10.15", "deviceType": "DESKTOP",
        "language": "en-US", "timezone": "Europe/Berlin", "release": "1.4.2",
        "viewport": {"width": 1440, "height": 900}, "sdkName": "replayql-browser", "sdkVersion": "0.1.0",
        "country": "GB", "hasRecording": True,
        "webVitals": {"lcp": 2310.5, "fcp": 900.0, "cls": 0.31, "inp": 350.0, "ttfb": None, "fid": None},
        "rageClickCount": 0, "deadClickCount": 0, "errorClickCount": 0,
    }
    kinds = session(past.server, "s-sum", "events { totalCount nodes { kind timestamp } }")["events"]
    assert kinds["totalCount"] == 18
    assert [n["timestamp"] for n in kinds["nodes"]] == sorted(n["timestamp"] for n in kinds["nodes"])
    assert "recording" not in {n["kind"] for n in kinds["nodes"]}


def test_later_context_does_not_replace_first_facts_and_no_recording(past: Timeline) -> None:
    past.send("s-ctx", [page(0), click(500)])
    later = {**CONTEXT, "release": "9.9.9", "language": "fr-FR", "viewport": {"width": 400, "height": 800}}
    past.send("s-ctx", [page(3000, "https://shop.example/b")], seq=1, context=later)
    found = session(past.server, "s-ctx", "release language viewport { width } hasRecording country pageCount")
    # The TestClient connects from "testclient", which is no IP address: no country.
    assert found == {"release": "1.4.2", "language": "en-US", "viewport": {"width": 1440}, "hasRecording": False,
                     "country": None, "pageCount": 2}


def test_first_batch_context_wins_even_when_a_later_context_arrives_first(past: Timeline) -> None:
    later = {**CONTEXT, "release": "9.9.9", "language": "fr-FR", "viewport": {"width": 400, "height": 800}}
    past.send("s-ctx2", [page(3000, "https://shop.example/b")], seq=1, context=later)
    past.send("s-ctx2", [page(0), click(500)])
    found = session(past.server, "s-ctx2", "release language viewport { width } pageCount")
    assert found == {"release": "1.4.2", "language": "en-US", "viewport": {"width": 1440}, "pageCount": 2}


def test_active_duration_counts_gaps_up_to_the_idle_threshold(past: Timeline) -> None:
    # Activity (page, click, input) at 0, 2000, 5000 | 30000, 31000; console/network/error are not activity.
    past.send("s-act", [page(0), click(2000), network(2300), typed(5000)])
    past.send("s-act", [console(20000), click(30000), typed(31000), error(40000)], seq=1)
    found = session(past.server, "s-act", "durationMs activeDurationMs")
    assert found == {"durationMs": 40000, "activeDurationMs": 2000 + 3000 + 10000 + 1000}


# -- frustration signals ---------------------------------------------------------------------------------------

def test_rage_clicks(past: Timeline) -> None:
    bursts: dict[str, list[tuple[int, str]]] = {
        "r-three": [(1000, "a"), (1300, "a"), (1600, "a")],
        "r-long": [(1000 + 200 * n, "a") for n in range(7)],  # one burst, however long it goes on
        "r-two-bursts": [(1000, "a"), (1200, "a"), (1400, "a"), (3000, "a"), (3200, "a"), (3400, "a")],
        "r-spread": [(1000, "a"), (1750, "a"), (2500, "a")],
        "r-selectors": [(1000, "a"), (1200, "b"), (1400, "c")],
    }
    for sid, clicks in bursts.items():
        past.send(sid, [page(0), *(click(at, f"button#{s}") for at, s in clicks)])
    past.send("r-straddle", [page(0), click(1000), click(1300)])
    past.send("r-straddle", [click(1600)], seq=1)
    assert per_session(past.server, "rageClickCount") == {
        "r-three": 1, "r-long": 1, "r-two-bursts": 2, "r-spread": 0, "r-selectors": 0, "r-straddle": 1}
    assert per_session(past.server, "clickCount")["r-long"] == 7
    assert signals(past.server, "r-straddle") == [("RageClickEvent", past.at(1600), "button#buy")]
    events = session(past.server, "r-straddle", "events { nodes { __typename url } }")["events"]["nodes"]
    assert [e["__typename"] for e in events] == ["PageEvent", *["ClickEvent"] * 3, "RageClickEvent"]
    assert events[-1]["url"] == HOME  # a derived signal happened on the page of its click


def test_dead_clicks_within_a_batch(past: Timeline) -> None:
    cases: dict[str, list[Ev]] = {
        "d-nothing": [],  # nothing follows: the batch's sentAt closes the window
        "d-console-after": [console(1500)],  # not a response
        "d-mouse-after": [rrweb(1300, MOUSE)],  # an incremental snapshot, but not a DOM mutation (source 0)
        "d-late-page": [page(2200, "https://shop.example/late")],  # a response, but 1,200 ms later
        "d-page-after": [page(1500, "https://shop.example/next")],
        "d-network-after": [network(1800)],
        "d-mutation-after": [rrweb(1300, MUTATION)],
    }
    for sid, after in cases.items():
        past.send(sid, [rrweb(0, SNAPSHOT), page(0), click(1000, "a#cta"), *after])
    past.send("d-no-recording", [page(0), click(1000, "a#cta")])
    assert per_session(past.server, "deadClickCount") == {
        "d-nothing": 1, "d-console-after": 1, "d-mouse-after": 1, "d-late-page": 1,
        "d-page-after": 0, "d-network-after": 0, "d-mutation-after": 0, "d-no-recording": 0}
    assert signals(past.server, "d-nothing") == [("DeadClickEvent", past.at(1000), "a#cta")]


def test_dead_clicks_across_batches(future: Timeline) -> None:
    start = [rrweb(0, SNAPSHOT), page(0), click(1000, "a#cta")]
    for sid in ("x-silent", "x-network", "x-mutation"):
        future.send(sid, start)
    # sentAt precedes the click: its window is still open, so nothing is judged yet.
    assert per_session(future.server, "deadClickCount") == {"x-silent": 0, "x-network": 0, "x-mutation": 0}
    future.send("x-silent", [console(2500)], seq=1)  # a later event closes the window with no response
    future.send("x-network", [network(1500), console(2500)], seq=1)
    future.send("x-mutation", [rrweb(1900, MUTATION)], seq=1)
    future.send("x-mutation", [console(4000)], seq=2)
    assert per_session(future.server, "deadClickCount") == {"x-silent": 1, "x-network": 0, "x-mutation": 0}
    assert signals(future.server, "x-silent") == [("DeadClickEvent", future.at(1000), "a#cta")]


def test_a_click_judged_at_its_batch_sentat_stays_judged(past: Timeline) -> None:
    past.send("j-late", [rrweb(0, SNAPSHOT), page(0), click(1000, "a#cta")])
    assert per_session(past.server, "deadClickCount") == {"j-late": 1}
    past.send("j-late", [page(1500, "https://shop.example/next")], seq=1)  # the window had closed at sentAt
    assert per_session(past.server, "deadClickCount") == {"j-late": 1}


def test_error_clicks(past: Timeline, future: Timeline) -> None:
    past.send("e-soon", [page(0), click(1000, "button#pay"), error(1800)])
    past.send("e-late", [page(0), click(1000, "button#pay"), error(2500)])
    future.send("e-next-batch", [page(0), click(1000, "button#pay")])
    future.send("e-next-batch", [error(1400)], seq=1)
    assert per_session(past.server, "errorClickCount") == {"e-soon": 1, "e-late": 0, "e-next-batch": 1}
    assert per_session(past.server, "deadClickCount") == {"e-soon": 0, "e-late": 0, "e-next-batch": 0}
    assert signals(past.server, "e-soon") == [("ErrorClickEvent", past.at(1000), "button#pay")]
    assert signals(future.server, "e-next-batch") == [("ErrorClickEvent", future.at(1000), "button#pay")]


# -- users -----------------------------------------------------------------------------------------------------

USER = "id identified name email traits firstSeen lastSeen sessionCount sessions { nodes { id } }"


def user(server: Server, uid: str) -> dict[str, Any]:
    found = server.data(f"query($id: ID!) {{ user(id: $id) {{ {USER} }} }}", {"id": uid})["user"]
    assert found is not None, uid
    return found


def test_identify_attaches_sessions_and_merges_traits(past: Timeline) -> None:
    past.send("u-a1", [page(0), identify(1000, "u-1", name="Ada", email="ada@example.com", plan="free",
                                         company="ACME"), click(2000)])
    past.send("u-a1", [identify(5000, "u-1", plan="pro"), page(6000)], seq=1)  # the same session, again
    first = user(past.server, "u-1")
    assert first["traits"] == {"name": "Ada", "email": "ada@example.com", "plan": "pro", "company": "ACME"}
    assert first["sessionCount"] == 1

    past.send("u-a2", [page(100_000), identify(100_500, "u-1", plan="enterprise", seats=5), page(130_000)])
    past.send("anon", [page(200_000), click(201_000)])
    assert user(past.server, "u-1") == {
        "id": "u-1", "identified": True, "name": "Ada", "email": "ada@example.com",
        "traits": {"name": "Ada", "email": "ada@example.com", "plan": "enterprise", "company": "ACME", "seats": 5},
        "firstSeen": past.at(0), "lastSeen": past.at(130_000), "sessionCount": 2,
        "sessions": {"nodes": [{"id": "u-a2"}, {"id": "u-a1"}]},  # newest first
    }
    assert session(past.server, "u-a1", "user { id identified name }")["user"] == {
        "id": "u-1", "identified": True, "name": "Ada"}
    assert session(past.server, "anon", f"user {{ {USER} }}")["user"] == {
        "id": "anonymous:anon", "identified": False, "name": None, "email": None, "traits": {},
        "firstSeen": past.at(200_000), "lastSeen": past.at(201_000), "sessionCount": 1,
        "sessions": {"nodes": [{"id": "anon"}]}}
    assert past.server.data("{ users { totalCount nodes { id } } }")["users"] == {
        "totalCount": 1, "nodes": [{"id": "u-1"}]}


def test_a_user_identified_late_was_seen_from_the_session_start(past: Timeline) -> None:
    past.send("u-late", [page(0), click(500)])
    past.send("u-late", [page(10_000), identify(11_000, "u-2")], seq=1)
    past.send("u-late", [page(20_000)], seq=2)
    past.send("u-early", [page(60_000), identify(61_000, "u-3")], seq=1)  # arrives before the session's seq 0
    past.send("u-early", [page(50_000)], seq=0)
    seen = {uid: (found["firstSeen"], found["lastSeen"], found["sessionCount"])
            for uid, found in ((u, user(past.server, u)) for u in ("u-2", "u-3"))}
    assert seen == {"u-2": (past.at(0), past.at(20_000), 1), "u-3": (past.at(50_000), past.at(61_000), 1)}


# -- issues ----------------------------------------------------------------------------------------------------

def stack(bundle: str, line: int) -> str:
    return (f"TypeError: x\n    at submitOrder (https://shop.example/static/app.{bundle}.js:{line}:5)\n"
            f"    at HTMLButtonElement.onClick (https://shop.example/static/app.{bundle}.js:{line + 40}:9)")


def pay_error(at: int, order: int, ref: str, bundle: str, line: int, error_type: str = "TypeError") -> Ev:
    return error(at, f"Payment {order} failed for order {ref}", error_type, stack(bundle, line))


ISSUE = """id status count errorType firstSeen lastSeen sessionCount userCount releases
  occurrences { nodes { timestamp message sessionId } } sessions { nodes { id } }"""


def issues(server: Server) -> dict[str, dict[str, Any]]:
    nodes = server.data(f"{{ issues(first: 10) {{ nodes {{ {ISSUE} }} }} }}")["issues"]["nodes"]
    return {n["errorType"]: n for n in nodes}


def set_status(server: Server, issue_id: str, status: str) -> None:
    done = server.data("mutation($id: ID!, $s: IssueStatus!) { updateIssue(id: $id, status: $s) { status } }",
                       {"id": issue_id, "s": status})
    assert done["updateIssue"]["status"] == status


def test_errors_group_into_issues(past: Timeline) -> None:
    newer = {**CONTEXT, "release": "1.5.0"}
    past.send("i-1", [page(0), identify(100, "u-9"), pay_error(1000, 4711, "0a1b2c3d4e5f", "3f9a1c2d", 10)])
    past.send("i-2", [page(10_000), pay_error(11_000, 92, "77ffee001122", "9b8c7d6e", 14),
                      pay_error(12_000, 92, "77ffee001122", "9b8c7d6e", 14, error_type="RangeError")],
              context=newer)
    found = issues(past.server)
    assert set(found) == {"TypeError", "RangeError"}
    assert found["TypeError"] == {
        "id": found["TypeError"]["id"], "status": "OPEN", "count": 2, "errorType": "TypeError",
        "firstSeen": past.at(1000), "lastSeen": past.at(11_000), "sessionCount": 2, "userCount": 2,
        "releases": ["1.4.2", "1.5.0"],
        "occurrences": {"nodes": [  # newest first, each message as sent
            {"timestamp": past.at(11_000), "message": "Payment 92 failed for order 77ffee001122", "sessionId": "i-2"},
            {"timestamp": past.at(1000), "message": "Payment 4711 failed for order 0a1b2c3d4e5f",
             "sessionId": "i-1"}]},
        "sessions": {"nodes": [{"id": "i-2"}, {"id": "i-1"}]},
    }
    assert (found["RangeError"]["count"], found["RangeError"]["sessionCount"]) == (1, 1)
    errors = session(past.server, "i-2", "errors { nodes { ... on ErrorEvent { issue { id } } } }")
    assert [e["issue"]["id"] for e in errors["errors"]["nodes"]] == [found["TypeError"]["id"],
                                                                     found["RangeError"]["id"]]

    set_status(past.server, found["TypeError"]["id"], "RESOLVED")
    set_status(past.server, found["RangeError"]["id"], "IGNORED")
    past.send("i-3", [page(20_000), pay_error(21_000, 5, "abcdef012345", "00aa11bb", 99),
                      pay_error(22_000, 5, "abcdef012345", "00aa11bb", 99, error_type="RangeError")])
    again = issues(past.server)
    assert (again["TypeError"]["status"], again["TypeError"]["count"]) == ("OPEN", 3)  # a regression reopens
    assert (again["RangeError"]["status"], again["RangeError"]["count"]) == ("IGNORED", 2)
    assert again["TypeError"]["lastSeen"] == past.at(21_000)
    assert [n["id"] for n in again["TypeError"]["sessions"]["nodes"]] == ["i-3", "i-2", "i-1"]


# -- recordings ------------------------------------------------------------------------------------------------

FRAMES: list[Ev] = [
    {"type": 4, "timestamp": 1, "data": {"href": "https://shop.example/", "width": 1440, "height": 900}},
    {"type": 2, "timestamp": 2, "data": {"node": {"type": 0, "id": 1, "childNodes": [
        {"type": 2, "tagName": "p", "attributes": {"class": "greeting", "data-x": ""}, "childNodes": [
            {"type": 3, "textContent": "Grüße, 世界 🎉 \"quoted\" \\ back\nslash"}]}]},
        "initialOffset": {"top": 0, "left": 0}}},
    {"type": 3, "timestamp": 3, "data": {"source": 0, "texts": [], "attributes": [], "removes": [],
                                         "adds": [{"parentId": 1, "nextId": None, "node": {"type": 3, "id": 9}}]}},
    {"type": 3, "timestamp": 4, "data": {"source": 2, "type": 2, "id": 5, "x": 10.5, "y": 20.25}},
    {"type": 5, "timestamp": 5, "data": {"tag": "cart", "payload": {"list": [1, 2.5, True, False, None, "PLACE"]}}},
]


def test_recording_is_returned_as_sent_in_time_order_and_paginated(past: Timeline) -> None:
    # seq 1 (later frames) arrives first; within seq 0 the frames are listed out of time order.
    late = past.batch("rec", [rrweb(3000, FRAMES[3]), rrweb(4000, FRAMES[4])], seq=1)
    escaped = orjson.dumps(late).replace(b'"PLACE"', b'"caf\\u00e9 \\ud83c\\udf89"')  # JSON escapes, not UTF-8
    assert past.server.ingest(escaped).status_code == 200
    past.send("rec", [page(0), rrweb(200, FRAMES[2]), rrweb(0, FRAMES[0]), rrweb(100, FRAMES[1])])
    expected = [*FRAMES[:4], {**FRAMES[4], "data": {"tag": "cart", "payload": {
        "list": [1, 2.5, True, False, None, "café 🎉"]}}}]

    query = """query($after: String) { session(id: "rec") { hasRecording eventCount
      recording(first: 2, after: $after) { totalCount nodes edges { cursor } pageInfo { hasNextPage endCursor } } } }"""
    pages, after = [], None
    while True:
        found = past.server.data(query, {"after": after})["session"]
        assert (found["hasRecording"], found["eventCount"]) == (True, 1)  # the page view; rrweb frames are not events
        rec = found["recording"]
        assert rec["totalCount"] == 5
        assert rec["pageInfo"]["endCursor"] == rec["edges"][-1]["cursor"]
        pages.append(rec["nodes"])
        after = rec["pageInfo"]["endCursor"]
        if not rec["pageInfo"]["hasNextPage"]:
            break
    assert pages == [expected[0:2], expected[2:4], expected[4:5]]
    everything = past.server.data('{ session(id: "rec") { recording { nodes } } }')["session"]["recording"]
    assert everything["nodes"] == expected


def test_a_direct_landing_keeps_no_referrer_whatever_later_pages_had(server: Server) -> None:
    """The landing page had no referrer; a later page had one. Imported together, both batches fold in one
    group commit (DuckDB) or on read (ClickHouse): the absence must win, not the later value."""
    from replayql.ingest.importer import import_batches

    base = now_ms() - 3_600_000
    batches = [make_batch("s-direct", [page(base, HOME)], sent_at=base + 10),
               make_batch("s-direct", [page(base + 5_000, "https://shop.example/cart", referrer=HOME)], seq=1,
                          sent_at=base + 5_010)]
    report = import_batches((orjson.dumps(b) for b in batches), server.services.writer, lambda app: True,
                            server.settings.limits)
    assert report.stored == 2
    found = session(server, "s-direct", "initialUrl referrer pageCount")
    assert found == {"initialUrl": HOME, "referrer": None, "pageCount": 2}


# -- rrweb roles ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("rrweb", "role"), [
    ({"type": 3, "data": {"source": 0, "adds": []}}, "RESPONSE"),  # a DOM mutation
    ({"type": 3, "data": {"source": 1, "positions": []}}, "ACTIVITY"),  # mouse move
    ({"type": 3, "data": {"source": 2, "type": 2}}, "ACTIVITY"),  # mouse interaction
    ({"type": 3, "data": {"source": 3, "x": 0, "y": 10}}, "ACTIVITY"),  # scroll
    ({"type": 3, "data": {"source": 5, "text": "***"}}, "ACTIVITY"),  # input
    ({"type": 3, "data": {"source": 4, "width": 10}}, "NONE"),  # viewport resize
    ({"type": 2, "data": {"node": {"source": 0}}}, "NONE"),  # full snapshot
    ({"type": 4, "data": {"href": "https://x.example/"}}, "NONE"),  # meta
    ({"type": 3, "data": "odd"}, "NONE"),  # unreadable head
])
def test_rrweb_roles_are_the_same_whatever_the_key_order(rrweb: dict[str, Any], role: str) -> None:
    """rrweb's own order is read from the leading bytes; any other order is decoded: same role either way."""
    orders = [dict(rrweb, timestamp=T0),  # rrweb's: type, data, timestamp
              {"timestamp": T0, **dict(reversed(rrweb.items()))},  # data first
              {"type": rrweb["type"], "timestamp": T0, "data": rrweb["data"]}]
    for spacing in (None, (", ", ": ")):
        events = [RecordingEvent(ts=T0, data=msgspec.Raw(
            json.dumps(order, separators=spacing).encode() if spacing else orjson.dumps(order))) for order in orders]
        assert [r.name for r in _rrweb_roles(events)] == [role] * len(orders)
