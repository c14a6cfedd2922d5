"""Operations, through the app on both stores: /healthz (alive), /readyz (the store answers, the writer keeps up),
/metrics (exact counts of known traffic), request ids in answers and log lines, and no secret in a repr.

The real server process (JSON logs on stderr, SIGTERM under load) is in test_ops_process.py.
"""

from __future__ import annotations

import asyncio
import io
import logging
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import generate_latest
from starlette.testclient import TestClient

from conftest import T0, Location, Samples, Server, drop_location, labelled, make_batch, parse_samples, start_server
from replayql.api.app import close_services, create_app
from replayql.api.metrics import Metrics
from replayql.api.ops import StorePing
from replayql.config import MIB, ClickHouseConfig, Settings
from replayql.ingest.wire import decode_batch
from replayql.ingest.writer import Outcome
from replayql.logs import JsonFormatter

READY = {"status": "ready", "checks": {"store": "ok", "writer": "ok"}}


def scrape(client: TestClient) -> Samples:
    """Every sample of /metrics: (name, sorted labels) -> value."""
    response = client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse_samples(response.text)


def plain_events(n: int, start: int = T0) -> list[dict[str, Any]]:
    """n events that derive nothing (no click, no error): each is exactly one stored event row."""
    kinds = [{"type": "page", "url": "https://shop.example/"}, {"type": "custom", "name": "Step"},
             {"type": "console", "level": "info", "message": "ok"}, {"type": "input", "selector": "input#q"}]
    return [{**kinds[i % len(kinds)], "ts": start + 100 * i} for i in range(n)]


def break_store(server: Server) -> None:
    """Take the store away under the running app: DuckDB closed, the ClickHouse database dropped."""
    location = Location(server.settings.data_dir, server.settings.clickhouse)
    if location.clickhouse is None:
        server.services.store.close()  # type: ignore[attr-defined]
    else:
        drop_location(location)


@contextmanager
def hold_writer(server: Server) -> Iterator[None]:
    """Keep the writer thread busy (a write job, as a mutation is) for the span of the `with`."""
    release = threading.Event()
    server.services.writer.run(lambda store: release.wait(60))
    try:
        yield
    finally:
        release.set()


# -- health and readiness ----------------------------------------------------------------------------------------

def test_readiness_fails_without_the_store_and_after_a_failed_write_while_liveness_holds(server: Server) -> None:
    assert server.ingest(make_batch("s-before", plain_events(1))).status_code == 200  # the app is known now
    assert server.client.get("/readyz").json() == READY
    break_store(server)

    assert server.client.get("/healthz").json() == {"status": "ok"}  # alive: nothing restarts the process
    response = server.client.get("/readyz")
    body = response.json()
    assert response.status_code == 503 and body["failing"] == ["store"], body
    assert body["status"] == "unavailable" and re.fullmatch(r"the store failed: \w+", body["checks"]["store"])
    assert body["checks"]["writer"] == "ok"

    refused = server.ingest(make_batch("s-gone", plain_events(3), sent_at=T0 + 1_000))
    assert refused.status_code == 503 and "could not be stored" in refused.json()["error"]
    body = server.client.get("/readyz").json()
    assert body["failing"] == ["store", "writer"], body
    assert re.fullmatch(r"writing failed \d+\.\d s ago \(\w+\)", body["checks"]["writer"]), body
    samples = scrape(server.client)  # the rest is reported without the store
    assert labelled(samples, "replayql_ingest_batches_total", "outcome")["failed"] == 1
    assert labelled(samples, "replayql_ingest_events_total", "outcome")["failed"] == 3
    assert samples.get(("replayql_store_bytes", ()), 0) == 0  # DuckDB's left out, ClickHouse's database empty


def test_readiness_fails_while_the_writer_is_behind_and_recovers(server: Server) -> None:
    limit = server.settings.limits.max_queued_bytes
    held = decode_batch(orjson.dumps(make_batch("s-held", plain_events(2))), server.settings.limits)
    with hold_writer(server):
        written = server.services.writer.submit(held, size=limit + 1)  # as if that much JSON were waiting
        body = server.client.get("/readyz").json()
        assert body == {"status": "unavailable", "failing": ["writer"], "checks": {
            "store": "ok", "writer": f"{limit + 1:,} bytes of batches are waiting to be written"}}
        assert server.ingest(make_batch("s-late", plain_events(1))).status_code == 503
        samples = scrape(server.client)
        assert samples[("replayql_ingest_queue_batches", ())] == 1
        assert samples[("replayql_ingest_queue_bytes", ())] == limit + 1
        assert labelled(samples, "replayql_ingest_batches_total", "outcome")["overloaded"] == 1
    assert written.result(timeout=60) is Outcome.STORED
    assert server.client.get("/readyz").json() == READY
    samples = scrape(server.client)
    assert (samples[("replayql_ingest_queue_batches", ())], samples[("replayql_ingest_queue_bytes", ())]) == (0, 0)


def test_readiness_fails_when_the_writer_has_stopped(server: Server) -> None:
    server.services.writer.close()
    response = server.client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "unavailable", "failing": ["writer"],
                               "checks": {"store": "ok", "writer": "the writer thread has stopped"}}


def test_a_store_that_hangs_is_not_ready_within_the_timeout_and_probes_share_one_ping() -> None:
    release, pings = threading.Event(), []

    def hanging_ping() -> bool:
        pings.append(threading.current_thread().name)
        release.wait(60)
        return True

    store_ping = StorePing(hanging_ping, timeout_s=0.05)

    async def probes() -> tuple[list[str], list[str], str]:
        hanging = [await store_ping.check() for _ in range(3)]
        pinged = list(pings)
        release.set()
        store_ping.timeout_s = 60
        return hanging, pinged, await store_ping.check()

    hanging, pinged, answered = asyncio.run(probes())
    assert hanging == ["the store did not answer within 0.05 s"] * 3
    assert pinged == ["replayql-ping"]  # off the event loop, and one ping for all three probes
    assert answered == "ok"


# -- metrics -------------------------------------------------------------------------------------------------------

def test_metrics_count_known_traffic_exactly(server: Server) -> None:
    events_per_batch = 4
    stored = [make_batch(f"m-{n}", plain_events(events_per_batch)) for n in range(3)]
    for body in stored:
        assert server.ingest(body).json()["outcome"] == "stored"
    assert server.ingest(stored[0]).json()["outcome"] == "duplicate"
    identified = make_batch("m-del", [{"type": "page", "ts": T0, "url": "https://shop.example/"},
                                      {"type": "identify", "ts": T0 + 100, "userId": "u-del"}])
    assert server.ingest(identified).json()["outcome"] == "stored"
    before_deletion = scrape(server.client)

    deleted = server.gql('mutation DeleteUser { deleteUser(id: "u-del") { deletedSessions } }')
    assert deleted.json() == {"data": {"deleteUser": {"deletedSessions": 1}}}
    after = make_batch("m-del", plain_events(1, T0 + 1_000), seq=1)
    assert server.ingest(after).json()["outcome"] == "dropped"

    bad_event = make_batch("m-bad", [{"type": "page", "ts": "yesterday"}])
    refusals = {
        400: [server.ingest(bad_event), server.ingest(make_batch("m-bad", [{"type": "teleport", "ts": T0}]))],
        404: [server.ingest(make_batch("m-x", plain_events(1), app_id="nope"))],
        413: [server.ingest(b" " * (5 * MIB + 1))],
        415: [server.ingest(stored[1], **{"content-type": "application/xml"})],
        405: [server.client.get("/v1/ingest")],
    }
    server.services.registry.set_allowed_origins("other", ["https://other.example"])
    refusals[403] = [server.ingest(make_batch("m-o", plain_events(1), app_id="other"), origin="https://evil.example")]
    assert {status: [r.status_code for r in answers] for status, answers in refusals.items()} == {
        status: [status] * len(answers) for status, answers in refusals.items()}

    for query in ("query Viewer { viewer { appId } }", "query Viewer { viewer { appId } }", "{ viewer { appId } }"):
        server.data(query)
    assert server.gql("query TooMany { sessions(first: 501) { totalCount } }").status_code == 400
    assert server.gql("{ viewer ").status_code == 400
    assert server.client.post("/graphql", json={"query": "{ viewer { appId } }"},
                              headers={"authorization": "token rq_wrong"}).status_code == 401

    samples = scrape(server.client)
    assert labelled(samples, "replayql_ingest_batches_total", "outcome") == {
        "stored": 4, "duplicate": 1, "dropped": 1, "rejected": 7, "overloaded": 0, "rate_limited": 0, "failed": 0,
        "error": 0}
    assert labelled(samples, "replayql_ingest_events_total", "outcome") == {
        "stored": 3 * events_per_batch + 2, "duplicate": events_per_batch, "dropped": 1, "failed": 0}
    assert labelled(samples, "replayql_ingest_rejected_batches_total", "reason") == {
        "invalid": 2, "unknown_app": 1, "too_large": 1, "unsupported_media_type": 1, "method_not_allowed": 1,
        "origin_not_allowed": 1, "client_disconnected": 0, "other": 0}
    # one group commit per batch that reached the writer: the requests came one after another
    assert samples[("replayql_writer_commit_seconds_count", ())] == 6
    assert labelled(samples, "replayql_graphql_request_seconds_count", "operation") == {
        "Viewer": 2, "anonymous": 1, "TooMany": 1, "DeleteUser": 1, "none": 2}
    assert labelled(samples, "replayql_graphql_errors_total", "code") == {
        "BAD_USER_INPUT": 1, "GRAPHQL_PARSE_FAILED": 1, "UNAUTHENTICATED": 1}
    assert (samples[("replayql_ingest_queue_batches", ())], samples[("replayql_ingest_queue_bytes", ())]) == (0, 0)
    # sizes read from the store when scraped: its own tables, before the deletion took rows away
    assert labelled(before_deletion, "replayql_store_rows", "table")["events"] == 3 * events_per_batch + 2
    assert samples[("replayql_store_bytes", ())] > 0
    expected_caches = server.services.cache_sizes()
    assert labelled(samples, "replayql_cache_entries", "cache") == {k: v[0] for k, v in expected_caches.items()}
    assert labelled(samples, "replayql_cache_max_entries", "cache") == {k: v[1] for k, v in expected_caches.items()}
    assert {"process_cpu_seconds_total", "python_info"} <= {name for name, _ in samples}


def test_operation_names_are_bounded_and_unknown_codes_are_other(server: Server) -> None:
    for n in range(105):
        server.data(f"query Op{n} {{ viewer {{ appId }} }}")
    server.data("query Op0 { viewer { appId } }")  # a name already held keeps its series
    long_name = "Q" * 101
    server.data(f"query {long_name} {{ viewer {{ appId }} }}")
    operations = labelled(scrape(server.client), "replayql_graphql_request_seconds_count", "operation")
    assert operations == {f"Op{n}": 2 if n == 0 else 1 for n in range(100)} | {"other": 6}

    metrics = Metrics()
    metrics.graphql_request("Op", 0.01, ["QUERY_TIMEOUT", "SOMETHING_NEW"])
    errors = labelled(parse_samples(generate_latest(metrics.registry).decode()), "replayql_graphql_errors_total",
                      "code")
    assert errors == {"QUERY_TIMEOUT": 1, "other": 1}


def test_each_server_counts_its_own_traffic(where: Callable[[str], Location]) -> None:
    first, second = start_server(where("first")), start_server(where("second"))
    try:
        assert first.ingest(make_batch("s-1", plain_events(2))).status_code == 200
        counted = [labelled(scrape(s.client), "replayql_ingest_batches_total", "outcome")["stored"]
                   for s in (first, second)]
        assert counted == [1, 0]
    finally:
        close_services(first.services)
        close_services(second.services)


def test_a_metrics_token_is_asked_for_when_configured(where: Callable[[str], Location]) -> None:
    guarded = start_server(where("guarded"), metrics_token="scrape-secret")
    try:
        for headers in ({}, {"authorization": "Bearer wrong"}, {"authorization": "token scrape-secret"}):
            refused = guarded.client.get("/metrics", headers=headers)
            assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")
        assert "replayql_ingest_batches_total" in guarded.client.get(
            "/metrics", headers={"authorization": "Bearer scrape-secret"}).text
    finally:
        close_services(guarded.services)


# -- request ids and logs ----------------------------------------------------------------------------------------

def test_every_answer_names_its_request_id_and_a_sane_one_from_the_client_is_kept(server: Server) -> None:
    answers = [server.client.get("/healthz"), server.ingest(make_batch("s-id", plain_events(1))),
               server.gql("{ viewer { appId } }"), server.client.get("/nowhere")]
    ids = [a.headers["x-request-id"] for a in answers]
    assert all(re.fullmatch(r"[0-9a-f]{16}", i) for i in ids) and len(set(ids)) == len(ids), ids

    kept = server.client.get("/healthz", headers={"x-request-id": "lb-7f3a.9_Z-1"})
    assert kept.headers["x-request-id"] == "lb-7f3a.9_Z-1"
    for insane in ("has space", "x" * 65, "semi;colon", ""):
        replaced = server.client.get("/healthz", headers={"x-request-id": insane}).headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{16}", replaced), (insane, replaced)


@contextmanager
def json_log_lines() -> Iterator[list[dict[str, Any]]]:
    """Every line logged in the `with`, formatted by the server's JSON formatter and parsed back."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    lines: list[dict[str, Any]] = []
    try:
        yield lines
    finally:
        root.removeHandler(handler)
        lines.extend(orjson.loads(line) for line in stream.getvalue().splitlines())


def test_an_internal_error_answers_the_request_id_of_its_log_line(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        server.services.registry.close()  # the registry becomes a directory: every read of it fails
        registry = server.settings.registry_path
        for path in registry.parent.glob(f"{registry.name}*"):
            path.unlink()
        registry.mkdir()
        client = TestClient(create_app(server.settings, server.services), raise_server_exceptions=False)
        with json_log_lines() as lines:
            failed = [client.post("/graphql", json={"query": "{ viewer { appId } }"},
                                  headers={"authorization": f"token {server.keys['read']}"}),
                      client.post("/v1/ingest", content=orjson.dumps(make_batch("s-500", plain_events(1))),
                                  headers={"content-type": "application/json", "x-request-id": "trace-500"})]
    finally:
        close_services(server.services)
    assert [f.status_code for f in failed] == [500, 500]
    ids = [f.json()["requestId"] for f in failed]
    assert ids == [f.headers["x-request-id"] for f in failed] and ids[1] == "trace-500"
    errors = [line for line in lines if line["level"] == "ERROR"]
    assert [line["request_id"] for line in errors] == ids, lines
    assert all("RegistryError" in line["exception"] and server.keys["read"] not in orjson.dumps(line).decode()
               for line in errors)


def test_reprs_show_no_password_or_token() -> None:
    config = ClickHouseConfig("https://bob:url-secret@ch.example:8443/replayql", user="bob",
                              password="field-secret")
    settings = Settings(clickhouse=config, metrics_token="metrics-secret")
    shown = f"{config!r} {settings!r} {settings}"
    assert "https://bob:***@ch.example:8443/replayql" in shown
    for secret in ("url-secret", "field-secret", "metrics-secret"):
        assert secret not in shown, shown
