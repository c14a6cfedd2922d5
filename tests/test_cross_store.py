"""Cross-store consistency: one generated data set in DuckDB and in ClickHouse gives identical GraphQL answers.

Issue 3 promises "no change visible through the GraphQL API: same schema, same filters, same numbers". Both
stores get exactly the same batches through the import path (no clock-skew correction, so timestamps are the
generator's), then the same mutations (an issue resolved, one ignored, a user's traits changed, a user deleted).
Every query below runs on both servers and the JSON `data` must be equal, cursors included (they encode sort
values, so they are part of the answer). Orders are total (every list breaks ties by id), so no difference is
legitimate.

Equality alone would also hold for two equally wrong or empty answers, so the tests also check what follows from
the input batches themselves: how many sessions, users and events there are, which sessions a filter must keep,
and that paging visits every session exactly once.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from conftest import Server, make_batch
from replayql.api.types import SESSION_FIELD_COLUMNS
from replayql.generate import generate_batches
from store_pair import Pair, load, servers_on_both_stores

END_MS = 1_764_115_200_000  # 2025-11-26T00:00:00Z: the generated week ends here, whatever day the tests run
DAY_MS = 86_400_000
BATCHES = list(generate_batches("demo", 150, seed=7, end_ms=END_MS))

SESSION_IDS = sorted({b["sessionId"] for b in BATCHES})
# session -> the user it identified as (batches come in time order; the last identify wins)
_IDENTIFIED = {b["sessionId"]: e["userId"] for b in BATCHES for e in b["events"] if e["type"] == "identify"}
USER_SESSIONS = Counter(_IDENTIFIED.values())
# The deleted user: one with several sessions, so the deletion visibly changes lists and counts.
DELETED_USER = min(u for u, n in USER_SESSIONS.items() if n >= 2)
DELETED_SESSIONS = {s for s, u in _IDENTIFIED.items() if u == DELETED_USER}
LIVE_SESSIONS = [s for s in SESSION_IDS if s not in DELETED_SESSIONS]
LIVE_USERS = sorted(u for u in USER_SESSIONS if u != DELETED_USER)
# Stored events per kind: everything but rrweb recording events, which live in the recording, not in events.
STORED_KINDS = Counter(e["type"] for b in BATCHES if b["sessionId"] not in DELETED_SESSIONS
                       for e in b["events"] if e["type"] != "recording")
TRAITS_CHANGED_USER = max(u for u in LIVE_USERS if USER_SESSIONS[u] >= 2)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


# App `other`: two occurrences of one issue (the messages differ only in a number, which grouping ignores),
# the later one imported first, in a commit of its own.
T_LATE, T_EARLY = END_MS - DAY_MS + 50_000, END_MS - DAY_MS + 1_000
LATE_FIRST = [make_batch(sid, [{"type": "error", "ts": ts, "errorType": "TypeError", "message": message,
                                "stack": "TypeError: x is undefined\n    at run (https://a.example/app.js:1:1)"}],
                         app_id="other") for sid, ts, message in (("o-late", T_LATE, "x is undefined 456"),
                                                                   ("o-early", T_EARLY, "x is undefined 123"))]


def change(server: Server) -> None:
    """The same mutations on both stores: status changes, a traits update of a known user, a deletion."""
    issues = server.data("{ issues(orderBy: {field: COUNT, direction: DESC}) { nodes { id "
                         "sessions(first: 500) { nodes { id } } } } }")["issues"]["nodes"]
    # Both changed issues outlive the deletion: each has an occurrence outside the deleted user's sessions.
    kept = [i["id"] for i in issues if any(s["id"] not in DELETED_SESSIONS for s in i["sessions"]["nodes"])]
    server.data("mutation($id: ID!) { updateIssue(id: $id, status: RESOLVED) { id } }", {"id": kept[0]})
    server.data("mutation($id: ID!) { updateIssue(id: $id, status: IGNORED) { id } }", {"id": kept[-1]})
    server.data('mutation($id: ID!) { identifyUser(id: $id, name: "Renamed", traits: {plan: "enterprise", '
                'signupDate: null, seats: 12}) { id } }', {"id": TRAITS_CHANGED_USER})
    deleted = server.data("mutation($id: ID!) { deleteUser(id: $id) { deletedSessions complete } }",
                          {"id": DELETED_USER})["deleteUser"]
    assert deleted == {"deletedSessions": len(DELETED_SESSIONS), "complete": True}


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory, chdb_path: Path) -> Iterator[Pair]:
    def fill(server: Server) -> None:
        load(server, BATCHES)
        change(server)
        for batch in LATE_FIRST:
            load(server, [batch])

    with servers_on_both_stores(tmp_path_factory.mktemp("cross-store"), chdb_path, fill) as both:
        yield both


# -- fragments --------------------------------------------------------------------------------------------------

USER_FIELDS = "id identified name email traits firstSeen lastSeen sessionCount"
SESSION_FIELDS = f"""id startedAt endedAt durationMs activeDurationMs userId browser browserVersion os osVersion
    deviceType country language timezone release referrer initialUrl utmSource utmMedium utmCampaign userAgent
    viewport {{ width height }} pageCount clickCount errorCount eventCount rageClickCount deadClickCount
    errorClickCount webVitals {{ lcp fcp cls inp ttfb fid }} hasRecording sdkName sdkVersion
    user {{ {USER_FIELDS} }}"""
EVENT_FIELDS = """id kind timestamp url sessionId
    ... on PageEvent { title referrer host path }
    ... on ClickEvent { selector text x y }
    ... on InputEvent { selector }
    ... on ConsoleEvent { level message }
    ... on NetworkEvent { method status durationMs requestBytes responseBytes host path }
    ... on ErrorEvent { errorType message stack handled issueId tags extra }
    ... on CustomEvent { name properties }
    ... on IdentifyEvent { userId traits }
    ... on WebVitalEvent { name value }
    ... on RageClickEvent { selector text }
    ... on DeadClickEvent { selector text }
    ... on ErrorClickEvent { selector text }"""
PAGE_INFO = "pageInfo { hasNextPage endCursor startCursor }"


def sessions_query(args: str = "", declare: str = "") -> str:
    return (f"query{f'({declare})' if declare else ''} {{ sessions{f'({args})' if args else ''} {{ totalCount "
            f"{PAGE_INFO} edges {{ cursor node {{ {SESSION_FIELDS} }} }} }} }}")


# -- counts -----------------------------------------------------------------------------------------------------

def test_counts_are_identical_and_follow_from_the_input(pair: Pair) -> None:
    data = pair.both("""{ sessions { totalCount } users { totalCount } issues { totalCount } events { totalCount }
        pages: events(filter: {kind: {eq: "page"}}) { totalCount }
        clicks: events(filter: {kind: {eq: "click"}}) { totalCount }
        errors: events(filter: {kind: {eq: "error"}}) { totalCount }
        vitals: events(filter: {kind: {eq: "vital"}}) { totalCount }
        network: events(filter: {kind: {eq: "network"}}) { totalCount }
        identifies: events(filter: {kind: {eq: "identify"}}) { totalCount }
        frustration: events(filter: {kind: {in: ["rage_click", "dead_click", "error_click"]}}) { totalCount } }""")
    assert data["sessions"]["totalCount"] == len(LIVE_SESSIONS)
    assert data["users"]["totalCount"] == len(LIVE_USERS)
    for alias, kind in (("pages", "page"), ("clicks", "click"), ("errors", "error"), ("vitals", "vital"),
                        ("network", "network"), ("identifies", "identify")):
        assert data[alias]["totalCount"] == STORED_KINDS[kind], kind
    # every stored event is an input event or a derived frustration signal
    assert data["events"]["totalCount"] == sum(STORED_KINDS.values()) + data["frustration"]["totalCount"]
    assert data["frustration"]["totalCount"] > 0 and data["issues"]["totalCount"] > 0


# -- session lists ----------------------------------------------------------------------------------------------

ORDER_FIELDS = ("STARTED_AT", "ENDED_AT", "DURATION", "ACTIVE_DURATION", "EVENT_COUNT", "ERROR_COUNT",
                "PAGE_COUNT", "CLICK_COUNT", "FRUSTRATION", "USER", "COUNTRY", "DEVICE")


def _order_key(field: str, node: dict[str, Any]) -> tuple[Any, str]:
    """What an order sorts a session by, from its fields, with the id that breaks ties."""
    value = {"FRUSTRATION": lambda: node["rageClickCount"] + node["deadClickCount"] + node["errorClickCount"],
             "USER": lambda: node["userId"] or "", "COUNTRY": lambda: node["country"] or "",
             "DEVICE": lambda: (node["deviceType"] or "").lower()}[field]()
    return value, node["id"]


def test_session_list_first_page_in_every_order(pair: Pair) -> None:
    """Every order field in both directions, first 50 with every field, in one request (users load once)."""
    lists = " ".join(f"{f}_{d}: sessions(first: 50, orderBy: {{field: {f}, direction: {d}}}) {{ {PAGE_INFO} "
                     f"edges {{ cursor node {{ {SESSION_FIELDS} }} }} }}"
                     for f in ORDER_FIELDS for d in ("ASC", "DESC"))
    data = pair.both(f"{{ {lists} everything: sessions {{ totalCount }} }}")
    assert data.pop("everything") == {"totalCount": len(LIVE_SESSIONS)}
    assert len(data) == 2 * len(ORDER_FIELDS)
    for name, page in data.items():
        assert len(page["edges"]) == 50 and page["pageInfo"]["hasNextPage"] is True, name
        assert not {e["node"]["id"] for e in page["edges"]} & DELETED_SESSIONS, name
    oldest = [e["node"]["startedAt"] for e in data["STARTED_AT_ASC"]["edges"]]
    longest = [e["node"]["durationMs"] for e in data["DURATION_DESC"]["edges"]]
    assert oldest == sorted(oldest) and longest == sorted(longest, reverse=True)
    for field in ("FRUSTRATION", "USER", "COUNTRY", "DEVICE"):
        seen: set[Any] = set()
        for direction in ("ASC", "DESC"):
            keys = [_order_key(field, e["node"]) for e in data[f"{field}_{direction}"]["edges"]]
            assert keys == sorted(keys, reverse=direction == "DESC"), (field, direction)
            seen |= {k[0] for k in keys}
        assert len(seen) > 1, field  # the two ends differ: the order is not one tie


def test_default_session_order_and_anonymous_and_identified_users(pair: Pair) -> None:
    edges = pair.both(sessions_query("first: 150"))["sessions"]["edges"]
    nodes = [e["node"] for e in edges]
    assert [n["startedAt"] for n in nodes] == sorted((n["startedAt"] for n in nodes), reverse=True)
    assert sorted(n["id"] for n in nodes) == LIVE_SESSIONS
    for node in nodes:  # identified sessions carry the user they identified as; the rest stand-in users
        expected = _IDENTIFIED.get(node["id"])
        assert node["user"]["id"] == (expected or f"anonymous:{node['id']}")
        assert node["user"]["identified"] is (expected is not None)
    renamed = next(n["user"] for n in nodes if n["userId"] == TRAITS_CHANGED_USER)
    assert renamed["name"] == "Renamed" and renamed["traits"]["plan"] == "enterprise"
    assert renamed["traits"]["seats"] == 12 and "signupDate" not in renamed["traits"]


@pytest.mark.parametrize(("field", "direction", "size"), [
    ("STARTED_AT", "DESC", 9), ("DURATION", "ASC", 40), ("EVENT_COUNT", "DESC", 30), ("ERROR_COUNT", "ASC", 20),
    ("CLICK_COUNT", "DESC", 35), ("PAGE_COUNT", "ASC", 45), ("ACTIVE_DURATION", "DESC", 60),
    ("FRUSTRATION", "DESC", 25), ("USER", "ASC", 30), ("COUNTRY", "DESC", 50), ("DEVICE", "ASC", 70),
])
def test_paging_through_all_sessions_gives_the_same_pages_and_cursors(pair: Pair, field: str, direction: str,
                                                                       size: int) -> None:
    """Heavy ties (error counts are mostly 0) make the id tie-breaker and the cursor condition do the work."""
    query = (f"query($after: String) {{ sessions(first: {size}, after: $after, orderBy: {{field: {field}, "
             f"direction: {direction}}}) {{ {PAGE_INFO} edges {{ cursor node {{ id }} }} }} }}")
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(LIVE_SESSIONS) // size + 2):
        page = pair.both(query, {"after": after})["sessions"]
        seen.extend(e["node"]["id"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == LIVE_SESSIONS  # every session exactly once


def test_a_filtered_total_is_the_same_on_every_page(pair: Pair) -> None:
    """A filtered first page counts its matches in the statement that finds it on ClickHouse, later pages in a
    statement of their own: every page's total is every match, and the pages hold them all, on both stores."""
    query = ('query($after: String) { sessions(first: 7, after: $after, query: "identified = true") '
             f'{{ totalCount {PAGE_INFO} nodes {{ id }} }} }}')
    identified = sorted(s for s in LIVE_SESSIONS if s in _IDENTIFIED)
    seen: list[str] = []
    after: str | None = None
    for _ in range(len(identified) // 7 + 2):
        page = pair.both(query, {"after": after})["sessions"]
        assert page["totalCount"] == len(identified)
        seen.extend(n["id"] for n in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == identified


# -- filters ----------------------------------------------------------------------------------------------------

SESSION_FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("id-in", {"id": {"in": SESSION_IDS[:40:3]}}),
    ("browser-eq", {"browser": {"eq": "Chrome"}}),
    ("browser-version-in", {"browserVersion": {"in": ["142.0", "17.7"]}}),
    ("os-neq", {"os": {"neq": "Windows"}}),
    ("os-version-not-in", {"osVersion": {"notIn": ["10", "10.15"]}}),
    ("device-type-eq", {"deviceType": {"eq": "mobile"}}),
    ("country-not-in", {"country": {"notIn": ["US", "GB"]}}),
    ("language-contains", {"language": {"contains": "EN-"}}),
    ("release-in", {"release": {"in": ["1.4.1", "1.4.2"]}}),
    ("user-id-neq", {"userId": {"neq": LIVE_USERS[0]}}),
    ("initial-url-contains", {"initialUrl": {"contains": "utm_"}}),
    ("referrer-contains", {"referrer": {"contains": "google"}}),
    ("utm-source-eq", {"utmSource": {"eq": "newsletter"}}),
    ("utm-medium-neq", {"utmMedium": {"neq": "email"}}),
    ("utm-campaign-in", {"utmCampaign": {"in": ["black_friday", "brand"]}}),
    ("duration-range", {"durationMs": {"gte": 60_000, "lt": 150_000}}),
    ("active-duration-gt", {"activeDurationMs": {"gt": 40_000}}),
    ("page-count-eq", {"pageCount": {"eq": 3}}),
    ("click-count-lte", {"clickCount": {"lte": 2}}),
    ("error-count-gte", {"errorCount": {"gte": 1}}),
    ("event-count-range", {"eventCount": {"gt": 20, "lte": 60}}),
    ("rage-clicks", {"rageClickCount": {"gte": 1}}),
    ("dead-clicks", {"deadClickCount": {"gte": 2}}),
    ("error-clicks", {"errorClickCount": {"gt": 0}}),
    ("has-errors", {"hasErrors": True}),
    ("no-errors", {"hasErrors": False}),
    ("identified", {"identified": True}),
    ("anonymous", {"identified": False}),
    ("visited-url-contains", {"visitedUrl": {"contains": "/CHECKOUT"}}),
    ("visited-url-eq", {"visitedUrl": {"eq": "https://shop.example/cart"}}),
    ("combined", {"deviceType": {"eq": "desktop"}, "hasErrors": False, "pageCount": {"gte": 2},
                  "country": {"in": ["US", "GB", "DE"]}}),
]


def filtered_lists(pair: Pair, filters: list[tuple[str, dict[str, Any]]], kind: str, nodes: str
                   ) -> dict[str, Any]:
    """Each filter as an aliased list with its totalCount, up to 25 per request (the alias limit is 30)."""
    root, type_name = {"session": ("sessions", "SessionFilter"), "event": ("events", "EventFilter")}[kind]
    results: dict[str, Any] = {}
    for start in range(0, len(filters), 25):
        chunk = filters[start:start + 25]
        declared = ", ".join(f"$f{n}: {type_name}" for n in range(len(chunk)))
        lists = " ".join(f"{name.replace('-', '_')}: {root}(first: 500, filter: $f{n}) {{ totalCount "
                         f"{PAGE_INFO} edges {{ cursor node {{ {nodes} }} }} }}" for n, (name, _) in enumerate(chunk))
        data = pair.both(f"query({declared}) {{ {lists} }}", {f"f{n}": f for n, (_, f) in enumerate(chunk)})
        results |= {name: data[name.replace("-", "_")] for name, _ in chunk}
    return results


def test_session_filters(pair: Pair) -> None:
    results = filtered_lists(pair, SESSION_FILTERS, "session", "id durationMs")
    for name, data in results.items():
        assert 0 < data["totalCount"] < len(LIVE_SESSIONS), f"{name}: a filter that keeps none or all proves little"
        assert data["totalCount"] == len(data["edges"]), name


def test_filters_agree_with_the_input_batches(pair: Pair) -> None:
    """Two filters whose answers come straight from the batches, not from either store."""
    query = "query($f: SessionFilter) { sessions(first: 500, filter: $f) { nodes { id } } }"
    identified = pair.both(query, {"f": {"identified": True}})["sessions"]["nodes"]
    assert sorted(n["id"] for n in identified) == sorted(s for s in _IDENTIFIED if s not in DELETED_SESSIONS)
    cart = {b["sessionId"] for b in BATCHES for e in b["events"]
            if e["type"] == "page" and "/cart" in e["url"]} - DELETED_SESSIONS
    visited = pair.both(query, {"f": {"visitedUrl": {"contains": "/cart"}}})["sessions"]["nodes"]
    assert sorted(n["id"] for n in visited) == sorted(cart) and cart


@pytest.mark.parametrize(("start", "end"), [
    (END_MS - 3 * DAY_MS, END_MS - DAY_MS), (END_MS - 2 * DAY_MS - 3_600_000, None), (None, END_MS - 5 * DAY_MS),
    (END_MS - 4 * DAY_MS + 12_345, END_MS - 4 * DAY_MS + 6 * 3_600_000),
])
def test_time_ranges(pair: Pair, start: int | None, end: int | None) -> None:
    time_range = {k: iso(v) for k, v in (("from", start), ("to", end)) if v is not None}
    query = sessions_query("first: 200, timeRange: $r, orderBy: {field: ENDED_AT, direction: ASC}", "$r: TimeRange")
    data = pair.both(query, {"r": time_range})["sessions"]
    assert 0 < data["totalCount"] < len(LIVE_SESSIONS)
    others = pair.both(f"""query($r: TimeRange) {{ events(timeRange: $r, first: 500) {{ totalCount edges {{ cursor
        node {{ {EVENT_FIELDS} }} }} }} users(timeRange: $r, first: 100) {{ totalCount edges {{ cursor node {{ id
        firstSeen lastSeen }} }} }} issues(timeRange: $r) {{ totalCount nodes {{ id count }} }} }}""",
                       {"r": time_range})
    assert others["events"]["totalCount"] > 0 and 0 < others["users"]["totalCount"] < len(LIVE_USERS)


# -- session detail ---------------------------------------------------------------------------------------------

def _detail_ids(pair: Pair) -> list[str]:
    """Sessions with the most to show: most events, errors, network failures, recordings, frustration."""
    picks = pair.both("""{
        busiest: sessions(first: 2, orderBy: {field: EVENT_COUNT, direction: DESC}) { nodes { id } }
        errors: sessions(first: 3, filter: {hasErrors: true}) { nodes { id } }
        rage: sessions(first: 2, filter: {rageClickCount: {gte: 1}}) { nodes { id } }
        dead: sessions(first: 2, filter: {deadClickCount: {gte: 3}}) { nodes { id } }
        failed: events(first: 2, filter: {kind: {eq: "network"}, status: {gte: 500}}) { nodes { id: sessionId } }
        shortest: sessions(first: 1, orderBy: {field: DURATION, direction: ASC}) { nodes { id } } }""")
    return sorted({n["id"] for group in picks.values() for n in group["nodes"]})


DETAIL = f"""fragment Detail on Session {{ {SESSION_FIELDS}
    events(first: 500) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ {EVENT_FIELDS} }} }} }}
    pages(first: 500) {{ totalCount edges {{ cursor node {{ id url title referrer host path }} }} }}
    clicks(first: 500) {{ totalCount nodes {{ id selector text x y }} }}
    errors(first: 500) {{ totalCount edges {{ cursor node {{ id errorType message stack handled issueId tags extra
        issue {{ id title status count }} }} }} }}
    networkRequests(first: 500) {{ totalCount edges {{ cursor node {{ id method status durationMs requestBytes
        responseBytes host path url }} }} }}
    consoleLogs(first: 500) {{ totalCount nodes {{ id level message }} }}
    customEvents(first: 500) {{ totalCount nodes {{ id name properties }} }}
    webVitalEvents(first: 500) {{ totalCount nodes {{ id name value }} }}
    frustrationSignals(first: 500) {{ totalCount edges {{ cursor node {{ {EVENT_FIELDS} }} }} }}
    recording(first: 500) {{ totalCount {PAGE_INFO} edges {{ cursor node }} }} }}"""


def test_session_detail_with_every_nested_list(pair: Pair) -> None:
    ids = _detail_ids(pair)
    assert len(ids) >= 8
    # one request for all of them: nested lists load through DataLoaders, as a dashboard would ask
    selections = " ".join(f's{n}: session(id: "{sid}") {{ ...Detail }}' for n, sid in enumerate(ids))
    data = pair.both(f"query {{ {selections} }} {DETAIL}")
    recorded = 0
    for n, session_id in enumerate(ids):
        session = data[f"s{n}"]
        assert session["id"] == session_id
        mine = [e for b in BATCHES if b["sessionId"] == session_id for e in b["events"]]
        assert session["events"]["totalCount"] == sum(1 for e in mine if e["type"] != "recording") + \
            session["frustrationSignals"]["totalCount"]
        assert session["recording"]["totalCount"] == sum(1 for e in mine if e["type"] == "recording")
        assert session["errors"]["totalCount"] == sum(1 for e in mine if e["type"] == "error")
        recorded += session["recording"]["totalCount"] > 0
    assert recorded > 0


def test_recording_and_events_page_the_same_way(pair: Pair) -> None:
    longest = pair.both('{ sessions(first: 1, orderBy: {field: EVENT_COUNT, direction: DESC}) { nodes { id } } }')
    session_id = longest["sessions"]["nodes"][0]["id"]
    query = """query($id: ID!, $a: String, $b: String) { session(id: $id) {
        events(first: 40, after: $a) { pageInfo { hasNextPage endCursor } edges { cursor node { id kind } } }
        recording(first: 6, after: $b) { pageInfo { hasNextPage endCursor } edges { cursor node } } } }"""
    after: dict[str, str | None] = {"a": None, "b": None}
    pages = 0
    while True:
        session = pair.both(query, {"id": session_id, **after})["session"]
        pages += 1
        more = {k: session[f]["pageInfo"] for k, f in (("a", "events"), ("b", "recording"))}
        if not any(p["hasNextPage"] for p in more.values()):
            break
        after = {k: p["endCursor"] if p["hasNextPage"] else after[k] for k, p in more.items()}
    assert pages > 2


# -- users ------------------------------------------------------------------------------------------------------

USERS_QUERY = f"""query($f: UserFilter, $after: String, $field: UserOrderField!, $dir: OrderDirection!) {{
    users(first: 15, after: $after, filter: $f, orderBy: {{field: $field, direction: $dir}}) {{ totalCount
        {PAGE_INFO} edges {{ cursor node {{ {USER_FIELDS}
            sessions(first: 3) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ id startedAt userId }} }} }} }} }}
    }} }}"""


@pytest.mark.parametrize(("field", "direction"), [("LAST_SEEN", "DESC"), ("FIRST_SEEN", "ASC"),
                                                  ("SESSION_COUNT", "DESC"), ("SESSION_COUNT", "ASC")])
def test_users_paged_in_every_order(pair: Pair, field: str, direction: str) -> None:
    seen: list[str] = []
    after = None
    while True:
        page = pair.both(USERS_QUERY, {"after": after, "field": field, "dir": direction})["users"]
        for edge in page["edges"]:
            node = edge["node"]
            seen.append(node["id"])
            assert node["sessionCount"] == USER_SESSIONS[node["id"]] == node["sessions"]["totalCount"]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert sorted(seen) == LIVE_USERS


@pytest.mark.parametrize("user_filter", [
    {"sessionCount": {"gte": 2}}, {"email": {"contains": "EXAMPLE.ORG"}}, {"name": {"contains": "an"}},
    {"id": {"notIn": LIVE_USERS[:5]}}, {"name": {"eq": "Renamed"}},
], ids=["session-count", "email", "name-contains", "id-not-in", "renamed"])
def test_user_filters(pair: Pair, user_filter: dict[str, Any]) -> None:
    data = pair.both(USERS_QUERY, {"f": user_filter, "field": "LAST_SEEN", "dir": "DESC"})["users"]
    assert 0 < data["totalCount"] < len(LIVE_USERS)


def test_user_detail_with_all_sessions(pair: Pair) -> None:
    busiest = max(LIVE_USERS, key=lambda u: (USER_SESSIONS[u], u))
    query = f"""query($id: ID!) {{ user(id: $id) {{ {USER_FIELDS}
        sessions(first: 100) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ {SESSION_FIELDS} }} }} }} }}
        gone: user(id: "{DELETED_USER}") {{ id }} }}"""
    data = pair.both(query, {"id": busiest})
    assert data["gone"] is None
    assert sorted(e["node"]["id"] for e in data["user"]["sessions"]["edges"]) == \
        sorted(s for s, u in _IDENTIFIED.items() if u == busiest)


# -- issues -----------------------------------------------------------------------------------------------------

ISSUE_SUMMARY = "id title errorType message status firstSeen lastSeen count sampleStack sessionCount userCount releases"
ISSUE_FIELDS = f"""{ISSUE_SUMMARY}
    occurrences(first: 50) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ id timestamp sessionId url
        errorType message stack handled issueId tags extra session {{ id userId release }} }} }} }}
    sessions(first: 50) {{ totalCount {PAGE_INFO} edges {{ cursor node {{ {SESSION_FIELDS} }} }} }}"""


@pytest.mark.parametrize(("field", "direction"), [("LAST_SEEN", "DESC"), ("LAST_SEEN", "ASC"), ("FIRST_SEEN", "ASC"),
                                                  ("FIRST_SEEN", "DESC"), ("COUNT", "DESC"), ("COUNT", "ASC")])
def test_issues_in_every_order(pair: Pair, field: str, direction: str) -> None:
    data = pair.both(f"""{{ issues(first: 50, orderBy: {{field: {field}, direction: {direction}}}) {{ totalCount
        {PAGE_INFO} edges {{ cursor node {{ {ISSUE_SUMMARY} }} }} }} }}""")["issues"]
    statuses = Counter(e["node"]["status"] for e in data["edges"])
    assert statuses["RESOLVED"] == 1 and statuses["IGNORED"] == 1 and statuses["OPEN"] == data["totalCount"] - 2


def test_issues_with_occurrences_and_sessions(pair: Pair) -> None:
    data = pair.both(f"{{ issues {{ totalCount edges {{ cursor node {{ {ISSUE_FIELDS} }} }} }} }}")["issues"]
    assert data["totalCount"] == len(data["edges"]) > 2
    for edge in data["edges"]:
        issue = edge["node"]
        assert issue["count"] == issue["occurrences"]["totalCount"] == len(issue["occurrences"]["edges"]) > 0
        assert issue["sessionCount"] == issue["sessions"]["totalCount"] == len(issue["sessions"]["edges"])
        # the issue's text is its earliest remaining occurrence's (occurrences are newest first); none of it may
        # come from the deleted user's sessions
        earliest = issue["occurrences"]["edges"][-1]["node"]
        assert (issue["message"], issue["sampleStack"]) == (earliest["message"], earliest["stack"])
        assert issue["title"] == f"{earliest['errorType']}: {earliest['message']}"
    assert sum(e["node"]["count"] for e in data["edges"]) == STORED_KINDS["error"]  # every error is in one issue


def test_issue_text_comes_from_the_earliest_occurrence_whatever_the_arrival_order(pair: Pair) -> None:
    data = pair.both("{ issues { nodes { title message count firstSeen lastSeen } } }", key="other")
    assert data == {"issues": {"nodes": [{"title": "TypeError: x is undefined 123", "message": "x is undefined 123",
                                          "count": 2, "firstSeen": iso(T_EARLY), "lastSeen": iso(T_LATE)}]}}


def test_issues_paged_one_by_one(pair: Pair) -> None:
    query = """query($after: String) { issues(first: 1, after: $after, orderBy: {field: COUNT, direction: ASC}) {
        pageInfo { hasNextPage endCursor } edges { cursor node { id count } } } }"""
    seen, after = [], None
    while True:
        page = pair.both(query, {"after": after})["issues"]
        seen.extend(e["node"]["id"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen)) > 2


@pytest.mark.parametrize("issue_filter", [
    {"status": {"eq": "OPEN"}}, {"status": {"in": ["RESOLVED", "IGNORED"]}}, {"errorType": {"neq": "TypeError"}},
    {"message": {"contains": "json"}}, {"title": {"contains": "chunk"}}, {"count": {"gte": 2}},
], ids=["open", "closed", "error-type-neq", "message", "title", "count"])
def test_issue_filters(pair: Pair, issue_filter: dict[str, Any]) -> None:
    data = pair.both(f"""query($f: IssueFilter) {{ issues(filter: $f) {{ totalCount edges {{ cursor
        node {{ {ISSUE_SUMMARY} }} }} }} everything: issues {{ totalCount }} }}""", {"f": issue_filter})
    assert 0 < data["issues"]["totalCount"] < data["everything"]["totalCount"]


def test_issue_detail_and_time_range(pair: Pair) -> None:
    ids = [n["id"] for n in pair.both("{ issues { nodes { id } } }")["issues"]["nodes"]]
    detail = pair.both(f'{{ issue(id: "{ids[0]}") {{ {ISSUE_FIELDS} }} }}')["issue"]
    assert detail["id"] == ids[0]
    in_range = pair.both("""query($r: TimeRange) { issues(timeRange: $r) { totalCount nodes { id count } } }""",
                         {"r": {"from": iso(END_MS - 3 * DAY_MS), "to": iso(END_MS)}})["issues"]
    assert 0 < in_range["totalCount"] <= len(ids)


# -- events -----------------------------------------------------------------------------------------------------

EVENT_FILTERS: list[tuple[str, dict[str, Any]]] = [
    ("server-errors", {"kind": {"eq": "network"}, "status": {"gte": 500}}),
    ("client-errors", {"kind": {"eq": "network"}, "status": {"gte": 400, "lt": 500}}),
    ("slow-posts", {"method": {"eq": "POST"}, "durationMs": {"gt": 300}}),
    ("api-host", {"host": {"eq": "api.shop.example"}, "method": {"neq": "GET"}}),
    ("frustration", {"kind": {"in": ["rage_click", "dead_click", "error_click"]}}),
    ("errors", {"kind": {"eq": "error"}, "errorType": {"notIn": ["TypeError"]}}),
    ("poor-lcp", {"kind": {"eq": "vital"}, "name": {"eq": "LCP"}, "value": {"gt": 2500}}),
    ("product-pages", {"kind": {"eq": "page"}, "path": {"contains": "/product/"}}),
    ("cart-url", {"url": {"contains": "/cart"}, "kind": {"neq": "page"}}),
    ("console-levels", {"kind": {"eq": "console"}, "level": {"in": ["warn", "error"]}}),
    ("console-message", {"message": {"contains": "SLOW RENDER"}}),
    ("clicks-by-selector", {"kind": {"eq": "click"}, "selector": {"contains": "button"}}),
    ("clicks-by-text", {"kind": {"eq": "click"}, "text": {"contains": "add to"}}),
    ("custom-by-name", {"kind": {"eq": "custom"}, "name": {"in": ["Signed Up", "Checkout Completed"]}}),
    ("identify", {"kind": {"eq": "identify"}, "userId": {"neq": LIVE_USERS[-1]}}),
    ("one-session", {"sessionId": {"eq": LIVE_SESSIONS[len(LIVE_SESSIONS) // 2]}}),
]


def test_event_filters(pair: Pair) -> None:
    results = filtered_lists(pair, EVENT_FILTERS, "event", f"{EVENT_FIELDS} session {{ id userId }}")
    for name, data in results.items():
        assert data["totalCount"] > 0, name


def test_server_error_requests_follow_from_the_input(pair: Pair) -> None:
    data = pair.both('{ events(first: 500, filter: {kind: {eq: "network"}, status: {gte: 500}}) { nodes { '
                     '... on NetworkEvent { status sessionId } } } }')
    expected = Counter(e["status"] for b in BATCHES if b["sessionId"] not in DELETED_SESSIONS for e in b["events"]
                       if e["type"] == "network" and e["status"] >= 500)
    assert Counter(n["status"] for n in data["events"]["nodes"]) == expected and expected


def test_paging_through_every_event(pair: Pair) -> None:
    """All events, newest first, 500 a page: the same ids and cursors on both, each event once."""
    query = """query($after: String) { events(first: 500, after: $after) { pageInfo { hasNextPage endCursor }
        edges { cursor node { id } } } }"""
    seen: list[str] = []
    after = None
    while True:
        page = pair.both(query, {"after": after})["events"]
        seen.extend(e["node"]["id"] for e in page["edges"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert len(seen) == len(set(seen))
    assert len(seen) == pair.both("{ events { totalCount } }")["events"]["totalCount"]


# -- the filter language and analytics: a battery of queries, identical on both stores ---------------------------

LANGUAGE_BATTERY = {
    "sessions": [
        "browser = Chrome AND deviceType = desktop",
        "durationMs > 1m OR pageCount >= 5",
        'visited(path ^= "/product") AND NOT error',
        'custom("Checkout Completed", properties.plan = pro)',
        'custom("Added To Cart", properties.price > 50)',
        "network(status >= 500) THEN rageClick WITHIN 1m",
        'visited THEN custom("Added To Cart") THEN custom("Checkout Started")',
        'custom("Added To Cart") THEN custom("Added To Cart") WITHIN 5m',
        'count(custom("Added To Cart")) >= 2',
        "count(error) = 0 AND identified = true",
        "user.trait.plan IN (pro, team) OR user.email ~ example",
        'initialUrl MATCHES "(?i)/product/[0-9]+"',
        "NOT (user.trait.plan = free)",
    ],
    "users": ["trait.plan = pro", "session(browser = Safari) AND NOT error", "sessionCount >= 2 AND rageClick",
              'count(custom("Checkout Completed")) >= 1'],
    "issues": ["sessionCount >= 2", "session(deviceType = mobile)", "errorType = TypeError AND count >= 3"],
}


@pytest.mark.parametrize("entity", sorted(LANGUAGE_BATTERY))
def test_the_filter_language_answers_identically(pair: Pair, entity: str) -> None:
    selections = " ".join(f'q{i}: {entity}(query: "{q}", first: 500) {{ totalCount appliedQuery nodes {{ id }} }}'
                          for i, q in enumerate(query.replace('"', '\\"') for query in LANGUAGE_BATTERY[entity]))
    data = pair.both(f"{{ {selections} }}")
    counts = [data[f"q{i}"]["totalCount"] for i in range(len(LANGUAGE_BATTERY[entity]))]
    assert sum(counts) > 0 and any(0 < n < len(SESSION_IDS) for n in counts), counts  # not all empty or trivial


ANALYTICS_BATTERY = [
    {"source": "SESSIONS", "measures": [{"alias": "n", "fn": "COUNT"}, {"alias": "users", "fn": "UNIQUE_USERS"},
                                        {"alias": "p75", "fn": "P75", "field": "durationMs"},
                                        {"alias": "errors", "fn": "RATE", "where": "hasErrors = true"}],
     "groupBy": [{"field": "browser"}], "interval": "DAY", "timeZone": "America/New_York", "limit": 3, "other": True},
    {"source": "WEB_VITALS", "measures": [{"alias": "p75", "fn": "P75", "field": "value"},
                                          {"alias": "n", "fn": "COUNT"}],
     "groupBy": [{"field": "pathPattern"}], "query": "name = LCP", "limit": 20},
    {"source": "CUSTOM_EVENTS", "measures": [{"alias": "revenue", "fn": "SUM", "field": "properties.total"},
                                             {"alias": "perUser", "fn": "PER_USER"},
                                             {"alias": "p90", "fn": "PERCENTILE", "field": "properties.total",
                                              "percentile": 90}],
     "groupBy": [{"field": "user.trait.plan", "alias": "plan"}, {"field": "session.deviceType", "alias": "device"}],
     "query": 'name = "Checkout Completed"', "comparePrevious": True},
    {"source": "NETWORK_REQUESTS", "measures": [{"alias": "n", "fn": "COUNT"},
                                                {"alias": "median", "fn": "MEDIAN", "field": "durationMs"},
                                                {"alias": "failed", "fn": "RATE", "where": "status >= 500"}],
     "groupBy": [{"field": "host"}], "interval": "HOUR", "timeZone": "Asia/Kolkata", "limit": 2},
    {"source": "PAGES", "measures": [{"alias": "perSession", "fn": "PER_SESSION"}], "groupBy": [{"field": "path"}],
     "sessionFilter": {"deviceType": {"eq": "mobile"}}, "limit": 10, "other": True},
]


def test_analytics_answer_identically(pair: Pair) -> None:
    declared = ", ".join(f"$i{n}: AggregateInput!" for n in range(len(ANALYTICS_BATTERY)))
    selections = " ".join(f"a{n}: aggregate(input: $i{n}) {{ columns {{ name }} rows totals otherRows truncated "
                          f"groupCount previous {{ rows totals }} }}" for n in range(len(ANALYTICS_BATTERY)))
    week = {"from": iso(END_MS - 7 * DAY_MS), "to": iso(END_MS)}
    variables = {f"i{n}": {"timeRange": week, **given} for n, given in enumerate(ANALYTICS_BATTERY)}
    data = pair.both(f"query({declared}) {{ {selections} }}", variables)
    sessions = data["a0"]
    # the top groups' buckets and the other group's buckets add up to all sessions in the week
    assert sum(row[2] for row in sessions["rows"]) + sum(row[2] for row in sessions["otherRows"]) == \
        sessions["totals"][2] > 0
    assert all(data[f"a{n}"]["rows"] for n in range(len(ANALYTICS_BATTERY)))
    vitals = pair.both("{ webVitals(groupBy: DEVICE_TYPE) { truncated vitals { name group count p75 good "
                       "needsImprovement poor } } }")
    assert vitals["webVitals"]["vitals"]


def test_funnels_retention_and_paths_answer_identically(pair: Pair) -> None:
    week = {"from": iso(END_MS - 7 * DAY_MS), "to": iso(END_MS)}
    steps = ['visited', 'custom(\\"Product Viewed\\")', 'custom(\\"Added To Cart\\")', 'custom(\\"Checkout Started\\")']
    step_list = ", ".join(f'"{s}"' for s in steps)
    time_range = f'{{from: "{week["from"]}", to: "{week["to"]}"}}'
    data = pair.both(f"""{{
      bySession: funnel(input: {{steps: [{step_list}], timeRange: {time_range}, windowMs: 1800000,
                                 breakdown: "deviceType", interval: DAY, timeZone: "Europe/Berlin"}}) {{
        steps {{ count conversionFromFirst conversionFromPrevious droppedOff medianTimeToConvertMs
                 p90TimeToConvertMs droppedSessions(first: 20) {{ totalCount nodes {{ id }} }} }}
        breakdown {{ truncated groupCount groups {{ value steps {{ count }} }} }}
        series {{ time entered completed conversion }} }}
      byUser: funnel(input: {{steps: [{step_list}], countBy: USER, order: STRICT, timeRange: {time_range}}}) {{
        steps {{ count droppedOff medianTimeToConvertMs droppedUsers(first: 20) {{ totalCount nodes {{ id }} }} }} }}
      retention(input: {{timeRange: {time_range}, interval: DAY, periods: 7, timeZone: "America/New_York",
                         breakdownBy: "trait.plan"}}) {{
        cohorts {{ start size counts rates completePeriods }} overall {{ size sizes counts rates }}
        groups {{ value overall {{ counts }} }} }}
      paths(input: {{start: "visited(path = \\"/\\")", steps: 4, limit: 30, timeRange: {time_range}}}) {{
        steps {{ step sessions dropOff }} edges {{ step from to count }} truncated edgeCount }}
      toCheckout: paths(input: {{end: "custom(\\"Checkout Started\\")", nodes: EVENTS, steps: 3,
                                 timeRange: {time_range}}}) {{ edges {{ step from to count }} }}
    }}""")
    funnel = data["bySession"]["steps"]
    assert funnel[0]["count"] > funnel[-1]["count"] > 0
    assert data["byUser"]["steps"][0]["count"] > 0
    assert data["retention"]["cohorts"] and data["paths"]["edges"] and data["toCheckout"]["edges"]


# -- lists read only the columns of the fields they select ----------------------------------------------------

SUBFIELDS = {"viewport": "{ width height }", "webVitals": "{ lcp fcp cls inp ttfb fid }",
             "user": "{ id identified name firstSeen lastSeen sessionCount }"}


def _selection(field: str) -> str:
    return f"{field} {SUBFIELDS.get(field, '')}"


def _whole(pair: Pair, ids: list[str]) -> list[dict[str, Any]]:
    """These sessions with every field selected: every column a field is made from is read."""
    every = " ".join(_selection(f) for f in sorted(SESSION_FIELD_COLUMNS))
    found = pair.both("{ " + " ".join(f's{n}: session(id: "{sid}") {{ {every} }}' for n, sid in enumerate(ids))
                      + " }")
    return [found[f"s{n}"] for n in range(len(ids))]


def test_a_field_selected_alone_answers_what_it_does_with_every_other_field(pair: Pair) -> None:
    """Lists and `session(id)` read only the columns of the fields a request selects (SESSION_FIELD_COLUMNS).
    Each field alone, in a list, in a user's sessions and in `session(id)`, must answer what it answers when
    every field is selected; a column missing from a field's entry would show a placeholder."""
    for field in sorted(SESSION_FIELD_COLUMNS):
        listed = pair.both(f"{{ sessions(first: 30, orderBy: {{field: EVENT_COUNT, direction: DESC}}) "
                           f"{{ nodes {{ id {_selection(field)} }} }} }}")["sessions"]["nodes"]
        users = pair.both(f"{{ users(first: 5) {{ nodes {{ sessions(first: 3) {{ edges {{ node {{ id "
                          f"{_selection(field)} }} }} }} }} }} }}")["users"]["nodes"]
        nested = [edge["node"] for user in users for edge in user["sessions"]["edges"]]
        assert nested, field
        for found in (listed, nested):
            ids = [node["id"] for node in found]
            alone = pair.both("{ " + " ".join(f's{n}: session(id: "{sid}") {{ {_selection(field)} }}'
                                              for n, sid in enumerate(ids)) + " }")
            whole = [{field: row[field]} for row in _whole(pair, ids)]
            assert [{field: node[field]} for node in found] == [alone[f"s{n}"] for n in range(len(ids))] == whole, \
                field


def test_fields_selected_through_fragments_are_read_too(pair: Pair) -> None:
    fragments = pair.both("""{ sessions(first: 10) { nodes { id ...Where ... on Session { pageCount } } } }
        fragment Where on Session { country browser }""")["sessions"]["nodes"]
    whole = pair.both("{ sessions(first: 10) { nodes { id country browser pageCount } } }")["sessions"]["nodes"]
    assert fragments == whole and any(node["browser"] for node in whole) and all(n["pageCount"] for n in whole)
