"""A real `replayql serve` on a loopback port with one app and one key, and Debian's chromium: for the tests
that drive the server from outside the test process (a browser, node).

Also what those tests share: the demo shop (tests/browser_shop/) that a browser browses with the real SDK, the
batches that browser sent, and a tab of the web UI that fails its test on a console error or uncaught exception.
"""

from __future__ import annotations

import gzip
import re
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
from playwright.sync_api import Browser, Page, Request, sync_playwright

from crash_scenario import Server, cli, free_port

CHROMIUM = "/usr/bin/chromium"  # Debian's; playwright drives it and downloads no browser
SHOP_FILES = Path(__file__).parent / "browser_shop"


@contextmanager
def chromium() -> Iterator[Browser]:
    """Debian's chromium, launched by playwright (which downloads no browser of its own)."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


@contextmanager
def live_server(data_dir: Path, app: str, scope: str) -> Iterator[tuple[Server, str]]:
    """The server on the DuckDB store in `data_dir`, and the secret of a new `scope` key of `app`."""
    data_dir.mkdir()
    cli("duckdb", data_dir, "apps", "create", app)
    key = cli("duckdb", data_dir, "keys", "create", "--app", app, "--scope", scope)
    server = Server("duckdb", data_dir, free_port())
    server.start()
    try:
        yield server, key
    finally:
        server.interrupt()


# -- the demo shop and what the SDK sent from it ----------------------------------------------------------------


class Shop:
    """The demo shop on http://localhost:PORT (the server is on 127.0.0.1: another origin). Every path serves the
    SPA's page; /api/recommendations answers 500."""

    def __init__(self, replayql_url: str, closed_url: str) -> None:
        self.port = free_port()
        self.origin = f"http://localhost:{self.port}"
        substitute = {"__REPLAYQL__": replayql_url, "__CLOSED__": closed_url}
        files = {name: _filled(SHOP_FILES / name, substitute) for name in ("index.html", "shop.js")}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.startswith("/api/"):
                    self._send(500, b'{"error": "recommendations are down"}', "application/json")
                elif self.path == "/shop.js":
                    self._send(200, files["shop.js"], "text/javascript")
                else:
                    self._send(200, files["index.html"], "text/html; charset=utf-8")

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def _filled(path: Path, substitute: dict[str, str]) -> bytes:
    text = path.read_text()
    for placeholder, value in substitute.items():
        text = text.replace(placeholder, value)
    return text.encode()


class SentBatches:
    """Every batch the page posted to /v1/ingest, as the browser sent it (gzip or not), by seq."""

    def __init__(self, ingest_url: str) -> None:
        self.ingest_url = ingest_url
        self.raw: list[bytes] = []
        self.by_seq: dict[int, dict[str, Any]] = {}

    def capture(self, request: Request) -> None:
        if request.url != self.ingest_url or request.method != "POST":
            return
        body = request.post_data_buffer or b""
        text = gzip.decompress(body) if body[:2] == b"\x1f\x8b" else body
        self.raw.append(text)
        batch = orjson.loads(text)
        self.by_seq.setdefault(batch["seq"], batch)  # a resend carries the same batch

    def recording(self) -> list[Any]:
        return [e["data"] for seq in sorted(self.by_seq) for e in self.by_seq[seq]["events"]
                if e["type"] == "recording"]


def poll(fetch: Callable[[], dict[str, Any]], ready: Callable[[dict[str, Any]], bool], timeout_s: float = 20.0
         ) -> dict[str, Any]:
    """What `fetch` answers once it is `ready`, or its last answer after `timeout_s` (for the caller to assert)."""
    deadline = time.monotonic() + timeout_s
    while True:
        data = fetch()
        if ready(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.25)


# -- the web UI in a browser ------------------------------------------------------------------------------------


@dataclass
class Tab:
    page: Page
    problems: list[str] = field(default_factory=list)  # console errors and uncaught exceptions

    def unexpected_problems(self) -> list[str]:
        """Problems other than the API refusing a request the test made on purpose (a wrong key, a bad query)."""
        return [p for p in self.problems if not re.search(r"status of 40[01]", p)]


@contextmanager
def watched_tab(browser: Browser, width: int = 1280) -> Iterator[Tab]:
    """A page `width` pixels wide in a new browser context that hears its console errors and uncaught exceptions;
    any that the test did not cause on purpose fail it when the `with` ends."""
    context = browser.new_context(viewport={"width": width, "height": 800})
    page = context.new_page()
    opened = Tab(page)
    page.on("console", lambda message: message.type == "error" and opened.problems.append(message.text))
    page.on("pageerror", lambda error: opened.problems.append(f"pageerror: {error}"))
    try:
        yield opened
    finally:
        context.close()
    assert opened.unexpected_problems() == []


def open_signed_in(tab: Tab, url: str, key: str) -> Page:
    """The UI at `url` (its sign-in form first), signed in with `key`."""
    page = tab.page
    page.goto(url)
    page.fill("#api-key", key)
    page.click("button[type=submit]")
    page.wait_for_selector("header.top")
    return page


def iso_ms(timestamp: str) -> int:
    """An API time (ISO 8601) in epoch ms, as the recording's timestamps are."""
    return int(datetime.fromisoformat(timestamp).timestamp() * 1000)


def clock(ms: int) -> str:
    """rrweb-player's mm:ss."""
    seconds = ms // 1000
    return f"{seconds // 60:02d}:{seconds % 60:02d}"
