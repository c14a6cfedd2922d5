"""`retention` on both stores, over hand-built sessions around the start of summer time in Europe/Berlin
(2025-03-30 02:00 CET → 03:00 CEST: a 23-hour day, a 167-hour week). Every expected figure follows from the
table below. Each session lasts five minutes; "+1m" is a minute after the session's start.

  user  session start (UTC)  Berlin local          browser  events
  u1    2025-03-29 22:30     Mar 29 23:30 +01      Chrome   Signup +1m                 (plan pro; first session)
  u1    2025-03-30 20:30     Mar 30 22:30 +02      Safari   Purchase +1m
  u1    2025-03-30 22:30     Mar 31 00:30 +02      Safari
  u1    2025-04-14 10:00     Apr 14 12:00 +02      Safari
  u2    2025-03-29 23:30     Mar 30 00:30 +01      Safari   Purchase +1m               (plan free; first session)
  u2    2025-03-31 21:30     Mar 31 23:30 +02      Safari   Signup +1m, Purchase +2m
  u2    2025-05-05 10:00     May 5 12:00 +02       Safari
  a1    2025-03-30 12:00     Mar 30 14:00 +02      Firefox  Signup +1m                 (anonymous)
  u3    2025-03-31 10:00     Mar 31 12:00 +02      Chrome                              (plan pro)
  u3    2025-04-02 10:00     Apr 2 12:00 +02       Chrome
  u5    2025-02-28 23:30     Mar 1 00:30 +01       Chrome                              (no plan)
  u5    2025-03-31 22:30     Apr 1 00:30 +02       Chrome

By Berlin day: u1's cohort is Mar 29, u2's and a1's Mar 30 (u2's is Mar 29 in UTC), u3's Mar 31; u5 was first seen
on Mar 1 (Feb 28 in UTC), so a session of u5's inside a later range does not make u5 part of its cohorts.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import CONTEXT, Server, close_services, load, make_batch, start_server
from replayql.config import AnalyticsLimits

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}
FIREFOX = {**CONTEXT, "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"}
MINUTE = 60_000


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def _session(sid: str, start: str, context: dict[str, Any], user: str | None = None,
             traits: dict[str, Any] | None = None, custom: tuple[str, ...] = ()) -> dict[str, Any]:
    t0 = _ms(start)
    events: list[dict[str, Any]] = [{"type": "page", "ts": t0, "url": "https://shop.example/"}]
    if user is not None:
        events.append({"type": "identify", "ts": t0, "userId": user, "traits": traits or {}})
    events += [{"type": "custom", "ts": t0 + (i + 1) * MINUTE, "name": name} for i, name in enumerate(custom)]
    events.append({"type": "console", "ts": t0 + 5 * MINUTE, "level": "log", "message": "bye"})
    return make_batch(sid, events, context=context)


BATCHES = [
    _session("u1a", "2025-03-29T22:30:00", CONTEXT, "u1", {"plan": "pro"}, ("Signup",)),
    _session("u1b", "2025-03-30T20:30:00", SAFARI, "u1", custom=("Purchase",)),
    _session("u1c", "2025-03-30T22:30:00", SAFARI, "u1"),
    _session("u1d", "2025-04-14T10:00:00", SAFARI, "u1"),
    _session("u2a", "2025-03-29T23:30:00", SAFARI, "u2", {"plan": "free"}, ("Purchase",)),
    _session("u2b", "2025-03-31T21:30:00", SAFARI, "u2", custom=("Signup", "Purchase")),
    _session("u2c", "2025-05-05T10:00:00", SAFARI, "u2"),
    _session("a1", "2025-03-30T12:00:00", FIREFOX, custom=("Signup",)),
    _session("u3a", "2025-03-31T10:00:00", CONTEXT, "u3", {"plan": "pro"}),
    _session("u3b", "2025-04-02T10:00:00", CONTEXT, "u3"),
    _session("u5a", "2025-02-28T23:30:00", CONTEXT, "u5"),
    _session("u5b", "2025-03-31T22:30:00", CONTEXT, "u5"),
]
BERLIN_DAYS = {"from": "2025-03-28T23:00:00Z", "to": "2025-03-31T22:00:00Z"}  # Mar 29 - Mar 31, local days
UTC_DAYS = {"from": "2025-03-29T00:00:00Z", "to": "2025-04-01T00:00:00Z"}
DAY_STARTS = ["2025-03-29T00:00:00+01:00", "2025-03-30T00:00:00+01:00", "2025-03-31T00:00:00+02:00"]

QUERY = """query($i: RetentionInput!) { retention(input: $i) {
  periods appliedQuery
  cohorts { start size counts rates completePeriods }
  overall { size sizes counts rates }
  groups { value cohorts { start size counts rates completePeriods } overall { size sizes counts rates } } } }"""


@pytest.fixture
def shop(server: Server) -> Server:
    load(server, BATCHES)
    return server


def _retention(server: Server, **given: Any) -> dict[str, Any]:
    return server.data(QUERY, {"i": given})["retention"]


def _cohort(start: str, size: int, counts: list[int], complete: int) -> dict[str, Any]:
    return {"start": start, "size": size, "counts": counts, "rates": [n / size if size else None for n in counts],
            "completePeriods": complete}


def _table(result: dict[str, Any]) -> list[tuple[str, int, list[int]]]:
    return [(c["start"], c["size"], c["counts"]) for c in result["cohorts"]]


def test_daily_cohorts_in_berlin_across_the_23_hour_day(shop: Server) -> None:
    result = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS)
    # Mar 29: u1, back Mar 30 (22:30 local) and Mar 31 (00:30 local). Mar 30 (23 hours): u2 (00:30 CET) back on
    # Mar 31, and a1. Mar 31: u3, back Apr 2. u5's session on Apr 1 is outside every cohort.
    assert result["cohorts"] == [_cohort(DAY_STARTS[0], 1, [1, 1, 1], 3), _cohort(DAY_STARTS[1], 2, [2, 1, 0], 2),
                                 _cohort(DAY_STARTS[2], 1, [1, 0, 1], 1)]
    # Overall period k: only the cohorts whose period k ended by timeRange.to (Apr 1 local midnight).
    assert result["overall"] == {"size": 4, "sizes": [4, 3, 1], "counts": [4, 2, 1], "rates": [1.0, 2 / 3, 1.0]}
    assert (result["periods"], result["groups"], result["appliedQuery"]) == (3, None, None)


def test_daily_cohorts_in_utc_move_u2_to_the_day_before(shop: Server) -> None:
    result = _retention(shop, interval="DAY", periods=3, timeRange=UTC_DAYS)
    # u5's session of Mar 31 22:30 UTC is inside the range, but u5 was first seen in February.
    assert _table(result) == [("2025-03-29T00:00:00+00:00", 2, [2, 1, 1]), ("2025-03-30T00:00:00+00:00", 1, [1, 0, 0]),
                              ("2025-03-31T00:00:00+00:00", 1, [1, 0, 1])]
    assert [c["completePeriods"] for c in result["cohorts"]] == [3, 2, 1]
    assert result["overall"]["sizes"] == [4, 3, 2] and result["overall"]["counts"] == [4, 1, 1]


def test_weekly_cohorts_from_monday_across_the_167_hour_week(shop: Server) -> None:
    result = _retention(shop, interval="WEEK", periods=4, timeZone="Europe/Berlin",
                        timeRange={"from": "2025-03-23T23:00:00Z", "to": "2025-04-06T22:00:00Z"})
    # Week of Mar 24: u1, u2, a1; back the week of Mar 31: u1 and u2; the week of Apr 14: u1.
    # Week of Mar 31: u3, back Apr 2 (the same week).
    assert result["cohorts"] == [_cohort("2025-03-24T00:00:00+01:00", 3, [3, 2, 0, 1], 2),
                                 _cohort("2025-03-31T00:00:00+02:00", 1, [1, 0, 0, 0], 1)]
    assert result["overall"] == {"size": 4, "sizes": [4, 3, 0, 0], "counts": [4, 2, 0, 0],
                                 "rates": [1.0, 2 / 3, None, None]}


def test_monthly_cohorts_by_zone(shop: Server) -> None:
    berlin = _retention(shop, interval="MONTH", periods=3, timeZone="Europe/Berlin",
                        timeRange={"from": "2025-01-31T23:00:00Z", "to": "2025-03-31T22:00:00Z"})
    # u5 starts on Mar 1 local: March holds all five; April: u1, u3, u5 (Apr 1 00:30 local); May: u2.
    assert berlin["cohorts"] == [_cohort("2025-02-01T00:00:00+01:00", 0, [0, 0, 0], 2),
                                 _cohort("2025-03-01T00:00:00+01:00", 5, [5, 3, 1], 1)]
    assert berlin["overall"] == {"size": 5, "sizes": [5, 0, 0], "counts": [5, 0, 0], "rates": [1.0, None, None]}
    utc = _retention(shop, interval="MONTH", periods=3,
                     timeRange={"from": "2025-02-01T00:00:00Z", "to": "2025-05-01T00:00:00Z"})
    # In UTC u5 starts in February and comes back in March; April's cohort is empty.
    assert _table(utc) == [("2025-02-01T00:00:00+00:00", 1, [1, 1, 0]), ("2025-03-01T00:00:00+00:00", 4, [4, 2, 1]),
                           ("2025-04-01T00:00:00+00:00", 0, [0, 0, 0])]
    assert [c["completePeriods"] for c in utc["cohorts"]] == [3, 2, 1]
    assert utc["overall"] == {"size": 5, "sizes": [5, 5, 1], "counts": [5, 3, 0], "rates": [1.0, 3 / 5, 0.0]}


def test_start_and_return_conditions(shop: Server) -> None:
    both = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                      start='custom("Signup")', **{"return": 'custom("Purchase")'})
    # Signups: u1 Mar 29, a1 Mar 30, u2 Mar 31 (local). u1 purchases on Mar 30; u2 a minute after signing up
    # (u2's purchase of Mar 30, before the signup, does not count); a1 never.
    assert _table(both) == [(DAY_STARTS[0], 1, [0, 1, 0]), (DAY_STARTS[1], 1, [0, 0, 0]),
                            (DAY_STARTS[2], 1, [1, 0, 0])]
    sessions = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                          start='custom("Signup")')
    # Any session back: the signup's own session counts for period 0.
    assert _table(sessions) == [(DAY_STARTS[0], 1, [1, 1, 1]), (DAY_STARTS[1], 1, [1, 0, 0]),
                                (DAY_STARTS[2], 1, [1, 0, 0])]
    purchases = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                           **{"return": 'custom("Purchase") OR custom("Refund")'})
    # First seen, back with a purchase: u1 on Mar 30; u2 on Mar 30 (its first session) and Mar 31.
    assert _table(purchases) == [(DAY_STARTS[0], 1, [0, 1, 0]), (DAY_STARTS[1], 2, [1, 1, 0]),
                                 (DAY_STARTS[2], 1, [0, 0, 0])]


def test_breakdown_by_trait_and_by_the_start_session(shop: Server) -> None:
    plans = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                       breakdownBy="trait.plan")
    groups = {g["value"]: [(c["size"], c["counts"]) for c in g["cohorts"]] for g in plans["groups"]}
    assert [g["value"] for g in plans["groups"]] == ["pro", "free", None]  # by size, then value, null last
    assert groups == {"pro": [(1, [1, 1, 1]), (0, [0, 0, 0]), (1, [1, 0, 1])],
                      "free": [(0, [0, 0, 0]), (1, [1, 1, 0]), (0, [0, 0, 0])],
                      None: [(0, [0, 0, 0]), (1, [1, 0, 0]), (0, [0, 0, 0])]}
    assert plans["groups"][0]["cohorts"][1]["rates"] == [None, None, None]
    assert plans["groups"][0]["overall"] == {"size": 2, "sizes": [2, 1, 1], "counts": [2, 1, 1],
                                             "rates": [1.0, 1.0, 1.0]}
    # The groups add up to the cohorts without a breakdown.
    whole = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS)
    assert plans["cohorts"] == whole["cohorts"] and plans["overall"] == whole["overall"]
    browsers = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                          breakdownBy="browser")
    # u1 started on Chrome and came back on Safari: u1 stays in Chrome.
    found = {g["value"]: [(c["size"], c["counts"]) for c in g["cohorts"]] for g in browsers["groups"]}
    assert found == {"Chrome": [(1, [1, 1, 1]), (0, [0, 0, 0]), (1, [1, 0, 1])],
                     "Safari": [(0, [0, 0, 0]), (1, [1, 1, 0]), (0, [0, 0, 0])],
                     "Firefox": [(0, [0, 0, 0]), (1, [1, 0, 0]), (0, [0, 0, 0])]}
    assert [g["value"] for g in browsers["groups"]] == ["Chrome", "Firefox", "Safari"]
    identified = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                            breakdownBy="identified")
    assert [(g["value"], g["overall"]["size"]) for g in identified["groups"]] == [(True, 3), (False, 1)]


def test_a_session_filter_limits_starts_and_returns(shop: Server) -> None:
    result = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                        query="browser = Chrome")
    # Chrome sessions only: u1's first (its returns were on Safari) and u3's two.
    assert _table(result) == [(DAY_STARTS[0], 1, [1, 0, 0]), (DAY_STARTS[1], 0, [0, 0, 0]),
                              (DAY_STARTS[2], 1, [1, 0, 1])]
    assert result["appliedQuery"] == "browser = Chrome"
    typed = _retention(shop, interval="DAY", periods=3, timeZone="Europe/Berlin", timeRange=BERLIN_DAYS,
                       sessionFilter={"browser": {"eq": "Chrome"}})
    assert typed["cohorts"] == result["cohorts"]


@pytest.mark.parametrize(("given", "code", "message"), [
    ({"periods": 0}, "BAD_USER_INPUT", "`periods` must be between 1 and 366"),
    ({"periods": 367}, "BAD_USER_INPUT", "`periods` must be between 1 and 366"),
    ({"timeRange": {"from": "2025-03-29T00:00:00Z"}}, "BAD_USER_INPUT", "both `from` and `to`"),
    ({"timeZone": "Mars/Olympus"}, "BAD_USER_INPUT", "unknown time zone"),
    ({"breakdownBy": "shoeSize"}, "BAD_USER_INPUT", "unknown field `shoeSize`"),
    ({"start": "browser = Chrome"}, "BAD_QUERY", "`start` is an event condition"),
    ({"return": 'custom("Purchase") THEN custom("Refund")'}, "BAD_QUERY", "`return` is an event condition"),
    ({"start": 'custom("Signup"'}, "BAD_QUERY", "line 1"),
    ({"start": 'visited(colour = "red")'}, "BAD_QUERY", "has no field `colour`"),
])
def test_mistakes_answer_400(shop: Server, given: dict[str, Any], code: str, message: str) -> None:
    response = shop.gql(QUERY, {"i": {"interval": "DAY", "timeRange": UTC_DAYS, **given}})
    assert response.status_code == 400, response.json()
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code and message in error["message"], error


def test_past_the_cell_cap_the_answer_is_too_many_cells(where: Any) -> None:
    server = start_server(where("limited"), analytics=AnalyticsLimits(max_cells=12))
    load(server, BATCHES)
    try:
        fits = server.gql(QUERY, {"i": {"interval": "DAY", "periods": 3, "timeRange": UTC_DAYS}})  # 3 x 4 cells
        days = server.gql(QUERY, {"i": {"interval": "DAY", "periods": 4, "timeRange": UTC_DAYS}})
        groups = server.gql(QUERY, {"i": {"interval": "DAY", "periods": 3, "timeRange": UTC_DAYS,
                                          "breakdownBy": "browser"}})
    finally:
        close_services(server.services)
    assert fits.status_code == 200 and len(fits.json()["data"]["retention"]["cohorts"]) == 3
    for response in (days, groups):
        body = response.json()
        assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "TOO_MANY_CELLS", body


def test_past_the_time_limit_the_answer_is_query_timeout(where: Any) -> None:
    server = start_server(where("slow"), analytics=AnalyticsLimits(timeout_s=1e-9))
    load(server, BATCHES)
    try:
        response = server.gql(QUERY, {"i": {"interval": "DAY", "timeRange": UTC_DAYS}})
    finally:
        close_services(server.services)
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", body
