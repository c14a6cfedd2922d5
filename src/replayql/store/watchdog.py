"""Stopping queries that run past their time limit, with one thread for all of them (a timer thread per query
would cost a thread start on every read)."""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class Watchdog:
    def __init__(self) -> None:
        self._wake = threading.Condition()
        self._due: list[list[object]] = []  # [deadline, order, interrupt or None once finished]
        self._order = itertools.count()
        self._thread: threading.Thread | None = None

    @contextmanager
    def watch(self, timeout_s: float | None, interrupt: Callable[[], None]) -> Iterator[None]:
        """Call `interrupt` (from the watchdog's thread) if the block is still running after `timeout_s`."""
        if timeout_s is None:
            yield
            return
        entry: list[object] = [time.monotonic() + timeout_s, next(self._order), interrupt]
        with self._wake:
            heapq.heappush(self._due, entry)
            self._start()
            self._wake.notify()
        try:
            yield
        finally:
            entry[2] = None

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="query-watchdog", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while True:
            with self._wake:
                while self._due and self._due[0][2] is None:  # finished in time
                    heapq.heappop(self._due)
                if not self._due:
                    self._wake.wait()
                    continue
                deadline, _, interrupt = self._due[0]
                wait = float(deadline) - time.monotonic()  # type: ignore[arg-type]
                if wait > 0:
                    self._wake.wait(wait)
                    continue
                heapq.heappop(self._due)
            if callable(interrupt):
                interrupt()
