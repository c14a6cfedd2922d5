"""What each store tells live subscriptions (api.live_hub) about writes: `Store.changes_since`, in the two forms the
stores need. The embedded store is written by its own process alone, so it keeps a log in memory; a shared store
is read by time, every process polling the same rows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

from replayql.store.base import Change, ChangeCursor

log = logging.getLogger(__name__)

LOG_ENTRIES = 100_000  # changes the in-memory log keeps: a poller 4 times a second falls behind only past 25k/s
# How far back a read by time looks again, each time: a batch's time is taken before its write starts and its
# ledger row is readable when the write ends, and servers' clocks differ. A batch that commits later than this
# after its time, by the reader's clock, is never reported (README, Live).
OVERLAP_MS = 10_000


class ChangeLog:
    """The changes of a store written by this process alone: a sequence in memory, appended to after each commit
    (so a change is never reported before its rows are readable). Thread-safe."""

    def __init__(self, size: int = LOG_ENTRIES) -> None:
        self.size = size
        self._entries: list[Change] = []
        self._first = 0  # the position of _entries[0]
        self._lock = threading.Lock()

    def append(self, changes: Sequence[Change]) -> None:
        with self._lock:
            self._entries.extend(changes)
            excess = len(self._entries) - self.size
            if excess > self.size:  # trimmed in bulk: one copy per `size` appends, not one per append
                del self._entries[:excess]
                self._first += excess

    def since(self, cursor: ChangeCursor | None) -> tuple[list[Change], ChangeCursor]:
        with self._lock:
            end = self._first + len(self._entries)
            if cursor is None:
                return [], ChangeCursor(end)
            if cursor.position < self._first:
                log.warning("live: %d changes were dropped from the log before they were read",
                            self._first - cursor.position)
            return self._entries[max(0, cursor.position - self._first):], ChangeCursor(end)


def read_by_time(read: Callable[[int], list[tuple[Change, int]]], cursor: ChangeCursor | None, now_ms: int,
                 overlap_ms: int = OVERLAP_MS) -> tuple[list[Change], ChangeCursor]:
    """Changes of a shared store from `read(since_ms)` ((change, its time in ms) from `since_ms` on), each reported
    once: every read looks `overlap_ms` before the last one began and skips the keys it reported already, so a
    write that commits late, or comes from a server whose clock is behind, is still seen. `now_ms` is taken before
    the read: what commits during it is read again next time."""
    since = (cursor.position if cursor is not None else now_ms) - overlap_ms
    found = read(since)
    reported = cursor.recent if cursor is not None else frozenset()
    window_start = now_ms - overlap_ms  # where the next read begins: remember the keys it will meet again
    recent = frozenset(change.key for change, at in found if at >= window_start)
    if cursor is None:  # from now on: what is already stored is not news
        return [], ChangeCursor(now_ms, recent)
    fresh: dict[tuple[str, str, int], tuple[Change, int]] = {}
    for change, at in found:
        if change.key not in reported:
            fresh.setdefault(change.key, (change, at))  # a batch retried through two servers has two ledger rows
    ordered = sorted(fresh.values(), key=lambda pair: (pair[1], pair[0].key))  # one group commit: by seq
    return [change for change, _ in ordered], ChangeCursor(now_ms, recent)
