"""The analytics API (Starlette). The lifespan builds the store clients and closes them.

GET /api/v1/links/{code}/stats, GET /api/v1/top, /healthz, /readyz, /metrics, /openapi.json.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import asyncpg
from platformkit.errors import install_error_handlers
from platformkit.health import Check, health_routes
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from telemetry import tracing
from telemetry.metrics import HttpMetricsMiddleware, metrics_route

from analytics import service
from analytics.adapters.clickhouse import ClickHouseEvents, build_engine
from analytics.adapters.postgres import PostgresTotals
from analytics.cache import CountedCache, TtlCache
from analytics.domain.queries import parse_stats, parse_top
from analytics.entrypoints.openapi import OPENAPI
from analytics.settings import AnalyticsSettings


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


async def link_stats(request: Request) -> JSONResponse:
    query = parse_stats(request.path_params["code"], request.query_params, now=_now())
    state = request.app.state
    return JSONResponse(await service.link_stats(query, totals=state.totals, events=state.events))


async def top(request: Request) -> JSONResponse:
    query = parse_top(request.query_params, now=_now())
    state = request.app.state
    return JSONResponse(await service.top_links(query, events=state.events, cache=state.top_cache))


async def openapi(_: Request) -> JSONResponse:
    return JSONResponse(OPENAPI)


def _checks(request: Request) -> dict[str, Check]:
    state = request.app.state
    return {"postgres": state.totals.ping, "clickhouse": state.events.ping}


def create_app(settings: AnalyticsSettings | None = None) -> Starlette:
    """App factory (`analytics.entrypoints.app:create_app`); settings are read here, once."""
    if settings is None:  # the server's factory call: this process's settings and tracing
        settings = AnalyticsSettings()
        tracing.setup_tracing("analytics", otlp_endpoint=settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool = await asyncpg.create_pool(settings.postgres_read_dsn(), min_size=1,
                                         max_size=settings.analytics_db_pool_size, command_timeout=10,
                                         statement_cache_size=settings.postgres_statement_cache_size)
        events = ClickHouseEvents(build_engine(
            settings.clickhouse_url, database=settings.clickhouse_database,
            timeout_s=settings.analytics_clickhouse_timeout_s,
            pool_size=settings.analytics_clickhouse_pool_size,
        ), visitors=CountedCache(max_entries=settings.analytics_visitor_cache_entries,
                                 ttl_s=settings.analytics_visitor_cache_s))
        app.state.totals = PostgresTotals(pool)
        app.state.events = events
        try:
            yield
        finally:
            events.close()
            await pool.close()

    app = Starlette(
        routes=[
            Route("/api/v1/links/{code}/stats", link_stats, methods=["GET"]),
            Route("/api/v1/top", top, methods=["GET"]),
            Route("/openapi.json", openapi, methods=["GET"]),
            metrics_route(),
            *health_routes(_checks),
        ],
        middleware=[*tracing.asgi_middleware(), Middleware(HttpMetricsMiddleware, service="analytics")],
        lifespan=lifespan,
    )
    app.state.top_cache = TtlCache(settings.analytics_top_cache_s)
    install_error_handlers(app)
    return app
