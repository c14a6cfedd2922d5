"""The filter language's meaning on both stores, against the hand-built shop in tests/shop.py whose answers are
known by construction: every condition kind and operator, negation, user traits and event properties, count
conditions, sequences with and without windows, and the same vocabulary on users, issues and events."""

from __future__ import annotations

import pytest

from conftest import Server, load
from shop import BATCHES, iso


@pytest.fixture
def shop(server: Server) -> Server:
    load(server, BATCHES)
    return server


def _run(server: Server, field: str, query: str, key: str = "id") -> list[str]:
    data = server.data(f"query($q: String) {{ {field}(query: $q, first: 500) {{ totalCount nodes {{ {key} }} }} }}",
                       {"q": query})[field]
    found = sorted(str(n[key]) for n in data["nodes"])
    assert data["totalCount"] == len(found), query
    return found


def _check(server: Server, field: str, cases: list[tuple[str, list[str]]], key: str = "id") -> None:
    """Run every case; report all the wrong answers at once."""
    wrong = {}
    for query, expected in cases:
        got = _run(server, field, query, key)
        if got != sorted(expected):
            wrong[query] = (got, sorted(expected))
    assert not wrong, wrong


ALL = ["s1", "s2", "s3", "s4", "s5"]

ATTRIBUTES = [
    ("browser = Chrome", ["s1", "s3", "s5"]),
    ("browser != Chrome", ["s2", "s4"]),
    ("browser IN (Safari, Firefox)", ["s2", "s4"]),
    ("browser NOT IN (Chrome)", ["s2", "s4"]),
    ("browser IN ()", []),
    ("os ^= mac", ["s1", "s2", "s3", "s5"]),
    ("os ^= Mac", []),  # starts-with is case-sensitive: the stored name is macOS
    ("browser $= fox", ["s4"]),
    ("browser $= FOX", []),
    ("initialUrl ~ CHECKOUT", ["s2"]),
    ("initialUrl !~ checkout", ["s1", "s3", "s4", "s5"]),
    (r'initialUrl MATCHES "^https://shop\\.example/(pricing|checkout)"', ["s2", "s5"]),
    ('initialUrl MATCHES "(?i)/PRICING"', ["s5"]),
    ("initialUrl NOT MATCHES pricing", ["s1", "s2", "s3", "s4"]),
    ("initialUrl EXISTS", ["s1", "s2", "s3", "s5"]),
    ("initialUrl NOT EXISTS", ["s4"]),
    ("initialPath = /pricing", ["s5"]),
    ("durationMs >= 20s", ["s1", "s2", "s3"]),
    ("durationMs < 8s", ["s5"]),
    ("durationMs = 8000", ["s4"]),
    ("durationMs != 8000", ["s1", "s2", "s3", "s5"]),
    ("durationMs BETWEEN 8s AND 20s", ["s1", "s4"]),
    ("durationMs > 0.5m", ["s2"]),
    (f"startedAt >= {iso(50000)}", ["s5"]),
    (f"startedAt < {iso(50000)}", ["s1", "s2", "s3", "s4"]),
    ("startedAt > -1d", []),  # the shop is in the past, so nothing started within the last day
    ("release = 1.5.0", ["s3"]),
    ("utmSource = news", ["s5"]),
    ("viewportWidth < 500", ["s4"]),
    ("sdk = replayql-browser AND sdkVersion = 0.1.0", ALL),
    ("hasErrors = true", ["s1", "s3", "s5"]),
    ("hasErrors != true", ["s2", "s4"]),
    ("identified = true", ["s1", "s2", "s5"]),
    ("identified = false", ["s3", "s4"]),
    ("userId = u1", ["s1", "s5"]),
    ("pageCount = 0", ["s4"]),
    ("clickCount >= 3", ["s1", "s2", "s3", "s4"]),
    ("errorCount = 1", ["s1", "s3", "s5"]),
    ("rageClickCount = 1", ["s1", "s2", "s3", "s4"]),
    ("lcp > 4s", ["s4"]),
]

USERS_OF_SESSIONS = [
    ("user.name = Ann", ["s1", "s5"]),
    ("user.name != Ann", ["s2", "s3", "s4"]),
    ('user.email ~ "@shop"', ["s1", "s5"]),
    ("user.trait.plan IN (pro, team)", ["s1", "s5"]),
    ("user.trait.plan = free", ["s2"]),
    ("user.trait.plan != pro", ["s2", "s3", "s4"]),
    ("user.trait.seats > 2", ["s1", "s5"]),
    ("user.trait.seats = 1", ["s2"]),
    ("user.trait.seats BETWEEN 1 AND 5", ["s1", "s2", "s5"]),
    ("user.trait.beta = true", ["s1", "s5"]),
    ("user.trait.beta = false", []),
    ("user.trait.plan EXISTS", ["s1", "s2", "s5"]),
    ("user.trait.plan NOT EXISTS", ["s3", "s4"]),
    ("user.trait.plan IN ()", []),
    ("user.trait.plan NOT IN ()", ALL),
]

HAPPENED = [
    ('visited(path = "/checkout")', ["s1", "s2"]),
    ("visited(url ~ pricing)", ["s5"]),
    ("visited(host = shop.example)", ["s1", "s2", "s3", "s5"]),
    ("visited", ["s1", "s2", "s3", "s5"]),
    ('network(url ~ "/api/orders", status >= 500)', ["s1", "s3", "s4"]),
    ("network(method = POST, status = 200)", ["s2"]),
    ("network(durationMs > 1s)", ["s3"]),
    ("network(status IN (500, 503))", ["s3", "s4"]),
    ("error(type = TypeError)", ["s1", "s5"]),
    ("error(message ~ chunk)", ["s3"]),
    ("error(handled = true)", ["s3"]),
    ("error(handled = false)", ["s1", "s5"]),
    ('clicked(selector = "button#buy")', ["s1", "s3"]),
    ("console(level = error)", ["s3"]),
    ("console(message ~ SLOW)", ["s2"]),
    ('custom("Checkout")', ["s1", "s2"]),
    ('custom("Checkout", properties.total > 100)', ["s1"]),
    ('custom("Checkout", properties.total = 80)', ["s2"]),
    ('custom("Checkout", properties.coupon = SPRING)', ["s1"]),
    ('custom(name = "Add To Cart", properties.sku = A1)', ["s4"]),
    ('custom("Add To Cart", properties.price >= 9.5)', ["s4"]),
    ("custom(properties.coupon NOT EXISTS)", ["s2", "s4", "s5"]),
    ("custom(properties.sku IN ())", []),  # an empty list folds away, with the key bound for it
    ("custom(properties.sku NOT IN ())", ["s1", "s2", "s4", "s5"]),
    ("vital(name = LCP, value > 4s)", ["s4"]),
    ("vital(name = LCP, value < 2000)", ["s1"]),
    ("rageClick", ["s1", "s2", "s3", "s4"]),
    ('rageClick(selector = "#menu")', ["s4"]),
    ("errorClick", []),
    ("NOT error", ["s2", "s4"]),
    ("NOT rageClick", ["s5"]),
    ('NOT custom("Add To Cart")', ["s1", "s2", "s3"]),
]

COUNTS = [
    ('count(custom("Add To Cart")) >= 2', ["s4"]),
    ('count(custom("Add To Cart")) = 1', ["s5"]),
    ('count(custom("Add To Cart")) = 0', ["s1", "s2", "s3"]),
    ('count(custom("Add To Cart")) < 2', ["s1", "s2", "s3", "s5"]),
    ('count(custom("Add To Cart", properties.sku = A1)) = 2', ["s4"]),
    ("count(network(status >= 500)) >= 1", ["s1", "s3", "s4"]),
    ("count(network) BETWEEN 0 AND 0", ["s5"]),
    ("count(visited) BETWEEN 1 AND 2", ["s1", "s2", "s3", "s5"]),
    ("count(clicked) > 2", ["s1", "s2", "s3", "s4"]),
    ("NOT count(error) >= 1", ["s2", "s4"]),
]

SEQUENCES = [
    ("network(status >= 500) THEN rageClick", ["s1", "s3"]),
    ("network(status >= 500) THEN rageClick WITHIN 10s", ["s1"]),
    ("network(status >= 500) THEN rageClick WITHIN 20s", ["s1", "s3"]),
    ("network(status >= 500) THEN rageClick WITHIN 19200ms", ["s1", "s3"]),
    ("network(status >= 500) THEN rageClick WITHIN 19199ms", ["s1"]),
    ("rageClick THEN network(status >= 500)", ["s4"]),
    ('custom("Add To Cart") THEN custom("Add To Cart")', ["s4"]),
    ('custom("Add To Cart") THEN custom("Add To Cart") THEN custom("Add To Cart")', ["s4"]),
    ('custom("Add To Cart") THEN custom("Add To Cart") THEN custom("Add To Cart") THEN custom("Add To Cart")', []),
    ('custom("Add To Cart") THEN custom("Add To Cart") WITHIN 1s', ["s4"]),
    ('custom("Add To Cart") THEN custom("Add To Cart") WITHIN 999ms', []),
    ('custom("Add To Cart", properties.sku = B2) THEN custom("Add To Cart", properties.sku = A1)', ["s4"]),
    ("visited THEN network(status >= 500) THEN rageClick WITHIN 5s", ["s1"]),
    ('visited(path = "/") THEN visited(path = "/checkout")', ["s1"]),
    ('visited(path = "/checkout") THEN visited(path = "/")', []),
    ("visited THEN visited", ["s1"]),
    ('visited THEN custom("Add To Cart") THEN error(type = TypeError)', ["s5"]),
    ("NOT (network(status >= 500) THEN rageClick WITHIN 10s)", ["s2", "s3", "s4", "s5"]),
    ("network(status >= 500) THEN rageClick WITHIN 10s OR custom(properties.sku = C3)", ["s1", "s5"]),
    # two sequences in one filter: each subquery's names are its own
    ("network(status >= 500) THEN rageClick WITHIN 10s OR rageClick THEN network(status >= 500)", ["s1", "s4"]),
    ("visited THEN visited AND network(status >= 500) THEN rageClick", ["s1"]),
]

COMBINED = [
    ('browser = Chrome AND (error(type = TypeError) OR rageClick(selector = "#menu"))', ["s1", "s5"]),
    ("browser = Safari OR user.trait.plan = pro", ["s1", "s2", "s5"]),
    ("browser = Firefox OR browser = Safari AND identified = true", ["s2", "s4"]),
    ("(browser = Firefox OR browser = Safari) AND identified = true", ["s2"]),
    ("NOT NOT hasErrors = true", ["s1", "s3", "s5"]),
    # NOT of a condition on a missing value is true: anonymous sessions have no userId and no user
    ("NOT userId = u1", ["s2", "s3", "s4"]),
    ("NOT initialUrl ~ checkout", ["s1", "s3", "s4", "s5"]),
    ("NOT user.trait.plan = pro", ["s2", "s3", "s4"]),
    ("NOT (user.trait.seats > 2 OR lcp > 4s)", ["s2", "s3"]),
    ("session(browser = Safari)", ["s2"]),  # on sessions, session(...) is the condition itself
    ('browser = Chrome AND user.trait.plan IN (pro, team) AND network(url ~ "/api/orders", status >= 500) '
     "THEN rageClick WITHIN 10s AND NOT error(type = ChunkLoadError)", ["s1"]),
]


@pytest.mark.parametrize("cases", [ATTRIBUTES, USERS_OF_SESSIONS, HAPPENED, COUNTS, SEQUENCES, COMBINED],
                         ids=["attributes", "users", "happened", "counts", "sequences", "combined"])
def test_session_conditions(shop: Server, cases: list[tuple[str, list[str]]]) -> None:
    _check(shop, "sessions", cases)


def test_user_conditions(shop: Server) -> None:
    _check(shop, "users", [
        ("trait.plan = pro", ["u1"]),
        ("trait.plan != pro", ["u2"]),
        ("trait.seats >= 1", ["u1", "u2"]),
        ("name = Ann", ["u1"]),
        ("email NOT EXISTS", ["u2"]),
        ("sessionCount >= 2", ["u1"]),
        (f"lastSeen > {iso(50000)}", ["u1"]),
        (f"firstSeen <= {iso(0)}", ["u1", "u2"]),
        ("error(type = TypeError)", ["u1"]),
        ("NOT error", ["u2"]),
        ("rageClick", ["u1", "u2"]),
        ('custom("Checkout", properties.total < 100)', ["u2"]),
        ('count(custom("Add To Cart")) >= 1', ["u1"]),
        ("session(browser = Safari)", ["u2"]),
        ("session(browser = Chrome AND error(type = TypeError))", ["u1"]),
        ("session(durationMs < 5s)", ["u1"]),
        ("network(status >= 500) THEN rageClick WITHIN 10s", ["u1"]),
    ])


def test_issue_conditions(shop: Server) -> None:
    _check(shop, "issues", [
        ("errorType = TypeError", ["TypeError"]),
        ("message ~ CHUNK", ["ChunkLoadError"]),
        ("status = OPEN", ["ChunkLoadError", "TypeError"]),
        ("count >= 2", ["TypeError"]),
        ("sessionCount = 1", ["ChunkLoadError"]),
        ("sessionCount = 2", ["TypeError"]),
        ("release = 1.5.0", ["ChunkLoadError"]),
        (f"firstSeen >= {iso(21000)}", ["ChunkLoadError"]),
        (f"lastSeen >= {iso(50000)}", ["TypeError"]),
        ("session(browser = Chrome)", ["ChunkLoadError", "TypeError"]),
        ("session(identified = true)", ["TypeError"]),
        ("NOT session(identified = true)", ["ChunkLoadError"]),
        ('rageClick(selector = "button#buy")', ["ChunkLoadError", "TypeError"]),
        ("session(user.trait.plan = pro)", ["TypeError"]),
    ], key="errorType")


def test_event_conditions(shop: Server) -> None:
    def count(query: str) -> int:
        return int(shop.data("query($q: String) { events(query: $q) { totalCount } }", {"q": query})
                   ["events"]["totalCount"])
    cases = {
        "kind = custom AND properties.sku = A1": 2,
        "kind = custom AND properties.price > 9.5": 1,
        "kind = custom AND properties.price >= 9.5": 3,
        "kind = network AND status >= 500 AND session(browser = Chrome)": 2,
        "kind = rage_click AND session(user.trait.plan = pro)": 1,
        "kind = error AND handled = true": 1,
        'kind = network AND rageClick(selector = "#menu")': 1,
        f"timestamp >= {iso(100000)}": 4,
        "kind = page AND path MATCHES \"^/(checkout|pricing)$\"": 3,
    }
    assert {q: count(q) for q in cases} == cases


def test_issue_ids_are_conditions(shop: Server) -> None:
    issues = shop.data('{ issues { nodes { id errorType } } }')["issues"]["nodes"]
    chunk = next(i["id"] for i in issues if i["errorType"] == "ChunkLoadError")
    _check(shop, "sessions", [(f'error(issue = "{chunk}")', ["s3"]), (f'NOT error(issue = "{chunk}")',
                                                                      ["s1", "s2", "s4", "s5"])])
    _check(shop, "issues", [(f'id = "{chunk}"', ["ChunkLoadError"])], key="errorType")
