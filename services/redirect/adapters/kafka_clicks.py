"""Kafka adapter for clicks: an idempotent aiokafka producer fed formed partition batches.

Each `ClickBatch` is one record (no key, explicit partition: the one Kafka's default
partitioner gives the codes it holds, murmur2 of the code, see `partitioner`). The records of
one publish go through `create_batch`/`send_batch` (one future per partition instead of one per
record). After any failure the producer is dropped and a new one started on the next attempt
(fresh producer id, clean idempotence sequence numbers); the caller re-sends the same records.
"""

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import murmur2
from platformkit.kafka import start_producer

from redirect.domain.batches import ClickBatch
from redirect.ports import PublishFailed

log = logging.getLogger(__name__)


def producer_config(
    *, bootstrap_servers: str, client_id: str, linger_ms: int, request_timeout_ms: int
) -> dict[str, Any]:
    """Pure: the click producer's settings (idempotent, acks from all in-sync replicas)."""
    return {
        "bootstrap_servers": bootstrap_servers,
        "client_id": client_id,
        "enable_idempotence": True,
        "acks": "all",
        "linger_ms": linger_ms,
        # A request per partition carries up to this much; one larger record (a batch of up to
        # MAX_BATCH_BYTES) still goes alone.
        "max_batch_size": 256 * 1024,
        "request_timeout_ms": request_timeout_ms,
        "retry_backoff_ms": 200,
    }


def partition_for(key: bytes, partitions: int) -> int:
    """Kafka's default partitioner for a non-null key (Java `Utils.toPositive(murmur2) % n`)."""
    return int(murmur2(key) & 0x7FFFFFFF) % partitions


class KafkaClickSink:
    def __init__(self, *, topic: str, config: dict[str, Any]) -> None:
        self._topic = topic
        self._config = config
        self._timeout = config["request_timeout_ms"] / 1000 * 1.5
        self._producer: AIOKafkaProducer | None = None
        self._partitions = 0
        self._partition_of: Callable[[str], int] | None = None

    async def _started(self) -> AIOKafkaProducer:
        if self._producer is None:
            producer = await start_producer(self._config)
            try:
                partitions = len(await producer.partitions_for(self._topic))
            except BaseException:
                await producer.stop()
                raise
            if self._partition_of is None or self._partitions != partitions:
                # Memoised per code: murmur2 is pure Python (~2 us), the hot codes repeat.
                self._partition_of = lru_cache(maxsize=65_536)(lambda code: partition_for(code.encode(), partitions))
            self._producer, self._partitions = producer, partitions
        return self._producer

    async def _discard(self) -> None:
        producer, self._producer = self._producer, None
        if producer is not None:
            try:
                await producer.stop()
            except Exception as exc:  # dropped after a failure anyway
                log.debug("stopping a failed click producer: %s", exc)

    async def aclose(self) -> None:
        await self._discard()

    async def warm_up(self) -> None:
        """Start the producer now so the first clicks do not wait for it; failures retry later."""
        try:
            async with asyncio.timeout(self._timeout):
                await self._started()
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("Kafka not reachable yet for clicks (%s); clicks are kept and retried", exc)
            await self._discard()

    @asynccontextmanager
    async def _attempt(self) -> AsyncIterator[None]:
        """Bounded in time; any failure drops the producer and becomes PublishFailed."""
        try:
            async with asyncio.timeout(self._timeout):
                yield
        except (KafkaError, OSError, TimeoutError) as exc:
            await self._discard()
            raise PublishFailed(f"{type(exc).__name__}: {exc}") from exc
        except Exception as exc:
            # Anything else is a bug, but it must not kill the sender task silently: the clicks
            # stay buffered, the failure is logged and counted, and the sender keeps retrying.
            log.exception("unexpected error publishing clicks")
            await self._discard()
            raise PublishFailed(f"unexpected {type(exc).__name__}: {exc}") from exc

    async def partitioner(self) -> Callable[[str], int]:
        async with self._attempt():
            await self._started()
        assert self._partition_of is not None
        return self._partition_of

    async def publish(self, batches: Sequence[ClickBatch]) -> None:
        async with self._attempt():
            await self._publish(batches)

    async def _publish(self, batches: Sequence[ClickBatch]) -> None:
        producer = await self._started()
        pending: dict[int, Any] = {}
        futures: list[asyncio.Future[Any]] = []
        for batch in batches:
            partition = batch.partition
            records = pending.get(partition)
            if records is None:
                records = pending[partition] = producer.create_batch()
            headers = list(batch.headers)
            if records.append(key=None, value=batch.value, timestamp=batch.timestamp_ms, headers=headers) is None:
                futures.append(await producer.send_batch(records, self._topic, partition=partition))  # full
                records = pending[partition] = producer.create_batch()
                records.append(key=None, value=batch.value, timestamp=batch.timestamp_ms, headers=headers)
        for partition, records in pending.items():
            futures.append(await producer.send_batch(records, self._topic, partition=partition))
        await asyncio.gather(*futures)
