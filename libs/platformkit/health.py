"""`GET /healthz` (the process answers) and `GET /readyz` (its dependencies answer)."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Check = Callable[[], Awaitable[object]]


async def _run(check: Check, timeout: float) -> str | None:
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception as exc:  # any failure means "not ready"; the reason is reported
        return f"{type(exc).__name__}: {exc}"[:300]
    return None


def health_routes(checks: Callable[[Request], Mapping[str, Check]], *, timeout: float = 2.0) -> list[Route]:
    """Routes for liveness and readiness. `checks(request)` names the dependency probes."""

    async def healthz(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> JSONResponse:
        named = dict(checks(request))
        results = await asyncio.gather(*(_run(c, timeout) for c in named.values()))
        failures = {name: err for name, err in zip(named, results, strict=True) if err is not None}
        body = {
            "status": "ready" if not failures else "not_ready",
            "checks": {name: (failures.get(name) or "ok") for name in named},
        }
        return JSONResponse(body, status_code=200 if not failures else 503)

    return [
        Route("/healthz", healthz, methods=["GET", "HEAD"]),
        Route("/readyz", readyz, methods=["GET", "HEAD"]),
    ]
