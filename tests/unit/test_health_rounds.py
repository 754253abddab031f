"""The combined health check runs one probe round per second at most, shared by concurrent callers."""

import asyncio

from stackctl.healthapp import Results, SharedRound


async def test_concurrent_callers_share_one_round_and_a_fresh_result_is_reused() -> None:
    now = [100.0]
    started = 0
    release = asyncio.Event()

    async def run() -> Results:
        nonlocal started
        started += 1
        await release.wait()
        return {"kafka": None, "postgres": "timeout"}

    shared = SharedRound(run, max_age_s=1.0, clock=lambda: now[0])
    waiting = [asyncio.ensure_future(shared.results()) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    answers = await asyncio.gather(*waiting)
    assert started == 1 and all(a == {"kafka": None, "postgres": "timeout"} for a in answers)

    now[0] += 0.5
    await shared.results()
    assert started == 1  # half a second old: reused
    now[0] += 0.6
    await shared.results()
    assert started == 2  # older than a second: a new round


async def test_a_cancelled_caller_does_not_cancel_the_shared_round() -> None:
    release = asyncio.Event()

    async def run() -> Results:
        await release.wait()
        return {"redis": None}

    shared = SharedRound(run, max_age_s=1.0)
    first = asyncio.ensure_future(shared.results())
    second = asyncio.ensure_future(shared.results())
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await second == {"redis": None}
