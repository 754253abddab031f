"""`python -m shorten relay`: the outbox relay process.

Connect to PostgreSQL -> take the relay lock (or stand by until the active relay dies) ->
publish the outbox to Kafka until SIGTERM. Losing PostgreSQL restarts the cycle
with backoff; Kafka failures are retried inside OutboxRelay.drain. The process is wired in bootstrap.py.
"""

import logging

from platformkit.tasks import run_until_signalled
from telemetry import tracing

from shorten.bootstrap import relay_forever
from shorten.settings import ShortenSettings

log = logging.getLogger("shorten.relay")

# Within supervisord's stopwaitsecs: a relay stopped in time needs no SIGKILL.
STOP_TIMEOUT_S = 10.0


async def run(settings: ShortenSettings) -> None:
    """Relay until SIGTERM/SIGINT (in-flight batch abandoned unmarked: it is published again by
    the next active relay, with the same event ids)."""
    tracing.setup_tracing("shorten-relay", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    await run_until_signalled(relay_forever(settings), name="outbox-relay", stop_timeout=STOP_TIMEOUT_S, log=log)
    log.info("relay stopped")
