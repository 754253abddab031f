"""The aggregator's ports: what the pipeline needs from the outside world.

Adapters implement them (adapters/postgres.py, adapters/clickhouse.py, adapters/kafka.py);
unit tests use in-memory fakes of these same ports.
"""

import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from contracts.deadletter import MessageDeadLettered

from aggregator.domain.click_records import ClickRecord, ClickRow
from aggregator.domain.windows import TotalsColumns


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
    # producer's W3C trace context travels here (one traceparent per traced click).
    headers: Sequence[tuple[str, bytes]] = ()


@dataclass(frozen=True, slots=True)
class Decoded:
    """A record that decoded, with where it came from."""

    source: SourceRecord
    record: ClickRecord


@dataclass(frozen=True, kw_only=True)
class Claimed:
    """What the ledger made of a batch: the records that were new (their clicks are now in the
    totals) and the sink-journal entry that obliges ClickHouse to receive them (None: nothing new)."""

    new: list[Decoded] = field(default_factory=list)
    sink_id: uuid.UUID | None = None
    at: float = field(default_factory=time.monotonic)  # when the claim committed


class EventStore(Protocol):
    """ClickHouse: raw events + rollups."""

    async def write(self, sink_id: uuid.UUID, rows: Sequence[ClickRow], *, fresh: bool = False) -> None:
        """Make the rows durable exactly once for `sink_id`: safe to call again after any failure
        (what an earlier attempt already wrote is found by its marker and not written twice).
        `fresh`: no attempt for this sink id was ever made (the looking-up can be skipped).
        The caller guarantees no other `write` of the same sink id runs at the same time."""
        ...


class Ledger(Protocol):
    """PostgreSQL: the record-id ledger, link totals and the sink journal."""

    async def claim(self, records: Sequence[Decoded], *, only_codes: Sequence[str] | None = None) -> Claimed:
        """In one transaction: add the ids of `records` to the ledger, add the clicks of the ones
        that were new to the totals, and journal them for ClickHouse. Records must be unique.
        `only_codes`: the records' rows were narrowed to these codes (a rebuild); the journal
        says so, so a recovery narrows the re-read records the same way."""
        ...

    async def finish(self, sink_id: uuid.UUID, write: Callable[[], Awaitable[None]]) -> None:
        """Hold the journal entry's lock, run `write`, remove the entry, commit. If another
        process holds the entry, wait until it is gone. Raises if `write` raises (entry kept)."""
        ...


class DeadLetters(Protocol):
    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        """Durably publish (returns after the broker acknowledged every record)."""
        ...


class WindowView(Protocol):
    """The live per-link one-minute windows (a faust table in the worker)."""

    def add(self, records: Sequence[Decoded]) -> None:
        """Add the clicks of newly counted records (each record's codes belong to its source
        partition). Must not block and must not raise for valid input."""
        ...


class LiveActivity(Protocol):
    """The live per-link counts for analytics' streams (topic `link-activity`): best-effort."""

    def counted(self, totals: TotalsColumns) -> None:
        """What a tick of the stream brought, per link (service_layer/live_handoff.py). Hands the
        counts off and returns at once: never blocks, never raises, may drop them (a live view)."""
        ...
