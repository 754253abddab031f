"""Adapters of write visibility (service_layer/visibility.py): where events landed in `links`, and how far each
redirect replica has read it (`links:seen` in Redis, written by the replicas' projectors)."""

from collections.abc import Mapping, Sequence
from typing import Any

import msgspec
import redis.asyncio as aioredis
from aiokafka import AIOKafkaConsumer, TopicPartition
from platformkit.kafka import topic_partitions

from shorten.ports import Placed, ReplicaPosition

SEEN_KEY = "links:seen"


class _EventId(msgspec.Struct):
    event_id: str


_decode_id = msgspec.json.Decoder(_EventId).decode


class KafkaLinksLog:
    """A group-less reader of every partition of `links`, from the end; only event ids decoded."""

    def __init__(self, *, topic: str, bootstrap_servers: str, client_id: str) -> None:
        self._topic = topic
        self._bootstrap_servers = bootstrap_servers
        self._client_id = client_id
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            client_id=client_id,
            group_id=None,
            enable_auto_commit=False,
            fetch_max_wait_ms=100,
        )

    async def start(self) -> None:
        partitions = await topic_partitions(self._bootstrap_servers, self._topic, client_id=self._client_id)
        await self._consumer.start()
        try:
            tps = [TopicPartition(self._topic, p) for p in partitions]
            self._consumer.assign(tps)
            ends: dict[Any, int] = await self._consumer.end_offsets(tps)
            for tp, end in ends.items():
                self._consumer.seek(tp, end)
        except BaseException:
            await self._consumer.stop()
            raise

    async def fetch(self, *, timeout_ms: int) -> Sequence[Placed]:
        batches = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=5000)
        out = []
        for tp, records in batches.items():
            for record in records:
                try:
                    out.append(Placed(_decode_id(record.value or b"").event_id, tp.partition, record.offset))
                except msgspec.DecodeError:
                    continue  # poison: nobody waits for it
        return out

    async def stop(self) -> None:
        await self._consumer.stop()


class RedisReplicaPositions:
    """Reads `links:seen`: field `{replica}:{partition}` -> next offset, `{replica}:at` -> epoch ms."""

    def __init__(self, url: str) -> None:
        pool = aioredis.ConnectionPool.from_url(url, socket_timeout=1, socket_connect_timeout=1)
        self._redis = aioredis.Redis(connection_pool=pool)

    async def read(self) -> Mapping[str, ReplicaPosition]:
        raw: dict[Any, Any] = await self._redis.hgetall(SEEN_KEY)
        return parse_positions(raw)

    async def aclose(self) -> None:
        await self._redis.aclose()


def parse_positions(raw: Mapping[bytes, bytes]) -> dict[str, ReplicaPosition]:
    """Pure: the hash's fields -> replica -> (reported at, offsets)."""
    at: dict[str, float] = {}
    offsets: dict[str, dict[int, int]] = {}
    for key, value in raw.items():
        replica, _, part = key.decode().rpartition(":")
        if part == "at":
            at[replica] = int(value) / 1000
        elif part.isdigit():
            offsets.setdefault(replica, {})[int(part)] = int(value)
    return {r: ReplicaPosition(at.get(r, 0.0), offsets.get(r, {})) for r in set(at) | set(offsets)}
