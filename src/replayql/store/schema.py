"""The analytical schema, described once as data: columns, types and how each summary merges.

Sessions, users and issues are summaries: each batch brings a delta of them, and a merge rule per column says
how two deltas (or a stored summary and a delta) combine. Backends turn these declarations into their own DDL
and merge code (store.merge); the query layer reads column names from here.
"""

from __future__ import annotations

from enum import Enum

from replayql.store.records import EVENT_COLUMNS, SessionDelta

SCHEMA_VERSION = 2  # of the DuckDB store (the ClickHouse tables are created as they are)


class Merge(Enum):
    """How two summaries of the same thing combine (in a group commit, an upsert, or a ClickHouse merge)."""

    SUM = "sum"
    MIN = "min"
    MAX = "max"  # also "or" for booleans
    LATEST = "latest"  # the non-null value of the latest delta wins (its summary's `order` column decides)
    LATEST_WRITTEN = "latest_written"  # the non-null value of the delta written last (a session's tail)
    WITH_FIRST_PAGE = "with_first_page"  # taken together with the earliest page view (landing page, UTM)
    WITH_CONTEXT = "with_context"  # taken from the lowest-seq batch that carried a context (device facts)
    WITH_FIRST_OCCURRENCE = "with_first_occurrence"  # an issue's sample: from its earliest occurrence
    PATCH = "patch"  # a JSON object merged key by key, later deltas first (RFC 7396: null removes a key)
    DISTINCT_SESSIONS = "distinct_sessions"  # sessions attached to a user, each once (a delta flags a new one)
    SET_BY_API = "set_by_api"  # not from deltas: a mutation sets it (an issue's status)

    @property
    def ordering(self) -> str | None:
        """For the WITH_* rules: the column whose minimum picks the row the value comes from."""
        return {Merge.WITH_FIRST_PAGE: "first_page_at", Merge.WITH_CONTEXT: "context_seq",
                Merge.WITH_FIRST_OCCURRENCE: "first_seen"}.get(self)


# Logical column types, mapped to engine types by each backend.
STRING, INT, BIGINT, FLOAT, BOOL, TIME, JSON, BLOB = "string", "int", "bigint", "float", "bool", "time", "json", "blob"

EVENT_TYPES: dict[str, str] = {
    "app_id": STRING, "session_id": STRING, "seq": INT, "idx": INT, "ts": TIME, "kind": STRING,
    "url": STRING, "host": STRING, "path": STRING, "title": STRING, "referrer": STRING, "selector": STRING,
    "text": STRING, "x": INT, "y": INT, "level": STRING, "message": STRING, "method": STRING, "status": INT,
    "duration_ms": FLOAT, "request_bytes": BIGINT, "response_bytes": BIGINT, "error_type": STRING,
    "stack": STRING, "handled": BOOL, "issue_id": STRING, "name": STRING, "value": FLOAT, "user_id": STRING,
    "properties": JSON,
}
assert tuple(EVENT_TYPES) == EVENT_COLUMNS, "events schema and EventRecord must list the same columns"

_FIRST_PAGE_FACTS = ("initial_url", "initial_host", "initial_path", "referrer", "utm_source", "utm_medium",
                     "utm_campaign")
_CONTEXT_FACTS = ("user_agent", "browser", "browser_version", "os", "os_version", "device_type", "country",
                  "client_ip", "language", "timezone", "release", "sdk_name", "sdk_version")
_COUNTS = ("active_ms", "page_count", "click_count", "error_count", "event_count", "rage_click_count",
           "dead_click_count", "error_click_count")
VITAL_COLUMNS = ("lcp", "fcp", "cls", "inp", "ttfb", "fid")

# (column, logical type, merge rule) for every column a SessionDelta carries, keys first.
SESSION_COLUMNS: tuple[tuple[str, str, Merge | None], ...] = (
    ("app_id", STRING, None),
    ("session_id", STRING, None),
    ("started_at", TIME, Merge.MIN),
    ("ended_at", TIME, Merge.MAX),
    *((name, BIGINT, Merge.SUM) for name in _COUNTS),
    ("first_page_at", TIME, Merge.MIN),
    *((name, STRING, Merge.WITH_FIRST_PAGE) for name in _FIRST_PAGE_FACTS),
    ("context_seq", INT, Merge.MIN),
    *((name, STRING, Merge.WITH_CONTEXT) for name in _CONTEXT_FACTS),
    ("viewport_width", INT, Merge.WITH_CONTEXT),
    ("viewport_height", INT, Merge.WITH_CONTEXT),
    ("user_id", STRING, Merge.LATEST),
    *((name, FLOAT, Merge.MAX) for name in VITAL_COLUMNS),
    ("has_recording", BOOL, Merge.MAX),
    # The tail a batch leaves is the session's state after every batch written so far, late ones included.
    ("tail", JSON, Merge.LATEST_WRITTEN),
)
assert {c[0] for c in SESSION_COLUMNS} == set(SessionDelta.__slots__), "sessions schema drifted"

# Users: `identify` in a session, or the API's identifyUser. LATEST follows the order deltas were written in.
USER_SUMMARY: tuple[tuple[str, str, Merge | None], ...] = (
    ("app_id", STRING, None),
    ("user_id", STRING, None),
    ("name", STRING, Merge.LATEST),
    ("email", STRING, Merge.LATEST),
    ("traits", JSON, Merge.PATCH),
    ("first_seen", TIME, Merge.MIN),
    ("last_seen", TIME, Merge.MAX),
    # Each session the user was identified in counts once, however often it switched users (A, B, A again).
    ("session_count", BIGINT, Merge.DISTINCT_SESSIONS),
)
# Issues: the occurrences of one fingerprint; the sample (title, message, stack) is the earliest occurrence's
# whatever order batches arrive in. A regression is read from the times (store.merge.issue_status).
ISSUE_SUMMARY: tuple[tuple[str, str, Merge | None], ...] = (
    ("app_id", STRING, None),
    ("issue_id", STRING, None),
    ("title", STRING, Merge.WITH_FIRST_OCCURRENCE),
    ("error_type", STRING, Merge.WITH_FIRST_OCCURRENCE),
    ("message", STRING, Merge.WITH_FIRST_OCCURRENCE),
    ("stack", STRING, Merge.WITH_FIRST_OCCURRENCE),
    ("status", STRING, Merge.SET_BY_API),
    ("first_seen", TIME, Merge.MIN),
    ("last_seen", TIME, Merge.MAX),
    ("count", BIGINT, Merge.SUM),
    ("status_changed_at", TIME, Merge.SET_BY_API),
    ("last_received_at", TIME, Merge.MAX),  # when the latest occurrence reached the server
)
USER_COLUMNS = tuple((name, logical) for name, logical, _ in USER_SUMMARY)
ISSUE_COLUMNS = tuple((name, logical) for name, logical, _ in ISSUE_SUMMARY)
RECORDING_COLUMNS = (("app_id", STRING), ("session_id", STRING), ("seq", INT), ("first_ts", TIME),
                     ("last_ts", TIME), ("event_count", INT), ("data", BLOB))
