"""Wiring: settings -> clients -> adapters -> the faust app, its window table and the clicks flow;
the one place that wires. Nothing runs at import.

`bootstrap(settings, **overrides)` builds the worker's `Runtime`: the faust app (configured here),
its topics and table, the stores (opened on first use), the ClicksFlow the clicks agent drives.
The worker entrypoint (entrypoints/run_worker.py) registers the agents, timers and web views on
`runtime.app`; faust starts the app, and the app's own service stops the runtime with it.
`open_stores` gives the one-shot commands (replay, retention) the same store adapters."""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg
import faust
from mode import Service
from platformkit.clickhouse import ClickHouseClient

from aggregator.adapters.clickhouse import ClickHouse, ClickHouseEvents, ClickHouseLinkOwners, build_client
from aggregator.adapters.faust_events import DurableAckEvent, to_record
from aggregator.adapters.faust_tables import FaustWindowView, SourcePartitionedTable, zero_counts
from aggregator.adapters.kafka import FaustDeadLetters, GroupOffsets, KafkaRecordFetcher
from aggregator.adapters.live_activity import KafkaLiveActivity
from aggregator.adapters.postgres import PostgresFrontier, PostgresLedger, PostgresLinks, create_pool
from aggregator.domain.batching import FlushPolicy
from aggregator.domain.gaps import Frontier
from aggregator.metrics import AggregatorMetrics
from aggregator.service_layer.clicks_flow import ClicksFlow
from aggregator.service_layer.pipeline import Backoff, PipelineConfig
from aggregator.settings import AggregatorSettings


@dataclass(frozen=True, kw_only=True)
class Stores:
    """The store clients one process holds, and the adapters built on them."""

    pool: asyncpg.Pool
    http: ClickHouseClient
    clickhouse: ClickHouse
    events: ClickHouseEvents
    ledger: PostgresLedger
    links: PostgresLinks
    link_owners: ClickHouseLinkOwners
    frontier: PostgresFrontier

    async def close(self) -> None:
        await self.http.aclose()
        await self.pool.close()


async def open_stores(settings: AggregatorSettings, metrics: AggregatorMetrics) -> Stores:
    pool = await create_pool(
        settings.postgres_dsn_asyncpg(),
        size=settings.aggregator_pg_pool_size,
        statement_cache_size=settings.postgres_statement_cache_size,
    )
    http = build_client(
        settings.clickhouse_url,
        database=settings.clickhouse_database,
        timeout_s=settings.aggregator_clickhouse_timeout_s,
    )
    clickhouse = ClickHouse(http)
    return Stores(
        pool=pool,
        http=http,
        clickhouse=clickhouse,
        events=ClickHouseEvents(clickhouse, metrics),
        ledger=PostgresLedger(pool, metrics),
        links=PostgresLinks(pool),
        link_owners=ClickHouseLinkOwners(clickhouse),
        frontier=PostgresFrontier(pool),
    )


class LazyStores:
    """Opens the stores on first use (from whichever task needs it first), retrying until the
    stores answer; closed once when the worker stops."""

    def __init__(self, settings: AggregatorSettings, metrics: AggregatorMetrics) -> None:
        self._settings = settings
        self._metrics = metrics
        self._lock = asyncio.Lock()
        self._stores: Stores | None = None

    @property
    def opened(self) -> Stores | None:
        return self._stores

    async def get(self) -> Stores:
        async with self._lock:
            if self._stores is None:
                self._stores = await open_stores(self._settings, self._metrics)
            return self._stores

    async def close(self) -> None:
        async with self._lock:
            if self._stores is not None:
                await self._stores.close()
                self._stores = None


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


def partition_share(*, owned: int, total: int | None, shared_by_group: bool) -> float:
    """This worker's share of the `clicks` partitions, for the flush rule (domain/batching.py):
    1.0 when the group's interval is not shared (each worker flushes every flush_min_s) or the
    topic's size is not known yet."""
    if not shared_by_group or not total:
        return 1.0
    return min(owned / total, 1.0)


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


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """A wired aggregator worker: the faust app and what its agents, timers and views use.
    faust starts it (faust.Worker); `stop` runs when the app stops (a faust service below)."""

    settings: AggregatorSettings
    app: faust.App
    metrics: AggregatorMetrics
    stores: LazyStores
    config: PipelineConfig
    backoff: Backoff
    clicks_topic: Any
    links_topic: Any
    dead_letters: FaustDeadLetters
    window_view: FaustWindowView
    flow: ClicksFlow
    refresh_lag: Callable[[], int]
    group_offsets: GroupOffsets
    fetcher: KafkaRecordFetcher

    async def stop(self) -> None:
        """Close the PostgreSQL pool, the ClickHouse client and the Kafka admin."""
        await self.stores.close()
        await self.group_offsets.close()


def bootstrap(
    settings: AggregatorSettings,
    *,
    metrics: AggregatorMetrics | None = None,
    stores: LazyStores | None = None,
    group_offsets: GroupOffsets | None = None,
    fetcher: KafkaRecordFetcher | None = None,
) -> Runtime:
    """Build the worker from its settings; each keyword replaces that adapter. Nothing connects here."""
    metrics = metrics if metrics is not None else AggregatorMetrics()
    app = faust.App(**faust_settings(settings))
    stores = stores if stores is not None else LazyStores(settings, metrics)
    config = pipeline_config(settings)
    backoff = Backoff(
        initial_s=settings.aggregator_retry_initial_s,
        max_s=settings.aggregator_retry_max_s,
        # the workers often fail together (ClickHouse or PostgreSQL away): not in step after it
        jitter_s=settings.aggregator_retry_initial_s / 2,
        on_retry=metrics.sink_retries.inc,
    )
    clicks_topic = app.topic(settings.topic_clicks, key_serializer="raw", value_serializer="raw")
    # This region's `links` and other regions' copies of it (TOPIC_LINKS_REMOTE, docs/regions.md).
    links_topic = app.topic(*settings.links_topics(), key_serializer="raw", value_serializer="raw")
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
    flow = ClicksFlow(
        policy=flush_policy(settings),
        config=config,
        backoff=backoff,
        metrics=metrics,
        frontier=Frontier(stuck_after_s=settings.aggregator_gap_stuck_s),
        window_view=window_view,
        dead_letters=dead_letters,
        stores=stores.get,
        topic=settings.topic_clicks,
        to_record=to_record,
        live=live,
    )

    reported: set[int] = set()

    def refresh_lag() -> int:
        """Records behind the high watermark on this worker's clicks partitions (and the gauge).
        A partition that moved to another worker leaves this worker's gauge: a stale series
        would report its last lag forever."""
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_clicks}
        flow.lags.keep_only(owned)
        flow.partition_share = partition_share(
            owned=len(owned),
            total=flow.partitions_total,
            shared_by_group=settings.aggregator_flush_shared_by_group,
        )
        metrics.partition_share.set(flow.partition_share)
        for p in reported - owned:
            metrics.consumer_lag.remove(settings.aggregator_app_id, settings.topic_clicks, str(p))
        reported.intersection_update(owned)
        for p in owned:
            flow.lags.set_highwater(p, app.consumer.highwater(faust.types.TP(settings.topic_clicks, p)))
            metrics.consumer_lag.labels(settings.aggregator_app_id, settings.topic_clicks, str(p)).set(flow.lags.lag(p))
            reported.add(p)
        return flow.lags.total()

    runtime = Runtime(
        settings=settings,
        app=app,
        metrics=metrics,
        stores=stores,
        config=config,
        backoff=backoff,
        clicks_topic=clicks_topic,
        links_topic=links_topic,
        dead_letters=dead_letters,
        window_view=window_view,
        flow=flow,
        refresh_lag=refresh_lag,
        group_offsets=group_offsets
        if group_offsets is not None
        else GroupOffsets(settings.kafka_bootstrap_servers, settings.aggregator_app_id),
        fetcher=fetcher if fetcher is not None else KafkaRecordFetcher(settings.kafka_bootstrap_servers),
    )

    @app.service
    class CloseStores(Service):
        """Stops the runtime (stores, Kafka admin) when the worker stops."""

        async def on_stop(self) -> None:
            if live is not None:
                await live.close()
            await runtime.stop()

    return runtime
