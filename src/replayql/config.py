"""Runtime settings: one frozen object built by the CLI (or tests) and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

MIB = 1024 * 1024


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int = 5 * MIB
    max_decompressed_bytes: int = 20 * MIB
    max_events_per_batch: int = 5_000
    max_string_chars: int = 64 * 1024
    max_stack_chars: int = 256 * 1024
    max_recording_event_bytes: int = 4 * MIB
    # An event more than this far from the batch's sentAt is rejected as an absurd timestamp.
    max_event_skew_ms: int = 24 * 3600 * 1000
    # Backpressure: past either, new batches are answered 503 with Retry-After until the writer catches up, so
    # memory and latency stay bounded (clients resend; (sessionId, seq) keeps that exactly-once).
    max_queued_bytes: int = 128 * MIB  # JSON of batches accepted but not yet written
    max_queue_wait_ms: int = 1_000  # how long the oldest of them has waited


@dataclass(frozen=True)
class FrustrationThresholds:
    rage_click_count: int = 3
    rage_click_window_ms: int = 1_000
    dead_click_window_ms: int = 1_000
    error_click_window_ms: int = 1_000


@dataclass(frozen=True)
class ClickHouseConfig:
    """The scale-out store: `http(s)://host:8123/database`, or `chdb://PATH` for the in-process engine."""

    url: str
    user: str | None = None
    password: str | None = None
    cluster: str | None = None  # with a cluster: Replicated + Distributed tables, sharded by session
    retention_days: int | None = None  # TTL on events, sessions and recordings

    def __repr__(self) -> str:  # never print the password
        return f"ClickHouseConfig(url={self.url!r}, user={self.user!r}, cluster={self.cluster!r})"


@dataclass(frozen=True)
class AnalyticsLimits:
    """Guard rails of every analytics query: past either, the answer is an error, never a partial result."""

    timeout_s: float = 30.0
    max_cells: int = 200_000


@dataclass(frozen=True)
class Settings:
    data_dir: Path = Path("replayql-data")
    clickhouse: ClickHouseConfig | None = None  # None: the embedded DuckDB store in data_dir
    limits: IngestLimits = field(default_factory=IngestLimits)
    frustration: FrustrationThresholds = field(default_factory=FrustrationThresholds)
    geoip: bool = True
    store_client_ip: bool = False
    # Gaps between user activity longer than this do not count towards a session's active duration.
    idle_threshold_ms: int = 10_000
    max_page_size: int = 500
    # A group commit waits at most this long for batches whose requests have arrived but are not queued yet;
    # with none on their way it commits at once.
    group_commit_ms: float = 20.0
    analytics: AnalyticsLimits = field(default_factory=lambda: AnalyticsLimits())
    # DuckDB's own memory (buffer pool, checkpoints, query operators; larger work spills to disk). Its default,
    # 80% of the machine, lets the server's RSS grow with the store; this keeps a server under about 1 GiB.
    duckdb_memory_limit: str = "512MB"

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "replayql.duckdb"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite"


def default_data_dir() -> Path:
    return Path(os.environ.get("REPLAYQL_DATA_DIR", "replayql-data"))
