"""What the `clicks` agent (entrypoints/aggregate_clicks.py) drives: ticks of un-acked records ->
decoded (pure) -> Batcher (flush rule on the estimated click lag and this worker's share of the
partitions) -> pipeline.process_decoded
(dead letters, PostgreSQL claim, ClickHouse write; retries inside) -> window table -> our
progress record -> ack. Each tick's clicks also go to the live hand-off at once (best-effort,
service_layer/live_handoff.py), without waiting for the flush.

Offsets are committed only for acked records, so an offset never passes a record whose clicks
are not durable in both sinks. Events are the stream's (faust events: `.message.partition`,
`.message.offset`, `allow_ack()`), held opaque; `to_record` (adapters/faust_events.py) turns one
into the pipeline's SourceRecord; what a batch needs is in service_layer/pipeline.py.
"""

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aggregator.domain.batching import FlushPolicy
from aggregator.domain.gaps import Frontier
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import DeadLetters, Decoded, LiveActivity, SourceRecord, WindowView
from aggregator.service_layer.accumulator import Batcher, LagTracker
from aggregator.service_layer.live_handoff import LiveHandoff
from aggregator.service_layer.pipeline import (
    Backoff,
    BatchOutcome,
    DecodedBatch,
    PipelineConfig,
    decode_batch,
    process_decoded,
    retry_until_done,
)

log = logging.getLogger(__name__)


@dataclass
class Pending:
    """A tick's events and what they decoded to; the batcher holds these until a flush."""

    events: list[Any]
    batch: DecodedBatch


@dataclass
class ClicksFlow:
    """What the agent holds unacked (its buffer, the batch being written) and how to flush."""

    policy: FlushPolicy
    config: PipelineConfig
    backoff: Backoff
    metrics: AggregatorMetrics
    frontier: Frontier
    window_view: WindowView
    dead_letters: DeadLetters
    stores: Callable[[], Any]  # async: the opened Stores (PostgreSQL + ClickHouse adapters)
    topic: str
    to_record: Callable[[Any], SourceRecord]  # a stream event -> the pipeline's record
    live: LiveActivity | None = None  # the live per-link counts (best-effort), None: off
    batcher: Batcher[Pending] = field(init=False)
    writing: list[Pending] = field(default_factory=list)
    lags: LagTracker = field(default_factory=LagTracker)
    clicks_per_record: float = 1.0  # moving average: turns the lag in records into clicks
    # Of the group's `clicks` partitions, the share this worker owns (refreshed with the lag):
    # the light-traffic flush interval is the group's, spread over its workers (domain/batching).
    partition_share: float = 1.0
    partitions_total: int | None = None  # of the `clicks` topic; None: not counted yet

    def __post_init__(self) -> None:
        self.batcher = Batcher(self.policy, time.monotonic)
        # When the previous tick was handed over: this tick's records arrived after it.
        self.tick_began = time.monotonic()
        self.live_handoff = None if self.live is None else LiveHandoff(self.live)
        self._flushing = asyncio.Lock()  # the agent's flush and the idle flush, one at a time

    def held_min(self) -> dict[int, int]:
        """The lowest offset per partition held unacked (buffered or being written)."""
        lowest: dict[int, int] = {}
        for pending in [*self.batcher.pending(), *self.writing]:
            for event in pending.events:
                p, o = event.message.partition, event.message.offset
                if o < lowest.get(p, o + 1):
                    lowest[p] = o
        return lowest

    def take(self, events: list[Any]) -> None:
        """A tick from the stream: decode it now (pure), buffer it weighted by its clicks."""
        for event in events:
            self.lags.seen(event.message.partition, event.message.offset)
        batch = decode_batch([self.to_record(e) for e in events], config=self.config, now=datetime.now(UTC))
        clicks = batch.clicks
        if events:
            self.clicks_per_record = 0.9 * self.clicks_per_record + 0.1 * (clicks / len(events))
        if self.live_handoff is not None:
            self.live_handoff.tick(batch.good)
        began, self.tick_began = self.tick_began, time.monotonic()
        self.batcher.add([Pending(events=events, batch=batch)], weight=max(clicks, len(events)), arrived_since=began)

    def click_lag(self, record_lag: int) -> int:
        return round(record_lag * self.clicks_per_record)

    async def flush_if_due(self, stream: Any, lag: int, *, more_waiting: bool = False) -> None:
        async with self._flushing:
            if self.batcher.due(lag, more_waiting=more_waiting, share=self.partition_share):
                await self.flush(stream)

    async def flush_when_idle(self, stream: Any, refresh_lag: Callable[[], int], every_s: float) -> None:
        """Run beside the agent: the stream hands over a tick only when records arrived, so the
        last clicks before a pause would wait for the next record; this flushes them once due."""
        while True:
            await asyncio.sleep(every_s)
            if len(self.batcher):
                try:
                    await self.flush_if_due(stream, self.click_lag(refresh_lag()))
                except asyncio.CancelledError:
                    raise
                except Exception:  # the agent re-raises it at its next tick (see aggregate_clicks)
                    log.exception("idle flush failed")
                    raise

    async def flush(self, stream: Any) -> None:
        self.writing = self.batcher.drain()
        good: list[Decoded] = [d for p in self.writing for d in p.batch.good]
        poison = [m for p in self.writing for m in p.batch.poison]
        rt = await retry_until_done(self.stores, what="open stores", backoff=self.backoff)
        outcome = await process_decoded(
            DecodedBatch(good=good, poison=poison),
            events=rt.events,
            ledger=rt.ledger,
            dead_letters=self.dead_letters,
            backoff=self.backoff,
            clickhouse_attempts=self.config.clickhouse_attempts,
        )
        try:
            self.window_view.add(outcome.new)
        except Exception:  # the window is a live view; the batch is durable either way
            log.exception("window table update failed")
        self.record(outcome)
        events = [e for p in self.writing for e in p.events]
        for event in events:
            self.frontier.processed(event.message.partition, event.message.offset)
        # Our own progress record, after the data; see domain/gaps.py.
        await retry_until_done(
            lambda: rt.frontier.save(self.topic, dict(self.frontier.next)), what="frontier save", backoff=self.backoff
        )
        for event in events:  # only now: the batch is durable in both sinks
            event.allow_ack()
            await stream.ack(event)
        self.writing = []

    def record(self, outcome: BatchOutcome) -> None:
        m = self.metrics
        m.batch_size.observe(outcome.received)
        m.records.inc(outcome.records)
        m.processed.inc(outcome.received)
        m.counted.inc(outcome.counted)
        m.deduplicated.inc(outcome.duplicates)
        m.dead_lettered.inc(outcome.dead_lettered)
