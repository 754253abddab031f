"""Our own record of progress per partition, so no click depends on faust's commit. Pure.

The *frontier* of a partition is the lowest offset not yet durably processed: everything below
it is in the sinks. It is stored in PostgreSQL after each batch (after the data), loaded when a
worker takes a partition, and advanced only over contiguous processed offsets. faust-streaming
can skip records in a rebalance race and even commit past them (issues #216, #221, #312, #527);
a skipped record leaves the frontier behind while later offsets get processed. When that lasts
`stuck_after_s` and the record at the frontier is not in the worker's hands (pending or being
written), the partition is sought back to the frontier and re-read; the sinks drop repeats.

After a seek the partition is left alone for `reseek_after_s`: the re-read queues behind what
faust had already buffered, and judging it too early would seek again and again. The clicks
topic is a plain delete-policy topic written without transactions, so its offsets are
contiguous; the only offsets that can never arrive are those below the log start (retention),
and `floor` moves the frontier up to the log start.
"""

from dataclasses import dataclass, field


@dataclass
class Frontier:
    stuck_after_s: float
    reseek_after_s: float = 60.0
    next: dict[int, int] = field(default_factory=dict)
    done: dict[int, set[int]] = field(default_factory=dict)
    _since: dict[int, tuple[int, float]] = field(default_factory=dict)
    _sought: dict[int, tuple[int, float]] = field(default_factory=dict)

    def known(self, partition: int) -> bool:
        return partition in self.next

    def start(self, partition: int, offset: int) -> None:
        """Where processing of `partition` must resume (loaded from the store). Never backwards:
        another worker may have moved the stored frontier on since it was loaded."""
        self.next[partition] = max(offset, self.next.get(partition, offset))
        self._advance(partition)

    def processed(self, partition: int, offset: int) -> None:
        """`offset` is durable in the sinks."""
        if offset >= self.next.get(partition, -1):
            self.done.setdefault(partition, set()).add(offset)
            self._advance(partition)

    def keep_only(self, partitions: set[int]) -> None:
        """Forget partitions this worker no longer owns (the next owner loads the stored frontier)."""
        for mapping in (self.next, self.done, self._since, self._sought):
            for p in [p for p in mapping if p not in partitions]:
                del mapping[p]

    def floor(self, partition: int, log_start: int) -> None:
        """Records below the log start are gone (retention): nothing to wait for there."""
        if self.next.get(partition, log_start) < log_start:
            self.start(partition, log_start)

    def stuck(self, held_min: dict[int, int], now: float) -> list[tuple[int, int]]:
        """(partition, offset) pairs to seek back to; each is then left alone for a while."""
        out = []
        for partition, frontier in self.next.items():
            ahead = self.done.get(partition)
            held = held_min.get(partition)
            sought = self._sought.get(partition)
            if sought is not None and sought[0] == frontier and now - sought[1] < self.reseek_after_s:
                continue  # the re-read is on its way
            if not ahead or (held is not None and held <= frontier):
                self._since.pop(partition, None)
                continue
            first = self._since.get(partition)
            if first is None or first[0] != frontier:
                self._since[partition] = (frontier, now)
                continue
            if now - first[1] < self.stuck_after_s:
                continue
            del self._since[partition]
            self._sought[partition] = (frontier, now)
            out.append((partition, frontier))
        return out

    def _advance(self, partition: int) -> None:
        done = self.done.get(partition)
        if done is None or partition not in self.next:
            return
        nxt = self.next[partition]
        while nxt in done:
            done.discard(nxt)
            nxt += 1
        self.next[partition] = nxt
        for stale in [o for o in done if o < nxt]:
            done.discard(stale)
