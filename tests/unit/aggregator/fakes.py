"""In-memory fakes of the aggregator's own ports (EventStore, Ledger, DeadLetters)."""

from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime

from aggregator.domain.clicks import ClickRow
from aggregator.domain.windows import merge_counts
from aggregator.ports import LedgerResult, SourceRecord
from contracts.deadletter import MessageDeadLettered


class Flaky:
    """Fails the next `failures` calls with ConnectionError."""

    def __init__(self, log: list[str], failures: int = 0) -> None:
        self.log = log
        self.failures = failures

    def _maybe_fail(self, name: str) -> None:
        self.log.append(name)
        if self.failures:
            self.failures -= 1
            raise ConnectionError(f"{name} down")


class FakeEvents(Flaky):
    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.rows: list[ClickRow] = []

    async def insert(self, rows: Sequence[ClickRow]) -> None:
        self._maybe_fail("clickhouse")
        self.rows.extend(rows)

    def exact(self, code: str) -> int:
        return len({r.event_id for r in self.rows if r.code == code})


class FakeLedger(Flaky):
    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.ids: set[str] = set()
        self.totals: Counter[str] = Counter()

    async def record(self, rows: Sequence[ClickRow]) -> LedgerResult:
        self._maybe_fail("postgres")
        new = [r for r in rows if r.event_id not in self.ids]
        self.ids.update(r.event_id for r in new)
        self.totals.update(r.code for r in new)
        counts = merge_counts([
            (r.code, datetime.fromtimestamp(r.occurred_at - r.occurred_at % 60, UTC), r.is_bot == 1, 1) for r in new
        ])
        return LedgerResult(inserted=len(new), duplicates=len(rows) - len(new), new_counts=counts)


class FakeDeadLetters(Flaky):
    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.records: list[MessageDeadLettered] = []

    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        self._maybe_fail("deadletter")
        self.records.extend(records)


def record(value: bytes | None, *, offset: int = 0, partition: int = 0, key: bytes | None = b"k") -> SourceRecord:
    return SourceRecord(topic="clicks", partition=partition, offset=offset, key=key, value=value, timestamp_ms=0)
