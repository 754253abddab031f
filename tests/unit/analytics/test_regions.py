"""Regions (docs/regions.md): the stats answer this region's lifetime counts and the global sum,
from this region's totals and the databases other regions' mirrored clicks are counted into."""

from datetime import UTC, datetime

import httpx
import msgspec
import pytest
from analytics.bootstrap import bootstrap
from analytics.domain.model import Lifetime
from analytics.domain.queries import parse_stats
from analytics.entrypoints.app import create_app
from analytics.service_layer import stats_service
from analytics.settings import AnalyticsSettings
from pydantic import ValidationError

from tests.unit.analytics.test_service import ADMIN, KEYS, FakeEvents, FakeKeys, FakeTotals, Limits, auth
from tests.unit.analytics.test_service import FakeWindow as Window

pytestmark = pytest.mark.unit

NOW = datetime(2026, 11, 30, 12, tzinfo=UTC)
HERE = Lifetime(clicks=23, bot_clicks=2, first_click_at=NOW, last_click_at=NOW)
THERE = Lifetime(clicks=17, bot_clicks=1, first_click_at=NOW, last_click_at=NOW)


async def test_one_region_answers_neither_field() -> None:
    query = parse_stats("abc", {}, now=NOW)
    body = await stats_service.link_stats(
        query, caller=KEYS[ADMIN], totals=FakeTotals({"abc": HERE}), events=FakeEvents()
    )
    encoded = msgspec.json.decode(msgspec.json.encode(body))
    assert "region" not in encoded and "global" not in encoded
    assert encoded["lifetime"]["clicks"] == 23


async def test_a_region_answers_its_own_counts_and_every_region_summed() -> None:
    query = parse_stats("abc", {}, now=NOW)
    body = await stats_service.link_stats(
        query,
        caller=KEYS[ADMIN],
        totals=FakeTotals({"abc": HERE}),
        events=FakeEvents(),
        region="A",
        remote_totals={"C": FakeTotals({}), "B": FakeTotals({"abc": THERE})},  # C: no click counted there
    )
    encoded = msgspec.json.decode(msgspec.json.encode(body))
    assert encoded["region"] == {"name": "A", "clicks": 23, "bot_clicks": 2}
    assert encoded["global"] == {
        "clicks": 40,
        "bot_clicks": 3,
        "regions": [
            {"name": "A", "clicks": 23, "bot_clicks": 2},
            {"name": "B", "clicks": 17, "bot_clicks": 1},
            {"name": "C", "clicks": 0, "bot_clicks": 0},
        ],
    }


async def test_over_http_with_the_region_settings() -> None:
    settings = AnalyticsSettings(analytics_region="B", analytics_trusted_proxies="127.0.0.1")
    limits = Limits(Window(1000), Window(1000), Window(1000))
    runtime = bootstrap(
        settings,
        totals=FakeTotals({"abc": THERE}),
        events=FakeEvents(),
        keys=FakeKeys(),
        per_key=limits.per_key.hit,
        per_address=limits.per_address.hit,
        auth_failures=limits.failures.hit,
        remote_totals={"A": FakeTotals({"abc": HERE})},
    )
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics", headers=auth(ADMIN)) as http:
        r = await http.get("/api/v1/links/abc/stats")
    assert r.status_code == 200, r.text
    assert r.json()["region"] == {"name": "B", "clicks": 17, "bot_clicks": 1}
    assert r.json()["global"]["clicks"] == 40


def test_remote_totals_setting_parses_names_and_dsns() -> None:
    settings = AnalyticsSettings(
        analytics_remote_totals="B=postgresql://u:p@127.0.0.1:5433/shortlink_from_b, C=postgresql+asyncpg://h/c"  # type: ignore[arg-type]
    )
    assert settings.remote_totals_dsns() == {
        "B": "postgresql://u:p@127.0.0.1:5433/shortlink_from_b",
        "C": "postgresql://h/c",
    }
    assert AnalyticsSettings().remote_totals_dsns() == {}


@pytest.mark.parametrize("value", ["postgresql://h/db", "B=", "=postgresql://h/db"])
def test_a_malformed_remote_totals_setting_refuses_to_start(value: str) -> None:
    with pytest.raises(ValidationError, match="NAME=DSN"):
        AnalyticsSettings(analytics_remote_totals=value)  # type: ignore[arg-type]
