"""Rate limits: a token bucket per API key on /graphql and per app on /v1/ingest, answered 429 with Retry-After.

The limits do not depend on the store, so these run on the embedded one. Time is a clock the test moves: the
server's buckets are rebuilt from its settings with that clock, so nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from conftest import T0, Server, labelled, make_batch, parse_samples, start_server
from replayql.api.app import close_services
from replayql.api.rate_limits import TokenBuckets
from replayql.config import RateLimits, Settings, with_limits
from test_cli import ok, serving

PAGE = {"type": "page", "ts": T0, "url": "https://shop.example/"}
VIEWER = "{ viewer { appId } }"
SESSION = 'query($id: ID!) { session(id: $id) { id } }'


class Clock:
    """Seconds that pass only when the test says so."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def with_clock(buckets: TokenBuckets | None, clock: Clock) -> TokenBuckets:
    """The server's buckets as configured, counting time on `clock`."""
    assert buckets is not None, "the limit is configured, so the server has buckets"
    return TokenBuckets(buckets.per_s, buckets.burst, clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limited(tmp_path: Path, clock: Clock) -> Iterator[Server]:
    """A server allowing each key 3 requests at once and one every 4 s, and each app 2 batches at once and one
    every 2 s."""
    rate = RateLimits(graphql_per_key_per_s=0.25, graphql_burst=3, ingest_per_app_per_s=0.5, ingest_burst=2)
    server = start_server(tmp_path / "data", rate=rate)
    server.services.graphql_rate = with_clock(server.services.graphql_rate, clock)
    server.services.ingest_rate = with_clock(server.services.ingest_rate, clock)
    try:
        yield server
    finally:
        close_services(server.services)


def rate_limited(retry_after_s: int) -> dict[str, object]:
    """The GraphQL answer of a refused request, but for its message."""
    return {"data": None, "errors": [{"extensions": {"code": "RATE_LIMITED", "retryAfter": retry_after_s}}]}


def without_message(body: dict[str, object]) -> dict[str, object]:
    errors = body["errors"]
    assert isinstance(errors, list)
    return {**body, "errors": [{k: v for k, v in e.items() if k != "message"} for e in errors]}


def batch(session_id: str, app_id: str = "demo") -> dict[str, object]:
    return make_batch(session_id, [PAGE], app_id=app_id, sent_at=T0 + 1_000)


def stored(server: Server, session_id: str, key: str = "admin") -> bool:
    return server.data(SESSION, {"id": session_id}, key)["session"] is not None


# -- /graphql ---------------------------------------------------------------------------------------------------

def test_a_burst_past_a_keys_bucket_is_429_with_retry_after_and_other_keys_are_served(limited: Server) -> None:
    assert [limited.gql(VIEWER).status_code for _ in range(3)] == [200] * 3
    refused = limited.gql(VIEWER)
    assert refused.status_code == 429 and refused.headers["retry-after"] == "4"  # one token at 0.25 a second
    body = refused.json()
    assert without_message(body) == rate_limited(4)
    assert body["errors"][0]["message"] == ("too many requests for this API key: the limit is 0.25 a second with "
                                            "bursts of 3; retry after 4 s")
    # GET counts against the same bucket
    got = limited.client.get("/graphql", params={"query": VIEWER},
                             headers={"authorization": f"token {limited.keys['admin']}"})
    assert got.status_code == 429
    # another key of the same app, and a key of another app, each have their own bucket
    assert limited.data(VIEWER, key="read") == {"viewer": {"appId": "demo"}}
    assert limited.data(VIEWER, key="other") == {"viewer": {"appId": "other"}}
    # a missing or wrong key is still a 401: the limit applies after authentication
    assert limited.client.post("/graphql", json={"query": VIEWER}).status_code == 401
    assert limited.gql(VIEWER, key="admin").status_code == 429


def test_a_key_is_served_again_as_its_bucket_refills(limited: Server, clock: Clock) -> None:
    for _ in range(3):
        limited.data(VIEWER)
    assert limited.gql(VIEWER).headers["retry-after"] == "4"
    clock.now += 1  # a quarter of a token back: 3 s to go
    assert limited.gql(VIEWER).headers["retry-after"] == "3"
    clock.now += 3
    assert limited.data(VIEWER) == {"viewer": {"appId": "demo"}}
    assert limited.gql(VIEWER).status_code == 429  # that token was the only one
    clock.now += 3_600  # an idle hour refills to the burst, no further
    assert [limited.gql(VIEWER).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_refused_mutation_changes_nothing(limited: Server) -> None:
    for _ in range(3):
        limited.data(VIEWER)
    identify = 'mutation { identifyUser(id: "u-limited", name: "Ada") { id } }'
    assert limited.gql(identify).status_code == 429
    assert limited.data('{ user(id: "u-limited") { id } }', key="read") == {"user": None}


def test_a_browser_on_another_origin_can_read_retry_after(limited: Server) -> None:
    headers = {"authorization": f"token {limited.keys['admin']}", "origin": "https://dashboard.example"}
    for _ in range(3):
        limited.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    refused = limited.client.post("/graphql", json={"query": VIEWER}, headers=headers)
    assert refused.status_code == 429
    assert "retry-after" in refused.headers["access-control-expose-headers"].lower()


# -- /v1/ingest ------------------------------------------------------------------------------------------------

def test_a_burst_past_an_apps_bucket_is_429_with_retry_after_and_stores_nothing(limited: Server) -> None:
    assert [limited.ingest(batch(f"s-ok{n}")).status_code for n in range(2)] == [200, 200]
    refused = limited.ingest(batch("s-refused"), origin="https://shop.example")
    assert refused.status_code == 429 and refused.headers["retry-after"] == "2"  # one batch at 0.5 a second
    assert refused.json() == {"error": "too many requests for app 'demo': the limit is 0.5 a second with bursts "
                                       "of 2; retry after 2 s; nothing of this batch was kept",
                              "code": "RATE_LIMITED", "retryAfter": 2}
    assert "retry-after" in refused.headers["access-control-expose-headers"]
    assert limited.ingest(batch("s-other", app_id="other")).json()["outcome"] == "stored"  # its own bucket
    assert not stored(limited, "s-refused")
    assert stored(limited, "s-other", key="other")


def test_a_refused_batch_is_stored_when_resent_after_retry_after(limited: Server, clock: Clock) -> None:
    for n in range(2):
        limited.ingest(batch(f"s-ok{n}"))
    assert limited.ingest(batch("s-resent")).status_code == 429
    clock.now += 1
    assert limited.ingest(batch("s-resent")).headers["retry-after"] == "1"
    clock.now += 1
    assert limited.ingest(batch("s-resent")).json()["outcome"] == "stored"
    assert stored(limited, "s-resent")
    assert limited.client.get("/healthz").status_code == 200


def test_batches_refused_for_other_reasons_take_no_token(limited: Server) -> None:
    bad = make_batch("s-bad", [{"type": "page", "ts": "soon", "url": "https://shop.example/"}], sent_at=T0)
    assert limited.ingest(bad).status_code == 400
    assert limited.ingest(batch("s-unknown", app_id="nope")).status_code == 404
    assert [limited.ingest(batch(f"s-ok{n}")).status_code for n in range(3)] == [200, 200, 429]


# -- defaults, settings and a real server -----------------------------------------------------------------------

def test_without_limits_a_burst_is_served(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        assert server.settings.rate == RateLimits(graphql_per_key_per_s=None, ingest_per_app_per_s=None)
        assert [server.gql(VIEWER).status_code for _ in range(200)] == [200] * 200
        assert {server.ingest(batch(f"s-{n}")).status_code for n in range(100)} == {200}
        assert server.data("{ sessions { totalCount } }") == {"sessions": {"totalCount": 100}}
        assert not any(name.startswith("api.rate") for name in server.services.cache_sizes())
    finally:
        close_services(server.services)


def test_rate_limits_are_set_by_name() -> None:
    changed = with_limits(Settings(), ["rate.graphql_per_key_per_s=2.5", "rate.ingest_burst=10"])
    assert changed.rate == RateLimits(graphql_per_key_per_s=2.5, ingest_burst=10)
    with pytest.raises(ValueError, match=r"limit rate\.graphql_burst must be positive"):
        with_limits(Settings(), ["rate.graphql_burst=0"])
    with pytest.raises(ValueError, match=r"limit rate\.ingest_per_app_per_s needs a number, not 'off'"):
        with_limits(Settings(), ["rate.ingest_per_app_per_s=off"])
    with pytest.raises(ValueError, match=r"unknown limit 'rate\.per_key'; one of: .*rate\.graphql_burst"):
        with_limits(Settings(), ["rate.per_key=1"])


def test_buckets_are_bounded_and_a_forgotten_caller_starts_full(clock: Clock) -> None:
    buckets = TokenBuckets(per_s=1.0, burst=1, clock=clock, size=3)
    assert [buckets.take(name) for name in "abcde"] == [0] * 5
    assert buckets.cache_size() == (3, 3)
    assert [buckets.take(name) for name in "cde"] == [1, 1, 1]  # remembered: empty
    assert buckets.take("a") == 0  # forgotten: a full bucket again


def test_serve_limits_from_the_command_line(tmp_path: Path) -> None:
    data = tmp_path / "data"
    for app in ("demo", "other"):
        ok(tmp_path, "apps", "create", app, "--data-dir", data)
    key = ok(tmp_path, "keys", "create", "--app", "demo", "--scope", "read", "--data-dir", data).stdout.strip()
    # one token every 1,000 s: nothing refills while the test runs
    limits = ["--limit", "rate.graphql_per_key_per_s=0.001", "--limit", "rate.graphql_burst=2",
              "--limit", "rate.ingest_per_app_per_s=0.001", "--limit", "rate.ingest_burst=1"]
    with serving(tmp_path, data, *limits) as server:
        assert [server.gql(key, VIEWER).status_code for _ in range(2)] == [200, 200]
        refused = server.gql(key, VIEWER)
        retry_after = refused.json()["errors"][0]["extensions"]["retryAfter"]
        assert refused.status_code == 429 and refused.headers["retry-after"] == str(retry_after)
        assert 1 <= retry_after <= 1_000
        statuses = [server.http.post("/v1/ingest", content=orjson.dumps(batch(session, app)),
                                     headers={"content-type": "application/json"}).status_code
                    for session, app in (("s-1", "demo"), ("s-2", "demo"), ("s-3", "other"))]
        assert statuses == [200, 429, 200]
        assert server.http.get("/healthz").status_code == 200
        assert server.interrupt() == 0
    assert "Traceback" not in server.stderr


def test_refusals_are_counted_in_the_metrics(limited: Server) -> None:
    for n in range(4):  # 2 stored, 2 refused
        limited.ingest(batch(f"s-m{n}"))
    for _ in range(5):  # 3 answered, 2 refused
        limited.gql(VIEWER)
    samples = parse_samples(limited.client.get("/metrics").text)
    assert labelled(samples, "replayql_ingest_batches_total", "outcome")["rate_limited"] == 2
    assert labelled(samples, "replayql_ingest_batches_total", "outcome")["stored"] == 2
    assert labelled(samples, "replayql_graphql_errors_total", "code") == {"RATE_LIMITED": 2}
