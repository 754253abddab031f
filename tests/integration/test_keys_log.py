"""platformkit.keys_log against the stack's broker: a process reads every key before it serves,
finds a key created after it started (bounded wait on a miss), and stops accepting a revoked one."""

import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from contracts import keys
from contracts.keys import KeyIssued, KeyRevoked
from platformkit.apikeys import digest, new_secret
from platformkit.errors import ApiError
from platformkit.kafka import start_producer
from platformkit.keys_log import KeysLog

from tests.integration.shorten.support import KAFKA

pytestmark = pytest.mark.integration


async def _topic() -> str:
    name = f"test-keys-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, 1, 1, topic_configs={"cleanup.policy": "compact"})])
    finally:
        await admin.close()
    return name


def _issued(key_id: str, secret: str) -> KeyIssued:
    return KeyIssued(
        event_id=str(uuid.uuid4()),
        occurred_at=datetime.now(UTC),
        key_id=key_id,
        workspace="acme",
        scopes=("stats:read",),
        digest=digest(secret),
    )


async def test_keys_before_start_after_start_and_revoked() -> None:
    topic = await _topic()
    producer = await start_producer({"bootstrap_servers": KAFKA, "acks": "all"})
    early, late = new_secret(), new_secret()
    log = KeysLog(bootstrap_servers=KAFKA, topic=topic, client_id="test-keys-log", miss_wait_s=5)
    try:
        for i in range(50):
            await producer.send_and_wait(topic, keys.encode(_issued(f"k_filler{i}", new_secret())), key=b"f%d" % i)
        await producer.send_and_wait(topic, keys.encode(_issued("k_early", early)), key=b"k_early")
        await log.start(timeout_s=30)
        assert len(log.book) == 51  # everything that existed at start, before start returned
        assert (await log.authenticate(f"Bearer {early}")).key_id == "k_early"

        # Created after start, used at once: the miss waits for the reader instead of a 401.
        await producer.send_and_wait(topic, keys.encode(_issued("k_late", late)), key=b"k_late")
        assert (await log.authenticate(f"Bearer {late}")).workspace == "acme"

        await producer.send_and_wait(
            topic,
            keys.encode(
                KeyRevoked(
                    event_id=str(uuid.uuid4()), occurred_at=datetime.now(UTC), key_id="k_early", workspace="acme"
                )
            ),
            key=b"k_early",
        )
        assert await log.caught_up(10)
        with pytest.raises(ApiError) as refused:
            await log.authenticate(f"Bearer {early}")
        assert refused.value.code == "api_key_invalid"
        with pytest.raises(ApiError) as missing:
            await log.authenticate(None)
        assert missing.value.code == "api_key_missing"
    finally:
        await log.stop()
        await producer.stop()
