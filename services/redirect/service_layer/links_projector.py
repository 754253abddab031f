"""The links projector: keeps the Redis read model and this replica's L1 in step with `links`.

Per record: decode + validate (pure) -> upsert this replica's L1 (offset-guarded, so the
update/delete is obeyed here within milliseconds) -> apply to Redis with the offset-guarded Lua
script (idempotent across the three replicas and across replays) -> dead-letter poison, once
(only the replica whose apply advanced the partition's offset publishes it).

Start: the partition offsets are read from Redis once (`anchor`); from then on every event at or
after them is seen here, and everything before them is already in Redis. The L1 may be filled
from Redis only after the anchor (see `anchored`), which is what makes those fills safe.

Two positions per partition: `seen_offsets` (in this replica's L1) and `next_offsets` (applied to
Redis). Redis being away does not stop the stream: fetched batches go into the L1 at once and
wait in `_pending` (bounded by `max_pending` changes, past which fetching pauses) until Redis
answers again, then are applied in order -- so links created or changed during an outage are
served by every replica meanwhile and reach Redis when it is back.

Redis that lost events (restarted empty, or from an old snapshot): the apply script reports a
gap (Redis stands before this consumer's position; it does not advance over the hole), and a
periodic check compares `links:offsets` with `next_offsets`. Either starts a *rebuild*: a second
reader applies `links` from Redis's own offsets (0 when empty) to the end, into Redis only, while
this one goes on. Until it is done `rebuilding` is true and the lookup does not trust a Redis miss.

Read your writes: with `report_as`, the replica reports `seen_offsets` in Redis (`links:seen`)
with every apply and once per `check_interval` (a heartbeat); `shorten` answers a write once every
live replica reports a position past the write's event (shorten/service_layer/visibility.py).
"""

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime

from contracts import deadletter, links
from contracts.errors import InvalidEvent
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind
from platformkit.retry import RetryPolicy, RetrySchedule, made_progress
from telemetry import tracing

from redirect.domain.l1 import L1Cache
from redirect.domain.links import InvalidLinkEvent, Link, link_from_event, with_headers
from redirect.metrics import RedirectStats
from redirect.ports import Applied, Change, LinksSource, ReadModelWriter, Record, SeenReport, StoreUnavailable

log = logging.getLogger(__name__)


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
        reader_factory: Callable[[], LinksSource],
        store: ReadModelWriter,
        stats: RedirectStats,
        l1: L1Cache[Link] | None = None,
        l1_ttl: float = 30.0,
        permanent_max_age: int = 3600,
        dead_letter: DeadLetterFn | None = None,
        consumer_name: str = "redirect",
        topic: str = "links",
        fetch_max_records: int = 1000,
        max_pending: int = 200_000,
        check_interval: float = 1.0,
        report_as: str | None = None,
    ) -> None:
        self._reader_factory = reader_factory
        self._store = store
        self._stats = stats
        self._l1 = l1 if l1 is not None and l1.max_size > 0 else None
        self._l1_ttl = l1_ttl
        self._max_age = permanent_max_age
        self._dead_letter = dead_letter
        self._consumer_name = consumer_name
        self._topic = topic
        self._max_records = fetch_max_records
        self._max_pending = max_pending
        self._check_interval = check_interval
        self.anchored = False
        self.next_offsets: dict[int, int] = {}  # applied to Redis
        self.seen_offsets: dict[int, int] = {}  # in this replica's L1 (>= next_offsets)
        self.targets: dict[int, int] | None = None
        self._reader: LinksSource | None = None
        self._stopping = False
        # Fetched, in the L1, not yet applied to Redis: (changes, poison by index), in order.
        self._pending: deque[tuple[list[Change], dict[int, tuple[Record, str]]]] = deque()
        self._pending_changes = 0
        self._retry_at = 0.0
        # Redis away: the pending batches are tried again at a later turn (the stream goes on).
        self._redis_retry = RetrySchedule(
            RetryPolicy(
                what="links projector: applying to Redis",
                initial_s=0.1,
                max_s=2.0,
                retry_on=(StoreUnavailable,),
                log=log,
            )
        )
        self._next_check = 0.0
        # Reported with every apply and at least once per check_interval (a heartbeat).
        self._report_as = report_as
        self._rebuild: asyncio.Task[None] | None = None

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

    @property
    def rebuilding(self) -> bool:
        """Redis lost events and is being refilled from the topic: a Redis miss proves nothing."""
        return self._rebuild is not None and not self._rebuild.done()

    @property
    def pending_changes(self) -> int:
        return self._pending_changes

    # -- running ---------------------------------------------------------------------------
    def start_from(self, offsets: Mapping[int, int]) -> None:
        """Start at these offsets instead of Redis's (replay: from 0)."""
        self.next_offsets = dict(offsets)
        self.seen_offsets = dict(offsets)
        self.anchored = True

    async def anchor(self, retry_interval: float = 1.0) -> None:
        """Read the start offsets from Redis (retrying until it answers)."""
        retry = RetryPolicy(
            what="links projector: reading its start offsets from Redis",
            initial_s=retry_interval,
            max_s=retry_interval,
            retry_on=(StoreUnavailable,),
            log=log,
        )
        self.start_from(await retry.call(self._store.offsets))

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
        (what its L1 has seen; `_pending` holds the rest) after a backoff; the position is never
        re-read from Redis (see the module docstring)."""
        if not self.anchored:
            await self.anchor()
        retry = RetryPolicy(what="links projector: reader", initial_s=0.5, max_s=5.0, log=log)
        try:
            async for attempt in retry.attempts():
                with attempt:
                    if self._stopping:
                        return
                    reader = self._reader_factory()
                    try:
                        ends = await reader.start(self.seen_offsets)
                        self._reader = reader
                        if self.targets is None:
                            self.targets = ends
                        for p in reader.partitions:
                            self.next_offsets.setdefault(p, 0)
                            self.seen_offsets.setdefault(p, 0)
                        while not (until_caught_up and self.caught_up()) and not self._stopping:
                            if self._pending_changes >= self._max_pending:
                                await self._flush(wait=True)  # Redis away too long: stop taking more
                            records = await reader.fetch(timeout_ms=fetch_timeout_ms, max_records=self._max_records)
                            made_progress(attempt)
                            if records:
                                self._take(records)
                            await self._flush(wait=not records and until_caught_up)
                            if not until_caught_up:
                                await self._check_model()
                        return
                    finally:
                        self._reader = None
                        with contextlib.suppress(Exception):
                            await reader.stop()
        finally:
            if self._rebuild is not None:
                self._rebuild.cancel()

    async def apply(self, records: Sequence[Record]) -> None:
        """Apply one fetched batch: L1 first, then Redis (retried until it answers)."""
        self._take(records)
        await self._flush(wait=True)

    def _take(self, records: Sequence[Record]) -> None:
        """Decode, upsert the L1 and queue for Redis; the L1 obeys the batch from here on."""
        # Tracing on: one consumer span per record, child of the relay's producer span.
        spans = _consumer_spans(records, self._consumer_name) if tracing.tracing_enabled() else ()
        try:
            self._take_untraced(records)
        finally:
            for span in spans:
                span.end()

    def _take_untraced(self, records: Sequence[Record]) -> None:
        changes: list[Change] = []
        poison: dict[int, tuple[Record, str]] = {}
        l1, now, seen = self._l1, time.monotonic(), self.seen_offsets
        for record in records:
            change, reason = to_change(record)
            # The position before this record: Redis must stand at least there (gap check).
            change = change._replace(after=seen.get(change.partition, 0))
            seen[change.partition] = max(seen.get(change.partition, 0), change.offset + 1)
            changes.append(change)
            if reason is not None:
                poison[len(changes) - 1] = (record, reason)
            elif l1 is not None and change.link is not None:
                l1.offer(
                    change.code, with_headers(change.link, permanent_max_age=self._max_age), now=now, ttl=self._l1_ttl
                )
        self._pending.append((changes, poison))
        self._pending_changes += len(changes)

    async def _flush(self, *, wait: bool) -> None:
        """Apply the pending batches to Redis in order. Redis away: keep them; with `wait`,
        retry (backoff) until they are applied, else try again at the next turn after backoff."""
        while self._pending:
            now = time.monotonic()
            if now < self._retry_at:
                if not wait:
                    return
                await asyncio.sleep(self._retry_at - now)
            changes, poison = self._pending[0]
            try:
                applied = await self._store.apply(changes, seen=self._seen_report(changes))
            except StoreUnavailable as exc:
                self._retry_at = time.monotonic() + self._redis_retry.failed(exc)
                continue
            self._redis_retry.succeeded()
            self._retry_at = 0.0
            self._pending.popleft()
            self._pending_changes -= len(changes)
            await self._applied(changes, poison, applied)

    async def _applied(
        self, changes: list[Change], poison: dict[int, tuple[Record, str]], applied: list[Applied]
    ) -> None:
        for index, (record, reason) in poison.items():
            log.error("links record p%d@%d is poison: %s", record.partition, record.offset, reason)
            if applied[index].advanced and self._dead_letter is not None:
                await self._send_dead_letter(record, reason)
        for change in changes:
            self.next_offsets[change.partition] = max(self.next_offsets.get(change.partition, 0), change.offset + 1)
        self._stats.links_applied += len(changes) - len(poison)
        self._stats.links_written += sum(1 for a in applied if a.written)
        if any(a.gap for a in applied):
            self._start_rebuild("the apply script found Redis behind this replica's position")

    def _seen_report(self, applying: Sequence[Change] = ()) -> SeenReport | None:
        if self._report_as is None:
            return None
        if self._l1 is not None:
            return SeenReport(self._report_as, dict(self.seen_offsets))
        # No L1 (benchmarks): requests read Redis, which holds what is applied with this report.
        offsets = dict(self.next_offsets)
        for change in applying:
            offsets[change.partition] = max(offsets.get(change.partition, 0), change.offset + 1)
        return SeenReport(self._report_as, offsets)

    async def _check_model(self) -> None:
        """Once per `check_interval`: report this replica's position (a heartbeat), and check
        whether Redis lost events this replica applied."""
        now = time.monotonic()
        if now < self._next_check or self._pending:
            return
        self._next_check = now + self._check_interval
        try:
            report = self._seen_report()
            if report is not None:
                await self._store.report_seen(report)
            if self.rebuilding:
                return
            stored = await self._store.offsets()
        except StoreUnavailable:
            return
        behind = {p: (stored.get(p, 0), mine) for p, mine in self.next_offsets.items() if stored.get(p, 0) < mine}
        if behind:
            self._start_rebuild(f"links:offsets stands before this replica's position {behind}")

    def _start_rebuild(self, why: str) -> None:
        if self.rebuilding:
            return
        log.warning("links projector: Redis lost applied events (%s); rebuilding it from the topic", why)
        self._stats.links_rebuilds += 1
        self._rebuild = asyncio.create_task(self._rebuild_from_topic(), name="links-rebuild")

    async def _rebuild_from_topic(self) -> None:
        """Apply `links` from Redis's own offsets to the end, into Redis only (a second reader)."""
        helper = LinksProjector(
            reader_factory=self._reader_factory,
            store=self._store,
            stats=RedirectStats(),
            consumer_name=f"{self._consumer_name}-rebuild",
            topic=self._topic,
            fetch_max_records=self._max_records,
        )
        started = time.monotonic()
        await helper.anchor()
        await helper.run(until_caught_up=True)
        log.warning(
            "links projector: Redis rebuilt from the topic up to %s in %.1fs",
            helper.next_offsets,
            time.monotonic() - started,
        )

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
