"""The live hand-off: each tick's clicks, per link, go to analytics' live streams as soon as the
stream hands the tick over (AGGREGATOR_TICK_S, 0.25 s), not at the flush, which waits up to
AGGREGATOR_FLUSH_MIN_S (1 s: the cadence that keeps ClickHouse's parts per click low).

Best-effort, like the LiveActivity adapter under it (adapters/live_activity.py), and before the
PostgreSQL claim, so the claim's exact dedup is not applied yet. What can repeat here: a record
this worker already handed off (a redirect's re-send of a batch: same record id, another offset;
a re-read after a fetch error) is skipped by its record id, remembered for the last `remember`
records; records that another worker handed off and did not ack before a rebalance moved their
partition here are handed off again (at most one flush of that partition, after a worker crash
or restart). The exact counts are the sinks' (/stats); a live page adds these to them.
"""

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from aggregator.domain.windows import code_totals
from aggregator.ports import Decoded, LiveActivity

log = logging.getLogger(__name__)


@dataclass
class RecentIds:
    """The ids of the last `size` to 2 x `size` records: two generations of sets, the older
    dropped whole when the newer fills (no per-id bookkeeping)."""

    size: int
    _current: set[uuid.UUID | str] = field(default_factory=set)
    _previous: set[uuid.UUID | str] = field(default_factory=set)

    def add(self, record_id: uuid.UUID | str) -> bool:
        """Remember the id; False when it was already remembered."""
        if record_id in self._current or record_id in self._previous:
            return False
        if len(self._current) >= self.size:
            self._previous, self._current = self._current, set()
        self._current.add(record_id)
        return True


class LiveHandoff:
    def __init__(self, live: LiveActivity, *, remember: int = 50_000) -> None:
        self._live = live
        self._recent = RecentIds(remember)

    def tick(self, records: Sequence[Decoded]) -> None:
        """Hand off the clicks of the tick's records not handed off before. Never raises: nothing
        of the batch depends on it."""
        try:
            rows = [row for d in records if self._recent.add(d.record.record_id) for row in d.record.rows]
            if rows:
                self._live.counted(code_totals(rows))
        except Exception:
            log.exception("live activity hand-off failed (ignored: a live view)")
