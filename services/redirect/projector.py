"""The links projector: keeps the Redis read model and this replica's L1 in step with `links`.

Per record: decode + validate (pure) -> upsert this replica's L1 (offset-guarded, so the
update/delete is obeyed here within milliseconds) -> apply to Redis with the offset-guarded Lua
script (idempotent across the three replicas and across replays) -> dead-letter poison, once
(only the replica whose apply advanced the partition's offset publishes it).

Start: the partition offsets are read from Redis once (`anchor`); from then on every event at or
after them is seen here, and everything before them is already in Redis. The L1 may be filled
from Redis only after the anchor (see `anchored`), which is what makes those fills safe.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from contracts import deadletter, links
from contracts.errors import InvalidEvent
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from telemetry import tracing

from redirect.adapters.kafka_links import Record
from redirect.adapters.redis_cache import Applied, Change
from redirect.domain.l1 import L1Cache
from redirect.domain.links import InvalidLinkEvent, Link, link_from_event, with_headers
from redirect.metrics import RedirectStats
from redirect.ports import StoreUnavailable

log = logging.getLogger(__name__)


class Reader(Protocol):
    @property
    def partitions(self) -> list[int]: ...

    async def start(self, offsets: Mapping[int, int]) -> dict[int, int]: ...

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]: ...

    def highwater(self, partition: int) -> int | None: ...

    async def stop(self) -> None: ...


class Writer(Protocol):
    async def apply(self, changes: Sequence[Change]) -> list[Applied]: ...

    async def offsets(self) -> dict[int, int]: ...


DeadLetterFn = Callable[[deadletter.MessageDeadLettered, bytes | None], Awaitable[None]]


def to_change(record: Record) -> tuple[Change, str | None]:
    """Pure: one topic record -> the change to apply, and the poison reason (None if valid)."""
    code = (record.key or b"").decode("utf-8", "replace")
    if record.value is None:
        return Change(record.partition, record.offset, code, None), "links: null value (tombstone) is not an event"
    try:
        event = links.decode(record.value)
        if record.key is not None and record.key != links.key(event):
            raise InvalidLinkEvent(f"links: key {code[:80]!r} does not match code {event.code[:80]!r}")
        return Change(record.partition, record.offset, event.code, link_from_event(event, record.offset)), None
    except (InvalidEvent, InvalidLinkEvent) as exc:
        return Change(record.partition, record.offset, code, None), str(exc)


class LinksProjector:
    def __init__(
        self,
        *,
        reader_factory: Callable[[], Reader],
        store: Writer,
        stats: RedirectStats,
        l1: L1Cache[Link] | None = None,
        l1_ttl: float = 30.0,
        permanent_max_age: int = 3600,
        dead_letter: DeadLetterFn | None = None,
        consumer_name: str = "redirect",
        topic: str = "links",
        fetch_max_records: int = 1000,
    ) -> None:
        self._reader_factory = reader_factory
        self._store = store
        self._stats = stats
        self._l1 = l1
        self._l1_ttl = l1_ttl
        self._max_age = permanent_max_age
        self._dead_letter = dead_letter
        self._consumer_name = consumer_name
        self._topic = topic
        self._max_records = fetch_max_records
        self.anchored = False
        self.next_offsets: dict[int, int] = {}
        self.targets: dict[int, int] | None = None
        self._reader: Reader | None = None
        self._stopping = False

    # -- state -----------------------------------------------------------------------------
    def caught_up(self) -> bool:
        """Applied everything up to the end offsets seen when the reader first started."""
        targets = self.targets
        return targets is not None and all(self.next_offsets.get(p, 0) >= end for p, end in targets.items())

    def lag(self) -> dict[int, int]:
        reader, out = self._reader, {}
        for p, nxt in self.next_offsets.items():
            high = reader.highwater(p) if reader is not None else None
            end = max(high or 0, (self.targets or {}).get(p, 0))
            out[p] = max(0, end - nxt)
        return out

    # -- running ---------------------------------------------------------------------------
    def start_from(self, offsets: Mapping[int, int]) -> None:
        """Start at these offsets instead of Redis's (replay: from 0)."""
        self.next_offsets = dict(offsets)
        self.anchored = True

    async def anchor(self, retry_interval: float = 1.0) -> None:
        """Read the start offsets from Redis (retrying until it answers)."""
        while True:
            try:
                self.next_offsets = await self._store.offsets()
                break
            except StoreUnavailable as exc:
                log.warning("links projector: Redis unavailable (%s); retrying", exc)
                await asyncio.sleep(retry_interval)
        self.anchored = True

    def stop(self) -> None:
        """Ask `run` to return after the batch in hand (within one fetch timeout).

        Shutdown does not rely on cancelling `run` alone: a cancellation that lands inside the
        Kafka client's own cleanup (which awaits its internal tasks and suppresses their
        CancelledError) is swallowed, and the loop would go on fetching; this flag still ends it."""
        self._stopping = True

    async def run(self, *, until_caught_up: bool = False, fetch_timeout_ms: int = 500) -> None:
        """Consume until `stop()` (or, with `until_caught_up`, until the start end offsets are
        reached).

        Any reader failure (start or fetch) restarts the reader from this replica's own position
        after a backoff; the position is never re-read from Redis (see the module docstring)."""
        if not self.anchored:
            await self.anchor()
        backoff = 0.5
        while not self._stopping:
            reader = self._reader_factory()
            try:
                ends = await reader.start(self.next_offsets)
                self._reader = reader
                if self.targets is None:
                    self.targets = ends
                for p in reader.partitions:
                    self.next_offsets.setdefault(p, 0)
                while not (until_caught_up and self.caught_up()) and not self._stopping:
                    records = await reader.fetch(timeout_ms=fetch_timeout_ms, max_records=self._max_records)
                    backoff = 0.5
                    if records:
                        await self.apply(records)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "links projector: reader failed (%s: %s); restarting in %.1fs", type(exc).__name__, exc, backoff
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                self._reader = None
                with contextlib.suppress(Exception):
                    await reader.stop()

    async def apply(self, records: Sequence[Record]) -> None:
        """Apply one fetched batch: L1 first, then Redis (retried until it answers)."""
        # Tracing on: one consumer span per record, child of the relay's producer span.
        spans = _consumer_spans(records, self._consumer_name) if tracing.tracing_enabled() else ()
        try:
            await self._apply(records)
        finally:
            for span in spans:
                span.end()

    async def _apply(self, records: Sequence[Record]) -> None:
        changes: list[Change] = []
        poison: dict[int, tuple[Record, str]] = {}
        l1, now = self._l1, time.monotonic()
        for record in records:
            change, reason = to_change(record)
            changes.append(change)
            if reason is not None:
                poison[len(changes) - 1] = (record, reason)
            elif l1 is not None and change.link is not None:
                l1.offer(
                    change.code, with_headers(change.link, permanent_max_age=self._max_age), now=now, ttl=self._l1_ttl
                )
        applied = await self._apply_with_retry(changes)
        for index, (record, reason) in poison.items():
            log.error("links record p%d@%d is poison: %s", record.partition, record.offset, reason)
            if applied[index].advanced and self._dead_letter is not None:
                await self._send_dead_letter(record, reason)
        for change in changes:
            self.next_offsets[change.partition] = max(self.next_offsets.get(change.partition, 0), change.offset + 1)
        self._stats.links_applied += len(changes) - len(poison)
        self._stats.links_written += sum(1 for a in applied if a.written)

    async def _apply_with_retry(self, changes: list[Change]) -> list[Applied]:
        backoff = 0.1
        while True:
            try:
                return await self._store.apply(changes)
            except StoreUnavailable as exc:
                log.warning("links projector: Redis unavailable (%s); retrying in %.1fs", exc, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _send_dead_letter(self, record: Record, reason: str) -> None:
        assert self._dead_letter is not None
        dlq = deadletter.build(
            source_topic=self._topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            payload=record.value or b"",
            error=reason,
            consumer=self._consumer_name,
            failed_at=datetime.now(UTC),
        )
        try:
            await self._dead_letter(dlq, record.key)
            self._stats.links_deadlettered += 1
        except Exception as exc:  # the record stays in the topic; log loudly, keep consuming
            log.error("dead-lettering links p%d@%d failed: %s", record.partition, record.offset, exc)


def _consumer_spans(records: Sequence[Record], consumer: str) -> list[Span]:
    tracer = trace.get_tracer("redirect.projector")
    return [
        tracer.start_span(
            "links apply",
            context=tracing.context_from_kafka_headers(record.headers),
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": "links",
                "messaging.kafka.partition": record.partition,
                "messaging.kafka.offset": record.offset,
                "redirect.consumer": consumer,
            },
        )
        for record in records
    ]
