"""The analytics API through nginx: known link without clicks, unknown code, bad parameters."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import public_url, wait_until_async
from tests.integration.aggregator.support import unique_code

pytestmark = pytest.mark.e2e


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as c:
        yield c


async def test_a_new_link_has_zero_stats_and_an_unknown_code_is_404(public: httpx.AsyncClient, api_key: str) -> None:
    created = await public.post(
        "/api/v1/links",
        json={"url": "https://example.com/analytics-e2e"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert created.status_code == 201
    code = created.json()["code"]

    async def known() -> httpx.Response | None:
        r = await public.get(f"/api/v1/links/{code}/stats", headers={"Authorization": f"Bearer {api_key}"})
        return r if r.status_code == 200 else None

    # shorten -> outbox relay -> links topic -> aggregator -> clicks.links_known
    r = await wait_until_async(known, timeout=30, interval=0.2, what="link known to analytics")
    body = r.json()
    assert body["lifetime"] == {"clicks": 0, "bot_clicks": 0, "first_click_at": None, "last_click_at": None}
    assert body["totals"] == {"clicks": 0, "unique_visitors": 0}
    assert len(body["series"]) == 24 and all(p["clicks"] == 0 for p in body["series"])

    missing = await public.get(
        f"/api/v1/links/{unique_code('never')}/stats", headers={"Authorization": f"Bearer {api_key}"}
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "link_not_found"
    # Without a key, the existing private link answers exactly as the unknown code does.
    anonymous = await public.get(f"/api/v1/links/{code}/stats")
    assert anonymous.status_code == 404 and anonymous.json()["error"]["code"] == "link_not_found"


@pytest.mark.parametrize(
    ("path", "rule"),
    [
        ("/api/v1/links/abc/stats?interval=year", "interval_invalid"),
        (
            "/api/v1/links/abc/stats?from=2026-01-01T00:00:00Z&to=2026-03-01T00:00:00Z&interval=minute",
            "range_too_large",
        ),
        ("/api/v1/links/abc/stats?to=not-a-time", "time_invalid"),
        ("/api/v1/top?window=5m", "window_invalid"),
        ("/api/v1/top?limit=100000", "limit_invalid"),
    ],
)
async def test_bad_parameters_are_422_json(public: httpx.AsyncClient, api_key: str, path: str, rule: str) -> None:
    r = await public.get(path, headers={"Authorization": f"Bearer {api_key}"})
    assert r.status_code == 422 and r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["code"] == rule and r.json()["error"]["message"]
