"""The web UI's live mode (issue 15) in a real headless Chromium against a real `replayql serve`: with the sessions
list's Live toggle on, a batch ingested over HTTP brings its session in at the top and updates it in place; on a
session page in live mode, a new batch's page and click come onto the timeline and its rrweb events into the
player. What the page shows is compared with what the API answers for the same session, asked by the test.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Page

from crash_scenario import Server
from live_server import Tab, live_server, open_signed_in

APP = "demo"
CONTEXT = {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 "
                        "Safari/537.36", "viewport": {"width": 800, "height": 600}, "language": "en-US"}
TIMELINE = "{ session(id: $id) { pageCount clickCount events(first: 100) { nodes { __typename } } } }"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, str]]:
    with live_server(tmp_path_factory.mktemp("ui-live") / "data", APP, "read") as running:
        yield running


def ingest(server: Server, session_id: str, seq: int, events: list[dict[str, Any]]) -> None:
    now = int(time.time() * 1000)
    body: dict[str, Any] = {"appId": APP, "sessionId": session_id, "seq": seq, "sentAt": now, "events": events}
    if seq == 0:
        body["context"] = CONTEXT
    response = httpx.post(f"{server.base_url}/v1/ingest", json=body, trust_env=False)
    assert response.status_code == 200 and response.json()["outcome"] == "stored", response.text


def page_view(path: str, at: int | None = None) -> dict[str, Any]:
    return {"type": "page", "ts": at or int(time.time() * 1000), "url": f"https://shop.example{path}", "title": path}


def recording(*rrweb: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "recording", "ts": event["timestamp"], "data": event} for event in rrweb]


def first_document(at: int) -> list[dict[str, Any]]:
    """rrweb's Meta and FullSnapshot of a page with an empty body."""
    body = {"type": 2, "tagName": "body", "attributes": {}, "childNodes": [], "id": 4}
    html = {"type": 2, "tagName": "html", "attributes": {},
            "childNodes": [{"type": 2, "tagName": "head", "attributes": {}, "childNodes": [], "id": 3}, body], "id": 2}
    return recording({"type": 4, "timestamp": at, "data": {"href": "https://shop.example/", "width": 800,
                                                            "height": 600}},
                     {"type": 2, "timestamp": at + 1, "data": {"node": {"type": 0, "childNodes": [html], "id": 1},
                                                               "initialOffset": {"left": 0, "top": 0}}})


def mouse_moves(at: int, count: int) -> list[dict[str, Any]]:
    return recording(*({"type": 3, "timestamp": at + i, "data": {"source": 1, "positions": [
        {"x": 10 + i, "y": 10, "id": 4, "timeOffset": 0}]}} for i in range(count)))


def api(server: Server, key: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    response = httpx.post(f"{server.base_url}/graphql", json={"query": query, "variables": variables},
                          headers={"authorization": f"token {key}"}, trust_env=False)
    body: dict[str, Any] = response.json()
    assert "errors" not in body, body
    return body["data"]


def go_live(page: Page) -> None:
    page.wait_for_selector("[data-live-state=live]")


def cell_texts(page: Page, session_id: str) -> list[str]:
    return page.evaluate("id => [...document.querySelector(`tr[data-session-id=\"${id}\"]`).cells]"
                         ".map(c => c.textContent)", session_id)


def test_the_live_list_brings_a_new_session_in_at_the_top_and_updates_it_in_place(
        tab: Tab, served: tuple[Server, str], tmp_path: Path) -> None:
    server, key = served
    ingest(server, "older", 0, [page_view("/")])
    page = open_signed_in(tab, f"{server.base_url}/sessions?live=1", key)
    page.wait_for_selector("tr[data-session-id=older]")
    go_live(page)
    assert page.is_checked(".live-toggle input")

    ingest(server, "newcomer", 0, [page_view("/"), page_view("/cart")])
    page.wait_for_selector("tr[data-session-id=newcomer]")
    assert page.evaluate("() => document.querySelector('tbody tr').dataset.sessionId") == "newcomer"
    shown_pages = lambda: int(cell_texts(page, "newcomer")[3])  # noqa: E731
    expected = api(server, key, f"query($id: ID!) {TIMELINE}", {"id": "newcomer"})["session"]["pageCount"]
    assert shown_pages() == expected == 2

    ingest(server, "newcomer", 1, [page_view("/checkout")])
    page.wait_for_function("() => document.querySelector('tr[data-session-id=newcomer]').cells[3].textContent === '3'")
    assert page.locator("tr[data-session-id=newcomer]").count() == 1  # in place, not a second row
    page.screenshot(path=tmp_path / "sessions-live.png")

    page.uncheck(".live-toggle input")  # off: out of the URL, the socket closed
    page.wait_for_function("() => !location.search.includes('live')")
    assert page.locator("[data-live-state]").count() == 0


def test_a_live_session_page_adds_each_new_batch_to_the_timeline_and_the_player(
        tab: Tab, served: tuple[Server, str], tmp_path: Path) -> None:
    server, key = served
    start = int(time.time() * 1000)
    ingest(server, "watched", 0, [page_view("/"), *first_document(start), *mouse_moves(start + 10, 3)])
    page = open_signed_in(tab, f"{server.base_url}/sessions/watched", key)
    page.wait_for_selector(".rr-player iframe")
    page.wait_for_selector(".replay[data-recording-events='5']")
    page.wait_for_selector(".timeline .entry")  # the timeline's events come in a request of their own
    assert page.locator(".timeline .entry").count() == 1
    page.click(".live-button")
    go_live(page)
    assert "live=1" in page.url

    # the mouse moves come just before the click: moves more than the dead-click window after it would judge it
    # dead, and that would depend on how long the page took to load
    clicked_at = int(time.time() * 1000)
    ingest(server, "watched", 1, [page_view("/product/42", clicked_at - 200), *mouse_moves(clicked_at - 100, 4),
                                  {"type": "click", "ts": clicked_at, "selector": "button#buy", "text": "Buy"}])
    page.wait_for_selector(".replay[data-recording-events='9']")
    page.wait_for_selector(".timeline .kind-click")
    shown = page.evaluate("() => [...document.querySelectorAll('.timeline .entry')].map(e => [e.className, "
                          "e.querySelector('span').textContent])")
    answer = api(server, key, f"query($id: ID!) {TIMELINE}", {"id": "watched"})["session"]
    assert [kind for kind, _ in shown] == ["entry kind-page", "entry kind-page", "entry kind-click"]
    assert len(shown) == len(answer["events"]["nodes"]) and (answer["pageCount"], answer["clickCount"]) == (2, 1)
    assert shown[1][1] == "/product/42" and shown[2][1] == "button#buy · Buy"
    page.screenshot(path=tmp_path / "session-live.png")
