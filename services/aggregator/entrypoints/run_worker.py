"""Start one faust worker on uvloop; SIGTERM/SIGINT stop it gracefully (faust.Worker)."""

import asyncio

import faust
import uvloop
from telemetry import tracing
from telemetry.logs import dict_config

from aggregator.metrics import AggregatorMetrics
from aggregator.bootstrap import create_app
from aggregator.settings import AggregatorSettings


def run(settings: AggregatorSettings) -> None:
    settings.aggregator_data_dir.mkdir(parents=True, exist_ok=True)
    tracing.setup_tracing(
        f"aggregator-{settings.aggregator_worker_id}", otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, AggregatorMetrics())
    # faust configures logging itself when its worker starts: hand it the same JSON setup.
    worker = faust.Worker(
        app,
        loop=loop,
        loglevel=settings.log_level,
        quiet=True,
        logging_config=dict_config(f"aggregator-{settings.aggregator_worker_id}", settings.log_level),
    )
    worker.execute_from_commandline()
