"""When to flush a batch: the dynamic flush rule, driven by consumer lag. Pure.

Rule (stated once, tested in tests/unit/aggregator/test_batching.py):
- lag <= lag_low (light traffic): flush when the oldest buffered event is `flush_min_s` old
  (default 0.2 s, never more than 1 s) or `batch_min` (500) events are buffered -- freshness first.
- lag >= lag_high (a backlog): flush at `flush_max_s` (default 5 s) or `batch_max` (50,000)
  events -- throughput first: fewer, bigger writes. ClickHouse merges fewer parts (the rollups'
  id-set states are costly to merge), PostgreSQL commits fewer transactions.
- in between, both the interval and the size grow linearly with the lag.
The caller adds one more rule (service_layer/accumulator.py): when caught up (lag 0), flush at once.
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

    def target(self, lag: int) -> FlushTarget:
        """The batch size and flush interval to use while the consumer is `lag` events behind."""
        if lag <= self.lag_low:
            share = 0.0
        elif lag >= self.lag_high:
            share = 1.0
        else:
            share = (lag - self.lag_low) / (self.lag_high - self.lag_low)
        return FlushTarget(
            max_events=round(self.batch_min + share * (self.batch_max - self.batch_min)),
            max_wait_s=self.flush_min_s + share * (self.flush_max_s - self.flush_min_s),
        )

    def should_flush(self, *, buffered: int, oldest_age_s: float, lag: int) -> bool:
        if buffered == 0:
            return False
        target = self.target(lag)
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
