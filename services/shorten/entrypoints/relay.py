"""`python -m shorten relay`: the outbox relay process.

Connect to PostgreSQL -> take the relay lock (or stand by until the active relay dies) ->
LISTEN -> publish the outbox to Kafka until SIGTERM. Losing PostgreSQL restarts the cycle
with backoff; Kafka failures are retried inside OutboxRelay.drain.
"""

import asyncio
import logging
import signal

from sqlalchemy import exc as sa_exc
from telemetry import tracing
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from shorten.adapters.kafka import KafkaPublisher, producer_config
from shorten.adapters.postgres import create_engine
from shorten.adapters.postgres_outbox import PostgresOutbox
from shorten.relay import OutboxRelay
from shorten.settings import ShortenSettings

log = logging.getLogger("shorten.relay")

_DB_ERRORS = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DBAPIError, OSError, TimeoutError)


async def lead(settings: ShortenSettings) -> None:
    """One connection's life: wait for the lock, then relay until cancelled or the DB fails."""
    engine = create_engine(settings.postgres_dsn_asyncpg(), application_name="shorten-relay", pooled=False)
    try:
        async with PostgresOutbox.open(engine) as outbox:
            standing_by = False
            while not await outbox.try_lock():
                if not standing_by:
                    log.info("another relay is active; standing by")
                    standing_by = True
                await asyncio.sleep(settings.shorten_relay_standby_interval)
            log.info("relay lock taken; publishing the outbox to %r", settings.topic_links)
            config = producer_config(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                request_timeout_ms=settings.shorten_relay_request_timeout_ms,
                client_id="shorten-relay",
            )
            async with KafkaPublisher(topic=settings.topic_links, config=config) as publisher:
                relay = OutboxRelay(
                    outbox=outbox,
                    publisher=publisher,
                    batch_size=settings.shorten_relay_batch_size,
                    poll_interval=settings.shorten_relay_poll_interval,
                    backoff_max=settings.shorten_relay_backoff_max,
                    retention_seconds=settings.shorten_relay_retention_seconds,
                    purge_interval=settings.shorten_relay_purge_interval,
                )
                await outbox.listen(relay.wake)
                await publisher.warm_up()
                await relay.run()
    finally:
        await engine.dispose()


RECANCEL_INTERVAL_S = 1.0


def cancel_until_done(task: asyncio.Task[object], interval_s: float = RECANCEL_INTERVAL_S) -> None:
    """Cancel `task`, and cancel it again every `interval_s` until it is done.

    One cancel is not always enough: a library that awaits its own tasks while cleaning up may
    swallow the CancelledError (the redirect projector was seen doing so inside the Kafka
    client), and the relay would then run on until supervisord's SIGKILL. Nothing is at stake
    either way (unmarked outbox records are published again), but a stop should stop."""
    if task.done():
        return
    task.cancel()
    asyncio.get_running_loop().call_later(interval_s, cancel_until_done, task, interval_s)


def _log_db_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("relay lost PostgreSQL (attempt %d): %s", state.attempt_number, exc)


async def run(settings: ShortenSettings) -> None:
    """Relay forever; returns after SIGTERM/SIGINT (in-flight batch abandoned unmarked: it is
    published again by the next active relay, with the same event ids)."""
    tracing.setup_tracing("shorten-relay", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, cancel_until_done, task)
    try:
        async for attempt in AsyncRetrying(
            retry=retry_if_exception_type(_DB_ERRORS),
            wait=wait_exponential_jitter(initial=0.2, max=settings.shorten_relay_backoff_max),
            before_sleep=_log_db_retry,
        ):
            with attempt:
                await lead(settings)
    except asyncio.CancelledError:
        log.info("relay stopped")
