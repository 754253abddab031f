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

from tests.support.keys import issue_key

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
    key_a = (await issue_key("default", ("links:write",))).secret
    key_b = (await issue_key("default", ("links:write",))).secret
    config = settings(shorten_rate_limit="3/minute")

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
        # Reads (with the key) are not rate limited as writes.
        read = await client.get("/api/v1/links/nOsUcH99", headers={"Authorization": f"Bearer {key_a}"})
        assert read.status_code == 404

    # A second process (here: a new app instance) shares the window through Redis.
    async with running(config) as other:
        again = await post(other, key_a)
        assert again.status_code == 429 and "retry-after" in again.headers


async def test_postgres_down_is_503_not_500() -> None:
    key = (await issue_key("default", ("links:write",))).secret
    config = settings(postgres_dsn=SecretStr(UNREACHABLE_PG))
    async with running(config) as client:
        created = await client.post(
            "/api/v1/links", json={"url": "https://e.com"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert created.status_code == 503
        assert created.json()["error"]["code"] == "store_unavailable"
        read = await client.get("/api/v1/links/abcdefgh", headers={"Authorization": f"Bearer {key}"})
        assert read.status_code == 503
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] != "ok" and ready.json()["checks"]["redis"] == "ok"


async def test_redis_down_fails_open_and_is_reported_by_readyz() -> None:
    key = (await issue_key("default", ("links:write",))).secret
    config = settings(redis_url=UNREACHABLE_REDIS, redis_sentinels="", shorten_rate_limit="1/minute")
    async with running(config) as client:
        headers = {"Authorization": f"Bearer {key}"}
        for _ in range(2):  # over the limit, but the limiter cannot count: writes stay available
            response = await client.post("/api/v1/links", json={"url": "https://e.com"}, headers=headers)
            assert response.status_code == 201
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["postgres"] == "ok" and ready.json()["checks"]["redis"] != "ok"


@asynccontextmanager
async def running_as(settings: ShortenSettings, peer: str) -> AsyncIterator[httpx.AsyncClient]:
    """Like `running`, with requests arriving from TCP peer `peer`."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope, receive, send):  # type: ignore[no-untyped-def]
            scope["state"] = dict(state or {})
            await app(scope, receive, send)

        transport = httpx.ASGITransport(app=with_state, client=(peer, 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://shorten.test") as client:
            yield client


async def test_failed_authentication_is_limited_per_client_address() -> None:
    key = (await issue_key("default", ("links:write",))).secret
    config = settings(shorten_auth_failure_limit="4/minute")
    attacker = f"198.51.100.{secrets.randbelow(250) + 1}"  # a fresh address: a fresh window
    wrong = {"Authorization": "Bearer sk_guess", "X-Forwarded-For": attacker}
    right = {"Authorization": f"Bearer {key}", "X-Forwarded-For": attacker}
    async with running_as(config, "127.0.0.1") as via_nginx:
        statuses = [(await via_nginx.get("/api/v1/links/nOsUcH99", headers=wrong)).status_code for _ in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        refused = await via_nginx.post("/api/v1/links", json={"url": "https://e.com/a"}, headers=right)
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "auth_rate_limited")
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Another client, through the same proxy, is not affected.
        other = {"Authorization": f"Bearer {key}", "X-Forwarded-For": "203.0.113.77"}
        created = await via_nginx.post("/api/v1/links", json={"url": "https://e.com/b"}, headers=other)
        assert created.status_code == 201
    # The window is shared through Redis: another process refuses the address at its next failure.
    async with running_as(config, "127.0.0.1") as second:
        assert (await second.get("/api/v1/links/nOsUcH99", headers=wrong)).status_code == 429
    # A peer that is not a trusted proxy cannot borrow another address: the limit follows the peer.
    spoofer = f"192.0.2.{secrets.randbelow(250) + 1}"
    async with running_as(config, spoofer) as direct:
        for i in range(4):
            forged = {"Authorization": "Bearer sk_guess", "X-Forwarded-For": f"203.0.113.{i}"}
            assert (await direct.get("/api/v1/links/nOsUcH99", headers=forged)).status_code == 401
        forged = {"Authorization": "Bearer sk_guess", "X-Forwarded-For": "203.0.113.200"}
        assert (await direct.get("/api/v1/links/nOsUcH99", headers=forged)).status_code == 429
