"""Wiring: settings -> adapters -> use cases; the one place that wires.

`bootstrap(settings, **overrides)` wires the API process (`Runtime`, started and stopped by the
app's lifespan: clients connect at start, never at import time, and are closed on the way out).
The outbox relay process is wired here too (`relay_forever`: lock -> publish until stopped), and
`wait_published`, which `just keys` uses to see its events in their topics."""

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager

from platformkit.apikeys import FailedAuth
from platformkit.clientip import ClientAddress, parse_networks
from platformkit.keys_log import KeysLog
from platformkit.ratelimit import RedisRateLimiter
from sqlalchemy import exc as sa_exc
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, wait_exponential_jitter

from shorten.adapters.asyncpg_store import AsyncpgLinkStore
from shorten.adapters.kafka import KafkaPublisher, producer_config
from shorten.adapters.links_log import KafkaLinksLog, RedisReplicaPositions
from shorten.adapters.postgres import PostgresLinkStore, create_engine
from shorten.adapters.postgres_outbox import PostgresOutbox
from shorten.domain.targets import TargetRules
from shorten.ports import LinkStore, WriteVisibility
from shorten.service_layer.bulk_import import LinkImporter
from shorten.service_layer.link_service import LinkService
from shorten.service_layer.outbox_relay import OutboxRelay
from shorten.service_layer.visibility import NoWait, Visibility
from shorten.settings import ShortenSettings

log = logging.getLogger("shorten.relay")


class Runtime:
    """What a request handler needs, built once per process (`bootstrap`): the rate limiters, the
    key book, the caller rules; `start()` opens the link store and write visibility (unless given)
    and follows the `keys` topic, `stop()` closes everything it opened."""

    def __init__(
        self,
        settings: ShortenSettings,
        *,
        limiter: RedisRateLimiter,
        failures: RedisRateLimiter,
        keys: KeysLog,
        store: LinkStore | None,
        visibility: WriteVisibility | None,
    ) -> None:
        self.settings = settings
        self.limiter = limiter
        self.keys = keys  # who a caller is: the `keys` topic, followed in memory
        self.failed_auth = FailedAuth(failures.hit)
        self.client_address = ClientAddress(parse_networks(settings.shorten_trusted_proxies))
        self.public_base_url = settings.shorten_public_base_url
        self.max_body_bytes = settings.shorten_max_body_bytes
        # Targets refused whatever their shape (own hosts: no loops; the operator's deny-list).
        self.targets: TargetRules = settings.target_rules()
        self._failures = failures
        self._store = store
        self._visibility = visibility
        self.bulk_max_body_bytes = settings.shorten_bulk_max_body_bytes
        self._links: LinkService | None = None
        self._importer: LinkImporter | None = None
        self._stack = AsyncExitStack()

    @property
    def store(self) -> LinkStore:
        assert self._store is not None, "runtime not started"
        return self._store

    @property
    def links(self) -> LinkService:
        assert self._links is not None, "runtime not started"
        return self._links

    @property
    def importer(self) -> LinkImporter:
        """POST /api/v1/links/bulk."""
        assert self._importer is not None, "runtime not started"
        return self._importer

    async def start(self) -> None:
        settings = self.settings
        self._stack.push_async_callback(self._failures.aclose)
        self._stack.push_async_callback(self.limiter.aclose)
        self._stack.push_async_callback(self.keys.stop)
        await self.keys.start()
        if self._store is None:
            self._store = await self._stack.enter_async_context(open_store(settings))
        if self._visibility is None:
            self._visibility = await self._stack.enter_async_context(open_visibility(settings))
        self._links = LinkService(
            store=self._store, code_length=settings.shorten_code_length, visibility=self._visibility
        )
        self._importer = LinkImporter(
            store=self._store,
            visibility=self._visibility if settings.shorten_bulk_visible_timeout_seconds > 0 else NoWait(),
            chunk_rows=settings.shorten_bulk_chunk_rows,
            visible_timeout=settings.shorten_bulk_visible_timeout_seconds,
            code_length=settings.shorten_code_length,
        )

    async def stop(self) -> None:
        await self._stack.aclose()


def bootstrap(
    settings: ShortenSettings,
    *,
    store: LinkStore | None = None,
    visibility: WriteVisibility | None = None,
    keys: KeysLog | None = None,
    limiter: RedisRateLimiter | None = None,
) -> Runtime:
    """Wire the API process from its settings; each keyword replaces that port's adapter (tests).
    Nothing connects here: `Runtime.start()` does."""
    failures = RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=settings.auth_failure_limit(),
        namespace="shorten-authfail",
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    return Runtime(
        settings,
        limiter=limiter
        or RedisRateLimiter(
            redis_url=settings.redis_url,
            limit=settings.rate_limit(),
            sentinels=settings.redis_sentinels,
            sentinel_master=settings.redis_sentinel_master,
        ),
        failures=failures,
        keys=keys
        or KeysLog(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            topic=settings.topic_keys,
            client_id=f"shorten-{os.getpid()}-keys",
            miss_wait_s=settings.shorten_keys_miss_wait_seconds,
        ),
        store=store,
        visibility=visibility,
    )


@asynccontextmanager
async def open_store(settings: ShortenSettings) -> AsyncIterator[LinkStore]:
    """The LinkStore adapter SHORTEN_STORE names, closed on the way out."""
    dsn, pool_size = settings.postgres_dsn_asyncpg(), settings.shorten_db_pool_size
    if settings.shorten_store == "asyncpg":
        async with AsyncpgLinkStore.open(
            dsn,
            max_size=pool_size,
            batches_in_flight=settings.shorten_db_batches_in_flight,
            statement_cache_size=settings.postgres_statement_cache_size,
            deadline_s=settings.shorten_store_deadline_seconds,
        ) as store:
            yield store
        return
    engine = create_engine(dsn, pool_size=pool_size)
    try:
        yield PostgresLinkStore(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def open_visibility(settings: ShortenSettings) -> AsyncIterator[WriteVisibility]:
    """Write visibility (read your writes), started and stopped with the process."""
    if settings.shorten_visible_timeout_seconds <= 0:
        yield NoWait()
        return
    positions = RedisReplicaPositions(settings.redis_url)
    visibility = Visibility(
        log_factory=lambda: KafkaLinksLog(
            topic=settings.topic_links,
            bootstrap_servers=settings.kafka_bootstrap_servers,
            client_id=f"shorten-{os.getpid()}-visibility",
        ),
        positions=positions.read,
        timeout=settings.shorten_visible_timeout_seconds,
        poll_interval=settings.shorten_visible_poll_seconds,
        heartbeat=settings.shorten_visible_heartbeat_seconds,
        cooldown=settings.shorten_visible_cooldown_seconds,
        degraded_timeout=settings.shorten_visible_degraded_timeout_seconds,
    )
    await visibility.start()
    try:
        yield visibility
    finally:
        await visibility.aclose()
        await positions.aclose()


# The outbox relay process (`python -m shorten relay`) and the one-off publish of `just keys`.

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


async def relay_forever(settings: ShortenSettings) -> None:
    """Lead, and lead again after PostgreSQL is lost (with backoff)."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(_DB_ERRORS),
        wait=wait_exponential_jitter(initial=0.2, max=settings.shorten_relay_backoff_max),
        before_sleep=_log_db_retry,
    ):
        with attempt:
            await lead(settings)
