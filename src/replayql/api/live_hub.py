"""The server's one poller of the store's changes, and what it hands each live subscription.

While at least one subscription exists, a task on the server's event loop asks the store what changed
(`Store.changes_since`: DuckDB's in-memory log of its commits, or ClickHouse's ledger read by time, which also
holds what other servers wrote) every `LiveLimits.poll_interval_s`, and offers each change to the feeds of its
app (a `sessionLive` feed: of its session). A feed only collects change notices; the subscription reads what it
needs through the query layer (the tenant guard and filters apply as for queries). Ingestion never waits on any
of this: the poller reads the store like any query, on a worker thread.

It also counts subscriptions and sockets against their limits, for /metrics.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncIterator

from starlette.concurrency import run_in_threadpool

from replayql.api.metrics import LiveCounts
from replayql.config import LiveLimits
from replayql.store.base import BatchStored, Change, ChangeCursor, Store

log = logging.getLogger(__name__)
_RETRY_AFTER_FAILURE_S = 1.0


class SlowSubscriber(Exception):
    """A subscription fell too far behind (its changes or its socket's messages piled up past their limits)."""


class Feed:
    """The change notices of one subscription: those of its app, or of one session of it."""

    def __init__(self, app_id: str, session_id: str | None, limit: int) -> None:
        self.app_id, self.session_id, self.limit = app_id, session_id, limit
        self._pending: list[Change] = []
        self._wake = asyncio.Event()
        self._overflowed = False

    def offer(self, changes: list[Change]) -> None:
        if self.session_id is not None:
            changes = [c for c in changes if isinstance(c, BatchStored) and c.session_id == self.session_id]
        if not changes:
            return
        if len(self._pending) + len(changes) > self.limit:
            self._overflowed = True  # its reads cannot keep up: it is dropped rather than kept growing
        else:
            self._pending.extend(changes)
        self._wake.set()

    async def next(self, timeout_s: float | None = None) -> list[Change]:
        """The notices since the last call, waiting up to `timeout_s` for one (None: as long as it takes)."""
        if not self._pending and not self._overflowed:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        if self._overflowed:
            raise SlowSubscriber(f"more than {self.limit:,} changes waited to be read")
        taken, self._pending = self._pending, []
        self._wake.clear()
        return taken


class LiveHub:
    def __init__(self, store: Store, limits: LiveLimits) -> None:
        self.store, self.limits = store, limits
        self._feeds: dict[str, set[Feed]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._first_poll: asyncio.Future[None] | None = None
        self.connections = 0
        self.subscriptions: Counter[str] = Counter()  # by operation (root field)
        self._by_key: Counter[str] = Counter()
        self.polls = 0

    # -- feeds -----------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def feed(self, app_id: str, session_id: str | None = None) -> AsyncIterator[Feed]:
        """A feed of the changes stored from now on: once this yields, the poller's cursor is in place, so what
        the caller reads from the store next and what the feed then notices leave no gap between them."""
        feed = Feed(app_id, session_id, self.limits.max_pending_changes)
        self._feeds.setdefault(app_id, set()).add(feed)
        try:
            await self._polling()
            yield feed
        finally:
            feeds = self._feeds.get(app_id, set())
            feeds.discard(feed)
            if not feeds:
                self._feeds.pop(app_id, None)

    async def _polling(self) -> None:
        if self._poller is None:
            self._first_poll = asyncio.get_running_loop().create_future()
            self._poller = asyncio.create_task(self._poll(self._first_poll), name="live-poller")
        assert self._first_poll is not None
        await asyncio.shield(self._first_poll)

    async def _poll(self, first: asyncio.Future[None]) -> None:
        cursor: ChangeCursor | None = None
        try:
            while self._feeds:
                try:
                    changes, cursor = await run_in_threadpool(self.store.changes_since, cursor)
                except Exception as exc:
                    if not first.done():  # no cursor: the feeds cannot start
                        first.set_exception(exc)
                        return
                    log.warning("live: reading the store's changes failed (%s); trying again", type(exc).__name__)
                    await asyncio.sleep(_RETRY_AFTER_FAILURE_S)
                    continue
                self.polls += 1
                if not first.done():
                    first.set_result(None)
                self._fan_out(changes)
                await asyncio.sleep(self.limits.poll_interval_s)
        finally:
            self._poller = None  # the next feed starts a poller afresh, with a new cursor

    def _fan_out(self, changes: list[Change]) -> None:
        by_app: dict[str, list[Change]] = {}
        for change in changes:
            by_app.setdefault(change.app_id, []).append(change)
        for app_id, found in by_app.items():
            for feed in tuple(self._feeds.get(app_id, ())):
                feed.offer(found)

    # -- limits and counts -----------------------------------------------------------------------------------

    def counts(self) -> LiveCounts:
        """For /metrics (read on a scrape's thread: a copy of small counters)."""
        return LiveCounts(self.connections, {op: n for op, n in self.subscriptions.copy().items() if n})

    def open_connection(self) -> bool:
        if self.connections >= self.limits.max_connections:
            return False
        self.connections += 1
        return True

    def close_connection(self) -> None:
        self.connections -= 1

    def admit(self, key_id: str, operation: str) -> str | None:
        """Count a new subscription, or say which limit it would pass."""
        if self._by_key[key_id] >= self.limits.max_subscriptions_per_key:
            return (f"this API key has {self._by_key[key_id]} subscriptions open on this server; the limit is "
                    f"{self.limits.max_subscriptions_per_key}")
        if sum(self.subscriptions.values()) >= self.limits.max_subscriptions:
            return f"this server holds its limit of {self.limits.max_subscriptions} subscriptions; try another"
        self._by_key[key_id] += 1
        self.subscriptions[operation] += 1
        return None

    def release(self, key_id: str, operation: str) -> None:
        self._by_key[key_id] -= 1
        if self._by_key[key_id] <= 0:
            del self._by_key[key_id]
        self.subscriptions[operation] -= 1
