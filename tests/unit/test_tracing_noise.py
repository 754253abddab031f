"""Scrapes and probes open no spans; every other request does."""

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from telemetry import tracing

pytestmark = pytest.mark.unit


async def ok(_: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


PATHS = [
    "/metrics",
    "/healthz",
    "/readyz",
    "/public/healthz",
    "/public/readyz",
    "/api/v1/links",
    "/healthzz",
    "/api/v1/metrics",
]


def test_only_requests_that_are_not_scrapes_or_probes_are_traced() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = Starlette(routes=[Route(p, ok) for p in PATHS], middleware=tracing.asgi_middleware(provider))
    with TestClient(app) as client:
        for path in PATHS:
            assert client.get(path + "?x=1").status_code == 200
            assert client.get(path).status_code == 200
    traced = sorted(
        {
            s.attributes.get("url.path") or s.attributes.get("http.target", "")
            for s in exporter.get_finished_spans()
            if s.attributes
        }
    )
    assert [t.split("?")[0] for t in traced] == sorted(["/api/v1/links", "/healthzz", "/api/v1/metrics"])
