"""The filter language's meaning on both stores, against a hand-built shop whose answers are known by
construction: every condition kind and operator, negation, user traits and event properties, count conditions,
sequences with and without windows, and the same vocabulary on users, issues and events.

The five sessions (times in ms after T0):
  s1  Chrome, user u1 (Ann, plan pro, 5 seats, beta)  page / @0, page /checkout @1000, LCP 1800 @500,
      POST /api/orders 502 (300 ms) @2000, rage click button#buy @3200, Checkout {total 120, coupon SPRING} @4000,
      TypeError "x is undefined" @20000 (unhandled). 20 s.
  s2  Safari, user u2 (plan free, 1 seat)  page /checkout @0, POST /api/orders 200 (90 ms) @1000,
      Checkout {total 80} @2000, rage click a.help @30200, console warn "slow" @31000. 31 s.
  s3  Chrome, anonymous, release 1.5.0  page / @0, GET /api/orders 500 (1200 ms) @1000,
      rage click button#buy @20200, console error "boom" @21000, ChunkLoadError (handled) @25000. 25 s.
  s4  Firefox, anonymous, 390 px wide, no pages  LCP 4500 @100, rage click #menu @200,
      GET /api/orders 503 (50 ms) @5000, Add To Cart {A1 9.5} @6000, {B2 20} @7000, {A1 9.5} @8000. 8 s.
  s5  Chrome, user u1, starts @100000  page /pricing?utm_source=news @100000, Add To Cart {C3 5} @101000,
      TypeError "x is undefined" @102000. 2 s.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from conftest import CONTEXT, T0, Server, load, make_batch

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}
FIREFOX = {**CONTEXT, "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0",
           "viewport": {"width": 390, "height": 844}}
SHOP = "https://shop.example"
ORDERS = "https://api.shop.example/api/orders"


def _iso(offset_ms: int) -> str:
    return datetime.fromtimestamp((T0 + offset_ms) / 1000, UTC).isoformat().replace("+00:00", "Z")


def _page(at: int, path: str) -> dict[str, Any]:
    return {"type": "page", "ts": T0 + at, "url": SHOP + path}


def _network(at: int, method: str, status: int, duration: float) -> dict[str, Any]:
    return {"type": "network", "ts": T0 + at, "method": method, "url": ORDERS, "status": status,
            "durationMs": duration}


def _rage(at: int, selector: str) -> list[dict[str, Any]]:
    """Three clicks within the rage window: one rage click, at the third."""
    return [{"type": "click", "ts": T0 + at + d, "selector": selector} for d in (-200, -100, 0)]


def _custom(at: int, name: str, **properties: Any) -> dict[str, Any]:
    return {"type": "custom", "ts": T0 + at, "name": name, "properties": properties}


def _error(at: int, error_type: str, message: str, handled: bool = False) -> dict[str, Any]:
    return {"type": "error", "ts": T0 + at, "errorType": error_type, "message": message, "handled": handled,
            "stack": f"{error_type}: {message}\n    at app.js:1:1"}


def _identify(at: int, user: str, **traits: Any) -> dict[str, Any]:
    return {"type": "identify", "ts": T0 + at, "userId": user, "traits": traits}


BATCHES = [
    make_batch("s1", [
        _identify(0, "u1", name="Ann", email="ann@shop.example", plan="pro", seats=5, beta=True),
        _page(0, "/"), {"type": "vital", "ts": T0 + 500, "name": "LCP", "value": 1800}, _page(1000, "/checkout"),
        _network(2000, "POST", 502, 300), *_rage(3200, "button#buy"),
        _custom(4000, "Checkout", total=120, coupon="SPRING"), _error(20000, "TypeError", "x is undefined")]),
    make_batch("s2", [
        _identify(0, "u2", plan="free", seats=1), _page(0, "/checkout"), _network(1000, "POST", 200, 90),
        _custom(2000, "Checkout", total=80), *_rage(30200, "a.help"),
        {"type": "console", "ts": T0 + 31000, "level": "warn", "message": "slow"}], context=SAFARI),
    make_batch("s3", [
        _page(0, "/"), _network(1000, "GET", 500, 1200), *_rage(20200, "button#buy"),
        {"type": "console", "ts": T0 + 21000, "level": "error", "message": "boom"},
        _error(25000, "ChunkLoadError", "Loading chunk 7 failed", handled=True)],
        context={**CONTEXT, "release": "1.5.0"}),
    make_batch("s4", [
        {"type": "vital", "ts": T0 + 100, "name": "LCP", "value": 4500}, *_rage(200, "#menu"),
        _network(5000, "GET", 503, 50), _custom(6000, "Add To Cart", sku="A1", price=9.5),
        _custom(7000, "Add To Cart", sku="B2", price=20), _custom(8000, "Add To Cart", sku="A1", price=9.5)],
        context=FIREFOX),
    make_batch("s5", [
        _identify(100000, "u1"), _page(100000, "/pricing?utm_source=news"),
        _custom(101000, "Add To Cart", sku="C3", price=5), _error(102000, "TypeError", "x is undefined")]),
]


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
    (f"startedAt >= {_iso(50000)}", ["s5"]),
    (f"startedAt < {_iso(50000)}", ["s1", "s2", "s3", "s4"]),
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
]

COMBINED = [
    ('browser = Chrome AND (error(type = TypeError) OR rageClick(selector = "#menu"))', ["s1", "s5"]),
    ("browser = Safari OR user.trait.plan = pro", ["s1", "s2", "s5"]),
    ("browser = Firefox OR browser = Safari AND identified = true", ["s2", "s4"]),
    ("(browser = Firefox OR browser = Safari) AND identified = true", ["s2"]),
    ("NOT NOT hasErrors = true", ["s1", "s3", "s5"]),
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
        (f"lastSeen > {_iso(50000)}", ["u1"]),
        (f"firstSeen <= {_iso(0)}", ["u1", "u2"]),
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
        (f"firstSeen >= {_iso(21000)}", ["ChunkLoadError"]),
        (f"lastSeen >= {_iso(50000)}", ["TypeError"]),
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
        f"timestamp >= {_iso(100000)}": 4,
        "kind = page AND path MATCHES \"^/(checkout|pricing)$\"": 3,
    }
    assert {q: count(q) for q in cases} == cases


def test_issue_ids_are_conditions(shop: Server) -> None:
    issues = shop.data('{ issues { nodes { id errorType } } }')["issues"]["nodes"]
    chunk = next(i["id"] for i in issues if i["errorType"] == "ChunkLoadError")
    _check(shop, "sessions", [(f'error(issue = "{chunk}")', ["s3"]), (f'NOT error(issue = "{chunk}")',
                                                                      ["s1", "s2", "s4", "s5"])])
    _check(shop, "issues", [(f'id = "{chunk}"', ["ChunkLoadError"])], key="errorType")
