"""Coalesced lookups: the misses of one loop turn share one round trip; failures reach every waiter."""

import asyncio

import pytest
from redirect.domain.links import NOT_FOUND, Link
from redirect.ports import StoreUnavailable
from redirect.service_layer.coalesce import CoalescingGets

from tests.unit.redirect.fakes import FakeStore

pytestmark = pytest.mark.unit


def store_with(*codes: str) -> FakeStore:
    store = FakeStore()
    for i, code in enumerate(codes):
        store.links[code] = Link(offset=i, url=f"https://e.com/{code}")
    return store


async def test_a_lone_miss_is_a_plain_get() -> None:
    store = store_with("a")
    assert (await CoalescingGets(store).get("a")).url == "https://e.com/a"
    assert store.calls == ["get:a"]


async def test_concurrent_misses_share_one_pipelined_lookup() -> None:
    store = store_with("a", "b", "c")
    gets = CoalescingGets(store)
    found = await asyncio.gather(*(gets.get(c) for c in ["a", "b", "c", "a", "zz"]))
    assert [f.url for f in found[:4]] == ["https://e.com/a", "https://e.com/b", "https://e.com/c", "https://e.com/a"]
    assert found[4] is NOT_FOUND
    assert store.calls == ["get_many"] and (gets.batches, gets.lookups) == (1, 4)  # "a" looked up once


async def test_batches_are_bounded() -> None:
    store = store_with(*[f"c{i}" for i in range(10)])
    gets = CoalescingGets(store, max_batch=4)
    await asyncio.gather(*(gets.get(f"c{i}") for i in range(10)))
    assert gets.batches == 3 and gets.lookups == 10


async def test_store_down_fails_every_waiter() -> None:
    store = store_with("a", "b")
    store.down = True
    gets = CoalescingGets(store)
    results = await asyncio.gather(gets.get("a"), gets.get("b"), return_exceptions=True)
    assert all(isinstance(r, StoreUnavailable) for r in results)


async def test_a_cancelled_waiter_does_not_cancel_the_others() -> None:
    store = store_with("a")
    gets = CoalescingGets(store)
    first = asyncio.ensure_future(gets.get("a"))
    second = asyncio.ensure_future(gets.get("a"))
    await asyncio.sleep(0)
    first.cancel()
    assert (await second).url == "https://e.com/a"
    assert first.cancelled()
