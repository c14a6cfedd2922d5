"""Bounded caches: memory stays flat however many sessions, user agents or queries are seen."""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from functools import _lru_cache_wrapper

K = TypeVar("K")
V = TypeVar("V")


class Lru(OrderedDict[K, V]):
    """A dict that keeps its `size` most recently put entries."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.size = size

    def put(self, key: K, value: V) -> None:
        self[key] = value
        self.move_to_end(key)
        if len(self) > self.size:
            self.popitem(last=False)


def cache_size(function: _lru_cache_wrapper[Any]) -> tuple[int, int]:
    """(entries now, the most it holds) of a function wrapped by `functools.lru_cache`."""
    info = function.cache_info()
    return info.currsize, info.maxsize or 0
