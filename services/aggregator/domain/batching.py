"""When to flush a batch: the dynamic flush rule, driven by consumer lag. Pure.

Rule (stated once, tested in tests/unit/aggregator/test_batching.py):
- lag <= lag_low (light traffic): flush when the oldest buffered event is `flush_min_s` old
  (default 0.2 s, never more than 1 s) or `batch_min` (500) events are buffered -- freshness first.
- lag >= lag_high (a backlog): flush at `flush_max_s` (default 5 s) or `batch_max` (50,000)
  events -- throughput first: fewer, bigger writes. ClickHouse merges fewer parts (the rollups'
  id-set states are costly to merge), PostgreSQL commits fewer transactions.
- in between, both the interval and the size grow linearly with the lag.

The light-traffic interval is the consumer group's, not each worker's: a worker that owns a
`share` of the partitions (1/3 with three workers) waits `flush_min_s / share` (at most
`flush_max_s`), so the group as a whole writes about one batch per `flush_min_s` however many
workers (hosts) share the traffic. A write costs ClickHouse and PostgreSQL a fixed price (parts on
every shard and replica, a transaction) whatever its size; with a per-worker interval, N workers
at the same total rate paid it N times (measured: docs/benchmarks/scale-out.md). The size rule is
per worker and unchanged: at a rate that fills `batch_min` sooner, a batch goes at once.
"""

from dataclasses import dataclass
from typing import Protocol, TypeVar


@dataclass(frozen=True, kw_only=True)
class FlushTarget:
    max_events: int
    max_wait_s: float


@dataclass(frozen=True, kw_only=True)
class FlushPolicy:
    batch_min: int
    batch_max: int
    flush_min_s: float
    flush_max_s: float
    lag_low: int
    lag_high: int

    def light_interval_s(self, share: float = 1.0) -> float:
        """The light-traffic flush interval of a worker owning `share` (0-1] of the partitions."""
        if share <= 0:
            return self.flush_max_s  # owns nothing (between rebalances): nothing to hurry for
        return min(self.flush_min_s / min(share, 1.0), self.flush_max_s)

    def target(self, lag: int, *, share: float = 1.0) -> FlushTarget:
        """The batch size and flush interval to use while the consumer is `lag` events behind,
        for a worker owning `share` of the group's partitions."""
        if lag <= self.lag_low:
            behind = 0.0
        elif lag >= self.lag_high:
            behind = 1.0
        else:
            behind = (lag - self.lag_low) / (self.lag_high - self.lag_low)
        light = self.light_interval_s(share)
        return FlushTarget(
            max_events=round(self.batch_min + behind * (self.batch_max - self.batch_min)),
            max_wait_s=light + behind * (self.flush_max_s - light),
        )

    def should_flush(self, *, buffered: int, oldest_age_s: float, lag: int, share: float = 1.0) -> bool:
        if buffered == 0:
            return False
        target = self.target(lag, share=share)
        return buffered >= target.max_events or oldest_age_s >= target.max_wait_s


class HasEventId(Protocol):
    @property
    def event_id(self) -> str: ...


RowT = TypeVar("RowT", bound=HasEventId)


def first_of_each_id(rows: list[RowT]) -> list[RowT]:
    """Drop repeats of an event id inside one batch (the sinks drop repeats across batches)."""
    seen: set[str] = set()
    unique: list[RowT] = []
    for row in rows:
        if row.event_id not in seen:
            seen.add(row.event_id)
            unique.append(row)
    return unique
