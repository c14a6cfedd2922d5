"""What the ingest pipeline hands to a store: plain records, independent of any backend.

Times are integers, epoch milliseconds UTC, as on the wire; backends store them as their timestamp type.

Every record is mergeable, so a store can apply batches in any grouping (one transaction per group commit on
DuckDB, aggregate states on ClickHouse) and get the same summaries.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Kinds of rows in the events table. The last three are derived at ingest (frustration signals).
EVENT_KINDS = (
    "page", "click", "input", "console", "network", "error", "custom", "identify", "vital",
    "rage_click", "dead_click", "error_click",
)
VITAL_NAMES = ("LCP", "FCP", "CLS", "INP", "TTFB", "FID")


@dataclass(slots=True)
class EventRecord:
    """One row of the wide events table; fields that do not apply to a kind stay None."""

    app_id: str
    session_id: str
    seq: int
    idx: int
    ts: int
    kind: str
    url: str | None = None
    host: str | None = None
    path: str | None = None
    title: str | None = None
    referrer: str | None = None
    selector: str | None = None
    text: str | None = None
    x: int | None = None
    y: int | None = None
    level: str | None = None
    message: str | None = None
    method: str | None = None
    status: int | None = None
    duration_ms: float | None = None
    request_bytes: int | None = None
    response_bytes: int | None = None
    error_type: str | None = None
    stack: str | None = None
    handled: bool | None = None
    issue_id: str | None = None
    name: str | None = None
    value: float | None = None
    user_id: str | None = None
    properties: str | None = None  # JSON text: custom properties, error {tags, extra}, identify traits


EVENT_COLUMNS: tuple[str, ...] = tuple(EventRecord.__slots__)


@dataclass(slots=True)
class SessionDelta:
    """What one batch adds to a session's summary. Counts add, times take min/max, facts keep the first seen."""

    app_id: str
    session_id: str
    started_at: int
    ended_at: int
    active_ms: int = 0
    page_count: int = 0
    click_count: int = 0
    error_count: int = 0
    event_count: int = 0
    rage_click_count: int = 0
    dead_click_count: int = 0
    error_click_count: int = 0
    first_page_at: int | None = None
    initial_url: str | None = None
    initial_host: str | None = None
    initial_path: str | None = None
    referrer: str | None = None
    utm_source: str | None = None
    utm_medium: str | None = None
    utm_campaign: str | None = None
    context_seq: int | None = None  # the seq of this batch when it carried a context
    user_agent: str | None = None
    browser: str | None = None
    browser_version: str | None = None
    os: str | None = None
    os_version: str | None = None
    device_type: str | None = None
    country: str | None = None
    client_ip: str | None = None
    language: str | None = None
    timezone: str | None = None
    release: str | None = None
    viewport_width: int | None = None
    viewport_height: int | None = None
    sdk_name: str | None = None
    sdk_version: str | None = None
    user_id: str | None = None  # set by identify; the latest wins
    lcp: float | None = None  # web vitals: the worst (largest) value seen
    fcp: float | None = None
    cls: float | None = None
    inp: float | None = None
    ttfb: float | None = None
    fid: float | None = None
    has_recording: bool = False
    tail: str | None = None  # JSON of the SessionTail after this batch (see ingest.sessionize)


@dataclass(slots=True)
class UserDelta:
    app_id: str
    user_id: str
    seen_from: int
    seen_to: int
    name: str | None = None
    email: str | None = None
    traits: dict[str, Any] = field(default_factory=dict)  # merge patch: a None value removes the trait
    new_session: bool = False  # this batch attached a session to the user for the first time


@dataclass(slots=True)
class IssueDelta:
    app_id: str
    issue_id: str
    title: str
    error_type: str
    message: str
    stack: str | None
    first_seen: int
    last_seen: int
    count: int


@dataclass(slots=True)
class RecordingChunk:
    app_id: str
    session_id: str
    seq: int
    first_ts: int
    last_ts: int
    event_count: int
    data: bytes  # JSON array of the rrweb events, byte for byte as received; each store compresses it


@dataclass(slots=True)
class BatchWrite:
    """Everything one accepted ingest batch writes. Stored atomically together with its (session, seq) ledger."""

    app_id: str
    session_id: str
    seq: int
    session: SessionDelta
    events: list[EventRecord] = field(default_factory=list)
    user: UserDelta | None = None
    issues: list[IssueDelta] = field(default_factory=list)
    recording: RecordingChunk | None = None
    # A try of this batch began writing it and did not finish (a shared store's tail said stored, its ledger
    # did not): the store must not count what that try wrote twice.
    resumed: bool = False

    @property
    def key(self) -> tuple[str, str, int]:
        """(app id, session id, seq): the batch, as the ledger knows it."""
        return self.app_id, self.session_id, self.seq

    def events_span_ms(self, otherwise_ms: int) -> tuple[int, int]:
        """A range of times that holds all its events, for live reads to find them by time: its first and last
        events' times, or `otherwise_ms` alone when it has none (any range holds none)."""
        if not self.events:
            return otherwise_ms, otherwise_ms
        times = [e.ts for e in self.events]
        return min(times), max(times)
