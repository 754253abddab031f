"""The in-process L1 cache: bounded LRU, per-entry TTL, and an offset guard.

Why not cachetools.TTLCache: the guard needs a compare-and-set on the version (offset) of
the entry, and the request path needs a get that costs one dict lookup plus `move_to_end`
(cachetools expires entries on every access in pure Python).

Correctness rules (see README.md):
- `offer` keeps whichever version has the larger offset, so a request that read an older
  version from Redis can never overwrite the newer one the links consumer just put here.
- An expired entry is not served but stays (until LRU eviction) so the guard still sees it.
- A request-path fill for a code that is absent is refused if anything was evicted since the
  request read `evictions` (the newer entry it should be compared with may have been evicted).
- TTL is a safety net only: the links consumer upserts every event within milliseconds.

Single-threaded by design (one asyncio loop per process): no locks.
"""

from collections import OrderedDict
from typing import Generic, Protocol, TypeVar


class Versioned(Protocol):
    @property
    def offset(self) -> int: ...


V = TypeVar("V", bound=Versioned)


class L1Cache(Generic[V]):
    """LRU + TTL + offset guard. `max_size=0` disables it (every get misses, nothing is kept)."""

    __slots__ = ("_data", "evictions", "max_size")

    def __init__(self, *, max_size: int) -> None:
        self.max_size = max_size
        self.evictions = 0
        # code -> (value, expires at on the monotonic clock)
        self._data: OrderedDict[str, tuple[V, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, code: str, now: float) -> V | None:
        """The fresh value for `code`, or None (absent or expired). `now`: monotonic seconds."""
        entry = self._data.get(code)
        if entry is None or entry[1] <= now:
            return None
        self._data.move_to_end(code)
        return entry[0]

    def peek(self, code: str) -> V | None:
        """The value held for `code`, fresh or not, without touching the LRU order."""
        entry = self._data.get(code)
        return None if entry is None else entry[0]

    def offer(self, code: str, value: V, *, now: float, ttl: float, evictions_seen: int | None = None) -> V:
        """Keep `value` unless a newer version (larger offset) is held; return the version to serve.

        `evictions_seen`: the `evictions` count read before a Redis lookup (request path and
        warmer). None for the links consumer, whose events arrive in offset order.
        """
        if self.max_size <= 0:
            return value
        entry = self._data.get(code)
        if entry is not None:
            if entry[0].offset > value.offset:
                return entry[0]
        elif evictions_seen is not None and evictions_seen != self.evictions:
            return value  # serve it, but do not cache: a newer entry may have been evicted meanwhile
        self._data[code] = (value, now + ttl)
        self._data.move_to_end(code)
        if len(self._data) > self.max_size:
            self._data.popitem(last=False)
            self.evictions += 1
        return value
