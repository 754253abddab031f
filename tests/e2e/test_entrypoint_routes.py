"""The public entry point (nginx :8080) routes each path to the right service, and /metrics
stays on the service ports."""

import httpx
import pytest

from tests.conftest import analytics_url, public_url, redirect_replica_urls, shorten_url

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(base_url=public_url(), timeout=10, follow_redirects=False) as c:
        yield c


def test_combined_readiness_lists_every_component(client: httpx.Client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) >= {
        "kafka", "postgres", "redis", "redis-replica", "clickhouse", "nginx",
        "shorten-1", "analytics", "redirect-1", "redirect-2", "redirect-3",
        "aggregator-1", "aggregator-2", "aggregator-3",
    }
    assert all(v == "ok" for v in checks.values())
    assert client.get("/healthz").status_code == 200


def test_links_api_goes_to_shorten(client: httpx.Client) -> None:
    response = client.post("/api/v1/links", json={"url": "https://example.com/"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_missing"


def test_stats_and_top_go_to_analytics(client: httpx.Client) -> None:
    top = client.get("/api/v1/top", params={"window": "1h", "limit": 5})
    assert top.status_code == 200
    bad = client.get("/api/v1/top", params={"window": "1y"})
    assert bad.status_code == 422
    assert "error" in bad.json()
    stats = client.get("/api/v1/links/NoSuchCode123/stats")
    assert stats.status_code == 404
    assert stats.json()["error"]["code"]


def test_other_paths_go_to_redirect(client: httpx.Client) -> None:
    response = client.get("/NoSuchCode123")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")


def test_metrics_are_not_public_but_served_on_service_ports(client: httpx.Client) -> None:
    assert client.get("/metrics").status_code == 404
    for base in [shorten_url(), analytics_url(), *redirect_replica_urls()]:
        response = httpx.get(base + "/metrics", timeout=5)
        assert response.status_code == 200, base
        assert "# TYPE" in response.text


def test_oversized_body_is_a_json_413(client: httpx.Client) -> None:
    response = client.post(
        "/api/v1/links", content=b"a" * 100_000, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_openapi_documents_are_public(client: httpx.Client) -> None:
    for name in ("shorten", "analytics"):
        response = client.get(f"/api/v1/openapi/{name}.json")
        assert response.status_code == 200
        assert response.json()["openapi"].startswith("3.")


def test_every_http_service_serves_its_openapi_document() -> None:
    for base in [shorten_url(), analytics_url(), *redirect_replica_urls()]:
        response = httpx.get(base + "/openapi.json", timeout=5)
        assert response.status_code == 200, base
        assert response.json()["openapi"].startswith("3.")
