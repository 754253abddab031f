"""The live per-link counts: handed off right after PostgreSQL counted a batch, with only the new
records' clicks, never in the way of the batch (a failing hand-off changes nothing), and sent
best-effort: one send in flight, the next flush's counts dropped meanwhile, a failure never retried."""

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from aggregator.adapters.live_activity import KafkaLiveActivity
from aggregator.domain.windows import TotalsColumns
from aggregator.metrics import AggregatorMetrics
from aggregator.service_layer.pipeline import Backoff, decode_batch, process_decoded
from contracts import link_activity

from tests.unit.aggregator.fakes import FakeDeadLetters, FakeEvents, FakeLedger, record
from tests.unit.aggregator.test_pipeline import CONFIG, NOW, batch

pytestmark = pytest.mark.unit


async def no_sleep(_: float) -> None:
    return None


BACKOFF = Backoff(initial_s=0.1, max_s=0.4, sleep=no_sleep)


async def process(payloads: list[bytes], ledger: FakeLedger, log: list[str], on_counted: Any) -> Any:
    decoded = decode_batch([record(p, offset=i) for i, p in enumerate(payloads)], config=CONFIG, now=NOW)
    return await process_decoded(
        decoded,
        events=FakeEvents(log),
        ledger=ledger,
        dead_letters=FakeDeadLetters(log),
        backoff=BACKOFF,
        on_counted=on_counted,
    )


async def test_the_hand_off_gets_the_new_clicks_per_link_after_postgres_and_before_clickhouse() -> None:
    log: list[str] = []
    seen: list[TotalsColumns] = []
    ledger = FakeLedger(log)
    both = batch("abc", "abc", "xyz", bots=1)

    def on_counted(totals: TotalsColumns) -> None:
        log.append("live")
        seen.append(totals)

    await process([both], ledger, log, on_counted)
    assert log == ["postgres", "live", "finish", "clickhouse"]
    (totals,) = seen
    assert dict(zip(totals.codes, zip(totals.clicks, totals.bot_clicks, strict=True), strict=True)) == {
        "abc": (1, 1),
        "xyz": (1, 0),
    }
    # The same batch again (a producer re-send): nothing new, nothing handed off.
    await process([both], ledger, log, on_counted)
    assert len(seen) == 1


async def test_a_failing_hand_off_changes_nothing_of_the_batch() -> None:
    log: list[str] = []
    ledger = FakeLedger(log)

    def broken(_: TotalsColumns) -> None:
        raise RuntimeError("live view broken")

    outcome = await process([batch("abc", "abc")], ledger, log, broken)
    assert (outcome.counted, outcome.duplicates) == (2, 0)
    assert ledger.totals == {"abc": 2} and not ledger.journal  # counted and written to ClickHouse


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
