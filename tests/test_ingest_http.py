"""The HTTP contract of POST /v1/ingest: status codes, error bodies, idempotency, clock skew and durability."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

import orjson
import pytest

from conftest import CONTEXT, T0, Location, Server, make_batch, start_server
from replayql.api.app import close_services
from replayql.config import MIB, FrustrationThresholds, IngestLimits

URL = "https://shop.example/cart"
EVENT_TYPES = "page, click, input, console, network, error, custom, identify, vital, recording"
SESSION = """query($id: ID!, $sid: String!) {
  session(id: $id) { id eventCount pageCount clickCount startedAt endedAt durationMs }
  events(filter: {sessionId: {eq: $sid}}) { totalCount }
}"""
DEVICE = """query($id: ID!) { session(id: $id) {
  eventCount browser browserVersion os deviceType language timezone release viewport { width height } sdkName } }"""
DEVICE_FACTS = {"browser": "Chrome", "browserVersion": "120.0", "os": "macOS", "deviceType": "DESKTOP",
                "language": "en-US", "timezone": "Europe/Berlin", "release": "1.4.2",
                "viewport": {"width": 1440, "height": 900}, "sdkName": "replayql-browser"}


def page(ts: int = T0, **fields: Any) -> dict[str, Any]:
    return {"type": "page", "ts": ts, "url": URL, **fields}


def click(ts: int = T0 + 1_000, **fields: Any) -> dict[str, Any]:
    return {"type": "click", "ts": ts, "selector": "button#checkout", **fields}


def batch(session_id: str = "s-1", *events: dict[str, Any], **options: Any) -> dict[str, Any]:
    """A valid batch (a page and a click unless events are given), sent at T0 + 1 s unless told otherwise."""
    options.setdefault("sent_at", T0 + 1_000)
    return make_batch(session_id, list(events) or [page(), click()], **options)


def stored(server: Server, session_id: str) -> tuple[dict[str, Any] | None, int]:
    """The session's summary (None if absent) and how many of its events the events query finds."""
    data = server.data(SESSION, {"id": session_id, "sid": session_id})
    return data["session"], data["events"]["totalCount"]


def epoch_ms(iso: str) -> int:
    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def rejected(server: Server, body: dict[str, Any] | bytes, **headers: str) -> dict[str, Any]:
    response = server.ingest(body, **headers)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/json"
    return response.json()


@pytest.fixture
def limited(where: Callable[[str], Location]) -> Iterator[Callable[..., Server]]:
    """Opens servers with overridden ingest limits; closes them all afterwards."""
    opened: list[Server] = []

    def open_server(**limits: Any) -> Server:
        opened.append(start_server(where(f"limited-{len(opened)}"), limits=IngestLimits(**limits)))
        return opened[-1]

    yield open_server
    for running in opened:
        close_services(running.services)


# -- accepted batches ------------------------------------------------------------------------------------------

def test_accepted_batch_answers_small_json_and_is_queryable(server: Server) -> None:
    response = server.ingest(batch("s-ok"))
    assert response.status_code == 200
    assert response.json() == {"ok": True, "sessionId": "s-ok", "seq": 0, "outcome": "stored", "events": 2}
    session, total = stored(server, "s-ok")
    assert session is not None and total == 2
    counts = (session["eventCount"], session["pageCount"], session["clickCount"], session["durationMs"])
    assert counts == (2, 1, 1, 1000)


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "text/plain"])
def test_json_sent_as_plain_text_or_with_charset_is_accepted(server: Server, content_type: str) -> None:
    assert server.ingest(batch("s-ct"), **{"content-type": content_type}).status_code == 200  # sendBeacon: text/plain


def test_edge_values_inside_the_limits_are_accepted(server: Server) -> None:
    events = [page(T0 - 86_400_000), click(T0 + 60_000),  # exactly the allowed skew either side of sentAt
              {"type": "console", "ts": T0, "level": "log", "message": "m" * 65_536},
              {"type": "error", "ts": T0, "message": "boom", "stack": "s" * 100_000},  # stacks have their own cap
              {"type": "network", "ts": T0, "method": "GET", "url": URL, "status": 0, "durationMs": 0}]
    assert server.ingest(batch("s-edge", *events, sent_at=T0)).status_code == 200
    assert stored(server, "s-edge")[1] == 5


# -- 400: every bad event named by index and field -------------------------------------------------------------

BAD_EVENTS = {
    "ts as string": ({"type": "page", "ts": str(T0), "url": URL}, "ts", "Expected `int`, got `str`"),
    "missing ts": ({"type": "page", "url": URL}, "ts", "Object missing required field `ts`"),
    "unknown type": ({"type": "scroll", "ts": T0}, "type", f"Invalid value 'scroll'; expected one of: {EVENT_TYPES}"),
    "missing type": ({"ts": T0, "url": URL}, "type", "Object missing required field `type`"),
    "ts far before sentAt": (page(T0 - 86_400_001), "ts",
                             "is -86400001 ms from sentAt; allowed range is -86400000 to +60000 ms"),
    "ts far after sentAt": (page(T0 + 60_001), "ts",
                            "is +60001 ms from sentAt; allowed range is -86400000 to +60000 ms"),
    "oversize message": ({"type": "console", "ts": T0, "level": "warn", "message": "m" * 65_537}, "message",
                         "is 65537 characters; the limit is 65536"),
    "unknown event field": (click(T0, colour="red"), "colour", "Object contains unknown field `colour`"),
    "bad vital name": ({"type": "vital", "ts": T0, "name": "FPS", "value": 60}, "name", "Invalid enum value 'FPS'"),
    "negative vital": ({"type": "vital", "ts": T0, "name": "CLS", "value": -0.1}, "value",
                       "must be a finite number >= 0"),
    "negative duration": ({"type": "network", "ts": T0, "method": "GET", "url": URL, "durationMs": -5}, "durationMs",
                          "must be between 0 and 86400000"),
    "status above range": ({"type": "network", "ts": T0, "method": "GET", "url": URL, "status": 1000}, "status",
                           "must be an HTTP status code from 0 to 999"),
    "negative status": ({"type": "network", "ts": T0, "method": "GET", "url": URL, "status": -1}, "status",
                        "must be an HTTP status code from 0 to 999"),
    "bad console level": ({"type": "console", "ts": T0, "level": "fatal", "message": "x"}, "level",
                          "Invalid enum value 'fatal'"),
    "empty url": (page(T0, url=""), "url", "must not be empty"),
}


@pytest.mark.parametrize(("event", "field", "message"), BAD_EVENTS.values(), ids=BAD_EVENTS.keys())
def test_bad_event_is_named_by_index_and_field(server: Server, event: dict[str, Any], field: str,
                                               message: str) -> None:
    body = rejected(server, batch("s-bad", page(), event, sent_at=T0))
    assert body == {"error": "batch rejected: 1 invalid field(s)",
                    "errors": [{"index": 1, "field": field, "message": message}]}
    assert stored(server, "s-bad") == (None, 0)


def test_vital_value_beyond_float_range_is_named(server: Server) -> None:
    raw = orjson.dumps(batch("s-inf", {"type": "vital", "ts": T0, "name": "LCP", "value": "INF"}, sent_at=T0))
    body = rejected(server, raw.replace(b'"INF"', b"1e999"))  # parses to infinity: not a finite number
    assert body == {"error": "batch rejected: 1 invalid field(s)",
                    "errors": [{"index": 0, "field": "value", "message": "Number out of range"}]}


BAD_ENVELOPES: dict[str, tuple[dict[str, Any], str, str, str]] = {
    "bad sessionId characters": ({"sessionId": "s 1/x"}, "batch rejected: 1 invalid field(s)", "sessionId",
                                 "must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
    "sessionId too long": ({"sessionId": "s" * 129}, "batch rejected: 1 invalid field(s)", "sessionId",
                           "must be 1-128 characters of A-Z a-z 0-9 . _ : -"),
    "negative seq": ({"seq": -1}, "batch rejected: 1 invalid field(s)", "seq",
                     "must be an integer from 0 to 2147483647"),
    "seq 0 without context": ({"context": None}, "batch rejected: 1 invalid field(s)", "context",
                              "is required on a session's first batch (seq 0)"),
    "empty events": ({"events": []}, "batch rejected: 1 invalid field(s)", "events", "must contain at least one event"),
    "unknown envelope field": ({"userId": "u-1"}, "batch rejected: invalid envelope", "userId",
                               "Object contains unknown field `userId`"),
    "missing appId": ({"appId": None}, "batch rejected: invalid envelope", "appId",
                      "Object missing required field `appId`"),
    "unknown context field": ({"context": {**CONTEXT, "dpr": 2}}, "batch rejected: invalid envelope", "context.dpr",
                              "Object contains unknown field `dpr`"),
}


@pytest.mark.parametrize(("change", "error", "field", "message"), BAD_ENVELOPES.values(), ids=BAD_ENVELOPES.keys())
def test_bad_envelope_is_named_by_field(server: Server, change: dict[str, Any], error: str, field: str,
                                        message: str) -> None:
    body = {**batch("s-env"), **change}
    body = {k: v for k, v in body.items() if v is not None}  # None means: leave the field out
    assert rejected(server, body) == {"error": error, "errors": [{"field": field, "message": message}]}
    assert server.data("{ sessions { totalCount } }")["sessions"]["totalCount"] == 0


def test_sent_at_after_2100_is_named(server: Server) -> None:
    late = 4_102_444_800_001  # 2100-01-01 plus 1 ms: a broken clock; the events agree with it, so only sentAt is named
    assert rejected(server, batch("s-2100", page(late), sent_at=late)) == {
        "error": "batch rejected: 1 invalid field(s)",
        "errors": [{"field": "sentAt", "message": "must be epoch milliseconds between 2000 and 2100"}]}


def test_too_many_events(limited: Callable[..., Server]) -> None:
    server = limited(max_events_per_batch=3)
    assert server.ingest(batch("s-3", page(), click(), click(T0), sent_at=T0)).status_code == 200
    body = rejected(server, batch("s-4", page(), click(), click(T0), page(T0), sent_at=T0))
    assert body == {"error": "batch rejected: 1 invalid field(s)",
                    "errors": [{"field": "events", "message": "has 4 events; the limit is 3 per batch"}]}


def test_oversize_string_uses_the_configured_limit(limited: Callable[..., Server]) -> None:
    server = limited(max_string_chars=30)  # URL and selector stay under it
    assert server.ingest(batch("s-5", page(), click(T0, text="t" * 30), sent_at=T0)).status_code == 200
    body = rejected(server, batch("s-6", page(), click(T0, text="t" * 31), sent_at=T0))
    assert body["errors"] == [{"index": 1, "field": "text", "message": "is 31 characters; the limit is 30"}]


def test_several_bad_events_are_all_named(server: Server) -> None:
    events = [page(), {"type": "page", "ts": "now", "url": URL}, click(T0), {"type": "hover", "ts": T0},
              {"type": "console", "ts": T0 + 120_000, "level": "log", "message": "m" * 65_537}]
    body = rejected(server, batch("bad id!", *events, sent_at=T0))
    assert body == {"error": "batch rejected: 5 invalid field(s)", "errors": [
        {"field": "sessionId", "message": "must be 1-128 characters of A-Z a-z 0-9 . _ : -"},
        {"index": 1, "field": "ts", "message": "Expected `int`, got `str`"},
        {"index": 3, "field": "type", "message": f"Invalid value 'hover'; expected one of: {EVENT_TYPES}"},
        {"index": 4, "field": "ts", "message": "is +120000 ms from sentAt; allowed range is -86400000 to +60000 ms"},
        {"index": 4, "field": "message", "message": "is 65537 characters; the limit is 65536"},
    ]}


def test_every_bad_field_of_one_event_is_named(server: Server) -> None:
    network = {"type": "network", "ts": T0, "method": "GET", "url": "", "status": 1000, "durationMs": -1,
               "requestBytes": -5, "responseBytes": -6}
    body = rejected(server, batch("s-1", page(), network))
    assert body["errors"] == [
        {"index": 1, "field": "url", "message": "must not be empty"},
        {"index": 1, "field": "status", "message": "must be an HTTP status code from 0 to 999"},
        {"index": 1, "field": "durationMs", "message": "must be between 0 and 86400000"},
        {"index": 1, "field": "requestBytes", "message": "must be from 0 to 9007199254740992"},
        {"index": 1, "field": "responseBytes", "message": "must be from 0 to 9007199254740992"},
    ]


def test_rejected_batch_stores_nothing_and_does_not_burn_its_seq(server: Server) -> None:
    good = [page(), click(), page(T0 + 500, url="https://shop.example/checkout")]
    assert rejected(server, batch("s-mix", *good, {"type": "page", "ts": T0}))["errors"][0]["index"] == 3
    assert stored(server, "s-mix") == (None, 0)
    assert server.data("{ sessions { totalCount } }")["sessions"]["totalCount"] == 0
    response = server.ingest(batch("s-mix", *good))  # the corrected retry is new, not a duplicate
    assert response.json()["outcome"] == "stored"
    rejected(server, batch("s-mix", page(T0 + 900), click(T0 + 900, x="left"), seq=1))  # a later batch, refused
    session, total = stored(server, "s-mix")
    assert session is not None and (session["eventCount"], total) == (3, 3)


# -- 404, 413, 415 and content encodings -----------------------------------------------------------------------

def test_unknown_app_is_404_naming_it(server: Server) -> None:
    response = server.ingest(batch("s-404", app_id="no-such-app"))
    assert response.status_code == 404
    assert response.json() == {
        "error": "unknown appId 'no-such-app'; create it with `replayql apps create no-such-app`"}
    assert stored(server, "s-404") == (None, 0)


def test_body_over_the_limit_is_413_and_the_server_keeps_serving(limited: Callable[..., Server]) -> None:
    server = limited(max_body_bytes=2048)
    big = orjson.dumps(batch("s-big", {"type": "console", "ts": T0, "level": "log", "message": "x" * 3000}))
    response = server.ingest(big)
    assert response.status_code == 413
    assert response.json() == {"error": f"request body is {len(big)} bytes; the limit is 2048"}
    streamed = server.client.post("/v1/ingest", content=iter([big[:1000], big[1000:]]),  # chunked: no length
                                  headers={"content-type": "application/json"})
    assert (streamed.status_code, streamed.json()) == (413, {"error": "request body exceeds 2048 bytes"})
    assert server.ingest(batch("s-small")).status_code == 200
    assert stored(server, "s-big") == (None, 0)


def test_gzip_bomb_is_413_and_the_server_keeps_serving(server: Server) -> None:
    bomb = gzip.compress(b" " * (21 * MIB), compresslevel=9)  # inflates past the default 20 MiB cap
    assert len(bomb) < 64 * 1024
    response = server.ingest(bomb, **{"content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json() == {"error": f"decompressed body exceeds {20 * MIB} bytes"}
    assert server.ingest(batch("s-after-bomb")).status_code == 200


def test_gzip_encoded_batch_is_accepted(server: Server) -> None:
    body = gzip.compress(orjson.dumps(batch("s-gz")))
    response = server.ingest(body, **{"content-encoding": "gzip"})
    assert response.status_code == 200 and response.json()["events"] == 2
    assert stored(server, "s-gz")[1] == 2


@pytest.mark.parametrize(("body", "error"), [
    (b"this is not gzip data", "request body is not valid gzip data: Error -3 while decompressing data: "
                               "incorrect header check"),
    (gzip.compress(orjson.dumps(batch("s-cut")))[:-20], "request body is truncated gzip data"),
], ids=["not gzip", "truncated"])
def test_corrupt_gzip_is_400(server: Server, body: bytes, error: str) -> None:
    assert rejected(server, body, **{"content-encoding": "gzip"}) == {"error": error}


@pytest.mark.parametrize(("body", "headers", "error"), [
    (b"appId=demo&seq=0", {}, "request body is not JSON: JSON is malformed: invalid character (byte 0)"),
    (orjson.dumps(batch("s-html")), {"content-type": "text/html"},
     "Content-Type 'text/html' is not JSON; send application/json"),
    (orjson.dumps(batch("s-br")), {"content-encoding": "br"}, "unsupported Content-Encoding 'br'; use gzip or none"),
], ids=["not json", "text/html", "brotli"])
def test_unsupported_media_is_415(server: Server, body: bytes, headers: dict[str, str], error: str) -> None:
    response = server.ingest(body, **headers)
    assert (response.status_code, response.json()) == (415, {"error": error})


def test_server_keeps_serving_after_every_bad_input(server: Server) -> None:
    bad: list[tuple[bytes, dict[str, str], int]] = [
        (b"{", {}, 415), (b"[]", {}, 400), (b"null", {}, 400), (b"\xff\xfe", {}, 415),
        (orjson.dumps(batch("s-x", app_id="ghost")), {}, 404),
        (orjson.dumps(batch("s-x", page(T0 + 9_999_999))), {}, 400),
        (b"garbage", {"content-encoding": "gzip"}, 400), (b"{}", {"content-type": "image/png"}, 415),
        (gzip.compress(b"0" * (21 * MIB)), {"content-encoding": "gzip"}, 413),
    ]
    for body, headers, status in bad:
        response = server.ingest(body, **headers)
        assert response.status_code == status, (body[:40], response.text)
        assert "error" in response.json()
    assert server.ingest(batch("s-alive")).status_code == 200
    assert stored(server, "s-alive")[1] == 2
    assert server.data("{ sessions { totalCount } }")["sessions"]["totalCount"] == 1


# -- idempotency and context -----------------------------------------------------------------------------------

def test_retried_batch_is_acknowledged_and_stored_once(server: Server) -> None:
    first, second = server.ingest(batch("s-dup")), server.ingest(batch("s-dup"))
    assert (first.status_code, second.status_code) == (200, 200)
    assert first.json()["outcome"] == "stored"
    assert second.json() == {"ok": True, "sessionId": "s-dup", "seq": 0, "outcome": "duplicate", "events": 2}
    session, total = stored(server, "s-dup")
    assert session is not None and (session["eventCount"], session["clickCount"], total) == (2, 1, 2)


def test_same_session_different_seq_are_both_stored(server: Server) -> None:
    assert server.ingest(batch("s-seq")).json()["outcome"] == "stored"
    later = batch("s-seq", page(T0 + 2_000), click(T0 + 3_000, selector="a#home"), click(T0 + 3_500, selector="a#faq"),
                  seq=1, sent_at=T0 + 3_500)  # other selectors: no derived rage-click event joins the events list
    assert server.ingest(later).json()["outcome"] == "stored"
    session, total = stored(server, "s-seq")
    assert session is not None
    assert (session["eventCount"], session["pageCount"], session["clickCount"], total) == (5, 2, 3, 5)


def test_same_session_id_and_seq_in_another_app_is_not_a_duplicate(server: Server) -> None:
    assert server.ingest(batch("s-shared")).json()["outcome"] == "stored"
    assert server.ingest(batch("s-shared", app_id="other")).json()["outcome"] == "stored"
    assert server.data(SESSION, {"id": "s-shared", "sid": "s-shared"}, key="other")["events"]["totalCount"] == 2
    assert stored(server, "s-shared")[1] == 2


def test_context_optional_after_seq_0_and_device_facts_kept(server: Server) -> None:
    assert server.ingest(batch("s-ctx")).status_code == 200
    later = batch("s-ctx", page(T0 + 5_000), seq=1, sent_at=T0 + 5_000)
    assert "context" not in later
    assert server.ingest(later).status_code == 200
    assert server.data(DEVICE, {"id": "s-ctx"})["session"] == {"eventCount": 3, **DEVICE_FACTS}


# -- clock skew ------------------------------------------------------------------------------------------------

def test_client_clock_one_hour_behind_is_corrected(server: Server) -> None:
    hour = 3_600_000
    client_now = int(time.time() * 1000) - hour
    events = [page(client_now - 4_000), click(client_now - 1_000)]
    before = int(time.time() * 1000)
    assert server.ingest(batch("s-skew", *events, sent_at=client_now)).status_code == 200
    after = int(time.time() * 1000) + 1
    session, _ = stored(server, "s-skew")
    assert session is not None
    # shifted by (receive time - sentAt): the receive time lies between `before` and `after`
    started, ended = epoch_ms(session["startedAt"]), epoch_ms(session["endedAt"])
    assert before - client_now - 1 <= started - (client_now - 4_000) <= after - client_now + 1
    assert abs(started - (before - 4_000)) < 5_000  # about an hour later than the client said
    assert (ended - started, session["durationMs"]) == (3_000, 3_000)


def test_client_clock_in_sync_keeps_exact_times(server: Server) -> None:
    now = int(time.time() * 1000)
    events = [page(now - 1_234), click(now - 17)]
    assert server.ingest(batch("s-sync", *events, sent_at=now)).status_code == 200
    session, _ = stored(server, "s-sync")
    assert session is not None
    assert (epoch_ms(session["startedAt"]), epoch_ms(session["endedAt"])) == (now - 1_234, now - 17)


# -- durability ------------------------------------------------------------------------------------------------

def test_batches_survive_a_restart_and_retries_stay_duplicates(where: Callable[[str], Location]) -> None:
    data_dir = where("durable")
    first = start_server(data_dir)
    try:
        assert first.ingest(batch("s-dur")).json()["outcome"] == "stored"
        assert first.ingest(batch("s-dur", page(T0 + 2_000), seq=1, sent_at=T0 + 2_000)).status_code == 200
    finally:
        close_services(first.services)
    second = start_server(data_dir)
    try:
        session, total = stored(second, "s-dur")
        assert session is not None and (session["eventCount"], total) == (3, 3)
        assert second.ingest(batch("s-dur")).json()["outcome"] == "duplicate"
        retry = batch("s-dur", page(T0 + 2_000), seq=1, sent_at=T0 + 2_000)
        assert second.ingest(retry).json()["outcome"] == "duplicate"
        assert stored(second, "s-dur")[1] == 3
    finally:
        close_services(second.services)


def test_other_methods_on_the_ingest_path_are_405(server: Server) -> None:
    response = server.client.get("/v1/ingest")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert response.json() == {"error": "send batches with POST"}


# -- backpressure -----------------------------------------------------------------------------------------------

def _hold_writer(server: Server) -> threading.Event:
    """Keep the writer thread busy (a write job, as a mutation is) until the event is set."""
    release = threading.Event()
    server.services.writer.run(lambda store: release.wait(60))
    return release


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail("the writer never reached the awaited state")
        time.sleep(0.01)


def test_a_full_queue_answers_503_with_retry_after_until_the_writer_catches_up(
        limited: Callable[..., Server]) -> None:
    waiting = [batch(f"s-bp{n}", page(T0, url="https://shop.example/" + "x" * 300)) for n in range(4)]
    size = len(orjson.dumps(waiting[0]))
    server = limited(max_queued_bytes=3 * size + size // 2)  # the fourth queued batch goes past it
    release = _hold_writer(server)
    with ThreadPoolExecutor(4) as pool:
        answers = [pool.submit(server.ingest, body) for body in waiting]
        _wait_until(lambda: server.services.writer.overloaded() is not None)
        refused = server.ingest(batch("s-late"))
        assert refused.status_code == 503 and refused.headers["retry-after"] == "1"
        assert "busy" in refused.json()["error"] and "bytes of batches are waiting" in refused.json()["error"]
        release.set()
        assert [a.result().json()["outcome"] for a in answers] == ["stored"] * 4
    assert server.ingest(batch("s-late")).json()["outcome"] == "stored"  # the resend after Retry-After
    assert [stored(server, s)[1] for s in ("s-late", "s-bp0", "s-bp1", "s-bp2", "s-bp3")] == [2, 1, 1, 1, 1]


def test_a_batch_that_waited_too_long_makes_new_ones_wait(limited: Callable[..., Server]) -> None:
    server = limited(max_queue_wait_ms=50)
    release = _hold_writer(server)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(server.ingest, batch("s-wait"))
        _wait_until(lambda: server.services.writer.overloaded() is not None)
        refused = server.ingest(batch("s-next"))
        assert refused.status_code == 503 and "has waited" in refused.json()["error"]
        release.set()
        assert first.result().json()["outcome"] == "stored"
    _wait_until(lambda: server.services.writer.overloaded() is None)  # answered: nothing is waiting any more
    assert server.ingest(batch("s-next")).json()["outcome"] == "stored"


# -- CORS ------------------------------------------------------------------------------------------------------

def test_cors_preflight_and_response_allow_any_origin(server: Server) -> None:
    preflight = server.client.options("/v1/ingest", headers={
        "origin": "https://shop.example", "access-control-request-method": "POST",
        "access-control-request-headers": "content-type, content-encoding"})
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-encoding" in preflight.headers["access-control-allow-headers"].lower()
    response = server.ingest(batch("s-cors"), origin="https://shop.example")
    assert response.status_code == 200 and response.headers["access-control-allow-origin"] == "*"


# -- configuration ---------------------------------------------------------------------------------------------

def test_frustration_thresholds_are_configurable(where: Callable[[str], Location]) -> None:
    """Two clicks make a rage click when the threshold says two; with the default three they do not."""
    clicks = [page(), click(T0 + 1_000), click(T0 + 1_200)]
    default = start_server(where("default"))
    strict = start_server(where("strict"), frustration=FrustrationThresholds(rage_click_count=2))
    try:
        for running in (default, strict):
            assert running.ingest(batch("s-rage", *clicks, sent_at=T0 + 5_000)).status_code == 200
        query = '{ session(id: "s-rage") { rageClickCount } }'
        assert default.data(query)["session"] == {"rageClickCount": 0}
        assert strict.data(query)["session"] == {"rageClickCount": 1}
    finally:
        close_services(default.services)
        close_services(strict.services)


def test_an_app_created_while_the_server_runs_is_accepted_at_once(server: Server) -> None:
    first = server.ingest(batch("s-new-app", app_id="late"))
    assert first.status_code == 404
    server.services.registry.create_app("late")
    assert server.ingest(batch("s-new-app", app_id="late")).json()["outcome"] == "stored"


# -- what the browser SDK relies on ----------------------------------------------------------------------------

def test_gzip_body_without_content_encoding_is_recognised(server: Server) -> None:
    """A beacon or a preflight-free fetch cannot set Content-Encoding: the gzip magic bytes say it."""
    body = gzip.compress(orjson.dumps(batch("s-magic")))
    response = server.ingest(body, **{"content-type": "text/plain;charset=UTF-8"})
    assert response.status_code == 200 and response.json()["events"] == 2
    assert stored(server, "s-magic")[1] == 2


def test_tab_id_in_the_context_is_accepted(server: Server) -> None:
    response = server.ingest(batch("s-tab", context={**CONTEXT, "tabId": "t-1x2y"}))
    assert response.status_code == 200, response.text


def test_network_headers_and_bodies_are_stored_when_sent(server: Server) -> None:
    sent = {"type": "network", "ts": T0 + 500, "method": "post", "url": "https://api.shop.example/orders",
            "status": 201, "durationMs": 40.5, "requestHeaders": {"content-type": "application/json"},
            "responseHeaders": {"x-request-id": "r-9"}, "requestBody": '{"sku": 7}', "responseBody": '{"id": 1}'}
    bare = {"type": "network", "ts": T0 + 600, "method": "GET", "url": "https://api.shop.example/cart"}
    assert server.ingest(batch("s-net", page(), sent, bare)).status_code == 200
    nodes = server.data("""{ session(id: "s-net") { networkRequests { nodes { ... on NetworkEvent {
        method status requestHeaders responseHeaders requestBody responseBody } } } } }""")
    assert nodes["session"]["networkRequests"]["nodes"] == [
        {"method": "POST", "status": 201, "requestHeaders": {"content-type": "application/json"},
         "responseHeaders": {"x-request-id": "r-9"}, "requestBody": '{"sku": 7}', "responseBody": '{"id": 1}'},
        {"method": "GET", "status": None, "requestHeaders": None, "responseHeaders": None, "requestBody": None,
         "responseBody": None}]


def test_too_many_network_headers_are_named(server: Server) -> None:
    headers = {f"x-h{n}": "v" for n in range(101)}
    event = {"type": "network", "ts": T0, "method": "GET", "url": URL, "responseHeaders": headers}
    body = rejected(server, batch("s-headers", event))
    assert body["errors"] == [{"index": 0, "field": "responseHeaders",
                               "message": "must have at most 100 headers of at most 65536 characters in all"}]


def test_an_app_with_allowed_origins_refuses_other_origins_with_403(server: Server) -> None:
    server.services.registry.create_app("locked")
    server.services.registry.set_allowed_origins("locked", ["https://shop.example", "http://localhost:3000/"])
    allowed = server.ingest(batch("s-o1", app_id="locked"), origin="https://shop.example")
    assert allowed.status_code == 200, allowed.text
    assert server.ingest(batch("s-o2", app_id="locked"), origin="http://localhost:3000").status_code == 200
    refused = server.ingest(batch("s-o3", app_id="locked"), origin="https://evil.example")
    assert refused.status_code == 403
    assert refused.json() == {"error": "origin 'https://evil.example' may not send batches to app 'locked'; allow "
                                       "it with `replayql apps origins locked --allow https://evil.example`"}
    assert refused.headers["access-control-allow-origin"] == "*"  # so the SDK can read why, and stop resending
    # not a browser (no Origin header): accepted, as an importer or a server-side sender
    assert server.ingest(batch("s-o4", app_id="locked")).status_code == 200
    # an app without a list takes any origin
    assert server.ingest(batch("s-o5"), origin="https://evil.example").status_code == 200
    ids = server.data('{ sessions { nodes { id } } }')["sessions"]["nodes"]
    assert "s-o3" not in {n["id"] for n in ids}


def test_the_sdk_is_served_with_caching_headers(server: Server) -> None:
    response = server.client.get("/sdk/replayql.js")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/javascript; charset=utf-8"
    assert response.headers["cache-control"] == "public, max-age=3600"
    assert b"replayql" in response.content and len(response.content) > 10_000
    again = server.client.get("/sdk/replayql.js", headers={"if-none-match": response.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
