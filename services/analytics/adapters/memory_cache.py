"""Caches. TtlCache: a small single-flight TTL cache for /api/v1/top: the query is global (not
per link) and reads every link's buckets in the window, so concurrent callers share one answer for
`ttl_s`. CountedCache: /stats' unique visitors, valid while the click counts they were computed
over are unchanged."""

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from typing import Any


class TtlCache:
    def __init__(self, ttl_s: float, *, clock: Callable[[], float] = time.monotonic, max_entries: int = 64) -> None:
        self._ttl = ttl_s
        self._clock = clock
        self._max = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._locks: dict[Hashable, asyncio.Lock] = {}

    async def get(self, key: Hashable, compute: Callable[[], Awaitable[Any]]) -> Any:
        hit = self._entries.get(key)
        if hit is not None and hit[0] > self._clock():
            return hit[1]
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:  # one computation per key; the others wait for its answer
            hit = self._entries.get(key)
            if hit is not None and hit[0] > self._clock():
                return hit[1]
            value = await compute()
            if len(self._entries) >= self._max:
                self._entries.clear()
            self._entries[key] = (self._clock() + self._ttl, value)
            return value


class CountedCache:
    """Unique-visitor counts kept with the click count they were computed over. A count of clicks
    is exact and only grows while clicks arrive (every click adds one to its buckets), so the same
    click count over the same buckets means the same clicks, hence the same visitors: an entry is
    good exactly while the click count read now equals the one stored with it. The TTL bounds the
    one case that reasoning misses: sinks emptied and refilled by a replay, where a bucket may hold
    as many clicks as before but not yet the same ones. At most `max_entries`: when full, the
    oldest entries go first (insertion order)."""

    def __init__(self, *, max_entries: int, ttl_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self._max = max_entries
        self._ttl = ttl_s
        self._clock = clock
        self._entries: dict[Hashable, tuple[int, int, float]] = {}

    def get(self, key: Hashable, clicks: int) -> int | None:
        """The visitors stored for `key` if they were computed over `clicks` clicks, else None."""
        hit = self._entries.get(key)
        if hit is None or hit[0] != clicks or hit[2] < self._clock():
            return None
        return hit[1]

    def put(self, key: Hashable, clicks: int, visitors: int) -> None:
        if self._max <= 0:
            return
        self._entries.pop(key, None)
        while len(self._entries) >= self._max:
            del self._entries[next(iter(self._entries))]
        self._entries[key] = (clicks, visitors, self._clock() + self._ttl)
