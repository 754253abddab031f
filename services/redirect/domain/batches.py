"""Partition batches: the records a redirect replica publishes on `clicks`.

The clicks of one flush are grouped by the partition of their code (Kafka's default partitioner,
given as `partition_of`) and each group becomes one `ClicksBatched` record, or several when it
passes `MAX_BATCH_CLICKS` clicks or `MAX_BATCH_BYTES`. A batch is formed ONCE: its UUIDv7
`batch_id` and its encoded bytes are fixed here, so a re-send after a producer error is the same
record, which the aggregator counts once (it deduplicates per `batch_id`). Re-grouping clicks of
an unacknowledged batch with newer ones would give them a second id and count them twice:
nothing ever takes a formed batch apart.
"""

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from contracts.clicks import MAX_BATCH_CLICKS, Click, ClicksBatched, encode

from redirect.domain.ids import new_event_id

# Kafka refuses records above 1 MB by default (message.max.bytes); a batch (value + headers)
# stays at half of that.
MAX_BATCH_BYTES = 512 * 1024
# Estimated JSON bytes of a click besides its code, user agent and referrer (ids, time, visitor
# key, field names; 236 measured). Only decides when to close a batch; the encoded size is checked after.
CLICK_JSON_OVERHEAD = 240
# A Kafka record header costs its name and value plus two length varints.
HEADER_OVERHEAD = 4

# A click's W3C trace context as Kafka headers: () when tracing is off or it had none.
TraceHeaders = tuple[tuple[str, bytes], ...]
BuiltClick = tuple[Click, TraceHeaders]


def new_batch_id() -> uuid.UUID:
    """UUIDv7 (time-ordered), made once per batch."""
    return new_event_id()


@dataclass(frozen=True, slots=True)
class ClickBatch:
    """One record of the `clicks` topic, ready to send and never changed: every (re-)send of
    it carries the same `value` bytes, hence the same `batch_id`."""

    partition: int
    batch_id: uuid.UUID
    value: bytes
    # One traceparent (and tracestate) header per click that had one, in click order.
    headers: TraceHeaders
    # Kafka record timestamp: when its newest click was served (epoch ms).
    timestamp_ms: int
    clicks: int


class BatchFormer:
    """Groups built clicks by partition into sealed `ClickBatch`es (pure; one per flush)."""

    def __init__(
        self,
        *,
        producer: str,
        batch_ids: Callable[[], uuid.UUID] = new_batch_id,
        max_clicks: int = MAX_BATCH_CLICKS,
        max_bytes: int = MAX_BATCH_BYTES,
    ) -> None:
        if not 1 <= max_clicks <= MAX_BATCH_CLICKS:
            raise ValueError(f"max_clicks must be within 1..{MAX_BATCH_CLICKS}")
        self.producer = producer
        self._batch_ids = batch_ids
        self._max_clicks = max_clicks
        self._max_bytes = max_bytes

    def form(self, built: Iterable[BuiltClick], partition_of: Callable[[str], int]) -> list[ClickBatch]:
        """Batches of `built` (arrival order kept within a partition), each within the caps."""
        groups: dict[int, _Group] = {}
        out: list[ClickBatch] = []
        max_clicks, max_bytes = self._max_clicks, self._max_bytes
        for click, trace in built:
            partition = partition_of(click.code)
            group = groups.get(partition)
            if group is None:
                group = groups[partition] = _Group()
            cost = CLICK_JSON_OVERHEAD + len(click.code) + len(click.user_agent) + len(click.referrer or "")
            if trace:
                cost += sum(len(name) + len(value) + HEADER_OVERHEAD for name, value in trace)
            if group.clicks and group.estimate + cost > max_bytes:
                out += self._seal(partition, group.clicks, group.traces)
                group = groups[partition] = _Group()
            if trace:
                group.traces.append((len(group.clicks), trace))
            group.clicks.append(click)
            group.estimate += cost
            if len(group.clicks) >= max_clicks:
                out += self._seal(partition, group.clicks, group.traces)
                del groups[partition]
        for partition, group in groups.items():
            out += self._seal(partition, group.clicks, group.traces)
        return out

    def _seal(self, partition: int, clicks: list[Click], traces: list[tuple[int, TraceHeaders]]) -> list[ClickBatch]:
        batch_id = self._batch_ids()
        value = encode(ClicksBatched(batch_id=batch_id, producer=self.producer, clicks=tuple(clicks)))
        headers = tuple(header for _, trace in traces for header in trace)
        size = len(value) + sum(len(k) + len(v) + HEADER_OVERHEAD for k, v in headers)
        if size > self._max_bytes and len(clicks) > 1:
            # The estimate was short (escaped or non-ASCII text): halve. This id was never sent.
            half = len(clicks) // 2
            return self._seal(partition, clicks[:half], [t for t in traces if t[0] < half]) + self._seal(
                partition, clicks[half:], [(i - half, t) for i, t in traces if i >= half]
            )
        newest = clicks[-1].occurred_at  # arrival order
        return [
            ClickBatch(
                partition=partition,
                batch_id=batch_id,
                value=value,
                headers=headers,
                timestamp_ms=int(newest.timestamp() * 1000),
                clicks=len(clicks),
            )
        ]


class _Group:
    """The open batch of one partition while a flush is being formed."""

    __slots__ = ("clicks", "estimate", "traces")

    def __init__(self) -> None:
        self.clicks: list[Click] = []
        self.traces: list[tuple[int, TraceHeaders]] = []  # (index in clicks, its headers), traced clicks only
        self.estimate = 0
