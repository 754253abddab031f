"""Faults under load on the real stack (issue 9): the short subset of `just chaos` CI runs.

Each test runs one scenario of infra/chaos/scenarios.py (load through nginx or at a replica,
the fault, recovery, then the books: every click served counted exactly once in PostgreSQL and
ClickHouse, every acknowledged link update served by every replica) and asserts what the issue
asks of that fault. Marked destructive: they stop and kill stack programs; run last.
"""

import asyncio
import time
import uuid
from dataclasses import replace

import aiohttp
import asyncpg
import pytest
from chaos.run import run_scenario
from chaos.scenarios import REDIRECT_KILL_LOSS_BOUND_S, FaultContext, FaultOutcome, by_name
from chaos.stack import Stack
from stackctl import sentinel
from stackctl.config import StackSettings

pytestmark = [pytest.mark.e2e, pytest.mark.destructive]

STACK = Stack(StackSettings())


async def test_redis_primary_sigkilled_under_load_fails_over_through_sentinel() -> None:
    """Redirects continue, link writes continue after the failover, no update is lost (every
    replica serves each link's last acknowledged target), counts stay exact; the old primary
    rejoins as replica, and the primary goes back to the `redis` program afterwards."""
    row = await run_scenario(STACK, by_name(["redis sentinel failover"])[0])
    assert row.passed, row.notes
    assert (row.clicks.lost, row.clicks.twice) == (0, 0)
    assert row.details["update_failures"] == 0 and row.details["updates_acked"] > 0
    assert await sentinel.primary_port(STACK.s) == STACK.s.redis_port


async def _create(http: aiohttp.ClientSession, url: str) -> tuple[int, str | None, str | None]:
    """POST a link: (status, Retry-After, error code of a JSON error body)."""
    async with http.post(
        f"{STACK.public_url}/api/v1/links", json={"url": url}, headers={"Authorization": f"Bearer {STACK.api_key}"}
    ) as response:
        body = await response.json(content_type=None)
        code = body.get("error", {}).get("code") if isinstance(body, dict) else None
        return response.status, response.headers.get("Retry-After"), code


async def test_postgres_down_30s_shorten_refuses_with_503_and_nothing_is_half_written() -> None:
    """While PostgreSQL is down: creates and updates answer a JSON 503 with Retry-After and leave
    nothing behind; redirects are unaffected; afterwards the aggregator has caught up exactly."""
    refused: list[tuple[int, str | None, str | None]] = []
    urls: list[str] = []
    scenario = by_name(["postgres down 30 s"])[0]

    async def postgres_down_with_creates(ctx: FaultContext) -> FaultOutcome:
        at = time.monotonic()
        await ctx.stack.stop("postgres")
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as http:
            while time.monotonic() - at < 30:
                urls.append(f"https://example.com/chaos/pg-down/{uuid.uuid4().hex}")
                refused.append(await _create(http, urls[-1]))
                await asyncio.sleep(0.5)
        await ctx.stack.start("postgres")
        ready = await ctx.stack.wait_ready("postgres")
        return FaultOutcome(ready, [f"{len(refused)} creates during the outage"])

    row = await run_scenario(STACK, replace(scenario, fault=postgres_down_with_creates))
    assert row.passed, row.notes
    assert row.details["redirect_failures"] == 0
    assert (row.clicks.lost, row.clicks.twice) == (0, 0)
    assert len(refused) >= 20
    assert all(status == 503 and retry_after and code == "store_unavailable" for status, retry_after, code in refused)
    conn = await asyncpg.connect(STACK.s.postgres_dsn)
    try:
        assert await conn.fetchval("SELECT count(*) FROM shorten.links WHERE url = ANY($1::text[])", urls) == 0
    finally:
        await conn.close()


async def test_clickhouse_down_60s_postgres_keeps_counting_and_clickhouse_catches_up_exactly() -> None:
    row = await run_scenario(STACK, by_name(["clickhouse down 60 s"])[0])
    assert row.passed, row.notes  # includes: PostgreSQL's totals kept up during the outage
    assert row.details["redirect_failures"] == 0 and row.details["update_failures"] == 0
    assert (row.clicks.lost, row.clicks.twice) == (0, 0)  # in both stores


async def test_a_redirect_replica_sigkilled_at_full_rate_loses_at_most_its_unflushed_clicks() -> None:
    row = await run_scenario(STACK, by_name(["kill redirect replica at full rate"])[0])
    assert row.passed, row.notes
    assert row.clicks.twice == 0
    assert row.clicks.lost <= REDIRECT_KILL_LOSS_BOUND_S * row.details["redirect_rate"]


async def test_a_replica_frozen_past_nginx_read_timeout_counts_each_visit_once() -> None:
    """nginx re-sends the requests a frozen replica holds to the others after its read timeout;
    the thawed replica refuses its late copies without a click (the scenario fails unless it
    refused some), so every visit is counted once and no client saw an error."""
    row = await run_scenario(STACK, by_name(["redirect replica frozen past nginx's timeout"])[0])
    assert row.passed, row.notes
    assert row.details["redirect_failures"] == 0
    assert (row.clicks.lost, row.clicks.twice) == (0, 0)
