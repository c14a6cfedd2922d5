"""The single writer: batches queue here and are written in group commits.

One thread owns all writes to the store, so ingest batches and API mutations never race. It takes everything
queued (up to a cap) into one transaction and only then resolves the waiting requests: a 200 is sent after the
commit, and throughput comes from large transactions rather than from skipping durability.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from replayql.config import CacheLimits, IngestLimits
from replayql.ingest.sessionize import SessionizeOptions, SessionTail, load_tail, sessionize
from replayql.ingest.wire import Batch, IdentifyEvent
from replayql.lru import Lru
from replayql.store.base import DeletionCounts, Store
from replayql.store.records import BatchWrite

R = TypeVar("R")

log = logging.getLogger(__name__)
_MAX_GROUP = 2_000
# A failed write makes the writer unhealthy until a write succeeds, or for this long: readiness must recover by
# itself, since a server that is not ready gets no traffic to prove it can write again.
_FAILURE_MEMORY_S = 10.0


class Outcome(Enum):
    STORED = "stored"
    DUPLICATE = "duplicate"  # this (sessionId, seq) was stored before: acknowledged, not stored twice
    DROPPED = "dropped"  # the session's user was deleted: its future data is not kept


@dataclass
class _Item:
    batch: Batch
    clock_offset_ms: int
    future: Future[Outcome]
    size: int = 0  # bytes of JSON it holds in memory until written
    queued_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class Backlog:
    """Batches accepted and not yet answered (queued or being written), and the bytes of JSON they hold."""

    batches: int
    bytes: int
    oldest_wait_s: float  # how long the oldest of them has waited


def _ignore_commit(seconds: float) -> None:
    """The default commit observer: nobody measures."""


@dataclass
class _Job:
    fn: Callable[[Store], Any]
    future: Future[Any]


class IngestWriter:
    def __init__(self, store: Store, options: SessionizeOptions, group_commit_ms: float = 20.0,
                 limits: IngestLimits | None = None, on_commit: Callable[[float], None] = _ignore_commit,
                 caches: CacheLimits | None = None) -> None:
        caches = caches or CacheLimits()
        self.store = store
        self.options = options
        self.limits = limits or IngestLimits()
        self._on_commit = on_commit  # told the seconds of each group commit that succeeded
        self._last_failure: tuple[float, str] | None = None  # (monotonic time, exception type) of a failed write
        self._group_wait = group_commit_ms / 1000
        self._queue: queue.Queue[_Item | _Job | None] = queue.Queue()
        self._announced = 0
        self._lock = threading.Lock()
        # Batches not yet answered, oldest first (answers come in this order), and the bytes they hold.
        self._pending: deque[_Item] = deque()
        self._pending_bytes = 0
        # Whether (app, session) and (app, user) are deleted (their data is dropped at the door), as last read
        # from the store: a deletion is final, and a single writer's "not deleted" stays true unless it deletes
        # itself (forget_deleted). Bounded, like the tails: memory does not grow with the sessions seen, and a
        # forgotten entry is read again.
        self._sessions_deleted: Lru[tuple[str, str], bool] = Lru(caches.sessions_deleted)
        self._users_deleted: Lru[tuple[str, str], bool] = Lru(caches.users_deleted)
        self._tails: Lru[tuple[str, str], SessionTail] = Lru(caches.session_tails)
        # A group is written with the entries of all its sessions, and of the users it names, held in these: it
        # takes no more batches than the smallest holds (most batches name one user at most).
        self._max_group = min(_MAX_GROUP, caches.session_tails, caches.sessions_deleted, caches.users_deleted)
        self._thread = threading.Thread(target=self._run, name="replayql-writer", daemon=True)
        self._thread.start()

    def cache_sizes(self) -> dict[str, tuple[int, int]]:
        """The writer's in-memory state and its enrichment caches: (entries now, the most it will hold) of each."""
        return {name: (len(cache), cache.size) for name, cache in (
            ("writer.session_tails", self._tails), ("writer.sessions_deleted", self._sessions_deleted),
            ("writer.users_deleted", self._users_deleted))} | self.options.enrich.cache_sizes()

    def close(self) -> None:
        """Finish what is queued, then stop."""
        self._queue.put(None)
        self._thread.join()

    def submit(self, batch: Batch, clock_offset_ms: int = 0, size: int = 0) -> Future[Outcome]:
        future: Future[Outcome] = Future()
        item = _Item(batch, clock_offset_ms, future, size)
        with self._lock:
            self._forget_answered()
            self._pending.append(item)
            self._pending_bytes += size
        self._queue.put(item)
        return future

    def backlog(self) -> Backlog:
        with self._lock:
            self._forget_answered()
            waited_s = time.monotonic() - self._pending[0].queued_at if self._pending else 0.0
            return Backlog(len(self._pending), self._pending_bytes, waited_s)

    def overloaded(self) -> str | None:
        """Why a new batch should be refused for now (the store is not keeping up), or None. Checked before a
        request's body is read, so a busy server spends nothing on what it would refuse."""
        backlog = self.backlog()
        if backlog.bytes > self.limits.max_queued_bytes:
            return f"{backlog.bytes:,} bytes of batches are waiting to be written"
        if backlog.oldest_wait_s * 1000 > self.limits.max_queue_wait_ms:
            return f"the oldest waiting batch has waited {backlog.oldest_wait_s:.1f} s"
        return None

    def health(self) -> str | None:
        """Why the writer cannot take batches now (stopped, failing to write, or behind), or None."""
        if not self._thread.is_alive():
            return "the writer thread has stopped"
        failure = self._last_failure
        if failure is not None and time.monotonic() - failure[0] < _FAILURE_MEMORY_S:
            return f"writing failed {time.monotonic() - failure[0]:.1f} s ago ({failure[1]})"
        return self.overloaded()

    def _forget_answered(self) -> None:
        while self._pending and self._pending[0].future.done():
            self._pending_bytes -= self._pending.popleft().size

    def run(self, fn: Callable[[Store], R]) -> Future[R]:
        """Run a write job (an API mutation) on the writer thread, in order with ingestion."""
        future: Future[R] = Future()
        self._queue.put(_Job(fn, future))
        return future

    async def call(self, fn: Callable[[Store], R]) -> R:
        return await asyncio.wrap_future(self.run(fn))

    async def delete_user(self, app_id: str, user_id: str) -> DeletionCounts:
        def job(store: Store) -> DeletionCounts:
            counts = store.delete_user(app_id, user_id)
            self.forget_deleted(app_id, user_id, counts.session_ids)
            return counts
        return await self.call(job)

    def forget_deleted(self, app_id: str, user_id: str, session_ids: list[str]) -> None:
        """From now on this user's data is dropped at the door (the store remembers it across restarts)."""
        self._users_deleted.put((app_id, user_id), True)
        for sid in session_ids:
            self._sessions_deleted.put((app_id, sid), True)
        self.forget_sessions(app_id, session_ids)

    def forget_sessions(self, app_id: str, session_ids: list[str]) -> None:
        """Drop the cached tails of sessions deleted from the store (on the writer thread, in the deleting job):
        a later batch of one starts from an empty tail, as a new session, not from the deleted totals."""
        for sid in session_ids:
            self._tails.pop((app_id, sid), None)

    # -- the writer thread -----------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            if isinstance(first, _Job):
                self._run_job(first)
                continue
            group, stop = self._gather(first)
            self._commit(group)
            if stop:
                return

    def _gather(self, first: _Item) -> tuple[list[_Item], bool]:
        """Everything queued, plus what announced requests are about to queue (up to the group wait): a lone
        batch is written at once, a busy server writes large groups."""
        group = [first]
        deadline = time.monotonic() + self._group_wait
        while len(group) < self._max_group:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                remaining = deadline - time.monotonic()
                if self._announced <= 0 or remaining <= 0:
                    break
                try:
                    item = self._queue.get(timeout=min(remaining, 0.001))
                except queue.Empty:
                    continue
            if item is None:
                return group, True
            if isinstance(item, _Job):
                self._commit(group)
                self._run_job(item)
                group = []
                continue
            group.append(item)
        return group, False

    @contextmanager
    def announce(self) -> Iterator[None]:
        """Held by a request from its arrival until its batch is queued (or refused), so the writer knows a
        batch is on its way and may wait a moment to write it in the same transaction."""
        with self._lock:
            self._announced += 1
        try:
            yield
        finally:
            with self._lock:
                self._announced -= 1

    def _run_job(self, job: _Job) -> None:
        try:
            job.future.set_result(job.fn(self.store))
        except Exception as exc:
            job.future.set_exception(exc)

    def _commit(self, group: list[_Item]) -> None:
        if not group:
            return
        started = time.perf_counter()
        try:
            self._commit_group(group)
        except Exception as exc:
            self._last_failure = (time.monotonic(), type(exc).__name__)  # the type: a message may name secrets
            self._invalidate(group)
            if len(group) == 1:
                log.exception("writing batch %s/%s failed", group[0].batch.session_id, group[0].batch.seq)
                group[0].future.set_exception(exc)
                return
            for item in group:  # isolate the failing batch; the others still land
                self._commit([item])
            return
        self._last_failure = None
        self._on_commit(time.perf_counter() - started)

    def _commit_group(self, group: list[_Item]) -> None:
        keys = [(i.batch.app_id, i.batch.session_id, i.batch.seq) for i in group]
        # A single writer's session tails are the whole ledger (they commit with their batch; its store's ledger
        # answers none). Writers that share a store ask its ledger, written last: a tail written by a try that
        # failed before the end (the process died) says stored, and the retry must still write what it did not.
        seen = self.store.seen_batches(keys)
        self._load_tails(group)
        self._load_deleted(group)
        writes: list[BatchWrite] = []
        outcomes: list[tuple[_Item, Outcome]] = []
        for item, key in zip(group, keys, strict=True):
            if key in seen or (self.store.single_writer and self._tails[key[:2]].has_stored(key[2])):
                outcomes.append((item, Outcome.DUPLICATE))
                continue
            seen.add(key)
            write = self._sessionize(item)
            outcomes.append((item, Outcome.DROPPED if write is None else Outcome.STORED))
            if write is not None:
                writes.append(write)
        if writes:
            self.store.write(writes, int(time.time() * 1000))
        for item, outcome in outcomes:
            item.future.set_result(outcome)

    def _load_tails(self, group: list[_Item]) -> None:
        """Session tails from the cache, or from the store when another process may have written since."""
        missing: dict[str, set[str]] = {}
        if not self.store.single_writer:
            self._invalidate(group)
        for item in group:
            key = (item.batch.app_id, item.batch.session_id)
            if key not in self._tails:
                missing.setdefault(key[0], set()).add(key[1])
        for app_id, session_ids in missing.items():
            states = self.store.session_states(app_id, sorted(session_ids))
            for sid in session_ids:
                state = states.get(sid)
                self._tails.put((app_id, sid), load_tail(state.tail if state else None))

    def _load_deleted(self, group: list[_Item]) -> None:
        """Ask the store whether any session or user of this group was deleted (by any process). A single
        writer asks once per session and user: only it can delete them afterwards."""
        sessions: dict[str, set[str]] = {}
        users: dict[str, set[str]] = {}
        for item in group:
            app, batch = item.batch.app_id, item.batch
            known = self._tails[(app, batch.session_id)].user_id
            named = {e.user_id for e in batch.events if isinstance(e, IdentifyEvent)}
            candidates = named | ({known} if known else set())
            sessions.setdefault(app, set()).update(
                {batch.session_id} if (app, batch.session_id) not in self._sessions_deleted else set())
            users.setdefault(app, set()).update(u for u in candidates if (app, u) not in self._users_deleted)
        for app, session_ids in sessions.items():
            if not session_ids and not users[app]:
                continue
            gone_sessions, gone_users = self.store.deleted_among(app, sorted(session_ids), sorted(users[app]))
            self._remember_checks(self._sessions_deleted, app, session_ids, set(gone_sessions))
            self._remember_checks(self._users_deleted, app, users[app], set(gone_users))

    def _remember_checks(self, verdicts: Lru[tuple[str, str], bool], app: str, checked: set[str],
                         deleted: set[str]) -> None:
        """Deletions always; "not deleted" only for a single writer (writers that share a store ask again)."""
        for name in checked:
            if name in deleted or self.store.single_writer:
                verdicts.put((app, name), name in deleted)

    def _sessionize(self, item: _Item) -> BatchWrite | None:
        batch = item.batch
        key = (batch.app_id, batch.session_id)
        if self._sessions_deleted.get(key):
            return None
        tail = self._tails[key]
        if tail.user_id is not None and self._users_deleted.get((batch.app_id, tail.user_id)):
            return None
        resumed = tail.has_stored(batch.seq)  # only a shared store's writer gets here with it stored
        write, tail = sessionize(batch, tail, self.options, item.clock_offset_ms)
        write.resumed = resumed
        if tail.user_id is not None and self._users_deleted.get((batch.app_id, tail.user_id)):
            # identified as a deleted user only now: drop this batch and what the session stored before
            self.store.delete_sessions(batch.app_id, [batch.session_id])
            self.forget_deleted(batch.app_id, tail.user_id, [batch.session_id])
            return None
        self._tails.put(key, tail)
        return write

    def _invalidate(self, group: list[_Item]) -> None:
        for item in group:
            self._tails.pop((item.batch.app_id, item.batch.session_id), None)
