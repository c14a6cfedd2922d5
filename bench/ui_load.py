"""The web UI's first load: how long a returning user's tab takes to show the sessions list (the issue's target:
at most 1 s on loopback with the demo data), the dashboards and a session's replay, and what the UI downloads.

    python bench/ui_load.py [--runs 15] [--sessions <the demo's count>] [--wait-idle 300]
                            [--out bench/results/ui-load.json]

The store holds the demo data, loaded as `replayql serve --demo` does (`generate_batches(app, N, seed=1)` into
the app `demo`; here `replayql generate --sessions N --seed 1 --data-dir <tmp>`, N being `serve`'s
`--demo-sessions` default), a read key is made with `replayql keys create`, and `replayql serve` runs on a
loopback port. Debian's Chromium (headless, driven by playwright) then opens each page `--runs` times, each time
in a new browser context: a cold cache, with the key already in the tab's sessionStorage (`replayql.key`, set
by an init script before the UI's own code runs), as a returning user's tab that is reopened.

What is timed is in the page, against its own clock (`performance.now()`, which counts from the navigation's
start), so no round trip to this process is counted: a MutationObserver installed before the page's scripts
notes when the page's content is in the DOM ("in DOM"), then the next frame (requestAnimationFrame, then a task
after it: the frame with that content has been produced) is "shown", the figure reported. Content is:

- sessions (`/sessions`): the rows of `table.sessions-table` (the only page with the 1 s target);
- dashboards (`/dashboards`): all six cards with content and nothing in them loading (the funnel's steps show
  before its result does), and every chart drawn (`.uplot canvas`, the sessions-by-browser chart among them),
  which needs the lazily loaded charts chunk;
- session (`/sessions/<id>`, the newest session with a recording and at least 3 pages): the replay's iframe
  (`.rr-player iframe`, the lazily loaded player chunk and the recording's first page) and the timeline's entries
  (every page of the session's events).

Every page's resource timings (the document, scripts, stylesheets and GraphQL fetches: start, request sent,
first byte, end; each fetch named by the operation of the request playwright saw with the same response size)
are kept, and their medians show where the sessions page's time goes, with the server's own time per GraphQL
request meanwhile (the mean between two readings of its /metrics, before and after the page loads).

The floor is the request the sessions table waits for (the `Sessions` POST /graphql, its body as the browser
sent it on the first run) sent alone from one keep-alive httpx client, after 3 untimed ones; each other GraphQL
request of the first load is timed the same way, and then all of them sent at once as the page sends them (one
keep-alive client each, on threads). Sizes are of the files in src/replayql/static/ui/ as the server serves them
(it does not compress them) and gzip -9 (Python's gzip); the first load's JavaScript and CSS are the ones the
sessions page requested (recorded, not assumed: the chunks are loaded lazily). Chromium resolves every host name
but 127.0.0.1 to nothing, so a replay cannot reach the network.

Writes bench/results/ui-load.json and the "Web UI first load" section of bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import inspect
import re
import statistics
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx2 as httpx
import orjson
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

import replayql
from _common import (
    APP_ID,
    BENCH_DIR,
    REPO_DIR,
    RESULTS_DIR,
    ServerProcess,
    cli,
    display_command,
    fmt,
    invocation,
    load_average,
    machine_info,
    markdown_table,
    percentile,
    replace_section,
    write_json,
)
from live_server import CHROMIUM
from query_graphql import Client, load
from replayql.cli import serve
from run import wait_idle

HEADING = "## Web UI first load"
DEMO_SESSIONS: int = inspect.signature(serve).parameters["demo_sessions"].default  # what `serve --demo` loads
UI_DIR = Path(replayql.__file__).parent / "static" / "ui"  # what the server serves
KEY_STORAGE = "replayql.key"  # ui/src/api.ts
TARGET_MS = 1000.0  # the issue's: the sessions page on loopback with the demo data
FLOOR_WARMUP = 3
PAGE_TIMEOUT_MS = 30_000

# Conditions on the page's DOM (JavaScript expressions) for "the page's content is there".
SESSIONS_READY = "document.querySelector('table.sessions-table tbody tr') !== null"
DASHBOARDS_READY = """(() => {
  const cards = [...document.querySelectorAll('.card')];
  return cards.length === 6 && cards.every((card) => card.querySelector('h2 + *') !== null
                                                     && card.querySelector('.loading') === null)
    && document.querySelector('.card-browsers .uplot canvas') !== null
    && [...document.querySelectorAll('.card .chart')].every((chart) => chart.querySelector('.uplot canvas'));
})()"""
SESSION_READY = ("document.querySelector('.rr-player iframe') !== null"
                 " && document.querySelector('.timeline .entry') !== null")

# Installed in every document of a context before its own scripts (top window only; the replay's iframe is
# another document): the key, and the observer that notes when READY first holds.
INIT_SCRIPT = """(() => {
  if (window.top !== window) return;
  sessionStorage.setItem(%(storage)s, %(key)s);
  const mark = { dom: null, shown: null, problem: null };
  window.__uiLoad = mark;
  const check = () => {
    if (mark.dom !== null) return;
    const problem = document.querySelector('.problem');
    if (problem && mark.problem === null) mark.problem = problem.textContent.slice(0, 500);
    if (!(%(ready)s)) return;
    mark.dom = performance.now();
    observer.disconnect();
    requestAnimationFrame(() => {
      const channel = new MessageChannel();
      channel.port1.onmessage = () => { mark.shown = performance.now(); };
      channel.port2.postMessage(null);
    });
  };
  const observer = new MutationObserver(check);
  observer.observe(document, { childList: true, subtree: true });
})();"""

# What the page knows of its own load, read once its content is shown.
PAGE_TIMINGS = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const paint = Object.fromEntries(performance.getEntriesByType('paint').map((p) => [p.name, p.startTime]));
  const resources = performance.getEntriesByType('resource').map((r) => ({
    url: r.name, type: r.initiatorType, start: r.startTime, connect: r.connectStart, connected: r.connectEnd,
    sent: r.requestStart, firstByte: r.responseStart, end: r.responseEnd,
    transfer: r.transferSize, encoded: r.encodedBodySize, decoded: r.decodedBodySize }));
  return { mark: window.__uiLoad, paint, resources,
           document: { start: 0, sent: nav.requestStart, firstByte: nav.responseStart, end: nav.responseEnd,
                       encoded: nav.encodedBodySize },
           domContentLoaded: nav.domContentLoadedEventEnd, rows: document.querySelectorAll(
             'table.sessions-table tbody tr').length };
}"""


STEP_FIELDS = ("start", "sent", "first_byte", "end")
Step = tuple[float, float | None, float | None, float]  # STEP_FIELDS, ms from the navigation's start


def step_of(timing: dict[str, Any]) -> Step:
    """A resource timing's start, request sent, first byte of the answer and end (0 where not exposed)."""
    return (timing["start"], timing["sent"] or None, timing["firstByte"] or None, timing["end"])


@dataclass
class Page:
    name: str
    path: str
    ready: str
    description: str


@dataclass
class Load:
    """One page load in a new context: the figures and what it requested."""

    shown_ms: float
    dom_ms: float
    fcp_ms: float | None
    rows: int
    steps: dict[str, Step]  # ms from the navigation's start
    requests: list[dict[str, Any]] = field(default_factory=list)
    graphql_bodies: dict[str, bytes] = field(default_factory=dict)
    resources: list[dict[str, Any]] = field(default_factory=list)


def operation_of(body: bytes) -> str:
    """The operation name of a GraphQL request body (`query Sessions(...)` -> Sessions), or for an anonymous
    one its first field (`{ viewer { ... } }` -> viewer)."""
    query = orjson.loads(body).get("query", "")
    found = re.match(r"\s*(?:query|mutation)\s+(\w+)", query) or re.match(r"\s*(?:query\s*)?\{\s*(\w+)", query)
    return found[1] if found else "(anonymous)"


def url_path(url: str) -> str:
    return "/" + url.split("/", 3)[3] if url.count("/") >= 3 else url


def load_page(browser: Any, base_url: str, page_spec: Page, key: str) -> Load:
    """Open `page_spec` once in a new browser context (cold cache) and time it in the page."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    script = INIT_SCRIPT % {"storage": orjson.dumps(KEY_STORAGE).decode(), "key": orjson.dumps(key).decode(),
                            "ready": page_spec.ready}
    context.add_init_script(script)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    sent: list[Any] = []
    page.on("request", lambda request: sent.append(request))
    try:
        page.goto(base_url + page_spec.path, wait_until="commit")
        try:
            page.wait_for_function("() => window.__uiLoad && window.__uiLoad.shown !== null", polling=100,
                                   timeout=PAGE_TIMEOUT_MS)
        except PlaywrightTimeout as exc:
            problem = page.evaluate("() => window.__uiLoad && window.__uiLoad.problem")
            raise SystemExit(f"{page_spec.path} did not show its content within {PAGE_TIMEOUT_MS} ms "
                             f"(problem shown: {problem!r}, page errors: {errors})") from exc
        timings = page.evaluate(PAGE_TIMINGS)
        if errors or timings["mark"]["problem"]:
            raise SystemExit(f"{page_spec.path}: page errors {errors}, problem shown {timings['mark']['problem']!r}")
        return _load_of(timings, sent)
    finally:
        context.close()


def _load_of(timings: dict[str, Any], sent: list[Any]) -> Load:
    steps: dict[str, Step] = {"document": step_of(timings["document"])}
    for resource in timings["resources"]:
        if resource["type"] != "fetch":
            steps[url_path(resource["url"]).removeprefix("/ui/")] = step_of(resource)
    requests, bodies, counts = [], {}, dict[str, int]()
    labelled: list[tuple[str, int]] = []  # (label, response bytes) of each finished GraphQL request, in order sent
    for request in sent:
        entry = {"method": request.method, "path": url_path(request.url), "type": request.resource_type}
        if request.method == "POST" and url_path(request.url) == "/graphql":
            body = request.post_data_buffer or b""
            operation = operation_of(body)
            counts[operation] = counts.get(operation, 0) + 1
            entry["operation"] = operation
            bodies.setdefault(operation, body)
            response = request.response()  # waits for it: the last events may not have reached this process yet
            if response is not None:
                label = f"graphql {operation}" + (f" #{counts[operation]}" if counts[operation] > 1 else "")
                labelled.append((label, len(response.body())))
        requests.append(entry)
    steps.update(_graphql_steps(labelled, timings["resources"]))
    steps["DOMContentLoaded"] = (0.0, None, None, timings["domContentLoaded"])
    mark = timings["mark"]
    return Load(shown_ms=mark["shown"], dom_ms=mark["dom"], fcp_ms=timings["paint"].get("first-contentful-paint"),
                rows=timings["rows"], steps=steps,
                requests=requests, graphql_bodies=bodies, resources=timings["resources"])


def _graphql_steps(labelled: list[tuple[str, int]], resources: list[dict[str, Any]]
                   ) -> dict[str, Step]:
    """The page's own timings (its clock) of its GraphQL fetches, named by the request each belongs to: the
    entries and the requests are paired by response size, in order where sizes are equal. Playwright's request
    times are on another clock (17-39 ms from the page's on app.js here), so they only name the entries."""
    fetches = sorted((r for r in resources if r["type"] == "fetch" and url_path(r["url"]) == "/graphql"),
                     key=lambda r: r["start"])
    steps = {}
    for label, size in labelled:
        match = next((r for r in fetches if r["encoded"] == size), None)
        if match is not None:
            fetches.remove(match)
            steps[label] = step_of(match)
    return steps


def stats(values: list[float]) -> dict[str, float]:
    return {"p50": round(percentile(values, 50), 1), "p95": round(percentile(values, 95), 1),
            "max": round(max(values), 1), "min": round(min(values), 1)}


def time_alone(client: Client, body: bytes, runs: int, warmup: int = FLOOR_WARMUP) -> list[float]:
    """The captured request sent alone `runs` times (after `warmup` more), ms each; an error answer stops."""
    latencies = []
    for i in range(warmup + runs):
        started = time.perf_counter()
        response = client.http.post("/graphql", content=body, headers={"content-type": "application/json"})
        elapsed = (time.perf_counter() - started) * 1000
        if response.status_code != 200 or response.json().get("errors"):
            raise SystemExit(f"the captured request failed ({response.status_code}): {response.text[:500]}")
        if i >= warmup:
            latencies.append(elapsed)
    return latencies


def time_together(base_url: str, key: str, bodies: dict[str, bytes], runs: int
                  ) -> tuple[dict[str, list[float]], list[float]]:
    """All of `bodies` sent at once, as the page sends them, `runs` times (after FLOOR_WARMUP): each request's ms,
    and the ms until the last answer. One keep-alive client per request, each on its own thread."""
    clients = {op: Client(base_url, key) for op in bodies}
    each: dict[str, list[float]] = {op: [] for op in bodies}
    walls = []
    try:
        with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
            for i in range(FLOOR_WARMUP + runs):
                started = time.perf_counter()
                futures = {op: pool.submit(time_alone, clients[op], body, 1, 0) for op, body in bodies.items()}
                answers = {op: future.result()[0] for op, future in futures.items()}
                wall = (time.perf_counter() - started) * 1000
                if i >= FLOOR_WARMUP:
                    walls.append(wall)
                    for op, ms in answers.items():
                        each[op].append(ms)
    finally:
        for client in clients.values():
            client.close()
    return each, walls


def graphql_server_seconds(base_url: str) -> dict[str, tuple[float, int]]:
    """Per operation, the server's summed seconds and count of GraphQL requests so far (its /metrics)."""
    text = httpx.get(f"{base_url}/metrics", timeout=10.0).text
    found: dict[str, list[float]] = {}
    for kind, operation, value in re.findall(
            r'^replayql_graphql_request_seconds_(sum|count)\{operation="([^"]*)"\} (\S+)$', text, re.MULTILINE):
        found.setdefault(operation, [0.0, 0.0])[kind == "count"] = float(value)
    return {operation: (total, int(count)) for operation, (total, count) in found.items()}


def server_ms_between(before: dict[str, tuple[float, int]], after: dict[str, tuple[float, int]]
                      ) -> dict[str, dict[str, float | int]]:
    """Mean server ms per request of each operation between two /metrics readings."""
    means = {}
    for operation, (total, count) in after.items():
        total0, count0 = before.get(operation, (0.0, 0))
        if count > count0:
            means[operation] = {"requests": count - count0, "mean_ms": round((total - total0) / (count - count0)
                                                                             * 1000, 1)}
    return means


def file_sizes() -> list[dict[str, Any]]:
    """Every file of the built UI: bytes as served, and gzip -9."""
    return [{"file": path.name, "bytes": len(data := path.read_bytes()), "gzip": len(gzip.compress(data, 9))}
            for path in sorted(UI_DIR.iterdir()) if path.is_file()]


def wait_ready(base_url: str, timeout_s: float = 60.0) -> None:
    """Until /readyz answers 200 (the store answers), after ServerProcess's /healthz."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{base_url}/readyz", timeout=3.0).status_code == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"/readyz did not answer 200 within {timeout_s:.0f} s")


def step_medians(loads: list[Load]) -> list[dict[str, Any]]:
    """Per step, its median start, request sent, first byte and end over the loads that had it (`loads`: how
    many; a request still in flight when the content was shown has no entry yet), in order of median end."""
    labels = list(dict.fromkeys(label for load in loads for label in load.steps))

    def median(label: str, i: int) -> float | None:
        values = [v for load in loads if label in load.steps and (v := load.steps[label][i]) is not None]
        return round(statistics.median(values), 1) if values else None

    rows = [{"step": label, "loads": sum(label in load.steps for load in loads),
             **{f"{name}_ms": median(label, i) for i, name in enumerate(STEP_FIELDS)}} for label in labels]
    return sorted(rows, key=lambda row: row["end_ms"])


def measure(args: argparse.Namespace, data_dir: Path) -> dict[str, Any]:
    loaded = load(data_dir, args.sessions, seed=1)
    key = cli("keys", "create", "--app", APP_ID, "--scope", "read", "--name", "bench-ui", data_dir=data_dir)
    with ServerProcess(data_dir) as server:
        wait_ready(server.base_url)
        client = Client(server.base_url, key)
        try:
            counts = client.data("{ sessions(first: 0) { totalCount } events(first: 0) { totalCount } }")
            chosen = client.data('{ sessions(query: "hasRecording = true AND pageCount >= 3", first: 1) '
                                 "{ nodes { id pageCount eventCount } } }")["sessions"]["nodes"][0]
            pages = [Page("sessions", "/sessions", SESSIONS_READY, "rows of the sessions table"),
                     Page("dashboards", "/dashboards", DASHBOARDS_READY, "six cards loaded, charts drawn"),
                     Page("session", f"/sessions/{chosen['id']}", SESSION_READY, "replay iframe and timeline entries")]
            loads: dict[str, list[Load]] = {p.name: [] for p in pages}
            if args.wait_idle:
                wait_idle(args.wait_idle)
            load_before = load_average()
            metrics_before = graphql_server_seconds(server.base_url)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
                    "--no-sandbox", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"])
                try:
                    version = browser.version
                    for run in range(args.runs):
                        for page_spec in pages:  # interleaved: noise on the machine lands on every page alike
                            loads[page_spec.name].append(load_page(browser, server.base_url, page_spec, key))
                        shown = ", ".join(f"{name} {fmt(v[-1].shown_ms, 0)}" for name, v in loads.items())
                        print(f"run {run + 1}/{args.runs}: {shown} ms", flush=True)
                finally:
                    browser.close()
            server_ms = server_ms_between(metrics_before, graphql_server_seconds(server.base_url))
            first = loads["sessions"][0]
            floors = {op: stats(time_alone(client, body, args.runs)) for op, body in first.graphql_bodies.items()}
            each, walls = time_together(server.base_url, key, first.graphql_bodies, args.runs)
            together = {"each": {op: stats(v) for op, v in each.items()}, "all_answered": stats(walls)}
            load_after = load_average()
        finally:
            client.close()
        server_command = display_command(server.command, data_dir)
    return {"loaded": loaded, "counts": counts, "session": chosen, "pages": pages, "loads": loads,
            "floors": floors, "together": together, "server_ms": server_ms, "chromium": version,
            "server_command": server_command, "load_before": load_before, "load_after": load_after}


def summarize(args: argparse.Namespace, measured: dict[str, Any]) -> dict[str, Any]:
    loads: dict[str, list[Load]] = measured["loads"]
    first = loads["sessions"][0]
    sizes = file_sizes()
    by_file = {s["file"]: s for s in sizes}
    fetched = [r["path"].removeprefix("/ui/") for r in first.requests
               if r["type"] in ("script", "stylesheet") and r["path"].startswith("/ui/")]
    served = {url_path(r["url"]).removeprefix("/ui/"): r["encoded"] for r in first.resources
              if url_path(r["url"]).startswith("/ui/")}
    pages = {}
    for spec in measured["pages"]:
        runs = loads[spec.name]
        pages[spec.name] = {
            "path": spec.path, "content": spec.description,
            "shown_ms": stats([r.shown_ms for r in runs]), "in_dom_ms": stats([r.dom_ms for r in runs]),
            "fcp_ms": stats([r.fcp_ms for r in runs if r.fcp_ms is not None]),
            "first_run_shown_ms": round(runs[0].shown_ms, 1),
            "steps_median": step_medians(runs),
            "first_load_requests": runs[0].requests,
            "graphql_requests": sum(1 for r in runs[0].requests if r.get("operation")),
            "runs": [{"shown_ms": round(r.shown_ms, 1), "in_dom_ms": round(r.dom_ms, 1),
                      "fcp_ms": r.fcp_ms and round(r.fcp_ms, 1),
                      "steps": {label: [v if v is None else round(v, 1) for v in step]
                                for label, step in r.steps.items()}} for r in runs],
        }
    pages["sessions"]["rows"] = first.rows
    floor = measured["floors"]["Sessions"]
    return {
        "benchmark": "ui_load",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": invocation(),
        "config": {"runs": args.runs, "sessions": args.sessions, "seed": 1, "target_ms": TARGET_MS,
                   "browser": CHROMIUM, "chromium": measured["chromium"], "viewport": "1280x800",
                   "floor_warmup": FLOOR_WARMUP, "gzip_level": 9, "server_command": measured["server_command"]},
        "load": measured["loaded"],
        "store": {name: value["totalCount"] for name, value in measured["counts"].items()},
        "session": measured["session"],
        "pages": pages,
        "floor_ms": {"request": "Sessions", **floor},
        "alone_ms": measured["floors"],
        "together_ms": measured["together"],
        "server_ms_during_loads": measured["server_ms"],
        "ratio_p50": round(pages["sessions"]["shown_ms"]["p50"] / floor["p50"], 1),
        "target_met": pages["sessions"]["shown_ms"]["max"] <= TARGET_MS,
        "files": sizes,
        "first_load": {"js_css": fetched, "lazy_requested": [f for f in fetched if f not in ("app.js", "app.css")],
                       "bytes": sum(by_file[f]["bytes"] for f in fetched if f in by_file),
                       "gzip": sum(by_file[f]["gzip"] for f in fetched if f in by_file),
                       "served_bytes": served,
                       "served_as_files": all(served.get(f) == by_file[f]["bytes"] for f in fetched if f in by_file)},
        "machine": machine_info(),
        "load_average_before": measured["load_before"],
        "load_average_after": measured["load_after"],
    }


def section(result: dict[str, Any]) -> str:
    config, pages, floor = result["config"], result["pages"], result["floor_ms"]
    sessions = pages["sessions"]
    page_rows = [[f"{name} (`{p['path'] if name != 'session' else '/sessions/<id>'}`)", p["content"],
                  fmt(p["shown_ms"]["p50"]), fmt(p["shown_ms"]["p95"]), fmt(p["shown_ms"]["max"]),
                  fmt(p["in_dom_ms"]["p50"]), fmt(p["fcp_ms"]["p50"]), str(p["graphql_requests"])]
                 for name, p in pages.items()]
    page_rows.append(["floor: the `Sessions` request alone (httpx, keep-alive)", "the table's data",
                      fmt(floor["p50"]), fmt(floor["p95"]), fmt(floor["max"]), "", "", "1"])
    together = result["together_ms"]
    at_once = together["each"]["Sessions"]
    page_rows.append([f"the sessions page's {len(together['each'])} GraphQL requests sent at once (httpx)",
                      "`Sessions` answered", fmt(at_once["p50"]), fmt(at_once["p95"]), fmt(at_once["max"]), "", "",
                      str(len(together["each"]))])
    runs = len(sessions["runs"])
    steps = [[s["step"] + (f" ({s['loads']} of {runs} loads)" if s["loads"] < runs else ""),
              *(fmt(s[f"{name}_ms"]) if s[f"{name}_ms"] is not None else "" for name in STEP_FIELDS)]
             for s in sessions["steps_median"]]
    steps.append(["rows in the DOM", "", "", "", fmt(sessions["in_dom_ms"]["p50"])])
    steps.append(["rows shown (next frame)", "", "", "", fmt(sessions["shown_ms"]["p50"])])
    first = result["first_load"]
    files = [[f"`{f['file']}`", "first load" if f["file"] in first["js_css"] or f["file"] == "index.html"
              else "lazy", f"{f['bytes']:,}", f"{f['gzip']:,}"] for f in result["files"]]
    js = [f for f in result["files"] if f["file"].endswith(".js")]
    files.append(["all JavaScript", "", f"{sum(f['bytes'] for f in js):,}", f"{sum(f['gzip'] for f in js):,}"])
    alone = ", ".join(f"`{op}` {fmt(v['p50'])} ms" for op, v in result["alone_ms"].items() if op != "Sessions")
    names = {"Sessions": "`Sessions`", "Browsers": "`Browsers`", "anonymous": "`viewer` (anonymous)"}
    server = ", ".join(f"{names[op]} {fmt(v['mean_ms'])} ms" for op, v in result["server_ms_during_loads"].items()
                       if op in names)
    met = "met" if result["target_met"] else "NOT met"
    lazy = (f"lazy chunks requested too: {', '.join(first['lazy_requested'])}" if first["lazy_requested"]
            else "no lazy chunk")
    return "\n".join([
        HEADING, "",
        "```sh", result["command"], "```", "",
        f"{result['date']}, Chromium {config['chromium']} (`{config['browser']}`, headless, driven by "
        f"playwright) and `replayql serve` on loopback, on the same {result['machine']['cores']} cores, shared "
        f"with other work (load average {result['load_average_before']} before, {result['load_average_after']} "
        "after): the browser, the server and this script take turns on them. The demo data "
        f"({config['sessions']} sessions, `{' '.join(result['load']['command'])}`, as `replayql serve --demo` "
        f"loads it; {result['store']['events']:,} events), a read key in the tab's sessionStorage as for a "
        f"returning user, each page opened {config['runs']} times, each time in a new browser context (cold "
        "cache), the three pages in turn. Times are ms from the navigation's start to the frame after the page's "
        "content is in the DOM, measured in the page (a MutationObserver, then requestAnimationFrame); FCP is "
        "the first contentful paint.", "",
        markdown_table(["page", "content", "p50 ms", "p95 ms", "max ms", "in DOM p50", "FCP p50",
                        "GraphQL requests"], page_rows), "",
        f"The issue's target, the sessions page within {TARGET_MS:,.0f} ms on loopback with the demo data: "
        f"**{met}** (max {fmt(sessions['shown_ms']['max'])} ms; the first run, {fmt(sessions['first_run_shown_ms'])}"
        f" ms, included). Sessions page p50 over its floor: {result['ratio_p50']}x. The other requests of its "
        f"first load, each alone: {alone}; all {len(together['each'])} sent at once are answered in "
        f"{fmt(together['all_answered']['p50'])} ms p50.", "",
        "Where the sessions page's time goes (medians over the runs, ms from the navigation's start, the page's "
        "resource timings):", "",
        markdown_table(["step", "start", "request sent", "first byte", "end"], steps), "",
        f"Meanwhile the server's own time per request (its `/metrics`, mean over the page loads): {server}.", "",
        f"The sessions page's first load requested {', '.join(f'`{f}`' for f in first['js_css'])} ({lazy}): "
        f"{first['bytes']:,} bytes of JavaScript and CSS as served (the server does not compress them), "
        f"{first['gzip']:,} gzip -9. The built UI (`src/replayql/static/ui/`):", "",
        markdown_table(["file", "loaded", "bytes", "gzip -9"], files),
    ])


def _dump(loads: dict[str, list[Load]]) -> Iterator[str]:
    for name, runs in loads.items():
        yield f"{name}: " + ", ".join(fmt(r.shown_ms, 0) for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15, help="loads of each page, each in a new browser context")
    parser.add_argument("--sessions", type=int, default=DEMO_SESSIONS,
                        help=f"demo sessions to load (default {DEMO_SESSIONS}, as `replayql serve --demo`)")
    parser.add_argument("--wait-idle", type=float, default=0.0, metavar="SECONDS",
                        help="before the page loads, wait up to this long for the cores to be idle (as run.py)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "ui-load.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="replayql-ui-load-") as tmp:
        measured = measure(args, Path(tmp))
    result = summarize(args, measured)
    write_json(args.out, result)
    text = section(result)
    if args.out == RESULTS_DIR / "ui-load.json":
        replace_section(BENCH_DIR / "RESULTS.md", HEADING, text)
    print("\n".join(_dump(measured["loads"])))
    print(text)
    out = args.out.resolve()
    print(f"result written to {out.relative_to(REPO_DIR) if out.is_relative_to(REPO_DIR) else out.name}")


if __name__ == "__main__":
    main()
