"""Start one faust worker on uvloop; SIGTERM/SIGINT stop it gracefully (faust.Worker).

The app is wired by bootstrap.py; this registers its agents, timers and web views (each only
translates faust's input into use-case calls) and runs it."""

import asyncio

import faust
import uvloop
from telemetry import tracing
from telemetry.logs import dict_config

from aggregator.bootstrap import Runtime, bootstrap
from aggregator.entrypoints import aggregate_clicks, gap_repair, links_agent, partition_count, recovery, web
from aggregator.settings import AggregatorSettings


def register(runtime: Runtime) -> None:
    """The clicks and links agents, the partition count, the window flush timer, gap repair, sink
    recovery and the web views, all on the runtime's faust app."""
    settings, app = runtime.settings, runtime.app
    aggregate_clicks.register(
        app,
        runtime.clicks_topic,
        flow=runtime.flow,
        refresh_lag=runtime.refresh_lag,
        tick=settings.aggregator_tick_records,
        tick_s=settings.aggregator_tick_s,
    )
    partition_count.register(
        app,
        flow=runtime.flow,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.topic_clicks,
        interval_s=60.0,
    )
    app.timer(settings.aggregator_window_flush_s)(runtime.window_view.timer_flush)
    gap_repair.register(
        app,
        topic=settings.topic_clicks,
        frontier=runtime.flow.frontier,
        runtime=runtime.stores,
        offsets=runtime.group_offsets,
        held_min=runtime.flow.held_min,
        metrics=runtime.metrics,
        interval_s=settings.aggregator_gap_check_s,
    )
    recovery.register(
        app,
        runtime=runtime.stores,
        fetcher=runtime.fetcher,
        config=runtime.config,
        metrics=runtime.metrics,
        interval_s=settings.aggregator_recovery_check_s,
    )
    links_agent.register(
        app,
        runtime.links_topic,
        runtime=runtime.stores,
        dead_letters=runtime.dead_letters,
        config=runtime.config,
        backoff=runtime.backoff,
        metrics=runtime.metrics,
    )
    web.register(
        app,
        runtime=runtime.stores,
        metrics=runtime.metrics,
        window_view=runtime.window_view,
        refresh_lag=runtime.refresh_lag,
        window_minutes=settings.aggregator_window_expires_s // settings.aggregator_window_s,
    )


def run(settings: AggregatorSettings) -> None:
    settings.aggregator_data_dir.mkdir(parents=True, exist_ok=True)
    tracing.setup_tracing(
        f"aggregator-{settings.aggregator_worker_id}", otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    runtime = bootstrap(settings)
    register(runtime)
    # faust configures logging itself when its worker starts: hand it the same JSON setup.
    worker = faust.Worker(
        runtime.app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=dict_config(f"aggregator-{settings.aggregator_worker_id}", settings.log_level),
    )
    worker.execute_from_commandline()
