"""The generated demo recordings replay in rrweb: a session is played by rrweb's own `Replayer` (the rrweb the
SDK records with, from sdk/node_modules: run `npm ci` in sdk/) in Debian's headless Chromium, seeking to each
page view as a timeline click would, and rrweb must not complain about a single node."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Page, sync_playwright

from live_server import CHROMIUM
from replayql.generate import generate_batches

RRWEB = Path(__file__).parent.parent / "sdk" / "node_modules" / "rrweb" / "dist"
END_MS = 1_764_201_600_000  # 2025-11-27T00:00:00Z
SETTLE_MS = 1_000  # a page has appeared in the recording by then (its snapshot or route change comes sooner)
# rrweb's debug() lines go to console.log, its warn() lines to console.warn.
POINTER_SOURCES = (1, 2, 6)  # rrweb's IncrementalSource MouseMove, MouseInteraction, TouchMove
NOT_FOUND_DEBUG = re.compile(r"log: \[replayer\] Node with id '(\d+)' not found")

REPLAY = """events => {
  window.replayer = new rrweb.Replayer(events, {root: document.body, showWarning: true, showDebug: true,
                                                mouseTail: false});
  return window.replayer.getMetaData().totalTime;
}"""
SEEK = """offset => {
  window.replayer.pause(offset);
  const doc = window.replayer.iframe.contentDocument;
  const text = selector => [...doc.querySelectorAll(selector)].map(node => node.textContent.trim());
  return {title: doc.title, h1: text('main h1'), mains: text('main').length, cards: text('a.product-card'),
          price: text('.product-info .price'),
          logoColor: getComputedStyle(doc.querySelector('a.logo')).color};
}"""


def _session() -> list[dict[str, Any]]:
    """The recorded session with the most route changes among those that end on a product page."""
    sessions: dict[str, list[dict[str, Any]]] = {}
    for batch in generate_batches("demo", 120, seed=9, days=2, end_ms=END_MS):
        sessions.setdefault(batch["sessionId"], []).extend(batch["events"])

    def route_changes(events: list[dict[str, Any]]) -> int:
        return sum(1 for e in events if e["type"] == "recording" and e["data"]["data"].get("adds"))

    candidates = [events for events in sessions.values()
                  if [e for e in events if e["type"] == "page"][-1]["url"].startswith("https://shop.example/product/")]
    return max(candidates, key=route_changes)


def _pointer_target(recording: list[dict[str, Any]], until: int) -> int | None:
    """The node of the last click, mouse or touch move recorded up to `until` (epoch ms)."""
    target = None
    for event in recording:
        data = event["data"]
        if event["timestamp"] > until:
            break
        if data.get("source") in POINTER_SOURCES:
            target = data["positions"][-1]["id"] if "positions" in data else data["id"]
    return target


def _unexplained(messages: list[str], pointer_target: int | None) -> list[str]:
    """The console lines of one seek, but for rrweb's debug note that the pointer's last target is gone: after
    fast-forwarding, rrweb puts the pointer back on it, and a click that changed the route removed it (rrweb
    logs the same for real recordings). Any warning, or a missing node that is not that one, stays."""
    return [m for m in messages if not ((match := NOT_FOUND_DEBUG.match(m)) and int(match[1]) == pointer_target)]


@pytest.fixture(scope="module")
def replayer() -> Iterator[tuple[Page, list[str]]]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page()
        messages: list[str] = []

        def keep(message: ConsoleMessage) -> None:
            messages.append(f"{message.type}: {message.text}")

        page.on("console", keep)
        page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
        page.set_content("<!doctype html><html><head></head><body></body></html>")
        page.add_style_tag(path=RRWEB / "style.css")
        page.add_script_tag(path=RRWEB / "rrweb.umd.cjs")
        yield page, messages
        browser.close()


def test_a_generated_session_replays_page_by_page(replayer: tuple[Page, list[str]]) -> None:
    page, messages = replayer
    events = _session()
    recording = [e["data"] for e in events if e["type"] == "recording"]
    pages = [e for e in events if e["type"] == "page"]
    assert sum(1 for r in recording if r["data"].get("adds")) >= 2, "the session changes routes"
    total = page.evaluate(REPLAY, recording)
    start = recording[0]["timestamp"]
    assert total == recording[-1]["timestamp"] - start
    # Seek to each page view as a click on the timeline would: the replay shows that page.
    for view, following in zip(pages, [*pages[1:], None], strict=True):
        offset = view["ts"] + SETTLE_MS - start
        if following is not None:
            offset = min(offset, following["ts"] - 1 - start)
        seen = len(messages)
        shown = page.evaluate(SEEK, offset)
        assert _unexplained(messages[seen:], _pointer_target(recording, start + offset)) == []
        assert shown["title"] == view["title"]
        assert shown["mains"] == 1, "a route change replaces <main>"
        assert shown["logoColor"] == "rgb(37, 99, 235)", "the page's stylesheet applies"
    # At the end: the last product viewed, with its price, and product cards to go on with.
    viewed = [e["properties"] for e in events if e["type"] == "custom" and e["name"] == "Product Viewed"][-1]
    seen = len(messages)
    shown = page.evaluate(SEEK, total)
    assert _unexplained(messages[seen:], _pointer_target(recording, start + total)) == []
    assert shown["h1"] == [viewed["name"]]
    assert shown["price"] == [f"${viewed['price']:,.2f}"]
    assert shown["cards"] and viewed["name"] not in shown["cards"]
