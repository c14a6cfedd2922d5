"""Prometheus metrics of one server: what ingestion and GraphQL did (counted as it happens, per batch or request,
never per event) and the state of the writer, the store and the caches (read when /metrics is scraped).

Each server has a registry of its own (not the library's global one), so several apps in one process never
share or collide on a series.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from replayql.ingest.writer import Backlog
from replayql.store.base import StorageSize

log = logging.getLogger(__name__)

# outcome label of replayql_ingest_batches_total: the writer's outcomes, then what the HTTP layer decides
WRITTEN_OUTCOMES = ("stored", "duplicate", "dropped", "failed")  # the batch reached the writer: its events count
BATCH_OUTCOMES = (*WRITTEN_OUTCOMES, "rejected", "overloaded", "rate_limited", "error")
# reason label of replayql_ingest_rejected_batches_total, by the status of the refusal
REJECTION_REASONS = {400: "invalid", 403: "origin_not_allowed", 404: "unknown_app", 405: "method_not_allowed",
                     413: "too_large", 415: "unsupported_media_type"}
DISCONNECTED = "client_disconnected"
# reason label of replayql_subscriptions_dropped_total: a subscriber too slow to take its messages (4410), a subscribe
# past a subscription limit (TOO_MANY_SUBSCRIPTIONS), a socket past the server's limit (1013)
DROP_REASONS = ("too_slow", "limit", "server_busy")
# read label of replayql_live_reads_total (api.live_hub): the shared reads of each poll, catch-up reads, and the
# checks of open sockets' API keys
LIVE_READS = ("batches", "sessions", "issues", "catch_up", "key_check")
# code label of replayql_graphql_errors_total: the codes the API answers with (README: Errors, Limits)
GRAPHQL_ERROR_CODES = frozenset({
    "BAD_REQUEST", "BAD_USER_INPUT", "BAD_QUERY", "FORBIDDEN", "NOT_FOUND", "UNAUTHENTICATED", "METHOD_NOT_ALLOWED",
    "GRAPHQL_PARSE_FAILED", "GRAPHQL_VALIDATION_FAILED", "INTERNAL_SERVER_ERROR", "BODY_TOO_LARGE", "TOO_MANY_TOKENS",
    "QUERY_TOO_DEEP", "TOO_MANY_ALIASES", "QUERY_TOO_COMPLEX", "INPUT_TOO_DEEP", "INPUT_TOO_LARGE", "QUERY_TIMEOUT",
    "TOO_MANY_CELLS", "RATE_LIMITED", "UNSUPPORTED_MEDIA_TYPE"})
OTHER = "other"  # a label value past the bound, or a code outside the set
NO_OPERATION = "none"  # a GraphQL request refused before an operation was chosen (auth, body, parse, validation)
MAX_OPERATION_NAMES = 100
_MAX_OPERATION_NAME_CHARS = 100
_COMMIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)  # 30 s: the query limit
_STORE_SIZE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class ServerState:
    """What is read at scrape time, each when asked."""

    backlog: Callable[[], Backlog]
    storage: Callable[[float], StorageSize]
    caches: Callable[[], dict[str, tuple[int, int]]]
    live: Callable[[], LiveCounts] = lambda: LiveCounts(0, {})


@dataclass(frozen=True)
class LiveCounts:
    connections: int
    subscriptions: dict[str, int]  # by operation (the subscription's root field)


class BoundedLabel:
    """Label values as given, up to `limit` distinct ones (each at most 100 characters), then OTHER: no client
    can grow the number of series."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self.limit or len(value) > _MAX_OPERATION_NAME_CHARS:
            return OTHER
        self._seen.add(value)
        return value


class Metrics:
    def __init__(self) -> None:
        # a `_created` series beside every counter doubles the output for nothing here; prometheus_client leaves
        # this function unannotated
        disable_created_metrics()  # type: ignore[no-untyped-call]
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        batches = Counter("replayql_ingest_batches", "Ingest requests (batches) by outcome.", ["outcome"],
                          registry=self.registry)
        events = Counter("replayql_ingest_events", "Events of the batches that reached the writer, by outcome.",
                         ["outcome"], registry=self.registry)
        rejected = Counter("replayql_ingest_rejected_batches", "Batches refused with a 4xx, by reason.", ["reason"],
                           registry=self.registry)
        # children made once: counting a batch is two increments, no label lookup
        self._batches = {outcome: batches.labels(outcome) for outcome in BATCH_OUTCOMES}
        self._events = {outcome: events.labels(outcome) for outcome in WRITTEN_OUTCOMES}
        self._rejected = {reason: rejected.labels(reason) for reason in (*REJECTION_REASONS.values(), DISCONNECTED,
                                                                          OTHER)}
        self._commits = Histogram("replayql_writer_commit_seconds", "Group commits of the writer that succeeded.",
                                  buckets=_COMMIT_BUCKETS, registry=self.registry)
        self._graphql_seconds = Histogram("replayql_graphql_request_seconds", "GraphQL requests by operation name.",
                                          ["operation"], buckets=_REQUEST_BUCKETS, registry=self.registry)
        self._graphql_errors = Counter("replayql_graphql_errors", "Errors in GraphQL answers, by code.", ["code"],
                                       registry=self.registry)
        self._operation = BoundedLabel(MAX_OPERATION_NAMES)
        dropped = Counter("replayql_subscriptions_dropped", "Subscribers dropped or refused, by reason.", ["reason"],
                          registry=self.registry)
        self._dropped = {reason: dropped.labels(reason) for reason in DROP_REASONS}
        reads = Counter("replayql_live_reads", "Store reads made for live subscriptions, by read: one per shared "
                        "read of a poll (batches, sessions, issues), each subscription's catch-up reads, and the "
                        "checks of open sockets' API keys (one per key and interval).", ["read"],
                        registry=self.registry)
        self._live_reads = {read: reads.labels(read) for read in LIVE_READS}

    def watch(self, state: ServerState) -> None:
        """Report this state at every scrape."""
        self.registry.register(_StateCollector(state))

    def ingest_batch(self, outcome: str, events: int = 0) -> None:
        self._batches[outcome].inc()
        if events:
            self._events[outcome].inc(events)

    def ingest_rejected(self, reason: str) -> None:
        self._batches["rejected"].inc()
        self._rejected.get(reason, self._rejected[OTHER]).inc()

    def observe_commit(self, seconds: float) -> None:
        self._commits.observe(seconds)

    def live_dropped(self, reason: str) -> None:
        self._dropped[reason].inc()

    def live_read(self, read: str) -> None:
        self._live_reads[read].inc()

    def graphql_request(self, operation: str | None, seconds: float, error_codes: Iterable[str]) -> None:
        """`operation`: the executed operation's name ("anonymous" when it has none), None when none was chosen."""
        self._graphql_seconds.labels(NO_OPERATION if operation is None else self._operation(operation)
                                     ).observe(seconds)
        for code in error_codes:
            self._graphql_errors.labels(code if code in GRAPHQL_ERROR_CODES else OTHER).inc()


class _StateCollector:
    """Gauges read at scrape time: nothing is counted on the hot path for them."""

    def __init__(self, state: ServerState) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        yield from self._backlog()
        yield from self._storage()
        yield from self._caches()
        yield from self._live()

    def _backlog(self) -> Iterator[Metric]:
        backlog = self.state.backlog()
        yield GaugeMetricFamily("replayql_ingest_queue_batches", "Batches accepted and not yet written.",
                                value=backlog.batches)
        yield GaugeMetricFamily("replayql_ingest_queue_bytes", "Bytes of JSON of the batches not yet written.",
                                value=backlog.bytes)
        yield GaugeMetricFamily("replayql_ingest_queue_oldest_wait_seconds",
                                "How long the oldest batch not yet written has waited.", value=backlog.oldest_wait_s)

    def _storage(self) -> Iterator[Metric]:
        try:
            size = self.state.storage(_STORE_SIZE_TIMEOUT_S)
        except Exception as exc:  # a store that does not answer leaves these out; /readyz says why
            log.warning("store size not available: %s", type(exc).__name__)
            return
        yield GaugeMetricFamily("replayql_store_bytes", "Bytes the store holds on disk.", value=size.bytes)
        rows = GaugeMetricFamily("replayql_store_rows", "Rows of each table of the store.", labels=["table"])
        for table, count in sorted(size.rows.items()):
            rows.add_metric([table], count)
        yield rows

    def _live(self) -> Iterator[Metric]:
        counts = self.state.live()
        yield GaugeMetricFamily("replayql_subscription_connections", "WebSockets open at /graphql.",
                                value=counts.connections)
        subscriptions = GaugeMetricFamily("replayql_subscriptions", "GraphQL subscriptions running, by operation.",
                                          labels=["operation"])
        for operation, count in sorted(counts.subscriptions.items()):
            subscriptions.add_metric([operation], count)
        yield subscriptions

    def _caches(self) -> Iterator[Metric]:
        entries = GaugeMetricFamily("replayql_cache_entries", "Entries of each in-memory cache.", labels=["cache"])
        bounds = GaugeMetricFamily("replayql_cache_max_entries", "The most entries each in-memory cache holds.",
                                   labels=["cache"])
        for name, (now, bound) in sorted(self.state.caches().items()):
            entries.add_metric([name], now)
            bounds.add_metric([name], bound)
        yield entries
        yield bounds
