"""A Zipf-like popularity picker: the k-th item is chosen with weight 1 / k**s.

Items are ranked in insertion order (the first added is the hottest), and the pool may grow
while the test runs (codes created by writers join at the cold end). Picking is a binary
search over running cumulative weights: O(log n), no recomputation when an item is added.
"""

import math
import random
from bisect import bisect_right
from collections.abc import Iterable
from typing import Generic, TypeVar

T = TypeVar("T")


class ZipfPicker(Generic[T]):
    def __init__(self, items: Iterable[T] = (), *, s: float = 1.1) -> None:
        if s <= 0:
            raise ValueError("the Zipf exponent s must be positive")
        self.s = s
        self._items: list[T] = []
        self._cumulative: list[float] = []
        for item in items:
            self.add(item)

    def __len__(self) -> int:
        return len(self._items)

    def add(self, item: T) -> None:
        """Append `item` with the next (lower) rank."""
        rank = len(self._items) + 1
        total = self._cumulative[-1] if self._cumulative else 0.0
        self._items.append(item)
        self._cumulative.append(total + math.pow(rank, -self.s))

    def weight(self, rank: int) -> float:
        """Probability of the item at 1-based `rank` being picked, with the current pool."""
        if not 1 <= rank <= len(self._items):
            raise IndexError(rank)
        return math.pow(rank, -self.s) / self._cumulative[-1]

    def pick(self, rng: random.Random) -> T:
        """One item, drawn with Zipf weights; LookupError when the pool is empty."""
        if not self._items:
            raise LookupError("no items to pick from")
        point = rng.random() * self._cumulative[-1]
        index = bisect_right(self._cumulative, point)
        return self._items[min(index, len(self._items) - 1)]
