"""The click pipeline: bounded buffer, drop counting, partition batches formed once and re-sent
unchanged, flush on close."""

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
import redirect.service_layer.click_buffer
from contracts.clicks import MAX_BATCH_CLICKS
from redirect.adapters.kafka_clicks import partition_for
from redirect.domain.batches import BatchFormer, ClickBatch
from redirect.domain.click_factory import ClickFactory
from redirect.domain.useragent import make_classifier
from redirect.domain.visitor import TrustedProxies, VisitorKeys, parse_networks
from redirect.ports import PublishFailed
from redirect.service_layer.click_buffer import ClickBuffer

from tests.conftest import wait_until_async
from tests.unit.redirect.fakes import FakeSink, FakeStore, decode

pytestmark = pytest.mark.unit

HEADERS = [(b"user-agent", b"Twitterbot/1.0")]
# Codes of which Kafka's partitioner (3 partitions) puts at least one on each partition.
CODES = [f"c{i}" for i in range(12)]


def buffer(sink: FakeSink, **kw: Any) -> ClickBuffer:
    factory = ClickFactory(
        visitor_keys=VisitorKeys(b"s"), proxies=TrustedProxies(parse_networks("127.0.0.1")), classify=make_classifier()
    )
    options: dict[str, Any] = {"max_events": 100, "flush_interval": 0.001} | kw
    return ClickBuffer(factory=factory, former=BatchFormer(producer="redirect-7"), sink=sink, **options)


def codes(sink: FakeSink) -> list[str]:
    return [c.code for c in sink.clicks]


async def _eq(a: int, b: int) -> bool:
    return a == b


async def test_past_the_bound_new_clicks_are_dropped_and_counted() -> None:
    buf = buffer(FakeSink(), max_events=3)
    for i in range(5):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    assert buf.counters() == {"depth": 3, "dropped": 2, "published": 0, "failures": 0}


async def test_one_record_per_partition_on_the_partition_kafka_gives_its_codes() -> None:
    sink = FakeSink()
    buf = buffer(sink, flush_interval=3600)  # one flush, at close: all 12 clicks in one formation
    buf.start()
    for i, code in enumerate(CODES):
        buf.add(code, 1_790_000_000.5 + i, HEADERS, "127.0.0.1")
    await buf.close(1.0)
    by_partition = {p: [c for c in CODES if partition_for(c.encode(), 3) == p] for p in range(3)}
    assert all(by_partition.values())  # the codes do span the three partitions
    assert sorted(b.partition for b in sink.batches) == [0, 1, 2]  # one record per partition
    for batch in sink.batches:
        record = decode(batch)
        assert [c.code for c in record.clicks] == by_partition[batch.partition]  # arrival order kept
        assert (record.batch_id, record.producer) == (batch.batch_id, "redirect-7")
        assert batch.batch_id.version == 7 and all(c.event_id.version == 7 for c in record.clicks)
        assert batch.headers == ()  # tracing off: no headers
        assert batch.timestamp_ms == int(record.clicks[-1].occurred_at.timestamp() * 1000)
        assert all(c.is_bot for c in record.clicks)
    assert len({c.event_id for c in sink.clicks}) == 12
    assert buf.counters() == {"depth": 0, "dropped": 0, "published": 12, "failures": 0}


async def test_a_batch_failed_by_the_producer_is_resent_unchanged_and_not_merged() -> None:
    sink = FakeSink()
    sink.fail_next = 2
    buf = buffer(sink)
    buf.start()
    try:
        for _ in range(3):
            buf.add("c0", 1.0, HEADERS, "127.0.0.1")

        async def failed_once() -> bool:
            return len(sink.attempts) >= 1

        await wait_until_async(failed_once, timeout=5, what="a first, failed publish")
        [first] = sink.attempts[0]
        for _ in range(2):  # same code, same partition: arrive while the first batch waits
            buf.add("c0", 2.0, HEADERS, "127.0.0.1")
        await wait_until_async(lambda: _eq(buf.published, 5), timeout=10, what="delivered after failures")
    finally:
        await buf.close(1.0)
    assert buf.failures == 2 and buf.dropped == 0
    assert [a[0] for a in sink.attempts[:3]] == [first] * 3  # every attempt: the very same batch
    resent, *later = sink.batches
    assert (resent.batch_id, resent.value, resent.headers) == (first.batch_id, first.value, first.headers)
    assert resent.clicks == 3 and sum(b.clicks for b in later) == 2  # the newer clicks: their own batches
    assert first.batch_id not in {b.batch_id for b in later}
    assert len({c.event_id for c in sink.clicks}) == 5


async def test_kafka_unreachable_from_the_start_keeps_the_clicks_until_it_answers() -> None:
    sink = FakeSink()
    sink.down = True
    buf = buffer(sink)
    buf.start()
    try:
        for code in CODES[:4]:
            buf.add(code, 1.0, HEADERS, "127.0.0.1")

        async def tried() -> bool:
            return buf.failures >= 2

        await wait_until_async(tried, timeout=5, what="partition count asked for twice")
        assert sink.batches == [] and buf.counters()["depth"] == 4
        sink.down = False
        await wait_until_async(lambda: _eq(buf.published, 4), timeout=10, what="delivered once Kafka answers")
    finally:
        await buf.close(1.0)
    assert sorted(codes(sink)) == CODES[:4] and buf.dropped == 0


async def test_a_batch_never_holds_more_than_max_batch_clicks() -> None:
    sink = FakeSink()
    total = 2 * MAX_BATCH_CLICKS + 500
    buf = buffer(sink, max_events=total, flush_interval=3600, batch_max=10_000)
    buf.start()
    for _ in range(total):
        buf.add("c0", 1.0, HEADERS, "127.0.0.1")
    await buf.close(5.0)
    assert [b.clicks for b in sink.batches] == [MAX_BATCH_CLICKS, MAX_BATCH_CLICKS, 500]
    assert [len(decode(b).clicks) for b in sink.batches] == [MAX_BATCH_CLICKS, MAX_BATCH_CLICKS, 500]
    assert len({b.batch_id for b in sink.batches}) == 3 and buf.published == total


async def test_tracing_on_each_click_brings_its_traceparent_as_a_header() -> None:
    sink = FakeSink()
    buf = buffer(sink, traced=True, flush_interval=3600)
    buf.start()
    parents = [f"00-{i:032x}-{i:016x}-01".encode() for i in range(1, 4)]
    buf.add("c0", 1.0, [*HEADERS, (b"traceparent", parents[0]), (b"tracestate", b"k=v")], "127.0.0.1")
    buf.add("c0", 1.0, HEADERS, "127.0.0.1")  # no context: no header
    buf.add("c0", 1.0, [(b"traceparent", parents[1])], "127.0.0.1")
    await buf.close(1.0)
    [batch] = sink.batches
    assert batch.headers == (("traceparent", parents[0]), ("tracestate", b"k=v"), ("traceparent", parents[1]))


async def test_close_flushes_what_is_buffered() -> None:
    sink = FakeSink()
    buf = buffer(sink, flush_interval=3600)  # the builder would wait an hour: only close() sends
    buf.start()
    for i in range(5):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    await buf.close(2.0)
    assert sorted(codes(sink)) == [f"c{i}" for i in range(5)]
    assert sink.closed and buf.counters()["depth"] == 0


async def test_close_gives_up_at_its_deadline_and_counts_the_loss() -> None:
    sink = FakeSink()
    sink.fail_next = 10**6
    buf = buffer(sink, flush_interval=3600)
    buf.start()
    for i in range(3):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    await buf.close(0.3)
    assert sink.batches == [] and buf.dropped == 3


class SwallowingSink(FakeSink):
    """The first publish hangs and swallows the sender's cancellation (as a Kafka client can),
    so the sender task outlives close()'s cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, batches: Sequence[ClickBatch]) -> None:
        if not self.hanging.is_set():
            self.hanging.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self.release.wait()
            raise PublishFailed("interrupted")
        await super().publish(batches)


async def test_a_sender_that_ignores_cancel_does_not_stop_the_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redirect.service_layer.click_buffer, "TASK_STOP_TIMEOUT_S", 0.2)
    sink = SwallowingSink()
    buf = buffer(sink)
    buf.start()
    buf.add("c0", 1.0, HEADERS, "127.0.0.1")

    async def hanging() -> bool:
        return sink.hanging.is_set()

    await wait_until_async(hanging, timeout=5, what="the first publish in flight")
    for i in range(1, 4):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    closing = asyncio.create_task(buf.close(2.0))
    try:
        # asyncio.wait, not wait_for: a timeout must not cancel close() (whose cleanup could
        # itself swallow that cancellation and make a hung close look finished).
        done, _ = await asyncio.wait({closing}, timeout=5)
        assert closing in done, "close() hung on a sender task that ignored its cancel"
    finally:
        closing.cancel()
        sink.release.set()
    assert sorted(codes(sink)) == ["c0", "c1", "c2", "c3"]  # the hung batch went back and out
    assert sink.closed


async def test_an_unbuildable_click_is_dropped_and_the_rest_go_on() -> None:
    sink = FakeSink()
    buf = buffer(sink)
    buf.add("bad", 1.0, [(b"user-agent", 42)], "127.0.0.1")  # type: ignore[list-item]
    buf.add("good", 1.0, HEADERS, "127.0.0.1")
    await buf.close(1.0)
    assert codes(sink) == ["good"] and buf.dropped == 1


async def test_hits_feed_the_hot_set() -> None:
    store = FakeStore()
    buf = buffer(FakeSink(), hot=store, hot_interval=0.01)
    buf.start()
    try:
        for code in ["a", "a", "b"]:
            buf.add(code, 1.0, HEADERS, "127.0.0.1")

        async def bumped() -> bool:
            return store.hot == {"a": 2, "b": 1}

        await wait_until_async(bumped, timeout=5, what="hot set bumped")
    finally:
        await buf.close(1.0)


class BrokenFormer(BatchFormer):
    def form(self, built: Any, partition_of: Any) -> list[ClickBatch]:
        if any(click.code == "bad" for click, _ in built):
            raise RuntimeError("bug")
        return super().form(built, partition_of)


async def test_clicks_that_cannot_be_formed_are_dropped_and_the_sender_goes_on() -> None:
    sink = FakeSink()
    factory = ClickFactory(
        visitor_keys=VisitorKeys(b"s"), proxies=TrustedProxies(parse_networks("127.0.0.1")), classify=make_classifier()
    )
    buf = ClickBuffer(
        factory=factory, former=BrokenFormer(producer="redirect-7"), sink=sink, max_events=100, flush_interval=0.001
    )
    buf.start()
    try:
        buf.add("bad", 1.0, HEADERS, "127.0.0.1")

        async def dropped() -> bool:
            return buf.dropped == 1

        await wait_until_async(dropped, timeout=5, what="the unformable click dropped")
        buf.add("good", 1.0, HEADERS, "127.0.0.1")
        await wait_until_async(lambda: _eq(buf.published, 1), timeout=5, what="the next click published")
    finally:
        await buf.close(1.0)
    assert codes(sink) == ["good"] and buf.counters()["depth"] == 0


# -- the batch-size rule (light traffic waits for a batch worth its records) ---------------------


async def test_a_batch_held_at_the_first_interval_is_flushed_then() -> None:
    buf = buffer(FakeSink(), flush_interval=0.01, flush_min_clicks=5, flush_max_interval=0.05)
    for code in CODES[:5]:
        buf.add(code, 1.0, HEADERS, "127.0.0.1")
    assert await buf.gather() == pytest.approx(0.01)


async def test_few_clicks_wait_an_interval_at_a_time_up_to_the_max() -> None:
    buf = buffer(FakeSink(), flush_interval=0.01, flush_min_clicks=5, flush_max_interval=0.045)
    buf.add("c1", 1.0, HEADERS, "127.0.0.1")
    # 0.01 x 4, then the 0.005 left: never past the max
    assert await buf.gather() == pytest.approx(0.045)


async def test_the_wait_ends_at_the_interval_in_which_the_floor_is_reached() -> None:
    buf = buffer(FakeSink(), flush_interval=0.02, flush_min_clicks=3, flush_max_interval=1.0)
    buf.add("c1", 1.0, HEADERS, "127.0.0.1")

    async def more_later() -> None:
        await asyncio.sleep(0.03)  # inside the second interval
        buf.add("c2", 1.0, HEADERS, "127.0.0.1")
        buf.add("c3", 1.0, HEADERS, "127.0.0.1")

    adder = asyncio.create_task(more_later())
    assert await buf.gather() == pytest.approx(0.04)
    await adder


async def test_without_a_floor_one_interval_is_the_wait() -> None:
    buf = buffer(FakeSink(), flush_interval=0.01, flush_min_clicks=0, flush_max_interval=1.0)
    buf.add("c1", 1.0, HEADERS, "127.0.0.1")
    assert await buf.gather() == pytest.approx(0.01)


async def test_clicks_below_the_floor_still_reach_kafka_by_the_max_interval() -> None:
    sink = FakeSink()
    buf = buffer(sink, flush_interval=0.01, flush_min_clicks=1000, flush_max_interval=0.05)
    buf.start()
    for code in CODES[:3]:
        buf.add(code, 1.0, HEADERS, "127.0.0.1")
    await wait_until_async(lambda: _eq(len(sink.clicks), 3), timeout=5)
    assert sorted(codes(sink)) == sorted(CODES[:3])
    await buf.close(1.0)
