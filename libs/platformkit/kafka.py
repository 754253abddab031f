"""Kafka client chores every service repeats: starting a producer, listing a topic's partitions."""

from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient


class TopicNotFound(LookupError):
    """The topic does not exist (or has no partitions): the stack's topics were not created."""


async def start_producer(config: dict[str, Any]) -> AIOKafkaProducer:
    """A started producer. A start that fails (broker away) is stopped before the error goes
    on: aiokafka otherwise keeps the half-started client and its connections."""
    producer = AIOKafkaProducer(**config)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def topic_partitions(
    bootstrap_servers: str, topic: str, *, client_id: str = "partitions", request_timeout_ms: int = 10_000
) -> list[int]:
    """The topic's partition ids, sorted, from the broker's metadata. Raises TopicNotFound."""
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers, client_id=client_id, request_timeout_ms=request_timeout_ms
    )
    await admin.start()
    try:
        [described] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    partitions = sorted(p["partition"] for p in described["partitions"])
    if described["error_code"] != 0 or not partitions:
        raise TopicNotFound(f"topic {topic!r} not found (error code {described['error_code']})")
    return partitions
