"""Use cases and the HTTP surface with fakes of the analytics ports (no stores)."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import msgspec
import pytest
from analytics.bootstrap import bootstrap
from analytics.domain.errors import UnknownLink
from analytics.domain.model import Lifetime, Point, RangeStats, Share, TopLink, iso, render_stats
from analytics.domain.queries import StatsQuery, TopQuery, parse_stats
from analytics.entrypoints.app import STATUS, create_app
from analytics.entrypoints.openapi import build_document
from analytics.service_layer import stats_service
from analytics.settings import AnalyticsSettings
from platformkit.apikeys import Principal, bearer_secret, invalid_key, missing_key
from platformkit.ratelimit import Verdict
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
        return RangeStats(
            clicks=5,
            unique_visitors=2,
            series=[Point(t=query.start + timedelta(minutes=1), clicks=5, unique_visitors=2)],
            referrers=[Share(value="(direct)", clicks=5)],
            countries=[Share(value="DE", clicks=5)],
            devices=[Share(value="mobile", clicks=5)],
        )

    async def top(self, query: TopQuery) -> list[TopLink]:
        self.queries.append(query)
        return [TopLink(code="abc", clicks=5, unique_visitors=2)][: query.limit]

    async def ping(self) -> None:
        return None


LIFETIME = Lifetime(clicks=7, bot_clicks=1, first_click_at=T0, last_click_at=T0 + timedelta(minutes=1))
PUBLIC = Lifetime(clicks=0, bot_clicks=0, first_click_at=None, last_click_at=None, workspace="acme", public_stats=True)
OTHERS = Lifetime(clicks=1, bot_clicks=0, first_click_at=T0, last_click_at=T0, workspace="acme")
ADMIN = "lsk_admin"  # workspace default, admin
READER = "lsk_reader"  # workspace default, stats:read
WRITER = "lsk_writer"  # workspace default, links:write only
KEYS = {
    ADMIN: Principal("k_admin", "default", frozenset({"admin"})),
    READER: Principal("k_reader", "default", frozenset({"stats:read"})),
    WRITER: Principal("k_writer", "default", frozenset({"links:write"})),
}


class FakeKeys:
    async def authenticate(self, authorization: str | None) -> Principal:
        secret = bearer_secret(authorization)
        if secret is None:
            raise missing_key()
        if secret not in KEYS:
            raise invalid_key()
        return KEYS[secret]


class FakeWindow:
    """A fixed window per identity: `limit` hits, then refused with Retry-After 30."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.hits: dict[str, int] = {}

    async def hit(self, identity: str) -> Verdict:
        self.hits[identity] = self.hits.get(identity, 0) + 1
        return Verdict(allowed=True) if self.hits[identity] <= self.limit else Verdict(False, retry_after=30)


def auth(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_the_series_zero_fills_every_bucket() -> None:
    query = parse_stats("abc", {"from": iso(T0), "to": iso(T0 + timedelta(hours=3))}, now=T0 + timedelta(hours=3))
    stats = RangeStats(
        clicks=3, unique_visitors=1, series=[Point(t=T0 + timedelta(hours=1), clicks=3, unique_visitors=1)]
    )
    assert msgspec.to_builtins(render_stats(query, LIFETIME, stats).series) == [
        {"t": iso(T0 + timedelta(hours=h)), "clicks": 3 if h == 1 else 0, "unique_visitors": 1 if h == 1 else 0}
        for h in range(3)
    ]


async def test_unknown_code_is_404() -> None:
    query = parse_stats("nobody", {}, now=T0)
    with pytest.raises(UnknownLink) as info:
        await stats_service.link_stats(query, caller=KEYS[ADMIN], totals=FakeTotals({}), events=FakeEvents())
    assert STATUS[type(info.value)] == 404 and info.value.code == "link_not_found"


@dataclass
class Limits:
    per_key: FakeWindow
    per_address: FakeWindow
    failures: FakeWindow


def client(
    *, per_key: int = 1000, per_address: int = 1000, failures: int = 1000, secret: str | None = ADMIN
) -> tuple[httpx.AsyncClient, FakeEvents]:
    http, events, _ = limited_client(per_key=per_key, per_address=per_address, failures=failures, secret=secret)
    return http, events


def limited_client(
    *, per_key: int = 1000, per_address: int = 1000, failures: int = 1000, secret: str | None = ADMIN
) -> tuple[httpx.AsyncClient, FakeEvents, Limits]:
    events = FakeEvents()
    limits = Limits(FakeWindow(per_key), FakeWindow(per_address), FakeWindow(failures))
    settings = AnalyticsSettings(analytics_trusted_proxies="127.0.0.1")
    runtime = bootstrap(
        settings,
        totals=FakeTotals({"abc": LIFETIME, "pub": PUBLIC, "theirs": OTHERS}),
        events=events,
        keys=FakeKeys(),
        per_key=limits.per_key.hit,
        per_address=limits.per_address.hit,
        auth_failures=limits.failures.hit,
    )
    app = create_app(settings, runtime=runtime)
    # ASGITransport runs no lifespan: the fakes stand in for the stores and the key book.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 5000))
    headers = auth(secret) if secret else {}
    return httpx.AsyncClient(transport=transport, base_url="http://analytics", headers=headers), events, limits


async def test_stats_over_http() -> None:
    http, events = client()
    async with http:
        r = await http.get(
            "/api/v1/links/abc/stats",
            params={"from": "2026-11-27T09:00:00Z", "to": "2026-11-27T09:03:00Z", "interval": "minute"},
        )
    assert r.status_code == 200
    body = r.json()
    assert body["totals"] == {"clicks": 5, "unique_visitors": 2}
    assert body["lifetime"] == {
        "clicks": 7,
        "bot_clicks": 1,
        "first_click_at": "2026-11-27T09:00:00Z",
        "last_click_at": "2026-11-27T09:01:00Z",
    }
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
        ("/api/v1/top?limit=%C2%B2", 422, "limit_invalid"),  # '²': str.isdigit() but not int()
        (
            "/api/v1/links/abc/stats?from=9999-12-31T00:00:00Z&to=9999-12-31T23:59:59Z&interval=minute",
            422,
            "time_invalid",
        ),
        ("/api/v1/links/abc/stats?to=9999-12-31T23:59:59Z&interval=day", 422, "time_invalid"),
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
    http, events = client(secret=READER)
    async with http:
        r = await http.get("/api/v1/top", params={"window": "1h", "limit": "1", "tag": "launch"})
    assert r.status_code == 200
    assert r.json()["links"] == [{"code": "abc", "clicks": 5, "unique_visitors": 2}]
    assert r.json()["workspace"] == "default" and r.json()["tag"] == "launch"
    query = events.queries[0]
    assert isinstance(query, TopQuery) and (query.workspace, query.tag) == ("default", "launch")


@pytest.mark.parametrize(
    ("secret", "status", "code"),
    [
        (None, 401, "api_key_missing"),
        ("lsk_nobody", 401, "api_key_invalid"),
        (WRITER, 403, "scope_missing"),
    ],
)
async def test_top_needs_a_key_with_stats_read(secret: str | None, status: int, code: str) -> None:
    http, _ = client(secret=secret)
    async with http:
        r = await http.get("/api/v1/top")
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


@pytest.mark.parametrize(
    ("path", "secret", "status", "code"),
    [
        ("/api/v1/links/abc/stats", READER, 200, None),  # default's link, default's key
        ("/api/v1/links/abc/stats", None, 404, "link_not_found"),  # private, no key
        ("/api/v1/links/abc/stats", WRITER, 403, "scope_missing"),
        ("/api/v1/links/theirs/stats", ADMIN, 404, "link_not_found"),  # acme's link, default's admin
        ("/api/v1/links/pub/stats", None, 200, None),  # public stats, anyone
        ("/api/v1/links/pub/stats", WRITER, 200, None),
        ("/api/v1/links/pub/stats", "lsk_nobody", 401, "api_key_invalid"),  # a bad key is never ignored
    ],
)
async def test_who_reads_which_stats(path: str, secret: str | None, status: int, code: str | None) -> None:
    http, _ = client(secret=secret)
    async with http:
        r = await http.get(path)
    assert r.status_code == status, r.text
    if code:
        assert r.json()["error"]["code"] == code


async def test_a_link_of_another_workspace_answers_exactly_like_an_unknown_code() -> None:
    http, _ = client(secret=ADMIN)
    async with http:
        theirs = await http.get("/api/v1/links/theirs/stats")
        unknown = await http.get("/api/v1/links/theirs/stats".replace("theirs", "nobody"))
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["error"] | {"message": ""} == unknown.json()["error"] | {"message": ""}
    assert theirs.json()["error"]["message"].replace("theirs", "") == unknown.json()["error"]["message"].replace(
        "nobody", ""
    )


async def test_limits_per_key_per_address_and_failed_auth_are_429_with_retry_after() -> None:
    http, _, limits = limited_client(per_key=2, per_address=2, failures=2, secret=None)
    async with http:
        keyed = [await http.get("/api/v1/top", headers=auth(READER)) for _ in range(3)]
        assert [r.status_code for r in keyed] == [200, 200, 429]
        assert keyed[2].json()["error"]["code"] == "rate_limited" and keyed[2].headers["retry-after"] == "30"
        assert (await http.get("/api/v1/top", headers=auth(ADMIN))).status_code == 200  # per key

        public = [await http.get("/api/v1/links/pub/stats") for _ in range(3)]
        assert [r.status_code for r in public] == [200, 200, 429]
        assert public[2].json()["error"]["code"] == "public_rate_limited"
        assert public[2].headers["retry-after"] == "30"
        # A forwarded address from a trusted peer (nginx) is its own identity.
        assert (await http.get("/api/v1/links/pub/stats", headers={"X-Forwarded-For": "192.0.2.9"})).status_code == 200
        assert limits.per_address.hits == {"127.0.0.1": 3, "192.0.2.9": 1}

        bad = [await http.get("/api/v1/links/pub/stats", headers=auth("lsk_wrong")) for _ in range(3)]
        assert [r.status_code for r in bad] == [401, 401, 429]
        assert bad[2].json()["error"]["code"] == "auth_rate_limited" and int(bad[2].headers["retry-after"]) >= 1
        # Refused for the window even with a right key: the limit on guessing lets no guess through.
        assert (await http.get("/api/v1/top", headers=auth(ADMIN))).status_code == 429


async def test_post_is_405_json() -> None:
    http, _ = client()
    async with http:
        r = await http.post("/api/v1/top")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


OPENAPI = build_document()


async def test_openapi_describes_every_route() -> None:
    app = create_app(AnalyticsSettings())
    paths = {r.path for r in app.routes if isinstance(r, Route)}
    assert paths == set(OPENAPI["paths"])
    http, _ = client()
    async with http:
        assert (await http.get("/openapi.json")).json()["paths"].keys() == OPENAPI["paths"].keys()


def test_openapi_documents_keys_and_every_refusal() -> None:
    stats, top = OPENAPI["paths"]["/api/v1/links/{code}/stats"]["get"], OPENAPI["paths"]["/api/v1/top"]["get"]
    assert sorted(map(str, stats["security"])) == sorted(map(str, [{"bearer": []}, {}]))  # a key, or none
    assert top["security"] == [{"bearer": []}]
    for operation in (stats, top):
        assert {"401", "403", "404" if operation is stats else "422", "429", "503"} <= set(operation["responses"])
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    assert "tag" in {p["name"] for p in top["parameters"]}
    assert OPENAPI["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
