"""The links projector against fakes of its ports: Redis + L1 updated, replicas idempotent,
poison dead-lettered exactly once, caught-up tracking."""

import asyncio
import contextlib
from datetime import UTC, datetime

import pytest
from contracts import deadletter, links
from contracts.links import LinkCreated, LinkDeleted, LinkEvent, LinkUpdated
from redirect.bootstrap import _stop_projector
from redirect.domain.l1 import L1Cache
from redirect.domain.links import Link
from redirect.metrics import RedirectStats
from redirect.ports import Record
from redirect.service_layer.links_projector import LinksProjector, to_change

from tests.conftest import wait_until_async
from tests.unit.redirect.fakes import FakeReader, FakeStore

pytestmark = pytest.mark.unit

T = datetime(2026, 11, 27, 10, 0, tzinfo=UTC)


def rec(partition: int, offset: int, event: LinkEvent) -> Record:
    return Record(partition, offset, event.code.encode(), links.encode(event))


def created(code: str, url: str) -> LinkCreated:
    return LinkCreated(event_id=f"c-{code}", occurred_at=T, code=code, url=url)


TOPIC = [
    rec(0, 0, created("aaaaaaa", "https://a/1")),
    rec(1, 0, created("bbbbbbb", "https://b/1")),
    rec(0, 1, LinkUpdated(event_id="u", occurred_at=T, code="aaaaaaa", url="https://a/2", redirect_type=301)),
    rec(1, 1, LinkDeleted(event_id="d", occurred_at=T, code="bbbbbbb")),
    Record(2, 0, b"ccccccc", b"{not json"),
]


class DeadLetterLog:
    def __init__(self) -> None:
        self.records: list[deadletter.MessageDeadLettered] = []

    async def __call__(self, record: deadletter.MessageDeadLettered, key: bytes | None) -> None:
        self.records.append(record)


def projector(store: FakeStore, reader: FakeReader, **kw: object) -> LinksProjector:
    return LinksProjector(reader_factory=lambda: reader, store=store, stats=RedirectStats(), **kw)  # type: ignore[arg-type]


async def test_replay_to_the_end_builds_redis_and_l1() -> None:
    store, l1, dlq = FakeStore(), L1Cache[Link](max_size=100), DeadLetterLog()
    proj = projector(store, FakeReader(TOPIC), l1=l1, dead_letter=dlq)
    await proj.run(until_caught_up=True)
    assert store.links["aaaaaaa"] == Link(offset=1, url="https://a/2", redirect_type=301)
    assert store.links["bbbbbbb"].deleted and store.offsets_ == {0: 2, 1: 2, 2: 1}
    a, b = l1.get("aaaaaaa", 0.0), l1.get("bbbbbbb", 0.0)
    assert a is not None and a.url == "https://a/2" and a.headers is not None  # response headers precomputed
    assert b is not None and b.status_at(0) == 410
    assert [(r.partition, r.offset, r.payload()) for r in dlq.records] == [(2, 0, b"{not json")]
    assert proj.caught_up() and proj.lag() == {0: 0, 1: 0, 2: 0}


async def test_three_replicas_apply_the_same_events_idempotently_and_dead_letter_once() -> None:
    store, dlq = FakeStore(), DeadLetterLog()
    for _ in range(3):
        await projector(store, FakeReader(TOPIC), dead_letter=dlq).run(until_caught_up=True)
    assert store.links["aaaaaaa"].url == "https://a/2" and len(dlq.records) == 1


async def test_an_old_event_never_overwrites_a_newer_version() -> None:
    store = FakeStore()
    store.links["aaaaaaa"] = Link(offset=5, url="https://newer/")
    store.offsets_ = {0: 6}
    reader = FakeReader(TOPIC[:1])  # offset 0 of partition 0: older than what Redis holds
    proj = projector(store, reader)
    proj.start_from({})  # replay from 0
    await proj.run(until_caught_up=True)
    assert store.links["aaaaaaa"].url == "https://newer/" and store.offsets_[0] == 6


async def test_a_replica_starts_where_redis_stands() -> None:
    store = FakeStore()
    store.offsets_ = {0: 1, 1: 2}
    reader = FakeReader(TOPIC)
    proj = projector(store, reader)
    await proj.run(until_caught_up=True)
    assert list(store.links) == ["aaaaaaa"]  # only p0@1 was past the anchor (p2 is poison)


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (Record(0, 0, b"k", None), "tombstone"),
        (Record(0, 0, b"wrongkey", links.encode(created("aaaaaaa", "https://a/"))), "does not match"),
        (Record(0, 0, b"aaaaaaa", links.encode(created("aaaaaaa", "javascript:\nalert(1) x"))), "url"),
        (Record(0, 0, b"x", b'{"type":"LinkCreated"}'), "links:"),
    ],
)
def test_poison_reasons(record: Record, reason: str) -> None:
    change, why = to_change(record)
    assert change.link is None and why is not None and reason in why


async def test_redis_away_the_batch_is_retried_and_l1_already_obeys() -> None:
    store, l1 = FakeStore(), L1Cache[Link](max_size=100)
    store.down = True
    proj = projector(store, FakeReader(TOPIC[:2]), l1=l1)
    proj.start_from({})
    task = asyncio.create_task(proj.run(until_caught_up=True))
    try:
        await wait_until_async(lambda: _has(l1, "aaaaaaa"), timeout=5, what="L1 updated while Redis is down")
        assert "aaaaaaa" not in store.links
        store.down = False
        await asyncio.wait_for(task, 10)
        assert store.links["aaaaaaa"].url == "https://a/1"
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _has(l1: L1Cache[Link], code: str) -> bool:
    return l1.peek(code) is not None


async def test_not_caught_up_before_the_start_end_offsets() -> None:
    store = FakeStore()
    proj = projector(store, FakeReader(TOPIC))
    assert not proj.caught_up()
    proj.start_from({})
    proj.targets = {0: 2, 1: 2, 2: 1}
    proj.next_offsets = {0: 2, 1: 1, 2: 1}
    assert not proj.caught_up()
    proj.next_offsets[1] = 2
    assert proj.caught_up()


class FlakyReader(FakeReader):
    """Fails its first fetch (e.g. the broker went away mid-stream)."""

    failures = 0

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        if FlakyReader.failures == 0:
            FlakyReader.failures += 1
            raise ConnectionError("broker went away")
        return await super().fetch(timeout_ms=timeout_ms, max_records=max_records)


async def test_a_failing_reader_is_restarted_from_this_replicas_own_position() -> None:
    store = FakeStore()
    readers: list[FakeReader] = []

    def factory() -> FakeReader:
        readers.append(FlakyReader(TOPIC[:2]))
        return readers[-1]

    proj = LinksProjector(reader_factory=factory, store=store, stats=RedirectStats())
    proj.start_from({})
    await asyncio.wait_for(proj.run(until_caught_up=True), 10)
    assert len(readers) == 2 and readers[0].stopped
    assert set(store.links) == {"aaaaaaa", "bbbbbbb"}


class SwallowingReader(FakeReader):
    """Swallows a cancellation, as the Kafka client does when one lands in its own cleanup
    (it awaits its internal tasks and suppresses their CancelledError)."""

    swallow = True

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        try:
            await asyncio.sleep(timeout_ms / 1000)
        except asyncio.CancelledError:
            if not self.swallow:
                raise
        return await super().fetch(timeout_ms=timeout_ms, max_records=max_records)


async def test_shutdown_stops_the_projector_even_when_its_cancellation_is_swallowed() -> None:
    reader = SwallowingReader(TOPIC[:2])
    proj = LinksProjector(reader_factory=lambda: reader, store=FakeStore(), stats=RedirectStats())
    proj.start_from({})
    task = asyncio.create_task(proj.run(fetch_timeout_ms=50))

    async def started() -> bool:
        return bool(reader.position)

    await wait_until_async(started, timeout=5, what="the reader started")
    try:
        await asyncio.wait_for(_stop_projector(proj, task, timeout=2), 10)
        assert task.done() and reader.stopped
    finally:
        reader.swallow = False  # let a projector that did not stop die with the test
        task.cancel()


async def test_a_projector_that_never_stops_does_not_hold_up_shutdown() -> None:
    never = asyncio.create_task(asyncio.Event().wait())
    proj = LinksProjector(reader_factory=lambda: FakeReader([]), store=FakeStore(), stats=RedirectStats())
    await asyncio.wait_for(_stop_projector(proj, never, timeout=0.2), 5)  # returns; logs the leftover
    never.cancel()


class LiveReader(FakeReader):
    """Waits a little when there is nothing new, as the Kafka client's long poll does."""

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        out = await super().fetch(timeout_ms=timeout_ms, max_records=max_records)
        if not out:
            await asyncio.sleep(0.005)
        return out


async def _running(proj: LinksProjector) -> "asyncio.Task[None]":
    proj.start_from({})
    return asyncio.create_task(proj.run(fetch_timeout_ms=5))


async def _stop(proj: LinksProjector, task: "asyncio.Task[None]") -> None:
    await asyncio.wait_for(_stop_projector(proj, task, timeout=2), 10)


async def test_redis_away_the_stream_goes_on_into_l1_and_reaches_redis_when_it_is_back() -> None:
    store, l1 = FakeStore(), L1Cache[Link](max_size=100)
    reader = LiveReader(TOPIC[:2])
    proj = projector(store, reader, l1=l1)
    task = await _running(proj)
    try:
        await wait_until_async(lambda: _has(l1, "bbbbbbb"), timeout=5, what="first events in L1")
        store.down = True
        reader.records.append(rec(2, 0, created("ddddddd", "https://d/")))  # created during the outage
        reader.records.append(TOPIC[2])  # and an update
        await wait_until_async(lambda: _has(l1, "ddddddd"), timeout=5, what="L1 fed while Redis is down")
        assert l1.peek("aaaaaaa").url == "https://a/2"  # type: ignore[union-attr]
        assert proj.pending_changes == 2 and "ddddddd" not in store.links
        store.down = False

        async def applied() -> bool:
            return "ddddddd" in store.links and store.links["aaaaaaa"].offset == 1

        await wait_until_async(applied, timeout=5, what="pending changes applied once Redis is back")
        assert store.offsets_ == {0: 2, 1: 1, 2: 1} and proj.pending_changes == 0
    finally:
        await _stop(proj, task)


async def test_a_redis_that_lost_events_is_rebuilt_from_the_topic() -> None:
    store = FakeStore()
    records = list(TOPIC[:4])

    def reader_over_the_topic() -> LiveReader:
        reader = LiveReader([])
        reader.records = records  # shared: what is appended to the topic reaches every reader
        return reader

    proj = LinksProjector(
        reader_factory=reader_over_the_topic,
        store=store,
        stats=RedirectStats(),
        check_interval=0.01,
        report_as="redirect-9",
    )
    task = await _running(proj)
    try:

        async def all_applied() -> bool:
            return store.offsets_ == {0: 2, 1: 2}

        await wait_until_async(all_applied, timeout=5, what="applied")
        store.links.clear()
        store.offsets_.clear()  # Redis restarted empty
        records.append(rec(2, 0, created("eeeeeee", "https://e/")))

        async def rebuilt() -> bool:
            return store.offsets_ == {0: 2, 1: 2, 2: 1} and not proj.rebuilding

        await wait_until_async(rebuilt, timeout=5, what="the read model rebuilt without an operator")
        assert store.links["aaaaaaa"].url == "https://a/2" and store.links["bbbbbbb"].deleted
        assert store.links["eeeeeee"].url == "https://e/"

        async def reported() -> bool:  # the replica's position, in Redis for shorten
            return store.seen.get("redirect-9") == {0: 2, 1: 2, 2: 1}

        await wait_until_async(reported, timeout=5, what="the position reported")
    finally:
        await _stop(proj, task)


async def test_the_apply_script_does_not_advance_over_a_hole() -> None:
    store = FakeStore()
    store.offsets_ = {0: 1}
    gap = await store.apply([to_change(TOPIC[2])[0]._replace(after=2)])
    assert gap[0].gap and not gap[0].advanced and store.offsets_ == {0: 1}
