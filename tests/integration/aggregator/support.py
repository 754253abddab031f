"""Helpers for pipeline tests against the real stack: a clicks producer (a legitimate producer of
the topic, through contracts.clicks), and readers of both sinks. Also used by tests/e2e."""

import asyncio
import base64
import os
import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import TracebackType

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import murmur2
from contracts import clicks, deadletter
from contracts.deadletter import MessageDeadLettered
from platformkit.kafka import topic_partitions

from tests.conftest import ROOT, wait_until_async

KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
TOPIC_CLICKS = os.environ.get("TOPIC_CLICKS", "clicks")
TOPIC_DEADLETTER = os.environ.get("TOPIC_DEADLETTER", "deadletter")
POSTGRES_DSN = os.environ.get("POSTGRES_DSN", "postgresql://shortlink:shortlink@127.0.0.1:5433/shortlink")
CLICKHOUSE_URL = os.environ.get("CLICKHOUSE_URL", "http://127.0.0.1:18123")
CLICKHOUSE_DB = os.environ.get("CLICKHOUSE_DATABASE", "shortlink")
WORKER_PORTS = [int(p) for p in os.environ.get("AGGREGATOR_WEB_PORTS", "6061,6062,6063").split(",")]
CH_TABLES = ("click_events", "clicks_totals", "clicks_breakdown", "clicks_top")
GRAINS = {"minute": 0, "hour": 1, "day": 2}
REFERRERS = (None, "https://www.news.example/a", "https://social.example/p?q=1", "https://news.example/b")
COUNTRIES = ("DE", "FR", "US", "ZZ")


def unique_code(prefix: str = "p") -> str:
    return f"{prefix}{secrets.token_hex(6)}"


def make_click(code: str, i: int, *, bot: bool = False, at: datetime | None = None) -> clicks.LinkClicked:
    """A varied but deterministic click: visitors, referrers, countries and devices rotate."""
    return clicks.LinkClicked(
        event_id=str(uuid.uuid4()),
        occurred_at=at or datetime.now(UTC),
        code=code,
        referrer=REFERRERS[i % len(REFERRERS)],
        user_agent="bot/1.0" if bot else "Mozilla/5.0",
        visitor_key=f"visitor-{i % 7}",
        device="bot" if bot else ("mobile" if i % 2 else "desktop"),
        is_bot=bot,
        country=COUNTRIES[i % len(COUNTRIES)],
    )


def as_batch_click(event: clicks.LinkClicked) -> clicks.Click:
    return clicks.Click(
        event_id=uuid.UUID(event.event_id),
        occurred_at=event.occurred_at,
        code=event.code,
        referrer=event.referrer,
        user_agent=event.user_agent,
        visitor_key=event.visitor_key,
        device=event.device,
        is_bot=event.is_bot,
        country=event.country,
    )


def partition_of(code: str, partitions: int) -> int:
    """Kafka's default partitioner for a key (what the redirect uses to group its batches)."""
    return int(murmur2(code.encode()) & 0x7FFFFFFF) % partitions


def batches(
    events: Sequence[clicks.LinkClicked], *, partitions: int, size: int = 500, producer: str = "test"
) -> list[tuple[int, clicks.ClicksBatched]]:
    """Group clicks as the redirect does: per partition of their code, at most `size` per record."""
    by_partition: dict[int, list[clicks.Click]] = {}
    for event in events:
        by_partition.setdefault(partition_of(event.code, partitions), []).append(as_batch_click(event))
    out = []
    for partition, items in sorted(by_partition.items()):
        for i in range(0, len(items), size):
            out.append(
                (
                    partition,
                    clicks.ClicksBatched(batch_id=uuid.uuid4(), producer=producer, clicks=tuple(items[i : i + size])),
                )
            )
    return out


@dataclass(frozen=True)
class Expected:
    clicks: int
    bot_clicks: int


class ClickProducer:
    """aiokafka producer for the clicks topic (acks=all; every send awaited)."""

    def __init__(self) -> None:
        self._producer = AIOKafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=5, request_timeout_ms=30000)

    async def __aenter__(self) -> "ClickProducer":
        await self._producer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._producer.stop()

    async def send(self, events: Sequence[clicks.LinkClicked]) -> None:
        """Single-click records (the previous format, key = code)."""
        futures = [await self._producer.send(TOPIC_CLICKS, clicks.encode(e), key=clicks.key(e)) for e in events]
        await asyncio.gather(*futures)

    async def send_batches(self, records: Sequence[tuple[int, clicks.ClicksBatched]]) -> None:
        """Batch records (the current format: no key, the partition of their codes)."""
        futures = [await self._producer.send(TOPIC_CLICKS, clicks.encode(b), partition=p) for p, b in records]
        await asyncio.gather(*futures)

    async def partitions(self) -> int:
        return len(await self._producer.partitions_for(TOPIC_CLICKS))

    async def send_raw(self, key: bytes, value: bytes) -> tuple[int, int]:
        meta = await (await self._producer.send(TOPIC_CLICKS, value, key=key))
        return meta.partition, meta.offset


class Stores:
    """Read (and, for rebuild tests, empty) both sinks for given codes."""

    def __init__(self) -> None:
        self.pg: asyncpg.Connection | None = None
        self.ch = httpx.AsyncClient(base_url=CLICKHOUSE_URL, timeout=60)

    async def __aenter__(self) -> "Stores":
        self.pg = await asyncpg.connect(POSTGRES_DSN)
        return self

    async def __aexit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        await self.ch.aclose()
        if self.pg is not None:
            await self.pg.close()

    async def query(self, sql: str) -> list[list[str]]:
        r = await self.ch.post("/", params={"database": CLICKHOUSE_DB}, content=sql.encode())
        assert r.status_code == 200, r.text
        return [line.split("\t") for line in r.text.splitlines() if line]

    async def pg_totals(self, code: str) -> Expected | None:
        assert self.pg is not None
        row = await self.pg.fetchrow("SELECT clicks, bot_clicks FROM clicks.link_totals WHERE code = $1", code)
        return None if row is None else Expected(row["clicks"], row["bot_clicks"])

    async def ledger_has(self, record_ids: Sequence[str]) -> int:
        """How many of these record ids the dedup ledger holds."""
        assert self.pg is not None
        return int(
            await self.pg.fetchval(
                "SELECT count(*) FROM clicks.record_ledger WHERE record_id = ANY($1::uuid[])", list(record_ids)
            )
        )

    async def journal_entries(self) -> int:
        """ClickHouse writes PostgreSQL has counted and ClickHouse may not hold yet."""
        assert self.pg is not None
        return int(await self.pg.fetchval("SELECT count(*) FROM clicks.sink_journal"))

    async def ch_raw(self, code: str) -> Expected:
        rows = await self.query(
            f"SELECT is_bot, uniqExact(event_id) FROM click_events WHERE code = '{code}' GROUP BY is_bot"
        )
        found = {int(b): int(n) for b, n in rows}
        return Expected(found.get(0, 0), found.get(1, 0))

    async def ch_rollup(self, code: str, grain: str) -> Expected:
        rows = await self.query(
            f"SELECT is_bot, sum(clicks) FROM clicks_totals WHERE code = '{code}' AND grain = {GRAINS[grain]} "
            "AND is_bot IN (0, 1) GROUP BY is_bot"
        )
        found = {int(b): int(n) for b, n in rows}
        return Expected(found.get(0, 0), found.get(1, 0))

    async def ch_breakdown(self, code: str, grain: str) -> Expected:
        """Clicks in the breakdowns (one (referrer, country, device) combination per click)."""
        rows = await self.query(
            f"SELECT is_bot, sum(clicks) FROM clicks_breakdown WHERE code = '{code}' AND grain = {GRAINS[grain]} "
            "AND is_bot IN (0, 1) GROUP BY is_bot"
        )
        found = {int(b): int(n) for b, n in rows}
        return Expected(found.get(0, 0), found.get(1, 0))

    async def ch_top(self, code: str, grain: str) -> Expected:
        rows = await self.query(
            f"SELECT is_bot, sum(clicks) FROM clicks_top WHERE grain = {GRAINS[grain]} AND code = '{code}' "
            "AND is_bot IN (0, 1) GROUP BY is_bot"
        )
        found = {int(b): int(n) for b, n in rows}
        return Expected(found.get(0, 0), found.get(1, 0))

    async def ch_dims(self, code: str) -> list[list[str]]:
        return await self.query(
            "SELECT d.1 AS dim, d.2 AS value, is_bot, toUnixTimestamp(bucket), sum(clicks) FROM clicks_breakdown "
            "ARRAY JOIN [('country', toString(country)), ('device', device), ('referrer', referrer_host)] AS d "
            f"WHERE code = '{code}' AND grain = 0 AND is_bot IN (0, 1) "
            "GROUP BY dim, value, is_bot, bucket ORDER BY dim, value, is_bot, bucket"
        )

    async def ch_minutes(self, code: str) -> list[list[str]]:
        return await self.query(
            "SELECT is_bot, toUnixTimestamp(bucket), sum(clicks), uniqMerge(visitors) FROM clicks_totals "
            f"WHERE code = '{code}' AND grain = 0 AND is_bot IN (0, 1) "
            "GROUP BY is_bot, bucket ORDER BY is_bot, bucket"
        )

    async def wait_counted(self, code: str, expected: Expected, *, timeout: float = 60) -> None:
        async def done() -> bool:
            return await self.pg_totals(code) == expected and await self.ch_raw(code) == expected

        await wait_until_async(done, timeout=timeout, interval=0.2, what=f"{code} counted as {expected}")

    async def forget(self, codes: Sequence[str]) -> None:
        """Empty both sinks for these codes (PostgreSQL totals, ClickHouse rows; mutations awaited).
        The record ledger is left alone: it is shared by every code a record holds."""
        assert self.pg is not None
        await self.pg.execute("DELETE FROM clicks.link_totals WHERE code = ANY($1)", list(codes))
        listed = ", ".join(f"'{c}'" for c in codes)
        for table in CH_TABLES:
            await self.query(f"ALTER TABLE {table} DELETE WHERE code IN ({listed})")

        async def mutations_done() -> bool:
            rows = await self.query(
                "SELECT count() FROM system.mutations WHERE database = currentDatabase() AND is_done = 0"
            )
            return rows == [["0"]]

        await wait_until_async(mutations_done, timeout=120, interval=0.2, what="ClickHouse mutations")


async def deadletters_after(
    start: dict[int, int], *, until: Callable[[list[MessageDeadLettered]], bool], timeout: float = 60
) -> list[MessageDeadLettered]:
    """Dead-letter records published after `start` offsets, read until `until(records)` holds."""
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None, enable_auto_commit=False)
    await consumer.start()
    found: list[MessageDeadLettered] = []
    try:
        tps = [TopicPartition(TOPIC_DEADLETTER, p) for p in start]
        consumer.assign(tps)
        for tp in tps:
            consumer.seek(tp, start[tp.partition])
        deadline = asyncio.get_running_loop().time() + timeout
        while not until(found):
            assert asyncio.get_running_loop().time() < deadline, f"dead letters so far: {found}"
            batch = await consumer.getmany(timeout_ms=200)
            found.extend(deadletter.decode(m.value) for msgs in batch.values() for m in msgs)
        return found
    finally:
        await consumer.stop()


async def end_offsets(topic: str) -> dict[int, int]:
    tps = [TopicPartition(topic, p) for p in await topic_partitions(KAFKA, topic)]
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA, group_id=None)
    await consumer.start()
    try:
        return {tp.partition: off for tp, off in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


def key_b64(code: str) -> str:
    return base64.b64encode(code.encode()).decode()


def run_aggregator(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """Run an aggregator command the way an operator does (`python -m aggregator ...`)."""
    return subprocess.run(
        [sys.executable, "-m", "aggregator", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def seconds_ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)
