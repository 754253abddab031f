"""`python -m aggregator replay-clicks --from <ISO time> [--to ...] [--code C ...] [--rebuild]`:
topic-level replay of `clicks`.

Reads the topic range itself with a group-less consumer (offsets_for_times -> high watermark
at start) and pushes every batch through the SAME pipeline and sinks as the workers. It
commits nothing and re-publishes nothing, so it is safe while the workers run.

- Plain replay is idempotent: records already in the ledger are not counted again, so a replay
  over counted data changes nothing; into sinks emptied *whole* (ledger included) it rebuilds
  them exactly. Poison records are skipped and counted (the workers dead-lettered them already).
- `--rebuild --code C ...`: the sinks of some codes were emptied (their totals and ClickHouse
  rows), while the ledger still holds the records: a record holds clicks of many codes, so its
  id cannot be forgotten for one code. The rebuild counts the listed codes' clicks of every
  record in the range under derived record ids (one per record and run), through the same
  claim, journal and ClickHouse write. It first waits until the workers have processed the
  whole range, then refuses unless the listed codes' sinks are empty: so no click is counted
  both by a worker and by the rebuild, and a second rebuild cannot double the first.
A start older than the dedup horizon is refused: ids that old may have left the ledger.
"""

import asyncio
import dataclasses
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from aiokafka import AIOKafkaConsumer
from contracts.deadletter import MessageDeadLettered
from platformkit.kafka import topic_partitions

from aggregator.adapters.kafka import ReplayProgress, plan_range, read_range
from aggregator.bootstrap import Stores, open_stores, pipeline_config
from aggregator.domain.click_records import ClickRecord
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import Decoded
from aggregator.service_layer.pipeline import Backoff, DecodedBatch, decode_batch, process_decoded
from aggregator.settings import AggregatorSettings

# Margin so an event at the very start of the range is still inside the ledger when sunk.
HORIZON_MARGIN = timedelta(minutes=10)
# How long a rebuild waits for the workers to process the range before it gives up.
WORKERS_CATCH_UP_S = 300.0


class SkipPoison:
    """DeadLetters for replays: count poison instead of dead-lettering it a second time."""

    def __init__(self) -> None:
        self.skipped = 0

    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        self.skipped += len(records)


def _line(progress: ReplayProgress, *, counted: int, duplicates: int, skipped: int, started: float) -> str:
    pct = 100.0 * progress.done / progress.total if progress.total else 100.0
    rate = progress.done / max(time.monotonic() - started, 1e-6)
    return (
        f"[replay] {progress.done}/{progress.total} records ({pct:5.1f}%) {rate:,.0f} rec/s "
        f"counted={counted} duplicates={duplicates} skipped={skipped}"
    )


def narrow(batch: DecodedBatch, codes: set[str], *, run: uuid.UUID | None) -> DecodedBatch:
    """Only the listed codes' clicks; under a rebuild (`run`), each record gets an id derived
    from its own and the run's, so the ledger deduplicates inside the run and never against
    what the workers counted."""
    if not codes:
        return batch
    good = []
    for d in batch.good:
        rows = [r for r in d.record.rows if r.code in codes]
        if not rows:
            continue
        record_id = d.record.record_id if run is None else str(uuid.uuid5(run, str(d.record.record_id)))
        good.append(
            Decoded(source=d.source, record=ClickRecord(record_id=record_id, rows=rows, newest=d.record.newest))
        )
    return DecodedBatch(good=good, poison=batch.poison)


async def _workers_passed(runtime: Stores, topic: str, end: dict[int, int], out: TextIO) -> bool:
    """Wait until every partition's processing frontier reached the end of the range."""
    deadline = time.monotonic() + WORKERS_CATCH_UP_S
    while True:
        frontier = await runtime.frontier.load(topic, list(end))
        behind = {p: e for p, e in end.items() if e > 0 and frontier.get(p, 0) < e}
        if not behind:
            return True
        if time.monotonic() > deadline:
            print(f"[replay] refused: the workers have not processed the range yet (behind: {behind})", file=out)
            return False
        await asyncio.sleep(1.0)


async def _sinks_empty(runtime: Stores, codes: set[str], out: TextIO) -> bool:
    async with runtime.pool.acquire() as conn:
        counted = await conn.fetch(
            "SELECT code, clicks + bot_clicks AS n FROM clicks.link_totals "
            "WHERE code = ANY($1) AND clicks + bot_clicks > 0",
            sorted(codes),
        )
    listed = ", ".join(f"'{c}'" for c in sorted(codes))
    in_clickhouse = int(
        (await runtime.clickhouse.execute(f"SELECT count() FROM click_events WHERE code IN ({listed})")).strip() or 0
    )
    if counted or in_clickhouse:
        print(
            f"[replay] refused: --rebuild needs the listed codes' sinks empty; PostgreSQL totals for "
            f"{sorted(r['code'] for r in counted)}, {in_clickhouse} ClickHouse rows",
            file=out,
        )
        return False
    return True


async def replay_clicks(
    settings: AggregatorSettings,
    *,
    start: datetime,
    end: datetime | None,
    codes: set[str],
    batch_size: int,
    rebuild: bool = False,
    out: TextIO = sys.stdout,
) -> int:
    horizon = timedelta(seconds=settings.ledger_retention_s)
    oldest = datetime.now(UTC) - horizon + HORIZON_MARGIN
    if start < oldest:
        print(
            f"[replay] refused: --from {start.isoformat()} is older than the dedup horizon "
            f"({oldest.isoformat()}); ids that old may be pruned from the ledger",
            file=out,
        )
        return 2
    if rebuild and not codes:
        print("[replay] refused: --rebuild needs the codes whose sinks were emptied (--code)", file=out)
        return 2
    config = pipeline_config(settings)
    config = dataclasses.replace(config, consumer=f"{settings.aggregator_app_id}-replay")
    backoff = Backoff(initial_s=config.retry_initial_s, max_s=config.retry_max_s)
    runtime = await open_stores(settings, AggregatorMetrics())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    poison = SkipPoison()
    counted = duplicates = 0
    run = uuid.uuid4() if rebuild else None
    try:
        partitions = await topic_partitions(settings.kafka_bootstrap_servers, settings.topic_clicks)
        tps, first, stop = await plan_range(
            consumer,
            settings.topic_clicks,
            partitions,
            from_ms=int(start.timestamp() * 1000),
            to_ms=int(end.timestamp() * 1000) if end else None,
        )
        print(
            f"[replay] {settings.topic_clicks}: from {start.isoformat()} "
            f"offsets {first} -> {stop}"
            + (f", codes {sorted(codes)}" if codes else "")
            + (" (rebuild)" if rebuild else ""),
            file=out,
        )
        if rebuild and not (
            await _workers_passed(runtime, settings.topic_clicks, stop, out) and await _sinks_empty(runtime, codes, out)
        ):
            return 3
        started = last_print = time.monotonic()
        progress = ReplayProgress(start=first, position=dict(first), end=stop)
        async for batch, progress in read_range(consumer, tps, first, stop, batch_size=batch_size):
            decoded = narrow(decode_batch(batch, config=config, now=datetime.now(UTC)), codes, run=run)
            if decoded.good or decoded.poison:
                outcome = await process_decoded(
                    decoded,
                    events=runtime.events,
                    ledger=runtime.ledger,
                    dead_letters=poison,
                    backoff=backoff,
                    only_codes=sorted(codes) if rebuild else None,
                )
                counted += outcome.counted
                duplicates += outcome.duplicates
            if time.monotonic() - last_print >= 1.0:
                print(
                    _line(progress, counted=counted, duplicates=duplicates, skipped=poison.skipped, started=started),
                    file=out,
                    flush=True,
                )
                last_print = time.monotonic()
        print(
            _line(progress, counted=counted, duplicates=duplicates, skipped=poison.skipped, started=started), file=out
        )
        print(
            f"[replay] done: {counted} newly counted, {duplicates} already counted, {poison.skipped} poison skipped",
            file=out,
            flush=True,
        )
        return 0
    finally:
        await consumer.stop()
        await runtime.close()
