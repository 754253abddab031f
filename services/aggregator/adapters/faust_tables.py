"""The live window table: tumbling one-minute windows of newly counted clicks per link.

A faust windowed table (changelog-backed, rocksdb or memory store) keyed by code, value
[clicks, bot_clicks]. It is fed after the sinks committed, with the counts PostgreSQL reported
as new (duplicates excluded), so it never counts a repeated event id. It is a fast per-worker
view (GET /links/{code}/window on the worker's web port); the exact, durable counts are the
sinks'. A crash between the sink commit and the table update can leave a window short.

Batches are written outside one event's context, so the changelog partition cannot come from
"the current event": `SourcePartitionedTable` takes it from the partition the code's clicks
arrived on, which keeps each window in the changelog partition its owner restores.
"""

import time
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import faust

from aggregator.ports import Decoded


class SourcePartitionedTable(faust.Table[Any, Any]):
    """A table whose changelog partition is the source partition of the key's code."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_partitions: dict[str, int] = {}

    def partition_for_key(self, key: Any) -> int | None:
        code = key[0] if isinstance(key, tuple | list) else key
        return self.key_partitions.get(code)


def zero_counts() -> list[int]:
    return [0, 0]


class FaustWindowView:
    """WindowView port on a windowed SourcePartitionedTable.

    Counts are merged in memory and written to the table (one changelog record per
    (code, window)) at most every `flush_every_s`: a busy worker would otherwise write a
    changelog record per code per batch, and a long changelog makes every restart slow (the
    table is recovered before the stream resumes). `recent` reads table + unwritten counts.
    """

    def __init__(
        self,
        windowed: Any,
        table: SourcePartitionedTable,
        *,
        window_s: int,
        flush_every_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._windowed = windowed
        self._table = table
        self._window_s = window_s
        self._flush_every_s = flush_every_s
        self._clock = clock
        self._last_flush = clock()
        self._pending: dict[tuple[str, int], list[int]] = {}

    def add(self, records: Sequence[Decoded]) -> None:
        """One pass over the new clicks: merge them into the pending (code, window) counts."""
        pending, key_partitions, window_s = self._pending, self._table.key_partitions, self._window_s
        for d in records:
            partition = d.source.partition
            for row in d.record.rows:
                at = row.occurred_at
                key = (row.code, at - at % window_s)
                counts = pending.get(key)
                if counts is None:
                    counts = pending[key] = [0, 0]
                    key_partitions[row.code] = partition
                counts[row.is_bot] += 1
        if self._clock() - self._last_flush >= self._flush_every_s:
            self.flush()

    async def timer_flush(self) -> None:
        """For a faust timer: bounds how long counts wait in memory when traffic stops."""
        self.flush()

    def flush(self) -> None:
        """Write the merged counts to the table (and so to its changelog)."""
        pending, self._pending = self._pending, {}
        self._last_flush = self._clock()
        for (code, ts), (clicks, bots) in pending.items():
            at = self._windowed.relative_to(float(ts))
            old_clicks, old_bots = at[code].value()
            at[code] = [old_clicks + clicks, old_bots + bots]

    def recent(self, code: str, *, now: datetime, minutes: int) -> list[dict[str, Any]]:
        """The last `minutes` windows for `code` that this worker holds (oldest first)."""
        start = self._bucket(now.timestamp())
        out: list[dict[str, Any]] = []
        for i in range(minutes - 1, -1, -1):
            ts = start - i * self._window_s
            clicks, bots = self._windowed.relative_to(float(ts))[code].value()
            extra = self._pending.get((code, ts), (0, 0))
            clicks, bots = clicks + extra[0], bots + extra[1]
            if clicks or bots:
                out.append(
                    {"minute": datetime.fromtimestamp(ts, now.tzinfo).isoformat(), "clicks": clicks, "bot_clicks": bots}
                )
        return out

    def _bucket(self, ts: float) -> int:
        return int(ts) // self._window_s * self._window_s
