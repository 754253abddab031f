"""Our own record of progress per partition, so no click depends on faust's commit. Pure.

The *frontier* of a partition is the lowest offset not yet durably processed: everything below
it is in the sinks. It is stored in PostgreSQL after each batch (after the data), loaded when a
worker takes a partition, and advanced only over contiguous processed offsets. faust-streaming
can skip records in a rebalance race and even commit past them (issues #216, #221, #312, #527);
a skipped record leaves the frontier behind while later offsets get processed. When that lasts
`stuck_after_s` and the record at the frontier is not in the worker's hands (pending or being
written), the partition is sought back to the frontier and re-read; the sinks drop repeats.

The clicks topic is a plain delete-policy topic written without transactions, so its offsets
are contiguous. An offset that still never arrives after `max_attempts` seeks (a transaction
marker, or records removed by retention) is stepped over, with a warning.
"""

from dataclasses import dataclass, field


@dataclass
class Frontier:
    stuck_after_s: float
    max_attempts: int = 3
    next: dict[int, int] = field(default_factory=dict)
    done: dict[int, set[int]] = field(default_factory=dict)
    _since: dict[int, tuple[int, float]] = field(default_factory=dict)
    _attempts: dict[int, tuple[int, int]] = field(default_factory=dict)

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
        for mapping in (self.next, self.done, self._since, self._attempts):
            for p in [p for p in mapping if p not in partitions]:
                del mapping[p]

    def stuck(self, held_min: dict[int, int], now: float) -> list[tuple[int, int]]:
        """(partition, offset) pairs to seek back to."""
        out = []
        for partition, frontier in self.next.items():
            ahead = self.done.get(partition)
            held = held_min.get(partition)
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
            seen_frontier, attempts = self._attempts.get(partition, (frontier, 0))
            attempts = attempts + 1 if seen_frontier == frontier else 1
            if attempts > self.max_attempts:  # no record at that offset: step over it
                self.next[partition] = min(ahead)
                self._attempts.pop(partition, None)
                self._advance(partition)
                continue
            self._attempts[partition] = (frontier, attempts)
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
