"""Helpers for shorten tests against the real stack (also imported by tests/e2e)."""

import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import asyncpg
from aiokafka import AIOKafkaConsumer, TopicPartition
from contracts import links
from contracts.links import LinkEvent
from platformkit.kafka import topic_partitions

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPIC = os.environ.get("TOPIC_LINKS", "links")
POSTGRES_DSN = os.environ.get("POSTGRES_DSN", "postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
BASE62 = r"[0-9A-Za-z]"


def unique_alias(prefix: str = "t") -> str:
    """A fresh alias per test (tests share the stack; names must not collide)."""
    return f"{prefix}-{secrets.token_hex(6)}"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass(frozen=True)
class Seen:
    partition: int
    offset: int
    key: bytes | None
    event: LinkEvent
    seen_at: float  # time.monotonic() when this test's consumer received it


async def end_offsets(topic: str = TOPIC) -> dict[int, int]:
    """The current end offset of every partition (where a later reader should start)."""
    async with LinksTopic(topic=topic) as reader:
        return reader.start_offsets


async def kafka_answers() -> bool:
    """True once the broker serves metadata for the links topic (e.g. after a restart)."""
    try:
        await topic_partitions(KAFKA, TOPIC)
    except Exception:
        return False
    return True


class LinksTopic:
    """Reads the `links` topic from given offsets (default: its end when entered), with a
    unique consumer group id, keeping every event it sees."""

    def __init__(self, *, topic: str = TOPIC, start_offsets: dict[int, int] | None = None) -> None:
        self.topic = topic
        self.start_offsets: dict[int, int] = dict(start_offsets or {})
        self.seen: list[Seen] = []
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=KAFKA,
            group_id=f"test-shorten-{uuid.uuid4()}",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )

    async def __aenter__(self) -> "LinksTopic":
        consumer = self._consumer
        try:
            await consumer.start()
            partitions = await topic_partitions(KAFKA, self.topic)
            tps = [TopicPartition(self.topic, p) for p in partitions]
            consumer.assign(tps)
            if not self.start_offsets:
                ends = await consumer.end_offsets(tps)
                self.start_offsets = {tp.partition: off for tp, off in ends.items()}
            for tp in tps:
                consumer.seek(tp, self.start_offsets.get(tp.partition, 0))
        except BaseException:
            await consumer.stop()
            raise
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self._consumer.stop()

    async def poll(self) -> None:
        batches = await self._consumer.getmany(timeout_ms=100)
        now = time.monotonic()
        for tp, records in batches.items():
            for r in records:
                self.seen.append(Seen(tp.partition, r.offset, r.key, links.decode(r.value), now))

    def for_codes(self, codes: Iterable[str]) -> list[Seen]:
        wanted = set(codes)
        return [s for s in self.seen if s.event.code in wanted]

    async def wait_for(self, codes: Iterable[str], count: int, *, timeout: float) -> list[Seen]:
        """Poll until `count` events for `codes` arrived (raises on the deadline)."""
        wanted = list(codes)
        deadline = time.monotonic() + timeout
        while len(self.for_codes(wanted)) < count:
            if time.monotonic() > deadline:
                got = [(s.event.code, type(s.event).__name__) for s in self.for_codes(wanted)]
                raise AssertionError(f"timed out after {timeout}s: {count} events for {wanted}, got {got}")
            await self.poll()
        return self.for_codes(wanted)


async def db() -> asyncpg.Connection:
    return await asyncpg.connect(POSTGRES_DSN)


async def outbox_rows(codes: Iterable[str]) -> list[asyncpg.Record]:
    conn = await db()
    try:
        return list(
            await conn.fetch(
                "SELECT id, event_id::text AS event_id, event_type, code, payload, published_at "
                "FROM shorten.outbox WHERE code = ANY($1::text[]) ORDER BY id",
                list(codes),
            )
        )
    finally:
        await conn.close()


async def link_row(code: str) -> asyncpg.Record | None:
    conn = await db()
    try:
        row: asyncpg.Record | None = await conn.fetchrow("SELECT * FROM shorten.links WHERE code = $1", code)
        return row
    finally:
        await conn.close()


def supervisorctl(*args: str) -> str:
    """Drive the stack's supervisord (destructive tests stop and start programs with it)."""
    root = Path(__file__).resolve().parents[3]
    result = subprocess.run(
        [str(root / ".venv/bin/supervisorctl"), "-c", str(root / ".local/supervisord.conf"), *args],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    return result.stdout + result.stderr


def program_state(name: str) -> str:
    """RUNNING, STOPPED, STARTING, ... of one supervised program."""
    fields = supervisorctl("status", name).split()
    return fields[1] if len(fields) > 1 else "UNKNOWN"
