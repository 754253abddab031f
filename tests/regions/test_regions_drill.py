"""Phase D drill (issue 11 item 6, docs/regions.md): two regions, two Kafka clusters, MirrorMaker 2
between them. `just up`, `just regions up`, then `just regions drill` (this file).

Not part of `just test` (CI): region B adds two JVMs (its Kafka and MirrorMaker 2) and five Python
processes to the shared 2-core machine; `just regions up` takes about two minutes and the drill
about one.
"""

import time
from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest
from stackctl.regions import RegionSettings

from tests.conftest import analytics_url, public_url, wait_until_async

pytestmark = pytest.mark.regions

REGION = RegionSettings()
REGION_B_REDIRECT = f"http://127.0.0.1:{REGION.region_b_redirect_port}"
REGION_B_ANALYTICS = f"http://127.0.0.1:{REGION.region_b_analytics_port}"
HUMAN = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"}
# The bound: a link created in region A redirects in region B within this long.
MIRROR_BOUND_S = 2.0


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10, follow_redirects=False) as client:
        yield client


async def create_in_a(http: httpx.AsyncClient, api_key: str) -> tuple[str, float]:
    """A new link in region A (its home region): its code and when region A answered 201."""
    r = await http.post(
        f"{public_url()}/api/v1/links",
        json={"url": "https://example.com/regions-drill"},
        headers={"Authorization": f"Bearer {api_key}"},
    )
    assert r.status_code == 201, r.text
    return str(r.json()["code"]), time.monotonic()


async def test_a_link_created_in_region_a_redirects_in_region_b_within_2_s(
    http: httpx.AsyncClient, api_key: str
) -> None:
    code, created = await create_in_a(http, api_key)

    async def redirects_in_b() -> bool:
        r = await http.get(f"{REGION_B_REDIRECT}/{code}", headers={"User-Agent": "regions-drill-probe bot"})
        assert r.status_code in (301, 302, 307, 308, 404), r.text
        return r.status_code != 404

    await wait_until_async(redirects_in_b, timeout=30, interval=0.02, what=f"{code} redirecting in region B")
    elapsed = time.monotonic() - created
    assert elapsed < MIRROR_BOUND_S, f"region B redirected {code} {elapsed:.2f} s after region A created it"


async def test_clicks_are_counted_where_they_happen_and_each_region_reports_the_global_total(
    http: httpx.AsyncClient, api_key: str
) -> None:
    code, _ = await create_in_a(http, api_key)
    n_a, n_b = 23, 17

    async def redirect(base: str) -> bool:
        r = await http.get(f"{base}/{code}", headers=HUMAN)
        assert r.status_code in (301, 302, 307, 308, 404), r.text
        return r.status_code != 404

    # Region A's answer 201 means its replicas have the link; region B's has it once mirrored
    # (a 404 is not a click: the first redirect served is click 1).
    await wait_until_async(lambda: redirect(public_url()), timeout=30, interval=0.05, what="redirect in A")
    for _ in range(n_a - 1):
        assert await redirect(public_url())
    await wait_until_async(lambda: redirect(REGION_B_REDIRECT), timeout=30, interval=0.05, what="redirect in B")
    for _ in range(n_b - 1):
        assert await redirect(REGION_B_REDIRECT)

    def stats_of(base: str) -> Callable[[], Awaitable[dict[str, object] | None]]:
        async def poll() -> dict[str, object] | None:
            r = await http.get(f"{base}/api/v1/links/{code}/stats", headers={"Authorization": f"Bearer {api_key}"})
            if r.status_code != 200:  # region B: the link's owner arrives with A.links
                return None
            body: dict[str, object] = r.json()
            total = body.get("global")
            return body if isinstance(total, dict) and total.get("clicks") == n_a + n_b else None

        return poll

    in_a = await wait_until_async(stats_of(analytics_url()), timeout=60, interval=0.2, what="global total in A")
    in_b = await wait_until_async(stats_of(REGION_B_ANALYTICS), timeout=60, interval=0.2, what="global total in B")
    assert in_a["region"] == {"name": "A", "clicks": n_a, "bot_clicks": 0}
    assert in_b["region"] == {"name": "B", "clicks": n_b, "bot_clicks": 0}
    assert in_a["lifetime"]["clicks"] == n_a and in_b["lifetime"]["clicks"] == n_b  # type: ignore[index]
    regions = [{"name": "A", "clicks": n_a, "bot_clicks": 0}, {"name": "B", "clicks": n_b, "bot_clicks": 0}]
    assert in_a["global"] == {"clicks": n_a + n_b, "bot_clicks": 0, "regions": regions}
    assert in_b["global"] == {"clicks": n_a + n_b, "bot_clicks": 0, "regions": regions[::-1]}
