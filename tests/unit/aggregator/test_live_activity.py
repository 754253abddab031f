"""The live per-link counts: each tick's clicks handed off as the stream hands the tick over,
each record once, never in the way of the batch (a failing hand-off raises nothing), and sent
best-effort: one send in flight, the next tick's counts dropped meanwhile, a failure never retried."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aggregator.adapters.live_activity import KafkaLiveActivity
from aggregator.domain.windows import TotalsColumns
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import Decoded
from aggregator.service_layer.live_handoff import LiveHandoff, RecentIds
from aggregator.service_layer.pipeline import decode_batch
from contracts import link_activity

from tests.unit.aggregator.fakes import record
from tests.unit.aggregator.test_pipeline import CONFIG, NOW, batch

pytestmark = pytest.mark.unit


class Recorder:
    def __init__(self) -> None:
        self.seen: list[dict[str, tuple[int, int]]] = []

    def counted(self, totals: TotalsColumns) -> None:
        self.seen.append(dict(zip(totals.codes, zip(totals.clicks, totals.bot_clicks, strict=True), strict=True)))


def decoded(*payloads: bytes, first_offset: int = 0) -> list[Decoded]:
    return decode_batch(
        [record(p, offset=first_offset + i) for i, p in enumerate(payloads)], config=CONFIG, now=NOW
    ).good


def test_each_tick_hands_off_its_clicks_per_link_once() -> None:
    recorder = Recorder()
    handoff = LiveHandoff(recorder)
    both = batch("abc", "abc", "xyz", bots=1)
    handoff.tick(decoded(both))
    assert recorder.seen == [{"abc": (1, 1), "xyz": (1, 0)}]
    # The same batch again at another offset (a redirect's re-send): nothing handed off.
    handoff.tick(decoded(both, first_offset=7))
    assert len(recorder.seen) == 1
    # A tick with the repeat and a new batch: only the new batch's clicks.
    handoff.tick(decoded(both, batch("xyz"), first_offset=9))
    assert recorder.seen[1:] == [{"xyz": (1, 0)}]
    handoff.tick([])  # an empty tick hands off nothing
    assert len(recorder.seen) == 2


def test_a_failing_hand_off_never_raises() -> None:
    class Broken:
        def counted(self, totals: TotalsColumns) -> None:
            raise RuntimeError("live view broken")

    LiveHandoff(Broken()).tick(decoded(batch("abc", "abc")))


def test_recent_ids_remember_between_one_and_two_generations() -> None:
    recent = RecentIds(2)
    assert recent.add("a") and recent.add("b") and not recent.add("a")
    assert recent.add("c")  # the first generation is full: {a, b} becomes the previous one
    assert not recent.add("a") and not recent.add("c")
    assert recent.add("d") and recent.add("e")  # {c, d} full: {a, b} forgotten
    assert recent.add("a") and not recent.add("d")


class SlowTopic:
    """A faust topic as the adapter uses it: `send` enqueues and returns a delivery future."""

    def __init__(self, *, fail: bool = False) -> None:
        self.sent: list[bytes] = []
        self.fail = fail
        self.gate = asyncio.Event()
        self.changed = asyncio.Condition()

    async def send(self, *, key: Any = None, value: Any = None) -> Any:
        self.sent.append(value)
        async with self.changed:
            self.changed.notify_all()
        gate = self.gate

        async def delivery() -> None:
            await gate.wait()
            if self.fail:
                raise ConnectionError("broker away")

        return asyncio.ensure_future(delivery())


def totals(n: int) -> TotalsColumns:
    return TotalsColumns(
        codes=[f"c{i}" for i in range(n)],
        clicks=[1] * n,
        bot_clicks=[0] * n,
        first_s=[1795773601] * n,
        last_s=[1795773602] * n,
    )


def live(topic: SlowTopic, metrics: AggregatorMetrics) -> KafkaLiveActivity:
    return KafkaLiveActivity(
        topic, producer="aggregator-2", metrics=metrics, clock=lambda: datetime(2026, 11, 27, 10, tzinfo=UTC)
    )


def value(metrics: AggregatorMetrics, name: str) -> float:
    return metrics.registry.get_sample_value(name) or 0.0


async def until_sent(topic: SlowTopic, n: int) -> None:
    async with asyncio.timeout(5), topic.changed:
        await topic.changed.wait_for(lambda: len(topic.sent) >= n)


async def test_one_send_in_flight_and_the_next_flush_is_dropped_meanwhile() -> None:
    metrics = AggregatorMetrics()
    topic = SlowTopic()
    adapter = live(topic, metrics)
    adapter.counted(totals(link_activity.MAX_LINKS + 1))  # two records: one flush, one send
    adapter.counted(totals(3))  # the first send still waits for the broker: dropped
    await until_sent(topic, 2)
    assert value(metrics, "aggregator_live_records_dropped_total") == 1
    topic.gate.set()
    await adapter.idle()
    assert value(metrics, "aggregator_live_records_sent_total") == 2
    first, second = (link_activity.decode(p) for p in topic.sent)
    assert len(first.codes) == link_activity.MAX_LINKS and second.codes == [f"c{link_activity.MAX_LINKS}"]
    assert first.producer == "aggregator-2"
    adapter.counted(totals(3))  # the send is done: the next flush goes out
    await adapter.idle()
    assert len(topic.sent) == 3 and value(metrics, "aggregator_live_records_dropped_total") == 1
    await adapter.close()


async def test_a_failed_send_is_counted_as_dropped_and_never_retried() -> None:
    metrics = AggregatorMetrics()
    topic = SlowTopic(fail=True)
    topic.gate.set()
    adapter = live(topic, metrics)
    adapter.counted(totals(2))
    await adapter.idle()
    assert value(metrics, "aggregator_live_records_dropped_total") == 1
    assert len(topic.sent) == 1 and value(metrics, "aggregator_live_records_sent_total") == 0
    await adapter.close()


async def test_close_abandons_a_send_in_flight() -> None:
    metrics = AggregatorMetrics()
    topic = SlowTopic()  # never delivers
    adapter = live(topic, metrics)
    adapter.counted(totals(1))
    await until_sent(topic, 1)
    async with asyncio.timeout(1):
        await adapter.close()
