"""Kafka side of the pipeline benchmark: a fast synthetic click producer and the plain aiokafka
consumer that sets the ceiling (it only reads: no decoding, no sinks).

`python infra/bench/pipeline_kafka.py consume --partition P --start S --end E` prints one JSON
line {"partition", "records", "seconds"}; the benchmark runs one per partition, in parallel.
"""

import argparse
import asyncio
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import uuid_utils
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from contracts import clicks

DEVICES: tuple[clicks.Device, ...] = ("desktop", "mobile", "tablet", "other")
REFERRERS = (None, "https://news.example/a", "https://social.example/p", "https://search.example/?q=x")
COUNTRIES = ("DE", "FR", "US", "GB", "ZZ")


def synthetic(prefix: str, *, events: int, codes: int, duplicate_every: int) -> Iterator[tuple[bytes, bytes]]:
    """(key, value) pairs: `events` unique clicks round-robin over `codes` codes (every 10th a
    bot), plus a repeat of every `duplicate_every`-th event (same event id: must not count)."""
    now = datetime.now(UTC)
    for i in range(events):
        code = f"{prefix}{i % codes:05d}"
        bot = i % 10 == 9
        event = clicks.LinkClicked(
            event_id=str(uuid_utils.uuid7()), occurred_at=now, code=code, referrer=REFERRERS[i % 4],
            user_agent="bench", visitor_key=f"v{i % 997}", device="bot" if bot else DEVICES[i % 4],
            is_bot=bot, country=COUNTRIES[i % 5],
        )
        value = clicks.encode(event)
        yield code.encode(), value
        if duplicate_every and i % duplicate_every == 0:
            yield code.encode(), value


def expected_counts(prefix: str, *, events: int, codes: int) -> dict[str, tuple[int, int]]:
    """(clicks, bot_clicks) per code for `synthetic(...)` (repeats excluded)."""
    out: dict[str, list[int]] = {f"{prefix}{c:05d}": [0, 0] for c in range(min(codes, events))}
    for i in range(events):
        out[f"{prefix}{i % codes:05d}"][1 if i % 10 == 9 else 0] += 1
    return {code: (h, b) for code, (h, b) in out.items()}


async def produce(bootstrap: str, topic: str, pairs: Iterator[tuple[bytes, bytes]]) -> tuple[int, float]:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20,
                                max_batch_size=512 * 1024, max_request_size=4 * 1024 * 1024)
    await producer.start()
    sent = 0
    started = time.perf_counter()
    try:
        pending = []
        for key, value in pairs:
            pending.append(await producer.send(topic, value, key=key))
            sent += 1
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return sent, time.perf_counter() - started


async def consume(bootstrap: str, topic: str, partition: int, start: int, end: int) -> dict[str, float]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024)
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
