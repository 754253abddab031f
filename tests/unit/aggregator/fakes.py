"""In-memory fakes of the aggregator's own ports (EventStore, Ledger, DeadLetters)."""

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence

from aggregator.domain.click_records import ClickRow
from aggregator.ports import Claimed, Decoded, SourceRecord
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
    """ClickHouse as the pipeline sees it: per sink id, written at most once (like the markers)."""

    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.rows: list[ClickRow] = []
        self.written: set[uuid.UUID] = set()
        self.fresh_calls = 0

    async def write(self, sink_id: uuid.UUID, rows: Sequence[ClickRow], *, fresh: bool = False) -> None:
        self.fresh_calls += fresh
        self._maybe_fail("clickhouse")
        if sink_id in self.written:
            return
        self.written.add(sink_id)
        self.rows.extend(rows)

    def count(self, code: str) -> int:
        return sum(1 for r in self.rows if r.code == code)


class FakeLedger(Flaky):
    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.ids: set[str] = set()
        self.totals: Counter[str] = Counter()
        self.journal: set[uuid.UUID] = set()

    async def claim(self, records: Sequence[Decoded], *, only_codes: Sequence[str] | None = None) -> Claimed:
        self._maybe_fail("postgres")
        new = [d for d in records if str(d.record.record_id) not in self.ids]
        self.ids.update(str(d.record.record_id) for d in new)
        self.totals.update(r.code for d in new for r in d.record.rows)
        sink_id = uuid.uuid4() if new else None
        if sink_id is not None:
            self.journal.add(sink_id)
        return Claimed(new=new, sink_id=sink_id)

    async def finish(self, sink_id: uuid.UUID, write: Callable[[], Awaitable[None]]) -> None:
        self.log.append("finish")
        if sink_id in self.journal:
            await write()
            self.journal.discard(sink_id)


class FakeDeadLetters(Flaky):
    def __init__(self, log: list[str], failures: int = 0) -> None:
        super().__init__(log, failures)
        self.records: list[MessageDeadLettered] = []

    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        self._maybe_fail("deadletter")
        self.records.extend(records)


def record(value: bytes | None, *, offset: int = 0, partition: int = 0, key: bytes | None = b"k") -> SourceRecord:
    return SourceRecord(topic="clicks", partition=partition, offset=offset, key=key, value=value, timestamp_ms=0)
