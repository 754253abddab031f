"""`python -m shorten relay`: the outbox relay process.

Connect to PostgreSQL -> take the relay lock (or stand by until the active relay dies) ->
publish the outbox to Kafka until SIGTERM. Losing PostgreSQL restarts the cycle
with backoff; Kafka failures are retried inside OutboxRelay.drain.
"""

import asyncio
import logging
import time
from collections.abc import Sequence

from platformkit.tasks import run_until_signalled
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
            log.info("relay lock taken; publishing the outbox to %r and %r", settings.topic_links, settings.topic_keys)
            async with kafka_publisher(settings, client_id="shorten-relay") as publisher:
                relay = outbox_relay(settings, outbox, publisher)
                await publisher.warm_up()
                await relay.run()
    finally:
        await engine.dispose()


def kafka_publisher(settings: ShortenSettings, *, client_id: str) -> KafkaPublisher:
    config = producer_config(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=settings.shorten_relay_request_timeout_ms,
        client_id=client_id,
    )
    return KafkaPublisher(topics={"links": settings.topic_links, "keys": settings.topic_keys}, config=config)


def outbox_relay(settings: ShortenSettings, outbox: PostgresOutbox, publisher: KafkaPublisher) -> OutboxRelay:
    return OutboxRelay(
        outbox=outbox,
        publisher=publisher,
        batch_size=settings.shorten_relay_batch_size,
        poll_interval=settings.shorten_relay_poll_interval,
        batch_wait=settings.shorten_relay_batch_wait,
        backoff_max=settings.shorten_relay_backoff_max,
        retention_seconds=settings.shorten_relay_retention_seconds,
        purge_interval=settings.shorten_relay_purge_interval,
    )


async def wait_published(settings: ShortenSettings, event_ids: Sequence[str], *, timeout_s: float) -> None:
    """Return once the broker acknowledged these outbox events (they are in their topics).

    The running relay publishes them when there is one; when no relay holds the outbox lock (the
    stack's services are not started yet, e.g. during `just up`, or the relay is down), this
    process takes the lock and publishes the outbox itself, in order, like the relay would.
    TimeoutError when they are still unpublished after `timeout_s`."""
    engine = create_engine(settings.postgres_dsn_asyncpg(), application_name="shorten-publish", pooled=False)
    deadline = time.monotonic() + timeout_s
    try:
        async with PostgresOutbox.open(engine) as outbox:
            while await outbox.unpublished(event_ids):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"outbox events not published within {timeout_s:.0f} s (is Kafka up?)")
                if await outbox.try_lock():  # no relay running: publish the outbox ourselves
                    async with kafka_publisher(settings, client_id="shorten-publish") as publisher:
                        await asyncio.wait_for(
                            outbox_relay(settings, outbox, publisher).drain(), max(0.1, deadline - time.monotonic())
                        )
                    await outbox.unlock()
                else:
                    await asyncio.sleep(0.02)
    finally:
        await engine.dispose()


def _log_db_retry(state: RetryCallState) -> None:
    exc = state.outcome.exception() if state.outcome is not None else None
    log.warning("relay lost PostgreSQL (attempt %d): %s", state.attempt_number, exc)


# Within supervisord's stopwaitsecs: a relay stopped in time needs no SIGKILL.
STOP_TIMEOUT_S = 10.0


async def relay_forever(settings: ShortenSettings) -> None:
    """Lead, and lead again after PostgreSQL is lost (with backoff)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(_DB_ERRORS),
        wait=wait_exponential_jitter(initial=0.2, max=settings.shorten_relay_backoff_max),
        before_sleep=_log_db_retry,
    ):
        with attempt:
            await lead(settings)


async def run(settings: ShortenSettings) -> None:
    """Relay until SIGTERM/SIGINT (in-flight batch abandoned unmarked: it is published again by
    the next active relay, with the same event ids)."""
    tracing.setup_tracing("shorten-relay", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    await run_until_signalled(relay_forever(settings), name="outbox-relay", stop_timeout=STOP_TIMEOUT_S, log=log)
    log.info("relay stopped")
