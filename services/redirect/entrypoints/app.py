"""The ASGI app of a redirect replica. `app_from_env` is the factory `serve` runs.

`HotPath` answers GET/HEAD /{code} itself: one regex match (what can be a code and is not an ops
route), then the plain ASGI endpoint -- no Starlette routing, no middleware on the hot path.
Everything else goes to the Starlette app: /healthz, /readyz, /metrics, /openapi.json (with the
shared per-route HTTP metrics middleware, attached to those routes only), other methods on a
code (405), the lifespan. A path that cannot be a code matches nothing: JSON 404, Redis untouched.
"""

import re
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from contracts.links import CODE_PATTERN
from platformkit.errors import install_error_handlers
from platformkit.health import Check, health_routes
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.convertors import Convertor, register_url_convertor
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import BaseRoute, Route
from telemetry import tracing
from telemetry.metrics import HttpMetricsMiddleware, metrics_route

from redirect.bootstrap import Runtime, bootstrap
from redirect.entrypoints.openapi import OPS_ROUTES, build_document
from redirect.entrypoints.redirect import RedirectEndpoint
from redirect.settings import RedirectSettings


class CodeConvertor(Convertor[str]):
    """A path segment that can be a short code ([A-Za-z0-9_-]{1,64}) and is not an ops route."""

    regex = r"(?!(?:" + "|".join(OPS_ROUTES) + r")$)" + CODE_PATTERN

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


class HotPath:
    """ASGI entry: GET/HEAD of a path that can be a code goes straight to the redirect endpoint
    (what Starlette's router would do, minus its per-request layers); the rest to `app`."""

    def __init__(self, endpoint: RedirectEndpoint, app: Starlette) -> None:
        self.endpoint = endpoint
        self.app = app
        self._code = re.compile("/(" + CodeConvertor.regex + ")").fullmatch

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD") and not scope.get("root_path"):
            match = self._code(scope["path"])
            if match is not None:
                await self.endpoint.serve(match[1], scope, send)
                return
        await self.app(scope, receive, send)


class NotCaughtUp(Exception):
    """The links consumer has not yet applied the end offsets seen at start."""


def _readiness(request: Request) -> Mapping[str, Check]:
    runtime: Runtime = request.state.runtime

    async def links_consumer() -> None:
        projector = runtime.projector
        if not projector.caught_up():
            raise NotCaughtUp(f"applied {projector.next_offsets}, start end offsets {projector.targets}")

    return {"redis": runtime.store.ping, "links_consumer": links_consumer}


def _with_http_metrics(routes: list[Route]) -> list[BaseRoute]:
    middleware = [Middleware(HttpMetricsMiddleware, service="redirect")]
    return [Route(r.path, r.endpoint, methods=sorted(r.methods or ["GET"]), middleware=middleware) for r in routes]


def create_app(settings: RedirectSettings, *, runtime: Runtime | None = None) -> HotPath:
    """Build the app. Without `runtime` the lifespan wires one (bootstrap) at startup: no client
    exists before the server's loop runs; with one (tests: fakes of the ports) it serves that."""
    endpoint = RedirectEndpoint(runtime.core if runtime is not None else None)
    document = build_document()
    registry = runtime.registry if runtime is not None else REGISTRY

    async def openapi(_: Request) -> JSONResponse:
        return JSONResponse(document)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[dict[str, Any]]:
        wired = runtime if runtime is not None else bootstrap(settings, registry=registry)
        endpoint.core = wired.core
        try:
            await wired.start()
            yield {"runtime": wired}
        finally:
            await wired.stop()

    register_url_convertor("shortcode", CodeConvertor())
    app = Starlette(
        routes=[
            Route("/{code:shortcode}", endpoint, methods=["GET", "HEAD"]),
            *_with_http_metrics([*health_routes(_readiness), metrics_route(registry), Route("/openapi.json", openapi)]),
        ],
        lifespan=lifespan,
    )
    # "/abc/" is not a code: answer 404, never a redirect to "/abc".
    app.router.redirect_slashes = False
    install_error_handlers(app)
    return HotPath(endpoint, app)


def app_from_env() -> HotPath:
    """Factory for platformkit.server.serve: settings read once, from the environment."""
    settings = RedirectSettings()
    tracing.setup_tracing(
        f"redirect-{settings.redirect_replica_id}", otlp_endpoint=settings.otel_exporter_otlp_endpoint
    )
    return create_app(settings)
