"""20 concurrent creates of one alias: the database's unique key lets exactly one win."""

import asyncio
from collections import Counter

import httpx
import pytest
from contracts import links

from tests.integration.shorten.support import outbox_rows, unique_alias

pytestmark = pytest.mark.integration


async def test_concurrent_creates_of_one_alias_exactly_one_wins(
    client: httpx.AsyncClient, auth: dict[str, str]
) -> None:
    alias = unique_alias("race")
    start = asyncio.Event()
    # A connection pool wide enough that the 20 requests really are in flight together.
    async with httpx.AsyncClient(
        base_url=str(client.base_url), timeout=10, limits=httpx.Limits(max_connections=20)
    ) as wide:

        async def attempt(i: int) -> httpx.Response:
            await start.wait()
            return await wide.post("/api/v1/links", json={"url": f"https://e.com/{i}", "alias": alias}, headers=auth)

        tasks = [asyncio.create_task(attempt(i)) for i in range(20)]
        start.set()
        responses = await asyncio.gather(*tasks)

    assert Counter(r.status_code for r in responses) == {201: 1, 409: 19}
    assert all(r.json()["error"]["code"] == "alias_taken" for r in responses if r.status_code == 409)
    winner = next(r.json() for r in responses if r.status_code == 201)

    # One link, one LinkCreated in the outbox, carrying the winner's url: losers wrote nothing.
    rows = await outbox_rows([alias])
    assert [r["event_type"] for r in rows] == ["LinkCreated"]
    event = links.decode(rows[0]["payload"])
    assert event.url == winner["url"]
    assert (await client.get(f"/api/v1/links/{alias}", headers=auth)).json() == winner
