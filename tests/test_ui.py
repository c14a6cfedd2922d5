"""The web UI at / in a real headless Chromium against a real `replayql serve` loaded with generated shop data:
sign-in, the sessions list and its filter box against the GraphQL API's answers for the same questions, the
replay of a session and its timeline, the issues and users pages (an issue's status changed through the page,
and refused for a read-only key), the GraphiQL link, and the headers the pages and files are served with.

What a page shows is compared with what the API answers for the same query, asked by the test itself. Screenshots
of every page go to the test's temporary directory. Chromium is Debian's, driven by playwright; nothing is
downloaded, and a page that breaks the Content-Security-Policy or throws fails the test through its console.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from playwright.sync_api import Browser, Page

from crash_scenario import Server, cli, free_port
from live_server import Tab, clock, iso_ms, open_signed_in, watched_tab

APP = "demo"
SESSION_FIELDS = "id pageCount errorCount"
TIMELINE_TYPES = {"PageEvent", "ClickEvent", "RageClickEvent", "DeadClickEvent", "ErrorClickEvent", "NetworkEvent",
                  "ConsoleEvent", "ErrorEvent"}


@dataclass
class Replayql:
    server: Server
    key: str
    read_key: str
    screenshots: Path

    @property
    def url(self) -> str:
        return self.server.base_url

    def answer(self, query: str, variables: dict[str, Any] | None = None, key: str | None = None) -> Any:
        response = httpx.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}},
                              headers={"authorization": f"token {key or self.key}"}, trust_env=False)
        return response.json()

    def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = self.answer(query, variables)
        assert "errors" not in body, body
        return body["data"]

    def refusal(self, query: str, key: str | None = None) -> str:
        """The message of the API's error for a query it refuses."""
        return self.answer(query, key=key)["errors"][0]["message"]

    def sessions(self, **arguments: Any) -> dict[str, Any]:
        """The first page the UI asks for (25 rows), for the same arguments."""
        answer = self.data(
            "query($query: String, $filter: SessionFilter, $orderBy: SessionOrder, $after: String) {"
            " sessions(first: 25, query: $query, filter: $filter, orderBy: $orderBy, after: $after) {"
            f" appliedQuery totalCount pageInfo {{ endCursor }} nodes {{ {SESSION_FIELDS} }} }} }}", arguments)
        return answer["sessions"]


@pytest.fixture(scope="module")
def replayql(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Replayql]:
    data_dir = tmp_path_factory.mktemp("ui-data")
    cli("duckdb", data_dir, "generate", "--sessions", "120", "--app", APP)
    key = cli("duckdb", data_dir, "keys", "create", "--app", APP, "--scope", "write")
    read_key = cli("duckdb", data_dir, "keys", "create", "--app", APP, "--scope", "read")
    server = Server("duckdb", data_dir, free_port())
    server.start()
    try:
        yield Replayql(server, key, read_key, tmp_path_factory.mktemp("ui-screenshots"))
    finally:
        server.interrupt()


def sign_in(tab: Tab, replayql: Replayql, path: str, key: str | None = None) -> Page:
    return open_signed_in(tab, replayql.url + path, key or replayql.key)


def shown_rows(page: Page) -> list[dict[str, Any]]:
    """The table's rows once loaded: id, pages and errors as the page shows them."""
    page.wait_for_selector("table.sessions-table tbody tr")
    return page.evaluate("""() => [...document.querySelectorAll('table.sessions-table tbody tr')].map(row => ({
        id: row.dataset.sessionId, pageCount: Number(row.cells[3].textContent),
        errorCount: Number(row.cells[4].textContent)}))""")


def wait_for_list(page: Page, applied: str | None) -> None:
    """The list has reloaded for `applied` (the query the API says it ran)."""
    if applied is None:
        page.wait_for_selector("p.applied:not(:has(code))")
    else:
        page.wait_for_selector(f"code.applied-query:text-is({json.dumps(applied)})")


def test_signing_in_lands_on_the_linked_view_and_shows_the_keys_scopes(tab: Tab, replayql: Replayql) -> None:
    page = tab.page
    linked = "/sessions?q=pageCount+%3E%3D+3"
    page.goto(replayql.url + linked)
    page.fill("#api-key", "rq_wrong_key")
    page.click("button[type=submit]")
    shown_refusal = page.locator(".problem").inner_text()
    page.screenshot(path=replayql.screenshots / "sign-in.png")

    sign_in(tab, replayql, linked)
    viewer = replayql.data("{ viewer { appId scopes } }")["viewer"]
    expected = replayql.sessions(query="pageCount >= 3")
    wait_for_list(page, expected["appliedQuery"])
    assert [row["id"] for row in shown_rows(page)] == [node["id"] for node in expected["nodes"]]
    assert page.url == replayql.url + linked
    assert page.locator(".viewer b").inner_text() == viewer["appId"]
    assert page.locator(".scopes").inner_text() == ", ".join(viewer["scopes"]).lower()
    assert page.evaluate("() => sessionStorage.getItem('replayql.key')") == replayql.key

    page.click("button.signout")
    page.wait_for_selector("#api-key")
    assert page.evaluate("() => sessionStorage.length") == 0
    assert shown_refusal == replayql.refusal("{ viewer { appId } }", key="rq_wrong_key")


def test_the_sessions_list_is_the_apis_first_page_and_pages_and_sorts_like_it(tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/")
    first = replayql.sessions()
    page.wait_for_url(f"{replayql.url}/sessions")
    assert shown_rows(page) == first["nodes"]
    assert page.locator("p.applied").inner_text() == f"{first['totalCount']} sessions"
    page.screenshot(path=replayql.screenshots / "sessions.png")

    page.click("text=Next page →")
    second = replayql.sessions(after=first["pageInfo"]["endCursor"])
    page.wait_for_url(re.compile(r"after="))
    assert shown_rows(page) == second["nodes"] and second["nodes"] != first["nodes"]

    page.click("th button:has-text('Errors')")  # sorting starts again at the first page
    by_errors = replayql.sessions(orderBy={"field": "ERROR_COUNT", "direction": "DESC"})
    page.wait_for_selector("th[aria-sort=descending]:has-text('Errors')")
    assert shown_rows(page) == by_errors["nodes"]
    assert "after=" not in page.url and "sort=ERROR_COUNT" in page.url


def test_the_filter_box_and_quick_filters_ask_the_api_and_show_what_it_applied(tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/sessions")
    box = page.locator(".filterbox input")
    box.fill("browser = Chrome AND pageCount >= 3")
    box.press("Escape")
    box.press("Enter")
    filtered = replayql.sessions(query="browser = Chrome AND pageCount >= 3")
    wait_for_list(page, filtered["appliedQuery"])
    assert shown_rows(page) == filtered["nodes"] and 0 < filtered["totalCount"] < replayql.sessions()["totalCount"]
    assert "q=browser" in page.url

    page.select_option(".quick label:has-text('Errors') select", "yes")
    with_errors = replayql.sessions(query="browser = Chrome AND pageCount >= 3", filter={"hasErrors": True})
    wait_for_list(page, with_errors["appliedQuery"])
    assert shown_rows(page) == with_errors["nodes"] and "errors=yes" in page.url
    page.screenshot(path=replayql.screenshots / "sessions-filtered.png")

    box.fill("browser =")
    box.press("Escape")
    box.press("Enter")
    refusal = replayql.refusal('{ sessions(query: "browser =") { totalCount } }')
    assert page.locator(".problem").inner_text() == refusal


FRUSTRATED = {"or": [{"rageClickCount": {"gt": 0}}, {"deadClickCount": {"gt": 0}}, {"errorClickCount": {"gt": 0}}]}


def wait_for_rows(page: Page, ids: list[str]) -> None:
    """The sessions table shows exactly these sessions, in this order."""
    page.wait_for_function("ids => [...document.querySelectorAll('table.sessions-table tbody tr')]"
                           ".map(r => r.dataset.sessionId).join() === ids.join()", arg=ids)


def test_the_frustration_filter_the_new_sorts_and_a_custom_range_ask_the_api_the_same(tab: Tab,
                                                                                      replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/sessions")
    page.select_option(".quick label:has-text('Frustration') select", "yes")
    frustrated = replayql.sessions(filter=FRUSTRATED)
    assert 0 < frustrated["totalCount"] < replayql.sessions()["totalCount"]
    wait_for_rows(page, [node["id"] for node in frustrated["nodes"]])
    assert page.locator("p.applied").inner_text() == \
        f"{frustrated['totalCount']} sessions matching {frustrated['appliedQuery']}"

    for column, order in (("Frustration", "FRUSTRATION"), ("Country", "COUNTRY"), ("Device", "DEVICE"),
                          ("User", "USER")):
        page.click(f"th button:has-text('{column}')")
        ordered = replayql.sessions(filter=FRUSTRATED, orderBy={"field": order, "direction": "DESC"})
        page.wait_for_selector(f"th[aria-sort=descending]:has-text('{column}')")
        wait_for_rows(page, [node["id"] for node in ordered["nodes"]])
        assert f"sort={order}" in page.url
    shown = page.evaluate("() => [...document.querySelectorAll('table.sessions-table tbody tr')]"
                          ".map(r => Number(r.cells[5].textContent))")
    assert max(shown) > 0  # the column shows the sum the order and the filter use

    page.select_option(".quick select.range", "custom")
    page.wait_for_url(re.compile(r"range=custom"))
    page.fill("input[aria-label=From]", "2020-01-01T00:00")  # the browser's wall time
    page.wait_for_url(re.compile(r"from=2020-01-01"))
    chosen = dict(re.findall(r"(from|to)=([^&]+)", page.url))
    span = {name: httpx.URL(f"?v={value}").params["v"] for name, value in chosen.items()}
    in_span = replayql.data(
        "query($filter: SessionFilter, $orderBy: SessionOrder, $timeRange: TimeRange) { sessions(first: 25,"
        " filter: $filter, orderBy: $orderBy, timeRange: $timeRange) { totalCount nodes { id } } }",
        {"filter": FRUSTRATED, "orderBy": {"field": "USER", "direction": "DESC"}, "timeRange": span})["sessions"]
    wait_for_rows(page, [node["id"] for node in in_span["nodes"]])
    assert in_span["totalCount"] == frustrated["totalCount"]  # every generated session is after 2020


def suggestions(page: Page) -> list[str]:
    page.wait_for_selector(".suggestions li")
    return page.locator(".suggestions li > span").all_inner_texts()


def wait_for_suggestions(page: Page, expected: list[str]) -> None:
    page.wait_for_function("labels => [...document.querySelectorAll('.suggestions li > span')]"
                           ".map(s => s.textContent).join('\\n') === labels", arg="\n".join(expected))


def offered(candidates: list[str], typed: str) -> list[str]:
    """What the box should offer for `typed`: candidates starting with it, then those containing it; ten."""
    starts = [c for c in candidates if c.lower().startswith(typed.lower())]
    return (starts + [c for c in candidates if typed.lower() in c.lower() and c not in starts])[:10]


def test_autocomplete_offers_the_apis_keys_and_values(tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/sessions")
    keys = [k["name"] for k in replayql.data("{ filterKeys(entity: SESSIONS) { name } }")["filterKeys"]]
    browsers = [v["value"] for v in replayql.data(
        '{ topValues(entity: SESSIONS, key: "browser", limit: 20) { values { value } } }')["topValues"]["values"]]
    box = page.locator(".filterbox input")
    box.click()
    box.press_sequentially("brow")
    wait_for_suggestions(page, offered(keys, "brow"))
    assert suggestions(page)[0] == "browser"

    box.press("Enter")  # takes the first: `browser `
    box.press_sequentially("= ")
    wait_for_suggestions(page, offered(browsers, ""))
    page.screenshot(path=replayql.screenshots / "autocomplete.png")
    assert len(suggestions(page)) > 1

    typed = browsers[1][:3]
    box.press_sequentially(typed)
    wait_for_suggestions(page, offered(browsers, typed))
    taken = offered(browsers, typed)[0]
    page.keyboard.press("Enter")
    quoted = taken if re.fullmatch(r"[\w.-]+", taken) else json.dumps(taken)
    assert box.input_value() == f"browser = {quoted} "


def recorded_session(replayql: Replayql) -> dict[str, Any]:
    """A session with a recording and several pages, its timeline events and its recording's first timestamp."""
    session = replayql.sessions(query="hasRecording = true AND pageCount >= 3")["nodes"][0]
    answer = replayql.data(
        "query($id: ID!) { session(id: $id) { events(first: 500) { nodes { __typename timestamp"
        " ... on PageEvent { title } } } recording(first: 1) { nodes } } }", {"id": session["id"]})["session"]
    return {"id": session["id"], "events": [e for e in answer["events"]["nodes"] if e["__typename"] in TIMELINE_TYPES],
            "start": answer["recording"]["nodes"][0]["timestamp"]}


def player_time(page: Page) -> str:
    return page.locator(".rr-timeline__time").first.inner_text()


def test_the_session_page_replays_the_recording_and_its_timeline_seeks_the_player(tab: Tab,
                                                                                  replayql: Replayql) -> None:
    session = recorded_session(replayql)
    page = sign_in(tab, replayql, f"/sessions/{session['id']}")
    page.wait_for_selector(".rr-player iframe")
    page.wait_for_selector(".timeline .entry")
    pages = [e for e in session["events"] if e["__typename"] == "PageEvent"]
    frame = page.frame_locator(".rr-player iframe")
    # the iframe holds the recorded DOM: the first page's document, rebuilt by rrweb
    frame.locator("body *").first.wait_for(state="attached")
    assert page.evaluate("() => document.querySelector('.rr-player iframe').contentDocument.title") == \
        pages[0]["title"]
    assert page.locator(".timeline .entry").count() == len(session["events"])
    page.screenshot(path=replayql.screenshots / "session.png")

    last_page = page.locator(".timeline .kind-page button").last
    offset = iso_ms(pages[-1]["timestamp"]) - session["start"]
    assert last_page.get_attribute("data-offset") == str(offset)
    last_page.click()
    page.wait_for_function("t => document.querySelector('.rr-timeline__time').textContent === t", arg=clock(offset))
    assert page.url.endswith(f"?t={offset}")

    page.reload()  # the URL holds the position: a shared link opens there
    page.wait_for_selector(".rr-player iframe")
    page.wait_for_function("t => document.querySelector('.rr-timeline__time')?.textContent === t", arg=clock(offset))

    page.locator(".timeline .kind-page button").first.click()
    page.wait_for_function("() => document.querySelector('.rr-timeline__time').textContent === '00:00'")
    page.click(".rr-controller__btns button")  # play: the clock moves
    page.wait_for_function("() => document.querySelector('.rr-timeline__time').textContent !== '00:00'")
    assert player_time(page) != "00:00"


ISSUE_FIELDS = "id title errorType status count sessionCount userCount firstSeen lastSeen"
ISSUE_SESSIONS = "sessions(first: 25) { nodes { id user { id identified name email } } }"


def table(page: Page, name: str) -> list[dict[str, Any]]:
    """A list's rows once loaded (`<name>s-table`): each row's id, its cells' texts and its first link's text."""
    page.wait_for_selector(f"table.{name}s-table tbody tr")
    return page.evaluate("""name => [...document.querySelectorAll(`table.${name}s-table tbody tr`)].map(row => ({
        id: row.dataset[`${name}Id`], cells: [...row.cells].map(c => c.textContent),
        link: row.querySelector('a')?.textContent}))""", name)


def shown_time(page: Page, iso: str) -> str:
    """An API time as the page formats it (the browser's locale)."""
    return page.evaluate("iso => new Intl.DateTimeFormat(undefined, {dateStyle: 'medium', timeStyle: 'short'})"
                         ".format(new Date(iso))", iso)


def issues(replayql: Replayql, status: str | None = None) -> dict[str, Any]:
    """The first page of issues the UI asks for, with `status` or any."""
    condition = {"status": {"eq": status}} if status else None
    return replayql.data(f"query($filter: IssueFilter) {{ issues(first: 25, filter: $filter) {{ totalCount"
                         f" nodes {{ {ISSUE_FIELDS} }} }} }}", {"filter": condition})["issues"]


def issue_row(page: Page, issue: dict[str, Any]) -> dict[str, Any]:
    """An issue as its row in the list shows it."""
    return {"id": issue["id"], "link": issue["title"],
            "cells": [issue["status"].lower(), f"{issue['title']} {issue['errorType']}", str(issue["count"]),
                      str(issue["sessionCount"]), str(issue["userCount"]), shown_time(page, issue["firstSeen"]),
                      shown_time(page, issue["lastSeen"]), ""]}


def set_status(replayql: Replayql, issue_id: str, status: str) -> None:
    replayql.data("mutation($id: ID!, $status: IssueStatus!) { updateIssue(id: $id, status: $status) { id } }",
                  {"id": issue_id, "status": status})


def issue_status(replayql: Replayql, issue_id: str) -> str:
    return replayql.data("query($id: ID!) { issue(id: $id) { status } }", {"id": issue_id})["issue"]["status"]


def wait_for_count(page: Page, text: str) -> None:
    page.wait_for_selector(f"p.applied:text-is({json.dumps(text)})")


def test_the_issues_list_is_the_apis_with_a_sparkline_each_and_filters_by_status_like_it(
        tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/issues")
    every = issues(replayql)
    wait_for_count(page, f"{every['totalCount']} issues")
    assert table(page, "issue") == [issue_row(page, issue) for issue in every["nodes"]]
    page.wait_for_function("n => document.querySelectorAll('svg.sparkline').length === n", arg=len(every["nodes"]))
    shown_trends = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('tr[data-issue-id]')]"
                                 ".map(r => [r.dataset.issueId, r.querySelector('svg').dataset.counts]))")
    ids = [issue["id"] for issue in every["nodes"]]
    totals = replayql.data(
        "query($input: AggregateInput!) { aggregate(input: $input) { rows } }",
        {"input": {"source": "ERRORS", "query": f"issueId IN ({', '.join(ids)})", "groupBy": [{"field": "issueId"}],
                   "measures": [{"alias": "n", "fn": "COUNT"}],
                   "timeRange": {"from": min(issue["firstSeen"] for issue in every["nodes"])}}})["aggregate"]["rows"]
    assert {i: sum(int(n) for n in counts.split(",")) for i, counts in shown_trends.items()} == dict(totals)
    page.screenshot(path=replayql.screenshots / "issues.png")

    ignored = ids[0]
    set_status(replayql, ignored, "IGNORED")
    try:
        page.select_option(".quick label:has-text('Status') select", "IGNORED")
        only_ignored = issues(replayql, "IGNORED")
        wait_for_count(page, f"{only_ignored['totalCount']} issues")
        assert [row["id"] for row in table(page, "issue")] == [i["id"] for i in only_ignored["nodes"]] == [ignored]
        assert "status=IGNORED" in page.url
        page.select_option(".quick label:has-text('Status') select", "OPEN")
        still_open = issues(replayql, "OPEN")
        wait_for_count(page, f"{still_open['totalCount']} issues")
        assert [row["id"] for row in table(page, "issue")] == [i["id"] for i in still_open["nodes"]]
        assert ignored not in [i["id"] for i in still_open["nodes"]] and still_open["nodes"]
    finally:
        set_status(replayql, ignored, "OPEN")


def widest_issue(replayql: Replayql) -> dict[str, Any]:
    """The issue seen in the most sessions, with its stack and sessions as the API answers them."""
    widest = max(issues(replayql)["nodes"], key=lambda issue: issue["sessionCount"])
    return replayql.data(f"query($id: ID!) {{ issue(id: $id) {{ id status sampleStack {ISSUE_SESSIONS} }} }}",
                         {"id": widest["id"]})["issue"]


def test_an_issue_page_shows_the_apis_stack_sessions_and_users(tab: Tab, replayql: Replayql) -> None:
    issue = widest_issue(replayql)
    page = sign_in(tab, replayql, f"/issues/{issue['id']}")
    page.wait_for_selector("pre.stack")
    assert page.locator("pre.stack").inner_text() == issue["sampleStack"]
    sessions = issue["sessions"]["nodes"]
    assert [row["id"] for row in table(page, "session")] == [s["id"] for s in sessions]
    assert page.locator("table.sessions-table tbody tr a[href^='/sessions/']").count() == len(sessions)
    users = {s["user"]["id"]: s["user"]["name"] for s in sessions if s["user"]["identified"]}
    links = page.locator(".users-hit a")
    assert [links.nth(i).get_attribute("href") for i in range(links.count())] == [f"/users/{u}" for u in users]
    page.screenshot(path=replayql.screenshots / "issue.png")

    page.locator("table.sessions-table tbody tr a[href^='/sessions/']").first.click()
    page.wait_for_url(f"{replayql.url}/sessions/{sessions[0]['id']}")


def test_resolve_and_reopen_change_the_issues_status_through_the_api(tab: Tab, replayql: Replayql) -> None:
    issue = widest_issue(replayql)
    assert issue["status"] == "OPEN"
    page = sign_in(tab, replayql, f"/issues/{issue['id']}")
    page.click(".status-actions button:text-is('Resolve')")
    page.wait_for_selector(".status-actions .status:text-is('resolved')")
    assert issue_status(replayql, issue["id"]) == "RESOLVED"
    page.screenshot(path=replayql.screenshots / "issue-resolved.png")
    page.click(".status-actions button:text-is('Reopen')")
    page.wait_for_selector(".status-actions .status:text-is('open')")
    assert issue_status(replayql, issue["id"]) == "OPEN"


def test_a_read_only_key_sees_the_status_buttons_disabled_with_the_reason(tab: Tab, replayql: Replayql) -> None:
    issue = widest_issue(replayql)
    page = sign_in(tab, replayql, f"/issues/{issue['id']}", key=replayql.read_key)
    page.wait_for_selector(".status-actions .reason")
    scopes = replayql.answer("{ viewer { scopes } }", key=replayql.read_key)["data"]["viewer"]["scopes"]
    assert page.locator(".status-actions .reason").inner_text() == (
        f"This key's scope is {', '.join(scopes).lower()}: changing an issue's status needs the write scope.")
    buttons = page.locator(".status-actions button")
    assert buttons.all_inner_texts() == ["Resolve", "Ignore"]
    assert all(buttons.nth(i).is_disabled() for i in range(buttons.count()))
    page.screenshot(path=replayql.screenshots / "issue-read-only.png")
    assert issue_status(replayql, issue["id"]) == issue["status"] == "OPEN"


USER_FIELDS = "id name email sessionCount firstSeen lastSeen"


def users(replayql: Replayql, after: str | None = None) -> dict[str, Any]:
    return replayql.data(f"query($after: String) {{ users(first: 25, after: $after) {{ totalCount"
                         f" pageInfo {{ endCursor }} nodes {{ {USER_FIELDS} }} }} }}", {"after": after})["users"]


def user_row(page: Page, user: dict[str, Any]) -> dict[str, Any]:
    name = user["name"] or user["id"]
    return {"id": user["id"], "link": name,
            "cells": [name, user["email"] or "", str(user["sessionCount"]), shown_time(page, user["firstSeen"]),
                      shown_time(page, user["lastSeen"])]}


def test_the_users_list_and_a_users_page_are_the_apis(tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/users")
    first = users(replayql)
    wait_for_count(page, f"{first['totalCount']} users")
    assert table(page, "user") == [user_row(page, user) for user in first["nodes"]]
    page.screenshot(path=replayql.screenshots / "users.png")
    page.click("text=Next page →")
    second = users(replayql, first["pageInfo"]["endCursor"])
    page.wait_for_url(re.compile(r"after="))
    page.wait_for_selector(f"tr[data-user-id={json.dumps(second['nodes'][0]['id'])}]")
    assert table(page, "user") == [user_row(page, user) for user in second["nodes"]]

    busiest = max(second["nodes"], key=lambda user: user["sessionCount"])
    page.click(f"tr[data-user-id={json.dumps(busiest['id'])}] a")
    page.wait_for_url(f"{replayql.url}/users/{busiest['id']}")
    user = replayql.data("query($id: ID!) { user(id: $id) { traits sessions(first: 25) { nodes { id } } } }",
                         {"id": busiest["id"]})["user"]
    assert [row["id"] for row in table(page, "session")] == [s["id"] for s in user["sessions"]["nodes"]]
    traits = page.evaluate("() => Object.fromEntries([...[...document.querySelectorAll('.facts section')]"
                           ".find(s => s.querySelector('h3').textContent === 'Traits')"
                           ".querySelectorAll('dl div')].map(d => [d.querySelector('dt').textContent,"
                           " d.querySelector('dd').textContent]))")
    assert traits == {k: v if isinstance(v, str) else json.dumps(v, separators=(",", ":"))
                      for k, v in user["traits"].items()}
    page.screenshot(path=replayql.screenshots / "user.png")


DAY_MS = 86_400_000
ZONE = "Europe/Berlin"


@dataclass(frozen=True)
class Dashboard:
    """The questions the dashboards page asks for one span and time zone, asked of the API by the test."""
    replayql: Replayql
    start: str
    end: str
    zone: str

    @property
    def url(self) -> str:
        return "/dashboards?" + httpx.QueryParams(
            {"range": "custom", "from": self.start, "to": self.end, "tz": self.zone}).__str__()

    @property
    def time_range(self) -> dict[str, str]:
        return {"from": self.start, "to": self.end}

    def aggregate(self, **input_: Any) -> dict[str, Any]:
        # eight days: the page's buckets are days
        return self.replayql.data(
            "query($input: AggregateInput!) { aggregate(input: $input) { rows totals otherRows } }",
            {"input": {**input_, "interval": "DAY", "timeRange": self.time_range, "timeZone": self.zone}})["aggregate"]

    def funnel(self, steps: list[str]) -> list[dict[str, Any]]:
        return self.replayql.data("query($input: FunnelInput!) { funnel(input: $input) { steps { step count } } }",
                                  {"input": {"steps": steps, "timeRange": self.time_range}})["funnel"]["steps"]

    def retention(self) -> list[dict[str, Any]]:
        return self.replayql.data(
            "query($input: RetentionInput!) { retention(input: $input) { cohorts { start size } } }",
            {"input": {"timeRange": self.time_range, "interval": "DAY", "periods": 8,
                       "timeZone": self.zone}})["retention"]["cohorts"]


def js_percent(share: float) -> str:
    """A share as the page prints it: JavaScript's toFixed(1) of the percentage, which rounds half up."""
    return f"{Decimal(share * 100).quantize(Decimal('0.1'), ROUND_HALF_UP)}%"


@pytest.fixture
def dashboard(replayql: Replayql) -> Dashboard:
    """The generated week (it ends at today's midnight, UTC) and the day after, in Berlin's time."""
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start, end = midnight - timedelta(days=7), midnight + timedelta(days=1)
    return Dashboard(replayql, start.isoformat().replace("+00:00", "Z"), end.isoformat().replace("+00:00", "Z"),
                     ZONE)


def card(page: Page, name: str) -> str:
    """The selector of a card, once its content (not its loading state) is shown."""
    page.wait_for_selector(f".card-{name} h2 + :not(.loading)")
    return f".card-{name}"


def test_the_dashboards_draw_the_apis_answers_for_the_range_and_zone_in_the_url(tab: Tab, replayql: Replayql,
                                                                                dashboard: Dashboard) -> None:
    page = sign_in(tab, replayql, dashboard.url)
    browsers = dashboard.aggregate(source="SESSIONS", measures=[{"alias": "n", "fn": "COUNT"}],
                                   groupBy=[{"field": "browser"}], limit=5, other=True)
    expected: dict[str, int] = {}
    for _, browser, n in browsers["rows"]:
        expected[browser] = expected.get(browser, 0) + n
    expected["Other"] = sum(n for _, _, n in browsers["otherRows"] or [])
    page.wait_for_selector(f"{card(page, 'browsers')} .uplot canvas")
    shown = page.evaluate("() => Object.fromEntries([...document.querySelectorAll('.card-browsers .totals li')]"
                          ".map(li => [li.dataset.series, li.querySelector('b').textContent]))")
    assert shown == {name: f"{n:,}" for name, n in expected.items() if name != "Other" or n}
    assert sum(expected.values()) == browsers["totals"][2] > 0

    rate = dashboard.aggregate(source="SESSIONS", measures=[{"alias": "r", "fn": "RATE", "where": "hasErrors = true"}])
    page.wait_for_selector(f"{card(page, 'errors')} .uplot canvas")
    assert page.locator(".overall-rate").inner_text() == js_percent(rate["totals"][1])

    vitals = replayql.data("query($r: TimeRange) { webVitals(timeRange: $r, query: \"name = LCP\","
                           " groupBy: PATH_PATTERN, limit: 10) { vitals { group count p75 } } }",
                           {"r": dashboard.time_range})["webVitals"]
    rows = page.locator(f"{card(page, 'lcp')} tbody tr")
    assert [rows.nth(i).locator("td").all_inner_texts()[:3] for i in range(rows.count())] == [
        [v["group"], f"{v['count']:,}", f"{Decimal(v['p75']).quantize(Decimal(1), ROUND_HALF_UP)} ms"]
        for v in vitals["vitals"]]  # Math.round: half up

    cohorts = dashboard.retention()
    page.wait_for_selector(f"{card(page, 'retention')} tr[data-cohort]")
    assert page.evaluate("() => [...document.querySelectorAll('.retention-table tr[data-cohort]')]"
                         ".map(r => [r.dataset.cohort, Number(r.cells[1].textContent.replace(/,/g, ''))])") == \
        [[c["start"], c["size"]] for c in cohorts]
    assert cohorts[0]["start"].endswith("+01:00")  # Berlin's days in December

    paths = replayql.data("query($input: PathsInput!) { paths(input: $input) { steps { step sessions } } }",
                          {"input": {"timeRange": dashboard.time_range, "steps": 4, "limit": 24}})["paths"]
    page.wait_for_selector(f"{card(page, 'paths')} .path-step")
    assert page.locator(".path-step h3 small").all_inner_texts() == [
        f"{step['sessions']:,} sessions" for step in paths["steps"] if step["step"] > 0]
    page.screenshot(path=replayql.screenshots / "dashboards.png", full_page=True)

    page.select_option("select.zone", "UTC")  # the zone is in the URL, and every bucket follows it
    page.wait_for_url(re.compile(r"tz=UTC"))
    utc = Dashboard(replayql, dashboard.start, dashboard.end, "UTC").retention()
    page.wait_for_function("start => document.querySelector('.retention-table tr[data-cohort]')?.dataset.cohort"
                           " === start", arg=utc[0]["start"])
    assert utc[0]["start"].endswith("+00:00")


def funnel_counts(page: Page) -> list[list[str]]:
    page.wait_for_selector(".funnel li")
    return page.evaluate("() => [...document.querySelectorAll('.funnel li')].map(li =>"
                         " [li.querySelector('code').textContent, li.querySelector('.funnel-count b').textContent])")


def test_the_funnel_starts_from_the_top_pages_and_its_steps_are_edited_into_the_url(tab: Tab, replayql: Replayql,
                                                                                    dashboard: Dashboard) -> None:
    page = sign_in(tab, replayql, dashboard.url)
    top = replayql.data('{ topValues(entity: EVENTS, key: "path", limit: 3) { values { value } } }')["topValues"]
    steps = [f"visited(path = {json.dumps(v['value'])})" for v in top["values"]]
    page.wait_for_selector(".steps input")
    assert [page.locator(".steps input").nth(i).input_value() for i in range(3)] == steps
    assert funnel_counts(page) == [[s["step"], f"{s['count']:,}"] for s in dashboard.funnel(steps)]

    page.click("button[aria-label='Remove step 3']")
    page.click("button[aria-label='Remove step 2']")
    page.click(".steps button:text-is('Add step')")
    page.fill("input[aria-label='Step 2']", 'visited(path ^= "/product/")')
    page.click(".steps button:text-is('Apply')")
    edited = [steps[0], 'visited(path ^= "/product/")']
    page.wait_for_url(re.compile(r"steps="))
    assert httpx.URL(page.url).params["steps"].split("\n") == edited
    expected = [[s["step"], f"{s['count']:,}"] for s in dashboard.funnel(edited)]
    page.wait_for_function("last => document.querySelector('.funnel li:nth-child(2) code')?.textContent === last",
                           arg=expected[1][0])
    assert funnel_counts(page) == expected and int(expected[1][1].replace(",", "")) > 0
    page.screenshot(path=replayql.screenshots / "dashboards-funnel.png")

    page.reload()  # a shared link holds the steps
    page.wait_for_selector(".funnel li:nth-child(2)")
    assert funnel_counts(page) == expected

    page.fill("input[aria-label='Step 2']", "visited(path = ")
    page.click(".steps button:text-is('Apply')")
    refusal = replayql.answer("query($input: FunnelInput!) { funnel(input: $input) { countBy } }",
                              {"input": {"steps": [steps[0], "visited(path ="]}})["errors"][0]["message"]
    page.wait_for_selector(".card-funnel .problem")
    assert page.locator(".card-funnel .problem").inner_text() == refusal


def test_the_dashboards_fold_to_one_column_on_a_narrow_window(browser: Browser, replayql: Replayql,
                                                               dashboard: Dashboard) -> None:
    with watched_tab(browser, width=420) as narrow:
        page = sign_in(narrow, replayql, dashboard.url)
        page.wait_for_selector(".card-browsers .uplot canvas")
        page.wait_for_selector(".retention-table")
        widths = page.evaluate("() => [document.documentElement.scrollWidth,"
                               " ...[...document.querySelectorAll('.card')].map(c => c.getBoundingClientRect().right)]")
        assert max(widths) <= 420  # nothing wider than the window: wide tables scroll inside their card
        page.screenshot(path=replayql.screenshots / "dashboards-narrow.png", full_page=True)


def test_graphiql_opens_from_the_nav_with_the_signed_in_key(tab: Tab, replayql: Replayql) -> None:
    page = sign_in(tab, replayql, "/sessions")
    page.click("nav >> text=GraphiQL")
    editor = ".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror"
    page.wait_for_selector(editor, state="attached")
    headers = page.evaluate(f"() => document.querySelector('{editor}').CodeMirror.getValue()")
    assert json.loads(headers) == {"Authorization": f"token {replayql.key}"}
    page.screenshot(path=replayql.screenshots / "graphiql.png")


@pytest.mark.parametrize("path", ["/", "/sessions", "/sessions/s-0001", "/issues", "/issues/i-1", "/users",
                                  "/users/u-1", "/dashboards"])
def test_every_view_answers_the_page_under_a_policy_that_runs_only_the_servers_scripts(replayql: Replayql,
                                                                                      path: str) -> None:
    response = httpx.get(replayql.url + path, trust_env=False)
    assert response.status_code == 200 and response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<script type="module" src="/ui/app.js"></script>' in response.text
    assert response.text.count("<script") == 1
    policy = dict(d.split(" ", 1) for d in response.headers["content-security-policy"].split("; "))
    assert policy["script-src"] == "'self'" and policy["default-src"] == "'none'"
    assert policy["connect-src"] == "'self'"


@pytest.mark.parametrize(("url", "content_type"), [
    ("/ui/app.js", "text/javascript; charset=utf-8"), ("/ui/app.css", "text/css; charset=utf-8")])
def test_the_ui_files_revalidate_with_their_etag(replayql: Replayql, url: str, content_type: str) -> None:
    response = httpx.get(replayql.url + url, trust_env=False)
    assert response.status_code == 200 and response.headers["content-type"] == content_type
    assert response.headers["cache-control"] == "no-cache"
    again = httpx.get(replayql.url + url, headers={"if-none-match": response.headers["etag"]}, trust_env=False)
    assert again.status_code == 304 and again.content == b""
