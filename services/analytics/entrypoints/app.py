"""The analytics API (Starlette): HTTP in, use cases (service_layer/stats_service.py) called, JSON
out. The lifespan starts the wired runtime (bootstrap.py: store clients, the `keys` topic followed
up to its end before the app answers) and stops it.

GET /api/v1/links/{code}/stats, GET /api/v1/links/{code}/live (Server-Sent Events, entrypoints/
live_stream.py; fed by the `link-activity` topic, followed for the life of the process), GET /api/v1/top,
/healthz, /readyz, /metrics, /openapi.json.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import msgspec
from platformkit.apikeys import Principal
from platformkit.errors import install_error_handlers
from platformkit.health import Check, health_routes
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telemetry import tracing
from telemetry.metrics import HttpMetricsMiddleware, metrics_route

from analytics.bootstrap import Runtime, bootstrap
from analytics.domain.access import check_top_access
from analytics.domain.errors import InvalidParameter, UnknownLink
from analytics.domain.queries import parse_live, parse_stats, parse_top
from analytics.entrypoints.live_stream import LiveResponse
from analytics.entrypoints.openapi import build_document
from analytics.service_layer import stats_service
from analytics.service_layer.live import open_live
from analytics.settings import AnalyticsSettings

# The one table from domain failure to HTTP status (StoreUnavailable: 503 with Retry-After).
STATUS = {InvalidParameter: 422, UnknownLink: 404}


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class BodyResponse(JSONResponse):
    """A response body Struct (domain/model.py) encoded by msgspec."""

    def render(self, content: Any) -> bytes:
        return msgspec.json.encode(content)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def _caller(request: Request, runtime: Runtime, *, key_required: bool) -> Principal | None:
    return await runtime.callers.identify(
        address=runtime.client_address.of(request.scope),
        header=request.headers.get("authorization") or None,
        key_required=key_required,
    )


async def link_stats(request: Request) -> Response:
    runtime = _runtime(request)
    caller = await _caller(request, runtime, key_required=False)
    query = parse_stats(request.path_params["code"], request.query_params, now=_now())
    return BodyResponse(
        await stats_service.link_stats(
            query,
            caller=caller,
            totals=runtime.totals,
            events=runtime.events,
            region=runtime.region,
            remote_totals=runtime.remote_totals,
        )
    )


async def link_live(request: Request) -> Response:
    runtime = _runtime(request)
    caller = await _caller(request, runtime, key_required=False)
    code = parse_live(request.path_params["code"], request.query_params)
    settings = runtime.settings
    stream = await open_live(
        code,
        caller=caller,
        totals=runtime.totals,
        hub=runtime.live_hub,
        max_stream_s=settings.analytics_live_max_stream_s,
    )
    return LiveResponse(stream, heartbeat_s=settings.analytics_live_heartbeat_s)


async def top(request: Request) -> Response:
    runtime = _runtime(request)
    caller = await _caller(request, runtime, key_required=True)
    assert caller is not None  # key_required: a principal, or identify raised
    query = parse_top(request.query_params, now=_now(), workspace=check_top_access(caller))
    return BodyResponse(await stats_service.top_links(query, events=runtime.events, cache=runtime.top_cache))


def _serve(document: dict[str, Any]) -> Any:
    body = msgspec.json.encode(document)  # built once, at app creation

    async def openapi(_: Request) -> Response:
        return Response(body, media_type="application/json")

    return openapi


def _checks(request: Request) -> dict[str, Check]:
    runtime = _runtime(request)
    return {"postgres": runtime.totals.ping, "clickhouse": runtime.events.ping}


def create_app(settings: AnalyticsSettings | None = None, *, runtime: Runtime | None = None) -> Starlette:
    """App factory (`analytics.entrypoints.app:create_app`); settings are read here, once. Without
    `runtime` the lifespan wires one (bootstrap) at startup; with one (tests: fakes of the ports)
    the app serves that."""
    if settings is None:  # the server's factory call: this process's settings and tracing
        settings = AnalyticsSettings()
        tracing.setup_tracing("analytics", otlp_endpoint=settings.otel_exporter_otlp_endpoint)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        wired = runtime if runtime is not None else bootstrap(settings)
        app.state.runtime = wired
        try:
            await wired.start()
            yield
        finally:
            await wired.stop()

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
    app.state.runtime = runtime
    install_error_handlers(app, STATUS)
    return app
