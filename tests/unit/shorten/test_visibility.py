"""Write visibility against fakes of the links log and the replicas' positions."""

import asyncio
import time
from collections.abc import Mapping, Sequence

import pytest
from shorten.adapters.links_log import parse_positions
from shorten.ports import Placed, ReplicaPosition
from shorten.service_layer.visibility import Visibility

pytestmark = pytest.mark.unit


class FakeLog:
    def __init__(self) -> None:
        self.queue: asyncio.Queue[Placed] = asyncio.Queue()

    async def start(self) -> None:
        return None

    async def fetch(self, *, timeout_ms: int) -> Sequence[Placed]:
        first = await self.queue.get()
        out = [first]
        while not self.queue.empty():
            out.append(self.queue.get_nowait())
        return out

    async def stop(self) -> None:
        return None


class Positions:
    def __init__(self) -> None:
        self.replicas: dict[str, ReplicaPosition] = {}

    def report(self, replica: str, offsets: Mapping[int, int], *, age: float = 0.0) -> None:
        self.replicas[replica] = ReplicaPosition(time.time() - age, dict(offsets))

    async def read(self) -> Mapping[str, ReplicaPosition]:
        return dict(self.replicas)


async def rig(timeout: float = 2.0) -> tuple[Visibility, FakeLog, Positions]:
    log, positions = FakeLog(), Positions()
    visibility = Visibility(
        log_factory=lambda: log, positions=positions.read, timeout=timeout, poll_interval=0.001, cooldown=60
    )
    await visibility.start()
    return visibility, log, positions


async def test_a_write_waits_for_the_log_and_every_live_replica() -> None:
    visibility, log, positions = await rig()
    try:
        positions.report("redirect-1", {0: 5})
        positions.report("redirect-2", {0: 5})
        positions.report("redirect-3", {0: 0}, age=60)  # dead: not waited for
        waiting = asyncio.create_task(visibility.wait("ev-1"))
        await asyncio.sleep(0.02)
        assert not waiting.done()  # not in the log yet
        log.queue.put_nowait(Placed("ev-1", 0, 7))
        await asyncio.sleep(0.02)
        assert not waiting.done()  # in the log, no replica past offset 7
        positions.report("redirect-1", {0: 8})
        await asyncio.sleep(0.02)
        assert not waiting.done()  # one replica still behind
        positions.report("redirect-2", {0: 8})
        assert await asyncio.wait_for(waiting, 1) is True
    finally:
        await visibility.aclose()


async def test_an_event_the_log_showed_before_the_wait_is_remembered() -> None:
    visibility, log, positions = await rig()
    try:
        positions.report("redirect-1", {1: 3})
        log.queue.put_nowait(Placed("early", 1, 2))
        await asyncio.sleep(0.02)
        assert await asyncio.wait_for(visibility.wait("early"), 1) is True
    finally:
        await visibility.aclose()


async def test_past_the_bound_the_write_is_answered_and_the_next_ones_wait_less() -> None:
    visibility, log, positions = await rig(timeout=1.0)
    try:
        positions.report("redirect-1", {0: 0})
        started = time.monotonic()
        assert await visibility.wait("never") is False
        assert 1.0 <= time.monotonic() - started < 1.5
        started = time.monotonic()
        assert await visibility.wait("never-either") is False  # degraded: a shorter bound
        assert time.monotonic() - started < 0.5 and visibility.timeouts == 2
        positions.report("redirect-1", {0: 9})
        log.queue.put_nowait(Placed("later", 0, 3))
        assert await visibility.wait("later") is True  # still waited for when it comes quickly
    finally:
        await visibility.aclose()


def test_positions_parse() -> None:
    raw = {b"redirect-1:0": b"4", b"redirect-1:1": b"9", b"redirect-1:at": b"1700000000000", b"redirect-2:at": b"5"}
    parsed = parse_positions(raw)
    assert parsed["redirect-1"] == ReplicaPosition(1_700_000_000.0, {0: 4, 1: 9})
    assert parsed["redirect-2"].offsets == {}


async def test_many_writes_wait_for_the_furthest_event_of_each_partition() -> None:
    visibility, log, positions = await rig()
    try:
        positions.report("redirect-1", {0: 0, 1: 0})
        waiting = asyncio.create_task(visibility.wait_all([f"ev-{n}" for n in range(6)], timeout=2))
        for n in range(6):  # even events on partition 0, odd on 1; offsets grow per partition
            log.queue.put_nowait(Placed(f"ev-{n}", n % 2, 10 + n))
        await asyncio.sleep(0.02)
        positions.report("redirect-1", {0: 15, 1: 15})  # past ev-4 (offset 14), not ev-5 (15)
        await asyncio.sleep(0.02)
        assert not waiting.done()
        positions.report("redirect-1", {0: 15, 1: 16})
        assert await asyncio.wait_for(waiting, 1) is True
    finally:
        await visibility.aclose()


async def test_many_writes_answer_unconfirmed_after_their_own_bound() -> None:
    visibility, log, positions = await rig()
    try:
        positions.report("redirect-1", {0: 0})
        log.queue.put_nowait(Placed("ev-a", 0, 1))
        assert await visibility.wait_all(["ev-a", "never-in-the-log"], timeout=0.05) is False
        # the bulk's own bound: single writes are not degraded by it
        log.queue.put_nowait(Placed("ev-b", 0, 2))
        positions.report("redirect-1", {0: 3})
        assert await asyncio.wait_for(visibility.wait("ev-b"), 1) is True
    finally:
        await visibility.aclose()
