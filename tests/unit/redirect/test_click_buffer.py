"""The click pipeline: bounded buffer, drop counting, retry with stable event ids, flush on close."""

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import pytest
import redirect.clicks
from contracts import clicks
from redirect.clicks import ClickBuffer
from redirect.domain.clicks import ClickFactory
from redirect.domain.useragent import make_classifier
from redirect.domain.visitor import TrustedProxies, VisitorKeys, parse_networks
from redirect.ports import EncodedClick, PublishFailed

from tests.conftest import wait_until_async
from tests.unit.redirect.fakes import FakeSink, FakeStore

pytestmark = pytest.mark.unit

HEADERS = [(b"user-agent", b"Twitterbot/1.0")]


def buffer(sink: FakeSink, **kw: Any) -> ClickBuffer:
    factory = ClickFactory(
        visitor_keys=VisitorKeys(b"s"), proxies=TrustedProxies(parse_networks("127.0.0.1")), classify=make_classifier()
    )
    options: dict[str, Any] = {"max_events": 100, "flush_interval": 0.001} | kw
    return ClickBuffer(factory=factory, sink=sink, **options)


def codes(events: list[tuple[bytes, bytes, int]]) -> list[str]:
    return [clicks.decode(value).code for _, value, *_ in events]


async def test_past_the_bound_new_clicks_are_dropped_and_counted() -> None:
    buf = buffer(FakeSink(), max_events=3)
    for i in range(5):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    assert buf.counters() == {"depth": 3, "dropped": 2, "published": 0, "failures": 0}


async def test_events_are_built_and_published_in_order() -> None:
    sink = FakeSink()
    buf = buffer(sink)
    buf.start()
    try:
        for i in range(10):
            buf.add(f"c{i}", 1_790_000_000.5 + i, HEADERS, "127.0.0.1")
        await wait_until_async(lambda: _eq(buf.published, 10), timeout=5, what="10 published")
        assert codes(sink.events) == [f"c{i}" for i in range(10)]
        key, value, ts, trace_context = sink.events[0]
        assert (key, ts) == (b"c0", 1_790_000_000_500)
        assert trace_context is None  # tracing off: no context is propagated
        assert clicks.decode(value).is_bot is True
        assert buf.counters()["depth"] == 0
    finally:
        await buf.close(1.0)


async def _eq(a: int, b: int) -> bool:
    return a == b


async def test_kafka_away_events_are_kept_and_resent_with_the_same_ids() -> None:
    sink = FakeSink()
    sink.fail_next = 3
    buf = buffer(sink)
    buf.start()
    try:
        for i in range(4):
            buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
        await wait_until_async(lambda: _eq(buf.published, 4), timeout=10, what="delivered after failures")
        assert buf.failures == 3 and buf.dropped == 0
        first_try = {clicks.decode(v).event_id for _, v, *_ in sink.attempts[0]}
        delivered = {clicks.decode(v).event_id for _, v, *_ in sink.events}
        assert first_try <= delivered and len(delivered) == 4  # same ids on every retry, none lost
    finally:
        await buf.close(1.0)


async def test_close_flushes_what_is_buffered() -> None:
    sink = FakeSink()
    buf = buffer(sink, flush_interval=3600)  # the builder would wait an hour: only close() sends
    buf.start()
    for i in range(5):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    await buf.close(2.0)
    assert codes(sink.events) == [f"c{i}" for i in range(5)]
    assert sink.closed and buf.counters()["depth"] == 0


async def test_close_gives_up_at_its_deadline_and_counts_the_loss() -> None:
    sink = FakeSink()
    sink.fail_next = 10**6
    buf = buffer(sink, flush_interval=3600)
    buf.start()
    for i in range(3):
        buf.add(f"c{i}", 1.0, HEADERS, "127.0.0.1")
    await buf.close(0.3)
    assert sink.events == [] and buf.dropped == 3


class SwallowingSink(FakeSink):
    """The first publish hangs and swallows the sender's cancellation (as a Kafka client can),
    so the sender task outlives close()'s cancel."""

    def __init__(self) -> None:
        super().__init__()
        self.hanging = asyncio.Event()
        self.release = asyncio.Event()

    async def publish(self, events: Sequence[EncodedClick]) -> None:
        if not self.hanging.is_set():
            self.hanging.set()
            with contextlib.suppress(asyncio.CancelledError):
                await self.release.wait()
            raise PublishFailed("interrupted")
        await super().publish(events)


async def test_a_sender_that_ignores_cancel_does_not_stop_the_flush(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(redirect.clicks, "TASK_STOP_TIMEOUT_S", 0.2)
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
    assert sorted(codes(sink.events)) == ["c0", "c1", "c2", "c3"]  # the hung batch went back and out
    assert sink.closed


async def test_an_unbuildable_click_is_dropped_and_the_rest_go_on() -> None:
    sink = FakeSink()
    buf = buffer(sink)
    buf.add("bad", 1.0, [(b"user-agent", 42)], "127.0.0.1")  # type: ignore[list-item]
    buf.add("good", 1.0, HEADERS, "127.0.0.1")
    await buf.close(1.0)
    assert codes(sink.events) == ["good"] and buf.dropped == 1


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
