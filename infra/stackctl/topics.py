"""Create the topics declared in libs/contracts/topics.py, with their settings. Idempotent:
an existing topic gets its declared configs re-applied; its partition count may only grow."""

from aiokafka.admin import AIOKafkaAdminClient, NewPartitions, NewTopic
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from contracts.topics import ALL_TOPICS

from stackctl.first_start import say


async def ensure_topics(bootstrap: str, *, replication_factor: int = 1) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [t for t in ALL_TOPICS if t.name not in existing]
        if missing:
            say("creating topics: " + ", ".join(f"{t.name}({t.partitions}p)" for t in missing))
            await admin.create_topics(
                [NewTopic(t.name, t.partitions, replication_factor, topic_configs=dict(t.config)) for t in missing]
            )
        present = [t for t in ALL_TOPICS if t.name in existing]
        if present:
            described = await admin.describe_topics([t.name for t in present])
            counts = {d["topic"]: len(d["partitions"]) for d in described}
            grow = {t.name: NewPartitions(t.partitions) for t in present if counts.get(t.name, 0) < t.partitions}
            if grow:
                say(f"adding partitions: {grow}")
                await admin.create_partitions(grow)
            await admin.alter_configs(
                [ConfigResource(ConfigResourceType.TOPIC, t.name, configs=dict(t.config)) for t in present]
            )
    finally:
        await admin.close()
