"""Start one faust worker on uvloop; SIGTERM/SIGINT stop it gracefully (faust.Worker)."""

import asyncio

import faust
import uvloop

from aggregator.adapters.metrics import AggregatorMetrics
from aggregator.entrypoints.worker import create_app
from aggregator.settings import AggregatorSettings


def run(settings: AggregatorSettings) -> None:
    settings.aggregator_data_dir.mkdir(parents=True, exist_ok=True)
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    app = create_app(settings, AggregatorMetrics())
    worker = faust.Worker(app, loop=loop, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
