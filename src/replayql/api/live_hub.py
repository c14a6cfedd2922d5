"""The server's one poller of the store's changes, and the shared reads that turn them into live updates.

While at least one subscription exists, a task on the server's event loop asks the store what changed
(`Store.changes_since`: DuckDB's in-memory log of its commits, or ClickHouse's ledger read by time, which also
holds what other servers wrote) every `LiveLimits.poll_interval_s`, and hands the changes to each topic. A topic
is one shared read (api.subscriptions defines them): what every subscription of the same kind, app and filter
needs, read once per poll and offered to each of their feeds, so the store's work grows with what changed, not
with the number of subscribers.

Every live read (the topics', and each subscription's catch-up) runs on the hub's own threads, at most
`LiveLimits.read_threads` at once, and the poller waits for its topics before it polls again: however many
subscribers there are, the writer competes with that many reads at most, and a poll cycle that falls behind
hands the next cycle more changes at once (coalesced) instead of adding reads. Ingestion never waits on any of it.

It also counts subscriptions and sockets against their limits, for /metrics, and watches the API keys of open
sockets: one registry read per key and `LiveLimits.key_check_interval_s` for all of that key's sockets, so a
thousand players on one key cost one read, not a thousand at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Callable, Hashable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Generic, TypeVar

from replayql.api.metrics import LiveCounts, Metrics
from replayql.config import LiveLimits
from replayql.query.sql import AppScope
from replayql.store.base import Change, ChangeCursor, Registry, Store

log = logging.getLogger(__name__)
_RETRY_AFTER_FAILURE_S = 1.0
T = TypeVar("T")
R = TypeVar("R")


class SlowSubscriber(Exception):
    """A subscription fell too far behind (its changes or its socket's messages piled up past their limits)."""


class Feed(Generic[T]):
    """What a topic offered one subscription and it has not taken yet."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._pending: list[T] = []
        self._wake = asyncio.Event()
        self._overflowed = False
        self._failure: BaseException | None = None

    def offer(self, items: list[T]) -> None:
        if len(self._pending) + len(items) > self.limit:
            self._overflowed = True  # it cannot keep up: it is dropped rather than kept growing
        else:
            self._pending.extend(items)
        self._wake.set()

    def fail(self, failure: BaseException) -> None:
        """The shared read failed: the subscription ends with this error (its client resumes from its cursor)."""
        self._failure = failure
        self._wake.set()

    async def next(self, timeout_s: float | None = None) -> list[T]:
        """The items since the last call, waiting up to `timeout_s` for one (None: as long as it takes)."""
        if not self._pending and not self._overflowed and self._failure is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout_s)
        if self._overflowed:
            raise SlowSubscriber(f"more than {self.limit:,} updates waited to be taken")
        if self._failure is not None:
            raise self._failure
        taken, self._pending = self._pending, []
        self._wake.clear()
        return taken


class Topic(ABC, Generic[T]):
    """One shared read of an app: `update` gets the app's changes of each poll, reads once what they mean for its
    subscriptions, and offers it to their feeds, all of them (`part` None) or those following one part (a
    session)."""

    def __init__(self, app_id: str) -> None:
        self.app_id = app_id
        self.feeds: dict[str | None, set[Feed[T]]] = {}

    @abstractmethod
    async def update(self, changes: list[Change], hub: LiveHub) -> None: ...

    def offer(self, part: str | None, items: list[T]) -> None:
        if items:
            for feed in tuple(self.feeds.get(part, ())):
                feed.offer(items)

    def fail(self, failure: BaseException) -> None:
        for feeds in self.feeds.values():
            for feed in feeds:
                feed.fail(failure)


class KeyWatch:
    """The API keys of open sockets, each read once per interval for all of its sockets: a key revoked (or
    removed) calls every `on_revoked` its sockets registered, within `interval_s`."""

    def __init__(self, registry: Registry, interval_s: float, metrics: Metrics) -> None:
        self.registry, self.interval_s, self.metrics = registry, interval_s, metrics
        self._watchers: dict[str, set[Callable[[], None]]] = {}
        self._task: asyncio.Task[None] | None = None

    @contextlib.contextmanager
    def watch(self, key_id: str, on_revoked: Callable[[], None]) -> Iterator[None]:
        self._watchers.setdefault(key_id, set()).add(on_revoked)
        if self._task is None:
            self._task = asyncio.create_task(self._check(), name="live-key-watch")
        try:
            yield
        finally:
            watchers = self._watchers.get(key_id, set())
            watchers.discard(on_revoked)
            if not watchers:
                self._watchers.pop(key_id, None)

    async def _check(self) -> None:
        try:
            while self._watchers:
                await asyncio.sleep(self.interval_s)
                for key_id in list(self._watchers):
                    self.metrics.live_read("key_check")
                    try:
                        current = await asyncio.to_thread(self.registry.get_key, key_id)
                    except Exception as exc:  # the registry unreachable: the sockets stay, checked next time
                        log.warning("live: checking an API key failed (%s)", type(exc).__name__)
                        continue
                    if current is None or current.revoked_at is not None:
                        for revoked in tuple(self._watchers.get(key_id, ())):
                            revoked()
        finally:
            self._task = None


class LiveHub:
    def __init__(self, store: Store, limits: LiveLimits, metrics: Metrics, scope: Callable[[str], AppScope],
                 registry: Registry) -> None:
        self.store, self.limits, self.metrics, self.scope = store, limits, metrics, scope
        self.keys = KeyWatch(registry, limits.key_check_interval_s, metrics)
        self._topics: dict[Hashable, Topic[Any]] = {}
        self._poller: asyncio.Task[None] | None = None
        self._first_poll: asyncio.Future[None] | None = None
        self._readers = ThreadPoolExecutor(limits.read_threads, thread_name_prefix="live-read")
        self.connections = 0
        self.subscriptions: Counter[str] = Counter()  # by operation (root field)
        self._by_key: Counter[str] = Counter()

    # -- reads -----------------------------------------------------------------------------------------------

    async def read(self, kind: str, fn: Callable[..., R], app_id: str, *args: Any) -> R:
        """Run a query-layer reader for a live subscription on the hub's threads, counted by `kind` for /metrics
        (replayql_live_reads_total)."""
        self.metrics.live_read(kind)
        call = functools.partial(fn, self.store, self.scope(app_id), *args)
        return await asyncio.get_running_loop().run_in_executor(self._readers, call)

    def close(self) -> None:
        self._readers.shutdown(wait=False, cancel_futures=True)

    # -- feeds -----------------------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def feed(self, key: Hashable, topic: Callable[[], Topic[T]], part: str | None = None
                   ) -> AsyncIterator[Feed[T]]:
        """A feed of the topic `key` (made by `topic()` if no subscription has it yet) from now on: once this
        yields, the poller's cursor is in place, so what the caller reads from the store next and what the feed
        then gets leave no gap between them."""
        found: Topic[T] = self._topics.get(key) or self._topics.setdefault(key, topic())
        feed: Feed[T] = Feed(self.limits.max_pending_changes)
        found.feeds.setdefault(part, set()).add(feed)
        try:
            await self._polling()
            yield feed
        finally:
            feeds = found.feeds.get(part, set())
            feeds.discard(feed)
            if not feeds:
                found.feeds.pop(part, None)
            if not found.feeds and self._topics.get(key) is found:
                del self._topics[key]

    async def _polling(self) -> None:
        if self._poller is None:
            self._first_poll = asyncio.get_running_loop().create_future()
            self._poller = asyncio.create_task(self._poll(self._first_poll), name="live-poller")
        assert self._first_poll is not None
        await asyncio.shield(self._first_poll)

    async def _poll(self, first: asyncio.Future[None]) -> None:
        cursor: ChangeCursor | None = None
        try:
            while self._topics:
                try:
                    changes, cursor = await asyncio.get_running_loop().run_in_executor(
                        self._readers, self.store.changes_since, cursor)
                except Exception as exc:
                    if not first.done():  # no cursor: the feeds cannot start
                        first.set_exception(exc)
                        return
                    log.warning("live: reading the store's changes failed (%s); trying again", type(exc).__name__)
                    await asyncio.sleep(_RETRY_AFTER_FAILURE_S)
                    continue
                if not first.done():
                    first.set_result(None)
                await self._update_topics(changes)
                await asyncio.sleep(self.limits.poll_interval_s)
        finally:
            self._poller = None  # the next feed starts a poller afresh, with a new cursor

    async def _update_topics(self, changes: list[Change]) -> None:
        """Every topic sees its app's changes (an empty list too: a throttled topic may have updates due)."""
        by_app: dict[str, list[Change]] = {}
        for change in changes:
            by_app.setdefault(change.app_id, []).append(change)
        topics = list(self._topics.values())
        await asyncio.gather(*(self._update(t, by_app.get(t.app_id, [])) for t in topics))

    async def _update(self, topic: Topic[Any], changes: list[Change]) -> None:
        try:
            await topic.update(changes, self)
        except Exception as exc:
            log.warning("live: a shared read failed (%s); its subscriptions end", type(exc).__name__)
            topic.fail(exc)

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
