"""Workspaces on the analytics API, over the real stack: keys from the `keys` topic, links (and
their owners) from the `links` topic through the aggregator, clicks through the pipeline.

Keys and link events of other workspaces are published straight to their topics
(tests/support/keys.py) until shorten creates them."""

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest
from analytics.entrypoints.app import create_app
from analytics.settings import AnalyticsSettings

from tests.conftest import analytics_url, wait_until_async
from tests.integration.aggregator.support import ClickProducer, Expected, Stores, make_click, unique_code
from tests.support.keys import IssuedKey, issue_key, link_created, link_deleted, publish_links, revoke_key

pytestmark = pytest.mark.integration


def workspace() -> str:
    return f"ws-{secrets.token_hex(5)}"


@pytest.fixture
async def api() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=analytics_url(), timeout=10) as c:
        yield c


async def stats(api: httpx.AsyncClient, code: str, key: IssuedKey | None = None) -> httpx.Response:
    return await api.get(f"/api/v1/links/{code}/stats", headers=key.headers if key else {})


async def until_known(api: httpx.AsyncClient, code: str, owner: IssuedKey) -> None:
    """The aggregator has applied the link's events (the owner's key reads its stats)."""

    async def known() -> bool:
        return (await stats(api, code, owner)).status_code == 200

    await wait_until_async(known, timeout=30, interval=0.2, what=f"{code} known to analytics")


def without_code(response: httpx.Response, code: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    body = response.json()
    body["error"]["message"] = body["error"]["message"].replace(code, "<code>")
    return response.status_code, body


async def test_stats_belong_to_the_links_workspace(api: httpx.AsyncClient) -> None:
    acme, other = workspace(), workspace()
    reader, writer = await issue_key(acme, ("stats:read",)), await issue_key(acme, ("links:write",))
    stranger = await issue_key(other, ("admin",))
    private, public = unique_code("own"), unique_code("pub")
    await publish_links(
        [link_created(private, workspace=acme), link_created(public, workspace=acme, public_stats=True)]
    )
    await until_known(api, private, reader)
    await until_known(api, public, reader)

    # Another workspace's key, and no key at all: the answer of a code that does not exist.
    never = unique_code("never")
    unknown = without_code(await stats(api, never, stranger), never)
    assert unknown[0] == 404 and unknown[1]["error"]["code"] == "link_not_found"
    assert without_code(await stats(api, private, stranger), private) == unknown
    assert without_code(await stats(api, private), private) == unknown
    # The owner's workspace without stats:read: told so.
    refused = await stats(api, private, writer)
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "scope_missing")
    # Public stats: anyone, with or without a key; a bad key is refused, not ignored.
    assert (await stats(api, public)).status_code == 200
    assert (await stats(api, public, stranger)).status_code == 200
    bad = await api.get(f"/api/v1/links/{public}/stats", headers={"Authorization": "Bearer lsk_not-a-key"})
    assert (bad.status_code, bad.json()["error"]["code"]) == (401, "api_key_invalid")

    # Made private again (a newer event): the public answer goes, for everyone but the owner.
    await publish_links([link_created(public, workspace=acme, public_stats=False)])

    async def private_now() -> bool:
        return (await stats(api, public)).status_code == 404

    await wait_until_async(private_now, timeout=30, interval=0.2, what=f"{public} private again")
    assert (await stats(api, public, reader)).status_code == 200


async def test_a_revoked_key_is_refused_within_a_bounded_time(api: httpx.AsyncClient) -> None:
    acme = workspace()
    key = await issue_key(acme, ("stats:read",))
    # Used at once after creation: the miss waits for the keys topic, no 401 for a new key.
    assert (await api.get("/api/v1/top", headers=key.headers)).status_code == 200
    await revoke_key(key)

    async def refused() -> bool:
        r = await api.get("/api/v1/top", headers=key.headers)
        return r.status_code == 401 and r.json()["error"]["code"] == "api_key_invalid"

    await wait_until_async(refused, timeout=10, interval=0.1, what="the revoked key refused")


async def test_top_ranks_the_callers_workspace_and_filters_by_tag(api: httpx.AsyncClient) -> None:
    acme, other = workspace(), workspace()
    mine, theirs = await issue_key(acme, ("stats:read",)), await issue_key(other, ("stats:read",))
    big, small, tagged, foreign, gone = (unique_code(p) for p in ("big", "small", "tag", "foreign", "gone"))
    await publish_links(
        [
            link_created(big, workspace=acme),
            link_created(small, workspace=acme),
            link_created(tagged, workspace=acme, tags=("launch", "q4")),
            link_created(foreign, workspace=other),
            link_created(gone, workspace=acme, tags=("launch",)),
        ]
    )
    await publish_links([link_deleted(gone, workspace=acme)])
    clicks = {big: 9, small: 2, tagged: 5, foreign: 20, gone: 7}
    async with ClickProducer() as producer, Stores() as stores:
        await producer.send([make_click(code, i) for code, n in clicks.items() for i in range(n)])
        for code, n in clicks.items():
            await stores.wait_counted(code, Expected(n, 0), timeout=120)

    async def top(key: IssuedKey, **params: str) -> list[tuple[str, int]] | None:
        r = await api.get("/api/v1/top", params={"window": "1h", **params}, headers=key.headers)
        assert r.status_code == 200, r.text
        return [(t["code"], t["clicks"]) for t in r.json()["links"]]

    # Deleted links leave the ranking; the other workspace's never enter it.
    expected = [(big, 9), (tagged, 5), (small, 2)]

    async def ranked() -> bool:
        return await top(mine) == expected

    await wait_until_async(ranked, timeout=30, interval=0.5, what="acme's ranking")  # the 2 s answer cache
    assert await top(mine, tag="launch") == [(tagged, 5)]
    assert await top(mine, tag="nothing-has-this") == []
    assert await top(theirs) == [(foreign, 20)]
    assert await top(mine, limit="1") == [(big, 9)]


@asynccontextmanager
async def own_analytics(**limits: str) -> AsyncIterator[httpx.AsyncClient]:
    """An analytics app in this process, on the stack's stores, Kafka and Redis, with its own
    (small) limits: the stack's process runs with generous ones for the suite."""
    settings = AnalyticsSettings(**limits)  # type: ignore[arg-type]
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(
            app=app, client=(f"127.9.{secrets.randbelow(250)}.{secrets.randbelow(250)}", 40000)
        )
        async with httpx.AsyncClient(transport=transport, base_url="http://analytics", timeout=10) as client:
            yield client


async def test_per_key_limit_and_failed_authentications_are_429_with_retry_after() -> None:
    acme = workspace()
    first, second = await issue_key(acme, ("stats:read",)), await issue_key(acme, ("stats:read",))
    async with own_analytics(analytics_key_rate_limit="3/minute", analytics_auth_failure_limit="2/minute") as api:
        answers = [await api.get("/api/v1/top", headers=first.headers) for _ in range(4)]
        assert [r.status_code for r in answers] == [200, 200, 200, 429]
        assert answers[3].json()["error"]["code"] == "rate_limited"
        assert 1 <= int(answers[3].headers["retry-after"]) <= 60
        assert (await api.get("/api/v1/top", headers=second.headers)).status_code == 200  # per key

        wrong = {"Authorization": f"Bearer lsk_{uuid.uuid4().hex}"}
        failures = [await api.get("/api/v1/top", headers=wrong) for _ in range(3)]
        assert [r.status_code for r in failures] == [401, 401, 429]
        assert failures[2].json()["error"]["code"] == "auth_rate_limited"
        assert 1 <= int(failures[2].headers["retry-after"]) <= 60
        # The address is refused for the window, even with a right key.
        assert (await api.get("/api/v1/top", headers=second.headers)).status_code == 429
