"""Redirects through nginx -> redirect -> clicks topic -> aggregator -> analytics: after N
redirects the totals are N, in the API and in both stores."""

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.conftest import public_url, wait_until_async
from tests.integration.aggregator.support import Stores

pytestmark = pytest.mark.e2e

AGENTS = (
    "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148",
    "Googlebot/2.1 (+http://www.google.com/bot.html)",
)


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=public_url(), timeout=10) as c:
        yield c


async def create_link(public: httpx.AsyncClient, api_key: str) -> str:
    r = await public.post(
        "/api/v1/links",
        json={"url": "https://example.com/pipeline-e2e"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["code"])


async def test_n_redirects_count_n_in_the_api_and_both_stores(public: httpx.AsyncClient, api_key: str) -> None:
    code = await create_link(public, api_key)
    n = 60

    async def redirect(i: int) -> bool:
        r = await public.get(
            f"/{code}", headers={"User-Agent": AGENTS[i % 3], "Referer": "https://www.e2e.example/page"}
        )
        assert r.status_code in (301, 302, 307, 308, 404), r.text
        return r.status_code != 404

    # The redirect replicas learn the new link from the links topic: until then it is a 404
    # (which is not a click). The first redirect served is click 1.
    await wait_until_async(lambda: redirect(0), timeout=30, interval=0.1, what=f"{code} redirecting")
    for i in range(1, n):
        assert await redirect(i)

    async def counted() -> dict[str, object] | None:
        body = (
            await public.get(
                f"/api/v1/links/{code}/stats",
                params={"interval": "minute", "include_bots": "true"},
                headers={"Authorization": f"Bearer {api_key}"},
            )
        ).json()
        life = body.get("lifetime", {})
        return body if life.get("clicks", 0) + life.get("bot_clicks", 0) >= n else None

    body = await wait_until_async(counted, timeout=60, interval=0.2, what=f"{n} clicks on {code}")
    life = body["lifetime"]
    assert isinstance(life, dict) and life["clicks"] + life["bot_clicks"] == n
    assert body["totals"] == {"clicks": n, "unique_visitors": body["totals"]["unique_visitors"]}  # type: ignore[index]
    assert {r["value"] for r in body["top_referrers"]} == {"e2e.example"}  # type: ignore[index]
    async with Stores() as stores:
        totals = await stores.pg_totals(code)
        assert totals is not None and totals.clicks + totals.bot_clicks == n
        assert await stores.ch_raw(code) == totals  # the stores agree
