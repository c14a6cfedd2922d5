"""Retention: deleting the sessions last active more than `Settings.retention_days` ago, on either store.

`store.retention` says which sessions are expired; this runs the deletion in chunks, each one job on the writer
thread. So deletions are serialised with ingestion like every other write (DuckDB has one writer connection),
the writer forgets the tails of the sessions it deleted in the same job (a later batch of one starts a new
session instead of adding to deleted totals), and a batch that arrives meanwhile waits for one chunk at most.
A server with `--retention-days` runs it at start and then every `retention_interval_s` (RetentionSchedule);
`replayql retention apply` runs it once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from replayql.ingest.writer import IngestWriter
from replayql.store.base import DeletionCounts, Store
from replayql.store.retention import retention_cutoff

log = logging.getLogger(__name__)


@dataclass
class Chunk:
    """One writer job: the sessions it found expired and deleted, and how long it held the writer."""

    expired: list[tuple[str, str]]  # (app id, session id)
    events: int = 0
    recordings: int = 0
    users: int = 0
    held_s: float = 0.0


@dataclass
class RetentionRun:
    days: int
    cutoff: datetime  # naive UTC: sessions last active before it were deleted
    sessions: int = 0
    events: int = 0
    recordings: int = 0
    users: int = 0
    chunks: int = 0
    longest_chunk_s: float = 0.0
    seconds: float = 0.0

    def add(self, chunk: Chunk) -> None:
        self.sessions += len(chunk.expired)
        self.events += chunk.events
        self.recordings += chunk.recordings
        self.users += chunk.users
        self.chunks += 1
        self.longest_chunk_s = max(self.longest_chunk_s, chunk.held_s)

    def summary(self) -> str:
        return (f"retention ({self.days} days): deleted {self.sessions} sessions last active before "
                f"{self.cutoff.isoformat()}Z ({self.events} events, {self.recordings} recording chunks, "
                f"{self.users} users) in {self.chunks} chunks, {self.seconds:.1f} s")


def apply_retention(writer: IngestWriter, days: int, chunk_sessions: int, now: datetime | None = None,
                    stop: threading.Event | None = None, on_chunk: Callable[[Chunk], None] | None = None
                    ) -> RetentionRun:
    """Delete every session expired `days` days before `now`, `chunk_sessions` at a time, until none is left
    (or `stop` is set); `on_chunk` hears of each chunk once it is committed."""
    run = RetentionRun(days, retention_cutoff(days, now or datetime.now(UTC)))
    started = time.perf_counter()
    previous: list[tuple[str, str]] = []
    while stop is None or not stop.is_set():
        chunk: Chunk = writer.run(_expire_chunk(writer, run.cutoff, chunk_sessions)).result()
        if chunk.expired and chunk.expired == previous:  # a deletion that did not take would loop forever
            raise RuntimeError(f"retention could not delete sessions {chunk.expired[:5]}")
        run.add(chunk)
        if on_chunk is not None:
            on_chunk(chunk)
        if len(chunk.expired) < chunk_sessions:
            break
        previous = chunk.expired
    run.seconds = time.perf_counter() - started
    return run


def _expire_chunk(writer: IngestWriter, cutoff: datetime, limit: int) -> Callable[[Store], Chunk]:
    def job(store: Store) -> Chunk:  # on the writer thread
        started = time.perf_counter()
        chunk = Chunk(store.expired_sessions(cutoff, limit))
        by_app: dict[str, list[str]] = {}
        for app_id, session_id in chunk.expired:
            by_app.setdefault(app_id, []).append(session_id)
        for app_id, session_ids in by_app.items():
            _count(chunk, store.purge_sessions(app_id, session_ids))
            writer.forget_sessions(app_id, session_ids)
        chunk.held_s = time.perf_counter() - started
        return chunk
    return job


def _count(chunk: Chunk, deleted: DeletionCounts) -> None:
    chunk.events += deleted.events
    chunk.recordings += deleted.recordings
    chunk.users += deleted.users


class RetentionSchedule:
    """Runs retention on its own thread: at start, then every `interval_s`, until closed."""

    def __init__(self, writer: IngestWriter, days: int, interval_s: float, chunk_sessions: int) -> None:
        self.writer, self.days, self.interval_s, self.chunk_sessions = writer, days, interval_s, chunk_sessions
        self.ran = threading.Event()  # set after each run, whatever its outcome
        self.last: RetentionRun | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="replayql-retention", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = apply_retention(self.writer, self.days, self.chunk_sessions, stop=self._stop)
                log.info("%s", self.last.summary())
            except Exception:
                log.exception("retention failed; it runs again in %.0f s", self.interval_s)
            self.ran.set()
            self._stop.wait(self.interval_s)

    def close(self) -> None:
        """Stop after the chunk being deleted (before the writer closes: chunks are writer jobs)."""
        self._stop.set()
        self._thread.join()
