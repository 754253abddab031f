"""Per-API-key rate limit in Redis with the `limits` library (moving window, async redis-py).

Every shorten process shares the window through Redis. The Redis connection pool is ours:
built in the lifespan, closed on shutdown, also used for the readiness ping.

Hits of one key are coalesced: while one call for a key is in flight, the hits that arrive for
it wait and then go as ONE call that takes them all (the moving window's Lua script takes a
`cost`: all of them fit or none is counted). Under load one Redis round trip serves many
creates; a lone hit goes at once. If they do not all fit, they are tried one by one, so exactly
as many are admitted as the window has room for, and refused ones are still not counted.
"""

import asyncio
import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from platformkit.redis_primary import primary_pool

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # whole seconds until the window admits another request


class RedisRateLimiter:
    def __init__(
        self,
        *,
        redis_url: str,
        limit: RateLimitItem,
        namespace: str = "shorten",
        sentinels: str = "",
        sentinel_master: str = "shortlink",
    ) -> None:
        # With `sentinels`, the pool follows the primary they name; the storage's URL below is
        # then only a scheme marker, the pool decides where commands go.
        self._pool = primary_pool(
            redis_url, sentinels=sentinels, master=sentinel_master, max_connections=1024, timeout=2, blocking=False
        )
        self._redis: Redis = Redis(connection_pool=self._pool)
        storage = RedisStorage(
            "async+" + redis_url,
            implementation="redispy",
            key_prefix=f"{namespace}:ratelimit",
            connection_pool=self._pool,  # type: ignore[arg-type]  # forwarded to redis-py as is
        )
        self._limiter = MovingWindowRateLimiter(storage)
        self._limit = limit
        self._degraded = False
        # Per key: the hits waiting for the call in flight to end (each with its cost), and the
        # task making calls.
        self._waiting: dict[str, list[tuple[asyncio.Future[Verdict], int]]] = {}
        self._callers: dict[str, asyncio.Task[None]] = {}
        self.calls = 0  # coalesced calls made (for tests)

    async def hit(self, identity: str, *, cost: int = 1) -> Verdict:
        """Count one request of `cost` units (a bulk import: one per row) for `identity`, all
        of them or none; refused requests are not counted.

        Fails open: with Redis unreachable the request is allowed (writes stay available to
        key holders; /readyz reports Redis down). Logged once per outage.
        """
        future: asyncio.Future[Verdict] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(identity, []).append((future, max(1, cost)))
        if identity not in self._callers:
            self._callers[identity] = asyncio.get_running_loop().create_task(self._call_for(identity))
        return await asyncio.shield(future)

    async def _call_for(self, identity: str) -> None:
        """Until nobody waits for `identity`: one call for all the hits waiting."""
        waiting: list[tuple[asyncio.Future[Verdict], int]] = []
        try:
            while waiting := self._waiting.pop(identity, []):
                verdicts = await self._decide(identity, [cost for _, cost in waiting])
                for (future, _), verdict in zip(waiting, verdicts, strict=True):
                    if not future.done():
                        future.set_result(verdict)
        except BaseException as exc:  # never leave a waiter hanging
            for future, _ in [*waiting, *self._waiting.pop(identity, [])]:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            raise
        finally:
            # No await since the queue was found empty: a hit arriving from now on starts a caller.
            del self._callers[identity]

    async def _decide(self, identity: str, costs: list[int]) -> list[Verdict]:
        self.calls += 1
        hits = len(costs)
        try:
            if await self._limiter.hit(self._limit, identity, cost=sum(costs)):
                verdicts = [Verdict(allowed=True)] * hits
            else:
                verdicts = await self._one_by_one(identity, costs)
        except (RedisError, OSError) as exc:
            if not self._degraded:
                log.warning("rate limiting is off, Redis is unreachable: %s", exc)
            self._degraded = True
            return [Verdict(allowed=True)] * hits
        if self._degraded:
            log.warning("rate limiting is back on, Redis answers again")
        self._degraded = False
        return verdicts

    async def _one_by_one(self, identity: str, costs: list[int]) -> list[Verdict]:
        """Not all hits fit (all-or-nothing refused them): admit in arrival order while the
        window has room, refuse the rest (the window is full until its oldest entry ages out).
        A hit whose cost does not fit is refused whole, and so is every hit after it (order)."""
        admitted = 0
        if len(costs) > 1:
            while admitted < len(costs) and await self._limiter.hit(self._limit, identity, cost=costs[admitted]):
                admitted += 1
        stats = await self._limiter.get_window_stats(self._limit, identity)
        refused = Verdict(allowed=False, retry_after=max(1, math.ceil(stats.reset_time - time.time())))
        return [Verdict(allowed=True)] * admitted + [refused] * (len(costs) - admitted)

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._pool.aclose()
