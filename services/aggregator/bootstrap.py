"""Wiring: settings -> clients -> adapters -> the faust app with its agents, tables, timers and
web views. Nothing runs at import; `create_app` is what `python -m aggregator worker` runs."""

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg
import faust
import httpx
from mode import Service

from aggregator.adapters.clickhouse import ClickHouse, ClickHouseEvents, ClickHouseLinkOwners, build_client
from aggregator.adapters.faust_events import DurableAckEvent
from aggregator.adapters.faust_tables import FaustWindowView, SourcePartitionedTable, zero_counts
from aggregator.adapters.kafka import FaustDeadLetters, GroupOffsets, KafkaRecordFetcher
from aggregator.adapters.live_activity import KafkaLiveActivity
from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.adapters.postgres import PostgresFrontier, PostgresLedger, PostgresLinks, create_pool
from aggregator.domain.batching import FlushPolicy
from aggregator.domain.gaps import Frontier
from aggregator.pipeline import Backoff, PipelineConfig
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
    link_owners: ClickHouseLinkOwners
    frontier: PostgresFrontier

    async def close(self) -> None:
        await self.http.aclose()
        await self.pool.close()


async def open_runtime(settings: AggregatorSettings, metrics: AggregatorMetrics) -> Runtime:
    pool = await create_pool(
        settings.postgres_dsn_asyncpg(),
        size=settings.aggregator_pg_pool_size,
        statement_cache_size=settings.postgres_statement_cache_size,
    )
    http = build_client(settings.clickhouse_url, timeout_s=settings.aggregator_clickhouse_timeout_s)
    clickhouse = ClickHouse(http, database=settings.clickhouse_database)
    return Runtime(
        pool=pool,
        http=http,
        clickhouse=clickhouse,
        events=ClickHouseEvents(clickhouse, metrics),
        ledger=PostgresLedger(pool, metrics),
        links=PostgresLinks(pool),
        link_owners=ClickHouseLinkOwners(clickhouse),
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
        clickhouse_attempts=settings.aggregator_clickhouse_attempts or None,
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


def faust_settings(settings: AggregatorSettings) -> dict[str, Any]:
    """Pure: the faust app's configuration (each choice says why)."""
    return dict(
        id=settings.aggregator_app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        key_serializer="raw",
        value_serializer="raw",  # decoding (and its failures) is ours: poison -> dead-letter
        processing_guarantee="at_least_once",
        # memory store: the window table is small (15 minutes of windows) and is rebuilt from its
        # changelog at start. faust's rocksdb store needs the *current event* to pick its
        # per-partition database, which batch updates made after a sink commit do not have.
        store="memory://",
        datadir=str(settings.aggregator_data_dir),
        web_enabled=True,
        web_host=settings.aggregator_web_host,
        web_port=settings.aggregator_web_port,
        web_bind=settings.aggregator_web_host,
        topic_partitions=3,
        topic_replication_factor=settings.aggregator_topic_replication_factor,
        topic_disable_leader=True,
        # Changelog topics are faust's own and it declares them (the broker does not auto-create).
        # Source topics (clicks, links, deadletter) are not internal: faust never declares them.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.aggregator_commit_interval_s,
        broker_commit_every=10_000,
        # Room for the fetcher to keep reading while the agent awaits a sink write, counted in
        # records: a batch record holds up to 2,000 clicks, so a few hundred is plenty.
        stream_buffer_maxsize=settings.aggregator_stream_buffer_records,
        broker_session_timeout=settings.aggregator_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.aggregator_session_timeout_s / 3),
        # Rebalances do not wait for un-acked records: a batch in flight is re-read by the next
        # owner and the ledger drops the repeat.
        stream_wait_empty=False,
        Table=SourcePartitionedTable,
        Event=DurableAckEvent,
        # No standby copies of the window table: it is a live view, rebuilt from its changelog
        # on failover; reading other partitions' changelogs cost ~10% CPU under load.
        table_standby_replicas=0,
        logging_config=None,
    )


def create_app(settings: AggregatorSettings, metrics: AggregatorMetrics) -> faust.App:
    """The worker: the clicks and links agents, the window table, gap repair, sink recovery and
    the web views, all on one faust app."""
    from aggregator.entrypoints import clicks_agent, gap_repair, links_agent, recovery, web

    app = faust.App(**faust_settings(settings))
    runtime = LazyRuntime(settings, metrics)
    config = pipeline_config(settings)
    backoff = Backoff(
        initial_s=settings.aggregator_retry_initial_s,
        max_s=settings.aggregator_retry_max_s,
        on_retry=metrics.sink_retries.inc,
    )
    clicks_topic = app.topic(settings.topic_clicks, key_serializer="raw", value_serializer="raw")
    links_topic = app.topic(settings.topic_links, key_serializer="raw", value_serializer="raw")
    dead_letters = FaustDeadLetters(app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw"))
    # Keys (code, window) and values [clicks, bot_clicks] go to the changelog as JSON. Short
    # segments let Kafka compact and expire the changelog, so recovery at start stays short.
    table = app.Table(
        "link_minute_clicks",
        default=zero_counts,
        partitions=3,
        extra_topic_configs={"segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1", "min.compaction.lag.ms": "0"},
    )
    windowed = table.tumbling(settings.aggregator_window_s, expires=settings.aggregator_window_expires_s)
    window_view = FaustWindowView(
        windowed,
        cast(SourcePartitionedTable, table),
        window_s=settings.aggregator_window_s,
        flush_every_s=settings.aggregator_window_flush_s,
    )
    live = (
        KafkaLiveActivity(
            app.topic(settings.topic_link_activity, key_serializer="raw", value_serializer="raw"),
            producer=settings.consumer_name(),
            metrics=metrics,
        )
        if settings.aggregator_live_activity
        else None
    )
    flow = clicks_agent.ClicksFlow(
        policy=flush_policy(settings),
        config=config,
        backoff=backoff,
        metrics=metrics,
        frontier=Frontier(stuck_after_s=settings.aggregator_gap_stuck_s),
        window_view=window_view,
        dead_letters=dead_letters,
        stores=runtime.get,
        topic=settings.topic_clicks,
        live=live,
    )

    reported: set[int] = set()

    def refresh_lag() -> int:
        """Records behind the high watermark on this worker's clicks partitions (and the gauge).
        A partition that moved to another worker leaves this worker's gauge: a stale series
        would report its last lag forever."""
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_clicks}
        flow.lags.keep_only(owned)
        for p in reported - owned:
            metrics.consumer_lag.remove(settings.aggregator_app_id, settings.topic_clicks, str(p))
        reported.intersection_update(owned)
        for p in owned:
            flow.lags.set_highwater(p, app.consumer.highwater(faust.types.TP(settings.topic_clicks, p)))
            metrics.consumer_lag.labels(settings.aggregator_app_id, settings.topic_clicks, str(p)).set(flow.lags.lag(p))
            reported.add(p)
        return flow.lags.total()

    clicks_agent.register(
        app,
        clicks_topic,
        flow=flow,
        refresh_lag=refresh_lag,
        tick=settings.aggregator_tick_records,
        tick_s=settings.aggregator_flush_min_s,
    )
    app.timer(settings.aggregator_window_flush_s)(window_view.timer_flush)
    group_offsets = GroupOffsets(settings.kafka_bootstrap_servers, settings.aggregator_app_id)
    gap_repair.register(
        app,
        topic=settings.topic_clicks,
        frontier=flow.frontier,
        runtime=runtime,
        offsets=group_offsets,
        held_min=flow.held_min,
        metrics=metrics,
        interval_s=settings.aggregator_gap_check_s,
    )
    fetcher = KafkaRecordFetcher(settings.kafka_bootstrap_servers)
    recovery.register(
        app,
        runtime=runtime,
        fetcher=fetcher,
        config=config,
        metrics=metrics,
        interval_s=settings.aggregator_recovery_check_s,
    )
    links_agent.register(
        app, links_topic, runtime=runtime, dead_letters=dead_letters, config=config, backoff=backoff, metrics=metrics
    )
    web.register(
        app,
        runtime=runtime,
        metrics=metrics,
        window_view=window_view,
        refresh_lag=refresh_lag,
        window_minutes=settings.aggregator_window_expires_s // settings.aggregator_window_s,
    )

    @app.service
    class CloseStores(Service):
        """Closes the PostgreSQL pool, the ClickHouse client and the Kafka admin when the worker stops."""

        async def on_stop(self) -> None:
            if live is not None:
                await live.close()
            await runtime.close()
            await group_offsets.close()

    return app
