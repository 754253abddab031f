"""`python -m aggregator retention --scheduled` (the stack's `retention` program): runs the job
at each time its cron schedule names, keeps running, and survives a run that fails."""

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from aggregator.adapters.clickhouse import ClickHouse, ClickHouseEvents, build_client
from aggregator.domain.click_records import ClickRow
from aggregator.metrics import AggregatorMetrics
from stackctl.config import StackSettings

from tests.conftest import ROOT, wait_until, wait_until_async
from tests.integration.aggregator.support import CLICKHOUSE_DB, CLICKHOUSE_URL, Stores, unique_code
from tests.integration.shorten.support import program_state

pytestmark = pytest.mark.integration

EVERY_SECOND = "* * * * * *"  # six fields: the last one is seconds


@contextmanager
def scheduled_retention(log: Path, **env: str) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator", "retention", "--scheduled"],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "AGGREGATOR_RETENTION_SCHEDULE": EVERY_SECOND, **env},
        )
        try:
            yield process
        finally:
            process.terminate()
            process.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_the_scheduled_job_drops_an_old_partition_and_keeps_running(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    ancient = now - timedelta(days=1000)
    code, partition = unique_code("sched"), ancient.strftime("%Y%m")
    http = build_client(CLICKHOUSE_URL, database=CLICKHOUSE_DB, timeout_s=30)
    try:
        rows = [
            ClickRow(
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
            for at in (ancient, now)
        ]
        await ClickHouseEvents(ClickHouse(http), AggregatorMetrics()).write(uuid.uuid4(), rows)
    finally:
        await http.aclose()

    async with Stores() as stores:

        async def old_partition_rows() -> int:
            found = await stores.query(
                "SELECT count() FROM system.parts WHERE active AND "
                f"database = currentDatabase() AND partition = '{partition}'"
            )
            return int(found[0][0])

        async def old_partition_gone() -> bool:
            return await old_partition_rows() == 0

        assert not await old_partition_gone()
        log = tmp_path / "retention.log"
        with scheduled_retention(log) as process:
            await wait_until_async(
                old_partition_gone, timeout=60, interval=0.5, what="the scheduled run to drop the old partition"
            )
            assert process.poll() is None  # still waiting for the next time
            wait_until(
                lambda: log.read_text().count("[retention] postgres: pruned") >= 2,
                timeout=30,
                what="a second scheduled run",
            )
            assert process.poll() is None
        assert (await stores.query(f"SELECT count() FROM click_events WHERE code = '{code}'")) == [["1"]]


def test_a_failed_run_is_logged_and_the_schedule_goes_on(tmp_path: Path) -> None:
    log = tmp_path / "retention.log"
    # Nothing listens there: every run fails to reach ClickHouse.
    with scheduled_retention(log, CLICKHOUSE_URL=f"http://127.0.0.1:{free_port()}") as process:
        wait_until(lambda: log.read_text().count("retention run failed") >= 2, timeout=60, what="two failed runs")
        assert process.poll() is None


def test_the_stack_runs_the_scheduled_job() -> None:
    assert program_state("retention") == "RUNNING"
    log = StackSettings().log_dir / "retention.log"
    assert "retention: next run in" in log.read_text()
