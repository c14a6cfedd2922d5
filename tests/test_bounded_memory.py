"""Memory does not grow with traffic: after more distinct sessions (each with its own URL and user agent, some
identified, some from deleted users), query strings, GraphQL documents and apps than any cache holds, every cache
and set the server keeps is within its bound, on both stores. The bounds are settings (`Settings.caches`, `serve
--limit cache.NAME=VALUE`): small ones here, so that a little traffic is larger than each structure.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path

import orjson
import pytest

from conftest import CONTEXT, T0, Location, Server, labelled, make_batch, parse_samples, start_server
from replayql.api.app import close_services
from replayql.config import CacheLimits, Settings, with_limits
from replayql.ingest.importer import import_batches
from test_cli import serving

SESSIONS = 5_000  # every other one identified, as its own user
DELETED_USERS = 20  # u-0, u-2, ...: deleted before their sessions come
CACHES = CacheLimits(session_tails=2_000, sessions_deleted=2_000, users_deleted=1_000, session_summaries=2_000,
                     user_agents=1_000, urls=1_000, parsed_strings=16, documents=16, allowed_origins=4)


def _batches() -> Iterator[bytes]:
    for n in range(SESSIONS):
        context = {**CONTEXT, "userAgent": f"Mozilla/5.0 (X11; Linux x86_64) Bot/{n}"}
        events: list[dict[str, object]] = [{"type": "page", "ts": T0 + n, "url": f"https://shop.example/p/{n}"}]
        if n % 2 == 0:
            events.append({"type": "identify", "ts": T0 + n, "userId": f"u-{n}"})
        yield orjson.dumps({"appId": "demo", "sessionId": f"m-{n}", "seq": 0, "sentAt": T0 + n + 1,
                            "context": context, "events": events})


@pytest.fixture
def small(where: Callable[[str], Location]) -> Iterator[Server]:
    running = start_server(where("small"), caches=CACHES)
    try:
        yield running
    finally:
        close_services(running.services)


def _from_other_apps(server: Server, apps: int) -> None:
    """A browser's batch to each of `apps` new apps: each app's allowed origins are read and remembered."""
    for n in range(apps):
        server.services.registry.create_app(f"o-{n}")
        page = {"type": "page", "ts": T0, "url": "https://shop.example/"}
        response = server.ingest(make_batch(f"o-{n}", [page], app_id=f"o-{n}"), origin="https://shop.example")
        assert response.status_code == 200, response.text


def test_every_cache_and_set_stays_bounded_past_its_bound(small: Server) -> None:
    services = small.services
    for n in range(0, 2 * DELETED_USERS, 2):  # deleted users: later data of theirs is dropped, and remembered
        services.store.delete_user("demo", f"u-{n}")
    report = import_batches(_batches(), services.writer, lambda app: app == "demo", small.settings.limits)
    assert report.rejected == [] and report.stored == SESSIONS - DELETED_USERS  # the deleted users' are dropped
    for n in range(CACHES.documents + 4):  # distinct query strings and documents, more than either cache holds
        small.data(f'{{ sessions(first: 1, query: "pageCount > {n}") {{ totalCount }} }}')
    _from_other_apps(small, CACHES.allowed_origins + 2)
    sizes = services.cache_sizes()
    for name, (entries, bound) in sizes.items():
        assert bound > 0 and entries <= bound, (name, entries, bound)
    # each setting bounds the cache named alike, so where one is full the traffic was larger than the structure
    expected = asdict(CACHES)
    if small.settings.clickhouse is not None:
        del expected["session_summaries"]  # a DuckDB store's: the ClickHouse store keeps none
    assert {name.partition(".")[2]: bound for name, (_, bound) in sizes.items()
            if name.partition(".")[2] in expected} == expected
    filled = ["writer.session_tails", "ingest.user_agents", "ingest.urls", "query.parsed_strings",
              "graphql.documents", "api.allowed_origins"]
    if services.store.single_writer:  # writers sharing a store (ClickHouse) remember only deletions, asking again
        filled += ["writer.sessions_deleted", "writer.users_deleted", "store.session_summaries"]
    else:
        assert sizes["writer.sessions_deleted"][0] == sizes["writer.users_deleted"][0] == DELETED_USERS
    for name in filled:
        assert sizes[name][0] == sizes[name][1], (name, sizes[name])
    assert small.data('{ sessions { totalCount } }') == {"sessions": {"totalCount": SESSIONS - DELETED_USERS}}


def test_a_writer_with_small_caches_drops_every_deleted_users_data(where: Callable[[str], Location]) -> None:
    """A group is written with the entries of all its sessions and users in the writer's caches: with tiny caches
    it writes smaller groups, never one whose entries were pushed out (here: a deleted user's data kept)."""
    server = start_server(where("tiny"), caches=CacheLimits(users_deleted=2))
    try:
        for n in range(0, 12, 2):
            server.services.store.delete_user("demo", f"u-{n}")
        batches = (orjson.dumps(make_batch(f"t-{n}", [{"type": "page", "ts": T0, "url": "https://shop.example/"},
                                                      {"type": "identify", "ts": T0, "userId": f"u-{n}"}]))
                   for n in range(12))
        report = import_batches(batches, server.services.writer, lambda app: app == "demo", server.settings.limits)
        assert (report.stored, report.dropped, report.rejected) == (6, 6, [])
        assert server.services.writer.health() is None  # no write failed
    finally:
        close_services(server.services)


def test_cache_limits_are_set_by_name() -> None:
    changed = with_limits(Settings(), ["cache.session_tails=1000", "cache.documents=64"])
    assert changed.caches == CacheLimits(session_tails=1_000, documents=64)
    with pytest.raises(ValueError, match=r"unknown limit 'cache\.tails'; one of: .*cache\.session_tails"):
        with_limits(Settings(), ["cache.tails=10"])
    with pytest.raises(ValueError, match=r"limit cache\.urls must be positive"):
        with_limits(Settings(), ["cache.urls=0"])


def test_serve_sets_every_cache_limit_from_the_command_line(tmp_path: Path) -> None:
    bounds = {name: 100 + n for n, name in enumerate(asdict(CacheLimits()))}
    limits = [part for name, bound in bounds.items() for part in ("--limit", f"cache.{name}={bound}")]
    with serving(tmp_path, tmp_path / "data", *limits) as server:
        shown = labelled(parse_samples(server.http.get("/metrics").text), "replayql_cache_max_entries", "cache")
        assert server.interrupt() == 0
    assert {name.partition(".")[2]: bound for name, bound in shown.items()
            if name.partition(".")[2] in bounds} == bounds
