"""Runtime settings: one frozen object built by the CLI (or tests) and passed down explicitly."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from urllib.parse import urlparse

MIB = 1024 * 1024


@dataclass(frozen=True)
class IngestLimits:
    max_body_bytes: int = 5 * MIB
    max_decompressed_bytes: int = 20 * MIB
    max_events_per_batch: int = 5_000
    max_string_chars: int = 64 * 1024
    max_stack_chars: int = 256 * 1024
    max_recording_event_bytes: int = 4 * MIB
    # Free-form JSON of an event (properties, traits, tags, extra): each key becomes a filter key
    max_json_depth: int = 20
    max_json_keys: int = 500
    max_key_chars: int = 256
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

    def __repr__(self) -> str:  # never print the password, neither the field nor one inside the url
        return f"ClickHouseConfig(url={redact_url(self.url)!r}, user={self.user!r}, cluster={self.cluster!r})"


def redact_url(url: str) -> str:
    """The url without its password (`user:***@host`), for messages, logs and reprs."""
    parsed = urlparse(url)
    if parsed.password is None:
        return url
    return parsed._replace(netloc=parsed.netloc.replace(f":{parsed.password}@", ":***@", 1)).geturl()


@dataclass(frozen=True)
class AnalyticsLimits:
    """Guard rails of every analytics query: past either, the answer is an error, never a partial result."""

    timeout_s: float = 30.0
    max_cells: int = 200_000


@dataclass(frozen=True)
class QueryLimits:
    """What one GraphQL request may ask; past a limit it is refused before it runs, with the limit's code."""

    max_body_bytes: int = 1 * MIB  # BODY_TOO_LARGE (413)
    max_tokens: int = 20_000  # TOO_MANY_TOKENS: bounds the parser's work
    max_depth: int = 15  # QUERY_TOO_DEEP: nested fields (the introspection query needs 13)
    max_aliases: int = 30  # TOO_MANY_ALIASES
    # QUERY_TOO_COMPLEX: the objects one path may return, the product of its page sizes (`first`, `limit`)
    max_results: int = 100_000
    max_variables_depth: int = 64  # INPUT_TOO_DEEP: JSON nesting of `variables` and of argument values
    max_variables_values: int = 5_000  # INPUT_TOO_LARGE: values in `variables` (a 500-condition filter: ~1,500)
    timeout_s: float = 30.0  # QUERY_TIMEOUT: each store query of a list, lookup or discovery field


@dataclass(frozen=True)
class RateLimits:
    """Requests a caller may make, as token buckets in memory: per API key on /graphql, per app on /v1/ingest
    (each batch counts one). A rate of None turns that limit off; past a limit the answer is 429 RATE_LIMITED
    with Retry-After."""

    graphql_per_key_per_s: float | None = None  # off
    graphql_burst: int = 50  # requests at once (a dashboard loading sends a few dozen)
    ingest_per_app_per_s: float | None = None  # off
    ingest_burst: int = 1_000  # batches at once (a deploy reloads every open tab, each sending its buffer)


@dataclass(frozen=True)
class LiveLimits:
    """GraphQL subscriptions over WebSocket (api.graphql_ws, api.live_hub). Past a per-key or per-server
    subscription limit a subscribe is answered with an `error` of code TOO_MANY_SUBSCRIPTIONS; past the connection
    limit a new socket is closed with 1013; a subscriber whose messages pile up past `max_queued_messages` is
    dropped with close code 4410."""

    poll_interval_s: float = 0.25  # how often the store is asked what changed, while anyone subscribes
    session_update_interval_s: float = 1.0  # sessionUpdates: at most one update per session this often
    max_subscriptions_per_key: int = 100
    max_subscriptions: int = 10_000  # on this server
    max_connections: int = 5_000  # WebSockets on this server
    max_queued_messages: int = 1_000  # per socket, waiting to be sent
    max_pending_changes: int = 100_000  # per subscription, updates read for it and not yet taken (then dropped)
    read_threads: int = 1  # live reads (shared and catch-up) at once on this server: the rest is the writer's
    init_timeout_s: float = 10.0  # connection_init must come this soon after the socket opens (else 4408)
    key_check_interval_s: float = 30.0  # a revoked key's sockets are closed (4403) within this long


@dataclass(frozen=True)
class CacheLimits:
    """Entries each in-memory cache keeps, so memory stays flat however much traffic comes: past its bound a cache
    forgets its least recently used entry, which is read from the store or computed again when next needed. Each
    bounds the cache that /metrics labels with its name after a dot (`session_tails`: `writer.session_tails`)."""

    # The writer's: recently written sessions' tails, and whether a session or a user was deleted. A write group
    # takes no more batches than the smallest of these holds (so that all its entries fit), and at most 2,000.
    session_tails: int = 50_000
    sessions_deleted: int = 50_000
    users_deleted: int = 50_000
    session_summaries: int = 50_000  # the DuckDB store: recently written sessions' stored summaries
    user_agents: int = 16_384  # parsed user agents (devices)
    urls: int = 16_384  # URLs split into host, path, query and UTM tags
    parsed_strings: int = 512  # filter-language query strings, parsed
    documents: int = 512  # GraphQL documents, parsed and validated
    allowed_origins: int = 10_000  # each app's allowed origins, kept 5 s after a registry read


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
    query: QueryLimits = field(default_factory=QueryLimits)
    rate: RateLimits = field(default_factory=RateLimits)
    caches: CacheLimits = field(default_factory=CacheLimits)
    live: LiveLimits = field(default_factory=LiveLimits)
    # DuckDB's own memory (buffer pool, checkpoints, query operators; larger work spills to disk). Its default,
    # 80% of the machine, lets the server's RSS grow with the store; this keeps a server under about 1 GiB.
    duckdb_memory_limit: str = "512MB"
    # With a token, GET /metrics wants `Authorization: Bearer <token>`; without, it is open (a private port).
    metrics_token: str | None = field(default=None, repr=False)
    # Sessions whose last activity is older than this many days are deleted with what derives from them, on
    # either store (ingest.retention); None keeps everything.
    retention_days: int | None = None
    retention_interval_s: float = 3600.0  # the job runs at start, then this often
    # Sessions deleted per writer job: ingestion waits at most one chunk's deletion (see bench/retention_cost.py).
    retention_chunk_sessions: int = 500

    @property
    def duckdb_path(self) -> Path:
        return self.data_dir / "replayql.duckdb"

    @property
    def registry_path(self) -> Path:
        return self.data_dir / "registry.sqlite"


def default_data_dir() -> Path:
    return Path(os.environ.get("REPLAYQL_DATA_DIR", "replayql-data"))


# --limit prefix -> the Settings field it changes
_LIMIT_GROUPS = {"graphql": "query", "ingest": "limits", "rate": "rate", "cache": "caches", "live": "live"}


def with_limits(settings: Settings, assignments: list[str]) -> Settings:
    """Settings with limits changed by `group.name=value` assignments; ValueError names a bad one."""
    for assignment in assignments:
        target, _, text = assignment.partition("=")
        group, _, name = target.strip().partition(".")
        attribute = _LIMIT_GROUPS.get(group)
        current = getattr(settings, attribute) if attribute else None
        known = {f.name: f for f in fields(current)} if current is not None else {}
        if attribute is None or current is None or name not in known:
            choices = ", ".join(f"{g}.{f.name}" for g, a in _LIMIT_GROUPS.items() for f in fields(getattr(settings, a)))
            raise ValueError(f"unknown limit {target!r}; one of: {choices}")
        kind = float if "float" in str(known[name].type) else int  # "float", "float | None" or the class
        try:
            value = kind(text)
        except ValueError:
            raise ValueError(f"limit {target} needs a number, not {text!r}") from None
        if value <= 0:
            raise ValueError(f"limit {target} must be positive")
        settings = replace(settings, **{attribute: replace(current, **{name: value})})
    return settings
