"""process_batch: poison to the dead-letter port, claim then write, retries inside, exact counts
per record for both record formats."""

import asyncio
import base64
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aggregator.service_layer.pipeline import PipelineConfig, process_batch
from contracts import clicks

from tests.unit.aggregator.fakes import FakeDeadLetters, FakeEvents, FakeLedger, record

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 27, 10, 0, 30, tzinfo=UTC)
CONFIG = PipelineConfig(
    consumer="aggregator-7",
    horizon=timedelta(days=8),
    max_future_skew=timedelta(hours=1),
    retry_initial_s=0.1,
    retry_max_s=0.4,
)


def click(code: str = "abc", *, bot: bool = False, event_id: str | None = None) -> bytes:
    return clicks.encode(
        clicks.LinkClicked(
            event_id=event_id or str(uuid.uuid4()),
            occurred_at=NOW - timedelta(seconds=5),
            code=code,
            visitor_key="v1",
            is_bot=bot,
            device="bot" if bot else "desktop",
        )
    )


def batch(*codes: str, bots: int = 0, at: datetime | None = None) -> bytes:
    items = tuple(
        clicks.Click(
            event_id=uuid.uuid4(),
            occurred_at=at or NOW - timedelta(seconds=5),
            code=code,
            visitor_key="v1",
            is_bot=i < bots,
            device="bot" if i < bots else "mobile",
        )
        for i, code in enumerate(codes)
    )
    return clicks.encode(clicks.ClicksBatched(batch_id=uuid.uuid4(), producer="redirect-1", clicks=items))


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


async def run(records, events, ledger, dlq, sleep=None):  # type: ignore[no-untyped-def]
    return await process_batch(
        records,
        config=CONFIG,
        events=events,
        ledger=ledger,
        dead_letters=dlq,
        clock=lambda: NOW,
        sleep=sleep or Sleeps(),
    )


async def test_counts_each_record_once_across_batches() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log), FakeLedger(log), FakeDeadLetters(log)
    payloads = [click("abc") for _ in range(5)] + [click("abc", bot=True), click("xyz")]
    first = await run([record(p, offset=i) for i, p in enumerate(payloads)], events, ledger, dlq)
    assert (first.records, first.received, first.counted, first.duplicates, first.dead_lettered) == (7, 7, 7, 0, 0)
    again = await run([record(p, offset=i) for i, p in enumerate(payloads[:3] * 2)], events, ledger, dlq)
    assert (again.counted, again.duplicates) == (0, 6)  # 3 repeated in the batch, 3 already counted
    assert ledger.totals == {"abc": 6, "xyz": 1}
    assert events.count("abc") == 6
    new_rows = [row for d in first.new for row in d.record.rows]
    assert len(first.new) == 7 and sum(r.is_bot for r in new_rows) == 1 and len(new_rows) == 7


async def test_batch_records_and_single_clicks_count_together_and_a_resent_batch_counts_once() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log), FakeLedger(log), FakeDeadLetters(log)
    both = batch("abc", "abc", "xyz", bots=1)
    outcome = await run(
        [record(both, offset=0), record(click("abc"), offset=1), record(both, offset=2)], events, ledger, dlq
    )
    assert (outcome.records, outcome.received, outcome.counted, outcome.duplicates) == (3, 7, 4, 3)
    resent = await run([record(both, offset=3)], events, ledger, dlq)  # re-sent after a producer error
    assert (resent.counted, resent.duplicates) == (0, 3)
    assert ledger.totals == {"abc": 3, "xyz": 1} and events.count("abc") == 3 and events.count("xyz") == 1
    assert [len(d.record.rows) for d in outcome.new] == [3, 1]  # the new records, for the window view


async def test_postgres_claims_before_clickhouse_is_written_under_the_journal() -> None:
    log: list[str] = []
    events = FakeEvents(log)
    await run([record(batch("abc"))], events, FakeLedger(log), FakeDeadLetters(log))
    assert log == ["postgres", "finish", "clickhouse"]
    assert events.fresh_calls == 1  # a first attempt skips looking for an earlier one's markers


async def test_poison_goes_to_the_dead_letter_port_with_reason_and_payload_and_the_rest_counts() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log), FakeLedger(log), FakeDeadLetters(log)
    bad_version = click().replace(b'"schema_version":1', b'"schema_version":9')
    bad_batch = batch("ok", "ok").replace(b'"code":"ok"', b'"code":"no way"', 1)
    outcome = await run(
        [
            record(b"\xff garbage", offset=3, partition=2, key=b"abc"),
            record(click(), offset=4),
            record(bad_version, offset=5),
            record(bad_batch, offset=6),
        ],
        events,
        ledger,
        dlq,
    )
    assert (outcome.counted, outcome.dead_lettered, outcome.records) == (1, 3, 4)
    first, second, third = dlq.records
    assert (first.source_topic, first.partition, first.offset, first.consumer) == ("clicks", 2, 3, "aggregator-7")
    assert base64.b64decode(first.payload_b64) == b"\xff garbage" and first.key_b64 == base64.b64encode(b"abc").decode()
    assert "malformed" in first.error or "JSON" in first.error
    assert "schema_version" in second.error
    assert third.payload() == bad_batch and "code" in third.error  # the whole record, kept verbatim
    assert log == ["deadletter", "postgres", "finish", "clickhouse"]


async def test_a_batch_whose_newest_click_left_the_horizon_is_poison() -> None:
    log: list[str] = []
    dlq = FakeDeadLetters(log)
    outcome = await run([record(batch("abc", at=NOW - timedelta(days=9)))], FakeEvents(log), FakeLedger(log), dlq)
    assert outcome.dead_lettered == 1 and "older than the dedup horizon" in dlq.records[0].error
    future = await run([record(batch("abc", at=NOW + timedelta(hours=2)))], FakeEvents(log), FakeLedger(log), dlq)
    assert future.dead_lettered == 1 and "in the future" in dlq.records[1].error


async def test_failed_writes_are_retried_with_capped_backoff_never_raised() -> None:
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log, failures=2), FakeLedger(log, failures=3), FakeDeadLetters(log, failures=1)
    sleeps = Sleeps()
    outcome = await run([record(b"junk"), record(click("abc"))], events, ledger, dlq, sleep=sleeps)
    assert outcome.counted == 1 and ledger.totals == {"abc": 1} and len(dlq.records) == 1
    assert events.count("abc") == 1 and not ledger.journal
    # dead-letter once; the claim 3x (0.1, 0.2, 0.4); the ClickHouse write 2x (a new backoff each)
    assert sleeps.calls == [0.1, 0.1, 0.2, 0.4, 0.1, 0.2]
    assert events.fresh_calls == 1 and log.count("clickhouse") == 3  # only the first attempt skips the lookup
    assert max(sleeps.calls) <= CONFIG.retry_max_s


async def test_cancellation_escapes_so_nothing_gets_acked() -> None:
    log: list[str] = []

    class Cancelled(FakeLedger):
        async def claim(self, records, *, only_codes=None):  # type: ignore[no-untyped-def]
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await run([record(click())], FakeEvents(log), Cancelled(log), FakeDeadLetters(log))


async def test_an_all_poison_batch_writes_nothing_to_the_sinks() -> None:
    log: list[str] = []
    outcome = await run([record(None), record(b"{}")], FakeEvents(log), FakeLedger(log), FakeDeadLetters(log))
    assert outcome.dead_lettered == 2 and outcome.counted == 0 and log == ["deadletter"]


async def test_with_clickhouse_away_a_batch_leaves_its_write_to_recovery_after_its_attempts() -> None:
    """PostgreSQL's totals keep up while ClickHouse is down: after `clickhouse_attempts` the
    batch goes on, its journal entry left for sink recovery (which writes it once)."""
    from dataclasses import replace

    log: list[str] = []
    events, ledger, dlq = FakeEvents(log, failures=100), FakeLedger(log), FakeDeadLetters(log)
    sleeps = Sleeps()
    outcome = await process_batch(
        [record(click("abc")), record(click("abc"), offset=1)],
        config=replace(CONFIG, clickhouse_attempts=3),
        events=events,
        ledger=ledger,
        dead_letters=dlq,
        clock=lambda: NOW,
        sleep=sleeps,
    )
    assert outcome.counted == 2 and ledger.totals == {"abc": 2}
    assert events.count("abc") == 0 and len(ledger.journal) == 1  # owed to ClickHouse, by the journal
    assert log.count("clickhouse") == 3 and sleeps.calls == [0.1, 0.2]


async def test_every_retried_write_increments_the_sink_retry_metric() -> None:
    """aggregator_sink_retries_total (the SinkWriteRetries alert's input) counts each failed
    attempt that is retried: the dead-letter publish 1x, the claim 3x, the ClickHouse write 2x."""
    from aggregator.metrics import AggregatorMetrics

    metrics = AggregatorMetrics()
    log: list[str] = []
    events, ledger, dlq = FakeEvents(log, failures=2), FakeLedger(log, failures=3), FakeDeadLetters(log, failures=1)
    await process_batch(
        [record(b"junk"), record(click("abc"))],
        config=CONFIG,
        events=events,
        ledger=ledger,
        dead_letters=dlq,
        clock=lambda: NOW,
        sleep=Sleeps(),
        on_retry=metrics.sink_retries.inc,
    )
    assert metrics.registry.get_sample_value("aggregator_sink_retries_total") == 6
