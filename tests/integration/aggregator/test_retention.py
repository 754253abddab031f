"""`python -m aggregator retention`: old ClickHouse partitions dropped from every table, the
PostgreSQL record ledger pruned past the dedup horizon, recent data untouched."""

import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from aggregator.adapters.clickhouse import ClickHouse, ClickHouseEvents, build_client
from aggregator.adapters.postgres import PostgresLedger
from aggregator.domain.click_records import ClickRecord, ClickRow
from aggregator.metrics import AggregatorMetrics
from aggregator.ports import Decoded, SourceRecord

from tests.integration.aggregator.support import (
    CH_TABLES,
    CLICKHOUSE_DB,
    CLICKHOUSE_URL,
    POSTGRES_DSN,
    Stores,
    run_aggregator,
    unique_code,
)

pytestmark = pytest.mark.integration


def row(code: str, at: datetime) -> ClickRow:
    return ClickRow(
        event_id=str(uuid.uuid4()),
        code=code,
        occurred_at=int(at.timestamp()),
        visitor_key="v",
        referrer="",
        referrer_host="",
        country="ZZ",
        device="desktop",
        is_bot=0,
    )


async def settled() -> None:
    return None


def record(click: ClickRow, *, offset: int) -> Decoded:
    source = SourceRecord(topic="clicks", partition=0, offset=offset, key=None, value=None, timestamp_ms=0)
    return Decoded(
        source=source, record=ClickRecord(record_id=str(uuid.uuid4()), rows=[click], newest=click.occurred_at)
    )


async def test_retention_drops_old_partitions_and_prunes_the_ledger() -> None:
    now = datetime.now(UTC)
    code = unique_code("ret")
    ancient = now - timedelta(days=800)  # far beyond the 13 kept months
    old_partition = ancient.strftime("%Y%m")
    past_horizon, inside_horizon = now - timedelta(days=9), now - timedelta(days=1)
    # Seed through the sinks' own adapters (the live stream refuses events this old).
    metrics = AggregatorMetrics()
    http = build_client(CLICKHOUSE_URL, database=CLICKHOUSE_DB, timeout_s=30)
    pool = await asyncpg.create_pool(POSTGRES_DSN, min_size=1, max_size=2)
    records = [record(row(code, past_horizon), offset=0), record(row(code, inside_horizon), offset=1)]
    try:
        await ClickHouseEvents(ClickHouse(http), metrics).write(
            uuid.uuid4(), [row(code, ancient), row(code, ancient), row(code, now)]
        )
        ledger = PostgresLedger(pool, metrics)
        claimed = await ledger.claim(records)
        # Made-up records (their offsets are not in Kafka): settle the sink journal entry, or the
        # workers' sink recovery would go after records that do not exist.
        assert claimed.sink_id is not None
        await ledger.finish(claimed.sink_id, settled)
    finally:
        await http.aclose()
        await pool.close()

    async with Stores() as stores:

        async def partitions() -> dict[str, set[str]]:
            rows = await stores.query(
                "SELECT table, partition FROM system.parts WHERE active AND "
                f"database = currentDatabase() AND partition = '{old_partition}'"
            )
            found: dict[str, set[str]] = {}
            for table, partition in rows:
                found.setdefault(table, set()).add(partition)
            return found

        assert set(await partitions()) == set(CH_TABLES)
        dry = run_aggregator("retention", "--dry-run")
        assert dry.returncode == 0 and f"would drop click_events partition {old_partition}" in dry.stdout
        assert set(await partitions()) == set(CH_TABLES)

        result = run_aggregator("retention")
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"dropping click_events partition {old_partition}" in result.stdout
        assert await partitions() == {}
        assert (await stores.query(f"SELECT count() FROM click_events WHERE code = '{code}'")) == [["1"]]
        assert (
            await stores.query(
                f"SELECT sum(clicks) FROM clicks_totals WHERE code = '{code}' AND grain = 2 AND is_bot IN (0, 1)"
            )
        ) == [["1"]]
        assert stores.pg is not None
        ids = [str(d.record.record_id) for d in records]
        kept = await stores.pg.fetch(
            "SELECT record_id::text FROM clicks.record_ledger WHERE record_id = ANY($1::uuid[])", ids
        )
        assert [r["record_id"] for r in kept] == [ids[1]]  # the one whose newest click is inside the horizon
        # Lifetime totals are counters, never pruned.
        assert (await stores.pg_totals(code)) is not None
