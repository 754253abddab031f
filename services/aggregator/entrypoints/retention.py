"""`python -m aggregator retention [--dry-run | --scheduled]`: the retention job.

Run once, or with `--scheduled` as a long-lived process that runs it at every time the cron
expression AGGREGATOR_RETENTION_SCHEDULE names (the native stack's `retention` program: daily).

- ClickHouse: drops monthly partitions older than AGGREGATOR_CLICKHOUSE_RETENTION_MONTHS from
  click_events and every rollup table (ALTER TABLE ... DROP PARTITION: works on 18.16, which
  has no TTL; on servers with TTL this job still does the same thing, so one path everywhere).
- PostgreSQL: the record ledger is partitioned by day of its records' newest click
  (sql/postgres/030_record_ledger.sql): creates the days ahead (today + 7), drops the days wholly
  older than the dedup horizon (AGGREGATOR_LEDGER_RETENTION_DAYS, >= the clicks topic's 7 days)
  with DROP TABLE, and deletes the few rows of the DEFAULT partition past it. Link totals are
  lifetime counters and are never pruned.
"""

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aggregator.adapters.clickhouse import ALL_TABLES
from aggregator.adapters.postgres import LedgerPartitions
from aggregator.bootstrap import open_stores
from aggregator.domain.retention import (
    ledger_cutoff,
    ledger_days_to_create,
    ledger_partition_name,
    ledger_partitions_to_drop,
    partitions_to_drop,
    seconds_until_next_run,
)
from aggregator.metrics import AggregatorMetrics
from aggregator.settings import AggregatorSettings

log = logging.getLogger(__name__)


async def run_retention(settings: AggregatorSettings, *, dry_run: bool, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    runtime = await open_stores(settings, AggregatorMetrics())
    try:
        keep = settings.aggregator_clickhouse_retention_months
        for table in ALL_TABLES:
            partitions = await runtime.clickhouse.active_partitions(table)
            doomed = partitions_to_drop(partitions, now=now, keep_months=keep)
            for partition in doomed:
                print(
                    f"[retention] clickhouse: {'would drop' if dry_run else 'dropping'} {table} partition {partition}",
                    flush=True,
                )
                if not dry_run:
                    await runtime.clickhouse.drop_partition(table, partition)
        cutoff = ledger_cutoff(now, timedelta(seconds=settings.ledger_retention_s))
        ledger = LedgerPartitions(runtime.pool)
        existing = set(await ledger.names())
        for day in ledger_days_to_create(now):
            name = ledger_partition_name(day)
            if name in existing:
                continue
            print(
                f"[retention] postgres: {'would create' if dry_run else 'creating'} ledger partition {name}", flush=True
            )
            if not dry_run:
                await ledger.create(day)
        for name in ledger_partitions_to_drop(sorted(existing), cutoff=cutoff):
            print(
                f"[retention] postgres: {'would drop' if dry_run else 'dropping'} ledger partition {name}", flush=True
            )
            if not dry_run:
                await ledger.drop(name)
        if dry_run:
            print(f"[retention] postgres: would prune default-partition ledger rows older than {cutoff.isoformat()}")
        else:
            pruned = await ledger.prune_default(before=cutoff)
            print(
                f"[retention] postgres: pruned {pruned} default-partition ledger rows older than {cutoff.isoformat()}",
                flush=True,
            )
    finally:
        await runtime.close()


async def run_retention_on_schedule(settings: AggregatorSettings) -> None:
    """Forever: wait for the next scheduled time, run the job. A failed run (a store down) is
    logged and the next time comes round as usual: every run redoes whatever is still due."""
    schedule = settings.aggregator_retention_schedule
    while True:
        delay = seconds_until_next_run(schedule, datetime.now(UTC))
        log.info("retention: next run in %.0f s (schedule %r, UTC)", delay, schedule)
        await asyncio.sleep(delay)
        try:
            await run_retention(settings, dry_run=False)
        except Exception:
            log.exception("retention run failed; it is retried at the next scheduled time")
