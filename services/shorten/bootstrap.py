"""Wiring: settings -> adapters -> use cases. Clients are built here, inside the lifespan,
never at import time, and closed on the way out."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from shorten.adapters.postgres import PostgresLinkStore, create_engine
from shorten.adapters.redis_rate_limit import RedisRateLimiter
from shorten.entrypoints.auth import ApiKeys
from shorten.service import LinkService
from shorten.settings import ShortenSettings


@dataclass(frozen=True, kw_only=True)
class Runtime:
    """What a request handler needs, built once per process."""

    links: LinkService
    store: PostgresLinkStore
    limiter: RedisRateLimiter
    api_keys: ApiKeys
    public_base_url: str
    max_body_bytes: int


@asynccontextmanager
async def build_runtime(settings: ShortenSettings) -> AsyncIterator[Runtime]:
    engine = create_engine(settings.postgres_dsn_asyncpg(), pool_size=settings.shorten_db_pool_size)
    limiter = RedisRateLimiter(redis_url=settings.redis_url, limit=settings.rate_limit())
    store = PostgresLinkStore(engine)
    try:
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
        await engine.dispose()
