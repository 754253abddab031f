"""Wiring: settings -> adapters -> use cases. Clients are built here, inside the lifespan,
never at import time, and closed on the way out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shorten.adapters.asyncpg_store import AsyncpgLinkStore
from shorten.adapters.postgres import PostgresLinkStore, create_engine
from shorten.adapters.redis_rate_limit import RedisRateLimiter
from shorten.entrypoints.auth import ApiKeys
from shorten.ports import LinkStore
from shorten.service import LinkService
from shorten.settings import ShortenSettings


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """What a request handler needs, built once per process."""

    links: LinkService
    store: LinkStore
    limiter: RedisRateLimiter
    api_keys: ApiKeys
    public_base_url: str
    max_body_bytes: int


@asynccontextmanager
async def open_store(settings: ShortenSettings) -> AsyncIterator[LinkStore]:
    """The LinkStore adapter SHORTEN_STORE names, closed on the way out."""
    dsn, pool_size = settings.postgres_dsn_asyncpg(), settings.shorten_db_pool_size
    if settings.shorten_store == "asyncpg":
        async with AsyncpgLinkStore.open(dsn, max_size=pool_size) as store:
            yield store
        return
    engine = create_engine(dsn, pool_size=pool_size)
    try:
        yield PostgresLinkStore(engine)
    finally:
        await engine.dispose()


@asynccontextmanager
async def build_runtime(settings: ShortenSettings) -> AsyncIterator[Runtime]:
    limiter = RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=settings.rate_limit(),
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )
    try:
        async with open_store(settings) as store:
            yield Runtime(
                links=LinkService(store=store, code_length=settings.shorten_code_length),
                store=store,
                limiter=limiter,
                api_keys=ApiKeys(settings.api_keys()),
                public_base_url=settings.shorten_public_base_url,
                max_body_bytes=settings.shorten_max_body_bytes,
            )
    finally:
        await limiter.aclose()
