"""The click pipeline for one batch of Kafka records, whoever read them (a faust worker or the
replay tool): decode -> dead-letter poison -> claim the new records in PostgreSQL -> write their
clicks to ClickHouse exactly once -> report what to ack.

Exactness (see services/aggregator/README.md):
- PostgreSQL decides what is new, per *record* (a redirect's partition batch, or one click of
  the previous format): one transaction inserts the record ids into the ledger, adds only the
  new records' clicks to the totals and writes a sink-journal entry naming those records.
- ClickHouse then receives the new clicks once: every insert carries a marker row in the same
  part (atomic), a retry first looks for the marker, and the journal entry is removed in the
  same transaction that holds its lock while the inserts run. A worker killed between the two
  leaves the entry; `recover_pending` (any worker, later) re-reads its records and finishes it.
Failure policy: every write is retried with capped backoff until it succeeds; only cancellation
(worker shutdown) escapes, in which case the caller acks nothing and Kafka redelivers.
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from contracts import deadletter
from contracts.deadletter import MessageDeadLettered
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from platformkit.retry import RetryPolicy
from telemetry import tracing

from aggregator.domain.click_records import PoisonMessage, decode_record
from aggregator.ports import Claimed, DeadLetters, Decoded, EventStore, Ledger, SourceRecord

log = logging.getLogger(__name__)
T = TypeVar("T")

# Journal entries older than this are taken over by `recover_pending` (any worker); a claim's
# own first write within FRESH_FOR_S of the claim cannot have been preceded by anyone's.
RECOVERY_AGE_S = 30.0
FRESH_FOR_S = 10.0


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    consumer: str  # named in dead-letter records, e.g. "aggregator-2"
    horizon: timedelta  # dedup horizon = ledger retention
    max_future_skew: timedelta
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0
    # ClickHouse write attempts before the batch leaves its write to sink recovery (the journal
    # entry stays; the records are acked): PostgreSQL's totals keep counting while ClickHouse is
    # away instead of the partition waiting on it. None: retry until it succeeds.
    clickhouse_attempts: int | None = None


@dataclass(frozen=True, kw_only=True)
class DecodedBatch:
    good: list[Decoded]
    poison: list[MessageDeadLettered]

    @property
    def clicks(self) -> int:
        return sum(len(d.record.rows) for d in self.good)


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    records: int  # Kafka records handled (all of them may be acked now)
    received: int  # clicks in the decoded records
    counted: int  # clicks of new records, added to the totals
    duplicates: int  # clicks of records already counted (or repeated in the batch)
    dead_lettered: int  # poison records
    new: list[Decoded] = field(default_factory=list)  # the records that were new (for the window view)


def decode_batch(records: Sequence[SourceRecord], *, config: PipelineConfig, now: datetime) -> DecodedBatch:
    """Pure: split records into decoded ones and dead-letter records (with the reason)."""
    good: list[Decoded] = []
    poison: list[MessageDeadLettered] = []
    for source in records:
        try:
            record = decode_record(source.value, now=now, horizon=config.horizon, max_skew=config.max_future_skew)
        except PoisonMessage as exc:
            poison.append(
                deadletter.build(
                    source_topic=source.topic,
                    partition=source.partition,
                    offset=source.offset,
                    key=source.key,
                    payload=source.value or b"",
                    error=exc.reason,
                    consumer=config.consumer,
                    failed_at=now,
                )
            )
            continue
        good.append(Decoded(source=source, record=record))
    return DecodedBatch(good=good, poison=poison)


def first_of_each_record(decoded: Sequence[Decoded]) -> list[Decoded]:
    """Drop repeats of a record id inside one batch (the ledger drops repeats across batches)."""
    seen: set[str] = set()
    unique: list[Decoded] = []
    for d in decoded:
        record_id = str(d.record.record_id)
        if record_id not in seen:
            seen.add(record_id)
            unique.append(d)
    return unique


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """How the pipeline retries its writes (platformkit.retry): from `initial_s`, doubling to
    `max_s`, plus up to `jitter_s`; `on_retry` counts each retried failure."""

    initial_s: float
    max_s: float
    jitter_s: float = 0.0
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    on_retry: Callable[[], None] = lambda: None

    def policy(self, what: str, attempts: int | None = None) -> RetryPolicy:
        return RetryPolicy(
            what=what,
            initial_s=self.initial_s,
            max_s=self.max_s,
            jitter_s=self.jitter_s,
            max_attempts=attempts,
            on_retry=self.on_retry,
            sleep=self.sleep,
            log=log,
        )


async def retry_until_done(
    operation: Callable[[], Awaitable[T]], *, what: str, backoff: Backoff, attempts: int | None = None
) -> T:
    """Run `operation` until it succeeds, backing off between attempts. Only cancellation escapes,
    and, with `attempts`, the last failure once that many attempts failed."""
    return await backoff.policy(what, attempts).call(operation)


async def write_claimed(
    claimed: Claimed, *, events: EventStore, ledger: Ledger, backoff: Backoff, max_attempts: int | None = None
) -> None:
    """ClickHouse receives the claimed clicks once, under the journal entry's lock. After
    `max_attempts` failed attempts the entry is left for `recover_pending` (after RECOVERY_AGE_S,
    markers checked), which writes it once ClickHouse answers; the batch goes on."""
    if claimed.sink_id is None:
        return
    rows = [row for d in claimed.new for row in d.record.rows]
    sink_id = claimed.sink_id
    attempts = 0

    async def write() -> None:
        nonlocal attempts
        attempts += 1
        # Only a first attempt made well before recovery may look at the entry (RECOVERY_AGE_S)
        # can skip looking for what an earlier attempt wrote.
        fresh = attempts == 1 and time.monotonic() - claimed.at < FRESH_FOR_S
        await events.write(sink_id, rows, fresh=fresh)

    try:
        await retry_until_done(
            lambda: ledger.finish(sink_id, write), what="ClickHouse write", backoff=backoff, attempts=max_attempts
        )
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.warning(
            "ClickHouse write of %s failed %d times (%r): left to sink recovery; PostgreSQL has the clicks",
            sink_id,
            max_attempts,
            exc,
        )


async def process_decoded(
    batch: DecodedBatch,
    *,
    events: EventStore,
    ledger: Ledger,
    dead_letters: DeadLetters,
    backoff: Backoff,
    only_codes: Sequence[str] | None = None,
    clickhouse_attempts: int | None = None,
) -> BatchOutcome:
    """Everything a decoded batch needs before its records may be acked. `only_codes`: the
    records were narrowed to these codes' clicks (a rebuild, see entrypoints/replay.py)."""
    if batch.poison:
        poison = batch.poison
        await retry_until_done(lambda: dead_letters.publish(poison), what="dead-letter publish", backoff=backoff)
    unique = first_of_each_record(batch.good)
    spans = TracedBatch([d.source for d in batch.good]) if tracing.tracing_enabled() else None
    new: list[Decoded] = []
    if unique:
        claimed = await retry_until_done(
            lambda: ledger.claim(unique, only_codes=only_codes), what="PostgreSQL claim", backoff=backoff
        )
        await write_claimed(claimed, events=events, ledger=ledger, backoff=backoff, max_attempts=clickhouse_attempts)
        new = claimed.new
    counted = sum(len(d.record.rows) for d in new)
    received = batch.clicks
    if spans is not None:
        spans.sink_written(rows=received, counted=counted)
    return BatchOutcome(
        records=len(batch.good) + len(batch.poison),
        received=received,
        counted=counted,
        duplicates=received - counted,
        dead_lettered=len(batch.poison),
        new=new,
    )


async def process_batch(
    records: Sequence[SourceRecord],
    *,
    config: PipelineConfig,
    events: EventStore,
    ledger: Ledger,
    dead_letters: DeadLetters,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[], None] = lambda: None,
) -> BatchOutcome:
    """Decode and process one batch of records (the caller then acks all of them)."""
    backoff = Backoff(initial_s=config.retry_initial_s, max_s=config.retry_max_s, sleep=sleep, on_retry=on_retry)
    return await process_decoded(
        decode_batch(records, config=config, now=clock()),
        events=events,
        ledger=ledger,
        dead_letters=dead_letters,
        backoff=backoff,
        clickhouse_attempts=config.clickhouse_attempts,
    )


class TracedBatch:
    """Tracing on: a consumer span per click trace context in the records' headers (a batch
    record carries one `traceparent` header per traced click) and, once the sinks hold the
    batch, a "sink write" child span covering the write."""

    def __init__(self, records: Sequence[SourceRecord]) -> None:
        self._tracer = trace.get_tracer("aggregator.pipeline")
        self._started_ns = time.time_ns()
        self._spans = [
            self._tracer.start_span(
                f"{r.topic} process",
                context=tracing.context_from_traceparent(value.decode("latin-1")),
                kind=SpanKind.CONSUMER,
                start_time=self._started_ns,
                attributes={
                    "messaging.system": "kafka",
                    "messaging.destination.name": r.topic,
                    "messaging.kafka.partition": r.partition,
                    "messaging.kafka.offset": r.offset,
                },
            )
            for r in records
            for name, value in (r.headers or ())
            if name == "traceparent"
        ]

    def sink_written(self, *, rows: int, counted: int) -> None:
        ended = time.time_ns()
        for span in self._spans:
            child = self._tracer.start_span(
                "sink write (clickhouse, postgresql)",
                context=trace.set_span_in_context(span),
                start_time=self._started_ns,
                attributes={"aggregator.batch_rows": rows, "aggregator.counted": counted},
            )
            child.end(end_time=ended)
            span.end(end_time=ended)
