"""Read side used by the request path and the cache warmer: Redis lookups that fill the L1.

A fill goes through `L1Cache.offer`, which keeps the newer version (larger offset) and returns
the one to serve, so a request that read an old version from Redis while the links consumer
put a new one in the L1 serves the new one. Fills wait until the projector is anchored
(start offsets read from Redis): before that a newer event could be missed by both.

Store trouble: reads go to the Redis replica while the primary is away (adapters ReadFailover);
if no store answers, a link this replica holds is served past its TTL (the links consumer keeps
upserting the L1 meanwhile, so it is still the newest version the replica has seen), else the
caller answers 503. While the projector rebuilds a Redis that lost events, a Redis miss proves
nothing: the same rule applies to it.
"""

import logging
import time
from collections.abc import Callable

from redirect.domain.l1 import L1Cache
from redirect.domain.links import Link, with_headers
from redirect.metrics import RedirectStats
from redirect.ports import LinkGetter, LinkReader, StoreUnavailable
from redirect.service_layer.coalesce import CoalescingGets

log = logging.getLogger(__name__)

WARM_CHUNK = 500


class Lookup:
    def __init__(
        self,
        *,
        store: LinkReader,
        reads: LinkGetter | None = None,
        l1: L1Cache[Link],
        stats: RedirectStats,
        anchored: Callable[[], bool],
        rebuilding: Callable[[], bool] = lambda: False,
        ttl: float,
        negative_ttl: float,
        permanent_max_age: int,
    ) -> None:
        self.store = store
        # Link reads (primary, or the replica while it is away); `store` for the rest.
        self.gets = CoalescingGets(reads if reads is not None else store)
        self.l1 = l1
        self._stats = stats
        self._anchored = anchored
        self._rebuilding = rebuilding
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_age = permanent_max_age

    async def fetch(self, code: str) -> Link:
        """L1 missed: read Redis and fill the L1. Raises StoreUnavailable (counted by the caller)."""
        l1, stats = self.l1, self._stats
        stats.l1_misses += 1
        seen = l1.evictions
        try:
            found = await self.gets.get(code)
            if not found.exists and self._rebuilding():
                raise StoreUnavailable("the read model is being rebuilt: a miss is not an answer")
        except StoreUnavailable:
            held = l1.peek(code)
            if held is None or not held.exists:
                raise
            stats.stale_served += 1
            return held
        if found.exists:
            stats.redis_hits += 1
            found = with_headers(found, permanent_max_age=self._max_age)
        else:
            stats.redis_misses += 1
        if not self._anchored():
            return found
        ttl = self._ttl if found.exists else self._negative_ttl
        return l1.offer(code, found, now=time.monotonic(), ttl=ttl, evictions_seen=seen)

    async def warm(self, count: int) -> int:
        """Fill the L1 with the `count` hottest codes (Redis sorted set of hits); return how many."""
        if count <= 0 or self.l1.max_size <= 0 or not self._anchored():
            return 0
        # Coldest first, so the hottest end up most recently used in the LRU.
        codes = list(reversed(await self.store.hottest(min(count, self.l1.max_size))))
        loaded = 0
        for start in range(0, len(codes), WARM_CHUNK):
            chunk = codes[start : start + WARM_CHUNK]
            seen = self.l1.evictions
            found = await self.store.get_many(chunk)
            now = time.monotonic()
            for code, link in zip(chunk, found, strict=True):
                if link.exists:
                    self.l1.offer(
                        code,
                        with_headers(link, permanent_max_age=self._max_age),
                        now=now,
                        ttl=self._ttl,
                        evictions_seen=seen,
                    )
                    loaded += 1
        log.info("cache warmer: %d of the %d hottest codes loaded into L1", loaded, len(codes))
        return loaded
