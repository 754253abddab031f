"""Accumulate the stream's small ticks into one batch and decide when to flush it.

The faust agent reads ticks (`noack_take(tick_max, within=flush_min_s)`: nothing is acked
until we say so) and hands each to `add`. `due` applies the flush rule of
domain/batching.py, plus one more: when the consumer has caught up (lag 0) the batch is
flushed at once, because waiting cannot make it bigger -- this is what keeps a lone click's
flush delay at `flush_min_s` (0.2 s), while a backlog gets batches of up to `batch_max`
collected for up to `flush_max_s` (1 s).
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

    def __len__(self) -> int:
        return len(self._pending)

    @property
    def weight(self) -> int:
        return self._weight

    def add(self, items: Sequence[E], weight: int | None = None) -> None:
        if items and not self._pending:
            self._oldest_at = self._clock()
        self._pending.extend(items)
        self._weight += len(items) if weight is None else weight

    def oldest_age(self) -> float:
        return self._clock() - self._oldest_at if self._pending else 0.0

    def due(self, lag: int) -> bool:
        if not self._pending:
            return False
        if lag == 0:
            return True
        return self._policy.should_flush(buffered=self._weight, oldest_age_s=self.oldest_age(), lag=lag)

    def pending(self) -> list[E]:
        """What is buffered now (a copy)."""
        return list(self._pending)

    def drain(self) -> list[E]:
        batch, self._pending, self._weight = self._pending, [], 0
        return batch
