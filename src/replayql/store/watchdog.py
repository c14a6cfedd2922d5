"""Stopping queries that run past their time limit, with one thread for all of them (a timer thread per query
would cost a thread start on every read)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass(order=True)
class _Due:
    deadline: float  # time.monotonic()
    order: int
    interrupt: Callable[[], None] | None = field(compare=False)  # None once the block finished


class Watchdog:
    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: list[_Due] = []  # a heap: the earliest deadline first
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, timeout_s: float | None, interrupt: Callable[[], None]) -> Iterator[None]:
        """Call `interrupt` (from the watchdog's thread) if the block is still running after `timeout_s`."""
        if timeout_s is None:
            yield
            return
        entry = _Due(time.monotonic() + timeout_s, next(self._order), interrupt)
        with self._wake:
            heapq.heappush(self._due, entry)
            self._start()
            self._wake.notify()
        try:
            yield
        finally:
            entry.interrupt = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="query-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0].interrupt is None:  # finished in time
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                wait = self._due[0].deadline - time.monotonic()
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                interrupt = heapq.heappop(self._due).interrupt
            if interrupt is not None:
                interrupt()
