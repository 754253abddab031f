"""process_batch: poison to the dead-letter port, sinks in order, retries inside, exact counts."""

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aggregator.pipeline import PipelineConfig, process_batch
from contracts import clicks

from tests.unit.aggregator.fakes import FakeDeadLetters, FakeEvents, FakeLedger, record

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
CONFIG = PipelineConfig(consumer="aggregator-7", horizon=timedelta(days=8), max_future_skew=timedelta(hours=1),
                        retry_initial_s=0.1, retry_max_s=0.4)


def click(code: str = "abc", *, bot: bool = False, event_id: str | None = None) -> bytes:
    return clicks.encode(clicks.LinkClicked(
        event_id=event_id or str(uuid.uuid4()), occurred_at=NOW - timedelta(seconds=5), code=code,
        visitor_key="v1", is_bot=bot, device="bot" if bot else "desktop",
    ))


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def run(records, events, ledger, dlq, sleep=None):  # type: ignore[no-untyped-def]
    return await process_batch(records, config=CONFIG, events=events, ledger=ledger, dead_letters=dlq,
                               clock=lambda: NOW, sleep=sleep or Sleeps())


async def test_counts_each_event_id_once_across_batches() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log), FakeLedger(log), FakeDeadLetters(log)
    payloads = [click("abc") for _ in range(5)] + [click("abc", bot=True), click("xyz")]
    first = await run([record(p, offset=i) for i, p in enumerate(payloads)], events, ledger, dlq)
    assert (first.received, first.counted, first.duplicates, first.dead_lettered) == (7, 7, 0, 0)
    again = await run([record(p, offset=i) for i, p in enumerate(payloads[:3] * 2)], events, ledger, dlq)
    assert (again.counted, again.duplicates) == (0, 6)  # 3 repeated in the batch, 3 already counted
    assert ledger.totals == {"abc": 6, "xyz": 1}
    assert events.exact("abc") == 6
    assert sum(c.clicks for c in first.new_counts) == 6 and sum(c.bot_clicks for c in first.new_counts) == 1


async def test_clickhouse_is_written_before_postgres() -> None:
    log: list[str] = []
    await run([record(click())], FakeEvents(log), FakeLedger(log), FakeDeadLetters(log))
    assert log == ["clickhouse", "postgres"]


async def test_poison_goes_to_the_dead_letter_port_with_reason_and_payload_and_the_rest_counts() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log), FakeLedger(log), FakeDeadLetters(log)
    bad_version = click().replace(b'"schema_version":1', b'"schema_version":9')
    outcome = await run(
        [record(b"\xff garbage", offset=3, partition=2, key=b"abc"), record(click(), offset=4),
         record(bad_version, offset=5)],
        events, ledger, dlq,
    )
    assert (outcome.counted, outcome.dead_lettered) == (1, 2)
    first, second = dlq.records
    assert (first.source_topic, first.partition, first.offset, first.consumer) == ("clicks", 2, 3, "aggregator-7")
    assert base64.b64decode(first.payload_b64) == b"\xff garbage" and first.key_b64 == base64.b64encode(b"abc").decode()
    assert "malformed" in first.error or "JSON" in first.error
    assert "schema_version" in second.error
    assert log == ["deadletter", "clickhouse", "postgres"]


async def test_failed_writes_are_retried_with_capped_backoff_never_raised() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log, failures=2), FakeLedger(log, failures=3), FakeDeadLetters(log, failures=1)
    sleeps = Sleeps()
    outcome = await run([record(b"junk"), record(click("abc"))], events, ledger, dlq, sleep=sleeps)
    assert outcome.counted == 1 and ledger.totals == {"abc": 1} and len(dlq.records) == 1
    # A failed PostgreSQL write retries the ClickHouse insert too: harmless, the insert is idempotent.
    assert events.exact("abc") == 1
    assert sleeps.calls == [0.1, 0.1, 0.2, 0.4, 0.4, 0.4]  # dead-letter once, then the sink write 5x
    assert max(sleeps.calls) <= CONFIG.retry_max_s


async def test_cancellation_escapes_so_nothing_gets_acked() -> None:
    log: list[str] = []

    class Cancelled(FakeLedger):
        async def record(self, rows):  # type: ignore[no-untyped-def]
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await run([record(click())], FakeEvents(log), Cancelled(log), FakeDeadLetters(log))


async def test_an_all_poison_batch_writes_nothing_to_the_sinks() -> None:
    log: list[str] = []
    outcome = await run([record(None), record(b"{}")], FakeEvents(log), FakeLedger(log), FakeDeadLetters(log))
    assert outcome.dead_lettered == 2 and outcome.counted == 0 and log == ["deadletter"]
