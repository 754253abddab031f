"""Keeps every owned partition's processing frontier (domain/gaps.py) loaded, saved and honoured.

- A partition without a known frontier gets the stored one (clicks.consumer_frontier); never
  stored before: the group's committed offset (Kafka admin API), else the log start.
- Every few seconds: a partition whose frontier is stuck behind processed offsets while its
  head record is not in the worker's hands is sought back to the frontier and re-read (the
  sinks drop repeats). This is what keeps a click counted when faust skips it in a rebalance
  race, or commits past it.
"""

import logging
import time
from collections.abc import Callable

import faust

from aggregator.adapters.kafka import GroupOffsets
from aggregator.bootstrap import LazyStores
from aggregator.domain.gaps import Frontier
from aggregator.metrics import AggregatorMetrics

log = logging.getLogger(__name__)


def register(
    app: faust.App,
    *,
    topic: str,
    frontier: Frontier,
    runtime: LazyStores,
    offsets: GroupOffsets,
    held_min: Callable[[], dict[int, int]],
    metrics: AggregatorMetrics,
    interval_s: float,
) -> None:
    async def load_missing(owned: set[int]) -> None:
        missing = sorted(p for p in owned if not frontier.known(p))
        if not missing:
            return
        rt = await runtime.get()
        stored = await rt.frontier.load(topic, missing)
        unknown = [p for p in missing if p not in stored]
        if unknown:
            committed = await offsets.committed(topic)
            earliest = await app.consumer.earliest_offsets(*(faust.types.TP(topic, p) for p in unknown))
            for p in unknown:
                stored[p] = committed.get(p, earliest.get(faust.types.TP(topic, p), 0))
        for p, offset in stored.items():
            frontier.start(p, offset)
            log.info("partition %s: processing frontier %s", p, offset)

    async def repair_gaps() -> None:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == topic}
        frontier.keep_only(owned)
        if not owned:
            return
        try:
            await load_missing(owned)
        except Exception as exc:  # a store or Kafka briefly away: next round
            log.warning("frontier: could not load: %r", exc)
            return
        stuck = frontier.stuck(held_min(), time.monotonic())
        if stuck:  # the previous owner may have finished those records meanwhile; or retention
            try:
                rt = await runtime.get()
                for p, stored in (await rt.frontier.load(topic, [p for p, _ in stuck])).items():
                    frontier.start(p, stored)
                tps = [faust.types.TP(topic, p) for p, _ in stuck]
                for tp, log_start in (await app.consumer.earliest_offsets(*tps)).items():
                    frontier.floor(tp.partition, log_start)
            except Exception as exc:  # as above: a timer that raises crashes the worker (seen: host cut off)
                log.warning("frontier: could not re-read the stuck partitions' frontier: %r", exc)
                return
        for partition, offset in stuck:
            if frontier.next.get(partition, offset) > offset:
                continue
            log.warning(
                "partition %s: records from offset %s were skipped; seeking back to re-read them", partition, offset
            )
            metrics.gap_seeks.inc()
            await app.consumer.seek(faust.types.TP(topic, partition), offset)

    app.timer(interval_s)(repair_gaps)
