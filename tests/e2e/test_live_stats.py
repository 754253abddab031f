"""Live stats through the public entry point (nginx -> analytics, fed by the aggregator over the
`link-activity` topic): a redirect shows up on the link's open stream within a deadline, idle
streams carry heartbeats through nginx, a stream that its client leaves is gone from analytics,
and a caller who may not read a link's stats cannot open its stream either (404 / 403, as /stats).

LIVE_DEADLINE_S (default 3 s): how long a click may take from the redirect's answer to its event.
The path is the redirect's click flush (0.1 s), the aggregator's flush tick (up to
AGGREGATOR_FLUSH_MIN_S = 1 s), the PostgreSQL claim, Kafka and analytics; docs/benchmarks/live.md
has the measured distribution.
"""

import asyncio
import json
import os
import re
import secrets
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from tests.conftest import analytics_url, public_url, wait_until, wait_until_async
from tests.e2e.test_workspace_keys import just_keys
from tests.integration.shorten.support import bearer

pytestmark = pytest.mark.e2e

LIVE_DEADLINE_S = float(os.environ.get("LIVE_DEADLINE_S", "3"))


@dataclass
class Stream:
    """An open SSE response read event by event; comments (heartbeats) are kept apart."""

    response: httpx.Response
    lines: AsyncIterator[str]
    comments: list[str] = field(default_factory=list)

    async def next_event(self, timeout: float) -> tuple[str, dict[str, Any], float]:
        """(event name, JSON data, monotonic time of arrival) of the next event."""
        deadline = time.monotonic() + timeout
        name, data = "message", ""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no event within {timeout}s")
            line = await _with_timeout(self.lines.__anext__(), remaining)
            if line.startswith(":"):
                self.comments.append(line)
            elif line.startswith("event:"):
                name = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data += line.partition(":")[2].strip()
            elif line == "" and data:
                return name, json.loads(data), time.monotonic()

    async def next_comment(self, timeout: float) -> str:
        seen = len(self.comments)
        deadline = time.monotonic() + timeout
        while len(self.comments) == seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no comment line within {timeout}s")
            line = await _with_timeout(self.lines.__anext__(), remaining)
            if line.startswith(":"):
                self.comments.append(line)
        return self.comments[-1]


async def _with_timeout(awaitable: Any, timeout: float) -> Any:
    return await asyncio.wait_for(awaitable, timeout)


@pytest.fixture
async def public() -> AsyncIterator[httpx.AsyncClient]:
    # Reads may wait between events up to a heartbeat; the deadlines are the tests' own.
    async with httpx.AsyncClient(base_url=public_url(), timeout=httpx.Timeout(10, read=60)) as client:
        yield client


async def new_link(public: httpx.AsyncClient, key: str) -> str:
    created = await public.post("/api/v1/links", json={"url": "https://live.example/"}, headers=bearer(key))
    assert created.status_code == 201, created.text
    code: str = created.json()["code"]
    return code


async def until_analytics_knows(public: httpx.AsyncClient, code: str, key: str) -> None:
    """The aggregator has read the link from `links` (analytics answers its stats)."""

    async def known() -> bool:
        return (await public.get(f"/api/v1/links/{code}/stats", headers=bearer(key))).status_code == 200

    await wait_until_async(known, timeout=60, interval=0.2, what=f"analytics to know {code}")


def open_streams() -> float:
    text = httpx.get(analytics_url() + "/metrics", timeout=5).text
    match = re.search(r"^analytics_live_streams (\S+)$", text, re.MULTILINE)
    assert match, "analytics_live_streams is not exposed"
    return float(match.group(1))


async def test_a_redirect_arrives_on_the_open_stream_within_the_deadline(
    public: httpx.AsyncClient, api_key: str
) -> None:
    code = await new_link(public, api_key)
    await until_analytics_knows(public, code, api_key)
    async with public.stream("GET", f"/api/v1/links/{code}/live", headers=bearer(api_key)) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        stream = Stream(response, response.aiter_lines())
        # nginx passes the first event at once (unbuffered): it is a few dozen bytes.
        name, ready, _ = await stream.next_event(timeout=5)
        assert (name, ready["code"], ready["lifetime"]["clicks"]) == ("ready", code, 0)

        visited = await public.get(f"/{code}", headers={"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"})
        assert visited.status_code == 302
        redirected_at = time.monotonic()
        name, clicks, arrived_at = await stream.next_event(timeout=LIVE_DEADLINE_S)
        latency = arrived_at - redirected_at
        print(f"redirect -> live event: {latency * 1000:.0f} ms")
        assert (name, clicks["code"], clicks["clicks"], clicks["bot_clicks"]) == ("clicks", code, 1, 0)
        assert latency < LIVE_DEADLINE_S
        # A bot's click is counted apart.
        await public.get(f"/{code}", headers={"User-Agent": "Googlebot/2.1 (+http://www.google.com/bot.html)"})
        name, bot, _ = await stream.next_event(timeout=LIVE_DEADLINE_S)
        assert (name, bot["clicks"], bot["bot_clicks"]) == ("clicks", 0, 1)


async def test_an_idle_stream_carries_heartbeats_and_leaving_it_frees_it(
    public: httpx.AsyncClient, api_key: str
) -> None:
    code = await new_link(public, api_key)
    await until_analytics_knows(public, code, api_key)
    before = open_streams()
    async with public.stream("GET", f"/api/v1/links/{code}/live", headers=bearer(api_key)) as response:
        stream = Stream(response, response.aiter_lines())
        _, ready, _ = await stream.next_event(timeout=5)
        assert open_streams() == before + 1
        # Through nginx, within the announced interval (+ margin for a loaded machine).
        assert await stream.next_comment(timeout=ready["heartbeat_s"] + 5) == ": heartbeat"
    # The client went away: analytics notices, ends the stream and forgets the subscription.
    wait_until(lambda: open_streams() == before, timeout=10, what="the stream to be freed")


async def test_another_workspace_cannot_open_the_stream(public: httpx.AsyncClient, api_key: str) -> None:
    workspace = f"live-{secrets.token_hex(4)}"
    owner = just_keys("create", "--workspace", workspace, "--scopes", "links:write,stats:read")["secret"]
    writer = just_keys("create", "--workspace", workspace, "--scopes", "links:write")["secret"]
    code = await new_link(public, owner)
    await until_analytics_knows(public, code, owner)  # the link exists, in `workspace`
    foreign = await public.get(f"/api/v1/links/{code}/live", headers=bearer(api_key))  # admin of `default`
    unknown = await public.get("/api/v1/links/NoSuchLiveCode/live", headers=bearer(api_key))
    # The answer of an unknown code (but for the code named in the message).
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["error"] | {"message": ""} == unknown.json()["error"] | {"message": ""}
    assert foreign.json()["error"]["code"] == "link_not_found"
    anonymous = await public.get(f"/api/v1/links/{code}/live")
    assert (anonymous.status_code, anonymous.json()["error"]["code"]) == (404, "link_not_found")
    no_scope = await public.get(f"/api/v1/links/{code}/live", headers=bearer(writer))
    assert (no_scope.status_code, no_scope.json()["error"]["code"]) == (403, "scope_missing")
    assert no_scope.headers["content-type"] == "application/json"
