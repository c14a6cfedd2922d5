"""The web UI replays a session that the real browser SDK recorded: no generated data anywhere.

A headless Chromium browses the demo shop (tests/browser_shop/) with the SDK bundle the server serves: the home
page, an SPA route to /products, a secret typed into the search box (masked by the SDK), a click on "Buy now",
and a full reload. The SDK sends that to a real `replayql serve` (DuckDB store). Then, in a new browser context,
the UI at /sessions/<id> must
 - replay the shop's DOM in the player's iframe (its title and heading), never showing the typed secret there or
   on the page, and showing the SDK's mask in the search box once the player is past the typing;
 - list on its timeline the pages visited and the clicks made, in the order the user made them;
 - seek the player to the last page (the reload) when its entry is clicked: the entry's offset is as far into the
   session as the reload was, and the click shows the reloaded document (its full snapshot, some ms later), whose
   search box is empty again;
and the sessions list must show the session's row with its three pages. The address the SDK hands out for the
replay (`getSessionURL`) must open the same session.

Expectations come from what the scripted user did. Screenshots go to the test's temporary directory; a console
error or uncaught exception in the UI's tab fails the test. Chromium is Debian's, driven by playwright.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page

from crash_scenario import Server, cli, free_port
from live_server import (
    SentBatches,
    Shop,
    chromium,
    clock,
    iso_ms,
    live_server,
    open_signed_in,
    poll,
    watched_tab,
)

SECRET = "4111 1111 1111 1111"  # typed into the shop's search box
INPUT_MASK = "*" * 8  # what the SDK records for any typed value (sdk/src/capture/recording.ts)
FULL_SNAPSHOT = 2  # rrweb's event type for a whole document
DWELL_MS = 1_500  # how long the user stays before the reload: the last page is this far into the session
# The pages and clicks of the timeline, in order: (kind, what the entry says)
VISITED = [("page", "/"), ("click", "#nav-products · Products"), ("page", "/products"),
           ("click", "#buy · Buy now"), ("page", "/products")]
STORED = """query($id: ID!) { session(id: $id) { pageCount
  pages { nodes { timestamp } } recording(first: 500) { totalCount nodes } } }"""


@dataclass
class Recorded:
    """A session the SDK recorded, as the scripted user made it."""

    session_id: str
    sdk_url: str  # the replay's address from the SDK's getSessionURL
    recording_events: int  # rrweb events the SDK sent
    # epoch ms (this machine's clock, the browser's too): before the first page was asked for and once it had
    # loaded, before the reload and once the reloaded page had loaded
    started_ms: int
    loaded_ms: int
    reload_ms: int
    reloaded_ms: int

    def last_page_offsets(self) -> range:
        """Where the last page can be on the replay's clock: the recording started while the first page loaded,
        and the last page began while the reload went on."""
        return range(self.reload_ms - self.loaded_ms, self.reloaded_ms - self.started_ms + 1)


@dataclass
class Served:
    server: Server
    key: str

    @property
    def url(self) -> str:
        return self.server.base_url

    def data(self, query: str, **variables: Any) -> dict[str, Any]:
        body = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables},
                          headers={"authorization": f"token {self.key}"}, trust_env=False).json()
        assert "errors" not in body, body
        return body["data"]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    # the UI's key: write scope reads too (scopes are ordered read < write < admin)
    with live_server(tmp_path / "data", "shop", "write") as (server, key):
        yield Served(server, key)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with chromium() as launched:
        yield launched


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def record(browser: Browser, served: Served) -> Recorded:
    """The scripted user browses the shop in a browser context of its own, which closes (pagehide: the SDK
    sends whatever is left) before the UI is opened."""
    shop = Shop(served.url, f"http://127.0.0.1:{free_port()}")
    cli("duckdb", Path(served.server.log_path).parent, "apps", "origins", "shop", "--allow", shop.origin)
    sent = SentBatches(f"{served.url}/v1/ingest")
    context = browser.new_context()
    try:
        page = context.new_page()
        page.on("request", sent.capture)
        started = now_ms()
        page.goto(shop.origin + "/")
        loaded = now_ms()
        page.click("#nav-products")  # an SPA route (history.pushState)
        page.locator("#search").press_sequentially(SECRET)
        page.click("#buy")
        page.wait_for_timeout(DWELL_MS)  # the user reads the page: time passes in the session
        reload = now_ms()
        page.reload()  # a full load in the same tab: the same session goes on
        reloaded = now_ms()
        page.evaluate("() => replayql.flush()")  # resolves once every batch is answered
        sdk_url = page.evaluate("() => new Promise(resolve => replayql.getSessionURL(resolve))")
        page.close()  # pagehide: the SDK sends whatever is left
    finally:
        context.close()
        shop.close()
    assert all(SECRET.encode() not in body for body in sent.raw)
    return Recorded(sdk_url.rsplit("/", 1)[1], sdk_url, len(sent.recording()), started, loaded, reload, reloaded)


def timeline(page: Page) -> list[dict[str, Any]]:
    """The timeline's entries: kind, what each says, its offset, and where a click on it seeks the player."""
    return page.evaluate("""() => [...document.querySelectorAll('.timeline .entry')].map(entry => ({
        kind: [...entry.classList].find(c => c.startsWith('kind-')).slice(5),
        detail: entry.querySelector('span').textContent,
        offset: Number(entry.querySelector('button').dataset.offset),
        seek: Number(entry.querySelector('button').dataset.seek)}))""")


def replayed(page: Page, script: str) -> Any:
    """`script` (a function of the replay's document) run in the page."""
    return page.evaluate(f"() => ({script})(document.querySelector('.rr-player iframe').contentDocument)")


def wait_for_replayed(page: Page, script: str, expected: Any) -> None:
    page.wait_for_function(f"e => JSON.stringify(({script})(document.querySelector('.rr-player iframe')"
                           f".contentDocument)) === e", arg=json.dumps(expected, separators=(",", ":")))


HEADING = "doc => doc.querySelector('#title')?.textContent"
SEARCH_BOX = "doc => doc.querySelector('#search')?.value"


def assert_no_secret(page: Page) -> None:
    """Neither the replay (its markup and every field's value) nor the UI's page holds what was typed."""
    shown = replayed(page, "doc => [doc.documentElement.outerHTML, ...[...doc.querySelectorAll('input')]"
                           ".map(i => i.value)].join('\\n')")
    assert "Welcome" in shown or "Products" in shown  # it is the replay's document
    assert SECRET not in shown
    assert SECRET not in page.content() and SECRET not in page.locator("body").inner_text()


def test_the_ui_replays_a_session_the_real_sdk_recorded(browser: Browser, served: Served,
                                                       tmp_path: Path) -> None:
    screenshots = tmp_path / "screenshots"
    screenshots.mkdir()
    recorded = record(browser, served)
    listed = poll(lambda: served.data("{ sessions(first: 1) { totalCount nodes { id } } }"),
                  lambda d: d["sessions"]["totalCount"] >= 1)["sessions"]
    assert listed == {"totalCount": 1, "nodes": [{"id": recorded.session_id}]}
    session_id = recorded.session_id
    stored = poll(lambda: served.data(STORED, id=session_id),
                  lambda d: d["session"]["recording"]["totalCount"] == recorded.recording_events
                  and d["session"]["pageCount"] == 3)["session"]
    assert stored["recording"]["totalCount"] == recorded.recording_events > 0 and stored["pageCount"] == 3

    with watched_tab(browser) as tab:
        page = open_signed_in(tab, f"{served.url}/sessions/{session_id}", served.key)
        page.wait_for_selector(".rr-player iframe")
        page.wait_for_selector(".timeline .entry")
        page.wait_for_selector(".replay .loading", state="detached")  # the whole recording is in the player
        # at 00:00 the replay is the first page as the shop rendered it
        wait_for_replayed(page, HEADING, "Welcome")
        assert replayed(page, "doc => [doc.title, doc.querySelector('#view').textContent]") == \
            ["Welcome - Demo Shop", "Fresh coffee, delivered."]
        assert page.locator(".rr-timeline__time").first.inner_text() == "00:00"
        assert_no_secret(page)
        page.screenshot(path=screenshots / "session.png")

        entries = timeline(page)
        assert [(e["kind"], e["detail"]) for e in entries if e["kind"] in ("page", "click")] == VISITED
        offsets = [e["offset"] for e in entries]
        assert offsets == sorted(offsets)

        # the last page: as far into the session as the reload; its entry seeks the player to the reloaded
        # document's full snapshot, which the SDK records some ms after the page event
        last = [e for e in entries if e["kind"] == "page"][-1]
        recording_start = stored["recording"]["nodes"][0]["timestamp"]
        last_page_at = iso_ms(stored["pages"]["nodes"][-1]["timestamp"])
        assert last["offset"] == last_page_at - recording_start
        assert last["offset"] in recorded.last_page_offsets() and last["offset"] >= DWELL_MS
        reloaded_snapshot = next(node["timestamp"] for node in stored["recording"]["nodes"]
                                 if node["type"] == FULL_SNAPSHOT and node["timestamp"] >= last_page_at)
        assert last["seek"] == reloaded_snapshot - recording_start >= last["offset"]
        page.locator(".timeline .kind-page button").last.click()
        page.wait_for_function("t => document.querySelector('.rr-timeline__time').textContent === t",
                               arg=clock(last["seek"]))
        assert page.url.endswith(f"?t={last['seek']}")
        # the reloaded document: its search box is empty again (the page before showed the mask in it)
        wait_for_replayed(page, SEARCH_BOX, "")
        assert_no_secret(page)
        page.screenshot(path=screenshots / "session-reloaded.png")

        # the click on "Buy now" came after the typing: there the search box shows the SDK's mask
        page.locator(".timeline .kind-click button:has-text('#buy')").click()
        wait_for_replayed(page, SEARCH_BOX, INPUT_MASK)
        assert_no_secret(page)
        page.screenshot(path=screenshots / "session-masked-input.png")

        page.click("header.top nav a:text-is('Sessions')")
        row = page.locator(f"table.sessions-table tr[data-session-id={json.dumps(session_id)}]")
        row.wait_for()
        assert page.locator("table.sessions-table tbody tr").count() == 1
        assert row.locator("td").nth(3).inner_text() == "3"  # the Pages column
        page.screenshot(path=screenshots / "sessions.png")

        # the SDK's address for this replay opens it
        page.goto(recorded.sdk_url)
        page.wait_for_url(f"{served.url}/sessions/{session_id}")
        page.wait_for_selector(".rr-player iframe")
