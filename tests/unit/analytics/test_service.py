"""Use cases and the HTTP surface with fakes of the analytics ports (no stores)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from analytics import service
from analytics.domain.errors import UnknownLink
from analytics.domain.model import Lifetime, Point, RangeStats, Share, TopLink, iso, render_stats
from analytics.domain.queries import StatsQuery, TopQuery, parse_stats
from analytics.entrypoints.app import create_app
from analytics.entrypoints.openapi import OPENAPI
from analytics.settings import AnalyticsSettings
from starlette.routing import Route

pytestmark = pytest.mark.unit

T0 = datetime(2026, 11, 27, 9, tzinfo=UTC)


class FakeTotals:
    def __init__(self, known: dict[str, Lifetime]) -> None:
        self.known = known

    async def lifetime(self, code: str) -> Lifetime | None:
        return self.known.get(code)

    async def ping(self) -> None:
        return None


class FakeEvents:
    def __init__(self) -> None:
        self.queries: list[StatsQuery | TopQuery] = []

    async def range_stats(self, query: StatsQuery) -> RangeStats:
        self.queries.append(query)
        return RangeStats(clicks=5, unique_visitors=2,
                          series=[Point(t=query.start + timedelta(minutes=1), clicks=5, unique_visitors=2)],
                          referrers=[Share(value="(direct)", clicks=5)], countries=[Share(value="DE", clicks=5)],
                          devices=[Share(value="mobile", clicks=5)])

    async def top(self, query: TopQuery) -> list[TopLink]:
        self.queries.append(query)
        return [TopLink(code="abc", clicks=5, unique_visitors=2)][: query.limit]

    async def ping(self) -> None:
        return None


LIFETIME = Lifetime(clicks=7, bot_clicks=1, first_click_at=T0, last_click_at=T0 + timedelta(minutes=1))


def test_the_series_zero_fills_every_bucket() -> None:
    query = parse_stats("abc", {"from": iso(T0), "to": iso(T0 + timedelta(hours=3))}, now=T0 + timedelta(hours=3))
    stats = RangeStats(clicks=3, unique_visitors=1,
                       series=[Point(t=T0 + timedelta(hours=1), clicks=3, unique_visitors=1)])
    assert render_stats(query, LIFETIME, stats)["series"] == [
        {"t": iso(T0 + timedelta(hours=h)), "clicks": 3 if h == 1 else 0, "unique_visitors": 1 if h == 1 else 0}
        for h in range(3)]


async def test_unknown_code_is_404() -> None:
    query = parse_stats("nobody", {}, now=T0)
    with pytest.raises(UnknownLink) as info:
        await service.link_stats(query, totals=FakeTotals({}), events=FakeEvents())
    assert info.value.status == 404 and info.value.code == "link_not_found"


def client() -> tuple[httpx.AsyncClient, FakeEvents]:
    app = create_app(AnalyticsSettings())
    events = FakeEvents()
    app.state.totals = FakeTotals({"abc": LIFETIME})
    app.state.events = events
    # ASGITransport runs no lifespan: the fakes stand in for the stores.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    return httpx.AsyncClient(transport=transport, base_url="http://analytics"), events


async def test_stats_over_http() -> None:
    http, events = client()
    async with http:
        r = await http.get("/api/v1/links/abc/stats", params={
            "from": "2026-11-27T09:00:00Z", "to": "2026-11-27T09:03:00Z", "interval": "minute"})
    assert r.status_code == 200
    body = r.json()
    assert body["totals"] == {"clicks": 5, "unique_visitors": 2}
    assert body["lifetime"] == {"clicks": 7, "bot_clicks": 1, "first_click_at": "2026-11-27T09:00:00Z",
                                "last_click_at": "2026-11-27T09:01:00Z"}
    assert [p["clicks"] for p in body["series"]] == [0, 5, 0]
    assert body["top_referrers"] == [{"value": "(direct)", "clicks": 5}]
    assert isinstance(events.queries[0], StatsQuery) and events.queries[0].interval == "minute"


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/links/nobody/stats", 404, "link_not_found"),
        ("/api/v1/links/abc/stats?interval=fortnight", 422, "interval_invalid"),
        ("/api/v1/links/abc/stats?from=%00%ff", 422, "time_invalid"),
        ("/api/v1/links/" + "x" * 300 + "/stats", 422, "code_invalid"),
        ("/api/v1/top?limit=1000", 422, "limit_invalid"),
        ("/api/v1/top?window=forever", 422, "window_invalid"),
        ("/api/v1/nothing", 404, "not_found"),
    ],
)
async def test_errors_are_json_with_a_stable_code(path: str, status: int, code: str) -> None:
    http, _ = client()
    async with http:
        r = await http.get(path)
    assert r.status_code == status
    assert r.json()["error"]["code"] == code


async def test_top_over_http() -> None:
    http, _ = client()
    async with http:
        r = await http.get("/api/v1/top", params={"window": "1h", "limit": "1"})
    assert r.status_code == 200
    assert r.json()["links"] == [{"code": "abc", "clicks": 5, "unique_visitors": 2}]


async def test_post_is_405_json() -> None:
    http, _ = client()
    async with http:
        r = await http.post("/api/v1/top")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


async def test_openapi_describes_every_route() -> None:
    app = create_app(AnalyticsSettings())
    paths = {r.path for r in app.routes if isinstance(r, Route)}
    assert paths == set(OPENAPI["paths"])
    http, _ = client()
    async with http:
        assert (await http.get("/openapi.json")).json()["paths"].keys() == OPENAPI["paths"].keys()
