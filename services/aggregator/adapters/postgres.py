"""PostgreSQL: the record-id ledger, the link totals, the sink journal (one transaction per
batch), plus the links the aggregator has seen and its own progress per partition.

`claim` inserts the batch's record ids into clicks.record_ledger with ON CONFLICT DO NOTHING,
adds only the clicks of the records that were really inserted to clicks.link_totals, and writes
a clicks.sink_journal entry naming those records (partition, offset), all in one transaction:
either the whole batch is counted once or nothing is. `finish` removes the entry under its row
lock once ClickHouse holds the clicks; an entry left by a killed worker is found by `pending`.
"""

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime

import asyncpg
import uuid_utils
from contracts.links import LinkDeleted, LinkEvent

from aggregator.domain.retention import LEDGER_PARTITION_RE
from aggregator.domain.windows import code_totals
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import Claimed, Decoded

INSERT_RECORDS = """
INSERT INTO clicks.record_ledger (record_id, newest_at, clicks)
SELECT id, to_timestamp(newest), n FROM unnest($1::uuid[], $2::bigint[], $3::int[]) AS t(id, newest, n)
ORDER BY id
ON CONFLICT (record_id, newest_at) DO NOTHING
RETURNING record_id
"""

# ORDER BY code: concurrent writers (three workers, a replay) lock rows in the same order, which
# avoids deadlocks; a deadlock that still happens is retried by the pipeline.
ADD_TOTALS = """
INSERT INTO clicks.link_totals AS t (code, clicks, bot_clicks, first_click_at, last_click_at)
SELECT code, c, b, to_timestamp(f), to_timestamp(l)
FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[]) AS u(code, c, b, f, l)
ORDER BY code
ON CONFLICT (code) DO UPDATE SET
    clicks = t.clicks + excluded.clicks,
    bot_clicks = t.bot_clicks + excluded.bot_clicks,
    first_click_at = least(t.first_click_at, excluded.first_click_at),
    last_click_at = greatest(t.last_click_at, excluded.last_click_at),
    updated_at = now()
"""

JOURNAL = """
INSERT INTO clicks.sink_journal (sink_id, topic, partitions, offsets, codes)
VALUES ($1, $2, $3::int[], $4::bigint[], $5::text[])
"""


@dataclass(frozen=True, kw_only=True)
class JournalEntry:
    """A batch whose clicks PostgreSQL counted and ClickHouse may not hold yet."""

    sink_id: uuid.UUID
    topic: str
    offsets: dict[int, list[int]]  # partition -> offsets of the records to write
    codes: list[str] | None  # only these codes' clicks (a rebuild); None: every click
    created_at: datetime


class PostgresLedger:
    """Ledger port: record ids, totals and the sink journal."""

    def __init__(self, pool: asyncpg.Pool, metrics: AggregatorMetrics) -> None:
        self._pool = pool
        self._metrics = metrics

    async def claim(self, records: Sequence[Decoded], *, only_codes: Sequence[str] | None = None) -> Claimed:
        started = time.perf_counter()
        async with self._pool.acquire() as conn, conn.transaction():
            inserted = await conn.fetch(
                INSERT_RECORDS,
                [d.record.record_id for d in records],
                [d.record.newest for d in records],
                [len(d.record.rows) for d in records],
            )
            fresh = {str(r["record_id"]) for r in inserted}
            new = [d for d in records if str(d.record.record_id) in fresh]
            sink_id = None
            if new:
                totals = code_totals(row for d in new for row in d.record.rows)
                await conn.execute(ADD_TOTALS, *totals)
                sink_id = uuid.UUID(bytes=uuid_utils.uuid7().bytes)
                await conn.execute(
                    JOURNAL,
                    sink_id,
                    new[0].source.topic,
                    [d.source.partition for d in new],
                    [d.source.offset for d in new],
                    None if only_codes is None else list(only_codes),
                )
        self._metrics.postgres_write_seconds.observe(time.perf_counter() - started)
        return Claimed(new=new, sink_id=sink_id)

    async def finish(self, sink_id: uuid.UUID, write: Callable[[], Awaitable[None]]) -> None:
        while True:
            async with self._pool.acquire() as conn, conn.transaction():
                held = await conn.fetchval(
                    "SELECT true FROM clicks.sink_journal WHERE sink_id = $1 FOR UPDATE SKIP LOCKED", sink_id
                )
                if held:
                    await write()
                    await conn.execute("DELETE FROM clicks.sink_journal WHERE sink_id = $1", sink_id)
                    return
                exists = await conn.fetchval("SELECT true FROM clicks.sink_journal WHERE sink_id = $1", sink_id)
            if not exists:
                return  # another process finished it
            await asyncio.sleep(0.5)  # another process (recovery) is writing it: wait for it to finish

    @asynccontextmanager
    async def pending(self, *, older_than_s: float, limit: int) -> AsyncIterator["HeldEntries"]:
        """Journal entries older than `older_than_s` that nobody holds, locked for the caller
        until the block ends (one transaction); `HeldEntries.done` removes one."""
        async with self._pool.acquire() as conn, conn.transaction():
            rows = await conn.fetch(
                "SELECT sink_id, topic, partitions, offsets, codes, created_at FROM clicks.sink_journal "
                "WHERE created_at < now() - make_interval(secs => $1) ORDER BY created_at LIMIT $2 "
                "FOR UPDATE SKIP LOCKED",
                older_than_s,
                limit,
            )
            entries = []
            for r in rows:
                offsets: dict[int, list[int]] = {}
                for p, o in zip(r["partitions"], r["offsets"], strict=True):
                    offsets.setdefault(p, []).append(o)
                entries.append(
                    JournalEntry(
                        sink_id=r["sink_id"],
                        topic=r["topic"],
                        offsets=offsets,
                        codes=r["codes"],
                        created_at=r["created_at"],
                    )
                )
            yield HeldEntries(entries=entries, conn=conn)

    async def ping(self) -> None:
        async with self._pool.acquire() as conn:
            await conn.fetchval("SELECT 1")


@dataclass(frozen=True, kw_only=True)
class HeldEntries:
    """Journal entries locked by `PostgresLedger.pending` for the length of its block."""

    entries: list[JournalEntry]
    conn: asyncpg.Connection

    async def done(self, sink_id: uuid.UUID) -> None:
        """The entry's clicks are in ClickHouse: remove it (committed when the block ends)."""
        await self.conn.execute("DELETE FROM clicks.sink_journal WHERE sink_id = $1", sink_id)


# The newest event (by occurred_at) decides the owner, public_stats and tags; a deletion keeps the
# owner and the tags (its stats stay the owner's) and makes the stats private. Replays apply the
# same events again: the same answer.
UPSERT_LINK = """
INSERT INTO clicks.links_known AS k (code, created_at, deleted_at, last_event_at, workspace, public_stats, tags)
VALUES ($1, $2, $3, $2, $4, $5, coalesce($6::text[], '{}'))
ON CONFLICT (code) DO UPDATE SET
    deleted_at = CASE WHEN excluded.last_event_at >= k.last_event_at THEN excluded.deleted_at
                      ELSE k.deleted_at END,
    workspace = CASE WHEN excluded.last_event_at >= k.last_event_at THEN excluded.workspace
                     ELSE k.workspace END,
    public_stats = CASE WHEN excluded.last_event_at >= k.last_event_at THEN excluded.public_stats
                        ELSE k.public_stats END,
    tags = CASE WHEN excluded.last_event_at >= k.last_event_at AND $6::text[] IS NOT NULL THEN excluded.tags
                ELSE k.tags END,
    created_at = least(k.created_at, excluded.created_at),
    last_event_at = greatest(k.last_event_at, excluded.last_event_at)
"""

# The ledger's daily partitions (sql/postgres/030_record_ledger.sql), by name.
LEDGER_PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'clicks.record_ledger'::regclass ORDER BY c.relname
"""


SAVE_FRONTIER = """
INSERT INTO clicks.consumer_frontier AS f (topic, partition, next_offset)
SELECT $1, p, o FROM unnest($2::int[], $3::bigint[]) AS t(p, o)
ON CONFLICT (topic, partition) DO UPDATE SET
    next_offset = greatest(f.next_offset, excluded.next_offset), updated_at = now()
"""


async def create_pool(dsn: str, *, size: int, statement_cache_size: int = 100) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        dsn, min_size=1, max_size=size, command_timeout=60, statement_cache_size=statement_cache_size
    )


class PostgresLinks:
    """clicks.links_known from the `links` topic: which codes exist (for analytics' 404), their
    workspace, whether their stats are public, their tags."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def apply(self, events: Sequence[LinkEvent]) -> None:
        args: list[tuple[str, datetime, datetime | None, str, bool, list[str] | None]] = []
        for e in events:
            at = e.occurred_at if e.occurred_at.tzinfo else e.occurred_at.replace(tzinfo=UTC)
            if isinstance(e, LinkDeleted):
                args.append((e.code, at, at, e.workspace, False, None))
            else:
                args.append((e.code, at, None, e.workspace, e.public_stats, list(e.tags)))
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.executemany(UPSERT_LINK, args)

    async def owners(self) -> AsyncIterator[list[tuple[str, str, list[str], bool, datetime]]]:
        """Every known link as (code, workspace, tags, deleted, last event), in chunks (backfill)."""
        async with self._pool.acquire() as conn, conn.transaction():
            cursor = conn.cursor(
                "SELECT code, workspace, tags, deleted_at IS NOT NULL AS deleted, last_event_at "
                "FROM clicks.links_known ORDER BY code"
            )
            chunk: list[tuple[str, str, list[str], bool, datetime]] = []
            async for r in cursor:
                chunk.append((r["code"], r["workspace"], list(r["tags"]), r["deleted"], r["last_event_at"]))
                if len(chunk) >= 5000:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk


class LedgerPartitions:
    """The record ledger's daily partitions: listed, created ahead, dropped past the horizon.
    Which ones is decided by aggregator.domain.retention; this only runs the DDL."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def names(self) -> list[str]:
        async with self._pool.acquire() as conn:
            return [r["relname"] for r in await conn.fetch(LEDGER_PARTITIONS)]

    async def create(self, day: date) -> bool:
        """Create one day's partition (moving its rows out of the DEFAULT partition); False
        when it existed."""
        async with self._pool.acquire() as conn:
            return bool(await conn.fetchval("SELECT clicks.create_record_ledger_day($1)", day))

    async def drop(self, name: str) -> None:
        """Detach and drop one partition: the whole day goes at once, no row-by-row DELETE."""
        if LEDGER_PARTITION_RE.fullmatch(name) is None:
            raise ValueError(f"not a daily ledger partition: {name!r}")
        async with self._pool.acquire() as conn:
            await conn.execute(f'DROP TABLE IF EXISTS clicks."{name}"')

    async def prune_default(self, *, before: datetime) -> int:
        """Rows of the DEFAULT partition (days that had no partition when written) older than
        the horizon: normally none, so a DELETE is the right tool there."""
        async with self._pool.acquire() as conn:
            status = await conn.execute("DELETE FROM clicks.record_ledger_default WHERE newest_at < $1", before)
        return int(status.split()[-1])


class PostgresFrontier:
    """clicks.consumer_frontier: never moves backwards (greatest), so a late writer is harmless."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def load(self, topic: str, partitions: list[int]) -> dict[int, int]:
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT partition, next_offset FROM clicks.consumer_frontier "
                "WHERE topic = $1 AND partition = ANY($2::int[])",
                topic,
                partitions,
            )
        return {r["partition"]: r["next_offset"] for r in rows}

    async def save(self, topic: str, frontier: dict[int, int]) -> None:
        if not frontier:
            return
        async with self._pool.acquire() as conn:
            await conn.execute(SAVE_FRONTIER, topic, list(frontier), list(frontier.values()))
