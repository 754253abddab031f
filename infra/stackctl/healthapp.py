"""The stack's combined health endpoints, served to nginx's public /healthz and /readyz.

This is an operations probe, not part of any data path: it asks each component and each
service's own /healthz or /readyz and reports them together.

One round of probes opens connections to every component and asks every service, so it is
never run per request: a round's result is kept for `max_age_s` (1 s) and concurrent requests
share the round in flight; `stack_health_probe_rounds_total` counts the rounds. The internal
port (stackcheck, loopback) answers with each check's reason; the public paths that nginx maps
/healthz and /readyz to (/public/...) say only ok or failing, never an address or an error text.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from prometheus_client import CollectorRegistry, Counter, Gauge
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
        redis_urls={
            "primary": f"redis://127.0.0.1:{settings.redis_port}/0",
            "replica": f"redis://127.0.0.1:{settings.redis_replica_port}/0",
        },
    )


Results = dict[str, str | None]  # check name -> None (ok) or why it failed


class SharedRound:
    """The last round's results while younger than `max_age_s`; else one new round, shared by
    every caller that asks while it runs."""

    def __init__(
        self, run: Callable[[], Awaitable[Results]], *, max_age_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._run, self._max_age_s, self._clock = run, max_age_s, clock
        self._round: asyncio.Future[Results] | None = None
        self._started = 0.0

    async def results(self) -> Results:
        now = self._clock()
        if self._round is None or (self._round.done() and now - self._started >= self._max_age_s):
            self._started = now
            self._round = asyncio.ensure_future(self._run())
        return await asyncio.shield(self._round)


def health_app(
    *,
    live: Callable[[], dict[str, checks.Probe]],
    ready: Callable[[], dict[str, checks.Probe]],
    redis_urls: dict[str, str],
    max_age_s: float = 1.0,
) -> Starlette:
    """/healthz (every service's own /healthz), /readyz (every component and service's /readyz),
    their public forms /public/healthz and /public/readyz, and /metrics (Redis memory, probe
    rounds). The native and the compose stack differ only in the probes' addresses, which
    `live`, `ready` and `redis_urls` give."""
    registry = CollectorRegistry()
    rounds = Counter("stack_health_probe_rounds", "Rounds of health probes run", ["kind"], registry=registry)

    def shared(kind: str, probes: Callable[[], dict[str, checks.Probe]]) -> SharedRound:
        async def run() -> Results:
            rounds.labels(kind).inc()
            return await checks.run_probes(probes(), timeout=3.0)

        return SharedRound(run, max_age_s=max_age_s)

    live_round, ready_round = shared("live", live), shared("ready", ready)

    def report(results: Results, *, detail: bool) -> JSONResponse:
        failed = any(results.values())
        body: dict[str, object] = {"status": "failing" if failed else "ok"}
        if detail:
            body["checks"] = {k: (v or "ok") for k, v in results.items()}
        return JSONResponse(body, status_code=503 if failed else 200)

    async def healthz(_: Request) -> JSONResponse:
        return report(await live_round.results(), detail=True)

    async def readyz(_: Request) -> JSONResponse:
        return report(await ready_round.results(), detail=True)

    async def public_healthz(_: Request) -> JSONResponse:
        return report(await live_round.results(), detail=False)

    async def public_readyz(_: Request) -> JSONResponse:
        return report(await ready_round.results(), detail=False)

    return Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/public/healthz", public_healthz),
            Route("/public/readyz", public_readyz),
            redis_memory_route(redis_urls, registry),
        ]
    )


def redis_memory_route(redis_urls: dict[str, str], registry: CollectorRegistry | None = None) -> Route:
    """`/metrics` with Redis memory (the cache tier's capacity signal) per role, read at scrape
    time from each Redis in `redis_urls` (role -> URL), and whatever else `registry` holds. The
    compose stack's check serves it too."""
    registry = registry if registry is not None else CollectorRegistry()
    used = Gauge("stack_redis_used_memory_bytes", "Redis INFO used_memory", ["role"], registry=registry)
    limit = Gauge("stack_redis_maxmemory_bytes", "Redis INFO maxmemory (0 = no limit)", ["role"], registry=registry)
    scrape_metrics = metrics_route(registry).endpoint

    async def metrics(request: Request) -> Response:
        results = await asyncio.gather(
            *(checks.redis_memory(url) for url in redis_urls.values()), return_exceptions=True
        )
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
