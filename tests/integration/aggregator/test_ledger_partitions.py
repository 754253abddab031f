"""The record ledger partitioned by day (sql/postgres/030_record_ledger.sql): dedup stays exact
across partitions, the retention job creates the days ahead and drops the days past the
horizon, and an unpartitioned ledger of an existing data directory is converted by the migration."""

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta

import asyncpg
import pytest
from aggregator.adapters.postgres import INSERT_RECORDS, PostgresLedger
from aggregator.domain.click_records import ClickRecord, ClickRow
from aggregator.domain.retention import ledger_partition_name
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import Claimed, Decoded, SourceRecord

from tests.conftest import ROOT
from tests.integration.aggregator.support import POSTGRES_DSN, run_aggregator, unique_code

pytestmark = pytest.mark.integration

SQL = ROOT / "services/aggregator/adapters/sql/postgres"


def decoded(code: str, newest: datetime, *, record_id: str | None = None, offset: int = 0) -> Decoded:
    """One record of one click whose time is `newest` (whole seconds, as the decoder makes it)."""
    seconds = int(newest.timestamp())
    click = ClickRow(
        event_id=str(uuid.uuid4()),
        code=code,
        occurred_at=seconds,
        visitor_key="v",
        referrer="",
        referrer_host="",
        country="ZZ",
        device="desktop",
        is_bot=0,
    )
    source = SourceRecord(topic="clicks", partition=0, offset=offset, key=None, value=None, timestamp_ms=0)
    return Decoded(
        source=source, record=ClickRecord(record_id=record_id or str(uuid.uuid4()), rows=[click], newest=seconds)
    )


class Ledger:
    """PostgresLedger.claim, then its sink journal entry settled with no ClickHouse write: these
    records are made up by the test (their offsets are not in Kafka), and an entry left behind
    would send the workers' sink recovery after records that do not exist."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._ledger = PostgresLedger(pool, AggregatorMetrics())

    async def claim(self, records: list[Decoded]) -> Claimed:
        claimed = await self._ledger.claim(records)
        if claimed.sink_id is not None:
            await self._ledger.finish(claimed.sink_id, nothing_to_write)
        return claimed


async def nothing_to_write() -> None:
    return None


@asynccontextmanager
async def ledger() -> AsyncIterator[tuple[asyncpg.Pool, Ledger]]:
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2)
    try:
        yield pool, Ledger(pool)
    finally:
        await pool.close()


async def where(pool: asyncpg.Pool, record_id: str) -> list[str]:
    """The partitions holding rows of this record id (one, if dedup holds)."""
    rows = await pool.fetch(
        "SELECT tableoid::regclass::text AS part FROM clicks.record_ledger WHERE record_id = $1", uuid.UUID(record_id)
    )
    return [r["part"] for r in rows]


async def clicks_of(pool: asyncpg.Pool, code: str) -> int:
    return int(await pool.fetchval("SELECT coalesce(sum(clicks), 0) FROM clicks.link_totals WHERE code = $1", code))


def midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def test_a_copy_of_a_record_sent_after_midnight_is_refused_by_its_days_partition() -> None:
    """A record whose newest click is 23:59:59 yesterday, and its copy re-sent today (a producer
    retry across midnight): the partition key is the record's own newest click, not the time of
    arrival, so the copy goes to yesterday's partition and conflicts there."""
    today = datetime.now(UTC).date()
    code = unique_code("pday")
    late = midnight(today) - timedelta(seconds=1)
    first = decoded(code, late, offset=1)
    async with ledger() as (pool, sink):
        assert len((await sink.claim([first])).new) == 1
        copy = decoded(code, late, record_id=str(first.record.record_id), offset=2)
        other = decoded(code, midnight(today), offset=3)  # a new record, newest click 00:00:00 today
        again = await sink.claim([copy, other])
        assert [d.record.record_id for d in again.new] == [other.record.record_id]
        assert await where(pool, str(first.record.record_id)) == [
            f"clicks.{ledger_partition_name(today - timedelta(days=1))}"
        ]
        assert await clicks_of(pool, code) == 2


async def test_a_record_in_the_default_partition_is_still_a_duplicate_once_its_day_is_created() -> None:
    """A day that has no partition yet (the retention job was down): its records wait in the
    DEFAULT partition; creating the day moves them, and a copy arriving after the move conflicts
    with the moved row. Counted once."""
    # A day far enough ahead that neither the migration nor a retention run has created it.
    day = datetime.now(UTC).date() + timedelta(days=40 + secrets.randbelow(300))
    part = ledger_partition_name(day)
    code = unique_code("pdef")
    at = midnight(day) + timedelta(hours=12)
    first = decoded(code, at, offset=1)
    record_id = str(first.record.record_id)
    async with ledger() as (pool, sink):
        try:
            assert await pool.fetchval("SELECT to_regclass($1)", f"clicks.{part}") is None
            assert len((await sink.claim([first])).new) == 1
            assert await where(pool, record_id) == ["clicks.record_ledger_default"]
            copy = decoded(code, at, record_id=record_id, offset=2)
            assert (await sink.claim([copy])).new == []  # a duplicate inside the default partition

            assert await pool.fetchval("SELECT clicks.create_record_ledger_day($1)", day) is True
            assert await pool.fetchval("SELECT clicks.create_record_ledger_day($1)", day) is False  # idempotent
            assert await where(pool, record_id) == [f"clicks.{part}"]  # moved, not copied
            assert (await sink.claim([copy])).new == []  # and still a duplicate there
            assert await clicks_of(pool, code) == 1
        finally:
            await pool.execute(f'DROP TABLE IF EXISTS clicks."{part}"')
            await pool.execute("DELETE FROM clicks.record_ledger_default WHERE record_id = $1", uuid.UUID(record_id))


async def test_retention_creates_the_week_ahead_and_drops_whole_days_past_the_horizon() -> None:
    now = datetime.now(UTC)
    today = now.date()
    old_day = today - timedelta(days=12)  # past the default 8-day horizon
    kept_day = today - timedelta(days=7)  # inside it
    code = unique_code("pret")
    old, kept = decoded(code, midnight(old_day) + timedelta(hours=1)), decoded(code, midnight(kept_day), offset=1)
    async with ledger() as (pool, sink):
        await pool.fetchval("SELECT clicks.create_record_ledger_day($1)", old_day)
        await pool.fetchval("SELECT clicks.create_record_ledger_day($1)", kept_day)
        # A day ahead that the job must (re)create.
        ahead = ledger_partition_name(today + timedelta(days=7))
        await pool.execute(f'DROP TABLE IF EXISTS clicks."{ahead}"')
        assert len((await sink.claim([old, kept])).new) == 2

        dry = run_aggregator("retention", "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert f"would drop ledger partition {ledger_partition_name(old_day)}" in dry.stdout
        assert f"would create ledger partition {ahead}" in dry.stdout
        assert await pool.fetchval("SELECT to_regclass($1)", f"clicks.{ahead}") is None

        result = run_aggregator("retention")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"dropping ledger partition {ledger_partition_name(old_day)}" in result.stdout
        names = {
            r["relname"]
            for r in await pool.fetch(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = 'clicks.record_ledger'::regclass"
            )
        }
        assert ledger_partition_name(old_day) not in names
        assert {ledger_partition_name(today + timedelta(days=n)) for n in range(8)} <= names
        assert ledger_partition_name(kept_day) in names
        assert await where(pool, str(kept.record.record_id)) == [f"clicks.{ledger_partition_name(kept_day)}"]
        assert await where(pool, str(old.record.record_id)) == []
        # Row-by-row deletes only in the default partition (normally empty).
        assert "default-partition ledger rows older than" in result.stdout


async def test_an_unpartitioned_ledger_of_an_existing_data_directory_is_converted_by_the_migration() -> None:
    """A database migrated before the partitioning (the old 030 file's table, with rows) is
    converted when `just migrate` applies the schema files again: rows kept, duplicates still
    refused, applying the files once more changes nothing.

    Run on a scratch schema in place of `clicks` (the stack's role may not create databases, and
    the live ledger is the running aggregator's): the schema files with `clicks.` renamed."""
    schema = f"pggrowth_conv_{secrets.token_hex(4)}"

    def as_scratch(sql: str) -> str:
        return sql.replace("SCHEMA IF NOT EXISTS clicks;", f"SCHEMA IF NOT EXISTS {schema};").replace(
            "clicks.", f"{schema}."
        )

    conn = await asyncpg.connect(POSTGRES_DSN)
    try:
        await conn.execute(as_scratch((SQL / "010_clicks.sql").read_text()))
        await conn.execute(as_scratch(OLD_LEDGER))
        recent = datetime.now(UTC) - timedelta(days=1, microseconds=250_000)
        ids = [uuid.uuid4() for _ in range(3)]
        await conn.executemany(
            f"INSERT INTO {schema}.record_ledger (record_id, newest_at, clicks) VALUES ($1, $2, 1)",
            [(i, recent) for i in ids],
        )
        for _ in range(2):  # the first run converts, the second finds nothing to do
            for path in sorted(SQL.glob("*.sql")):
                await conn.execute(as_scratch(path.read_text()))
            kind = await conn.fetchval(
                f"SELECT relkind::text FROM pg_class WHERE oid = '{schema}.record_ledger'::regclass"
            )
            assert kind == "p"
            held = await conn.fetchval(f"SELECT count(*) FROM {schema}.record_ledger WHERE record_id = ANY($1)", ids)
            assert held == 3
        assert await conn.fetchval(f"SELECT to_regclass('{schema}.record_ledger_unpartitioned')") is None
        # The aggregator's own insert sees them as duplicates (whole seconds, as it writes them).
        inserted = await conn.fetch(
            INSERT_RECORDS.replace("clicks.", f"{schema}."), ids, [int(recent.timestamp())] * 3, [1, 1, 1]
        )
        assert inserted == []
    finally:
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        await conn.close()


# The ledger as services/aggregator/adapters/sql/postgres/030_record_ledger.sql created it before
# the partitioning (commit a8e51cd).
OLD_LEDGER = """
CREATE TABLE IF NOT EXISTS clicks.record_ledger (
    record_id   uuid        PRIMARY KEY,
    newest_at   timestamptz NOT NULL,
    clicks      integer     NOT NULL CHECK (clicks > 0),
    recorded_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS record_ledger_newest_brin ON clicks.record_ledger USING brin (newest_at);
"""
