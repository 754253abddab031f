"""Wiring: settings -> adapters -> use cases. Clients are built here, inside the lifespan,
never at import time, and closed on the way out."""

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from platformkit.apikeys import FailedAuth
from platformkit.clientip import ClientAddress, parse_networks
from platformkit.keys_log import KeysLog
from platformkit.ratelimit import RedisRateLimiter

from shorten.adapters.asyncpg_store import AsyncpgLinkStore
from shorten.adapters.links_log import KafkaLinksLog, RedisReplicaPositions
from shorten.adapters.postgres import PostgresLinkStore, create_engine
from shorten.domain.targets import TargetRules
from shorten.ports import LinkStore, WriteVisibility
from shorten.service import LinkService
from shorten.service_layer.bulk_import import LinkImporter
from shorten.settings import ShortenSettings
from shorten.visibility import NoWait, Visibility


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """What a request handler needs, built once per process."""

    links: LinkService
    importer: LinkImporter  # POST /api/v1/links/bulk
    store: LinkStore
    limiter: RedisRateLimiter
    keys: KeysLog  # who a caller is: the `keys` topic, followed in memory
    failed_auth: FailedAuth
    client_address: ClientAddress
    public_base_url: str
    max_body_bytes: int
    bulk_max_body_bytes: int
    # Targets refused whatever their shape (own hosts: no loops; the operator's deny-list).
    targets: TargetRules


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


@asynccontextmanager
async def build_runtime(settings: ShortenSettings) -> AsyncIterator[Runtime]:
    limiter = RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=settings.rate_limit(),
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    failures = RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=settings.auth_failure_limit(),
        namespace="shorten-authfail",
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    keys = KeysLog(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.topic_keys,
        client_id=f"shorten-{os.getpid()}-keys",
        miss_wait_s=settings.shorten_keys_miss_wait_seconds,
    )
    try:
        await keys.start()
        async with open_store(settings) as store, open_visibility(settings) as visibility:
            yield Runtime(
                links=LinkService(store=store, code_length=settings.shorten_code_length, visibility=visibility),
                importer=LinkImporter(
                    store=store,
                    visibility=visibility if settings.shorten_bulk_visible_timeout_seconds > 0 else NoWait(),
                    chunk_rows=settings.shorten_bulk_chunk_rows,
                    visible_timeout=settings.shorten_bulk_visible_timeout_seconds,
                    code_length=settings.shorten_code_length,
                ),
                store=store,
                limiter=limiter,
                keys=keys,
                failed_auth=FailedAuth(failures.hit),
                client_address=ClientAddress(parse_networks(settings.shorten_trusted_proxies)),
                public_base_url=settings.shorten_public_base_url,
                max_body_bytes=settings.shorten_max_body_bytes,
                bulk_max_body_bytes=settings.shorten_bulk_max_body_bytes,
                targets=settings.target_rules(),
            )
    finally:
        await keys.stop()
        await limiter.aclose()
        await failures.aclose()
