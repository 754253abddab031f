"""The /top answer cache: one computation per key at a time, answers shared for the TTL."""

import asyncio

import pytest
from analytics.adapters.memory_cache import TtlCache

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_concurrent_callers_share_one_computation_until_expiry() -> None:
    clock = Clock()
    cache = TtlCache(2.0, clock=clock)
    calls = 0
    gate = asyncio.Event()

    async def compute() -> int:
        nonlocal calls
        calls += 1
        await gate.wait()
        return calls

    waiting = [asyncio.create_task(cache.get("k", compute)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    assert await asyncio.gather(*waiting) == [1] * 5 and calls == 1
    clock.now = 1.9
    assert await cache.get("k", compute) == 1
    assert await cache.get("other", compute) == 2  # keys are independent
    clock.now = 2.1
    assert await cache.get("k", compute) == 3


async def test_a_failed_computation_is_not_cached() -> None:
    cache = TtlCache(10.0, clock=Clock())

    async def boom() -> int:
        raise RuntimeError("store down")

    async def fine() -> int:
        return 7

    with pytest.raises(RuntimeError):
        await cache.get("k", boom)
    assert await cache.get("k", fine) == 7
