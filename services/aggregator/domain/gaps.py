"""Detect records the consumer skipped: a partition whose committed offset stays behind events
we already acked, while the record at the committed offset is not in our hands. Pure.

Why: in a burst of rebalances faust can drop records it had fetched for the old generation
(neither delivered to the agent nor acked). Their offsets then block the commit forever (faust
commits only contiguous acked offsets) and the clicks stay uncounted until a restart. Records
of a partition reach the agent in order, so if we acked an offset >= the committed one, the
record at the committed offset was either acked (then the commit moves within a second), is
held by us (pending or being written), or was dropped. `stuck_after_s` rules out the first.
"""

from dataclasses import dataclass, field


@dataclass
class GapWatch:
    stuck_after_s: float
    acked_max: dict[int, int] = field(default_factory=dict)
    _since: dict[int, tuple[int, float]] = field(default_factory=dict)

    def acked(self, partition: int, offset: int) -> None:
        if offset > self.acked_max.get(partition, -1):
            self.acked_max[partition] = offset

    def forget(self, partitions: set[int]) -> None:
        """Keep only partitions this worker still owns."""
        for mapping in (self.acked_max, self._since):
            for p in [p for p in mapping if p not in partitions]:
                del mapping[p]

    def stuck(self, committed: dict[int, int], held_min: dict[int, int], now: float) -> list[int]:
        """Partitions to seek back to their committed offset."""
        out = []
        for partition, offset in committed.items():
            held = held_min.get(partition)
            suspicious = offset <= self.acked_max.get(partition, -1) and (held is None or held > offset)
            if not suspicious:
                self._since.pop(partition, None)
                continue
            first = self._since.get(partition)
            if first is None or first[0] != offset:
                self._since[partition] = (offset, now)
            elif now - first[1] >= self.stuck_after_s:
                out.append(partition)
                del self._since[partition]  # give the re-read time before judging again
        return out
