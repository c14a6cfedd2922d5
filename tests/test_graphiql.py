"""GraphiQL at GET /graphql: the page and its bundle as served, and in a real headless Chromium: served by the
server itself (no CDN), running a query with a key typed into the headers editor, and keeping no trace of the
key in the browser's storage.

Every request to a host other than the server's loopback address is aborted and recorded: the page must make
none. Chromium is Debian's (`/usr/bin/chromium`), driven by Python playwright; no browser is downloaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, sync_playwright

from conftest import Server
from crash_scenario import Server as LiveServer
from live_server import CHROMIUM, live_server

QUERY = "{ viewer { appId scopes } }"
DEFAULT_HEADERS = '{"Authorization": "token <your key>"}'
HEADERS_EDITOR = ".graphiql-editor-tool .graphiql-editor:not(.hidden)"


@pytest.fixture
def replayql(tmp_path: Path) -> Iterator[tuple[LiveServer, str]]:
    with live_server(tmp_path / "data", "shop", "read") as running:
        yield running


def _type_into(page: Page, editor: str, text: str) -> None:
    """Replace an editor's text as a user pasting it would (insert_text skips the editor's bracket closing)."""
    page.locator(f"{editor} .CodeMirror").click()
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)


def _headers_text(page: Page) -> str:
    return page.evaluate(f"() => document.querySelector('{HEADERS_EDITOR} .CodeMirror').CodeMirror.getValue()")


def _storage(page: Page) -> str:
    return page.evaluate("() => JSON.stringify([{...localStorage}, {...sessionStorage}])")


def test_graphiql_runs_offline_and_keeps_no_key(replayql: tuple[LiveServer, str]) -> None:
    server, key = replayql
    server_host = urlsplit(server.base_url).hostname
    outside: list[str] = []

    def only_loopback(route: Route) -> None:
        if urlsplit(route.request.url).hostname == server_host:
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        context = browser.new_context()
        page = context.new_page()
        page.route("**/*", only_loopback)
        console: list[str] = []
        page.on("console", lambda message: console.append(_console_line(message)))
        page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
        page.goto(f"{server.base_url}/graphql")
        page.wait_for_selector(".graphiql-query-editor .CodeMirror")
        assert _headers_text(page) == DEFAULT_HEADERS

        _type_into(page, ".graphiql-query-editor", QUERY)
        _type_into(page, HEADERS_EDITOR, f'{{"Authorization": "token {key}"}}')
        page.click(".graphiql-execute-button")
        page.wait_for_selector('.result-window:has-text("READ")')
        result = page.locator(".result-window").inner_text()
        stored_after_query = _storage(page)
        cookies = context.cookies()

        page.reload()  # a new page load starts from the placeholder again: the key was kept nowhere
        page.wait_for_selector(".graphiql-query-editor .CodeMirror")
        headers_after_reload = _headers_text(page)
        stored_after_reload = _storage(page)
        browser.close()

    assert outside == []
    assert '"appId": "shop"' in result and '"scopes": [' in result
    # GraphiQL's tabs, query, history and headers live in the page's memory only
    assert stored_after_query == stored_after_reload == "[{},{}]"
    assert cookies == []
    assert headers_after_reload == DEFAULT_HEADERS
    # the only console errors are the schema introspection sent with the placeholder key, answered 401
    assert console and all("status of 401" in line for line in console), console


def _console_line(message: ConsoleMessage) -> str:
    return f"{message.type}: {message.text}"


def test_browsers_get_the_graphiql_page_that_loads_only_the_servers_bundle(server: Server) -> None:
    response = server.client.get("/graphql", headers={"accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert '<script src="graphiql/graphiql.js"></script>' in page
    assert '<link rel="stylesheet" href="graphiql/graphiql.css">' in page
    assert page.count("<script") == 1 and "http" not in page  # no inline script, nothing from elsewhere
    policy = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"


@pytest.mark.parametrize(("url", "content_type", "inside"), [
    ("/graphiql/graphiql.js", "text/javascript; charset=utf-8", b"createRoot"),
    ("/graphiql/graphiql.css", "text/css; charset=utf-8", b".graphiql-container"),
])
def test_the_graphiql_bundle_is_served_with_caching_headers(server: Server, url: str, content_type: str,
                                                            inside: bytes) -> None:
    response = server.client.get(url)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert inside in response.content and b"unpkg.com" not in response.content
    again = server.client.get(url, headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
