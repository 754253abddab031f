"""Prometheus helpers: the `/metrics` route and per-route HTTP metrics.

The HTTP metrics middleware is pure ASGI and labels by route *template* and by method from a
fixed set (bounded cardinality: a client can send any method name, and every distinct label value
would be a new series kept for the life of the process).
The redirect hot path does not use it: it records its own counters inline.
"""

import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match, Route

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by service, route template, method and status",
    ["service", "route", "method", "status"],
)
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "HTTP request latency by service, route template and method",
    ["service", "route", "method"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


# RFC 9110's methods plus PATCH; any other method is counted as OTHER_METHOD (OpenTelemetry's
# semantic conventions use the same value for the same reason).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})
OTHER_METHOD = "_OTHER"


def method_label(method: str) -> str:
    return method if method in KNOWN_METHODS else OTHER_METHOD


def metrics_route(registry: CollectorRegistry = REGISTRY) -> Route:
    async def metrics(_: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])


class HttpMetricsMiddleware:
    """Counts requests and observes latency per route template."""

    def __init__(self, app: ASGIApp, *, service: str) -> None:
        self.app = app
        self.service = service

    def _route(self, scope: Scope) -> str:
        # Starlette's router leaves the route it picked in the scope: check that one first
        # (one match instead of one per route); it may be a partial match (405), hence the check.
        picked = scope.get("route")
        if picked is not None and picked.matches(scope)[0] == Match.FULL:
            return str(getattr(picked, "path", "other"))
        router = scope.get("app")
        for route in getattr(getattr(router, "router", None), "routes", ()):
            match, _ = route.matches(scope)
            if match == Match.FULL:
                return str(getattr(route, "path", "other"))
        return "unmatched"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = self._route(scope)
            method = method_label(scope.get("method", "GET"))
            HTTP_REQUESTS.labels(self.service, route, method, str(status)).inc()
            HTTP_LATENCY.labels(self.service, route, method).observe(time.perf_counter() - start)
