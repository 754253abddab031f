"""The analytics service (:8002) over the real stores, fed through the real pipeline."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.conftest import analytics_url, wait_until_async
from tests.integration.aggregator.support import ClickProducer, Expected, Stores, iso, make_click, unique_code
from tests.support.keys import link_created, publish_links

pytestmark = pytest.mark.integration


@pytest.fixture
async def api(api_key: str) -> AsyncIterator[httpx.AsyncClient]:
    """The stack's admin key (workspace `default`, which owns codes never announced on `links`)."""
    async with httpx.AsyncClient(
        base_url=analytics_url(), timeout=10, headers={"Authorization": f"Bearer {api_key}"}
    ) as c:
        yield c


async def test_time_series_ranges_bots_and_breakdowns(api: httpx.AsyncClient) -> None:
    code = unique_code("ts")
    now = datetime.now(UTC).replace(second=30, microsecond=0)
    early, late = now - timedelta(minutes=20), now - timedelta(minutes=10)
    events = (
        [make_click(code, i, at=early) for i in range(5)]
        + [make_click(code, i, at=late) for i in range(3)]
        + [make_click(code, i, bot=True, at=late) for i in range(2)]
    )
    async with ClickProducer() as producer, Stores() as stores:
        await producer.send(events)
        await stores.wait_counted(code, Expected(8, 2))

    async def stats(**params: str) -> dict:  # type: ignore[type-arg]
        r = await api.get(f"/api/v1/links/{code}/stats", params=params)
        assert r.status_code == 200, r.text
        return r.json()  # type: ignore[no-any-return]

    recent = await stats(interval="minute", **{"from": iso(now - timedelta(minutes=15))}, to=iso(now))
    assert recent["totals"] == {"clicks": 3, "unique_visitors": 3}
    assert [p["clicks"] for p in recent["series"] if p["clicks"]] == [3]
    assert recent["series"][5]["t"] == iso(late.replace(second=0))
    assert recent["lifetime"]["clicks"] == 8 and recent["lifetime"]["bot_clicks"] == 2
    with_bots = await stats(interval="minute", include_bots="true", **{"from": iso(now - timedelta(minutes=15))})
    assert with_bots["totals"]["clicks"] == 5
    assert {d["value"]: d["clicks"] for d in with_bots["devices"]} == {"bot": 2, "desktop": 2, "mobile": 1}
    everything = await stats(interval="minute", **{"from": iso(now - timedelta(minutes=30))})
    assert everything["totals"]["clicks"] == 8 and sum(p["clicks"] for p in everything["series"]) == 8
    assert sum(c["clicks"] for c in everything["countries"]) == 8
    assert sum(r["clicks"] for r in everything["top_referrers"]) == 8
    for interval in ("hour", "day"):
        rolled = await stats(interval=interval)
        assert rolled["totals"]["clicks"] == 8 and sum(p["clicks"] for p in rolled["series"]) == 8


async def test_top_ranks_by_clicks_in_the_window(api: httpx.AsyncClient, api_key: str) -> None:
    """The admin key's workspace (`default`): links announced on `links` in it, ranked among the
    workspace's others (other tests add theirs meanwhile: ours must be there, exact, in its place)."""
    leader = 0
    for window in ("1h", "24h", "7d"):
        before = (await api.get("/api/v1/top", params={"window": window, "limit": "1"})).json()["links"]
        leader = max([leader, *(t["clicks"] for t in before)])
    code = unique_code("top")
    await publish_links([link_created(code, workspace="default")])
    async with ClickProducer() as producer, Stores() as stores:
        await producer.send([make_click(code, i) for i in range(leader + 5)])
        await stores.wait_counted(code, Expected(leader + 5, 0), timeout=120)
    for window in ("1h", "24h", "7d"):

        async def ranked_ours(window: str = window) -> list[dict] | None:  # type: ignore[type-arg]
            links = (await api.get("/api/v1/top", params={"window": window, "limit": "100"})).json()["links"]
            return links if code in {t["code"] for t in links} else None

        links = await wait_until_async(ranked_ours, timeout=30, interval=0.5, what=f"{code} in /top {window}")
        ranked = {t["code"]: (i, t["clicks"]) for i, t in enumerate(links)}
        assert ranked[code][1] == leader + 5, window
        assert all(t["clicks"] >= leader + 5 for t in links[: ranked[code][0]])
        assert [t["clicks"] for t in links] == sorted((t["clicks"] for t in links), reverse=True)
        assert len(links) <= 100


async def test_health_readiness_metrics_and_openapi(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = await api.get("/readyz")
    assert ready.status_code == 200 and ready.json()["checks"] == {"postgres": "ok", "clickhouse": "ok"}
    await api.get("/api/v1/top")
    metrics = (await api.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/api/v1/top",service="analytics",status="200"}' in metrics
    assert "http_request_duration_seconds_bucket" in metrics
    spec = (await api.get("/openapi.json")).json()
    assert spec["openapi"].startswith("3.") and "/api/v1/links/{code}/stats" in spec["paths"]
