"""Wiring: settings -> clients -> adapters -> pipeline configuration. Nothing runs at import."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
import httpx

from aggregator.adapters.clickhouse import ClickHouse, ClickHouseEvents, build_client
from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.adapters.postgres import PostgresFrontier, PostgresLedger, PostgresLinks, create_pool
from aggregator.domain.batching import FlushPolicy
from aggregator.pipeline import PipelineConfig
from aggregator.settings import AggregatorSettings


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """The clients one process holds, and the adapters built on them."""

    pool: asyncpg.Pool
    http: httpx.AsyncClient
    clickhouse: ClickHouse
    events: ClickHouseEvents
    ledger: PostgresLedger
    links: PostgresLinks
    frontier: PostgresFrontier

    async def close(self) -> None:
        await self.http.aclose()
        await self.pool.close()


async def open_runtime(settings: AggregatorSettings, metrics: AggregatorMetrics) -> Runtime:
    pool = await create_pool(settings.postgres_dsn_asyncpg(), size=settings.aggregator_pg_pool_size)
    http = build_client(settings.clickhouse_url, timeout_s=settings.aggregator_clickhouse_timeout_s)
    clickhouse = ClickHouse(http, database=settings.clickhouse_database)
    return Runtime(
        pool=pool,
        http=http,
        clickhouse=clickhouse,
        events=ClickHouseEvents(clickhouse, metrics),
        ledger=PostgresLedger(pool, metrics),
        links=PostgresLinks(pool),
        frontier=PostgresFrontier(pool),
    )


class LazyRuntime:
    """Opens the runtime on first use (from whichever task needs it first), retrying until the
    stores answer; closed once when the worker stops."""

    def __init__(self, settings: AggregatorSettings, metrics: AggregatorMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._runtime: Runtime | None = None

    @property
    def opened(self) -> Runtime | None:
        return self._runtime

    async def get(self) -> Runtime:
        async with self._lock:
            if self._runtime is None:
                self._runtime = await open_runtime(self._settings, self._metrics)
            return self._runtime

    async def close(self) -> None:
        async with self._lock:
            if self._runtime is not None:
                await self._runtime.close()
                self._runtime = None


def pipeline_config(settings: AggregatorSettings) -> PipelineConfig:
    return PipelineConfig(
        consumer=settings.consumer_name(),
        horizon=timedelta(seconds=settings.ledger_retention_s),
        max_future_skew=timedelta(seconds=settings.aggregator_max_future_skew_s),
        retry_initial_s=settings.aggregator_retry_initial_s,
        retry_max_s=settings.aggregator_retry_max_s,
    )


def flush_policy(settings: AggregatorSettings) -> FlushPolicy:
    return FlushPolicy(
        batch_min=settings.aggregator_batch_min,
        batch_max=settings.aggregator_batch_max,
        flush_min_s=settings.aggregator_flush_min_s,
        flush_max_s=settings.aggregator_flush_max_s,
        lag_low=settings.aggregator_lag_low,
        lag_high=settings.aggregator_lag_high,
    )
