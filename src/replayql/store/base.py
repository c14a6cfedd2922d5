"""The interfaces of a backend: the store every backend offers to the ingest writer and the query layer, and the
registry of apps and API keys that goes with it."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlglot import exp

from replayql.store.records import BatchWrite
from replayql.store.registry import ApiKey, App, KeyScope

BatchKey = tuple[str, str, int]  # (app id, session id, seq)
Only = tuple[str, list[exp.Expr]]  # (key column, values): the rows a query wants of a relation


@dataclass(frozen=True)
class ReadScope:
    """Whose rows a read wants: the app (its id, and the placeholder the query guards it with), a way to bind
    more values as parameters, and `only`, a hint that the caller wants just these keys (it filters them itself):
    a store that folds rows when it reads may fold only those."""

    app_id: str
    app: exp.Placeholder
    bind: Callable[[Any], exp.Placeholder]
    only: Only | None = None
    # what the store looked up once for every read of one query (say, which sessions it must read apart): one
    # dict per AppScope, shared by all the reads it builds
    memo: dict[str, Any] = field(default_factory=dict)


class StoreLocked(Exception):
    """The store is held by another process (most often a running `replayql serve`)."""


class StoreUnavailable(Exception):
    """The store cannot be reached or opened; the message says why and what to check."""


class StoreTimeout(Exception):
    """A read ran past its time limit and was stopped."""


@dataclass(frozen=True, slots=True)
class SessionState:
    user_id: str | None
    tail: str | None


@dataclass(frozen=True, slots=True)
class StorageSize:
    """What a store holds, for monitoring: bytes on disk and rows per table (the store's own table names)."""

    bytes: int
    rows: dict[str, int]


@dataclass(frozen=True, slots=True)
class BatchStored:
    """A batch all of whose rows are readable: its transaction committed (DuckDB), or its ledger row, written
    last, is in (ClickHouse)."""

    app_id: str
    session_id: str
    seq: int
    received_at_ms: int  # the writer's clock when it wrote the batch
    # a range of times that holds all its events (BatchWrite.events_span_ms); None: unknown (a ledger row written
    # before the ledger kept it)
    events_span_ms: tuple[int, int] | None = None

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.app_id, self.session_id, self.seq)


@dataclass(frozen=True, slots=True)
class IssueStatusSet:
    """updateIssue set an issue's status."""

    app_id: str
    issue_id: str
    status: str
    changed_at_ms: int

    @property
    def key(self) -> tuple[str, str, int]:
        return (self.app_id, self.issue_id, self.changed_at_ms)


Change = BatchStored | IssueStatusSet


@dataclass(frozen=True, slots=True)
class ChangeCursor:
    """Where a reader of `Store.changes_since` is; only the store that made it reads it. `position` is the store's
    own (a log sequence, or a time in ms); `recent` holds the keys of changes already reported that a later read
    may meet again (a read by time reads a window before the position again, for writes that commit late)."""

    position: int
    recent: frozenset[tuple[str, str, int]] = frozenset()


@dataclass(slots=True)
class DeletionCounts:
    sessions: int = 0
    events: int = 0
    recordings: int = 0
    users: int = 0
    session_ids: list[str] = field(default_factory=list)


class Store(Protocol):
    """A backend. Reads are safe from any thread; writes come from one writer thread per process."""

    dialect: str  # the sqlglot dialect its SQL is printed in
    # True when this process is the only writer, so the writer may cache session tails between batches.
    single_writer: bool
    # True when summaries are folded on read, so a page is best found by its sort keys alone first and then
    # read whole by its ids (query.lists.fetch_page); False when rows are stored whole.
    narrow_pages: bool

    # -- query support -----------------------------------------------------------------------------------
    def relation(self, table: str, alias: str, scope: ReadScope) -> exp.Expr:
        """The FROM item that reads logical table `table` for one app (the guard may sit inside). Logical tables:
        sessions, users, issues, events, recordings, and issue_sessions (app_id, issue_id, session_id): the
        sessions each issue occurred in, a pair possibly repeated (callers count or select them DISTINCT)."""
        ...

    def placeholder(self, name: str, value: Any) -> exp.Placeholder: ...

    def fetch_dicts(self, query: str, params: dict[str, Any], timeout_s: float | None = None
                    ) -> list[dict[str, Any]]:
        """Rows as dicts; with `timeout_s`, a query still running then is stopped (StoreTimeout)."""
        ...

    def recording_payload(self, stored: Any) -> bytes:
        """The JSON array of rrweb events a `recordings.data` value holds."""
        ...

    # -- the write path ----------------------------------------------------------------------------------
    def seen_batches(self, keys: Sequence[BatchKey]) -> set[BatchKey]:
        """Which of these batches the store holds beyond what the session tails tell: a `single_writer` store
        answers none, since the tails it wrote are the whole ledger (it commits with each batch)."""
        ...

    def session_states(self, app_id: str, session_ids: Sequence[str]) -> dict[str, SessionState]: ...

    def deleted_among(self, app_id: str, session_ids: Sequence[str], user_ids: Sequence[str]
                      ) -> tuple[set[str], set[str]]:
        """Which of these sessions and users were deleted (their data must not be stored again)."""
        ...

    def write(self, writes: Sequence[BatchWrite], received_at_ms: int) -> None: ...

    # -- mutations -------------------------------------------------------------------------------------
    def delete_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts: ...

    def delete_user(self, app_id: str, user_id: str) -> DeletionCounts: ...

    # -- retention (store.retention) -----------------------------------------------------------------------
    def expired_sessions(self, cutoff: datetime, limit: int) -> list[tuple[str, str]]:
        """Up to `limit` (app id, session id) of sessions expired at `cutoff`, the least recently active first."""
        ...

    def purge_sessions(self, app_id: str, session_ids: Sequence[str]) -> DeletionCounts:
        """Delete these sessions and what derives from them: their events, recordings and ledger; the users left
        without a session (`users` counts them); issue counts. Unlike `delete_sessions`, later batches of these
        sessions are taken, as a new session."""
        ...

    def identify_user(self, app_id: str, user_id: str, name: str | None, email: str | None,
                      traits: dict[str, Any]) -> None: ...

    def set_issue_status(self, app_id: str, issue_id: str, status: str) -> bool: ...

    def ping(self) -> bool: ...

    # -- live subscriptions (api.live_hub polls this) ---------------------------------------------------------
    def changes_since(self, cursor: ChangeCursor | None) -> tuple[list[Change], ChangeCursor]:
        """What was stored after `cursor`, each change once and in the order written (as far as the store
        knows it), and the cursor to ask with next; with None, no changes and a cursor at now. Every process
        sharing the store sees every change, whoever wrote it."""
        ...

    def storage_size(self, timeout_s: float) -> StorageSize:
        """Bytes on disk and rows per table, from the store's own bookkeeping (no table scans); a read still
        running after `timeout_s` is stopped (StoreTimeout)."""
        ...

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        """Each in-memory structure the store keeps: (entries now, the most it will hold)."""
        ...

    def close(self) -> None: ...


class Registry(Protocol):
    """Apps and API keys: store.registry.SQLiteRegistry beside DuckDB, store.clickhouse_registry.ClickHouseRegistry
    inside ClickHouse. Every read sees the latest write of any process, so a key created or revoked with the CLI
    counts on the server's next request. Mistakes a user can fix raise RegistryError."""

    def create_app(self, app_id: str) -> App: ...

    def get_app(self, app_id: str) -> App | None: ...

    def list_apps(self) -> list[App]: ...

    def set_allowed_origins(self, app_id: str, origins: Sequence[str]) -> tuple[str, ...]:
        """The web origins the app's batches may come from (none: any origin), normalised, as stored."""
        ...

    def allowed_origins(self, app_id: str) -> tuple[str, ...]: ...

    def create_key(self, app_id: str, scope: KeyScope, name: str | None = None) -> tuple[ApiKey, str]:
        """Issue a key; the token returned is the only copy of its secret."""
        ...

    def list_keys(self, app_id: str) -> list[ApiKey]:
        """All keys of an app, revoked ones included, oldest first."""
        ...

    def get_key(self, key_id: str) -> ApiKey | None: ...

    def revoke_key(self, key_id: str) -> bool:
        """True if the key was active and is now revoked."""
        ...

    def authenticate(self, token: str) -> ApiKey | None:
        """The active key a token belongs to, or None; never raises for a bad token."""
        ...

    def close(self) -> None: ...
