"""Per-API-key rate limit in Redis with the `limits` library (moving window, async redis-py).

Every shorten process shares the window through Redis. The Redis connection pool is ours:
built in the lifespan, closed on shutdown, also used for the readiness ping.
"""

import logging
import math
import time
from dataclasses import dataclass

from limits import RateLimitItem
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from platformkit.redis_primary import primary_pool
from redis.asyncio import Redis
from redis.exceptions import RedisError

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

    async def hit(self, identity: str) -> Verdict:
        """Count one request for `identity`; refused requests are not counted.

        Fails open: with Redis unreachable the request is allowed (writes stay available to
        key holders; /readyz reports Redis down). Logged once per outage.
        """
        try:
            if await self._limiter.hit(self._limit, identity):
                verdict = Verdict(allowed=True)
            else:
                stats = await self._limiter.get_window_stats(self._limit, identity)
                verdict = Verdict(allowed=False, retry_after=max(1, math.ceil(stats.reset_time - time.time())))
        except (RedisError, OSError) as exc:
            if not self._degraded:
                log.warning("rate limiting is off, Redis is unreachable: %s", exc)
            self._degraded = True
            return Verdict(allowed=True)
        if self._degraded:
            log.warning("rate limiting is back on, Redis answers again")
        self._degraded = False
        return verdict

    async def ping(self) -> None:
        await self._redis.ping()

    async def aclose(self) -> None:
        await self._redis.aclose()
        await self._pool.aclose()
