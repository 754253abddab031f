"""The aggregator's ports: what the pipeline needs from the outside world.

Adapters implement them (adapters/postgres.py, adapters/clickhouse.py, adapters/kafka.py);
unit tests use in-memory fakes of these same ports.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.deadletter import MessageDeadLettered

from aggregator.domain.clicks import ClickRow
from aggregator.domain.windows import MinuteCount


@dataclass(frozen=True, kw_only=True)
class SourceRecord:
    """One record read from the clicks topic, whoever read it (faust worker or replay tool)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp_ms: int
    # Kafka headers as the client gave them (not copied: read only when tracing is on); the
    # producer's W3C trace context travels here (traceparent).
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True, kw_only=True)
class LedgerResult:
    """What the PostgreSQL ledger made of a batch: only new event ids are counted."""

    inserted: int
    duplicates: int
    new_counts: list[MinuteCount] = field(default_factory=list)


class EventStore(Protocol):
    """ClickHouse: raw events + rollups. Idempotent: a repeated event id never inflates counts."""

    async def insert(self, rows: Sequence[ClickRow]) -> None:
        """Durably store the rows (returns after the server acknowledged the insert)."""
        ...


class Ledger(Protocol):
    """PostgreSQL: event-id ledger + link totals, one transaction per batch."""

    async def record(self, rows: Sequence[ClickRow]) -> LedgerResult:
        """Add the rows whose event id is new to the totals, atomically; report what was new."""
        ...


class DeadLetters(Protocol):
    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        """Durably publish (returns after the broker acknowledged every record)."""
        ...


class WindowView(Protocol):
    """The live per-link one-minute windows (a faust table in the worker)."""

    def add(self, counts: Sequence[MinuteCount], partitions: dict[str, int]) -> None:
        """Add newly counted clicks; `partitions` maps each code to its source partition.

        Must not block and must not raise for valid input.
        """
        ...
