"""`aggregate` and `webVitals` on both stores, over six hand-built sessions around the end of summer time in
Europe/Berlin (2025-10-26 03:00 CEST → 02:00 CET, a 25-hour day). Every expected figure follows from the table
below; percentiles are checked against numpy's linear interpolation.

  session  start (UTC)        local (Berlin)      browser  user            duration  pages                   purchase
  a        2025-10-25 21:30   Oct 25 23:30 +02    Chrome   u1 (plan pro)   10 s      /product/1, /product/2  10.5
  b        2025-10-25 22:30   Oct 26 00:30 +02    Chrome   u1              20 s      /product/3              -
  c        2025-10-26 00:30   Oct 26 02:30 +02    Safari   u2 (plan free)  30 s      /cart                   20
  d        2025-10-26 01:30   Oct 26 02:30 +01    Safari   anonymous       40 s      /product/4, /cart       -
  e        2025-10-26 22:30   Oct 26 23:30 +01    Firefox  anonymous       50 s      -                       -
  f        2025-10-26 23:30   Oct 27 00:30 +01    Chrome   anonymous       60 s      /                       30.25
Vitals: a LCP 1800 (good), c LCP 3000 (needs improvement), d LCP 5000 (poor), f CLS 0.3 (poor).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import numpy
import pytest

from conftest import CONTEXT, Location, Server, close_services, load, make_batch, start_server
from replayql.config import AnalyticsLimits
from replayql.store.backends import open_backend
from replayql.store.base import StoreTimeout

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}
FIREFOX = {**CONTEXT, "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"}
DURATIONS = {"a": 10_000, "b": 20_000, "c": 30_000, "d": 40_000, "e": 50_000, "f": 60_000}
BROWSERS = {"Chrome": ["a", "b", "f"], "Safari": ["c", "d"], "Firefox": ["e"]}


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp() * 1000)


def _session(sid: str, start: str, context: dict[str, Any], pages: list[str], user: dict[str, Any] | None = None,
             purchase: float | None = None, vital: tuple[str, float] | None = None) -> dict[str, Any]:
    t0 = _ms(start)
    events: list[dict[str, Any]] = [{"type": "console", "ts": t0, "level": "log", "message": "hello"}]
    events += [{"type": "identify", "ts": t0, **user}] if user else []
    events += [{"type": "page", "ts": t0 + i, "url": f"https://shop.example{p}"} for i, p in enumerate(pages)]
    if purchase is not None:
        events.append({"type": "custom", "ts": t0 + 100, "name": "Purchase", "properties": {"revenue": purchase}})
    if vital is not None:
        events.append({"type": "vital", "ts": t0 + 200, "name": vital[0], "value": vital[1]})
    events.append({"type": "console", "ts": t0 + DURATIONS[sid], "level": "log", "message": "bye"})
    return make_batch(sid, events, context=context)


BATCHES = [
    _session("a", "2025-10-25T21:30:00", CONTEXT, ["/product/1", "/product/2"],
             {"userId": "u1", "traits": {"plan": "pro"}}, purchase=10.5, vital=("LCP", 1800)),
    _session("b", "2025-10-25T22:30:00", CONTEXT, ["/product/3"], {"userId": "u1"}),
    _session("c", "2025-10-26T00:30:00", SAFARI, ["/cart"], {"userId": "u2", "traits": {"plan": "free"}},
             purchase=20, vital=("LCP", 3000)),
    _session("d", "2025-10-26T01:30:00", SAFARI, ["/product/4", "/cart"], vital=("LCP", 5000)),
    _session("e", "2025-10-26T22:30:00", FIREFOX, []),
    _session("f", "2025-10-26T23:30:00", CONTEXT, ["/"], purchase=30.25, vital=("CLS", 0.3)),
]
OCTOBER = {"from": "2025-10-01T00:00:00Z", "to": "2025-11-01T00:00:00Z"}
BERLIN_DAYS = {"from": "2025-10-24T22:00:00Z", "to": "2025-10-28T23:00:00Z"}  # Oct 25 - Oct 28, local


@pytest.fixture
def shop(server: Server) -> Server:
    load(server, BATCHES)
    return server


QUERY = """query($i: AggregateInput!) { aggregate(input: $i) {
  columns { name role type } rows totals otherRows truncated groupCount appliedQuery previous { rows totals } } }"""


def _aggregate(server: Server, **given: Any) -> dict[str, Any]:
    return server.data(QUERY, {"i": {"timeRange": OCTOBER, **given}})["aggregate"]


def _p(values: list[int], q: float) -> float:
    return round(float(numpy.percentile(values, q)), 9)


def test_measures_by_browser_match_the_table(shop: Server) -> None:
    measures = [{"alias": "n", "fn": "COUNT"}, {"alias": "total", "fn": "SUM", "field": "durationMs"},
                {"alias": "mean", "fn": "AVG", "field": "durationMs"},
                {"alias": "low", "fn": "MIN", "field": "durationMs"},
                {"alias": "high", "fn": "MAX", "field": "durationMs"},
                {"alias": "median", "fn": "MEDIAN", "field": "durationMs"},
                {"alias": "p90", "fn": "P90", "field": "durationMs"},
                {"alias": "p33", "fn": "PERCENTILE", "field": "durationMs", "percentile": 33.3},
                {"alias": "users", "fn": "UNIQUE_USERS"}, {"alias": "sessions", "fn": "UNIQUE_SESSIONS"}]
    result = _aggregate(shop, source="SESSIONS", measures=measures, groupBy=[{"field": "browser"}])
    assert [c["name"] for c in result["columns"]] == ["browser", *(m["alias"] for m in measures)]
    assert [c["role"] for c in result["columns"]] == ["DIMENSION"] + ["MEASURE"] * len(measures)
    users = {"Chrome": 2, "Safari": 2, "Firefox": 1}  # u1 twice, f anonymous; u2, d; e
    expected = []
    for browser, ids in BROWSERS.items():
        values = [DURATIONS[i] for i in ids]
        expected.append([browser, len(ids), sum(values), sum(values) / len(values), min(values), max(values),
                         _p(values, 50), _p(values, 90), _p(values, 33.3), users[browser], len(ids)])
    assert result["rows"] == expected  # ordered by the first measure, then by value
    everything = list(DURATIONS.values())
    assert result["totals"] == [None, 6, 210_000, 35_000, 10_000, 60_000, _p(everything, 50), _p(everything, 90),
                                _p(everything, 33.3), 5, 6]
    assert (result["truncated"], result["groupCount"], result["otherRows"]) == (False, 3, None)


def test_rates_and_per_user_and_per_session(shop: Server) -> None:
    result = _aggregate(shop, source="SESSIONS", measures=[
        {"alias": "long", "fn": "RATE", "where": "durationMs >= 30s"},
        {"alias": "perUser", "fn": "PER_USER"},
        {"alias": "secondsPerUser", "fn": "PER_USER", "field": "durationMs"}])
    assert result["rows"] == [[round(4 / 6, 12), 1.2, 42_000]]
    pages = _aggregate(shop, source="PAGES", measures=[{"alias": "perSession", "fn": "PER_SESSION"},
                                                        {"alias": "n", "fn": "COUNT"}])
    assert pages["rows"] == [[1.4, 7]]


def test_dimensions_from_paths_properties_sessions_and_traits(shop: Server) -> None:
    pages = _aggregate(shop, source="PAGES", measures=[{"alias": "n", "fn": "COUNT"}],
                       groupBy=[{"field": "pathPattern"}])
    assert pages["rows"] == [["/product/:id", 4], ["/cart", 2], ["/", 1]]
    revenue = _aggregate(shop, source="CUSTOM_EVENTS", measures=[
        {"alias": "revenue", "fn": "SUM", "field": "properties.revenue"},
        {"alias": "average", "fn": "AVG", "field": "properties.revenue"}],
        groupBy=[{"field": "session.browser", "alias": "browser"}], query='name = Purchase')
    assert revenue["rows"] == [["Chrome", 40.75, 20.375], ["Safari", 20.0, 20.0]]
    assert (revenue["totals"], revenue["appliedQuery"]) == ([None, 60.75, 20.25], "name = Purchase")
    plans = _aggregate(shop, source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"}],
                       groupBy=[{"field": "user.trait.plan", "alias": "plan"}])
    assert plans["rows"] == [[None, 3], ["pro", 2], ["free", 1]]
    errors = _aggregate(shop, source="PAGES", measures=[{"alias": "n", "fn": "COUNT"}],
                        sessionFilter={"browser": {"eq": "Safari"}})
    assert (errors["rows"], errors["appliedQuery"]) == ([[3]], "session(browser = Safari)")


def test_top_groups_with_the_rest_folded_into_other(shop: Server) -> None:
    result = _aggregate(shop, source="SESSIONS", groupBy=[{"field": "browser"}], limit=2, other=True,
                        measures=[{"alias": "n", "fn": "COUNT"},
                                  {"alias": "median", "fn": "MEDIAN", "field": "durationMs"}],
                        orderBy="median")
    # by median: Firefox 50 s, Safari 35 s, Chrome 20 s
    assert result["rows"] == [["Firefox", 1, 50_000], ["Safari", 2, 35_000]]
    assert result["otherRows"] == [[None, 3, 20_000]]
    assert (result["truncated"], result["groupCount"]) == (True, 3)


@pytest.mark.parametrize(("interval", "zone", "expected"), [
    ("DAY", "Europe/Berlin", [("2025-10-25T00:00:00+02:00", 1), ("2025-10-26T00:00:00+02:00", 4),
                              ("2025-10-27T00:00:00+01:00", 1), ("2025-10-28T00:00:00+01:00", 0)]),
    ("DAY", "UTC", [("2025-10-24T00:00:00+00:00", 0), ("2025-10-25T00:00:00+00:00", 2),
                    ("2025-10-26T00:00:00+00:00", 4), ("2025-10-27T00:00:00+00:00", 0),
                    ("2025-10-28T00:00:00+00:00", 0)]),
    ("WEEK", "Europe/Berlin", [("2025-10-20T00:00:00+02:00", 5), ("2025-10-27T00:00:00+01:00", 1)]),
    ("MONTH", "Europe/Berlin", [("2025-10-01T00:00:00+02:00", 6)]),
])
def test_calendar_buckets_in_a_time_zone_across_the_dst_change(shop: Server, interval: str, zone: str,
                                                                expected: list[tuple[str, int]]) -> None:
    result = _aggregate(shop, source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"}], interval=interval,
                        timeZone=zone, timeRange=BERLIN_DAYS)
    assert [tuple(r) for r in result["rows"]] == expected
    assert result["totals"] == [None, 6]


def test_hour_buckets_keep_the_repeated_hour_apart(shop: Server) -> None:
    result = _aggregate(shop, source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"}], interval="HOUR",
                        timeZone="Europe/Berlin",
                        timeRange={"from": "2025-10-25T23:00:00Z", "to": "2025-10-26T03:00:00Z"})
    assert result["rows"] == [["2025-10-26T01:00:00+02:00", 0], ["2025-10-26T02:00:00+02:00", 1],
                              ["2025-10-26T02:00:00+01:00", 1], ["2025-10-26T03:00:00+01:00", 0]]


def test_series_by_group_with_other_and_empty_buckets(shop: Server) -> None:
    result = _aggregate(shop, source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"},
                                                           {"alias": "mean", "fn": "AVG", "field": "durationMs"}],
                        interval="DAY", timeZone="Europe/Berlin", timeRange=BERLIN_DAYS, groupBy=[{"field": "browser"}],
                        limit=1, other=True)
    assert [c["name"] for c in result["columns"]] == ["time", "browser", "n", "mean"]
    assert result["rows"] == [["2025-10-25T00:00:00+02:00", "Chrome", 1, 10_000],
                              ["2025-10-26T00:00:00+02:00", "Chrome", 1, 20_000],
                              ["2025-10-27T00:00:00+01:00", "Chrome", 1, 60_000],
                              ["2025-10-28T00:00:00+01:00", "Chrome", 0, None]]
    assert result["otherRows"] == [["2025-10-25T00:00:00+02:00", None, 0, None],
                                   ["2025-10-26T00:00:00+02:00", None, 3, 40_000],
                                   ["2025-10-27T00:00:00+01:00", None, 0, None],
                                   ["2025-10-28T00:00:00+01:00", None, 0, None]]


def test_compare_to_the_previous_period(shop: Server) -> None:
    result = _aggregate(shop, source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"}], comparePrevious=True,
                        timeRange={"from": "2025-10-25T22:00:00Z", "to": "2025-10-26T23:00:00Z"})
    assert result["rows"] == [[4]]
    assert result["previous"] == {"rows": [[1]], "totals": [1]}


def test_web_vitals_shares_by_the_standard_thresholds(shop: Server) -> None:
    data = shop.data("""{ all: webVitals { truncated vitals { name group count p75 good needsImprovement poor
                                                              goodThreshold poorThreshold } }
                          byBrowser: webVitals(groupBy: BROWSER, limit: 2) {
                            truncated vitals { name group count } } }""")
    lcp = [1800, 3000, 5000]
    assert data["all"]["vitals"] == [
        {"name": "LCP", "group": None, "count": 3, "p75": _p(lcp, 75), "good": round(1 / 3, 12),
         "needsImprovement": round(1 / 3, 12), "poor": round(1 / 3, 12), "goodThreshold": 2500, "poorThreshold": 4000},
        {"name": "CLS", "group": None, "count": 1, "p75": 0.3, "good": 0.0, "needsImprovement": 0.0, "poor": 1.0,
         "goodThreshold": 0.1, "poorThreshold": 0.25}]
    # the top 2 (vital, browser) groups by count, ties by vital name: (LCP, Safari) 2, then (CLS, Chrome) 1
    # ahead of (LCP, Chrome) 1; listed in vital order
    assert data["byBrowser"] == {"truncated": True, "vitals": [{"name": "LCP", "group": "Safari", "count": 2},
                                                               {"name": "CLS", "group": "Chrome", "count": 1}]}


@pytest.mark.parametrize(("given", "message"), [
    ({"measures": [{"alias": "n", "fn": "COUNT"}], "groupBy": [{"field": "colour"}]},
     "unknown field `colour` on SESSIONS"),
    ({"measures": [{"alias": "s", "fn": "SUM"}]}, "SUM needs `field`"),
    ({"measures": [{"alias": "s", "fn": "SUM", "field": "browser"}]}, "`browser` is text"),
    ({"measures": [{"alias": "p", "fn": "PERCENTILE", "field": "durationMs"}]}, "PERCENTILE needs `percentile`"),
    ({"measures": [{"alias": "r", "fn": "RATE"}]}, "RATE needs `where`"),
    ({"measures": [{"alias": "n", "fn": "COUNT"}], "orderBy": "m"}, "orderBy `m` is not a measure alias"),
    ({"measures": [{"alias": "n", "fn": "COUNT"}], "interval": "DAY", "timeRange": None},
     "an interval needs a timeRange"),
    ({"measures": [{"alias": "n", "fn": "COUNT"}], "interval": "DAY", "timeZone": "Mars/Olympus"}, "unknown time zone"),
    ({"measures": [{"alias": "n", "fn": "COUNT"}, {"alias": "n", "fn": "SUM", "field": "durationMs"}]}, "distinct"),
    ({"measures": []}, "at least one measure"),
    ({"measures": [{"alias": "n", "fn": "COUNT"}], "query": "browser >"}, "expected a value"),
])
def test_mistakes_answer_400_with_the_problem(shop: Server, given: dict[str, Any], message: str) -> None:
    response = shop.gql(QUERY, {"i": {"source": "SESSIONS", "timeRange": OCTOBER, **given}})
    assert response.status_code == 400
    assert message in response.json()["errors"][0]["message"]


def _limited(where: Any, **limits: Any) -> Server:
    server = start_server(where("limited"), analytics=AnalyticsLimits(**limits))
    load(server, BATCHES)
    return server


def test_past_the_cell_cap_the_answer_is_too_many_cells(where: Any) -> None:
    server = _limited(where, max_cells=20)
    try:
        hours = server.gql(QUERY, {"i": {"source": "SESSIONS", "measures": [{"alias": "n", "fn": "COUNT"}],
                                         "interval": "HOUR", "timeRange": BERLIN_DAYS}})
        groups = server.gql(QUERY, {"i": {"source": "PAGES", "measures": [{"alias": "n", "fn": "COUNT"}],
                                          "groupBy": [{"field": "url"}, {"field": "sessionId"}],
                                          "timeRange": OCTOBER}})
        fits = server.gql(QUERY, {"i": {"source": "PAGES", "measures": [{"alias": "n", "fn": "COUNT"}],
                                        "groupBy": [{"field": "url"}], "limit": 2, "timeRange": OCTOBER}})
    finally:
        close_services(server.services)
    for response in (hours, groups):
        assert response.status_code == 400
        assert response.json()["errors"][0]["extensions"]["code"] == "TOO_MANY_CELLS"
        assert response.json()["data"] is None
    assert fits.json()["data"]["aggregate"]["truncated"] is True


def test_past_the_time_limit_the_answer_is_query_timeout(where: Any) -> None:
    server = _limited(where, timeout_s=1e-9)
    try:
        response = server.gql(QUERY, {"i": {"source": "SESSIONS", "measures": [{"alias": "n", "fn": "COUNT"}]}})
    finally:
        close_services(server.services)
    body = response.json()
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT"
    assert "time" in body["errors"][0]["message"]


def test_the_store_stops_a_query_at_its_time_limit(where: Any) -> None:
    """A query that would run for minutes is stopped by the store itself (DuckDB interrupt, ClickHouse
    max_execution_time) and reported as StoreTimeout."""
    location: Location = where("slow")
    backend = open_backend(location.data_dir, location.clickhouse)
    store = backend.store
    try:
        endless = ("SELECT count(*) AS n FROM range(100000000000) AS r" if store.dialect == "duckdb"
                   else "SELECT count() AS n FROM numbers(100000000000)")
        with pytest.raises(StoreTimeout):
            store.fetch_dicts(endless, {}, timeout_s=0.5)
        assert store.fetch_dicts("SELECT 1 AS one", {}, timeout_s=5) == [{"one": 1}]  # and it keeps serving
    finally:
        backend.close()



def test_users_as_a_source(shop: Server) -> None:
    result = _aggregate(shop, source="USERS", measures=[{"alias": "n", "fn": "COUNT"},
                                                        {"alias": "sessions", "fn": "AVG", "field": "sessionCount"}],
                        groupBy=[{"field": "trait.plan", "alias": "plan"}])
    assert result["rows"] == [["free", 1, 1.0], ["pro", 1, 2.0]]  # u2 has c; u1 has a and b
    response = shop.gql(QUERY, {"i": {"source": "USERS", "measures": [{"alias": "s", "fn": "UNIQUE_SESSIONS"}]}})
    assert response.status_code == 400 and "USERS rows have no session" in response.json()["errors"][0]["message"]
