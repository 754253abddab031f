"""GET/HEAD /{code} against fakes of the store and the click sink, wired by the service's own
bootstrap and served by its app (the `HotPath` dispatcher, Starlette behind it for the rest)."""

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redirect.adapters.redis_cache import ReadFailover
from redirect.bootstrap import bootstrap
from redirect.domain.links import Link
from redirect.entrypoints.app import create_app
from redirect.ports import StoreUnavailable
from redirect.service_layer.lookup import Lookup
from redirect.settings import RedirectSettings

from tests.unit.redirect.fakes import FakeReader, FakeSink, FakeStore

pytestmark = pytest.mark.unit


def settings(**overrides: Any) -> RedirectSettings:
    return RedirectSettings(
        **overrides,
        redirect_l1_size=100,
        redirect_l1_ttl_seconds=30,
        redirect_l1_negative_ttl_seconds=5,
        redirect_permanent_max_age=3600,
        redirect_click_buffer_max=100,
        redirect_click_flush_interval_seconds=3600,
        redirect_replica_id=1,
        redirect_trusted_proxies="127.0.0.1",
    )


class Rig:
    """A replica wired by `bootstrap` with fakes of its ports; no lifespan runs (ASGITransport),
    so nothing but the fakes is ever reached."""

    def __init__(self, **overrides: Any) -> None:
        self.store = FakeStore()
        self.sink = FakeSink()
        self.runtime = bootstrap(
            settings(**overrides),
            store=self.store,
            click_sink=self.sink,
            links_source=lambda: FakeReader([]),
            registry=CollectorRegistry(),
        )
        core = self.runtime.core
        self.stats, self.l1, self.clicks, self.lookup = core.stats, core.l1, core.clicks, core.lookup
        app = create_app(self.runtime.settings, runtime=self.runtime)
        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")

    async def anchor(self) -> None:
        """What the lifespan's start does first: the projector reads its start offsets (L1 fills
        are allowed from then on)."""
        await self.runtime.projector.anchor()
        self.store.calls.clear()

    async def published_codes(self) -> list[str]:
        await self.clicks.close(1.0)
        return [c.code for c in self.sink.clicks]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    r = Rig()
    await r.anchor()
    async with r.client:
        yield r


async def test_redirect_from_redis_then_from_l1_and_a_click_each(rig: Rig) -> None:
    rig.store.links["abc1234"] = Link(offset=3, url="https://e.com/a")
    for _ in range(2):
        r = await rig.client.get("/abc1234")
        assert (r.status_code, r.headers["location"], r.headers["cache-control"]) == (
            302,
            "https://e.com/a",
            "private, no-cache",
        )
    assert rig.store.calls == ["get:abc1234"]  # the second came from L1
    assert (rig.stats.l1_misses, rig.stats.l1_hits, rig.stats.redis_hits) == (1, 1, 1)
    assert await rig.published_codes() == ["abc1234", "abc1234"]


async def test_301_is_cacheable_publicly(rig: Rig) -> None:
    rig.store.links["perm123"] = Link(offset=1, url="https://e.com/p", redirect_type=301)
    r = await rig.client.get("/perm123")
    assert (r.status_code, r.headers["cache-control"]) == (301, "public, max-age=3600")


async def test_unknown_code_is_a_json_404_and_not_a_click(rig: Rig) -> None:
    r = await rig.client.get("/nope123")
    assert r.status_code == 404 and r.json() == {
        "error": {"code": "not_found", "message": "no link with this code", "field": "code"}
    }
    assert r.headers["cache-control"] == "no-store"
    assert rig.stats.redis_misses == 1 and await rig.published_codes() == []


@pytest.mark.parametrize("path", ["/a.b", "/" + "x" * 65, "/%C3%BC", "/a%20b", "/a:b"])
async def test_impossible_codes_are_404_without_touching_the_store(rig: Rig, path: str) -> None:
    r = await rig.client.get(path)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert rig.store.calls == []


@pytest.mark.parametrize(
    ("link", "reason"),
    [
        (Link(offset=1, deleted=True), "link_deleted"),
        (Link(offset=1, url="https://e.com/", expires_at=time.time() - 1), "link_expired"),
    ],
)
async def test_gone_links_are_410_with_their_reason(rig: Rig, link: Link, reason: str) -> None:
    rig.store.links["gone123"] = link
    r = await rig.client.get("/gone123")
    assert (r.status_code, r.json()["error"]["code"]) == (410, reason)
    assert await rig.published_codes() == []


async def test_max_clicks_then_410_and_head_does_not_count(rig: Rig) -> None:
    rig.store.links["lim1234"] = Link(offset=1, url="https://e.com/", max_clicks=2)
    head = await rig.client.head("/lim1234")
    assert head.status_code == 302 and "location" not in head.headers  # the target costs a click
    assert [(await rig.client.get("/lim1234")).status_code for _ in range(3)] == [302, 302, 410]
    assert (await rig.client.get("/lim1234")).json()["error"]["code"] == "link_click_limit_reached"
    head = await rig.client.head("/lim1234")
    assert head.status_code == 410 and head.content == b""
    assert rig.store.clicks["lim1234"] == 2
    assert await rig.published_codes() == ["lim1234", "lim1234"]


async def test_head_redirects_without_a_body_or_a_click(rig: Rig) -> None:
    rig.store.links["head123"] = Link(offset=1, url="https://e.com/h")
    r = await rig.client.head("/head123")
    assert (r.status_code, r.headers["location"], r.content) == (302, "https://e.com/h", b"")
    assert await rig.published_codes() == []


async def test_store_down_is_a_json_503(rig: Rig) -> None:
    rig.store.down = True
    r = await rig.client.get("/down123")
    assert (r.status_code, r.json()["error"]["code"], r.headers["retry-after"]) == (503, "unavailable", "1")
    assert rig.stats.redis_errors == 1


async def test_other_methods_are_405_json(rig: Rig) -> None:
    r = await rig.client.post("/abc1234")
    assert (r.status_code, r.json()["error"]["code"]) == (405, "method_not_allowed")


async def test_no_l1_fill_before_the_projector_is_anchored() -> None:
    r = Rig()
    async with r.client:
        r.store.links["abc1234"] = Link(offset=1, url="https://e.com/")
        assert (await r.client.get("/abc1234")).status_code == 302
        assert r.l1.peek("abc1234") is None


async def test_a_slow_redis_read_never_overwrites_what_the_consumer_put_in_l1(rig: Rig) -> None:
    """The stale-read race: Redis answers the old version after the consumer upserted the new one."""
    rig.store.links["race123"] = Link(offset=1, url="https://old/")
    real_get = rig.store.get

    async def slow_get(code: str) -> Link:
        found = await real_get(code)
        rig.l1.offer(code, Link(offset=2, url="https://new/"), now=time.monotonic(), ttl=30)  # consumer, meanwhile
        return found

    rig.store.get = slow_get  # type: ignore[method-assign]
    r = await rig.client.get("/race123")
    assert r.headers["location"] == "https://new/"
    cached = rig.l1.peek("race123")
    assert cached is not None and cached.url == "https://new/"


async def test_a_bug_on_the_hot_path_is_a_json_500(rig: Rig) -> None:
    async def broken(code: str) -> Link:
        raise RuntimeError("bug")

    rig.lookup.fetch = broken  # type: ignore[method-assign]
    r = await rig.client.get("/bug1234")
    assert (r.status_code, r.json()["error"]["code"]) == (500, "internal_error")
    assert await rig.published_codes() == []


async def test_store_down_a_link_held_in_l1_is_served_past_its_ttl(rig: Rig) -> None:
    rig.store.links["held123"] = Link(offset=1, url="https://held/")
    assert (await rig.client.get("/held123")).status_code == 302
    rig.l1.offer("held123", rig.l1.peek("held123"), now=time.monotonic(), ttl=-1)  # type: ignore[arg-type]
    assert rig.l1.get("held123", time.monotonic()) is None  # expired
    rig.store.down = True
    r = await rig.client.get("/held123")
    assert (r.status_code, r.headers["location"]) == (302, "https://held/")
    assert rig.stats.stale_served == 1
    r = await rig.client.get("/never12")  # unknown while the store is away: 503, not 404
    assert (r.status_code, r.json()["error"]["code"], r.headers["retry-after"]) == (503, "unavailable", "1")


async def test_reads_go_to_the_replica_while_the_primary_is_away() -> None:
    primary, replica = FakeStore(), FakeStore()
    reads = ReadFailover(primary, replica, retry_after=60)  # type: ignore[arg-type]
    replica.links["rep1234"] = Link(offset=3, url="https://replica/")
    primary.down = True
    assert (await reads.get("rep1234")).url == "https://replica/"
    assert (await reads.get_many(["rep1234", "nope123"]))[1].exists is False
    assert primary.calls == ["get:rep1234"]  # tried once, then left alone for retry_after
    assert reads.replica_reads == 3


async def test_while_rebuilding_a_redis_miss_is_not_an_answer() -> None:
    rebuilding = True
    r = Rig()
    r.lookup = Lookup(
        store=r.store,
        l1=r.l1,
        stats=r.stats,
        anchored=lambda: True,
        rebuilding=lambda: rebuilding,
        ttl=30,
        negative_ttl=5,
        permanent_max_age=3600,
    )
    with pytest.raises(StoreUnavailable):
        await r.lookup.fetch("lost123")
    rebuilding = False
    assert not (await r.lookup.fetch("lost123")).exists


@pytest.mark.parametrize(("age", "served"), [(0.2, True), (4.1, False)])
async def test_a_request_the_proxy_may_have_re_sent_is_refused_without_a_click(age: float, served: bool) -> None:
    """nginx re-sends a GET after its read timeout; a stalled replica answering it late must not
    count a second click for the one visit (REDIRECT_PROXY_READ_TIMEOUT_SECONDS less the margin)."""
    rig = Rig(redirect_proxy_read_timeout_seconds=4.5, redirect_proxy_clock_margin_seconds=0.5)
    await rig.anchor()
    rig.store.links["late123"] = Link(offset=1, url="https://e.com/l")
    async with rig.client:
        r = await rig.client.get("/late123", headers={"x-request-start": f"t={time.time() - age:.3f}"})
    if served:
        assert r.status_code == 302 and await rig.published_codes() == ["late123"]
    else:
        assert (r.status_code, r.json()["error"]["code"], r.headers["retry-after"]) == (503, "request_expired", "0")
        assert rig.stats.expired_requests == 1 and await rig.published_codes() == []


@pytest.mark.parametrize("value", ["", "t=", "t=abc", "1732977600"])
async def test_a_missing_or_malformed_request_start_is_served(value: str) -> None:
    rig = Rig(redirect_proxy_read_timeout_seconds=4.5)
    await rig.anchor()
    rig.store.links["odd1234"] = Link(offset=1, url="https://e.com/o")
    async with rig.client:
        r = await rig.client.get("/odd1234", headers={"x-request-start": value} if value else {})
    assert r.status_code == 302 and await rig.published_codes() == ["odd1234"]
