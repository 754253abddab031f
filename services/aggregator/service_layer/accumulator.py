"""Accumulate the stream's small ticks into one batch and decide when to flush it.

The faust agent reads ticks (`noack_take(tick_max, within=tick_s)`, 0.25 s: nothing is acked
until we say so) and hands each to `add`. `due` applies the flush rule of domain/batching.py: a
lone click is flushed once the group's `flush_min_s` (1 s) over this worker's share of the
partitions old (3 s for one of three workers), counted from the start of its tick, while a
backlog gets batches of up to `batch_max` collected for up to `flush_max_s` (5 s). Caught up
(lag 0) is no reason to flush sooner: every flush costs ClickHouse parts whatever its size, and
the live stats pages get each tick's clicks without waiting for the flush (live_handoff.py).
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from aggregator.domain.batching import FlushPolicy

E = TypeVar("E")


@dataclass
class LagTracker:
    """Per-partition lag = high watermark - (last offset handed to us + 1)."""

    last_offset: dict[int, int] = field(default_factory=dict)
    highwater: dict[int, int] = field(default_factory=dict)

    def seen(self, partition: int, offset: int) -> None:
        if offset > self.last_offset.get(partition, -1):
            self.last_offset[partition] = offset

    def set_highwater(self, partition: int, highwater: int | None) -> None:
        """The consumer's high watermark; None (not known yet, e.g. after Kafka restarted and
        before the next fetch answered) keeps the last one known."""
        if highwater is not None:
            self.highwater[partition] = highwater

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns (after a rebalance)."""
        for mapping in (self.last_offset, self.highwater):
            for p in [p for p in mapping if p not in partitions]:
                del mapping[p]

    def lag(self, partition: int) -> int:
        if partition not in self.last_offset or partition not in self.highwater:
            return 0
        return max(self.highwater[partition] - (self.last_offset[partition] + 1), 0)

    def total(self) -> int:
        return sum(self.lag(p) for p in self.highwater)


class Batcher(Generic[E]):
    """Buffered items and their weight (clicks: a batch record weighs its number of clicks)."""

    def __init__(self, policy: FlushPolicy, clock: Callable[[], float]) -> None:
        self._policy = policy
        self._clock = clock
        self._pending: list[E] = []
        self._weight = 0
        self._oldest_at = 0.0
        self._first_added_at = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def weight(self) -> int:
        return self._weight

    def add(self, items: Sequence[E], weight: int | None = None, *, arrived_since: float | None = None) -> None:
        """`arrived_since`: when the items began to arrive (the start of the stream's tick that
        holds them), so their age counts from the oldest possible arrival, not from the end of
        the tick: a tick's clicks are then flushed at the end of that tick, not of the next."""
        if items and not self._pending:
            now = self._clock()
            self._first_added_at = now
            self._oldest_at = now if arrived_since is None else min(arrived_since, now)
        self._pending.extend(items)
        self._weight += len(items) if weight is None else weight

    def oldest_age(self) -> float:
        return self._clock() - self._oldest_at if self._pending else 0.0

    def due(self, lag: int, *, more_waiting: bool = False, share: float = 1.0) -> bool:
        """`more_waiting`: the stream holds more records right now (the last tick was full). Then
        the batch's age counts from when this batcher began collecting it, not from the records'
        arrival: after a long flush (a sink retrying) every record is old, and flushing one tick
        at a time would never catch up. `share`: of the group's partitions, this worker's."""
        if not self._pending:
            return False
        age = self._clock() - self._first_added_at if more_waiting else self.oldest_age()
        return self._policy.should_flush(buffered=self._weight, oldest_age_s=age, lag=lag, share=share)

    def pending(self) -> list[E]:
        """What is buffered now (a copy)."""
        return list(self._pending)

    def drain(self) -> list[E]:
        batch, self._pending, self._weight = self._pending, [], 0
        return batch
