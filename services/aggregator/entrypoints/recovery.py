"""Finishes ClickHouse writes that a stopped process left half-done.

A batch is claimed in PostgreSQL (counted, journalled) before its clicks go to ClickHouse; the
journal entry is removed in the transaction that holds its lock while the inserts run. An entry
older than RECOVERY_AGE_S that nobody holds belongs to a process that stopped in between (killed,
or its database connection lost): every RECOVERY_CHECK_S each worker takes such entries (SKIP
LOCKED: one taker each), reads their records back from Kafka, and writes them with the markers
checked, so what the earlier attempt already wrote is not written again.
"""

import logging
from datetime import UTC, datetime, timedelta

import faust

from aggregator.adapters.kafka import KafkaRecordFetcher, RecordsMissing
from aggregator.adapters.postgres import PostgresLedger
from aggregator.bootstrap import LazyStores
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import EventStore
from aggregator.service_layer.pipeline import RECOVERY_AGE_S, PipelineConfig, decode_batch

log = logging.getLogger(__name__)
ENTRIES_PER_ROUND = 20


async def recover_pending(
    *,
    ledger: PostgresLedger,
    events: EventStore,
    fetcher: KafkaRecordFetcher,
    config: PipelineConfig,
    older_than_s: float = RECOVERY_AGE_S,
) -> int:
    """Finish the journal entries nobody holds; returns how many were finished."""
    finished = 0
    async with ledger.pending(older_than_s=older_than_s, limit=ENTRIES_PER_ROUND) as held:
        for entry in held.entries:
            try:
                sources = await fetcher.fetch(entry.topic, entry.offsets)
            except RecordsMissing as exc:
                log.error(
                    "sink journal %s cannot be finished: %s (its clicks are counted in PostgreSQL, not in ClickHouse)",
                    entry.sink_id,
                    exc,
                )
                continue
            # These records were judged valid when they were claimed: only decoding is redone.
            lenient = PipelineConfig(
                consumer=config.consumer, horizon=timedelta(days=3650), max_future_skew=timedelta(days=3650)
            )
            decoded = decode_batch(sources, config=lenient, now=datetime.now(UTC))
            wanted = None if entry.codes is None else set(entry.codes)
            rows = [row for d in decoded.good for row in d.record.rows if wanted is None or row.code in wanted]
            await events.write(entry.sink_id, rows)
            await held.done(entry.sink_id)
            finished += 1
            log.warning(
                "sink journal %s: finished a ClickHouse write left half-done (%d clicks)", entry.sink_id, len(rows)
            )
    return finished


def register(
    app: faust.App,
    *,
    runtime: LazyStores,
    fetcher: KafkaRecordFetcher,
    config: PipelineConfig,
    metrics: AggregatorMetrics,
    interval_s: float,
) -> None:
    async def recover() -> None:
        try:
            rt = await runtime.get()
            metrics.recovered.inc(
                await recover_pending(ledger=rt.ledger, events=rt.events, fetcher=fetcher, config=config)
            )
        except Exception as exc:  # a store or Kafka briefly away: next round
            log.warning("sink recovery round failed: %r", exc)

    app.timer(interval_s)(recover)
