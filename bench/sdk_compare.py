"""replayql's browser SDK against its peers' npm packages, side by side, measured the same way (issue 10).

    python bench/sdk_compare.py [--minutes 1] [--out bench/results/sdk-compare.json] [--sdks replayql,openreplay]

Every SDK is bundled alike by `bench/sdk_peers/build.mjs` (esbuild: bundle, minify, IIFE, es2019, browser) from a
tiny entry in `bench/sdk_peers/entries/` that initialises it in its fullest recording configuration; sizes are
of that bundle, minified and gzip -9. Then, for each SDK, the demo shop of the browser test
(`tests/browser_shop`) is served on http://shop.test:PORT (mapped to 127.0.0.1) with the SDK's bundle in place
of replayql's script tag, and a scripted user browses it in headless Chromium for `--minutes`: an SPA route,
typing, a rage click, a dead click, a failing fetch and one to a closed port, an uncaught error and a rejection,
a console log, identify and track, a reload; over and over.

Measured per SDK: request body bytes sent to its endpoint (as on the wire: compressed when the SDK compresses),
counted by a loopback counting server; main-thread time in the SDK's code from a CPU profile (CDP
Profiler, 100 us sampling): the self time of frames from the SDK's bundle URL, and the same plus the unnamed
native frames those call; and the page's Long Tasks total (PerformanceObserver), with a run without any SDK
as the baseline. replayql sends to a real `replayql serve` (through the same counting server, which forwards);
peers send to the counting server, which answers 200 to everything and, so that each peer actually records,
the start handshake its own server would answer for a project with recording on. Nothing leaves the machine:
Chromium resolves every other host name to nothing, and any such request is reported.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import http.client
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from _common import (
    BENCH_DIR,
    RESULTS_DIR,
    ServerProcess,
    cli,
    fmt,
    free_port,
    invocation,
    load_average,
    machine_info,
    markdown_table,
)

REPO = BENCH_DIR.parent
PEERS_DIR = BENCH_DIR / "sdk_peers"
SHOP_DIR = REPO / "tests" / "browser_shop"
CHROMIUM = "/usr/bin/chromium"
SHOP_HOST = "shop.test"  # not "localhost": some SDKs turn features off on localhost pages
SDK_DIST = REPO / "sdk" / "dist" / "index.mjs"
PROFILE_INTERVAL_US = 100
IDLE_NODES = {"(idle)", "(program)", "(garbage collector)", "(root)"}
SECRETS = ("secret-search-text", "hunter2-password")
LABELS = {"baseline": "no SDK (baseline)", "replayql": "replayql", "posthog": "posthog-js (default import)",
          "posthog-full": "posthog-js full/no-external", "openreplay": "@openreplay/tracker",
          "logrocket": "logrocket", "highlight": "highlight.run"}
ORDER = ("baseline", "replayql", "posthog-full", "openreplay", "highlight", "posthog", "logrocket")
# SDKs whose recorder is not in the npm package: one pass shows what they do offline, a minute would add nothing
PROBE_ONLY = {"posthog", "logrocket"}
NOTES = {
    "posthog": "lazy-loads its recorder: once the remote config turns recording on it requests "
               "static/lazy-recorder.js (and dead-clicks-autocapture.js, exception-autocapture.js, surveys.js, "
               "web-vitals-with-attribution.js, array/<token>/config.js) from its assets host at run time; offline "
               "the sink answers 404, so no replay is recorded (analytics events are still sent). posthog-js "
               "full/no-external has them bundled in.",
    "logrocket": "the npm package is a loader: init() appends a script tag for logger-1.min.js from LogRocket's CDN "
                 "(cdn.logr-in.com); the recorder is not in the package, so offline LogRocket does nothing.",
    "openreplay": "recorder in the package; batches are encoded and sent by an inline Web Worker (off the main "
                  "thread, not in the profile).",
    "highlight": "recorder in the package; payloads are sent by an inline Web Worker (off the main thread, not in "
                 "the profile); also sends OpenTelemetry traces and metrics to its OTLP endpoint, counted here.",
    "posthog-full": "recorder bundled in (rrweb, console and network plugins); gzip-js compression on the main "
                    "thread with fflate.",
    "replayql": "rrweb recorder bundled in; gzip with CompressionStream, large bodies in a Worker.",
}


@dataclass
class Bundle:
    name: str
    package: str
    version: str
    path: Path
    min_bytes: int
    gzip_bytes: int


@dataclass
class Measured:
    """One SDK's run in the browser."""

    seconds: float = 0.0
    iterations: int = 0
    bytes_sent: int = 0
    requests: int = 0
    by_path: dict[str, list[int]] = field(default_factory=dict)
    sdk_self_ms: float = 0.0
    sdk_attributed_ms: float = 0.0
    long_task_ms: float = 0.0
    script_requests: list[str] = field(default_factory=list)
    offsite: list[str] = field(default_factory=list)
    console: list[str] = field(default_factory=list)
    page_errors: int = 0
    secrets_sent: bool = False
    browser_version: str = ""
    profile_seconds: float = 0.0

    def per_minute(self, value: float) -> float:
        return value * 60 / self.seconds if self.seconds else 0.0


# -- the loopback servers ---------------------------------------------------------------------------------------

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}


def openreplay_start() -> dict[str, Any]:
    """What OpenReplay's /v1/web/start answers a tracker whose project records (it sends nothing without it)."""
    now = int(time.time() * 1000)
    return {"token": "bench-token", "userUUID": "bench-user", "projectID": "1", "sessionID": str(now),
            "startTimestamp": now, "delay": 0, "beaconSizeLimit": 3_000_000, "compressionThreshold": 24_000}


def posthog_config() -> dict[str, Any]:
    """PostHog's remote config (and /flags) for a project with replay, console and network capture on: the
    recorder starts only when the server says so."""
    recording = {"endpoint": "/s/", "consoleLogRecordingEnabled": True, "recorderVersion": "v2", "sampleRate": None,
                 "minimumDurationMilliseconds": None, "linkedFlag": None,
                 "networkPayloadCapture": {"recordHeaders": True, "recordBody": True}, "urlTriggers": [],
                 "urlBlocklist": [], "eventTriggers": [], "scriptConfig": None}
    return {"token": "phc_bench", "supportedCompression": ["gzip", "gzip-js"], "hasFeatureFlags": False,
            "captureDeadClicks": True, "capturePerformance": {"network_timing": True, "web_vitals": True},
            "autocapture_opt_out": False, "autocaptureExceptions": True, "analytics": {"endpoint": "/i/v0/e/"},
            "elementsChainAsString": True, "errorTracking": {"autocaptureExceptions": True},
            "sessionRecording": recording, "heatmaps": True, "surveys": False, "defaultIdentifiedOnly": False,
            "flags": {}, "featureFlags": {}, "featureFlagPayloads": {}, "errorsWhileComputingFlags": False}


def highlight_answer(body: bytes) -> dict[str, Any] | None:
    """highlight.run's GraphQL backend: initializeSession must echo the session's secure id."""
    try:
        request = json.loads(body)
    except ValueError:
        return None
    if not isinstance(request, dict) or "query" not in request:
        return None
    operation = request.get("operationName") or ""
    if operation == "initializeSession":
        secure_id = (request.get("variables") or {}).get("session_secure_id", "bench")
        return {"data": {"initializeSession": {"secure_id": secure_id, "project_id": "1", "sampling": None}}}
    if operation == "GetSamplingConfig":
        return {"data": {"sampling": None}}
    return {"data": {operation: None}}


def boot_answer(path: str, body: bytes) -> dict[str, Any] | None:
    if path.endswith("/v1/web/start"):
        return openreplay_start()
    if path.startswith(("/flags", "/decide")) or (path.startswith("/array/") and "/config" in path):
        return posthog_config()
    return highlight_answer(body) if body[:1] == b"{" else None


class QuietServer(ThreadingHTTPServer):
    """A threading server that does not print a traceback when the browser drops a connection (a reload or a
    closed page aborts requests in flight)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class CountingSink:
    """A loopback HTTP server that counts request bodies as received. It answers 200 (or a peer's start
    handshake), answers CORS preflights, and 404s script requests (it is not a CDN); with `upstream` set it
    forwards every request there instead (the real replayql server) and relays the answer."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.upstream: tuple[str, int] | None = None
        self.body_bytes = self.requests = 0
        self.by_path: dict[str, tuple[int, int]] = {}
        self.script_requests: list[str] = []
        self.plain_bodies: list[bytes] = []
        self.lock = threading.Lock()
        self.httpd = QuietServer(("127.0.0.1", self.port), self._handler())
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def count(self, path: str, body: bytes, encoding: str) -> None:
        with self.lock:
            self.requests += 1
            self.body_bytes += len(body)
            key = path.split("?")[0]
            count, size = self.by_path.get(key, (0, 0))
            self.by_path[key] = (count + 1, size + len(body))
            plain = body
            if body[:2] == b"\x1f\x8b" and encoding != "br":
                with contextlib.suppress(OSError, EOFError, zlib.error):  # kept as sent when it is not gzip
                    plain = gzip.decompress(body)
            self.plain_bodies.append(plain)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_OPTIONS(self) -> None:  # the standard library's names
                if sink.upstream:
                    return self._forward(b"")
                self._answer(204, b"", "text/plain")

            def do_GET(self) -> None:
                self._any()

            def do_POST(self) -> None:
                self._any()

            def do_PUT(self) -> None:
                self._any()

            def _any(self) -> None:
                body = self._body()
                if sink.upstream:
                    sink.count(self.path, body, self.headers.get("content-encoding", ""))
                    return self._forward(body)
                if self.command == "GET" and self.path.split("?")[0].endswith(".js"):
                    sink.script_requests.append(self.path)
                    return self._answer(404, b"not a CDN", "text/plain")
                sink.count(self.path, body, self.headers.get("content-encoding", ""))
                answer = boot_answer(self.path, body)
                self._answer(200, json.dumps(answer if answer is not None else {}).encode(), "application/json")

            def _body(self) -> bytes:
                if self.headers.get("transfer-encoding", "").lower() == "chunked":
                    chunks = []
                    while size := int(self.rfile.readline().strip() or b"0", 16):
                        chunks.append(self.rfile.read(size))
                        self.rfile.readline()
                    self.rfile.readline()
                    return b"".join(chunks)
                return self.rfile.read(int(self.headers.get("content-length") or 0))

            def _answer(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                origin = self.headers.get("origin") or "*"
                self.send_header("access-control-allow-origin", origin)
                self.send_header("access-control-allow-credentials", "true")
                self.send_header("access-control-allow-methods", "GET, POST, PUT, OPTIONS")
                self.send_header("access-control-allow-headers",
                                 self.headers.get("access-control-request-headers") or "*")
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _forward(self, body: bytes) -> None:
                assert sink.upstream is not None
                connection = http.client.HTTPConnection(*sink.upstream, timeout=30)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                connection.request(self.command, self.path, body=body or None, headers=headers)
                response = connection.getresponse()
                payload = response.read()
                connection.close()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class StaticSite:
    """The shop: `files` by path; /api/* answers 500 (the failing fetch); any other path is the SPA's page."""

    def __init__(self) -> None:
        self.port = free_port()
        self.files: dict[str, bytes] = {}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path.startswith("/api/"):
                    return self._send(500, b'{"error": "recommendations are down"}', "application/json")
                body = site.files.get(path, site.files.get("/", b""))
                kind = "text/javascript" if path.endswith(".js") else "text/html; charset=utf-8"
                self._send(200, body, kind)

            def _send(self, status: int, body: bytes, content_type: str) -> None:
                self.send_response(status)
                self.send_header("content-type", content_type)
                self.send_header("content-length", str(len(body)))
                self.send_header("cache-control", "no-store")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = QuietServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- building the bundles ------------------------------------------------------------------------------------


def wait_for_sdk_build(timeout_s: float, poll_s: float = 120.0) -> None:
    """The SDK is built by another engineer's `npm run build` (which empties sdk/dist first): wait for it."""
    deadline = time.monotonic() + timeout_s
    while not SDK_DIST.exists():
        if time.monotonic() > deadline:
            raise SystemExit(f"{SDK_DIST.relative_to(REPO)} is not there; run `cd sdk && npm run build`")
        print(f"waiting for {SDK_DIST.relative_to(REPO)} ...", flush=True)
        time.sleep(poll_s)
    time.sleep(2)  # a build that is writing dist/ right now finishes


def build_bundles() -> dict[str, Bundle]:
    if not (PEERS_DIR / "node_modules").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=PEERS_DIR, check=True)
    done = subprocess.run(["node", "build.mjs"], cwd=PEERS_DIR, check=True, capture_output=True, text=True)
    built = json.loads(done.stdout.strip().splitlines()[-1])
    bundles = {}
    for name, info in built.items():
        data = (PEERS_DIR / info["bundle"]).read_bytes()
        bundles[name] = Bundle(name, info["package"], info["version"], PEERS_DIR / info["bundle"], len(data),
                               len(gzip.compress(data, compresslevel=9, mtime=0)))
    return bundles


def package_file_sizes(relative: str) -> dict[str, int] | None:
    """Min and gzip bytes of one file of an installed peer package (what it fetches at run time)."""
    path = PEERS_DIR / "node_modules" / relative
    if not path.exists():
        return None
    data = path.read_bytes()
    return {"min_bytes": len(data), "gzip_bytes": len(gzip.compress(data, compresslevel=9, mtime=0))}


# -- the shop page ---------------------------------------------------------------------------------------------


def shop_files(bundle_url: str | None, endpoint: str, closed_url: str) -> dict[str, bytes]:
    """index.html with replayql's script tags replaced by the SDK's bundle (or none), and shop.js calling the
    SDK through `sdk` (each entry exposes identify/track/flush there)."""
    html = (SHOP_DIR / "index.html").read_text()
    start, end = html.index('  <script src="__REPLAYQL__'), html.index("</script>\n</head>")
    config = f"<script>window.BENCH = {json.dumps({'endpoint': endpoint})};</script>\n"
    tag = (f'  <script src="{bundle_url}"></script>\n' if bundle_url else
           "  <script>window.sdk = {identify() {}, track() {}, flush() {}};</script>\n")
    html = html[:start] + "  " + config + tag + html[end + len("</script>\n"):]
    script = (SHOP_DIR / "shop.js").read_text().replace("__CLOSED__", closed_url).replace("replayql.", "sdk.")
    return {"/": html.encode(), "/shop.js": script.encode(), "/blank": b"<!doctype html><title>blank</title>"}


# -- the browser run -------------------------------------------------------------------------------------------


LONG_TASKS = """window.__benchLongTaskMs = 0;
new PerformanceObserver((list) => { for (const e of list.getEntries()) window.__benchLongTaskMs += e.duration; })
  .observe({type: 'longtask', buffered: true});"""


def browse_once(page: Any, first: bool) -> float:
    """One pass of the scripted user (tests/test_sdk_browser.py's, with mouse moves, slower typing and a
    console log); ends with a reload. Returns the long-task ms of the page before the reload."""
    if not first:
        page.click("#nav-home")
    for x, y in ((200, 150), (420, 300), (120, 380)):
        page.mouse.move(x, y, steps=12)
    page.click("#nav-products")  # an SPA route change (history.pushState)
    page.locator("#search").press_sequentially(SECRETS[0], delay=40)
    page.locator("#pw").press_sequentially(SECRETS[1], delay=40)
    for _ in range(4):  # a rage click
        page.click("#rage", delay=20)
    page.wait_for_timeout(1_200)
    page.click(".banner")  # a dead click
    page.wait_for_timeout(1_500)
    with page.expect_response(lambda r: r.url.endswith("/api/recommendations")):
        page.click("#load-fail")
    page.click("#load-closed")
    page.wait_for_selector("#status:has-text('offline')")
    page.evaluate("() => console.log('checkout step', {step: 3, items: 2})")
    page.click("#break")  # an uncaught TypeError
    page.click("#reject")  # an unhandled rejection
    page.click("#signin")  # identify
    page.click("#buy")  # track
    page.wait_for_timeout(300)
    long_tasks = float(page.evaluate("() => window.__benchLongTaskMs"))
    page.reload()
    page.wait_for_function("() => window.sdk !== undefined")
    page.wait_for_timeout(500)
    return long_tasks


def sdk_time_ms(profile: dict[str, Any], urls: set[str]) -> tuple[float, float]:
    """(self ms of frames from `urls`, that plus url-less native frames whose nearest named caller is one)."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    parent = {child: n["id"] for n in profile["nodes"] for child in n.get("children", [])}
    spent: dict[int, float] = {}
    samples, deltas = profile["samples"], profile["timeDeltas"]
    for i in range(len(samples) - 1):  # a sample lasts until the next one
        spent[samples[i]] = spent.get(samples[i], 0.0) + deltas[i + 1] / 1000

    owner: dict[int, bool] = {}

    def is_sdk(node_id: int) -> bool:
        if node_id not in owner:
            frame = nodes[node_id]["callFrame"]
            if frame["url"]:
                owner[node_id] = frame["url"] in urls
            elif frame["functionName"] in IDLE_NODES or node_id not in parent:
                owner[node_id] = False
            else:
                owner[node_id] = is_sdk(parent[node_id])
        return owner[node_id]

    own = sum(ms for node_id, ms in spent.items() if nodes[node_id]["callFrame"]["url"] in urls)
    attributed = sum(ms for node_id, ms in spent.items() if is_sdk(node_id))
    return own, attributed


def launch_args(shop_origin: str) -> list[str]:
    # shop.test is loopback; every other name resolves to nothing, so no SDK can reach a CDN or its cloud
    return ["--no-sandbox", f"--host-resolver-rules=MAP {SHOP_HOST} 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
            f"--unsafely-treat-insecure-origin-as-secure={shop_origin}",  # as on a real https site
            "--disable-blink-features=AutomationControlled",  # navigator.webdriver false, as for a real user
            # a new RenderFrameHost per document ends the CDP profile at the first reload; one host keeps it going
            "--disable-features=RenderDocument"]


def user_agent(version: str) -> str:
    """A desktop Chrome's user agent: SDKs drop what a "HeadlessChrome" or webdriver browser does as a bot's."""
    return (f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{version} "
            "Safari/537.36")


def run_browser(playwright: Any, shop_origin: str, bundle_url: str | None, seconds: float,
                measured: Measured) -> None:
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=launch_args(shop_origin),
                                         ignore_default_args=["--enable-automation"])
    measured.browser_version = browser.version
    page = browser.new_page(user_agent=user_agent(browser.version))
    page.add_init_script(LONG_TASKS)
    watch_page(page, measured)
    page.goto(shop_origin + "/blank")  # the shop's origin first: the profiler then sees the SDK's first load
    cdp = page.context.new_cdp_session(page)
    cdp.send("Profiler.enable")
    cdp.send("Profiler.setSamplingInterval", {"interval": PROFILE_INTERVAL_US})
    cdp.send("Profiler.start")
    started = time.monotonic()
    page.goto(shop_origin + "/")
    page.wait_for_function("() => window.sdk !== undefined")
    while measured.iterations == 0 or time.monotonic() - started < seconds:
        measured.long_task_ms += browse_once(page, first=measured.iterations == 0)
        measured.iterations += 1
    measured.seconds = time.monotonic() - started
    measured.long_task_ms += float(page.evaluate("() => window.__benchLongTaskMs"))
    profile = cdp.send("Profiler.stop")["profile"]
    measured.profile_seconds = (profile["endTime"] - profile["startTime"]) / 1e6  # must span the whole run
    if bundle_url:
        measured.sdk_self_ms, measured.sdk_attributed_ms = sdk_time_ms(profile, {bundle_url})
    page.close()  # pagehide: what an SDK still buffers goes out now
    browser.close()


def watch_page(page: Any, measured: Measured) -> None:
    def on_request(request: Any) -> None:
        host = request.url.split("/")[2].split(":")[0] if "://" in request.url else ""
        if host not in (SHOP_HOST, "127.0.0.1") and not request.url.startswith(("data:", "blob:")):
            measured.offsite.append(request.url)

    page.on("request", on_request)
    page.on("pageerror", lambda error: setattr(measured, "page_errors", measured.page_errors + 1))
    page.on("console", lambda message: measured.console.append(message.text[:200])
            if message.type in ("warning", "error") and len(measured.console) < 40 else None)


# -- one SDK -----------------------------------------------------------------------------------------------------


def measure(name: str, bundle: Bundle | None, seconds: float, tmp: Path) -> Measured:
    from playwright.sync_api import sync_playwright

    measured = Measured()
    server: ServerProcess | None = None
    sink = CountingSink()
    closed_url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    shop = StaticSite()
    shop_origin = f"http://{SHOP_HOST}:{shop.port}"
    try:
        if name == "replayql":
            server = start_replayql(tmp, shop_origin)
            sink.upstream = ("127.0.0.1", server.port)  # forward to the real server, count on the way
        bundle_url = f"{shop_origin}/sdk/{name}.js" if bundle else None
        shop.files = shop_files(bundle_url and f"/sdk/{name}.js", sink.url, closed_url)
        if bundle:
            shop.files[f"/sdk/{name}.js"] = bundle.path.read_bytes()
        with sync_playwright() as playwright:
            run_browser(playwright, shop_origin, bundle_url, seconds, measured)
        time.sleep(2.0)  # beacons and keepalive requests sent at pagehide land
        collect(sink, measured)
    finally:
        sink.close()
        shop.close()
        if server is not None:
            server.__exit__(None, None, None)
    return measured


def start_replayql(tmp: Path, shop_origin: str) -> ServerProcess:
    data_dir = tmp / "replayql"
    data_dir.mkdir()
    cli("apps", "create", "shop", data_dir=data_dir)
    cli("apps", "origins", "shop", "--allow", shop_origin, data_dir=data_dir)
    return ServerProcess(data_dir).__enter__()


def collect(sink: CountingSink, measured: Measured) -> None:
    measured.bytes_sent = sink.body_bytes
    measured.requests = sink.requests
    measured.by_path = {path: [count, size] for path, (count, size) in sorted(sink.by_path.items())}
    measured.script_requests = sorted(set(sink.script_requests))
    measured.secrets_sent = any(secret.encode() in body for body in sink.plain_bodies for secret in SECRETS)


# -- the report ----------------------------------------------------------------------------------------------------


def status_of(name: str, measured: Measured) -> tuple[bool, str]:
    """Whether the SDK sent anything at all offline, and why not if it did not."""
    if name == "baseline":
        return True, "no SDK on the page"
    if name == "logrocket" and measured.bytes_sent == 0:
        return False, "cannot run offline: " + NOTES["logrocket"]
    if name == "posthog" and measured.script_requests:
        return False, "no recording offline: " + NOTES["posthog"]
    if measured.bytes_sent == 0:
        return False, "sent nothing"
    return True, NOTES.get(name, "")


def result_row(name: str, bundle: Bundle | None, measured: Measured) -> dict[str, Any]:
    ran, status = status_of(name, measured)
    return {
        "sdk": name, "label": LABELS[name], "package": bundle.package if bundle else None,
        "version": bundle.version if bundle else None,
        "bundle": str(bundle.path.relative_to(REPO)) if bundle else None,
        "min_bytes": bundle.min_bytes if bundle else 0, "gzip_bytes": bundle.gzip_bytes if bundle else 0,
        "records_offline": ran, "status": status, "seconds": round(measured.seconds, 1),
        "iterations": measured.iterations, "profile_seconds": round(measured.profile_seconds, 1),
        "bytes_sent": measured.bytes_sent, "requests": measured.requests,
        "bytes_per_min": round(measured.per_minute(measured.bytes_sent)),
        "sdk_self_ms": round(measured.sdk_self_ms, 1),
        "sdk_self_ms_per_min": round(measured.per_minute(measured.sdk_self_ms), 1),
        "sdk_with_native_ms_per_min": round(measured.per_minute(measured.sdk_attributed_ms), 1),
        "long_task_ms": round(measured.long_task_ms, 1),
        "long_task_ms_per_min": round(measured.per_minute(measured.long_task_ms), 1),
        "requests_by_path": measured.by_path, "script_requests_answered_404": measured.script_requests,
        "offsite_requests_blocked": sorted(set(measured.offsite)), "page_errors": measured.page_errors,
        "typed_secrets_in_plain_bodies": measured.secrets_sent, "console_warnings": measured.console[:10],
    }


def table(rows: list[dict[str, Any]]) -> str:
    header = ["SDK", "version", "min KB", "gzip KB", "bytes sent/min", "SDK main-thread ms/min",
              "with native calls ms/min", "long-task ms/min"]
    lines = []
    for r in rows:
        ran = r["records_offline"]
        lines.append([r["label"], r["version"] or "-", fmt(r["min_bytes"] / 1024), fmt(r["gzip_bytes"] / 1024),
                      f"{r['bytes_per_min']:,}" if ran else "n/a*", fmt(r["sdk_self_ms_per_min"]) if ran else "n/a*",
                      fmt(r["sdk_with_native_ms_per_min"]) if ran else "n/a*",
                      fmt(r["long_task_ms_per_min"]) if ran else "n/a*"])
    notes = [f"\\* {r['label']}: {r['status']}" for r in rows if not r["records_offline"]]
    return markdown_table(header, lines) + ("\n\n" + "\n".join(notes) if notes else "")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=1.0, help="browsing time per SDK (default 1)")
    parser.add_argument("--baseline-minutes", type=float, default=0.5,
                        help="browsing time without an SDK (default 0.5: it only shows the page's own long tasks)")
    parser.add_argument("--sdks", default=",".join(ORDER), help=f"comma-separated subset of {', '.join(ORDER)}")
    parser.add_argument("--wait-build-s", type=float, default=1800, help="how long to wait for sdk/dist")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "sdk-compare.json")
    args = parser.parse_args()
    if shutil.which("node") is None:
        raise SystemExit("node is needed to bundle the SDKs")
    wait_for_sdk_build(args.wait_build_s)
    bundles = build_bundles()
    names = [n for n in ORDER if n in args.sdks.split(",")]
    load_before = load_average()
    rows, browsers = [], set()
    with tempfile.TemporaryDirectory(prefix="sdk-compare-") as tmp:
        for name in names:
            minutes = {"baseline": args.baseline_minutes}.get(name, 0 if name in PROBE_ONLY else args.minutes)
            print(f"{LABELS[name]}: browsing {minutes * 60:.0f} s ...", flush=True)  # a probe is one pass
            measured = measure(name, bundles.get(name), minutes * 60, Path(tmp))
            browsers.add(measured.browser_version)
            rows.append(result_row(name, bundles.get(name), measured))
    print(table(rows))
    write_result(args, rows, load_before, sorted(browsers))


def write_result(args: argparse.Namespace, rows: list[dict[str, Any]], load_before: list[float] | None,
                 browsers: list[str]) -> None:
    payload = {
        "benchmark": "sdk_compare",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "command": invocation(),
        "config": {"minutes": args.minutes, "baseline_minutes": args.baseline_minutes,
                   "profile_interval_us": PROFILE_INTERVAL_US, "browser": CHROMIUM, "chromium": browsers,
                   "bundling": "esbuild bundle, minify, iife, es2019, browser (bench/sdk_peers/build.mjs)",
                   "gzip_level": 9, "probe_only": sorted(PROBE_ONLY)},
        "lazy_loaded_files": {"posthog-js dist/lazy-recorder.js": package_file_sizes(
            "posthog-js/dist/lazy-recorder.js")},
        "machine": machine_info(), "load_before": load_before, "load_after": load_average(),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    shown = args.out.resolve().relative_to(REPO) if args.out.resolve().is_relative_to(REPO) else args.out.name
    print(f"wrote {shown}")


if __name__ == "__main__":
    main()
