"""The Starlette app of the shorten API. `app_from_env` is the factory `serve` runs."""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from platformkit.errors import install_error_handlers
from platformkit.health import Check, health_routes
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from telemetry import tracing
from telemetry.metrics import HttpMetricsMiddleware, metrics_route

from shorten.bootstrap import Runtime, bootstrap
from shorten.entrypoints.bulk_endpoint import bulk_routes
from shorten.entrypoints.http import STATUS, api_routes
from shorten.entrypoints.openapi import build_document
from shorten.entrypoints.qr import qr_routes
from shorten.settings import ShortenSettings


def _readiness(request: Request) -> Mapping[str, Check]:
    runtime: Runtime = request.state.runtime
    return {"postgres": runtime.store.ping, "redis": runtime.limiter.ping}


def create_app(settings: ShortenSettings, *, runtime: Runtime | None = None) -> Starlette:
    """Build the app. Without `runtime` the lifespan wires one (bootstrap) at startup: no client
    exists before the server's loop runs; with one (tests: fakes of the ports) it serves that."""
    document = build_document()

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        wired = runtime if runtime is not None else bootstrap(settings)
        try:
            await wired.start()
            yield {"runtime": wired}
        finally:
            await wired.stop()

    app = Starlette(
        routes=[
            *bulk_routes(),  # before api_routes: /api/v1/links/{code} would take "bulk" as a code
            *api_routes(),
            *qr_routes(),
            *health_routes(_readiness),
            metrics_route(),
            Route("/openapi.json", openapi, methods=["GET"]),
        ],
        middleware=[*tracing.asgi_middleware(), Middleware(HttpMetricsMiddleware, service="shorten")],
        lifespan=lifespan,
    )
    install_error_handlers(app, STATUS)
    return app


def app_from_env() -> Starlette:
    """Factory for platformkit.server.serve: settings read once, from the environment."""
    settings = ShortenSettings()
    tracing.setup_tracing("shorten", otlp_endpoint=settings.otel_exporter_otlp_endpoint)
    return create_app(settings)
