"""Live stats: the hub's fan-out by code and its bound, the stream's events, heartbeats and its
clean end (the subscription leaves the hub whichever way the stream ends), and the same
refusals as /stats before a stream opens. No stores: fakes of the ports."""

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import msgspec
import pytest
from analytics.bootstrap import bootstrap
from analytics.entrypoints.app import create_app
from analytics.entrypoints.live_stream import LiveResponse
from analytics.service_layer.live import LiveHub, LiveStream, open_live
from analytics.settings import AnalyticsSettings
from platformkit.errors import ApiError

from tests.unit.analytics.test_service import (
    ADMIN,
    KEYS,
    LIFETIME,
    OTHERS,
    PUBLIC,
    READER,
    WRITER,
    FakeEvents,
    FakeKeys,
    FakeTotals,
    FakeWindow,
    auth,
)

pytestmark = pytest.mark.unit

TOTALS = FakeTotals({"abc": LIFETIME, "pub": PUBLIC, "theirs": OTHERS})


# ---------------------------------------------------------------- the hub


def test_counts_that_arrive_meanwhile_are_summed_not_queued() -> None:
    hub = LiveHub(max_streams=10)
    sub = hub.subscribe("a")
    hub.publish("a", 2, 0, 105, 106)
    hub.publish("a", 3, 1, 100, 109)
    hub.publish("a", 0, 2, 104, 104)
    counts = sub.take()
    assert counts is not None
    assert (counts.clicks, counts.bot_clicks, counts.first_at, counts.last_at) == (5, 3, 100, 109)
    assert sub.take() is None  # taken once
    hub.publish("a", 1, 0, 200, 200)
    again = sub.take()
    assert again is not None and (again.clicks, again.first_at, again.last_at) == (1, 200, 200)


def test_fan_out_by_code() -> None:
    hub = LiveHub(max_streams=10)
    a1, a2, b = hub.subscribe("a"), hub.subscribe("a"), hub.subscribe("b")
    hub.publish("a", 2, 1, 100, 101)
    hub.publish("zzz", 5, 0, 100, 100)  # nobody listens: one dict lookup, nothing else
    for sub in (a1, a2):
        counts = sub.take()
        assert counts is not None and (counts.clicks, counts.bot_clicks) == (2, 1)
    assert b.take() is None
    assert hub.rows_delivered == 1
    assert (hub.subscribers_of("a"), hub.subscribers_of("b"), hub.subscribers) == (2, 1, 3)


def test_the_bound_refuses_with_503_and_retry_after_and_frees_a_place_on_close() -> None:
    hub = LiveHub(max_streams=2, retry_after_s=7)
    first, _ = hub.subscribe("a"), hub.subscribe("b")
    with pytest.raises(ApiError) as refused:
        hub.subscribe("c")
    assert (refused.value.status, refused.value.code) == (503, "live_streams_exhausted")
    assert refused.value.headers == {"Retry-After": "7"}
    assert hub.refused == 1
    first.close()
    first.close()  # idempotent: one place freed, not two
    assert hub.subscribers == 1 and hub.subscribers_of("a") == 0
    hub.subscribe("c")
    with pytest.raises(ApiError):
        hub.subscribe("d")


async def test_next_waits_for_counts_times_out_and_ends_on_close() -> None:
    hub = LiveHub(max_streams=10)
    with hub.subscribe("a") as sub:
        assert await sub.next(0.01) is None  # nothing within the time
        waiting = asyncio.ensure_future(sub.next(5))
        await asyncio.sleep(0)
        hub.publish("a", 1, 0, 100, 100)
        counts = await asyncio.wait_for(waiting, 1)
        assert counts is not None and counts.clicks == 1
        waiting = asyncio.ensure_future(sub.next(5))
        await asyncio.sleep(0)
        hub.close()  # the process stops: the stream wakes up and ends
        assert await asyncio.wait_for(waiting, 1) is None and sub.closed
    assert hub.subscribers == 0


async def test_open_live_applies_the_stats_access_rule() -> None:
    hub = LiveHub(max_streams=10)
    stream = await open_live("abc", caller=KEYS[READER], totals=TOTALS, hub=hub, max_stream_s=60)
    assert stream.lifetime == LIFETIME and hub.subscribers_of("abc") == 1
    assert (await open_live("pub", caller=None, totals=TOTALS, hub=hub, max_stream_s=60)).subscription.code == "pub"
    for code, caller, status in [
        ("theirs", KEYS[ADMIN], 404),  # another workspace's private link: as unknown
        ("abc", None, 404),  # no key, private link
        ("nobody", KEYS[ADMIN], 404),
        ("abc", KEYS[WRITER], 403),  # right workspace, no stats:read
    ]:
        with pytest.raises(Exception) as refused:
            await open_live(code, caller=caller, totals=TOTALS, hub=hub, max_stream_s=60)
        assert getattr(refused.value, "code", None) in {"link_not_found", "scope_missing"}
        assert (refused.value.code == "scope_missing") == (status == 403)  # type: ignore[attr-defined]
    assert hub.subscribers == 2  # refusals subscribe nothing


# ---------------------------------------------------------------- the stream (ASGI, no server)


class Client:
    """An ASGI client that reads the stream and can go away."""

    def __init__(self) -> None:
        self.chunks: list[bytes] = []
        self.status: int | None = None
        self.headers: dict[str, str] = {}
        self.gone = asyncio.Event()
        self.arrived = asyncio.Event()

    async def receive(self) -> dict[str, Any]:
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            self.headers = {k.decode(): v.decode() for k, v in message["headers"]}
        elif message.get("body"):
            self.chunks.append(message["body"])
            self.arrived.set()

    def text(self) -> str:
        return b"".join(self.chunks).decode()

    async def until(self, needle: str) -> None:
        async with asyncio.timeout(5):
            while needle not in self.text():
                self.arrived.clear()
                await self.arrived.wait()


SCOPE = {"type": "http", "method": "GET", "path": "/api/v1/links/abc/live", "headers": [], "asgi": {"version": "3.0"}}


async def opened(hub: LiveHub, code: str = "abc", max_stream_s: float = 60) -> LiveStream:
    return await open_live(code, caller=KEYS[ADMIN], totals=TOTALS, hub=hub, max_stream_s=max_stream_s)


def events(text: str) -> list[tuple[str, dict[str, Any]]]:
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if line and not line.startswith(":"))
        if "event" in lines:
            out.append((lines["event"], msgspec.json.decode(lines["data"])))
    return out


async def test_ready_then_clicks_then_heartbeats_and_the_client_leaving_unsubscribes() -> None:
    hub = LiveHub(max_streams=10)
    client = Client()
    response = LiveResponse(await opened(hub), heartbeat_s=0.05)
    serving = asyncio.ensure_future(response(SCOPE, client.receive, client.send))
    await client.until("event: ready")
    assert client.status == 200 and client.headers["content-type"].startswith("text/event-stream")
    assert client.headers["cache-control"] == "no-store" and client.headers["x-accel-buffering"] == "no"
    hub.publish("abc", 3, 1, 1795773601, 1795773603)
    hub.publish("other", 9, 9, 1795773601, 1795773603)
    await client.until("event: clicks")
    await client.until(": heartbeat")
    (ready_name, ready), (clicks_name, clicks) = events(client.text())
    assert ready_name == "ready" and ready["lifetime"]["clicks"] == LIFETIME.clicks and ready["heartbeat_s"] == 0.05
    assert clicks_name == "clicks"
    assert clicks == {
        "code": "abc",
        "clicks": 3,
        "bot_clicks": 1,
        "first_at": "2026-11-27T10:00:01Z",
        "last_at": "2026-11-27T10:00:03Z",
    }
    assert hub.subscribers == 1
    client.gone.set()  # the client goes away
    await asyncio.wait_for(serving, 5)
    assert hub.subscribers == 0


async def test_a_stream_ends_when_its_time_is_up_or_the_process_stops() -> None:
    hub = LiveHub(max_streams=10)
    expired = Client()
    await asyncio.wait_for(
        LiveResponse(await opened(hub, max_stream_s=0.05), heartbeat_s=10)(SCOPE, expired.receive, expired.send), 5
    )
    assert [name for name, _ in events(expired.text())] == ["ready", "end"]
    assert events(expired.text())[-1][1] == {"reason": "expired"}

    closing = Client()
    serving = asyncio.ensure_future(
        LiveResponse(await opened(hub), heartbeat_s=10)(SCOPE, closing.receive, closing.send)
    )
    await closing.until("event: ready")
    hub.close()
    await asyncio.wait_for(serving, 5)
    assert events(closing.text())[-1] == ("end", {"reason": "closing"})
    assert hub.subscribers == 0


async def test_a_head_request_or_a_failed_send_leaves_nothing_in_the_hub() -> None:
    hub = LiveHub(max_streams=10)
    head = Client()
    await asyncio.wait_for(
        LiveResponse(await opened(hub), heartbeat_s=10)({**SCOPE, "method": "HEAD"}, head.receive, head.send), 5
    )
    assert head.status == 200 and hub.subscribers == 0

    async def broken_send(message: dict[str, Any]) -> None:
        raise OSError("connection reset")

    with pytest.raises(OSError):
        await asyncio.wait_for(LiveResponse(await opened(hub), heartbeat_s=10)(SCOPE, Client().receive, broken_send), 5)
    assert hub.subscribers == 0


# ---------------------------------------------------------------- over HTTP: refusals as JSON


@pytest.fixture
async def http() -> AsyncIterator[tuple[httpx.AsyncClient, LiveHub]]:
    settings = AnalyticsSettings(analytics_live_max_streams=1, analytics_trusted_proxies="127.0.0.1")
    runtime = bootstrap(
        settings,
        totals=TOTALS,
        events=FakeEvents(),
        keys=FakeKeys(),
        per_key=FakeWindow(1000).hit,
        per_address=FakeWindow(1000).hit,
        auth_failures=FakeWindow(1000).hit,
        live_feed=False,
    )
    app = create_app(settings, runtime=runtime)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False, client=("127.0.0.1", 5000))
    async with httpx.AsyncClient(transport=transport, base_url="http://analytics") as client:
        yield client, runtime.live_hub


@pytest.mark.parametrize(
    ("path", "secret", "status", "code"),
    [
        ("/api/v1/links/theirs/live", ADMIN, 404, "link_not_found"),  # another workspace's link
        ("/api/v1/links/abc/live", None, 404, "link_not_found"),  # private, no key
        ("/api/v1/links/nobody/live", ADMIN, 404, "link_not_found"),
        ("/api/v1/links/abc/live", WRITER, 403, "scope_missing"),
        ("/api/v1/links/abc/live", "lsk_wrong", 401, "api_key_invalid"),
        ("/api/v1/links/a%20b/live", ADMIN, 422, "code_invalid"),
        ("/api/v1/links/abc/live?since=1", ADMIN, 422, "parameter_unknown"),
    ],
)
async def test_refused_before_the_stream_opens_like_stats(
    http: tuple[httpx.AsyncClient, LiveHub], path: str, secret: str | None, status: int, code: str
) -> None:
    client, hub = http
    r = await client.get(path, headers=auth(secret) if secret else {})
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)
    assert r.headers["content-type"] == "application/json"
    assert hub.subscribers == 0
    if status == 404:  # byte for byte the answer of an unknown code
        unknown = await client.get("/api/v1/links/nobody/stats", headers=auth(ADMIN))
        assert r.json()["error"].keys() == unknown.json()["error"].keys()


async def test_past_the_limit_a_json_503_with_retry_after(http: tuple[httpx.AsyncClient, LiveHub]) -> None:
    client, hub = http
    held = hub.subscribe("pub")  # the one place this process has
    r = await client.get("/api/v1/links/abc/live", headers=auth(ADMIN))
    assert r.status_code == 503 and r.json()["error"]["code"] == "live_streams_exhausted"
    assert int(r.headers["Retry-After"]) >= 1
    held.close()
    assert hub.subscribers == 0
