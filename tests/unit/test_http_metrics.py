"""HTTP metrics stay bounded whatever method a client invents."""

import httpx
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from telemetry.metrics import HttpMetricsMiddleware


def series(service: str) -> set[tuple[tuple[str, str], ...]]:
    return {
        tuple(sorted(sample.labels.items()))
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.name == "http_requests_total" and sample.labels.get("service") == service
    }


async def test_invented_methods_fold_into_one_label_value() -> None:
    async def hello(_: object) -> PlainTextResponse:
        return PlainTextResponse("hi")

    app = Starlette(
        routes=[Route("/hello", hello, methods=["GET"])],
        middleware=[Middleware(HttpMetricsMiddleware, service="unit-methods")],
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
        assert (await http.get("/hello")).status_code == 200
        for i in range(100):
            await http.request(f"BREW{i}", "/hello")
            await http.request(f"X-{i}", f"/nowhere/{i}")
    labels = series("unit-methods")
    methods = {dict(s)["method"] for s in labels}
    routes = {dict(s)["route"] for s in labels}
    assert methods == {"GET", "_OTHER"}
    assert routes == {"/hello", "unmatched"}
    # GET 200, and _OTHER 405 on /hello and 404 unmatched: three series for 201 requests.
    assert len(labels) == 3
