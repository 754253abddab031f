"""The faust application: agents stay thin and hand batches to aggregator.pipeline.

- `clicks` agent (concurrency=1): ticks of un-acked events -> Batcher (flush rule adapts to
  lag) -> process_batch (dead-letter poison, ClickHouse insert, PostgreSQL transaction, with
  retries inside) -> window table -> ack. Offsets are committed only for acked events, so an
  offset never passes an event whose counts are not durable in both sinks.
- `links` agent: clicks.links_known (which codes exist) for analytics' 404.
- Web views on 127.0.0.1:AGGREGATOR_WEB_PORT: /metrics, /healthz, /readyz, /links/{code}/window.
"""

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import faust
from mode import Service

from aggregator.adapters.faust_events import DurableAckEvent
from aggregator.adapters.faust_tables import FaustWindowView, SourcePartitionedTable, zero_counts
from aggregator.adapters.kafka import FaustDeadLetters, GroupOffsets
from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.batcher import Batcher, LagTracker
from aggregator.bootstrap import LazyRuntime, flush_policy, pipeline_config
from aggregator.domain.gaps import Frontier
from aggregator.entrypoints import gap_repair, links_agent, web
from aggregator.pipeline import Backoff, BatchOutcome, process_batch, retry_until_done
from aggregator.ports import SourceRecord
from aggregator.settings import AggregatorSettings

log = logging.getLogger(__name__)


def to_record(event: Any) -> SourceRecord:
    m = event.message
    return SourceRecord(
        topic=m.topic, partition=m.partition, offset=m.offset, key=m.key, value=m.value,
        timestamp_ms=int((m.timestamp or 0) * 1000),
        # The trace context from the redirect replica (only read when tracing is on).
        headers=m.headers or (),
    )


@dataclass
class AgentState:
    """What the clicks agent holds unacked: its buffer and the batch being written."""

    batcher: Batcher[Any]
    writing: list[Any] = field(default_factory=list)

    def held_min(self) -> dict[int, int]:
        lowest: dict[int, int] = {}
        for event in [*self.batcher.pending(), *self.writing]:
            p, o = event.message.partition, event.message.offset
            if o < lowest.get(p, o + 1):
                lowest[p] = o
        return lowest


def create_app(settings: AggregatorSettings, metrics: AggregatorMetrics) -> faust.App:
    app = faust.App(
        settings.aggregator_app_id,
        broker=f"kafka://{settings.kafka_bootstrap_servers}",
        key_serializer="raw",
        value_serializer="raw",  # decoding (and its failures) is ours: poison -> dead-letter
        processing_guarantee="at_least_once",
        # memory store: the window table is small (one hour of windows) and is rebuilt from its
        # changelog at start. faust's rocksdb store needs the *current event* to pick its
        # per-partition database, which batch updates made after a sink commit do not have.
        store="memory://",
        datadir=str(settings.aggregator_data_dir),
        web_enabled=True,
        web_host=settings.aggregator_web_host,
        web_port=settings.aggregator_web_port,
        web_bind=settings.aggregator_web_host,
        topic_partitions=3,
        topic_disable_leader=True,
        # Changelog topics are faust's own and it declares them (the broker does not auto-create).
        # Source topics (clicks, links, deadletter) are not internal: faust never declares them.
        topic_allow_declare=True,
        consumer_auto_offset_reset="earliest",
        broker_commit_interval=settings.aggregator_commit_interval_s,
        broker_commit_every=10_000,
        # Room for the fetcher to keep reading while the agent awaits a sink write (the agent's
        # take buffer accepts nothing during its batch body). faust's default is 4096.
        stream_buffer_maxsize=20_000,
        broker_session_timeout=settings.aggregator_session_timeout_s,
        broker_heartbeat_interval=min(3.0, settings.aggregator_session_timeout_s / 3),
        # Rebalances do not wait for un-acked events: a batch in flight is re-read by the next
        # owner and the idempotent sinks drop the repeat.
        stream_wait_empty=False,
        Table=SourcePartitionedTable,
        Event=DurableAckEvent,
        # No standby copies of the window table: it is a live view, rebuilt from its changelog
        # on failover; reading other partitions' changelogs cost ~10% CPU under load.
        table_standby_replicas=0,
        logging_config=None,
    )
    runtime = LazyRuntime(settings, metrics)
    config = pipeline_config(settings)
    policy = flush_policy(settings)
    backoff = Backoff(initial_s=settings.aggregator_retry_initial_s, max_s=settings.aggregator_retry_max_s)
    clicks_topic = app.topic(settings.topic_clicks, key_serializer="raw", value_serializer="raw")
    links_topic = app.topic(settings.topic_links, key_serializer="raw", value_serializer="raw")
    dlq_topic = app.topic(settings.topic_deadletter, key_serializer="raw", value_serializer="raw")
    dead_letters = FaustDeadLetters(dlq_topic)
    # Keys (code, window) and values [clicks, bot_clicks] go to the changelog as JSON. Short
    # segments let Kafka compact and expire the changelog, so recovery at start stays short.
    table = app.Table(
        "link_minute_clicks", default=zero_counts, partitions=3,
        extra_topic_configs={"segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1",
                             "min.compaction.lag.ms": "0"},
    )
    windowed = table.tumbling(settings.aggregator_window_s, expires=settings.aggregator_window_expires_s)
    window_view = FaustWindowView(
        windowed, cast(SourcePartitionedTable, table), window_s=settings.aggregator_window_s,
        flush_every_s=settings.aggregator_window_flush_s,
    )
    lags = LagTracker()

    def refresh_lag() -> int:
        owned = {tp.partition for tp in app.consumer.assignment() if tp.topic == settings.topic_clicks}
        lags.keep_only(owned)
        for p in owned:
            lags.set_highwater(p, app.consumer.highwater(faust.types.TP(settings.topic_clicks, p)))
            metrics.consumer_lag.labels(settings.aggregator_app_id, settings.topic_clicks, str(p)).set(lags.lag(p))
        return lags.total()

    def record_outcome(outcome: BatchOutcome) -> None:
        metrics.batch_size.observe(outcome.received)
        metrics.processed.inc(outcome.received)
        metrics.counted.inc(outcome.counted)
        metrics.deduplicated.inc(outcome.duplicates)
        metrics.dead_lettered.inc(outcome.dead_lettered)

    frontier = Frontier(stuck_after_s=settings.aggregator_gap_stuck_s)
    state = AgentState(batcher=Batcher(policy, time.monotonic))

    async def flush(stream: Any, events: Sequence[Any]) -> None:
        rt = await retry_until_done(runtime.get, what="open stores", backoff=backoff)
        outcome = await process_batch(
            [to_record(e) for e in events], config=config, events=rt.events, ledger=rt.ledger,
            dead_letters=dead_letters,
        )
        try:
            window_view.add(outcome.new_counts, outcome.partitions)
        except Exception:  # the window is a live view; the batch is durable either way
            log.exception("window table update failed")
        record_outcome(outcome)
        for event in events:
            frontier.processed(event.message.partition, event.message.offset)
        # Our own progress record, after the data; see domain/gaps.py.
        await retry_until_done(lambda: rt.frontier.save(settings.topic_clicks, dict(frontier.next)),
                               what="frontier save", backoff=backoff)
        for event in events:  # only now: the batch is durable in both sinks
            event.allow_ack()
            await stream.ack(event)

    @app.agent(clicks_topic, concurrency=1)
    async def aggregate_clicks(stream: Any) -> None:
        # A restarted agent starts empty: events it held unacked are re-read (gap repair).
        batcher: Batcher[Any] = Batcher(policy, time.monotonic)
        state.batcher = batcher
        async for tick in stream.noack_take(settings.aggregator_batch_min, within=settings.aggregator_flush_min_s):
            for event in tick:
                lags.seen(event.message.partition, event.message.offset)
            batcher.add(tick)
            lag = refresh_lag()
            metrics.flush_interval.set(policy.target(lag).max_wait_s)
            if batcher.due(lag):
                state.writing = batcher.drain()
                await flush(stream, state.writing)
                state.writing = []

    async def flush_window_table() -> None:
        """Bounds how long counts wait in memory when traffic stops."""
        window_view.flush()

    app.timer(settings.aggregator_window_flush_s)(flush_window_table)

    group_offsets = GroupOffsets(settings.kafka_bootstrap_servers, settings.aggregator_app_id)
    gap_repair.register(app, topic=settings.topic_clicks, frontier=frontier, runtime=runtime,
                        offsets=group_offsets, held_min=state.held_min, metrics=metrics,
                        interval_s=settings.aggregator_gap_check_s)
    links_agent.register(app, links_topic, runtime=runtime, dead_letters=dead_letters, config=config,
                         backoff=backoff, metrics=metrics)
    web.register(app, runtime=runtime, metrics=metrics, window_view=window_view, refresh_lag=refresh_lag,
                 window_minutes=settings.aggregator_window_expires_s // settings.aggregator_window_s)

    @app.service
    class CloseStores(Service):
        """Closes the PostgreSQL pool and ClickHouse client when the worker stops."""

        async def on_stop(self) -> None:
            await runtime.close()
            await group_offsets.close()

    return app
