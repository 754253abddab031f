"""The stack's combined health endpoints, served to nginx's public /healthz and /readyz.

This is an operations probe, not part of any data path: it asks each component and each
service's own /healthz or /readyz and reports them together.
"""

import asyncio
import contextlib
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Gauge
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from telemetry.metrics import metrics_route

from stackctl import checks
from stackctl.config import StackSettings


def create_app() -> Starlette:
    settings = StackSettings()
    return health_app(
        live=lambda: checks.service_probes(settings, "/healthz"),
        ready=lambda: {**checks.infra_probes(settings), **checks.service_probes(settings, "/readyz")},
        redis_urls={"primary": f"redis://127.0.0.1:{settings.redis_port}/0",
                    "replica": f"redis://127.0.0.1:{settings.redis_replica_port}/0"},
    )


def health_app(*, live: Callable[[], dict[str, checks.Probe]], ready: Callable[[], dict[str, checks.Probe]],
               redis_urls: dict[str, str]) -> Starlette:
    """/healthz (every service's own /healthz), /readyz (every component and service's /readyz)
    and /metrics (Redis memory). The native and the compose stack differ only in the probes'
    addresses, which `live`, `ready` and `redis_urls` give."""

    async def report(probes: dict[str, checks.Probe]) -> JSONResponse:
        results = await checks.run_probes(probes, timeout=3.0)
        failed = {k: v for k, v in results.items() if v}
        body = {
            "status": "ok" if not failed else "failing",
            "checks": {k: (v or "ok") for k, v in results.items()},
        }
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def healthz(_: Request) -> JSONResponse:
        return await report(live())

    async def readyz(_: Request) -> JSONResponse:
        return await report(ready())

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz), redis_memory_route(redis_urls)])


def redis_memory_route(redis_urls: dict[str, str]) -> Route:
    """`/metrics` with Redis memory (the cache tier's capacity signal) per role, read at scrape
    time from each Redis in `redis_urls` (role -> URL). The compose stack's check serves it too."""
    registry = CollectorRegistry()
    used = Gauge("stack_redis_used_memory_bytes", "Redis INFO used_memory", ["role"], registry=registry)
    limit = Gauge("stack_redis_maxmemory_bytes", "Redis INFO maxmemory (0 = no limit)", ["role"], registry=registry)
    scrape_metrics = metrics_route(registry).endpoint

    async def metrics(request: Request) -> Response:
        results = await asyncio.gather(*(checks.redis_memory(url) for url in redis_urls.values()),
                                       return_exceptions=True)
        for role, result in zip(redis_urls, results, strict=True):
            if isinstance(result, BaseException):
                # No answer: no sample (absent, not a stale value); TargetDown/readyz tell why.
                for gauge in (used, limit):
                    with contextlib.suppress(KeyError):
                        gauge.remove(role)
                continue
            used.labels(role).set(result[0])
            limit.labels(role).set(result[1])
        response: Response = await scrape_metrics(request)
        return response

    return Route("/metrics", metrics)
