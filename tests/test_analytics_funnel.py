"""`funnel` on both stores, over eleven hand-built sessions whose answers follow from the table below.

Steps A = visited(path = "/"), B = visited(path = "/product"), C = custom("Buy"). Day d starts at
2025-11-26T00:00Z + d days; a session starts at 06:00Z + the hour given; event times are ms after its start.

  session  day  hour  browser  user             events
  f1       0    0     Chrome   ua (plan pro)    A@0  B@1000  C@3000
  f2       0    1     Chrome   ub (plan free)   A@0  B@2000  C@7000
  f3       0    2     Safari   anonymous        A@0  B@4000
  f4       0    3     Safari   anonymous        A@0  C@5000                      (C without B)
  f5       1    0     Firefox  anonymous        B@0  A@1000  B@9000  C@10000     (a B before the first A)
  f6a      1    1     Chrome   uc (plan pro)    A@0  B@500
  f7       1    2     Chrome   anonymous        A@0  A@100  B@20000  C@20500
  f8       3    0     Firefox  anonymous        A@0  custom("Other")@500  B@1000  C@1500
  f9       3    1     Chrome   anonymous        A@0  network@200  LCP@300  B@1000  C@2000
  f10      3    2     Chrome   ua               A@0
  f6b      3    3     Safari   uc               C@0      (uc's C, two days after uc's B: f6b's start - (f6a's + 500))

By session (LOOSE, no window): step 1 all but f6b (10); B after the first A: not f4 or f10 (8); C after that B:
f1 f2 f5 f7 f8 f9 (6). By user: ua ub uc and the six anonymous sessions enter (9); uc converts across its two sessions.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy
import pytest

from conftest import CONTEXT, Server, load, make_batch, new_location, served
from shop import FIREFOX, SAFARI

DAY, HOUR = 86_400_000, 3_600_000
D0 = int(datetime(2025, 11, 26, tzinfo=UTC).timestamp() * 1000)
A, B, C = 'visited(path = "/")', 'visited(path = "/product")', 'custom("Buy")'
ABC = [A, B, C]
NORMALISED = ["visited(path = /)", "visited(path = /product)", "custom(Buy)"]  # the steps as `step` prints them
USERS = {"ua": {"plan": "pro"}, "ub": {"plan": "free"}, "uc": {"plan": "pro"}}
SESSIONS: dict[str, tuple[int, int, dict[str, Any], str | None, list[tuple[int, str]]]] = {
    "f1": (0, 0, CONTEXT, "ua", [(0, "A"), (1000, "B"), (3000, "C")]),
    "f2": (0, 1, CONTEXT, "ub", [(0, "A"), (2000, "B"), (7000, "C")]),
    "f3": (0, 2, SAFARI, None, [(0, "A"), (4000, "B")]),
    "f4": (0, 3, SAFARI, None, [(0, "A"), (5000, "C")]),
    "f5": (1, 0, FIREFOX, None, [(0, "B"), (1000, "A"), (9000, "B"), (10000, "C")]),
    "f6a": (1, 1, CONTEXT, "uc", [(0, "A"), (500, "B")]),
    "f7": (1, 2, CONTEXT, None, [(0, "A"), (100, "A"), (20000, "B"), (20500, "C")]),
    "f8": (3, 0, FIREFOX, None, [(0, "A"), (500, "Other"), (1000, "B"), (1500, "C")]),
    "f9": (3, 1, CONTEXT, None, [(0, "A"), (200, "network"), (300, "vital"), (1000, "B"), (2000, "C")]),
    "f10": (3, 2, CONTEXT, "ua", [(0, "A")]),
    "f6b": (3, 3, SAFARI, "uc", [(0, "C")]),
}
UC_B_TO_C = (3 * DAY + 9 * HOUR) - (1 * DAY + 7 * HOUR + 500)  # f6b's C minus f6a's B


def _event(at: int, what: str) -> dict[str, Any]:
    shop = "https://shop.example"
    return {
        "A": {"type": "page", "ts": at, "url": shop + "/"},
        "B": {"type": "page", "ts": at, "url": shop + "/product"},
        "C": {"type": "custom", "ts": at, "name": "Buy", "properties": {}},
        "Other": {"type": "custom", "ts": at, "name": "Other", "properties": {}},
        "network": {"type": "network", "ts": at, "method": "GET", "url": shop + "/api/cart", "status": 200,
                    "durationMs": 40},
        "vital": {"type": "vital", "ts": at, "name": "LCP", "value": 1200},
    }[what]


def _batches() -> list[dict[str, Any]]:
    out = []
    for sid, (day, hour, context, user, events) in SESSIONS.items():
        start = D0 + day * DAY + (6 + hour) * HOUR
        found = [_event(start + at, what) for at, what in events]
        if user is not None:
            found.insert(0, {"type": "identify", "ts": start, "userId": user, "traits": USERS[user]})
        out.append(make_batch(sid, found, context=context))
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


ALL_DAYS = {"from": _iso(D0), "to": _iso(D0 + 4 * DAY)}


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory, store_kind: str, chdb_path: Path) -> Iterator[Server]:
    """The sessions above on one server shared by this module's tests (all of them only read)."""
    with served(new_location(store_kind, tmp_path_factory.mktemp("funnel") / "data", chdb_path)) as running:
        load(running, _batches())
        yield running


STEP_FIELDS = ("index step count conversionFromFirst conversionFromPrevious droppedOff medianTimeToConvertMs "
               "p90TimeToConvertMs")
QUERY = f"""query($i: FunnelInput!) {{ funnel(input: $i) {{ countBy order windowMs appliedQuery
  steps {{ {STEP_FIELDS} }}
  breakdown {{ field truncated groupCount groups {{ value steps {{ count droppedOff }} }} }}
  series {{ time entered completed conversion }} }} }}"""


def _funnel(server: Server, steps: list[str] = ABC, **given: Any) -> dict[str, Any]:
    return server.data(QUERY, {"i": {"steps": steps, "timeRange": ALL_DAYS, **given}})["funnel"]


def _counts(server: Server, steps: list[str] = ABC, **given: Any) -> list[int]:
    return [s["count"] for s in _funnel(server, steps, **given)["steps"]]


def _error(server: Server, given: dict[str, Any], query: str = QUERY) -> tuple[str, str]:
    response = server.gql(query, {"i": given})
    errors = response.json()["errors"]
    return errors[0]["extensions"]["code"], errors[0]["message"]


def test_loose_by_session(shop: Server) -> None:
    found = _funnel(shop)
    assert (found["countBy"], found["order"], found["windowMs"], found["appliedQuery"]) == \
        ("SESSION", "LOOSE", None, None)
    steps = [{k: v for k, v in s.items() if "Time" not in k} for s in found["steps"]]
    assert steps == [
        {"index": 1, "step": NORMALISED[0], "count": 10, "conversionFromFirst": 1.0, "conversionFromPrevious": 1.0,
         "droppedOff": 0},
        {"index": 2, "step": NORMALISED[1], "count": 8, "conversionFromFirst": 0.8, "conversionFromPrevious": 0.8,
         "droppedOff": 2},
        {"index": 3, "step": NORMALISED[2], "count": 6, "conversionFromFirst": 0.6, "conversionFromPrevious": 0.75,
         "droppedOff": 2}]


def test_order_of_steps(shop: Server) -> None:
    # B then A: every session with a B enters at its first B; only f5 visits / after it.
    assert _counts(shop, [B, A]) == [8, 1]
    # A then C, B not asked: f4's C now counts.
    assert _counts(shop, [A, C]) == [10, 7]
    # One event is never two steps: f7 has two A's, f10 one.
    assert _counts(shop, [A, A]) == [10, 1]


def test_conversion_window(shop: Server) -> None:
    assert _counts(shop, windowMs=10_000) == [10, 7, 5]  # f7's B is 20 s after its A
    assert _counts(shop, windowMs=9_000) == [10, 7, 5]  # f5's C is exactly 9 s after its A: inside
    assert _counts(shop, windowMs=8_999) == [10, 7, 4]
    assert _counts(shop, windowMs=20_000) == [10, 8, 5]  # f7's B at exactly 20 s; its C at 20.5 s is out
    assert _counts(shop, windowMs=19_999) == [10, 7, 5]
    assert _funnel(shop, windowMs=10_000)["windowMs"] == 10_000


def test_strict_and_loose_order(shop: Server) -> None:
    # Strict: f4 (C next), f7 (A next) and f8 (custom "Other" next) stop at step 1; f9's network request and
    # vital between A and B are not of a step's kind, so they do not break the chain.
    assert _counts(shop, order="STRICT") == [10, 6, 4]
    assert _counts(shop, order="LOOSE") == [10, 8, 6]
    assert _counts(shop, order="STRICT", countBy="USER") == [9, 6, 5]
    assert _funnel(shop, order="STRICT")["order"] == "STRICT"


def test_by_user_and_by_session(shop: Server) -> None:
    by_user = _funnel(shop, countBy="USER")
    assert by_user["countBy"] == "USER"
    # ua enters once although f1 and f10 both visit /; uc converts across f6a and f6b.
    assert [s["count"] for s in by_user["steps"]] == [9, 8, 7]
    assert _counts(shop, countBy="SESSION") == [10, 8, 6]


def test_time_to_convert(shop: Server) -> None:
    a_to_b = [1000, 2000, 4000, 8000, 500, 20_000, 1000, 1000]  # f1 f2 f3 f5 f6a f7 f8 f9
    b_to_c = [2000, 5000, 1000, 500, 500, 1000]  # f1 f2 f5 f7 f8 f9
    by_user_b_to_c = [2000, 5000, UC_B_TO_C, 1000, 500, 500, 1000]  # ua ub uc f5 f7 f8 f9
    for count_by, durations in (("SESSION", [a_to_b, b_to_c]), ("USER", [a_to_b, by_user_b_to_c])):
        steps = _funnel(shop, countBy=count_by)["steps"]
        assert steps[0]["medianTimeToConvertMs"] is None and steps[0]["p90TimeToConvertMs"] is None
        for step, values in zip(steps[1:], durations, strict=True):
            assert step["medianTimeToConvertMs"] == pytest.approx(float(numpy.percentile(values, 50)), abs=1e-6)
            assert step["p90TimeToConvertMs"] == pytest.approx(float(numpy.percentile(values, 90)), abs=1e-6)


def test_time_range(shop: Server) -> None:
    days_1_2 = {"from": _iso(D0 + DAY), "to": _iso(D0 + 3 * DAY)}  # f5, f6a and f7 start a chain
    assert _counts(shop, timeRange=days_1_2) == [3, 3, 2]
    # Without a window, uc's C (day 3) is out of the range; with a three-day window it counts.
    assert _counts(shop, timeRange=days_1_2, countBy="USER") == [3, 3, 2]
    assert _counts(shop, timeRange=days_1_2, countBy="USER", windowMs=3 * DAY) == [3, 3, 3]
    # A user's chain starts at the first step-1 event in the range: ua's A of f10, with nothing after it.
    day_3 = {"from": _iso(D0 + 3 * DAY), "to": _iso(D0 + 4 * DAY)}
    assert _counts(shop, timeRange=day_3, countBy="USER") == [3, 2, 2]
    empty = _funnel(shop, timeRange={"from": _iso(D0 + 2 * DAY), "to": _iso(D0 + 3 * DAY)})["steps"]
    assert [(s["count"], s["conversionFromFirst"], s["conversionFromPrevious"], s["medianTimeToConvertMs"])
            for s in empty] == [(0, None, None, None)] * 3


def test_session_restriction(shop: Server) -> None:
    chrome = _funnel(shop, query="browser = Chrome")
    assert [s["count"] for s in chrome["steps"]] == [6, 5, 4]
    assert chrome["appliedQuery"] == "browser = Chrome"
    assert _counts(shop, sessionFilter={"browser": {"eq": "Chrome"}}) == [6, 5, 4]
    # Only the Chrome sessions' events count: uc's C was in a Safari session.
    assert _counts(shop, query="browser = Chrome", countBy="USER") == [5, 5, 4]
    assert _counts(shop, query="browser = Safari", countBy="USER") == [2, 1, 0]
    both = _funnel(shop, query="identified = true", sessionFilter={"browser": {"eq": "Chrome"}})
    assert [s["count"] for s in both["steps"]] == [4, 3, 2]  # f1 f2 f6a f10; f10 has no B, f6a no C
    assert both["appliedQuery"] == "browser = Chrome AND identified = true"


def test_typed_steps(shop: Server) -> None:
    typed = [{"kind": "VISITED", "path": {"eq": "/"}}, {"kind": "VISITED", "path": {"eq": "/product"}},
             {"kind": "CUSTOM", "name": {"eq": "Buy"}}]
    found = _funnel(shop, [], typedSteps=typed)
    assert [s["count"] for s in found["steps"]] == [10, 8, 6]
    assert [s["step"] for s in found["steps"]] == NORMALISED


def test_breakdown(shop: Server) -> None:
    found = _funnel(shop, breakdown="browser")["breakdown"]
    groups = {g["value"]: [s["count"] for s in g["steps"]] for g in found["groups"]}
    assert [g["value"] for g in found["groups"]] == ["Chrome", "Firefox", "Safari"]  # by step-1 count, then value
    assert groups == {"Chrome": [6, 5, 4], "Firefox": [2, 2, 2], "Safari": [2, 1, 0]}
    assert (found["field"], found["truncated"], found["groupCount"]) == ("browser", False, 3)
    cut = _funnel(shop, breakdown="browser", breakdownLimit=2)["breakdown"]
    assert [g["value"] for g in cut["groups"]] == ["Chrome", "Firefox"]
    assert (cut["truncated"], cut["groupCount"]) == (True, 3)
    plans = _funnel(shop, breakdown="trait.plan", countBy="USER")["breakdown"]["groups"]
    assert [(g["value"], [s["count"] for s in g["steps"]]) for g in plans] == [
        (None, [6, 5, 4]), ("pro", [2, 2, 2]), ("free", [1, 1, 1])]
    # The same trait named from a session funnel: each session by its user's plan.
    sessions = _funnel(shop, breakdown="user.trait.plan")["breakdown"]["groups"]
    assert [(g["value"], [s["count"] for s in g["steps"]]) for g in sessions] == [
        (None, [6, 5, 4]), ("pro", [3, 2, 1]), ("free", [1, 1, 1])]


def test_series(shop: Server) -> None:
    berlin = {"from": "2025-11-25T23:00:00Z", "to": "2025-11-29T23:00:00Z"}  # Nov 26 - 29, local days
    series = _funnel(shop, timeRange=berlin, interval="DAY", timeZone="Europe/Berlin")["series"]
    assert series == [
        {"time": "2025-11-26T00:00:00+01:00", "entered": 4, "completed": 2, "conversion": 0.5},
        {"time": "2025-11-27T00:00:00+01:00", "entered": 3, "completed": 2, "conversion": 2 / 3},
        {"time": "2025-11-28T00:00:00+01:00", "entered": 0, "completed": 0, "conversion": None},
        {"time": "2025-11-29T00:00:00+01:00", "entered": 3, "completed": 2, "conversion": 2 / 3}]
    assert _funnel(shop)["series"] is None


DROPPED = """query($i: FunnelInput!, $first: Int, $after: String) { funnel(input: $i) { steps {
  droppedSessions(first: $first, after: $after) { totalCount nodes { id } pageInfo { hasNextPage endCursor } } } } }"""
DROPPED_USERS = """query($i: FunnelInput!) { funnel(input: $i) { steps {
  droppedUsers(first: 10) { totalCount nodes { id identified } } } } }"""
DROPPED_IN_GROUPS = """query($i: FunnelInput!) { funnel(input: $i) { breakdown { groups { value steps {
  droppedSessions { nodes { id } } } } } } }"""


def test_dropped_sessions(shop: Server) -> None:
    given = {"steps": ABC, "timeRange": ALL_DAYS}
    steps = shop.data(DROPPED, {"i": given, "first": 10})["funnel"]["steps"]
    assert [[n["id"] for n in s["droppedSessions"]["nodes"]] for s in steps] == [[], ["f10", "f4"], ["f6a", "f3"]]
    assert [s["droppedSessions"]["totalCount"] for s in steps] == [0, 2, 2]
    first = shop.data(DROPPED, {"i": given, "first": 1})["funnel"]["steps"][2]["droppedSessions"]
    assert [n["id"] for n in first["nodes"]] == ["f6a"] and first["pageInfo"]["hasNextPage"] is True
    rest = shop.data(DROPPED, {"i": given, "first": 1, "after": first["pageInfo"]["endCursor"]})
    last = rest["funnel"]["steps"][2]["droppedSessions"]
    assert [n["id"] for n in last["nodes"]] == ["f3"] and last["pageInfo"]["hasNextPage"] is False
    groups = shop.data(DROPPED_IN_GROUPS, {"i": {**given, "breakdown": "browser"}})["funnel"]["breakdown"]["groups"]
    assert {g["value"]: [[n["id"] for n in s["droppedSessions"]["nodes"]] for s in g["steps"]] for g in groups} == {
        "Chrome": [[], ["f10"], ["f6a"]], "Firefox": [[], [], []], "Safari": [[], ["f4"], ["f3"]]}


def test_dropped_users(shop: Server) -> None:
    given = {"steps": ABC, "timeRange": ALL_DAYS, "countBy": "USER", "windowMs": 10_000}
    steps = shop.data(DROPPED_USERS, {"i": given})["funnel"]["steps"]
    assert [[(n["id"], n["identified"]) for n in s["droppedUsers"]["nodes"]] for s in steps] == [
        [], [("anonymous:f7", False), ("anonymous:f4", False)], [("uc", True), ("anonymous:f3", False)]]
    assert [s["droppedUsers"]["totalCount"] for s in steps] == [0, 2, 2]


def test_bad_steps(shop: Server) -> None:
    for step, expected in [("browser = Chrome", "step 2: a funnel step is one event condition"),
                           (f"{A} THEN {B}", "not a sequence"),
                           (f"{A} AND {B}", "not an AND"),
                           ("visited(", "step 2:"),
                           ("visited(color = red)", "`visited` has no field `color`")]:
        code, message = _error(shop, {"steps": [A, step]})
        assert code == "BAD_QUERY" and expected in message, (step, message)


def test_bad_input(shop: Server) -> None:
    cases = [({"steps": []}, "at least one step"),
             ({"steps": [A], "typedSteps": [{"kind": "VISITED"}]}, "not both"),
             ({"steps": [A], "windowMs": 0}, "windowMs"),
             ({"steps": [A], "windowMs": 1.5}, "whole number"),
             ({"steps": [A], "interval": "DAY"}, "interval needs a timeRange"),
             ({"steps": [A], "breakdown": "colour"}, "unknown breakdown `colour`"),
             ({"steps": [A], "breakdown": "startedAt"}, "is a time"),
             ({"steps": [A], "breakdownLimit": 0}, "breakdownLimit"),
             ({"steps": [A], "timeRange": ALL_DAYS, "interval": "DAY", "timeZone": "Mars/Olympus"}, "time zone"),
             ({"steps": [A] * 17}, "at most 16 steps")]
    for given, expected in cases:
        code, message = _error(shop, given)
        assert code == "BAD_USER_INPUT" and expected in message, (given, message)
    code, message = _error(shop, {"steps": [A, B]}, DROPPED_USERS)
    assert code == "BAD_USER_INPUT" and "droppedSessions" in message
    code, message = _error(shop, {"steps": [A], "timeRange": {"from": _iso(D0), "to": _iso(D0 + 60 * DAY)},
                                  "interval": "MINUTE"})
    assert code == "TOO_MANY_CELLS", message
