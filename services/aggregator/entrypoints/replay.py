"""`python -m aggregator replay-clicks --from <ISO time>`: topic-level replay of `clicks`.

Reads the topic range itself with a group-less consumer (offsets_for_times -> high watermark
at start) and pushes every batch through the SAME pipeline and sinks as the workers. It
commits nothing and re-publishes nothing, so it is safe while the workers run. Idempotent:
ids already in the ledger are not counted again; into emptied sinks it rebuilds the counts
exactly. Poison records are skipped and counted (the workers dead-lettered them already).
A start older than the dedup horizon is refused: ids that old may have left the ledger.
"""

import dataclasses
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import TextIO

from aiokafka import AIOKafkaConsumer
from contracts.deadletter import MessageDeadLettered
from platformkit.kafka import topic_partitions

from aggregator.adapters.kafka import ReplayProgress, plan_range, read_range
from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.bootstrap import open_runtime, pipeline_config
from aggregator.pipeline import process_batch
from aggregator.settings import AggregatorSettings

# Margin so an event at the very start of the range is still inside the ledger when sunk.
HORIZON_MARGIN = timedelta(minutes=10)


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


async def replay_clicks(
    settings: AggregatorSettings,
    *,
    start: datetime,
    end: datetime | None,
    codes: set[str],
    batch_size: int,
    out: TextIO = sys.stdout,
) -> int:
    horizon = timedelta(seconds=settings.ledger_retention_s)
    oldest = datetime.now(UTC) - horizon + HORIZON_MARGIN
    if start < oldest:
        print(f"[replay] refused: --from {start.isoformat()} is older than the dedup horizon "
              f"({oldest.isoformat()}); ids that old may be pruned from the ledger", file=out)
        return 2
    config = pipeline_config(settings)
    config = dataclasses.replace(config, consumer=f"{settings.aggregator_app_id}-replay")
    wanted = {c.encode() for c in codes}
    runtime = await open_runtime(settings, AggregatorMetrics())
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, group_id=None, enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    poison = SkipPoison()
    counted = duplicates = 0
    started = last_print = time.monotonic()
    try:
        partitions = await topic_partitions(settings.kafka_bootstrap_servers, settings.topic_clicks)
        tps, first, stop = await plan_range(
            consumer, settings.topic_clicks, partitions, from_ms=int(start.timestamp() * 1000),
            to_ms=int(end.timestamp() * 1000) if end else None,
        )
        print(f"[replay] {settings.topic_clicks}: from {start.isoformat()} "
              f"offsets {first} -> {stop}" + (f", codes {sorted(codes)}" if codes else ""), file=out)
        progress = ReplayProgress(start=first, position=dict(first), end=stop)
        async for batch, progress in read_range(consumer, tps, first, stop, batch_size=batch_size):
            records = [r for r in batch if not wanted or r.key in wanted]
            if records:
                outcome = await process_batch(
                    records, config=config, events=runtime.events, ledger=runtime.ledger,
                    dead_letters=poison,
                )
                counted += outcome.counted
                duplicates += outcome.duplicates
            if time.monotonic() - last_print >= 1.0:
                print(_line(progress, counted=counted, duplicates=duplicates, skipped=poison.skipped,
                            started=started), file=out, flush=True)
                last_print = time.monotonic()
        print(_line(progress, counted=counted, duplicates=duplicates, skipped=poison.skipped,
                    started=started), file=out)
        print(f"[replay] done: {counted} newly counted, {duplicates} already counted, "
              f"{poison.skipped} poison skipped", file=out, flush=True)
        return 0
    finally:
        await consumer.stop()
        await runtime.close()
