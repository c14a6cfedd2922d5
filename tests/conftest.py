"""Shared fixtures: a real server (the ASGI app) over a real store, once per backend.

Every test that uses `server` (or `where`) runs twice: on the embedded store (DuckDB and SQLite files in a temp
dir) and on the ClickHouse store (the chDB engine in this process, one fresh database per test; chDB allows one
data path per process, so all ClickHouse tests share one path).

`server` gives an app `demo` and an app `other`, an API key of each scope for `demo`, an admin key for `other`,
and helpers to send batches and GraphQL queries through HTTP exactly as clients do.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2 as httpx
import orjson
import pytest
from playwright.sync_api import Browser
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from replayql.api.app import close_services, create_app, open_services
from replayql.api.context import Services
from replayql.config import ClickHouseConfig, Settings
from replayql.ingest.importer import import_batches
from replayql.store.registry import KeyScope

if TYPE_CHECKING:
    from live_server import Tab

T0 = 1_764_140_000_000  # 2025-11-26T06:53:20Z: the base time of hand-built test data (epoch ms)
CONTEXT = {
    "userAgent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/120.0.0.0 Safari/537.36",
    "viewport": {"width": 1440, "height": 900}, "language": "en-US", "timezone": "Europe/Berlin",
    "release": "1.4.2", "sdk": {"name": "replayql-browser", "version": "0.1.0"},
}


def make_batch(session_id: str, events: list[dict[str, Any]], seq: int = 0, app_id: str = "demo",
               context: dict[str, Any] | None = None, sent_at: int | None = None, **extra: Any) -> dict[str, Any]:
    """A wire batch; seq 0 gets the default context unless one is given. sentAt defaults to the last event."""
    batch: dict[str, Any] = {"appId": app_id, "sessionId": session_id, "seq": seq,
                             "sentAt": sent_at if sent_at is not None else max(e["ts"] for e in events),
                             "events": events, **extra}
    if context is not None or seq == 0:
        batch["context"] = context if context is not None else CONTEXT
    return batch


def load(server: Server, batches: list[dict[str, Any]]) -> None:
    """Store batches through the import path: full validation and enrichment, timestamps kept exactly (HTTP
    ingestion would correct them for clock skew against the test's wall clock)."""
    services = server.services
    report = import_batches((orjson.dumps(b) for b in batches), services.writer,
                            lambda app: services.registry.get_app(app) is not None, server.settings.limits)
    assert report.rejected == [] and report.stored == len(batches), report


@dataclass
class Server:
    client: TestClient
    services: Services
    settings: Settings
    keys: dict[str, str] = field(default_factory=dict)  # "read" | "write" | "admin" | "other" -> secret

    def ingest(self, batch: dict[str, Any] | bytes, **headers: str) -> httpx.Response:
        body = batch if isinstance(batch, bytes) else orjson.dumps(batch)
        return self.client.post("/v1/ingest", content=body,
                                headers={"content-type": "application/json", **headers})

    def gql(self, query: str, variables: dict[str, Any] | None = None, key: str = "admin") -> httpx.Response:
        payload: dict[str, Any] = {"query": query}
        if variables is not None:
            payload["variables"] = variables
        return self.client.post("/graphql", json=payload, headers={"authorization": f"token {self.keys[key]}"})

    def data(self, query: str, variables: dict[str, Any] | None = None, key: str = "admin") -> dict[str, Any]:
        """Run a query that must succeed; returns `data`."""
        response = self.gql(query, variables, key)
        body = response.json()
        assert response.status_code == 200 and "errors" not in body, body
        return body["data"]


STORES = ("duckdb", "clickhouse")


@dataclass(frozen=True)
class Location:
    """Where one store lives: its data dir (DuckDB) or its ClickHouse database. Reopen it to restart."""

    data_dir: Path
    clickhouse: ClickHouseConfig | None = None


def new_location(kind: str, data_dir: Path, chdb_path: Path) -> Location:
    if kind == "duckdb":
        return Location(data_dir)
    database = f"t_{uuid.uuid4().hex[:16]}"
    return Location(data_dir, ClickHouseConfig(f"chdb://{chdb_path}?database={database}"))


def drop_location(location: Location) -> None:
    """Drop a test's ClickHouse database: chDB slows down as databases pile up in its one data path."""
    if location.clickhouse is not None:
        from replayql.store.clickhouse_store import Connection

        connection = Connection(location.clickhouse.url)
        client = connection.client(None)
        try:
            client.command(f"DROP DATABASE IF EXISTS `{connection.database}` SYNC")
        finally:
            client.close()


@pytest.fixture(scope="session", params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="session")
def chdb_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("chdb") / "engine"


@pytest.fixture
def where(store_kind: str, chdb_path: Path, tmp_path: Path) -> Iterator[Callable[[str], Location]]:
    """where(name): a store location for this test; the same name gives the same location (for restarts)."""
    made: dict[str, Location] = {}

    def location(name: str) -> Location:
        if name not in made:
            made[name] = new_location(store_kind, tmp_path / name, chdb_path)
        return made[name]
    yield location
    for created in made.values():
        drop_location(created)


def start_server(where: Location | Path, **settings: Any) -> Server:
    location = where if isinstance(where, Location) else Location(where)
    config = Settings(data_dir=location.data_dir, clickhouse=location.clickhouse, **settings)
    services = open_services(config)
    registry = services.registry
    if registry.get_app("demo") is None:
        registry.create_app("demo")
        registry.create_app("other")
    server = Server(TestClient(create_app(config, services)), services, config)
    for scope in KeyScope:
        server.keys[scope.value] = registry.create_key("demo", scope)[1]
    server.keys["other"] = registry.create_key("other", KeyScope.ADMIN)[1]
    return server


@contextmanager
def served(location: Location) -> Iterator[Server]:
    """A server on its own store for the span of a `with` (module fixtures); the store is dropped after."""
    running = start_server(location)
    try:
        yield running
    finally:
        close_services(running.services)
        drop_location(location)


@pytest.fixture
def server(where: Callable[[str], Location]) -> Iterator[Server]:
    running = start_server(where("data"))
    try:
        yield running
    finally:
        close_services(running.services)


# -- Prometheus samples ------------------------------------------------------------------------------------------

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse_samples(text: str) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def labelled(samples: Samples, name: str, label: str) -> dict[str, float]:
    """The samples of one metric by the value of its one label."""
    return {dict(labels)[label]: value for (found, labels), value in samples.items() if found == name}


# -- a browser for the tests that drive one (a module's tests share it; each test gets its own tab) -------------


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from live_server import chromium  # it imports this module's helpers: not at its import time

    with chromium() as launched:
        yield launched


@pytest.fixture
def tab(browser: Browser) -> Iterator[Tab]:
    """A tab that fails its test on a console error or an uncaught exception (live_server.watched_tab)."""
    from live_server import watched_tab

    with watched_tab(browser) as opened:
        yield opened
