"""Faust web views on the worker's port (127.0.0.1:AGGREGATOR_WEB_PORT)."""

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import faust
import msgspec
from contracts.links import CODE_RE
from prometheus_client import CONTENT_TYPE_LATEST

from aggregator.adapters.faust_tables import FaustWindowView
from aggregator.bootstrap import LazyStores
from aggregator.entrypoints.openapi import LinkWindows, WindowCount, build_document
from aggregator.metrics import AggregatorMetrics


def register(
    app: faust.App,
    *,
    runtime: LazyStores,
    metrics: AggregatorMetrics,
    window_view: FaustWindowView,
    refresh_lag: Callable[[], int],
    window_minutes: int,
) -> None:
    document = msgspec.json.encode(build_document())

    @app.page("/openapi.json")
    async def openapi(web: Any, request: Any) -> Any:
        return web.bytes(document, content_type="application/json")

    @app.page("/metrics")
    async def prometheus_metrics(web: Any, request: Any) -> Any:
        refresh_lag()  # lag per partition as of now, not as of the last batch
        return web.bytes(metrics.render(), content_type=CONTENT_TYPE_LATEST.split(";")[0])

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        return web.json({"status": "ok"})

    @app.page("/readyz")
    async def readyz(web: Any, request: Any) -> Any:
        checks: dict[str, str] = {}
        try:
            rt = await asyncio.wait_for(runtime.get(), 2.0)
            await asyncio.wait_for(rt.ledger.ping(), 2.0)
            checks["postgres"] = "ok"
            await asyncio.wait_for(rt.clickhouse.ping(), 2.0)
            checks["clickhouse"] = "ok"
        except Exception as exc:
            checks["error"] = f"{type(exc).__name__}: {exc}"[:300]
            return web.json({"status": "not_ready", "checks": checks}, status=503)
        return web.json({"status": "ready", "checks": checks})

    @app.page("/links/{code}/window")
    async def link_window(web: Any, request: Any, code: str) -> Any:
        if not CODE_RE.fullmatch(code):
            return web.json({"error": {"code": "invalid_input", "message": "bad code", "field": "code"}}, status=422)
        minutes = window_view.recent(code, now=datetime.now(UTC), minutes=window_minutes)
        body = LinkWindows(code=code, windows=[WindowCount(**m) for m in minutes])
        return web.bytes(msgspec.json.encode(body), content_type="application/json")
