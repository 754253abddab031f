"""Self-repair for records faust skipped in a rebalance race (see domain/gaps.py): every few
seconds, compare the group's committed offsets with what this worker acked and holds; a
partition whose head was dropped is sought back to its committed offset and re-read. The
re-read changes no count (idempotent sinks); without it those clicks would wait for a restart."""

import logging
import time
from collections.abc import Callable

import faust

from aggregator.adapters.kafka import GroupOffsets
from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.domain.gaps import GapWatch

log = logging.getLogger(__name__)


def register(
    app: faust.App,
    *,
    topic: str,
    gaps: GapWatch,
    offsets: GroupOffsets,
    held_min: Callable[[], dict[int, int]],
    metrics: AggregatorMetrics,
    interval_s: float,
) -> None:
    async def repair_gaps() -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        gaps.forget(owned)
        if not owned:
            return
        try:
            committed = await offsets.committed(topic)
        except Exception as exc:  # Kafka briefly away: judge on the next round
            log.warning("gap check: committed offsets unavailable: %r", exc)
            return
        mine = {p: o for p, o in committed.items() if p in owned}
        for partition in gaps.stuck(mine, held_min(), time.monotonic()):
            log.warning("partition %s: commit stuck at %s behind acked %s; seeking back to re-read",
                        partition, mine[partition], gaps.acked_max.get(partition))
            metrics.gap_seeks.inc()
            await app.consumer.seek(faust.types.TP(topic, partition), mine[partition])

    app.timer(interval_s)(repair_gaps)
