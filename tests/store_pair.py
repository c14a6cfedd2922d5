"""One DuckDB and one ClickHouse server given the same batches, and a way to ask both the same question: the
answers must be identical (cursors included), or the test names the first place they differ."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from conftest import Server, drop_location, new_location, start_server
from replayql.api.app import close_services
from replayql.ingest.importer import import_batches


@dataclass
class Pair:
    duck: Server
    click: Server

    def both(self, query: str, variables: dict[str, Any] | None = None, key: str = "admin") -> dict[str, Any]:
        """The query on both stores; the answers must be identical. Returns the (shared) answer."""
        duck, click = self.duck.data(query, variables, key), self.click.data(query, variables, key)
        difference = first_difference(duck, click)
        assert difference is None, f"DuckDB and ClickHouse differ at {difference}"
        assert duck == click
        return duck


def first_difference(a: Any, b: Any, path: str = "data") -> str | None:
    """Where two JSON values first differ, with both values, for a readable failure."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(a.keys() | b.keys()):
            if key not in a or key not in b:
                return f"{path}.{key}: present only in {'DuckDB' if key in a else 'ClickHouse'}"
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found:
                return found
        return None
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found:
                return found
        return None if len(a) == len(b) else f"{path}: {len(a)} items (DuckDB) vs {len(b)} (ClickHouse)"
    return None if a == b and type(a) is type(b) else f"{path}: {a!r} (DuckDB) vs {b!r} (ClickHouse)"


def load(server: Server, batches: list[dict[str, Any]]) -> None:
    services = server.services
    report = import_batches((orjson.dumps(b) for b in batches), services.writer,
                            lambda app: services.registry.get_app(app) is not None, server.settings.limits)
    assert report.rejected == [] and report.stored == len(batches), report


@contextmanager
def servers_on_both_stores(root: Path, chdb_path: Path, fill: Callable[[Server], None]) -> Iterator[Pair]:
    """A server on each store under `root`, each filled by `fill` (in the same way), closed and dropped after."""
    duck_location = new_location("duckdb", root / "duck", chdb_path)
    click_location = new_location("clickhouse", root / "click", chdb_path)
    duck = start_server(duck_location)
    try:
        click = start_server(click_location)
        try:
            for server in (duck, click):
                fill(server)
            yield Pair(duck, click)
        finally:
            close_services(click.services)
    finally:
        close_services(duck.services)
        drop_location(click_location)
