"""The `query` argument of `sessions`: the filter language's string compiled to SQL on both stores, checked
against hand-built sessions whose answers are known, and its mistakes answered 400 BAD_QUERY with a position."""

from __future__ import annotations

from typing import Any

import pytest

from conftest import CONTEXT, T0, Server, make_batch

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}


def _page(ts: int, path: str) -> dict[str, Any]:
    return {"type": "page", "ts": ts, "url": f"https://shop.example{path}"}


def _network(ts: int, status: int) -> dict[str, Any]:
    return {"type": "network", "ts": ts, "method": "POST", "url": "https://api.shop.example/api/orders",
            "status": status, "durationMs": 120}


@pytest.fixture
def shop(server: Server) -> Server:
    """a: Chrome, checkout, a 502 on /api/orders, 60 s. b: Safari, checkout, a 200, 5 s, an error.
    c: Chrome, home only, 1 s, identified."""
    batches = [
        make_batch("a", [_page(T0, "/"), _page(T0 + 1_000, "/checkout"), _network(T0 + 2_000, 502),
                         {"type": "click", "ts": T0 + 60_000, "selector": "button#buy"}]),
        make_batch("b", [_page(T0, "/checkout"), _network(T0 + 1_000, 200),
                         {"type": "error", "ts": T0 + 5_000, "errorType": "TypeError", "message": "x is undefined"}],
                   context=SAFARI),
        make_batch("c", [_page(T0, "/"), {"type": "identify", "ts": T0 + 1_000, "userId": "u-1"}]),
    ]
    for batch in batches:
        assert server.ingest(batch).status_code == 200
    return server


def _ids(server: Server, query: str, **extra: Any) -> list[str]:
    data = server.data("query($q: String) { sessions(query: $q, orderBy: {field: STARTED_AT, direction: ASC}) "
                       "{ appliedQuery nodes { id } } }", {"q": query})
    return sorted(n["id"] for n in data["sessions"]["nodes"])


@pytest.mark.parametrize(("query", "expected"), [
    ("browser = Chrome", ["a", "c"]),
    ("browser != Chrome", ["b"]),
    ("browser IN (Safari, Firefox)", ["b"]),
    ("durationMs >= 5s", ["a", "b"]),
    ("durationMs BETWEEN 2s AND 10s", ["b"]),
    ("durationMs > 1m", []),
    ('initialUrl ~ "/CHECKOUT"', ["b"]),
    ("hasErrors = true", ["b"]),
    ("identified = true", ["c"]),
    ("userId EXISTS", ["c"]),
    ('visited(path = "/checkout")', ["a", "b"]),
    ('network(url ~ "/api/orders", status >= 500)', ["a"]),
    ("error(type = TypeError)", ["b"]),
    ('clicked(selector = "button#buy")', ["a"]),
    ('visited(path = "/checkout") AND NOT error', ["a"]),
    ("browser = Safari OR identified = true", ["b", "c"]),
    ("NOT (browser = Chrome AND durationMs < 2s)", ["a", "b"]),
])
def test_query_strings_select_the_sessions_they_describe(shop: Server, query: str, expected: list[str]) -> None:
    assert _ids(shop, query) == expected


def test_query_and_typed_filter_combine_with_and_and_the_query_is_normalised(shop: Server) -> None:
    data = shop.data('{ sessions(query: "visited(path = \\"/checkout\\")  and browser=Chrome", '
                     'filter: {durationMs: {gte: 1000}}) { appliedQuery nodes { id } } }')
    assert data["sessions"] == {"appliedQuery": "durationMs >= 1000 AND visited(path = /checkout) AND browser = Chrome",
                                "nodes": [{"id": "a"}]}
    assert _ids(shop, data["sessions"]["appliedQuery"]) == ["a"]  # the normalised string runs as the same query


@pytest.mark.parametrize(("query", "message", "position"), [
    ("browsr = Chrome", "unknown field `browsr`", 0),
    ("durationMs ~ long", "`~` compares text, and `durationMs` is a number", 0),
    ("browser > 3", "`>` compares numbers and times, and `browser` is text", 0),
    ("hasErrors = 3", "`hasErrors` is true or false: write `hasErrors = true`", 0),
    ("network(colour = red)", "`network` has no field `colour`", 8),
    ("durationMs >= fast", "`durationMs` is a number; fast is not", 0),
    ("browser = ", "expected a value", 10),
])
def test_mistakes_are_bad_query_with_a_position(shop: Server, query: str, message: str, position: int) -> None:
    response = shop.gql("query($q: String) { sessions(query: $q) { nodes { id } } }", {"q": query})
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_QUERY"
    assert error["extensions"]["position"] == position
    assert message in error["message"]
