"""In-process app instances against the real PostgreSQL and Redis, for settings the running
service cannot have: a tiny rate limit, and dependencies that are not there."""

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from pydantic import SecretStr
from shorten.entrypoints.app import create_app
from shorten.settings import ShortenSettings

pytestmark = pytest.mark.integration

UNREACHABLE_PG = "postgresql://shortlink:shortlink@127.0.0.1:1/shortlink"
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@asynccontextmanager
async def running(settings: ShortenSettings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        # Starlette hands lifespan state to each request; ASGITransport does not run the
        # lifespan, so the state is passed in the scope the way a server would.
        async def with_state(scope, receive, send):  # type: ignore[no-untyped-def]
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state)
        async with httpx.AsyncClient(transport=transport, base_url="http://shorten.test") as client:
            yield client


def settings(**overrides: object) -> ShortenSettings:
    return ShortenSettings(**overrides)  # type: ignore[arg-type]


async def test_rate_limit_per_key_in_redis_answers_429_with_retry_after() -> None:
    key_a, key_b = secrets.token_hex(16), secrets.token_hex(16)
    config = settings(shorten_api_keys=SecretStr(f"{key_a},{key_b}"), shorten_rate_limit="3/minute")

    async def post(client: httpx.AsyncClient, key: str) -> httpx.Response:
        return await client.post(
            "/api/v1/links", json={"url": "https://e.com/rl"}, headers={"Authorization": f"Bearer {key}"}
        )

    async with running(config) as client:
        assert [(await post(client, key_a)).status_code for _ in range(3)] == [201, 201, 201]
        limited = await post(client, key_a)
        assert limited.status_code == 429
        assert limited.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(limited.headers["retry-after"]) <= 60
        # Another key has its own window.
        assert (await post(client, key_b)).status_code == 201
        # Reads are not rate limited.
        assert (await client.get("/api/v1/links/nOsUcH99")).status_code == 404

    # A second process (here: a new app instance) shares the window through Redis.
    async with running(config) as other:
        again = await post(other, key_a)
        assert again.status_code == 429 and "retry-after" in again.headers


async def test_postgres_down_is_503_not_500() -> None:
    key = secrets.token_hex(16)
    config = settings(shorten_api_keys=SecretStr(key), postgres_dsn=SecretStr(UNREACHABLE_PG))
    async with running(config) as client:
        created = await client.post(
            "/api/v1/links", json={"url": "https://e.com"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert created.status_code == 503
        assert created.json()["error"]["code"] == "store_unavailable"
        assert (await client.get("/api/v1/links/abcdefgh")).status_code == 503
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] != "ok" and ready.json()["checks"]["redis"] == "ok"


async def test_redis_down_fails_open_and_is_reported_by_readyz() -> None:
    key = secrets.token_hex(16)
    config = settings(shorten_api_keys=SecretStr(key), redis_url=UNREACHABLE_REDIS, redis_sentinels="",
                      shorten_rate_limit="1/minute")
    async with running(config) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(2):  # over the limit, but the limiter cannot count: writes stay available
            response = await client.post("/api/v1/links", json={"url": "https://e.com"}, headers=headers)
            assert response.status_code == 201
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] == "ok" and ready.json()["checks"]["redis"] != "ok"
