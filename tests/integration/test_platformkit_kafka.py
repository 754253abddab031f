"""platformkit.kafka against the stack's broker: partitions of a declared topic, a clear error for
a missing one, and a producer that starts, or fails to start without leaving a client behind."""

import pytest
from aiokafka.errors import KafkaConnectionError
from contracts.topics import ALL_TOPICS
from platformkit.kafka import TopicNotFound, start_producer, topic_partitions

from tests.integration.shorten.support import KAFKA

pytestmark = pytest.mark.integration


async def test_partitions_of_every_declared_topic() -> None:
    for topic in ALL_TOPICS:
        assert await topic_partitions(KAFKA, topic.name) == list(range(topic.partitions))


async def test_a_missing_topic_is_named() -> None:
    with pytest.raises(TopicNotFound, match="no-such-topic"):
        await topic_partitions(KAFKA, "no-such-topic")


async def test_a_producer_starts_and_a_failed_start_raises() -> None:
    producer = await start_producer({"bootstrap_servers": KAFKA, "acks": "all"})
    try:
        assert await producer.partitions_for(ALL_TOPICS[0].name)
    finally:
        await producer.stop()
    with pytest.raises(KafkaConnectionError):
        await start_producer({"bootstrap_servers": "127.0.0.1:1", "request_timeout_ms": 2000})
