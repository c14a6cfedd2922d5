"""Opening the configured backend: the store and the registry of apps and keys that goes with it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from replayql.config import CacheLimits, ClickHouseConfig
from replayql.store.base import Registry, Store
from replayql.store.registry import SQLiteRegistry


@dataclass
class Backend:
    store: Store
    registry: Registry  # SQLite beside DuckDB, or inside ClickHouse

    def close(self) -> None:
        self.registry.close()
        self.store.close()


def open_backend(data_dir: Path, clickhouse: ClickHouseConfig | None, duckdb_memory_limit: str | None = None,
                 session_summaries: int = CacheLimits.session_summaries) -> Backend:
    """The embedded store in `data_dir` (DuckDB's memory limited when given, `session_summaries` of its sessions'
    summaries kept in memory), or ClickHouse when configured."""
    if clickhouse is None:
        from replayql.store.duckdb_store import DuckDBStore

        data_dir.mkdir(parents=True, exist_ok=True)
        store = DuckDBStore(data_dir / "replayql.duckdb", memory_limit=duckdb_memory_limit, summaries=session_summaries)
        return Backend(store, SQLiteRegistry(data_dir / "registry.sqlite"))
    return Backend(*_clickhouse(clickhouse))


def open_registry(data_dir: Path, clickhouse: ClickHouseConfig | None) -> Registry:
    """Only the registry (for `apps` and `keys`): on DuckDB it does not touch the store the server holds."""
    if clickhouse is None:
        return SQLiteRegistry(data_dir / "registry.sqlite")
    return _clickhouse(clickhouse, registry_owns_store=True)[1]


def _clickhouse(config: ClickHouseConfig, registry_owns_store: bool = False) -> tuple[Store, Registry]:
    try:
        from replayql.store.clickhouse_registry import ClickHouseRegistry
        from replayql.store.clickhouse_store import ClickHouseStore, Connection
    except ImportError as exc:  # clickhouse-connect is an optional dependency
        raise RuntimeError("the ClickHouse store needs `pip install 'replayql[clickhouse]'`") from exc
    store = ClickHouseStore(Connection(config.url, config.user, config.password), config.cluster)
    return store, ClickHouseRegistry(store, owns_store=registry_owns_store)
