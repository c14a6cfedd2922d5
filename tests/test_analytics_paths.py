"""`paths` on both stores, over six hand-built sessions whose page sequences are known by construction. Pages are
a second apart; ids collapse (`/product/1` → `/product/:id`, a UUID too), then consecutive equal nodes collapse
(a reload, or one product after another, is one step).

  session  browser  page paths (custom events in brackets)                      nodes (PAGES)
  p1       Chrome   / /product/1 /product/2 [AddToCart] /cart /checkout          / /product/:id /cart /checkout
  p2       Chrome   / / /product/3 [AddToCart] [AddToCart] /cart                 / /product/:id /cart
  p3       Safari   /pricing / /product/<uuid> /                                 /pricing / /product/:id /
  p4       Safari   / /cart /checkout                                            / /cart /checkout
  p5       Firefox  /blog /pricing                                               /blog /pricing
  p6       Firefox  /checkout /cart /checkout /checkout                          /checkout /cart /checkout
"""

from __future__ import annotations

from typing import Any

import pytest

from conftest import CONTEXT, T0, Server, close_services, load, make_batch, start_server
from replayql.config import AnalyticsLimits
from shop import iso

SAFARI = {**CONTEXT, "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
                                  "(KHTML, like Gecko) Version/17.1 Safari/605.1.15"}
FIREFOX = {**CONTEXT, "userAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:121.0) Gecko/20100101 Firefox/121.0"}
UUID = "3f2b8c1e-7d4a-4b6e-9c2f-1a5d8e7b6c40"


def _session(sid: str, at: int, steps: list[str], context: dict[str, Any]) -> dict[str, Any]:
    """Pages (paths) and custom events (`[Name]`), a second apart, starting `at` ms after T0."""
    events: list[dict[str, Any]] = []
    for i, step in enumerate(steps):
        ts = T0 + at + i * 1000
        if step.startswith("["):
            events.append({"type": "custom", "ts": ts, "name": step.strip("[]")})
        else:
            events.append({"type": "page", "ts": ts, "url": f"https://shop.example{step}?ref={i}"})
    return make_batch(sid, events, context=context)


BATCHES = [
    _session("p1", 0, ["/", "/product/1", "/product/2", "[AddToCart]", "/cart", "/checkout"], CONTEXT),
    _session("p2", 10_000, ["/", "/", "/product/3", "[AddToCart]", "[AddToCart]", "/cart"], CONTEXT),
    _session("p3", 20_000, ["/pricing", "/", f"/product/{UUID}", "/"], SAFARI),
    _session("p4", 30_000, ["/", "/cart", "/checkout"], SAFARI),
    _session("p5", 40_000, ["/blog", "/pricing"], FIREFOX),
    _session("p6", 50_000, ["/checkout", "/cart", "/checkout", "/checkout"], FIREFOX),
]
QUERY = """query($i: PathsInput!) { paths(input: $i) {
  direction truncated edgeCount appliedQuery steps { step sessions dropOff } edges { step from to count } } }"""
P = "/product/:id"


@pytest.fixture
def shop(server: Server) -> Server:
    load(server, BATCHES)
    return server


def _paths(server: Server, **given: Any) -> dict[str, Any]:
    return server.data(QUERY, {"i": given})["paths"]


def _edges(result: dict[str, Any]) -> list[tuple[int, str, str, int]]:
    return [(e["step"], e["from"], e["to"], e["count"]) for e in result["edges"]]


def _steps(result: dict[str, Any]) -> list[tuple[int, int]]:
    return [(s["sessions"], s["dropOff"]) for s in result["steps"]]


def test_paths_from_a_start_collapse_ids_and_repeats(shop: Server) -> None:
    result = _paths(shop, start='visited(path = "/")', steps=3)
    # p1-p4 have a "/" (p3 from its second page); p5 and p6 none. p2's reload and p1's two products are one step.
    assert _edges(result) == [(1, "/", P, 3), (2, P, "/cart", 2), (1, "/", "/cart", 1), (2, "/cart", "/checkout", 1),
                              (2, P, "/", 1), (3, "/cart", "/checkout", 1)]
    assert _steps(result) == [(4, 0), (4, 0), (4, 3), (1, 1)]
    assert result["steps"][0]["step"] == 0 and result["steps"][-1]["step"] == 3
    assert (result["direction"], result["truncated"], result["edgeCount"]) == ("FROM_START", False, 6)


def test_paths_to_an_end_count_backwards(shop: Server) -> None:
    result = _paths(shop, end='visited(path = "/checkout")', steps=3)
    # Each session's last /checkout: p1, p4 and p6 (whose final reload collapses). Edges run forward in time.
    assert _edges(result) == [(1, "/cart", "/checkout", 3), (2, "/", "/cart", 1), (2, "/checkout", "/cart", 1),
                              (2, P, "/cart", 1), (3, "/", P, 1)]
    assert _steps(result) == [(3, 0), (3, 0), (3, 2), (1, 1)]  # p4 and p6 begin two steps before the end
    assert result["direction"] == "TO_END"


def test_without_start_or_end_paths_begin_at_each_sessions_first_page(shop: Server) -> None:
    result = _paths(shop, steps=2)
    assert _edges(result) == [(1, "/", P, 2), (2, "/cart", "/checkout", 2), (2, P, "/cart", 2), (1, "/", "/cart", 1),
                              (1, "/blog", "/pricing", 1), (1, "/checkout", "/cart", 1), (1, "/pricing", "/", 1),
                              (2, "/", P, 1)]
    # Step 2 keeps 5 sessions (p5 stopped at step 1); p1 and p3 go on past step 2.
    assert _steps(result) == [(6, 0), (6, 1), (5, 3)]


def test_a_limit_keeps_the_top_edges_and_says_so(shop: Server) -> None:
    result = _paths(shop, start='visited(path = "/")', steps=3, limit=2)
    assert _edges(result) == [(1, "/", P, 3), (2, P, "/cart", 2)]
    assert (result["truncated"], result["edgeCount"]) == (True, 6)
    assert _steps(result) == [(4, 0), (4, 0), (4, 3), (1, 1)]  # the steps are whole whatever the limit


def test_events_mode_names_pages_and_custom_events(shop: Server) -> None:
    result = _paths(shop, nodes="EVENTS", start='custom("AddToCart")', steps=2)
    # p2's two AddToCart in a row are one step.
    assert _edges(result) == [(1, "custom:AddToCart", "page:/cart", 2), (2, "page:/cart", "page:/checkout", 1)]
    assert _steps(result) == [(2, 0), (2, 1), (1, 1)]
    pages = _paths(shop, nodes="EVENTS", end='visited(path ^= "/product/")', steps=1)
    assert _edges(pages) == [(1, "page:/", f"page:{P}", 3)]  # p1's last product page is /product/2


def test_filters_choose_the_sessions(shop: Server) -> None:
    safari = _paths(shop, start='visited(path = "/")', steps=2, query="browser = Safari")
    assert _edges(safari) == [(1, "/", "/cart", 1), (1, "/", P, 1), (2, "/cart", "/checkout", 1), (2, P, "/", 1)]
    assert safari["appliedQuery"] == "browser = Safari"
    typed = _paths(shop, start='visited(path = "/")', steps=2, sessionFilter={"browser": {"eq": "Safari"}})
    assert typed["edges"] == safari["edges"]
    late = _paths(shop, steps=1, timeRange={"from": iso(35_000)})  # p5 and p6 started after T0 + 35 s
    assert _edges(late) == [(1, "/blog", "/pricing", 1), (1, "/checkout", "/cart", 1)]


@pytest.mark.parametrize(("given", "code", "message"), [
    ({"steps": 0}, "BAD_USER_INPUT", "`steps` must be between 1 and 10"),
    ({"steps": 11}, "BAD_USER_INPUT", "`steps` must be between 1 and 10"),
    ({"limit": 0}, "BAD_USER_INPUT", "`limit` must be between 1 and 1000"),
    ({"start": 'visited(path = "/")', "end": 'visited(path = "/cart")'}, "BAD_USER_INPUT", "not both"),
    ({"start": 'custom("AddToCart")'}, "BAD_QUERY", "takes visited(...) here, not custom(...)"),
    ({"end": "browser = Chrome"}, "BAD_QUERY", "`end` is an event condition"),
    ({"start": 'visited(path = "/"'}, "BAD_QUERY", "line 1"),
    ({"nodes": "EVENTS", "start": "error(type = TypeError)"}, "BAD_QUERY", "not error(...)"),
])
def test_mistakes_answer_400(shop: Server, given: dict[str, Any], code: str, message: str) -> None:
    response = shop.gql(QUERY, {"i": given})
    assert response.status_code == 400, response.json()
    error = response.json()["errors"][0]
    assert error["extensions"]["code"] == code and message in error["message"], error


def test_past_the_time_limit_the_answer_is_query_timeout(where: Any) -> None:
    server = start_server(where("slow"), analytics=AnalyticsLimits(timeout_s=1e-9))
    load(server, BATCHES)
    try:
        response = server.gql(QUERY, {"i": {"steps": 2}})
    finally:
        close_services(server.services)
    body = response.json()
    assert body["data"] is None and body["errors"][0]["extensions"]["code"] == "QUERY_TIMEOUT", body
