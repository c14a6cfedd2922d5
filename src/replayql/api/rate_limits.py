"""Rate limits: a token bucket per caller (an API key's id, an app id), in memory and bounded.

A check is a dictionary lookup and some arithmetic, so it runs on the event loop, where nothing else runs at the
same time: no lock.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from replayql.lru import Lru

# Callers tracked at once. One pushed out (the least recently seen) comes back with a full bucket: with more active
# callers than this the limit is looser, never stricter, and memory stays flat.
MAX_BUCKETS = 10_000


class TokenBuckets:
    """A bucket per name holds at most `burst` tokens and refills at `per_s` tokens a second; a request takes one.

    `clock` gives seconds on a monotonic scale; a test passes its own to move time without sleeping."""

    def __init__(self, per_s: float, burst: int, clock: Callable[[], float] = time.monotonic,
                 size: int = MAX_BUCKETS) -> None:
        self.per_s = per_s
        self.burst = burst
        self.clock = clock
        self.buckets: Lru[str, tuple[float, float]] = Lru(size)  # name -> (tokens, when they were counted)

    def take(self, name: str) -> int:
        """0 when `name` had a token (now taken); else the whole seconds, at least 1, until it has one again. A
        refused request takes nothing, so a client that waits as told is served."""
        now = self.clock()
        tokens, counted = self.buckets.get(name, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - counted) * self.per_s)
        if tokens >= 1:
            self.buckets.put(name, (tokens - 1, now))
            return 0
        self.buckets.put(name, (tokens, now))
        return max(1, math.ceil((1 - tokens) / self.per_s))

    def refusal(self, caller: str, retry_after_s: int) -> str:
        """What a refused caller is told."""
        return (f"too many requests for {caller}: the limit is {self.per_s:g} a second with bursts of "
                f"{self.burst}; retry after {retry_after_s} s")

    def cache_size(self) -> tuple[int, int]:
        return len(self.buckets), self.buckets.size


def token_buckets(per_s: float | None, burst: int) -> TokenBuckets | None:
    """The buckets of a configured limit; None when the limit is off."""
    return TokenBuckets(per_s, burst) if per_s is not None else None
