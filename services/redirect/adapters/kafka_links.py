"""Kafka adapters of the links projector: a group-less reader of every `links` partition, and
the dead-letter publisher for poison records.

No consumer group: every replica reads every partition itself (each keeps its own L1 in
step with the topic), starting where the shared read model says it stands (`links:offsets`
in Redis). Nothing is committed to Kafka; the position lives next to the data it describes.
"""

import logging
from collections.abc import Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from contracts import deadletter
from platformkit.kafka import start_producer, topic_partitions

from redirect.ports import Record

log = logging.getLogger(__name__)


class LinksReader:
    """Reads all partitions of one topic from given offsets."""

    def __init__(self, *, topic: str, bootstrap_servers: str, client_id: str, fetch_max_wait_ms: int = 200) -> None:
        self.topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=fetch_max_wait_ms,
        )
        self._tps: list[TopicPartition] = []

    @property
    def partitions(self) -> list[int]:
        return [tp.partition for tp in self._tps]

    async def start(self, offsets: Mapping[int, int]) -> dict[int, int]:
        """Assign every partition, seek to `offsets` (0 where absent); return the end offsets now."""
        consumer = self._consumer
        partitions = await topic_partitions(self._bootstrap_servers, self.topic, client_id=self._client_id)
        await consumer.start()
        try:
            self._tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(self._tps)
            for tp in self._tps:
                consumer.seek(tp, offsets.get(tp.partition, 0))
            ends: dict[Any, int] = await consumer.end_offsets(self._tps)
        except BaseException:
            await consumer.stop()
            raise
        return {tp.partition: off for tp, off in ends.items()}

    async def fetch(self, *, timeout_ms: int, max_records: int) -> list[Record]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=max_records)
        return [
            Record(tp.partition, r.offset, r.key, r.value, tuple(r.headers or ()))
            for tp, records in batches.items()
            for r in records
        ]

    def highwater(self, partition: int) -> int | None:
        """The partition's end offset as of the last fetch (None before the first)."""
        value: int | None = self._consumer.highwater(TopicPartition(self.topic, partition))
        return value

    async def stop(self) -> None:
        await self._consumer.stop()


class DeadLetters:
    """Publishes MessageDeadLettered records; the producer starts on the first poison record."""

    def __init__(self, *, topic: str, bootstrap_servers: str, client_id: str) -> None:
        self._topic = topic
        self._config: dict[str, Any] = {
            "bootstrap_servers": bootstrap_servers,
            "client_id": client_id,
            "enable_idempotence": True,
            "acks": "all",
        }
        self._producer: AIOKafkaProducer | None = None

    async def publish(self, record: deadletter.MessageDeadLettered, *, key: bytes | None) -> None:
        if self._producer is None:
            self._producer = await start_producer(self._config)
        await self._producer.send_and_wait(self._topic, deadletter.encode(record), key=key)

    async def aclose(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()
