"""The click pipeline for one batch: decode -> dead-letter poison -> sink (ClickHouse, then
PostgreSQL) -> report. The caller acks the batch's offsets only after this returns.

Failure policy: a write that fails is retried with capped backoff until it succeeds; nothing
raises out of `process_batch` except cancellation (worker shutdown), in which case the caller
acks nothing and Kafka redelivers the batch. Both sinks are idempotent, so a redelivered or
replayed batch changes no count.
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
from telemetry import tracing

from aggregator.domain.batching import first_of_each_id
from aggregator.domain.clicks import ClickRow, PoisonMessage, decode_record
from aggregator.domain.windows import MinuteCount
from aggregator.ports import DeadLetters, EventStore, Ledger, SourceRecord

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True, kw_only=True)
class PipelineConfig:
    consumer: str  # named in dead-letter records, e.g. "aggregator-2"
    horizon: timedelta  # dedup horizon = ledger retention
    max_future_skew: timedelta
    retry_initial_s: float = 0.2
    retry_max_s: float = 5.0


@dataclass(frozen=True, kw_only=True)
class BatchOutcome:
    received: int
    counted: int  # new event ids, added to the totals
    duplicates: int  # repeats (in the batch or already in the ledger)
    dead_lettered: int
    new_counts: list[MinuteCount] = field(default_factory=list)
    partitions: dict[str, int] = field(default_factory=dict)  # code -> source partition


@dataclass(frozen=True, kw_only=True)
class Decoded:
    rows: list[ClickRow]
    poison: list[MessageDeadLettered]
    partitions: dict[str, int]


def decode_batch(
    records: Sequence[SourceRecord], *, config: PipelineConfig, now: datetime
) -> Decoded:
    """Pure: split a batch into sink rows and dead-letter records (with the reason)."""
    rows: list[ClickRow] = []
    poison: list[MessageDeadLettered] = []
    partitions: dict[str, int] = {}
    for record in records:
        try:
            row = decode_record(
                record.value, now=now, horizon=config.horizon, max_skew=config.max_future_skew
            )
        except PoisonMessage as exc:
            poison.append(
                deadletter.build(
                    source_topic=record.topic,
                    partition=record.partition,
                    offset=record.offset,
                    key=record.key,
                    payload=record.value or b"",
                    error=exc.reason,
                    consumer=config.consumer,
                    failed_at=now,
                )
            )
            continue
        rows.append(row)
        partitions[row.code] = record.partition
    return Decoded(rows=rows, poison=poison, partitions=partitions)


@dataclass(frozen=True, kw_only=True)
class Backoff:
    initial_s: float
    max_s: float
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep


async def retry_until_done(operation: Callable[[], Awaitable[T]], *, what: str, backoff: Backoff) -> T:
    """Run `operation` until it succeeds, backing off between attempts. Only cancellation escapes."""
    delay = backoff.initial_s
    attempt = 1
    while True:
        try:
            return await operation()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.warning("%s failed (attempt %d), retrying in %.1fs: %r", what, attempt, delay, exc)
        await backoff.sleep(delay)
        delay = min(delay * 2, backoff.max_s)
        attempt += 1


async def sink_rows(
    rows: Sequence[ClickRow], *, events: EventStore, ledger: Ledger
) -> tuple[int, int, list[MinuteCount]]:
    """ClickHouse first, then the PostgreSQL transaction. Both idempotent: a crash between the
    two (or after both, before the offset commit) means redelivery, which changes no count."""
    await events.insert(rows)
    result = await ledger.record(rows)
    return result.inserted, result.duplicates, result.new_counts


async def process_batch(
    records: Sequence[SourceRecord],
    *,
    config: PipelineConfig,
    events: EventStore,
    ledger: Ledger,
    dead_letters: DeadLetters,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> BatchOutcome:
    """Everything a batch needs before its offsets may be acked."""
    decoded = decode_batch(records, config=config, now=clock())
    backoff = Backoff(initial_s=config.retry_initial_s, max_s=config.retry_max_s, sleep=sleep)
    if decoded.poison:
        poison = decoded.poison
        await retry_until_done(lambda: dead_letters.publish(poison), what="dead-letter publish", backoff=backoff)
    unique = first_of_each_id(decoded.rows)
    inserted, duplicates, new_counts = 0, 0, list[MinuteCount]()
    spans = TracedBatch(records) if tracing.tracing_enabled() else None
    if unique:
        inserted, duplicates, new_counts = await retry_until_done(
            lambda: sink_rows(unique, events=events, ledger=ledger), what="sink write", backoff=backoff
        )
    if spans is not None:
        spans.sink_written(rows=len(unique), counted=inserted)
    return BatchOutcome(
        received=len(records),
        counted=inserted,
        duplicates=duplicates + (len(decoded.rows) - len(unique)),
        dead_lettered=len(decoded.poison),
        new_counts=new_counts,
        partitions=decoded.partitions,
    )


class TracedBatch:
    """Tracing on: a consumer span per record (child of the redirect's producer context in its
    headers) and, once the sinks hold the batch, a "sink write" child span covering the write."""

    def __init__(self, records: Sequence[SourceRecord]) -> None:
        self._tracer = trace.get_tracer("aggregator.pipeline")
        self._started_ns = time.time_ns()
        self._spans = [
            self._tracer.start_span(
                f"{r.topic} process",
                context=tracing.context_from_kafka_headers(r.headers),
                kind=SpanKind.CONSUMER,
                start_time=self._started_ns,
                attributes={"messaging.system": "kafka", "messaging.destination.name": r.topic,
                            "messaging.kafka.partition": r.partition, "messaging.kafka.offset": r.offset},
            )
            for r in records
            if r.headers
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

