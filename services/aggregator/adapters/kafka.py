"""Kafka: dead-letter publishing and the replay reader (a group-less consumer over a time range)."""

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from contracts import deadletter
from contracts.deadletter import MessageDeadLettered

from aggregator.ports import SourceRecord


class _Sendable(Protocol):
    async def send(self, *, key: Any = None, value: Any = None) -> Any: ...


class FaustDeadLetters:
    """DeadLetters port on a faust topic (raw bytes). Waits for the broker's ack of every record."""

    def __init__(self, topic: _Sendable) -> None:
        self._topic = topic

    async def publish(self, records: Sequence[MessageDeadLettered]) -> None:
        pending = [
            await self._topic.send(key=rec.source_topic.encode(), value=deadletter.encode(rec)) for rec in records
        ]
        await asyncio.gather(*pending)


@dataclass(frozen=True, kw_only=True)
class ReplayProgress:
    """Where the replay stands, per partition: next offset to read and the end it reads up to."""

    start: dict[int, int]
    position: dict[int, int]
    end: dict[int, int]

    @property
    def total(self) -> int:
        return sum(self.end[p] - self.start[p] for p in self.end)

    @property
    def done(self) -> int:
        return sum(self.position[p] - self.start[p] for p in self.end)


async def plan_range(
    consumer: AIOKafkaConsumer, topic: str, partitions: list[int], *, from_ms: int, to_ms: int | None
) -> tuple[list[TopicPartition], dict[int, int], dict[int, int]]:
    """Start offsets (first record at/after from_ms) and end offsets (first at/after to_ms, or
    the high watermark now) per partition. Records produced after the plan are not replayed."""
    tps = [TopicPartition(topic, p) for p in partitions]
    ends = await consumer.end_offsets(tps)
    starts_at = await consumer.offsets_for_times({tp: from_ms for tp in tps})
    start = {tp.partition: (starts_at[tp].offset if starts_at[tp] else ends[tp]) for tp in tps}
    end = {tp.partition: ends[tp] for tp in tps}
    if to_ms is not None:
        stops_at = await consumer.offsets_for_times({tp: to_ms for tp in tps})
        end = {tp.partition: (stops_at[tp].offset if stops_at[tp] else ends[tp]) for tp in tps}
    return tps, start, end


async def read_range(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    start: dict[int, int],
    end: dict[int, int],
    *,
    batch_size: int,
) -> AsyncIterator[tuple[list[SourceRecord], ReplayProgress]]:
    """Yield batches of records in [start, end) per partition, with progress after each batch."""
    position = dict(start)
    todo = [tp for tp in tps if start[tp.partition] < end[tp.partition]]
    consumer.assign(todo)
    for tp in todo:
        consumer.seek(tp, start[tp.partition])
    while todo:
        fetched = await consumer.getmany(*todo, timeout_ms=1000, max_records=batch_size)
        batch: list[SourceRecord] = []
        for tp, messages in fetched.items():
            limit = end[tp.partition]
            batch.extend(
                SourceRecord(
                    topic=m.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    timestamp_ms=m.timestamp,
                )
                for m in messages
                if m.offset < limit
            )
        # The consumer's position (not the last record) decides completion: offsets may have
        # gaps (compaction, transaction markers) right before the end.
        for tp in todo:
            position[tp.partition] = min(await consumer.position(tp), end[tp.partition])
        finished = [tp for tp in todo if position[tp.partition] >= end[tp.partition]]
        if finished:
            todo = [tp for tp in todo if tp not in finished]
            consumer.pause(*finished)
        yield batch, ReplayProgress(start=start, position=dict(position), end=end)


class RecordsMissing(RuntimeError):
    """Some offsets a journal entry names are no longer in the topic (retention)."""


class KafkaRecordFetcher:
    """Reads given offsets back from a topic (group-less; a client per call: recovery is rare)."""

    def __init__(self, bootstrap_servers: str, *, timeout_s: float = 60.0) -> None:
        self._bootstrap = bootstrap_servers
        # Recovery reads inside its journal transaction: a read that cannot finish (Kafka away)
        # fails the round, which releases the transaction, instead of holding it open.
        self._timeout_s = timeout_s

    async def fetch(self, topic: str, offsets: dict[int, list[int]]) -> list[SourceRecord]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self._bootstrap, group_id=None, enable_auto_commit=False, auto_offset_reset="none"
        )
        async with asyncio.timeout(self._timeout_s):
            await consumer.start()
            try:
                found: list[SourceRecord] = []
                for partition, wanted in offsets.items():
                    found.extend(await self._read(consumer, TopicPartition(topic, partition), set(wanted)))
                return found
            finally:
                await consumer.stop()

    async def _read(self, consumer: AIOKafkaConsumer, tp: TopicPartition, wanted: set[int]) -> list[SourceRecord]:
        consumer.assign([tp])
        first, last = min(wanted), max(wanted)
        if first < (await consumer.beginning_offsets([tp]))[tp]:
            raise RecordsMissing(f"{tp.topic}/{tp.partition}: offset {first} is before the log start")
        if last >= (await consumer.end_offsets([tp]))[tp]:  # the log ends before it (topic recreated)
            raise RecordsMissing(f"{tp.topic}/{tp.partition}: offset {last} is past the log end")
        consumer.seek(tp, first)
        out: list[SourceRecord] = []
        while await consumer.position(tp) <= last:
            fetched = await consumer.getmany(tp, timeout_ms=1000, max_records=5000)
            out.extend(
                SourceRecord(
                    topic=m.topic,
                    partition=m.partition,
                    offset=m.offset,
                    key=m.key,
                    value=m.value,
                    timestamp_ms=m.timestamp,
                )
                for m in fetched.get(tp, [])
                if m.offset in wanted
            )
        if len(out) != len(wanted):
            raise RecordsMissing(f"{tp.topic}/{tp.partition}: {len(wanted) - len(out)} of the offsets are gone")
        return out


class GroupOffsets:
    """Committed offsets of a consumer group (read through the admin API, started lazily)."""

    def __init__(self, bootstrap_servers: str, group: str) -> None:
        self._bootstrap = bootstrap_servers
        self._group = group
        self._admin: AIOKafkaAdminClient | None = None  # built in the running loop, on first use

    async def committed(self, topic: str) -> dict[int, int]:
        if self._admin is None:
            admin = AIOKafkaAdminClient(bootstrap_servers=self._bootstrap, request_timeout_ms=10000)
            await admin.start()
            self._admin = admin
        offsets = await self._admin.list_consumer_group_offsets(self._group)
        return {tp.partition: meta.offset for tp, meta in offsets.items() if tp.topic == topic and meta.offset >= 0}

    async def close(self) -> None:
        if self._admin is not None:
            await self._admin.close()
            self._admin = None
