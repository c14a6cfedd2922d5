"""GraphQL lists, filters, ordering, time ranges, pagination, the Event interface and the mutations.

Everything runs against the dataset of `build_dataset`: four hand-built sessions in app `demo` and one in app
`other`, loaded through the real import path (validation, enrichment, sessionizing, the writer) so timestamps stay
exactly as built (HTTP ingestion would correct them for clock skew against the test's wall clock). Every expected
answer below follows from the table in `build_dataset`'s docstring.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import CONTEXT, T0, Server, load, make_batch, new_location, served

MIN = 60_000
HOUR = 3_600_000
TB, TC, TD, TO = T0 + HOUR, T0 + 2 * HOUR, T0 + 3 * HOUR, T0 + HOUR // 2

FIREFOX_WIN = {**CONTEXT, "release": "1.5.0",
               "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"}
IPHONE = {**CONTEXT, "release": "1.5.0", "viewport": {"width": 390, "height": 844},
          "userAgent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
                       "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"}
NO_RELEASE = {k: v for k, v in CONTEXT.items() if k != "release"}

TYPE_ERROR = {"type": "error", "errorType": "TypeError",
              "message": "Cannot read properties of undefined (reading 'id')",
              "stack": "TypeError: Cannot read properties of undefined (reading 'id')\n"
                       "    at submit (https://shop.example/static/app.3f9a1c2d.js:10:5)",
              "handled": False, "tags": {"area": "checkout"}, "extra": {}}
REFERENCE_ERROR = {"type": "error", "errorType": "ReferenceError", "message": "gtag is not defined",
                   "stack": "ReferenceError: gtag is not defined\n    at track (https://shop.example/static/analytics.js:3:1)"}
RANGE_ERROR = {"type": "error", "errorType": "RangeError", "message": "Invalid array length",
               "stack": "RangeError: Invalid array length\n    at grow (https://shop.example/static/list.js:7:2)"}
RRWEB = {"type": 2, "timestamp": TD + 500, "data": {"node": {"id": 1, "type": 0}, "initialOffset": {"top": 0}}}


def build_dataset(server: Server) -> None:
    """The hand-built data every expectation in these tests derives from.

    app demo:
      s-a  Chrome/macOS desktop, US, release 1.4.2, user u-ada, [T0, T0+60s], 2 pages (/home?utm, /cart), 1 click,
           errors TypeError + ReferenceError, identify u-ada {name, email, plan: pro}; 6 events
      s-b  Firefox/Windows desktop, DE, 1.5.0, user u-bob, [TB, TB+10s], 1 page (/search), network POST 502,
           console warn, identify u-bob; 4 events, no errors
      s-c  Mobile Safari/iOS mobile, GB, 1.5.0, anonymous, [TC, TC+120s], 2 pages (/checkout, /thanks), errors
           TypeError + RangeError, custom "Checkout Completed", vital LCP 2310.5, network GET 200; 7 events
      s-d  Chrome/macOS desktop, no country, no release, user u-ada, [TD, TD+5s], identify u-ada {plan: enterprise},
           page /home, custom "Signed Up", 1 rrweb recording event; 3 events
    app other:
      o-1  Chrome, US, user u-ada {name: Other Ada}, [TO, TO+2s], page + the same TypeError as demo; 3 events
    """
    load(server, [
        make_batch("s-a", [
            {"type": "page", "ts": T0, "url": "https://shop.example/home?utm_source=news", "title": "Home"},
            {"type": "click", "ts": T0 + 1000, "selector": "button#buy", "text": "Buy"},
            {**TYPE_ERROR, "ts": T0 + 5000},
            {"type": "identify", "ts": T0 + 6000, "userId": "u-ada",
             "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "plan": "pro"}},
            {**REFERENCE_ERROR, "ts": T0 + 7000},
            {"type": "page", "ts": T0 + MIN, "url": "https://shop.example/cart", "title": "Cart"},
        ], clientIp="8.8.8.8"),
        make_batch("s-b", [
            {"type": "page", "ts": TB, "url": "https://shop.example/search?q=shoes"},
            {"type": "network", "ts": TB + 2000, "method": "POST", "url": "https://api.shop.example/orders",
             "status": 502, "durationMs": 812, "requestBytes": 300, "responseBytes": 120},
            {"type": "identify", "ts": TB + 3000, "userId": "u-bob",
             "traits": {"name": "Bob Builder", "email": "bob@example.com"}},
            {"type": "console", "ts": TB + 10_000, "level": "warn", "message": "slow render"},
        ], context=FIREFOX_WIN, clientIp="85.214.132.117"),
        make_batch("s-c", [
            {"type": "page", "ts": TC, "url": "https://shop.example/checkout"},
            {**TYPE_ERROR, "ts": TC + 1000},
            {**RANGE_ERROR, "ts": TC + 2000},
            {"type": "custom", "ts": TC + 3000, "name": "Checkout Completed",
             "properties": {"revenue": 42.5, "plan": "pro"}},
            {"type": "vital", "ts": TC + 4000, "name": "LCP", "value": 2310.5},
            {"type": "network", "ts": TC + 5000, "method": "GET", "url": "https://api.shop.example/cart",
             "status": 200, "durationMs": 120},
            {"type": "page", "ts": TC + 2 * MIN, "url": "https://shop.example/thanks"},
        ], context=IPHONE, clientIp="81.2.69.142"),
        make_batch("s-d", [
            {"type": "identify", "ts": TD, "userId": "u-ada", "traits": {"plan": "enterprise"}},
            {"type": "recording", "ts": TD + 500, "data": RRWEB},
            {"type": "page", "ts": TD + 1000, "url": "https://shop.example/home"},
            {"type": "custom", "ts": TD + 5000, "name": "Signed Up", "properties": {}},
        ], context=NO_RELEASE),
        make_batch("o-1", [
            {"type": "page", "ts": TO, "url": "https://other.example/"},
            {"type": "identify", "ts": TO + 1000, "userId": "u-ada", "traits": {"name": "Other Ada"}},
            {**TYPE_ERROR, "ts": TO + 2000},
        ], app_id="other", clientIp="8.8.8.8"),
    ])


@pytest.fixture
def demo(server: Server) -> Server:
    """The dataset on a fresh server, for tests that change data."""
    build_dataset(server)
    return server


@pytest.fixture(scope="module")
def ro(tmp_path_factory: pytest.TempPathFactory, store_kind: str, chdb_path: Path) -> Iterator[Server]:
    """The dataset on one server shared by this module's read-only tests (nothing here may write to it)."""
    with served(new_location(store_kind, tmp_path_factory.mktemp("graphql-ro") / "data", chdb_path)) as running:
        build_dataset(running)
        yield running


def iso(ms: int) -> str:
    """The API's DateTime format, built by hand: UTC, milliseconds, Z."""
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def session_ids(server: Server, args: str = "", variables: dict[str, Any] | None = None,
                key: str = "read") -> list[str]:
    declared = ", ".join(d for d in ("$f: SessionFilter", "$r: TimeRange") if d.split(":")[0] in args)
    selection = f"{{ sessions{f'({args})' if args else ''} {{ totalCount nodes {{ id }} }} }}"
    query = f"query({declared}) {selection}" if declared else selection
    data = server.data(query, variables, key=key)["sessions"]
    ids = [n["id"] for n in data["nodes"]]
    assert data["totalCount"] == len(ids)
    return ids


def filtered(server: Server, session_filter: dict[str, Any]) -> list[str]:
    return session_ids(server, "filter: $f", {"f": session_filter})


def issue_ids_by_type(server: Server, key: str = "read") -> dict[str, str]:
    nodes = server.data("{ issues { nodes { id errorType } } }", key=key)["issues"]["nodes"]
    return {n["errorType"]: n["id"] for n in nodes}


# -- DateTime, session fields ------------------------------------------------------------------------------------

def test_iso_helper_matches_the_documented_example() -> None:
    assert iso(T0) == "2025-11-26T06:53:20.000Z"
    assert iso(T0 + 1) == "2025-11-26T06:53:20.001Z"


def test_session_fields_and_datetime_format(ro: Server) -> None:
    data = ro.data("""{ session(id: "s-a") { id startedAt endedAt durationMs browser browserVersion os osVersion
        deviceType country release initialUrl utmSource pageCount clickCount errorCount eventCount
        viewport { width height } user { id identified name email traits } } }""", key="read")
    assert data["session"] == {
        "id": "s-a", "startedAt": "2025-11-26T06:53:20.000Z", "endedAt": "2025-11-26T06:54:20.000Z",
        "durationMs": 60_000, "browser": "Chrome", "browserVersion": "120.0", "os": "macOS", "osVersion": "10.15",
        "deviceType": "DESKTOP", "country": "US", "release": "1.4.2",
        "initialUrl": "https://shop.example/home?utm_source=news", "utmSource": "news", "pageCount": 2,
        "clickCount": 1, "errorCount": 2, "eventCount": 6, "viewport": {"width": 1440, "height": 900},
        "user": {"id": "u-ada", "identified": True, "name": "Ada Lovelace", "email": "ada@example.com",
                 "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "plan": "enterprise"}}}


def test_datetime_fields_everywhere_use_utc_milliseconds_and_z(ro: Server) -> None:
    data = ro.data("""{ user(id: "u-bob") { firstSeen lastSeen }
        events(filter: {sessionId: {eq: "s-b"}, kind: {eq: "network"}}) { nodes { timestamp } }
        issues(filter: {errorType: {eq: "RangeError"}}) { nodes { firstSeen lastSeen } } }""")
    assert data["user"] == {"firstSeen": iso(TB), "lastSeen": iso(TB + 10_000)}
    assert data["events"]["nodes"] == [{"timestamp": iso(TB + 2000)}]
    assert data["issues"]["nodes"] == [{"firstSeen": iso(TC + 2000), "lastSeen": iso(TC + 2000)}]


def test_anonymous_session_has_a_stand_in_user(ro: Server) -> None:
    data = ro.data('{ session(id: "s-c") { user { id identified sessionCount sessions { nodes { id } } } } }')
    assert data["session"]["user"] == {"id": "anonymous:s-c", "identified": False, "sessionCount": 1,
                                       "sessions": {"nodes": [{"id": "s-c"}]}}


# -- session lists: filters ----------------------------------------------------------------------------------------

def test_sessions_default_order_is_newest_first(ro: Server) -> None:
    assert session_ids(ro) == ["s-d", "s-c", "s-b", "s-a"]


@pytest.mark.parametrize(("session_filter", "expected"), [
    ({"browser": {"eq": "Chrome"}}, ["s-d", "s-a"]),
    ({"browser": {"neq": "Chrome"}}, ["s-c", "s-b"]),
    ({"browser": {"in": ["Firefox", "Mobile Safari"]}}, ["s-c", "s-b"]),
    ({"browser": {"notIn": ["Chrome", "Firefox"]}}, ["s-c"]),
    ({"browser": {"contains": "safari"}}, ["s-c"]),  # case-insensitive
    ({"browser": {"in": []}}, []),
    ({"os": {"eq": "Windows"}}, ["s-b"]),
    ({"os": {"eq": "macOS"}}, ["s-d", "s-a"]),
    ({"deviceType": {"eq": "mobile"}}, ["s-c"]),
    ({"deviceType": {"eq": "desktop"}}, ["s-d", "s-b", "s-a"]),
    ({"country": {"eq": "DE"}}, ["s-b"]),
    ({"country": {"neq": "US"}}, ["s-d", "s-c", "s-b"]),  # neq includes the session without a country
    ({"country": {"in": ["GB", "US"]}}, ["s-c", "s-a"]),
    ({"release": {"eq": "1.5.0"}}, ["s-c", "s-b"]),
    ({"release": {"notIn": ["1.5.0"]}}, ["s-d", "s-a"]),  # notIn includes the session without a release
    ({"userId": {"eq": "u-ada"}}, ["s-d", "s-a"]),
    ({"userId": {"contains": "BOB"}}, ["s-b"]),
    ({"hasErrors": True}, ["s-c", "s-a"]),
    ({"hasErrors": False}, ["s-d", "s-b"]),
    ({"durationMs": {"eq": 60_000}}, ["s-a"]),
    ({"durationMs": {"gt": 10_000}}, ["s-c", "s-a"]),
    ({"durationMs": {"gte": 10_000}}, ["s-c", "s-b", "s-a"]),
    ({"durationMs": {"lt": 10_000}}, ["s-d"]),
    ({"durationMs": {"lte": 10_000}}, ["s-d", "s-b"]),
    ({"durationMs": {"gt": 5_000, "lt": 120_000}}, ["s-b", "s-a"]),
    ({"visitedUrl": {"contains": "/cart"}}, ["s-a"]),
    ({"visitedUrl": {"eq": "https://shop.example/home"}}, ["s-d"]),
    ({"visitedUrl": {"contains": "/home"}}, ["s-d", "s-a"]),
    ({"browser": {"eq": "Chrome"}, "hasErrors": True}, ["s-a"]),  # fields combine with AND
    ({"release": {"eq": "1.5.0"}, "durationMs": {"lt": 60_000}, "country": {"eq": "DE"}}, ["s-b"]),
])
def test_session_filters(ro: Server, session_filter: dict[str, Any], expected: list[str]) -> None:
    assert filtered(ro, session_filter) == expected


def test_empty_condition_is_a_clear_error(ro: Server) -> None:
    response = ro.gql("{ sessions(filter: {browser: {}}) { totalCount } }")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert "empty condition" in error["message"]


# -- session lists: time ranges and order -------------------------------------------------------------------------

@pytest.mark.parametrize(("time_range", "expected"), [
    ({"from": iso(TB), "to": iso(TC)}, ["s-b"]),  # s-c starts exactly at `to`: excluded
    ({"from": iso(TB + 10_000)}, ["s-d", "s-c", "s-b"]),  # s-b ends exactly at `from`: it overlaps
    ({"from": iso(TB + 10_001)}, ["s-d", "s-c"]),
    ({"to": iso(T0)}, []),
    ({"to": iso(T0 + 1)}, ["s-a"]),
    ({"from": iso(T0 + 30_000), "to": iso(T0 + 40_000)}, ["s-a"]),  # inside a session: overlaps
    ({}, ["s-d", "s-c", "s-b", "s-a"]),
])
def test_session_time_range_is_half_open_overlap(ro: Server, time_range: dict[str, str],
                                                 expected: list[str]) -> None:
    assert session_ids(ro, "timeRange: $r", {"r": time_range}) == expected


def test_time_range_accepts_other_offsets_and_rejects_reversed(ro: Server) -> None:
    # 07:53:20+01:00 is TB in UTC
    assert session_ids(ro, "timeRange: $r", {"r": {"from": "2025-11-26T08:53:20.000+01:00",
                                                     "to": iso(TC)}}) == ["s-b"]
    response = ro.gql("query($r: TimeRange) { sessions(timeRange: $r) { totalCount } }",
                        {"r": {"from": iso(TC), "to": iso(TB)}})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "timeRange.to is before timeRange.from"


@pytest.mark.parametrize(("order", "expected"), [
    ("{field: STARTED_AT, direction: ASC}", ["s-a", "s-b", "s-c", "s-d"]),
    ("{field: STARTED_AT}", ["s-d", "s-c", "s-b", "s-a"]),
    ("{field: ENDED_AT, direction: DESC}", ["s-d", "s-c", "s-b", "s-a"]),
    ("{field: DURATION, direction: ASC}", ["s-d", "s-b", "s-a", "s-c"]),
    ("{field: DURATION, direction: DESC}", ["s-c", "s-a", "s-b", "s-d"]),
    ("{field: EVENT_COUNT, direction: DESC}", ["s-c", "s-a", "s-b", "s-d"]),
    ("{field: ERROR_COUNT, direction: DESC}", ["s-c", "s-a", "s-d", "s-b"]),  # ties broken by id, same direction
    ("{field: ERROR_COUNT, direction: ASC}", ["s-b", "s-d", "s-a", "s-c"]),
    ("{field: PAGE_COUNT, direction: ASC}", ["s-b", "s-d", "s-a", "s-c"]),
    ("{field: CLICK_COUNT, direction: DESC}", ["s-a", "s-d", "s-c", "s-b"]),
    ("{field: COUNTRY, direction: ASC}", ["s-d", "s-b", "s-c", "s-a"]),  # no country sorts as ''
    ("{field: COUNTRY, direction: DESC}", ["s-a", "s-c", "s-b", "s-d"]),
    ("{field: USER, direction: ASC}", ["s-c", "s-a", "s-d", "s-b"]),  # anonymous first, then u-ada, u-bob
    ("{field: USER, direction: DESC}", ["s-b", "s-d", "s-a", "s-c"]),
    ("{field: DEVICE, direction: DESC}", ["s-c", "s-d", "s-b", "s-a"]),  # mobile, then the desktops by id
])
def test_session_order(ro: Server, order: str, expected: list[str]) -> None:
    data = ro.data(f"{{ sessions(orderBy: {order}) {{ nodes {{ id }} }} }}")
    assert [n["id"] for n in data["sessions"]["nodes"]] == expected


@pytest.mark.parametrize("direction", ["ASC", "DESC"])
def test_active_duration_order_follows_the_field(ro: Server, direction: str) -> None:
    data = ro.data(f"{{ sessions(orderBy: {{field: ACTIVE_DURATION, direction: {direction}}}) "
                   "{ nodes { id activeDurationMs durationMs } } }")
    keys = [(n["activeDurationMs"], n["id"]) for n in data["sessions"]["nodes"]]
    assert keys == sorted(keys, reverse=direction == "DESC") and len(keys) == 4
    assert all(0 <= n["activeDurationMs"] <= n["durationMs"] for n in data["sessions"]["nodes"])


# -- users ---------------------------------------------------------------------------------------------------------

def test_users_list_filters_and_order(ro: Server) -> None:
    def users(args: str = "") -> list[tuple[str, int]]:
        conn = ro.data(f"{{ users{args} {{ totalCount nodes {{ id sessionCount }} }} }}", key="read")["users"]
        assert conn["totalCount"] == len(conn["nodes"])
        return [(n["id"], n["sessionCount"]) for n in conn["nodes"]]

    assert users() == [("u-ada", 2), ("u-bob", 1)]  # last seen first; the anonymous session is no user
    assert users("(orderBy: {field: LAST_SEEN, direction: ASC})") == [("u-bob", 1), ("u-ada", 2)]
    assert users("(orderBy: {field: FIRST_SEEN, direction: ASC})") == [("u-ada", 2), ("u-bob", 1)]
    assert users("(orderBy: {field: SESSION_COUNT, direction: ASC})") == [("u-bob", 1), ("u-ada", 2)]
    assert users('(filter: {name: {contains: "builder"}})') == [("u-bob", 1)]
    assert users('(filter: {email: {eq: "ada@example.com"}})') == [("u-ada", 2)]
    assert users("(filter: {sessionCount: {gte: 2}})") == [("u-ada", 2)]
    assert users('(filter: {id: {neq: "u-ada"}})') == [("u-bob", 1)]
    # active in the range: last seen at or after `from`, first seen before `to`
    assert users(f'(timeRange: {{from: "{iso(TB + 10_001)}"}})') == [("u-ada", 2)]
    assert users(f'(timeRange: {{to: "{iso(TB)}"}})') == [("u-ada", 2)]
    assert users(f'(timeRange: {{from: "{iso(TB)}", to: "{iso(TB + 1)}"}})') == [("u-ada", 2), ("u-bob", 1)]
    assert users(f'(timeRange: {{from: "{iso(TD + 5001)}"}})') == []


def test_user_with_sessions(ro: Server) -> None:
    data = ro.data("""{ user(id: "u-ada") { id name email traits firstSeen lastSeen sessionCount
        sessions { totalCount nodes { id } } } }""", key="read")
    assert data["user"] == {
        "id": "u-ada", "name": "Ada Lovelace", "email": "ada@example.com",
        "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "plan": "enterprise"},  # later wins
        "firstSeen": iso(T0), "lastSeen": iso(TD + 5000), "sessionCount": 2,
        "sessions": {"totalCount": 2, "nodes": [{"id": "s-d"}, {"id": "s-a"}]}}
    assert ro.data('{ user(id: "nobody") { id } }') == {"user": None}


# -- issues --------------------------------------------------------------------------------------------------------

def test_issues_group_errors_with_stats(ro: Server) -> None:
    data = ro.data("""{ issues { totalCount nodes { errorType message status count sessionCount userCount releases
        firstSeen lastSeen sessions { nodes { id } } occurrences { totalCount nodes { session { id } } } } } }""",
                     key="read")["issues"]
    assert data["totalCount"] == 3
    by_type = {n["errorType"]: n for n in data["nodes"]}
    assert [n["errorType"] for n in data["nodes"]] == ["RangeError", "TypeError", "ReferenceError"]  # last seen
    assert by_type["TypeError"] == {
        "errorType": "TypeError", "message": "Cannot read properties of undefined (reading 'id')", "status": "OPEN",
        "count": 2, "sessionCount": 2, "userCount": 2, "releases": ["1.4.2", "1.5.0"],
        "firstSeen": iso(T0 + 5000), "lastSeen": iso(TC + 1000),
        "sessions": {"nodes": [{"id": "s-c"}, {"id": "s-a"}]},
        "occurrences": {"totalCount": 2, "nodes": [{"session": {"id": "s-c"}}, {"session": {"id": "s-a"}}]}}
    assert (by_type["RangeError"]["count"], by_type["RangeError"]["releases"]) == (1, ["1.5.0"])
    assert (by_type["ReferenceError"]["count"], by_type["ReferenceError"]["userCount"]) == (1, 1)


@pytest.mark.parametrize(("args", "expected"), [
    ('filter: {errorType: {eq: "RangeError"}}', ["RangeError"]),
    ('filter: {errorType: {notIn: ["RangeError", "TypeError"]}}', ["ReferenceError"]),
    ('filter: {status: {eq: "OPEN"}}', ["RangeError", "TypeError", "ReferenceError"]),
    ('filter: {status: {neq: "OPEN"}}', []),
    ('filter: {message: {contains: "GTAG"}}', ["ReferenceError"]),
    ("filter: {count: {gte: 2}}", ["TypeError"]),
    ('orderBy: {field: COUNT, direction: DESC}, filter: {errorType: {neq: "ReferenceError"}}',
     ["TypeError", "RangeError"]),
    ('orderBy: {field: COUNT, direction: ASC}, filter: {errorType: {neq: "RangeError"}}',
     ["ReferenceError", "TypeError"]),
    ("orderBy: {field: FIRST_SEEN, direction: ASC}", ["TypeError", "ReferenceError", "RangeError"]),
    ("orderBy: {field: LAST_SEEN, direction: ASC}", ["ReferenceError", "TypeError", "RangeError"]),
    # issues that occurred in the range, [from, to)
    (f'timeRange: {{from: "{iso(T0)}", to: "{iso(T0 + 7000)}"}}', ["TypeError"]),
    (f'timeRange: {{from: "{iso(T0)}", to: "{iso(T0 + 7001)}"}}', ["TypeError", "ReferenceError"]),
    (f'timeRange: {{from: "{iso(TC + 1500)}"}}', ["RangeError"]),
    (f'timeRange: {{from: "{iso(TB)}", to: "{iso(TC)}"}}', []),
])
def test_issue_filters_order_and_time_range(ro: Server, args: str, expected: list[str]) -> None:
    data = ro.data(f"{{ issues({args}) {{ totalCount nodes {{ errorType }} }} }}")["issues"]
    assert [n["errorType"] for n in data["nodes"]] == expected
    assert data["totalCount"] == len(expected)


def test_issue_status_filter_follows_update(demo: Server) -> None:
    ids = issue_ids_by_type(demo)
    demo.data('mutation($id: ID!) { updateIssue(id: $id, status: RESOLVED) { id } }', {"id": ids["RangeError"]},
              key="write")
    data = demo.data('{ r: issues(filter: {status: {eq: "RESOLVED"}}) { nodes { errorType } } '
                     'o: issues(filter: {status: {in: ["OPEN", "IGNORED"]}}) { nodes { errorType } } }')
    assert data["r"]["nodes"] == [{"errorType": "RangeError"}]
    assert data["o"]["nodes"] == [{"errorType": "TypeError"}, {"errorType": "ReferenceError"}]


# -- events and the Event interface --------------------------------------------------------------------------------

EVENT_FIELDS = """__typename kind timestamp url session { id }
    ... on PageEvent { title host path }
    ... on ClickEvent { selector text }
    ... on NetworkEvent { method status durationMs }
    ... on ErrorEvent { errorType message handled tags issue { errorType count } }
    ... on CustomEvent { name properties }
    ... on WebVitalEvent { name value }
    ... on ConsoleEvent { level message }
    ... on IdentifyEvent { userId traits }"""


def test_event_interface_types_and_kind_fields(ro: Server) -> None:
    data = ro.data(f'{{ events(filter: {{sessionId: {{eq: "s-c"}}}}) {{ totalCount nodes {{ {EVENT_FIELDS} }} }} }}',
                     key="read")["events"]
    session = {"id": "s-c"}
    assert data["totalCount"] == 7
    assert data["nodes"] == [  # newest first
        {"__typename": "PageEvent", "kind": "page", "timestamp": iso(TC + 2 * MIN), "url": "https://shop.example/thanks",
         "session": session, "title": None, "host": "shop.example", "path": "/thanks"},
        {"__typename": "NetworkEvent", "kind": "network", "timestamp": iso(TC + 5000),
         "url": "https://api.shop.example/cart", "session": session, "method": "GET", "status": 200,
         "durationMs": 120.0},
        {"__typename": "WebVitalEvent", "kind": "vital", "timestamp": iso(TC + 4000),
         "url": "https://shop.example/checkout", "session": session, "name": "LCP", "value": 2310.5},
        {"__typename": "CustomEvent", "kind": "custom", "timestamp": iso(TC + 3000),
         "url": "https://shop.example/checkout", "session": session, "name": "Checkout Completed",
         "properties": {"revenue": 42.5, "plan": "pro"}},
        {"__typename": "ErrorEvent", "kind": "error", "timestamp": iso(TC + 2000),
         "url": "https://shop.example/checkout", "session": session, "errorType": "RangeError",
         "message": "Invalid array length", "handled": False, "tags": {},  # wire defaults
         "issue": {"errorType": "RangeError", "count": 1}},
        {"__typename": "ErrorEvent", "kind": "error", "timestamp": iso(TC + 1000),
         "url": "https://shop.example/checkout", "session": session, "errorType": "TypeError",
         "message": "Cannot read properties of undefined (reading 'id')", "handled": False,
         "tags": {"area": "checkout"}, "issue": {"errorType": "TypeError", "count": 2}},
        {"__typename": "PageEvent", "kind": "page", "timestamp": iso(TC), "url": "https://shop.example/checkout",
         "session": session, "title": None, "host": "shop.example", "path": "/checkout"},
    ]


def test_session_event_connections_in_time_order(ro: Server) -> None:
    data = ro.data("""{ session(id: "s-b") {
        events { totalCount nodes { __typename } }
        pages { nodes { url } } networkRequests { nodes { ... on NetworkEvent { status method durationMs } } }
        consoleLogs { nodes { ... on ConsoleEvent { level message } } } errors { totalCount nodes { id } }
        } }""")["session"]
    assert data == {
        "events": {"totalCount": 4, "nodes": [{"__typename": "PageEvent"}, {"__typename": "NetworkEvent"},
                                              {"__typename": "IdentifyEvent"}, {"__typename": "ConsoleEvent"}]},
        "pages": {"nodes": [{"url": "https://shop.example/search?q=shoes"}]},
        "networkRequests": {"nodes": [{"status": 502, "method": "POST", "durationMs": 812.0}]},
        "consoleLogs": {"nodes": [{"level": "warn", "message": "slow render"}]},
        "errors": {"totalCount": 0, "nodes": []}}


def test_click_events(ro: Server) -> None:
    data = ro.data("""{ session(id: "s-a") { clicks { totalCount nodes { __typename timestamp url
        ... on ClickEvent { selector text } } } } }""")
    assert data["session"]["clicks"] == {"totalCount": 1, "nodes": [{
        "__typename": "ClickEvent", "timestamp": iso(T0 + 1000), "url": "https://shop.example/home?utm_source=news",
        "selector": "button#buy", "text": "Buy"}]}


def test_session_recording_returns_rrweb_events_verbatim(ro: Server) -> None:
    data = ro.data('{ a: session(id: "s-d") { recording { totalCount nodes } } '
                     'b: session(id: "s-a") { recording { totalCount nodes } } }')
    assert data["a"]["recording"] == {"totalCount": 1, "nodes": [RRWEB]}
    assert data["b"]["recording"] == {"totalCount": 0, "nodes": []}


def _rrweb_chunk(session: int, seq: int) -> list[dict[str, Any]]:
    """Recording events big enough that reading them takes a while (the reads of one request overlap)."""
    return [{"type": "recording", "ts": T0 + seq * 1_000 + n, "data": {
        "type": 3, "timestamp": T0 + seq * 1_000 + n,
        "data": {"source": 0, "texts": [{"id": k, "value": f"s{session} q{seq} n{n} {'text ' * 40}"}
                                        for k in range(20)]}}} for n in range(20)]


def test_many_recordings_read_at_once_come_back_whole(server: Server) -> None:
    """Every session's recording is read in its own worker thread; all of them at once must decode."""
    sessions = 12
    load(server, [make_batch(f"s-rec{i:02d}", _rrweb_chunk(i, seq), seq=seq) for i in range(sessions)
                  for seq in range(3)])
    query = "{ sessions(first: 50) { nodes { id recording(first: 500) { totalCount nodes } } } }"
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: server.gql(query), range(8)))
    for response in answers:
        assert response.status_code == 200 and "errors" not in response.json(), response.text[:500]
        nodes = {n["id"]: n["recording"] for n in response.json()["data"]["sessions"]["nodes"]}
        assert nodes == {f"s-rec{i:02d}": {"totalCount": 60, "nodes": [
            e["data"] for seq in range(3) for e in _rrweb_chunk(i, seq)]} for i in range(sessions)}


@pytest.mark.parametrize(("event_filter", "expected"), [
    ({"kind": {"eq": "custom"}}, ["Signed Up", "Checkout Completed"]),
    ({"kind": {"eq": "custom"}, "name": {"eq": "Checkout Completed"}}, ["Checkout Completed"]),
    ({"name": {"contains": "checkout"}}, ["Checkout Completed"]),
    ({"kind": {"in": ["network"]}}, ["GET https://api.shop.example/cart", "POST https://api.shop.example/orders"]),
    ({"kind": {"eq": "error"}, "sessionId": {"neq": "s-c"}}, ["ReferenceError", "TypeError"]),
    ({"kind": {"eq": "vital"}, "name": {"eq": "LCP"}}, ["LCP 2310.5"]),
    ({"kind": {"eq": "page"}, "url": {"contains": "/home"}}, ["https://shop.example/home",
                                                              "https://shop.example/home?utm_source=news"]),
])
def test_event_filters(ro: Server, event_filter: dict[str, Any], expected: list[str]) -> None:
    data = ro.data("""query($f: EventFilter) { events(filter: $f) { totalCount nodes { kind url
        ... on CustomEvent { name } ... on NetworkEvent { method } ... on ErrorEvent { errorType }
        ... on WebVitalEvent { name value } } } }""", {"f": event_filter})["events"]

    def label(n: dict[str, Any]) -> str:
        match n["kind"]:
            case "custom":
                return str(n["name"])
            case "network":
                return f"{n['method']} {n['url']}"
            case "error":
                return str(n["errorType"])
            case "vital":
                return f"{n['name']} {n['value']}"
        return str(n["url"])

    assert [label(n) for n in data["nodes"]] == expected
    assert data["totalCount"] == len(expected)


def test_events_all_kinds_count_and_time_range(ro: Server) -> None:
    data = ro.data(f"""{{ all: events {{ totalCount }}
        r: events(timeRange: {{from: "{iso(TC + 1000)}", to: "{iso(TC + 4000)}"}}) {{ nodes {{ timestamp }} }} }}""")
    assert data["all"]["totalCount"] == 6 + 4 + 7 + 3
    assert data["r"]["nodes"] == [{"timestamp": iso(TC + 3000)}, {"timestamp": iso(TC + 2000)},
                                  {"timestamp": iso(TC + 1000)}]  # from included, to excluded


# -- pagination -----------------------------------------------------------------------------------------------------

def _many_sessions(prefix: str, count: int, start: int, step: int = 1000) -> list[dict[str, Any]]:
    return [make_batch(f"{prefix}-{i:03d}", [{"type": "page", "ts": start + i * step, "url": "https://p.example/"}])
            for i in range(count)]


PAGE_QUERY = """query($first: Int, $after: String, $o: SessionOrder) {
    sessions(first: $first, after: $after, orderBy: $o) {
        totalCount edges { cursor node { id } } nodes { id } pageInfo { hasNextPage endCursor } } }"""


def _page(server: Server, first: int | None, after: str | None, order: dict[str, str] | None = None
          ) -> dict[str, Any]:
    variables: dict[str, Any] = {"after": after, "o": order}
    if first is not None:
        variables["first"] = first
    page: dict[str, Any] = server.data(PAGE_QUERY, variables, key="read")["sessions"]
    assert [e["node"] for e in page["edges"]] == page["nodes"]
    assert page["pageInfo"]["endCursor"] == (page["edges"][-1]["cursor"] if page["edges"] else None)
    return page


def test_default_page_size_is_50(server: Server) -> None:
    load(server, _many_sessions("p", 53, T0))
    page = _page(server, None, None)
    assert len(page["nodes"]) == 50 and page["totalCount"] == 53 and page["pageInfo"]["hasNextPage"] is True
    assert page["nodes"][0] == {"id": "p-052"}
    rest = _page(server, None, page["pageInfo"]["endCursor"])
    assert [n["id"] for n in rest["nodes"]] == ["p-002", "p-001", "p-000"]
    assert rest["pageInfo"]["hasNextPage"] is False


def test_paging_returns_every_session_exactly_once(server: Server) -> None:
    # three sessions share one start time: the id breaks the tie, so none is lost at a page boundary
    batches = _many_sessions("p", 10, T0) + _many_sessions("q", 3, T0 + 5 * 1000, step=0)
    load(server, batches)
    expected = {b["sessionId"] for b in batches}
    for order in (None, {"field": "STARTED_AT", "direction": "ASC"}, {"field": "DURATION", "direction": "ASC"}):
        seen: list[str] = []
        after = None
        while True:
            page = _page(server, 3, after, order)
            assert len(page["nodes"]) <= 3 and page["totalCount"] == 13
            seen += [n["id"] for n in page["nodes"]]
            if not page["pageInfo"]["hasNextPage"]:
                break
            after = page["pageInfo"]["endCursor"]
        assert len(seen) == len(set(seen)) == 13 and set(seen) == expected, order


def test_cursors_stay_stable_while_sessions_are_appended(server: Server) -> None:
    load(server, _many_sessions("p", 9, T0))
    # newest first: rows appended between pages are newer than every cursor and never shift the pages
    first = _page(server, 3, None)
    load(server, _many_sessions("n", 4, T0 + HOUR))
    second = _page(server, 3, first["pageInfo"]["endCursor"])
    load(server, _many_sessions("m", 4, T0 + 2 * HOUR))
    third = _page(server, 3, second["pageInfo"]["endCursor"])
    seen = [n["id"] for page in (first, second, third) for n in page["nodes"]]
    assert seen == [f"p-{i:03d}" for i in range(8, -1, -1)]
    assert third["pageInfo"]["hasNextPage"] is False
    # oldest first: earlier rows are neither repeated nor skipped, and the appended rows follow at the end
    asc = {"field": "STARTED_AT", "direction": "ASC"}
    page = _page(server, 10, None, asc)
    load(server, _many_sessions("z", 2, T0 + 3 * HOUR))
    rest = _page(server, 50, page["pageInfo"]["endCursor"], asc)
    ids = [n["id"] for n in page["nodes"] + rest["nodes"]]
    assert ids == ([f"p-{i:03d}" for i in range(9)] + [f"n-{i:03d}" for i in range(4)]
                   + [f"m-{i:03d}" for i in range(4)] + ["z-000", "z-001"])


def test_first_over_the_cap_is_a_clear_error(ro: Server) -> None:
    response = ro.gql("{ sessions(first: 501) { totalCount } }", key="read")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"].startswith("`first` is 501; the maximum page size is 500.")
    assert error["path"] == ["sessions"]
    assert ro.data("{ sessions(first: 500) { totalCount } }")["sessions"]["totalCount"] == 4
    nested = ro.gql('{ session(id: "s-a") { events(first: 1000) { totalCount } } }')
    assert nested.status_code == 400
    assert "the maximum page size is 500" in nested.json()["errors"][0]["message"]


@pytest.mark.parametrize("field", ["sessions", "users", "issues", "events"])
def test_first_zero_and_negative(ro: Server, field: str) -> None:
    zero = ro.data(f"{{ {field}(first: 0) {{ totalCount nodes {{ __typename }} pageInfo {{ hasNextPage }} }} }}")
    assert zero[field]["nodes"] == [] and zero[field]["totalCount"] > 0
    assert zero[field]["pageInfo"]["hasNextPage"] is True
    response = ro.gql(f"{{ {field}(first: -1) {{ totalCount }} }}")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["message"], error["extensions"]["code"]) == ("`first` must be >= 0; got -1", "BAD_USER_INPUT")


def test_empty_cursor_means_from_the_start(ro: Server) -> None:
    assert session_ids(ro, 'after: ""') == ["s-d", "s-c", "s-b", "s-a"]


@pytest.mark.parametrize("cursor", ["garbage!!", "bm90IGpzb24", "WzFd", "é"])
def test_garbage_cursor_is_bad_user_input(ro: Server, cursor: str) -> None:
    response = ro.gql("query($a: String) { sessions(after: $a) { totalCount nodes { id } } }", {"a": cursor})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["message"] in ("`after` is not a cursor returned by this API",
                                "`after` is not a cursor for this list and order")


def test_cursor_of_another_list_is_rejected(ro: Server) -> None:
    events = ro.data("{ events(first: 1) { pageInfo { endCursor } } }")["events"]["pageInfo"]["endCursor"]
    response = ro.gql("query($a: String) { sessions(after: $a) { nodes { id } } }", {"a": events})
    assert response.status_code == 400
    assert response.json()["errors"][0]["message"] == "`after` is not a cursor for this list and order"


# -- mutations ------------------------------------------------------------------------------------------------------

IDENTIFY = """mutation($id: ID!, $name: String, $email: String, $traits: JSON) {
    identifyUser(id: $id, name: $name, email: $email, traits: $traits) { id name email traits sessionCount } }"""


def test_identify_user_merges_traits_and_removes_null_ones(demo: Server) -> None:
    user = demo.data(IDENTIFY, {"id": "u-ada", "email": "ada@lovelace.org",
                                "traits": {"plan": None, "tier": "gold"}}, key="write")["identifyUser"]
    assert user == {"id": "u-ada", "name": "Ada Lovelace", "email": "ada@lovelace.org",
                    "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "tier": "gold"},
                    "sessionCount": 2}
    again = demo.data(IDENTIFY, {"id": "u-ada", "name": "Countess", "traits": {"tier": {"level": 2}}})
    assert again["identifyUser"]["name"] == "Countess"
    assert again["identifyUser"]["email"] == "ada@lovelace.org"
    assert again["identifyUser"]["traits"]["tier"] == {"level": 2}
    stored = demo.data('{ user(id: "u-ada") { name email traits sessionCount } }', key="read")["user"]
    assert stored == {"name": "Countess", "email": "ada@lovelace.org", "sessionCount": 2,
                      "traits": {"name": "Ada Lovelace", "email": "ada@example.com", "tier": {"level": 2}}}


def test_identify_user_creates_a_new_user(demo: Server) -> None:
    created = demo.data(IDENTIFY, {"id": "u-new", "name": "Newt", "traits": {"plan": "free", "gone": None}},
                        key="write")["identifyUser"]
    assert created == {"id": "u-new", "name": "Newt", "email": None, "traits": {"plan": "free"}, "sessionCount": 0}
    data = demo.data('{ user(id: "u-new") { id name } users { totalCount } }')
    assert data == {"user": {"id": "u-new", "name": "Newt"}, "users": {"totalCount": 3}}


def test_identify_user_rejects_non_object_traits(demo: Server) -> None:
    response = demo.gql(IDENTIFY, {"id": "u-x", "traits": [1, 2]})
    [error] = response.json()["errors"]
    assert error["message"] == "`traits` must be a JSON object"
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert demo.data('{ user(id: "u-x") { id } }') == {"user": None}


UPDATE = "mutation($id: ID!, $s: IssueStatus!) { updateIssue(id: $id, status: $s) { id status count } }"


def test_update_issue_status_transitions(demo: Server) -> None:
    issue_id = issue_ids_by_type(demo)["TypeError"]
    for status in ("RESOLVED", "IGNORED", "OPEN", "RESOLVED"):
        updated = demo.data(UPDATE, {"id": issue_id, "s": status}, key="write")["updateIssue"]
        assert updated == {"id": issue_id, "status": status, "count": 2}
        assert demo.data("query($id: ID!) { issue(id: $id) { status } }", {"id": issue_id}) == {
            "issue": {"status": status}}


def test_update_issue_unknown_id_and_bad_status(demo: Server) -> None:
    response = demo.gql(UPDATE, {"id": "no-such-issue", "s": "RESOLVED"}, key="write")
    assert response.status_code == 200
    body = response.json()
    assert body["data"] is None
    [error] = body["errors"]
    assert error["message"] == "no issue no-such-issue in this app"
    assert error["extensions"]["code"] == "NOT_FOUND" and error["path"] == ["updateIssue"]
    bad = demo.gql(UPDATE, {"id": "x", "s": "CLOSED"}, key="write")
    assert bad.status_code == 400
    assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


DELETE = """mutation($id: ID!) { deleteUser(id: $id) { userId deletedSessions deletedEvents deletedRecordings
    complete } }"""


def test_delete_user_removes_everything_of_the_user(demo: Server) -> None:
    ids = issue_ids_by_type(demo)
    result = demo.data(DELETE, {"id": "u-ada"}, key="write")["deleteUser"]
    assert result == {"userId": "u-ada", "deletedSessions": 2, "deletedEvents": 6 + 3, "deletedRecordings": 1,
                      "complete": True}
    data = demo.data("""query($t: ID!, $r: ID!) {
        a: session(id: "s-a") { id } d: session(id: "s-d") { id } u: user(id: "u-ada") { id }
        sessions { totalCount nodes { id } } users { nodes { id } }
        ev: events(filter: {sessionId: {in: ["s-a", "s-d"]}}) { totalCount }
        byUser: events(filter: {userId: {eq: "u-ada"}}) { totalCount }
        all: events { totalCount }
        issues { nodes { errorType } }
        t: issue(id: $t) { count sessionCount userCount releases firstSeen sessions { nodes { id } }
                           occurrences { totalCount } }
        r: issue(id: $r) { id } }""", {"t": ids["TypeError"], "r": ids["ReferenceError"]}, key="read")
    assert data["a"] is None and data["d"] is None and data["u"] is None
    assert data["sessions"] == {"totalCount": 2, "nodes": [{"id": "s-c"}, {"id": "s-b"}]}
    assert data["users"]["nodes"] == [{"id": "u-bob"}]
    assert data["ev"]["totalCount"] == 0 and data["byUser"]["totalCount"] == 0
    assert data["all"]["totalCount"] == 4 + 7
    # the TypeError remains for s-c alone; the ReferenceError occurred only for u-ada and is gone
    assert data["t"] == {"count": 1, "sessionCount": 1, "userCount": 1, "releases": ["1.5.0"],
                         "firstSeen": iso(TC + 1000), "sessions": {"nodes": [{"id": "s-c"}]},
                         "occurrences": {"totalCount": 1}}
    assert data["r"] is None
    assert data["issues"]["nodes"] == [{"errorType": "RangeError"}, {"errorType": "TypeError"}]
    # app other's u-ada is someone else and untouched
    other = demo.data('{ user(id: "u-ada") { name sessionCount } }', key="other")
    assert other == {"user": {"name": "Other Ada", "sessionCount": 1}}


def test_deleted_users_future_data_is_dropped(demo: Server) -> None:
    demo.data(DELETE, {"id": "u-ada"}, key="write")
    # a late batch of a deleted session: acknowledged, not stored
    late = demo.ingest(make_batch("s-a", [{"type": "page", "ts": T0 + 2 * MIN, "url": "https://shop.example/x"}],
                                  seq=1))
    assert late.status_code == 200 and late.json()["outcome"] == "dropped"
    assert demo.data('{ session(id: "s-a") { id } }') == {"session": None}
    # a new session: stored while anonymous, then dropped with everything before once it identifies as u-ada
    first = demo.ingest(make_batch("s-e", [{"type": "page", "ts": T0, "url": "https://shop.example/"}]))
    assert first.status_code == 200 and first.json()["outcome"] == "stored"
    assert demo.data('{ session(id: "s-e") { id } }') == {"session": {"id": "s-e"}}
    identify = demo.ingest(make_batch("s-e", [{"type": "identify", "ts": T0 + 1000, "userId": "u-ada"},
                                              {"type": "click", "ts": T0 + 2000, "selector": "a"}], seq=1))
    assert identify.status_code == 200 and identify.json()["outcome"] == "dropped"
    later = demo.ingest(make_batch("s-e", [{"type": "page", "ts": T0 + 3000, "url": "https://shop.example/y"}],
                                   seq=2))
    assert later.status_code == 200 and later.json()["outcome"] == "dropped"
    data = demo.data("""{ s: session(id: "s-e") { id } u: user(id: "u-ada") { id }
        ev: events(filter: {sessionId: {eq: "s-e"}}) { totalCount } sessions { nodes { id } } }""")
    assert data == {"s": None, "u": None, "ev": {"totalCount": 0},
                    "sessions": {"nodes": [{"id": "s-c"}, {"id": "s-b"}]}}
    # other users are still stored
    fresh = demo.ingest(make_batch("s-f", [{"type": "identify", "ts": T0, "userId": "u-carol"}]))
    assert fresh.json()["outcome"] == "stored"
    assert demo.data('{ user(id: "u-carol") { sessionCount } }') == {"user": {"sessionCount": 1}}


def test_delete_unknown_user_is_complete_with_zero_counts(demo: Server) -> None:
    result = demo.data(DELETE, {"id": "u-nobody"}, key="write")["deleteUser"]
    assert result == {"userId": "u-nobody", "deletedSessions": 0, "deletedEvents": 0, "deletedRecordings": 0,
                      "complete": True}
    assert demo.data("{ sessions { totalCount } }")["sessions"]["totalCount"] == 4
