"""The analytics API (Starlette). The lifespan builds the store clients, follows the `keys` topic
up to its end before the app answers (no 401 for a valid key at start), and closes them all.

GET /api/v1/links/{code}/stats, GET /api/v1/links/{code}/live (Server-Sent Events, entrypoints/
live.py; fed by the `link-activity` topic, followed for the life of the process), GET /api/v1/top,
/healthz, /readyz, /metrics, /openapi.json.
"""

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import asyncpg
import msgspec
from limits import RateLimitItem
from platformkit.apikeys import FailedAuth
from platformkit.clientip import ClientAddress, parse_networks
from platformkit.errors import install_error_handlers
from platformkit.health import Check, health_routes
from platformkit.keys_log import KeysLog
from platformkit.ratelimit import RedisRateLimiter
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telemetry import tracing
from telemetry.metrics import HttpMetricsMiddleware, metrics_route

from analytics import service
from analytics.adapters.clickhouse import ClickHouseEvents, build_engine
from analytics.adapters.link_activity import LinkActivityFeed
from analytics.adapters.metrics import LiveCollector
from analytics.adapters.postgres import PostgresTotals
from analytics.cache import CountedCache, TtlCache
from analytics.callers import Callers
from analytics.domain.access import check_top_access
from analytics.domain.errors import InvalidParameter, UnknownLink
from analytics.domain.queries import parse_live, parse_stats, parse_top
from analytics.entrypoints.live import LiveResponse
from analytics.entrypoints.openapi import build_document
from analytics.service_layer.live import LiveHub, open_live
from analytics.settings import AnalyticsSettings

# The one table from domain failure to HTTP status (StoreUnavailable: 503 with Retry-After).
STATUS = {InvalidParameter: 422, UnknownLink: 404}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class BodyResponse(JSONResponse):
    """A response body Struct (domain/model.py) encoded by msgspec."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


async def link_stats(request: Request) -> Response:
    state = request.app.state
    caller = await state.callers.identify(request, key_required=False)
    query = parse_stats(request.path_params["code"], request.query_params, now=_now())
    return BodyResponse(await service.link_stats(query, caller=caller, totals=state.totals, events=state.events))


async def link_live(request: Request) -> Response:
    state = request.app.state
    caller = await state.callers.identify(request, key_required=False)
    code = parse_live(request.path_params["code"], request.query_params)
    settings: AnalyticsSettings = state.settings
    stream = await open_live(
        code, caller=caller, totals=state.totals, hub=state.live_hub, max_stream_s=settings.analytics_live_max_stream_s
    )
    return LiveResponse(stream, heartbeat_s=settings.analytics_live_heartbeat_s)


async def top(request: Request) -> Response:
    state = request.app.state
    caller = await state.callers.identify(request, key_required=True)
    query = parse_top(request.query_params, now=_now(), workspace=check_top_access(caller))
    return BodyResponse(await service.top_links(query, events=state.events, cache=state.top_cache))


def _serve(document: dict[str, Any]) -> Any:
    body = msgspec.json.encode(document)  # built once, at app creation

    async def openapi(_: Request) -> Response:
        return Response(body, media_type="application/json")

    return openapi


def _checks(request: Request) -> dict[str, Check]:
    state = request.app.state
    return {"postgres": state.totals.ping, "clickhouse": state.events.ping}


def _limiter(settings: AnalyticsSettings, limit: RateLimitItem, namespace: str) -> RedisRateLimiter:
    return RedisRateLimiter(
        redis_url=settings.redis_url,
        limit=limit,
        namespace=namespace,
        sentinels=settings.redis_sentinels,
        sentinel_master=settings.redis_sentinel_master,
    )


@asynccontextmanager
async def open_callers(settings: AnalyticsSettings) -> AsyncIterator[Callers]:
    """The key book (read up to the `keys` topic's end before this yields) and the rate limiters."""
    per_key = _limiter(settings, settings.key_rate_limit(), "analytics-key")
    per_address = _limiter(settings, settings.public_rate_limit(), "analytics-public")
    failures = _limiter(settings, settings.auth_failure_limit(), "analytics-authfail")
    keys = KeysLog(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        topic=settings.topic_keys,
        client_id="analytics",
        miss_wait_s=settings.analytics_key_miss_wait_s,
    )
    try:
        await keys.start()
        try:
            yield Callers(
                keys=keys,
                failed_auth=FailedAuth(failures.hit),
                per_key=per_key.hit,
                per_address=per_address.hit,
                client_address=ClientAddress(parse_networks(settings.analytics_trusted_proxies)),
            )
        finally:
            await keys.stop()
    finally:
        for limiter in (per_key, per_address, failures):
            await limiter.aclose()


def create_app(settings: AnalyticsSettings | None = None) -> Starlette:
    """App factory (`analytics.entrypoints.app:create_app`); settings are read here, once."""
    if settings is None:  # the server's factory call: this process's settings and tracing
        settings = AnalyticsSettings()
        tracing.setup_tracing("analytics", otlp_endpoint=settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            pool = await asyncpg.create_pool(
                settings.postgres_read_dsn(),
                min_size=1,
                max_size=settings.analytics_db_pool_size,
                command_timeout=10,
                statement_cache_size=settings.postgres_statement_cache_size,
            )
            stack.push_async_callback(pool.close)
            events = ClickHouseEvents(
                build_engine(
                    settings.clickhouse_url,
                    database=settings.clickhouse_database,
                    timeout_s=settings.analytics_clickhouse_timeout_s,
                    pool_size=settings.analytics_clickhouse_pool_size,
                ),
                visitors=CountedCache(
                    max_entries=settings.analytics_visitor_cache_entries, ttl_s=settings.analytics_visitor_cache_s
                ),
            )
            stack.callback(events.close)
            app.state.callers = await stack.enter_async_context(open_callers(settings))
            app.state.totals = PostgresTotals(pool)
            app.state.events = events
            feed = LinkActivityFeed(
                bootstrap_servers=settings.kafka_bootstrap_servers,
                topic=settings.topic_link_activity,
                client_id="analytics-live",
                on_row=hub.publish,
            )
            await feed.start()
            stack.push_async_callback(feed.stop)
            stack.callback(hub.close)  # first on the way out: every open stream ends
            collector = LiveCollector(hub, feed)
            REGISTRY.register(collector)
            stack.callback(REGISTRY.unregister, collector)
            yield

    hub = LiveHub(max_streams=settings.analytics_live_max_streams)
    app = Starlette(
        routes=[
            Route("/api/v1/links/{code}/stats", link_stats, methods=["GET"]),
            Route("/api/v1/links/{code}/live", link_live, methods=["GET"]),
            Route("/api/v1/top", top, methods=["GET"]),
            Route("/openapi.json", _serve(build_document()), methods=["GET"]),
            metrics_route(),
            *health_routes(_checks),
        ],
        middleware=[*tracing.asgi_middleware(), Middleware(HttpMetricsMiddleware, service="analytics")],
        lifespan=lifespan,
    )
    # Per (workspace, tag, window, limit, bots): room for many workspaces' answers at once.
    app.state.top_cache = TtlCache(settings.analytics_top_cache_s, max_entries=4096)
    app.state.live_hub = hub
    app.state.settings = settings
    install_error_handlers(app, STATUS)
    return app
