"""The stack's combined health endpoints, served to nginx's public /healthz and /readyz.

This is an operations probe, not part of any data path: it asks each component and each
service's own /healthz or /readyz and reports them together.
"""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from stackctl import checks
from stackctl.config import StackSettings


def create_app() -> Starlette:
    settings = StackSettings()

    async def report(probes: dict[str, checks.Probe]) -> JSONResponse:
        results = await checks.run_probes(probes, timeout=3.0)
        failed = {k: v for k, v in results.items() if v}
        body = {
            "status": "ok" if not failed else "failing",
            "checks": {k: (v or "ok") for k, v in results.items()},
        }
        return JSONResponse(body, status_code=200 if not failed else 503)

    async def healthz(_: Request) -> JSONResponse:
        return await report(checks.service_probes(settings, "/healthz"))

    async def readyz(_: Request) -> JSONResponse:
        return await report({**checks.infra_probes(settings), **checks.service_probes(settings, "/readyz")})

    return Starlette(routes=[Route("/healthz", healthz), Route("/readyz", readyz)])
