"""The public entry point (nginx :8080) routes each path to the right service, and /metrics
stays on the service ports."""

import asyncio
import re
import time

import httpx
import pytest
from stackctl.config import StackSettings

from tests.conftest import analytics_url, public_url, redirect_replica_urls, shorten_url

pytestmark = pytest.mark.e2e


def stackcheck_url() -> str:
    return f"http://127.0.0.1:{StackSettings().stackcheck_port}"


@pytest.fixture(scope="module")
def client() -> httpx.Client:
    with httpx.Client(base_url=public_url(), timeout=10, follow_redirects=False) as c:
        yield c


def test_combined_readiness_lists_every_component_on_the_internal_port() -> None:
    response = httpx.get(f"{stackcheck_url()}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) >= {
        "kafka",
        "postgres",
        "redis",
        "redis-replica",
        "clickhouse",
        "nginx",
        "shorten-1",
        "analytics",
        "redirect-1",
        "redirect-2",
        "redirect-3",
        "aggregator-1",
        "aggregator-2",
        "aggregator-3",
    }
    assert all(v == "ok" for v in checks.values())


def test_public_health_says_only_ok(client: httpx.Client) -> None:
    for path in ("/readyz", "/healthz"):
        response = client.get(path)
        assert response.status_code == 200, response.text
        assert response.json() == {"status": "ok"}  # no component names, addresses or errors


def rounds(kind: str) -> float:
    text = httpx.get(f"{stackcheck_url()}/metrics", timeout=10).text
    found = re.search(rf'^stack_health_probe_rounds_total{{kind="{kind}"}} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


async def test_public_readiness_runs_at_most_one_probe_round_per_second() -> None:
    before = rounds("ready")
    started = time.monotonic()
    async with httpx.AsyncClient(base_url=public_url(), timeout=20) as http:
        for _ in range(5):  # 5 waves of 40 concurrent requests
            answers = await asyncio.gather(*(http.get("/readyz") for _ in range(40)))
            # The round's verdict is not the point here (a starved host can time a probe out).
            assert all(a.json().keys() == {"status"} for a in answers)
    elapsed = time.monotonic() - started
    ran = rounds("ready") - before
    # 200 requests; one round per started second at most (plus the one in flight at the start).
    assert 1 <= ran <= int(elapsed) + 2, (ran, elapsed)


def test_links_api_goes_to_shorten(client: httpx.Client) -> None:
    response = client.post("/api/v1/links", json={"url": "https://example.com/"})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "api_key_missing"


def test_stats_and_top_go_to_analytics(client: httpx.Client, api_key: str) -> None:
    key = {"Authorization": f"Bearer {api_key}"}
    top = client.get("/api/v1/top", params={"window": "1h", "limit": 5}, headers=key)
    assert top.status_code == 200
    assert client.get("/api/v1/top").json()["error"]["code"] == "api_key_missing"
    bad = client.get("/api/v1/top", params={"window": "1y"}, headers=key)
    assert bad.status_code == 422
    assert "error" in bad.json()
    stats = client.get("/api/v1/links/NoSuchCode123/stats", headers=key)
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
    response = client.post("/api/v1/links", content=b"a" * 100_000, headers={"Content-Type": "application/json"})
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
