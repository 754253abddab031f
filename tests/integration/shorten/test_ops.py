"""Operational endpoints of the running shorten service: health, readiness, metrics, OpenAPI."""

import httpx
import pytest
from contracts import links
from prometheus_client.parser import text_string_to_metric_families
from shorten.entrypoints.representation import CreateLinkRequest, LinkView

pytestmark = pytest.mark.integration


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


async def test_readyz_checks_postgres_and_redis(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


async def test_metrics_count_requests_by_route_template(client: httpx.AsyncClient, auth: dict[str, str]) -> None:
    def count(text: str, route: str, method: str, status: str) -> float:
        wanted = {"service": "shorten", "route": route, "method": method, "status": status}
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "http_requests_total" and sample.labels == wanted
        )

    before = (await client.get("/metrics")).text
    created = await client.post("/api/v1/links", json={"url": "https://e.com/m"}, headers=auth)
    await client.get(f"/api/v1/links/{created.json()['code']}", headers=auth)
    response = await client.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    after = response.text
    assert count(after, "/api/v1/links", "POST", "201") == count(before, "/api/v1/links", "POST", "201") + 1
    assert count(after, "/api/v1/links/{code}", "GET", "200") >= count(before, "/api/v1/links/{code}", "GET", "200") + 1
    assert "http_request_duration_seconds_bucket{" in after and 'service="shorten"' in after
    assert created.json()["code"] not in after  # templates, never raw paths


async def test_openapi_document(client: httpx.AsyncClient) -> None:
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    doc = response.json()
    assert doc["openapi"].startswith("3.")
    assert set(doc["paths"]["/api/v1/links"]) == {"get", "post"}
    listed = doc["paths"]["/api/v1/links"]["get"]
    assert {p["name"] for p in listed["parameters"]} == {"q", "tag", "cursor", "limit"}
    assert "cursor_invalid" in listed["responses"]["422"]["description"]
    assert set(doc["components"]["schemas"]["LinkPage"]["required"]) == {"links", "next_cursor"}
    assert {"get", "patch", "delete"} <= set(doc["paths"]["/api/v1/links/{code}"])
    # Generated from the Structs the handlers check requests against and encode answers from.
    create = doc["components"]["schemas"]["CreateLinkRequest"]
    assert create["required"] == ["url"] and create["additionalProperties"] is False
    assert (
        set(create["properties"])
        == set(CreateLinkRequest.__struct_fields__)
        == {"url", "alias", "expires_at", "redirect_type", "max_clicks", "public_stats", "tags"}
    )
    assert set(doc["components"]["schemas"]["LinkView"]["properties"]) == set(LinkView.__struct_fields__)
    assert "alias_reserved" in doc["paths"]["/api/v1/links"]["post"]["responses"]["422"]["description"]
    # The contract the relay publishes carries the same link fields the API documents.
    update = doc["components"]["schemas"]["UpdateLinkRequest"]
    assert update["additionalProperties"] is False
    assert set(update["properties"]) <= set(links.LinkUpdated.__struct_fields__)


async def test_invented_methods_add_no_series(client: httpx.AsyncClient) -> None:
    def series(text: str) -> set[tuple[tuple[str, str], ...]]:
        return {
            tuple(sorted(sample.labels.items()))
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "http_requests_total"
        }

    for i in range(100):  # warm: the folded series exist once any odd method was seen
        await client.request(f"WARM{i}", "/api/v1/links")
    before = series((await client.get("/metrics")).text)
    for i in range(100):
        response = await client.request(f"INVENTED{i}", "/api/v1/links")
        assert response.status_code in (400, 405)
        await client.request(f"INVENTED{i}", f"/nowhere/{i}")
    after = series((await client.get("/metrics")).text)
    assert not {dict(s)["method"] for s in after} - {
        "GET",
        "HEAD",
        "POST",
        "PUT",
        "PATCH",
        "DELETE",
        "OPTIONS",
        "CONNECT",
        "TRACE",
        "_OTHER",
    }
    assert len(after - before) <= 1  # at most the GET /metrics series, never one per method
