"""The browser SDK end to end: a real headless Chromium, a demo shop on another origin, a real `replayql serve`.

A scripted user browses the shop (an SPA route, a full reload, a masked input and a password, a rage click, a
dead click, a failing request and one to a closed port, an uncaught TypeError and an unhandled rejection,
identify and track). Every batch the SDK sends is captured from the browser's side, and then the GraphQL API
must answer exactly what happened, including every recording event in order and verbatim.

Chromium is Debian's (`/usr/bin/chromium`), driven by Python playwright; no browser is downloaded.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from crash_scenario import Server, cli, free_port
from live_server import CHROMIUM, SentBatches, Shop, live_server, poll

TYPED_SECRETS = ("secret-search-text", "hunter2-password")


@pytest.fixture
def replayql(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    with live_server(tmp_path / "data", "shop", "read") as running:
        yield running


def browse(page: Page, shop: Shop) -> None:
    """The scripted user."""
    page.goto(shop.origin + "/")
    page.click("#nav-products")  # an SPA route change (history.pushState)
    page.locator("#search").press_sequentially(TYPED_SECRETS[0])
    page.locator("#pw").press_sequentially(TYPED_SECRETS[1])
    for _ in range(4):  # a rage click: four clicks within a second on a button that does nothing
        page.click("#rage", delay=20)
    page.wait_for_timeout(1_200)
    page.click(".banner")  # a dead click: nothing changes and nothing loads
    page.wait_for_timeout(1_500)
    with page.expect_response(lambda r: r.url.endswith("/api/recommendations")):
        page.click("#load-fail")
    page.click("#load-closed")
    page.wait_for_selector("#status:has-text('offline')")
    page.click("#break")  # an uncaught TypeError right after a click: an error click
    page.click("#reject")  # an unhandled rejection
    page.click("#signin")
    page.click("#buy")
    page.wait_for_timeout(300)
    page.reload()  # a full reload in the same tab: the same session goes on
    page.wait_for_function("() => window.replayql !== undefined")
    page.wait_for_timeout(500)
    page.evaluate("() => replayql.flush()")


SESSION = """query($id: ID!) { session(id: $id) {
  id pageCount clickCount errorCount rageClickCount deadClickCount errorClickCount release sdkName hasRecording
  user { id traits }
  webVitals { fcp ttfb }
  pages { nodes { url path } }
  clicks(first: 100) { nodes { selector text } }
  frustrationSignals { nodes { kind ... on RageClickEvent { selector } ... on DeadClickEvent { selector }
                               ... on ErrorClickEvent { selector } } }
  networkRequests { nodes { ... on NetworkEvent { url method status durationMs } } }
  errors { nodes { ... on ErrorEvent { errorType message stack handled issue { id title sampleStack } } } }
  customEvents { nodes { ... on CustomEvent { name properties } } }
} }"""
RECORDING = """query($id: ID!, $after: String) { session(id: $id) {
  recording(first: 500, after: $after) { totalCount edges { cursor node } pageInfo { hasNextPage } } } }"""


def test_a_real_browser_session_is_answered_exactly(replayql: tuple[Server, str]) -> None:
    server, key = replayql
    closed = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    shop = Shop(server.base_url, closed)
    cli("duckdb", Path(server.log_path).parent, "apps", "origins", "shop", "--allow", shop.origin)
    sent = SentBatches(f"{server.base_url}/v1/ingest")
    http = httpx.Client(base_url=server.base_url, headers={"authorization": f"token {key}"}, timeout=10.0)

    def gql(query: str, **variables: Any) -> dict[str, Any]:
        body = http.post("/graphql", json={"query": query, "variables": variables}).json()
        assert "errors" not in body, body
        return body["data"]

    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            page = browser.new_page()
            page.on("request", sent.capture)
            page_errors: list[str] = []
            page.on("pageerror", lambda error: page_errors.append(str(error)))
            browse(page, shop)
            session_id = page.evaluate("() => new Promise(resolve => replayql.getSessionURL(resolve))"
                                       ).rsplit("/", 1)[1]
            page.close()  # pagehide: whatever is buffered goes out now
            browser.close()
        sessions = poll(lambda: gql("{ sessions { totalCount nodes { id } } }"),
                        lambda d: d["sessions"]["totalCount"] >= 1)
        assert sessions["sessions"] == {"totalCount": 1, "nodes": [{"id": session_id}]}
        expected_recording = sent.recording()
        stored = poll(lambda: gql(SESSION, id=session_id), lambda d: d["session"]["customEvents"]["nodes"] != [])
        recording = _recording(gql, session_id, len(expected_recording))
    finally:
        http.close()
        shop.close()

    assert sorted(page_errors) == ["Cannot read properties of null (reading 'id')", "payment declined"]
    session = stored["session"]
    _check_session(session, shop, closed)
    # every recording event the SDK sent, in order and verbatim; none holds what was typed
    assert len(expected_recording) > 20 and any(e["type"] == 2 for e in expected_recording)
    assert recording == expected_recording
    for body in sent.raw:
        assert not any(secret.encode() in body for secret in TYPED_SECRETS)


def _check_session(session: dict[str, Any], shop: Shop, closed: str) -> None:
    assert session["release"] == "2.0.0" and session["sdkName"] == "replayql-browser" and session["hasRecording"]
    assert [p["path"] for p in session["pages"]["nodes"]] == ["/", "/products", "/products"]
    assert session["user"] == {"id": "u-42", "traits": {"name": "Ada Lovelace", "plan": "pro"}}
    assert session["webVitals"]["fcp"] > 0 and session["webVitals"]["ttfb"] > 0
    selectors = [c["selector"] for c in session["clicks"]["nodes"]]
    assert selectors.count("#rage") == 4 and "#break" in selectors and "#nav-products" in selectors
    assert not any(secret in str(session) for secret in TYPED_SECRETS)
    signals = {(s["kind"], s["selector"]) for s in session["frustrationSignals"]["nodes"]}
    # a failed request or an error within a second of a click makes it an error click
    assert {("rage_click", "#rage"), ("dead_click", "body > main > div.banner"), ("error_click", "#load-fail"),
            ("error_click", "#load-closed"), ("error_click", "#break"), ("error_click", "#reject")} <= signals
    assert not any(selector == "#nav-products" for _, selector in signals)  # it navigated at once
    network = {n["url"]: n for n in session["networkRequests"]["nodes"]}
    failing = network[f"{shop.origin}/api/recommendations"]
    assert failing["status"] == 500 and failing["method"] == "GET" and failing["durationMs"] > 0
    refused = network[f"{closed}/reviews"]
    assert refused["status"] is None and refused["durationMs"] >= 0
    assert len(network) == 2  # the SDK's own requests are never recorded
    errors = {e["message"]: e for e in session["errors"]["nodes"]}
    type_error = errors["Cannot read properties of null (reading 'id')"]
    assert type_error["errorType"] == "TypeError" and not type_error["handled"]
    assert "placeOrder" in type_error["stack"] and "placeOrder" in type_error["issue"]["sampleStack"]
    rejection = errors["payment declined"]
    assert rejection["errorType"] == "Error" and not rejection["handled"]
    assert type_error["issue"]["id"] != rejection["issue"]["id"]
    assert session["customEvents"]["nodes"] == [{"name": "Checkout Completed",
                                                 "properties": {"revenue": 42.5, "items": 2}}]


def _recording(gql: Callable[..., dict[str, Any]], session_id: str, expected: int) -> list[Any]:
    """The session's whole recording, page by page, once all that was sent is stored."""
    def fetch_all() -> list[Any]:
        events, after = [], None
        while True:
            page = gql(RECORDING, id=session_id, after=after)["session"]["recording"]
            events += [edge["node"] for edge in page["edges"]]
            if not page["pageInfo"]["hasNextPage"]:
                return events
            after = page["edges"][-1]["cursor"]
    found: list[Any] = []
    deadline = time.monotonic() + 20
    while len(found) < expected and time.monotonic() < deadline:
        found = fetch_all()
        time.sleep(0.25)
    return found
