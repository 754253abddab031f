"""PostgreSQL: the event-id ledger and the link totals, one statement (= one transaction) per batch.

`record` inserts the batch's event ids into clicks.event_ledger with ON CONFLICT DO NOTHING and
adds only the rows that were really inserted to clicks.link_totals, in the same statement:
either the whole batch is counted once or nothing is. A repeated id is never counted again.
"""

import time
from collections.abc import Sequence
from datetime import UTC, datetime

import asyncpg
from contracts.links import LinkDeleted, LinkEvent

from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.domain.clicks import ClickRow
from aggregator.domain.windows import merge_counts
from aggregator.ports import LedgerResult

# Data-modifying CTEs run exactly once, whether or not the final SELECT reads them.
# ORDER BY code/event_id: concurrent writers (three workers, a replay) lock rows in the same
# order, which avoids deadlocks; a deadlock that still happens is retried by the pipeline.
RECORD_BATCH = """
WITH incoming AS (
    SELECT * FROM unnest($1::uuid[], $2::text[], $3::bigint[], $4::boolean[])
        AS t(event_id, code, occurred_s, is_bot)
), inserted AS (
    INSERT INTO clicks.event_ledger (event_id, code, occurred_at, is_bot)
    SELECT event_id, code, to_timestamp(occurred_s), is_bot FROM incoming ORDER BY event_id
    ON CONFLICT (event_id) DO NOTHING
    RETURNING code, occurred_at, is_bot
), per_code AS (
    SELECT code,
           count(*) FILTER (WHERE NOT is_bot) AS clicks,
           count(*) FILTER (WHERE is_bot) AS bot_clicks,
           min(occurred_at) AS first_at,
           max(occurred_at) AS last_at
    FROM inserted GROUP BY code
), totals AS (
    INSERT INTO clicks.link_totals AS t (code, clicks, bot_clicks, first_click_at, last_click_at)
    SELECT code, clicks, bot_clicks, first_at, last_at FROM per_code ORDER BY code
    ON CONFLICT (code) DO UPDATE SET
        clicks = t.clicks + excluded.clicks,
        bot_clicks = t.bot_clicks + excluded.bot_clicks,
        first_click_at = least(t.first_click_at, excluded.first_click_at),
        last_click_at = greatest(t.last_click_at, excluded.last_click_at),
        updated_at = now()
    RETURNING 1
)
SELECT code, date_trunc('minute', occurred_at) AS minute, is_bot, count(*) AS n
FROM inserted GROUP BY code, minute, is_bot
"""

UPSERT_LINK = """
INSERT INTO clicks.links_known AS k (code, created_at, deleted_at, last_event_at)
VALUES ($1, $2, $3, $2)
ON CONFLICT (code) DO UPDATE SET
    deleted_at = CASE WHEN excluded.last_event_at >= k.last_event_at THEN excluded.deleted_at
                      ELSE k.deleted_at END,
    created_at = least(k.created_at, excluded.created_at),
    last_event_at = greatest(k.last_event_at, excluded.last_event_at)
"""

PRUNE_LEDGER = """
WITH doomed AS (
    SELECT event_id FROM clicks.event_ledger WHERE occurred_at < $1 LIMIT $2
)
DELETE FROM clicks.event_ledger l USING doomed WHERE l.event_id = doomed.event_id
"""


SAVE_FRONTIER = """
INSERT INTO clicks.consumer_frontier AS f (topic, partition, next_offset)
SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS t(p, o)
ON CONFLICT (topic, partition) DO UPDATE SET
    next_offset = greatest(f.next_offset, excluded.next_offset), updated_at = now()
"""


async def create_pool(dsn: str, *, size: int) -> asyncpg.Pool:
    return await asyncpg.create_pool(dsn, min_size=1, max_size=size, command_timeout=60)


class PostgresLedger:
    def __init__(self, pool: asyncpg.Pool, metrics: AggregatorMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def record(self, rows: Sequence[ClickRow]) -> LedgerResult:
        started = time.perf_counter()
        async with self._pool.acquire() as conn:
            result = await conn.fetch(
                RECORD_BATCH,
                [r.event_id for r in rows],
                [r.code for r in rows],
                [r.occurred_at for r in rows],
                [r.is_bot == 1 for r in rows],
            )
        self._metrics.postgres_write_seconds.observe(time.perf_counter() - started)
        counts = merge_counts([(r["code"], r["minute"], r["is_bot"], r["n"]) for r in result])
        inserted = sum(c.clicks + c.bot_clicks for c in counts)
        return LedgerResult(inserted=inserted, duplicates=len(rows) - inserted, new_counts=counts)

    async def ping(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")


class PostgresLinks:
    """clicks.links_known from the `links` topic: which codes exist (for analytics' 404)."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def apply(self, events: Sequence[LinkEvent]) -> None:
        args = [
            (
                e.code,
                e.occurred_at if e.occurred_at.tzinfo else e.occurred_at.replace(tzinfo=UTC),
                e.occurred_at if isinstance(e, LinkDeleted) else None,
            )
            for e in events
        ]
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(UPSERT_LINK, args)


async def prune_ledger(pool: asyncpg.Pool, *, before: datetime, chunk: int = 50_000) -> int:
    """Delete ledger rows of events that occurred before `before`, in chunks. Returns the count."""
    total = 0
    async with pool.acquire() as conn:
        while True:
            status = await conn.execute(PRUNE_LEDGER, before, chunk)
            deleted = int(status.split()[-1])
            total += deleted
            if deleted < chunk:
                return total


class PostgresFrontier:
    """clicks.consumer_frontier: never moves backwards (greatest), so a late writer is harmless."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, topic: str, partitions: list[int]) -> dict[int, int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT partition, next_offset FROM clicks.consumer_frontier "
                "WHERE topic = $1 AND partition = ANY($2::int[])", topic, partitions)
        return {r["partition"]: r["next_offset"] for r in rows}

    async def save(self, topic: str, frontier: dict[int, int]) -> None:
        if not frontier:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(SAVE_FRONTIER, topic, list(frontier), list(frontier.values()))
