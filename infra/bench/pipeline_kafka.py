"""Kafka side of the pipeline benchmark: a fast synthetic click producer and the plain aiokafka
consumer that sets the ceiling (it only reads: no decoding, no sinks).

`python infra/bench/pipeline_kafka.py consume --partition P --start S --end E` prints one JSON
line {"partition", "records", "seconds"}; the benchmark runs one per partition, in parallel.
"""

import argparse
import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import uuid_utils
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from contracts import clicks

DEVICES: tuple[clicks.Device, ...] = ("desktop", "mobile", "tablet", "other")
REFERRERS = (None, "https://news.example/a", "https://social.example/p", "https://search.example/?q=x")
COUNTRIES = ("DE", "FR", "US", "GB", "ZZ")


Record = tuple[bytes | None, bytes, int | None]  # key, value, partition (None: the key decides)


def synthetic_click(prefix: str, i: int, *, codes: int, now: datetime) -> clicks.LinkClicked:
    """The i-th click: round-robin over `codes` codes, every 10th a bot."""
    code = f"{prefix}{i % codes:05d}"
    bot = i % 10 == 9
    return clicks.LinkClicked(
        event_id=str(uuid_utils.uuid7()),
        occurred_at=now,
        code=code,
        referrer=REFERRERS[i % 4],
        user_agent="bench",
        visitor_key=f"v{i % 997}",
        device="bot" if bot else DEVICES[i % 4],
        is_bot=bot,
        country=COUNTRIES[i % 5],
    )


def synthetic(prefix: str, *, events: int, codes: int, duplicate_every: int) -> Iterator[Record]:
    """Single-click records (the previous format): `events` unique clicks plus a repeat of every
    `duplicate_every`-th one (same event id: must not count)."""
    now = datetime.now(UTC)
    for i in range(events):
        event = synthetic_click(prefix, i, codes=codes, now=now)
        value = clicks.encode(event)
        yield event.code.encode(), value, None
        if duplicate_every and i % duplicate_every == 0:
            yield event.code.encode(), value, None


def synthetic_batches(
    prefix: str, *, events: int, codes: int, duplicate_every: int, batch: int, partitions: int
) -> Iterator[Record]:
    """Batch records as the redirect publishes them: the same clicks grouped per partition of
    their code, `batch` clicks per record; every `duplicate_every`-th record is sent twice (a
    re-send after a producer error: same batch id, so ~1/duplicate_every of the event ids repeat)."""
    now = datetime.now(UTC)
    pending: dict[int, list[clicks.Click]] = {}
    sent = 0

    def record(partition: int, items: list[clicks.Click]) -> Iterator[Record]:
        nonlocal sent
        value = clicks.encode(
            clicks.ClicksBatched(
                batch_id=uuid.UUID(bytes=uuid_utils.uuid7().bytes), producer="bench", clicks=tuple(items)
            )
        )
        yield None, value, partition
        if duplicate_every and sent % duplicate_every == 0:
            yield None, value, partition
        sent += 1

    for i in range(events):
        e = synthetic_click(prefix, i, codes=codes, now=now)
        partition = int(murmur2(e.code.encode()) & 0x7FFFFFFF) % partitions
        items = pending.setdefault(partition, [])
        items.append(
            clicks.Click(
                event_id=uuid.UUID(e.event_id),
                occurred_at=e.occurred_at,
                code=e.code,
                referrer=e.referrer,
                user_agent=e.user_agent,
                visitor_key=e.visitor_key,
                device=e.device,
                is_bot=e.is_bot,
                country=e.country,
            )
        )
        if len(items) >= batch:
            yield from record(partition, items)
            pending[partition] = []
    for partition, items in pending.items():
        if items:
            yield from record(partition, items)


def expected_counts(prefix: str, *, events: int, codes: int) -> dict[str, tuple[int, int]]:
    """(clicks, bot_clicks) per code for `synthetic(...)` (repeats excluded)."""
    out: dict[str, list[int]] = {f"{prefix}{c:05d}": [0, 0] for c in range(min(codes, events))}
    for i in range(events):
        out[f"{prefix}{i % codes:05d}"][1 if i % 10 == 9 else 0] += 1
    return {code: (h, b) for code, (h, b) in out.items()}


async def produce(bootstrap: str, topic: str, pairs: Iterator[Record]) -> tuple[int, float]:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        acks="all",
        linger_ms=20,
        max_batch_size=512 * 1024,
        max_request_size=4 * 1024 * 1024,
    )
    await producer.start()
    sent = 0
    started = time.perf_counter()
    try:
        pending = []
        for key, value, partition in pairs:
            pending.append(await producer.send(topic, value, key=key, partition=partition))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, time.perf_counter() - started


async def consume(bootstrap: str, topic: str, partition: int, start: int, end: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False, max_partition_fetch_bytes=4 * 1024 * 1024
    )
    await consumer.start()
    tp = TopicPartition(topic, partition)
    try:
        consumer.assign([tp])
        consumer.seek(tp, start)
        records = 0
        started = time.perf_counter()
        position = start
        while position < end:
            batch = await consumer.getmany(tp, timeout_ms=1000, max_records=10_000)
            for msg in batch.get(tp, []):
                if msg.offset < end:
                    records += 1
            position = await consumer.position(tp)
        return {"partition": partition, "records": records, "seconds": time.perf_counter() - started}
    finally:
        await consumer.stop()


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["consume"])
    p.add_argument("--bootstrap", default="127.0.0.1:9092")
    p.add_argument("--topic", default="clicks")
    p.add_argument("--partition", type=int, required=True)
    p.add_argument("--start", type=int, required=True)
    p.add_argument("--end", type=int, required=True)
    a = p.parse_args()
    print(json.dumps(asyncio.run(consume(a.bootstrap, a.topic, a.partition, a.start, a.end))))


if __name__ == "__main__":
    main()
