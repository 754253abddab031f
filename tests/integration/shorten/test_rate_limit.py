"""The Redis rate limiter under concurrency: hits of one key that arrive together share one
Redis call, and exactly as many are admitted as the window has room for."""

import asyncio
import os
import secrets

import pytest
from limits import parse
from platformkit.ratelimit import RedisRateLimiter

pytestmark = pytest.mark.integration

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")


def limiter(limit: str, namespace: str) -> RedisRateLimiter:
    return RedisRateLimiter(redis_url=REDIS_URL, limit=parse(limit), namespace=namespace)


async def test_concurrent_hits_are_counted_exactly() -> None:
    namespace = f"test-{secrets.token_hex(6)}"
    first = limiter("20/minute", namespace)
    try:
        together = await asyncio.gather(*(first.hit("key") for _ in range(12)))
        assert all(v.allowed for v in together)
        assert first.calls < 12  # the hits that waited for a call in flight went as one
        # 12 counted, not more and not fewer: 8 more fit, the 21st does not.
        assert [(await first.hit("key")).allowed for _ in range(9)] == [True] * 8 + [False]
    finally:
        await first.aclose()


async def test_concurrent_hits_over_the_limit_admit_exactly_the_room_left() -> None:
    namespace = f"test-{secrets.token_hex(6)}"
    first, second = limiter("5/minute", namespace), limiter("5/minute", namespace)
    try:
        assert (await first.hit("key")).allowed and (await second.hit("key")).allowed
        verdicts = await asyncio.gather(*(first.hit("key") for _ in range(7)), *(second.hit("key") for _ in range(7)))
        assert sum(v.allowed for v in verdicts) == 3
        assert all(1 <= v.retry_after <= 60 for v in verdicts if not v.allowed)
        assert not (await second.hit("key")).allowed
        assert (await first.hit("other key")).allowed  # every key has its own window
    finally:
        await first.aclose()
        await second.aclose()


async def test_a_hit_of_cost_n_counts_n_all_or_none() -> None:
    """A bulk import is charged one write per row: all of them fit, or none is counted."""
    namespace = f"test-{secrets.token_hex(6)}"
    first = limiter("10/minute", namespace)
    try:
        assert (await first.hit("key", cost=7)).allowed
        refused = await first.hit("key", cost=4)  # 7 + 4 > 10: refused, and not counted
        assert not refused.allowed and 1 <= refused.retry_after <= 60
        # Arriving together they go as one call (5 > the 3 left), then in arrival order: the
        # first fits, the second does not, and nothing after a refusal is admitted.
        together = await asyncio.gather(first.hit("key", cost=2), first.hit("key", cost=2), first.hit("key"))
        assert [v.allowed for v in together] == [True, False, False]
        assert [(await first.hit("key")).allowed for _ in range(2)] == [True, False]  # exactly 10 counted
    finally:
        await first.aclose()
